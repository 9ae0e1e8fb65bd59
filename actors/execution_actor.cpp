// One actor per running execution. Its loop, for every input (start, tool
// result, timer, cancel):
//   1. advance(): apply the input event, let decide() settle, apply those too;
//   2. hand the whole batch to the partition's LogWriter (group commit);
//   3. only when the batch is durable, launch the commands decided with it
//      (tool calls, timers) and answer whoever waits (start, cancel) — but
//      calls of built-in actions without side effects (core.echo, scripts) leave
//      at once: see
//      runs_before_durable().
// Batches are committed in order, so the in-memory state may run ahead of
// the log but nothing outside the actor ever sees a decision before it is
// durable. A crash anywhere loses at most non-durable batches; the partition
// rebuilds the actor from the log and the same commands come out again
// (tool calls with the same idempotency keys).
#include <chrono>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "actors/internal/callbacks.hpp"
#include "actors/internal/context.hpp"
#include "base/metrics.hpp"
#include "runtime/redact.hpp"
#include "runtime/snapshot.hpp"
#include "runtime/waits.hpp"
#include "storage/audit_log.hpp"
#include "storage/vault.hpp"

namespace yantra::detail {
namespace {

// Messages an execution sends itself: a batch is durable (from the
// partition's log writer), a timer is due, a call's secrets were resolved
// (on the I/O pool).
using persisted_atom = caf::atom_constant<caf::atom("ypersist")>;
using timer_atom = caf::atom_constant<caf::atom("ytimer")>;
using secrets_atom = caf::atom_constant<caf::atom("ysecrets")>;

struct PersistAck {
  uint64_t batch = 0;
  Status status;
};

// A tool call whose $secret markers were resolved on the I/O pool (a vault
// read is a RocksDB read: not for a scheduler thread). `values` are the
// plaintexts, kept only to scrub the tool's answer before it is recorded.
struct SecretsResolved {
  std::string tool_id;
  CallPtr call;
  Status status;
  std::shared_ptr<const std::vector<std::string>> values;
};

}  // namespace
}  // namespace yantra::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::PersistAck)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::SecretsResolved)

namespace yantra::detail {
namespace {

// What the actor implements: its public interface and its own messages.
using execution_impl = execution_actor::extend<caf::reacts_to<persisted_atom, PersistAck>,
                                               caf::reacts_to<timer_atom, std::string>,
                                               caf::reacts_to<secrets_atom, SecretsResolved>>;

struct ExecState {
  static inline const char* name = "yantra.execution";
  EngineCtx* ctx = nullptr;
  uint32_t partition = 0;
  std::string id;
  std::shared_ptr<const Flow> flow;
  ExecutionState st;
  Engine::StartedFn started;
  Engine::FinishedFn finished;
  uint64_t next_batch = 1;
  std::map<uint64_t, std::vector<Command>> pending;            // batch -> commands to launch
  std::unordered_set<std::string> inflight;                    // idempotency keys
  std::unordered_map<std::string, std::string> inflight_tool;  // key -> tenant tool id
  std::unordered_set<std::string> armed;                       // timer ids
  std::string persisted_status;
  std::vector<std::function<void(Status)>> cancel_waiters;
  bool done = false;
  bool fresh = false;      // started here, not rebuilt from the log
  std::string delete_key;  // queue row to delete with the first batch
  // Callers waiting for a batch to be durable (signals, approvals).
  std::map<uint64_t, std::vector<std::function<void(Status)>>> acks;
  bool asked_to_sleep = false;  // an idle_atom is on its way to the partition
  uint64_t events_since_snapshot = 0;
  uint64_t bytes_since_snapshot = 0;
  uint64_t last_snapshot_bytes = 0;
};

using Self = std::remove_pointer_t<execution_impl::stateful_pointer<ExecState>>;
using Behavior = execution_impl::behavior_type;

v1::ExecutionSummary summary_of(const ExecState& s) {
  v1::ExecutionSummary sum;
  sum.set_execution_id(s.id);
  sum.set_tenant(s.st.tenant);
  sum.set_flow_id(s.st.flow_id);
  sum.set_flow_version(s.st.flow_version);
  sum.set_status(s.st.display_status());
  sum.set_created_ms(s.st.created_ms);
  sum.set_updated_ms(s.st.updated_ms);
  sum.set_last_seq(s.st.last_seq);
  sum.set_partition(s.partition);
  return sum;
}

void launch(Self* self, const std::vector<Command>& cmds);

// Whether a command may run before the batch that decided it is durable:
// a call of a built-in action without side effects, which changes nothing
// outside this execution (core.echo, core.fail, core.sleep, script steps;
// ActionSpec::side_effects). If the batch is lost, so is every later one (a
// partition log commits in order, and this actor quits on its first failed
// batch): the answer was never recorded, the call is made again after
// recovery, and only that answer ever is — nothing observable ran twice.
// What it saves is a commit round per step: a chain of pure steps commits
// as fast as the log groups it, instead of waiting for a sync (and, in a
// cluster, a replication round trip) per step. Everything with an effect —
// http, emit, timers, any tenant tool — still launches only once its
// decision is durable.
bool runs_before_durable(const EngineCtx& ctx, const Command& c) {
  return c.kind == Command::Kind::kInvokeTool &&
         ctx.pure_actions.count(c.tool_id + "." + c.action) != 0;
}

void persist(Self* self, std::vector<v1::Event> events, std::vector<Command> cmds) {
  auto& s = self->state;
  storage::WriteRequest req;
  req.partition = s.partition;
  req.execution_id = s.id;
  req.events.reserve(events.size());
  for (const auto& ev : events) req.events.emplace_back(ev.seq(), ev.SerializeAsString());
  s.ctx->events.fetch_add(events.size(), std::memory_order_relaxed);
  const std::string status = s.st.display_status();
  if (status != s.persisted_status) {
    req.summary = summary_of(s);
    s.persisted_status = status;
  }
  if (s.fresh && s.next_batch == 1) {  // the batch holding ExecutionStarted
    req.created = true;
    req.idempotency_key = s.st.idempotency_key;
    req.parent_execution_id = s.st.parent_execution_id;
    req.delete_key = std::move(s.delete_key);
    if (!req.summary) req.summary = summary_of(s);
  }
  // A snapshot when this batch crosses a multiple of snapshot_every: the
  // in-memory state is exactly the state after the batch's last event.
  // Policy: at least snapshot_every events since the last snapshot, and at
  // least an eighth of its size in new event bytes, so that snapshots of a
  // large state (a long loop's results) cost at most ~8x the log bytes.
  const uint32_t every = s.ctx->snapshot_every;
  s.events_since_snapshot += events.size();
  for (const auto& [seq, bytes] : req.events) s.bytes_since_snapshot += bytes.size();
  if (every > 0 && !is_terminal(s.st.status) && s.events_since_snapshot >= every &&
      s.bytes_since_snapshot * 8 >= s.last_snapshot_bytes) {
    v1::Snapshot snap = make_snapshot(s.st);
    std::string bytes = snap.SerializeAsString();
    s.last_snapshot_bytes = bytes.size();
    s.events_since_snapshot = 0;
    s.bytes_since_snapshot = 0;
    req.snapshot.emplace(s.st.last_seq, std::move(bytes));
  }
  // The callbacks this batch owes commit with it (a transactional outbox);
  // the dispatcher is woken once they are durable.
  add_outbox_rows(*s.flow, s.st, events, now_ms(), &req);
  EngineCtx* notify = req.outbox.empty() ? nullptr : s.ctx;
  const uint64_t batch = s.next_batch++;
  // Calls of pure actions leave now, the rest once the batch is durable.
  std::vector<Command> now;
  std::erase_if(cmds, [&](Command& c) {
    if (!runs_before_durable(*s.ctx, c)) return false;
    now.push_back(std::move(c));
    return true;
  });
  s.pending.emplace(batch, std::move(cmds));
  auto handle = caf::actor_cast<execution_impl>(self);
  s.ctx->writers[s.partition]->append(std::move(req), [handle, batch, notify](const Status& st) {
    if (notify != nullptr && st.is_ok()) notify->outbox_written();
    caf::anon_send(handle, persisted_atom::value, PersistAck{batch, st});
  });
  if (!now.empty()) launch(self, now);
}

// Feeds one input event through advance() and persists the result. A failure
// here means the log and the state disagree (a bug or a corrupt record): the
// actor exits with an error so the partition rebuilds it from the log.
void submit(Self* self, v1::Event input) {
  auto& s = self->state;
  std::vector<Command> cmds;
  Result<std::vector<v1::Event>> batch = Status(Errc::kInternalError, "not run");
  try {
    batch = advance(*s.flow, s.st, std::move(input), now_ms(), &cmds);
  } catch (const std::exception& e) {
    batch = Status(Errc::kInternalError, e.what());
  }
  if (!batch.ok()) {
    spdlog::error("execution {}: {}", s.id, batch.status().to_string());
    self->quit(caf::make_error(caf::sec::runtime_error, batch.status().to_string()));
    return;
  }
  persist(self, std::move(batch.value()), std::move(cmds));
}

void on_tool_result(Self* self, const std::string& path, uint32_t attempt, const std::string& key,
                    ToolResult r) {
  auto& s = self->state;
  s.inflight.erase(key);
  s.inflight_tool.erase(key);
  if (s.done || is_terminal(s.st.status)) return;
  auto it = s.st.steps.find(path);
  // A late result (the attempt timed out, or the step was abandoned) is dropped.
  if (s.st.running.count(path) == 0 || it == s.st.steps.end() || it->second.attempt != attempt) {
    return;
  }
  v1::Event ev = make_event(s.st, now_ms());
  if (r.ok) {
    auto& e = *ev.mutable_step_completed();
    e.set_path(path);
    e.set_attempt(attempt);
    e.set_output_json(dump_canonical(r.output));
  } else {
    auto& e = *ev.mutable_step_failed();
    e.set_path(path);
    e.set_attempt(attempt);
    e.mutable_error()->set_code(r.code);
    e.mutable_error()->set_message(r.message);
    e.mutable_error()->set_retriable(r.retriable);
  }
  submit(self, std::move(ev));
}

// Tool calls by tool and outcome, and step (tool call) latency; and usage
// per tenant, tool and action (calls, failures, duration), the node-local
// side of GET /api/v1/tools/{id}/usage (docs/tools.md, "Usage"). Series are
// looked up once per thread and label set, then updated lock-free.
void record_tool_call(const std::string& tenant, const std::string& tool, const std::string& action,
                      bool ok, double seconds) {
  struct Series {
    metrics::Counter* ok;
    metrics::Counter* error;
    metrics::Histogram* latency;
  };
  thread_local std::unordered_map<std::string, Series> cache;
  auto it = cache.find(tool);
  if (it == cache.end()) {
    auto& reg = metrics::global();
    const char* help = "Tool calls by tool and outcome";
    Series series{
        &reg.counter("yantra_tool_calls_total", help, {{"tool", tool}, {"outcome", "ok"}}),
        &reg.counter("yantra_tool_calls_total", help, {{"tool", tool}, {"outcome", "error"}}),
        &reg.histogram("yantra_step_duration_seconds", "Tool call latency of action steps",
                       metrics::latency_seconds_buckets(), {{"tool", tool}})};
    it = cache.emplace(tool, series).first;
  }
  (ok ? it->second.ok : it->second.error)->inc();
  it->second.latency->observe(seconds);

  struct Usage {
    metrics::Counter* calls;
    metrics::Counter* failures;
    metrics::Histogram* duration;
  };
  thread_local std::unordered_map<std::string, Usage> usage;
  std::string key = tenant;
  key.push_back('\0');
  key += tool;
  key.push_back('\0');
  key += action;
  auto u = usage.find(key);
  if (u == usage.end()) {
    auto& reg = metrics::global();
    const metrics::Labels labels = {{"tenant", tenant}, {"tool", tool}, {"action", action}};
    Usage series{&reg.counter("yantra_tool_action_calls_total",
                              "Tool calls by tenant, tool and action", labels),
                 &reg.counter("yantra_tool_action_failures_total",
                              "Failed tool calls by tenant, tool and action", labels),
                 &reg.histogram("yantra_tool_action_duration_seconds",
                                "Tool call duration by tenant, tool and action",
                                metrics::latency_seconds_buckets(), labels)};
    u = usage.emplace(std::move(key), series).first;
  }
  u->second.calls->inc();
  if (!ok) u->second.failures->inc();
  u->second.duration->observe(seconds);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One audit record per tool call, written off the actor's path (the audit
// log batches on a thread of its own; in a cluster, the execution's
// partition chain through its log, from the I/O pool). The detail,
// "<tool>.<action> attempt <n> duration_us <d>", is what the usage route
// counts (durable, and replicated with the partition in a cluster).
void audit_tool_call(Self* self, const ToolCall& call, const std::string& tool_id,
                     const ToolResult& r, double seconds = 0) {
  auto& s = self->state;
  if (s.ctx->audit == nullptr && !s.ctx->audit_partition) return;
  storage::AuditEntry e;
  e.time_ms = now_ms();
  e.tenant = s.st.tenant;
  e.role = "system";
  e.action = "tool.call";
  e.resource = "executions/" + s.id + "/steps/" + call.path;
  e.outcome = r.ok ? "ok" : r.code;
  e.detail = tool_id + "." + call.action + " attempt " + std::to_string(call.attempt) +
             " duration_us " + std::to_string(static_cast<int64_t>(seconds * 1e6));
  if (s.ctx->audit_partition) {
    s.ctx->audit_partition(s.partition, std::move(e));
  } else {
    s.ctx->audit->append(std::move(e));
  }
}

// The actor running a tool for this execution's tenant: a built-in, or one
// of the tenant's own tools (added at run time).
std::optional<tool_actor> find_tool(EngineCtx& ctx, const std::string& tenant,
                                    const std::string& tool_id) {
  if (auto it = ctx.tools.find(tool_id); it != ctx.tools.end()) return it->second;
  std::shared_lock lock(ctx.tenant_tools_mu);
  auto it = ctx.tenant_tools.find(tenant_tool_key(tenant, tool_id));
  if (it == ctx.tenant_tools.end()) return std::nullopt;
  return it->second;
}

// Calls the tool; its answer is scrubbed of the resolved secret values (a
// tool may echo a header or a URL back) before anything records it.
void call_tool(Self* self, const std::string& tool_id, CallPtr call,
               std::shared_ptr<const std::vector<std::string>> secrets) {
  auto& s = self->state;
  const std::string path = call->path;
  const uint32_t attempt = call->attempt;
  const std::string key = call->idempotency_key;
  auto tool = find_tool(*s.ctx, s.st.tenant, tool_id);
  if (!tool) {
    ToolResult r =
        ToolResult::failure("unknown_tool", "no tool '" + tool_id + "' on this node", false);
    record_tool_call(s.st.tenant, tool_id, call->action, false, 0);
    audit_tool_call(self, *call, tool_id, r);
    on_tool_result(self, path, attempt, key, std::move(r));
    return;
  }
  if (s.ctx->tools.count(tool_id) == 0) s.inflight_tool[key] = tool_id;
  const auto t0 = std::chrono::steady_clock::now();
  auto scrub = [secrets](ToolResult& r) {
    if (secrets == nullptr || secrets->empty()) return;
    r.output = redact(r.output, *secrets);
    for (const auto& v : *secrets) {
      if (!v.empty() && r.message.find(v) != std::string::npos) r.message = kRedacted;
    }
  };
  self->request(*tool, caf::infinite, invoke_atom::value, call)
      .then(
          [=](ToolResult& r) {
            const double took = seconds_since(t0);
            record_tool_call(self->state.st.tenant, tool_id, call->action, r.ok, took);
            scrub(r);
            audit_tool_call(self, *call, tool_id, r, took);
            on_tool_result(self, path, attempt, key, std::move(r));
          },
          [=](caf::error& err) {
            const double took = seconds_since(t0);
            record_tool_call(self->state.st.tenant, tool_id, call->action, false, took);
            ToolResult r =
                ToolResult::failure("tool_unavailable", self->system().render(err), true);
            scrub(r);
            audit_tool_call(self, *call, tool_id, r, took);
            on_tool_result(self, path, attempt, key, std::move(r));
          });
}

// $secret markers are resolved on the I/O pool, just before the call; the
// plaintext lives only in the ToolCall handed to the tool.
void resolve_then_call(Self* self, const std::string& tool_id, std::shared_ptr<ToolCall> call) {
  auto& s = self->state;
  if (s.ctx->vault == nullptr) {
    ToolResult r = ToolResult::failure(
        "vault_unavailable", "this node has no master key, so secrets cannot be read", false);
    audit_tool_call(self, *call, tool_id, r);
    on_tool_result(self, call->path, call->attempt, call->idempotency_key, std::move(r));
    return;
  }
  auto handle = caf::actor_cast<execution_impl>(self);
  storage::Vault* vault = s.ctx->vault;
  s.ctx->io->submit([handle, vault, tenant = s.st.tenant, tool_id, call] {
    auto values = std::make_shared<std::vector<std::string>>();
    auto resolved = resolve_secrets(
        call->parameters, [&](const std::string& name) { return vault->get(tenant, name); },
        values.get());
    SecretsResolved msg{tool_id, call, resolved.status(), values};
    if (resolved.ok()) call->parameters = std::move(resolved.value());
    caf::anon_send(handle, secrets_atom::value, std::move(msg));
  });
}

void launch(Self* self, const std::vector<Command>& cmds) {
  auto& s = self->state;
  for (const auto& c : cmds) {
    if (c.kind == Command::Kind::kStartTimer) {
      if (s.st.timers.count(c.timer_id) == 0 || !s.armed.insert(c.timer_id).second) continue;
      const int64_t delay = std::max<int64_t>(0, c.due_ms - now_ms());
      self->delayed_send(self, std::chrono::milliseconds(delay), timer_atom::value, c.timer_id);
      continue;
    }
    auto it = s.st.steps.find(c.path);
    if (s.st.running.count(c.path) == 0 || it == s.st.steps.end() ||
        it->second.attempt != c.attempt || !s.inflight.insert(c.idempotency_key).second) {
      continue;
    }
    auto call = std::make_shared<ToolCall>();
    call->execution_id = s.id;
    call->tenant = s.st.tenant;
    call->path = c.path;
    call->action = c.action;
    call->idempotency_key = c.idempotency_key;
    call->attempt = c.attempt;
    call->parameters = c.parameters;
    call->timeout_ms = c.timeout_ms;
    s.ctx->tool_calls.fetch_add(1, std::memory_order_relaxed);
    // The tenant's tool policy as it is now (the operator may have changed
    // it since the flow was stored): a refused call never reaches the tool,
    // is not retried, and is audited like any call.
    if (s.ctx->registry != nullptr) {
      const std::string why = s.ctx->registry->refuses(s.st.tenant, c.tool_id, c.action);
      if (!why.empty()) {
        ToolResult r = ToolResult::failure("permission_denied", why, false);
        record_tool_call(s.st.tenant, c.tool_id, c.action, false, 0);
        audit_tool_call(self, *call, c.tool_id, r);
        on_tool_result(self, call->path, call->attempt, call->idempotency_key, std::move(r));
        continue;
      }
    }
    if (has_secret_marker(call->parameters)) {
      resolve_then_call(self, c.tool_id, std::move(call));
    } else if (has_concat(call->parameters)) {
      // No secret inside: joining the strings needs no vault read.
      auto joined = resolve_secrets(
          call->parameters,
          [](const std::string&) { return Result<std::optional<std::string>>(std::nullopt); },
          nullptr);
      if (!joined.ok()) {
        ToolResult r =
            ToolResult::failure(joined.status().code(), joined.status().message(), false);
        audit_tool_call(self, *call, c.tool_id, r);
        on_tool_result(self, call->path, call->attempt, call->idempotency_key, std::move(r));
        continue;
      }
      call->parameters = std::move(joined.value());
      call_tool(self, c.tool_id, std::move(call), nullptr);
    } else {
      call_tool(self, c.tool_id, std::move(call), nullptr);
    }
  }
}

void finish(Self* self) {
  auto& s = self->state;
  s.done = true;
  // Calls of tenant tools still in flight (the execution was cancelled, or
  // failed elsewhere) are asked to stop: their results would be dropped.
  // Tool::cancel only sets a flag; never blocks this thread.
  if (!s.inflight_tool.empty()) {
    std::shared_lock lock(s.ctx->tenant_tools_mu);
    for (const auto& [key, tool_id] : s.inflight_tool) {
      auto it = s.ctx->tenant_tool_objects.find(tenant_tool_key(s.st.tenant, tool_id));
      if (it != s.ctx->tenant_tool_objects.end()) it->second->cancel(key);
    }
    s.inflight_tool.clear();
  }
  ExecutionResult r{s.id,        to_string(s.st.status), s.st.output, s.st.error, s.st.tenant,
                    s.st.flow_id};
  for (auto& w : s.cancel_waiters) w(Status());
  s.cancel_waiters.clear();
  if (s.finished) s.finished(r);
  if (s.ctx->on_finished) s.ctx->on_finished(r);
  s.ctx->finished.fetch_add(1, std::memory_order_relaxed);
  // One registry lookup per status and thread, then lock-free increments.
  thread_local std::unordered_map<std::string, metrics::Counter*> by_status;
  metrics::Counter*& finished_total = by_status[r.status];
  if (finished_total == nullptr) {
    finished_total =
        &metrics::global().counter("yantra_executions_finished_total",
                                   "Executions that ended, by status", {{"status", r.status}});
  }
  finished_total->inc();
  static metrics::Histogram& duration = metrics::global().histogram(
      "yantra_execution_duration_seconds", "Execution duration from start to end",
      metrics::latency_seconds_buckets());
  duration.observe(static_cast<double>(s.st.ended_ms - s.st.created_ms) / 1000.0);
  self->quit();
}

// Passivation: an execution with nothing in flight that only waits (for a
// signal, an approval or a timer) asks its partition to let it sleep. The
// partition remembers when to wake it (the earliest timer) and wakes it for
// any input; the log holds everything needed to rebuild it. So 100k
// executions waiting for people hold no actor.
constexpr int64_t kMinSleepMs = 2000;

void maybe_sleep(Self* self) {
  auto& s = self->state;
  if (s.asked_to_sleep || s.done || !s.pending.empty() || !s.inflight.empty() || s.started ||
      !s.cancel_waiters.empty() || is_terminal(s.st.status) || !is_idle_waiting(s.st)) {
    return;
  }
  const auto due = next_timer_due_ms(s.st);
  // A timer due soon keeps the actor: sleeping would cost a reload right
  // away, and a timer already due could lose the race against the sleep
  // answer again and again (the actor would never get to fire it).
  if (due && *due - now_ms() < kMinSleepMs) return;
  s.asked_to_sleep = true;
  self->send(s.ctx->partitions[s.partition], idle_atom::value, s.id,
             due ? *due : static_cast<int64_t>(-1));
}

// Feeds an input event and answers `done` once its batch is durable.
void submit_acked(Self* self, v1::Event input, std::function<void(Status)> done) {
  auto& s = self->state;
  const uint64_t batch = s.next_batch;
  submit(self, std::move(input));
  if (s.next_batch == batch) {  // advance() failed: the actor is exiting
    done(Status(Errc::kInternalError, "execution " + s.id + " could not take the input"));
    return;
  }
  s.acks[batch].push_back(std::move(done));
}

void on_persisted(Self* self, PersistAck& ack) {
  auto& s = self->state;
  auto it = s.pending.find(ack.batch);
  if (it == s.pending.end()) return;
  std::vector<Command> cmds = std::move(it->second);
  s.pending.erase(it);
  if (auto waiting = s.acks.find(ack.batch); waiting != s.acks.end()) {
    for (auto& done : waiting->second) done(ack.status);
    s.acks.erase(waiting);
  }
  if (!ack.status.is_ok()) {
    spdlog::error("execution {}: persisting failed: {}", s.id, ack.status.to_string());
    if (s.started) s.started(ack.status);
    s.started = nullptr;
    for (auto& w : s.cancel_waiters) w(ack.status);
    s.cancel_waiters.clear();
    self->quit(caf::make_error(caf::sec::runtime_error, ack.status.to_string()));
    return;
  }
  if (s.started) {
    s.started(s.id);
    s.started = nullptr;
  }
  if (is_terminal(s.st.status)) {
    if (s.pending.empty()) finish(self);
    return;
  }
  launch(self, cmds);
  maybe_sleep(self);
}

Behavior running(Self* self) {
  return {
      [=](persisted_atom, PersistAck& ack) { on_persisted(self, ack); },
      [=](timer_atom, const std::string& id) {
        auto& s = self->state;
        s.armed.erase(id);
        if (s.done || is_terminal(s.st.status)) return;
        auto it = s.st.timers.find(id);
        if (it == s.st.timers.end()) return;
        const int64_t now = now_ms();
        if (now < it->second.due_ms) {  // woke early (clock step): sleep again
          s.armed.insert(id);
          self->delayed_send(self, std::chrono::milliseconds(it->second.due_ms - now),
                             timer_atom::value, id);
          return;
        }
        v1::Event ev = make_event(s.st, now);
        ev.mutable_timer_fired()->set_timer_id(id);
        submit(self, std::move(ev));
      },
      [=](cancel_atom, CancelCommand& cmd) {
        auto& s = self->state;
        if (s.done || is_terminal(s.st.status)) {
          cmd.done(Status(Errc::kConflict, "execution already ended"));
          return;
        }
        v1::Event ev = make_event(s.st, now_ms());
        ev.mutable_execution_cancelled()->set_reason(cmd.reason);
        s.cancel_waiters.push_back(std::move(cmd.done));
        submit(self, std::move(ev));
      },
      [=](signal_atom, SignalCommand& cmd) {
        auto& s = self->state;
        Status ok = s.done ? Status(Errc::kConflict, "execution already ended")
                           : can_accept_signal(s.st, cmd.name);
        if (!ok.is_ok()) return cmd.done(ok);
        submit_acked(self, make_signal_event(s.st, cmd.name, cmd.data, cmd.signal_id, now_ms()),
                     std::move(cmd.done));
      },
      [=](approve_atom, ApprovalCommand& cmd) {
        auto& s = self->state;
        if (s.done || is_terminal(s.st.status)) {
          return cmd.done(Status(Errc::kConflict, "execution already ended"));
        }
        auto target = check_approval(*s.flow, s.st, cmd.step_path, cmd.key_id, cmd.role);
        if (!target.ok()) return cmd.done(target.status());
        submit_acked(self,
                     make_approval_event(s.st, target.value(), cmd.key_id, cmd.role, cmd.approved,
                                         cmd.comment, now_ms()),
                     std::move(cmd.done));
      },
      [=](sleep_atom) {
        auto& s = self->state;
        s.asked_to_sleep = false;
        // An input may have reached us after we asked: then stay.
        if (s.done || !s.pending.empty() || !s.inflight.empty() || s.started ||
            !s.cancel_waiters.empty() || !is_idle_waiting(s.st)) {
          self->send(s.ctx->partitions[s.partition], awake_atom::value, s.id);
          return;
        }
        if (s.finished && s.ctx->keep_finished) s.ctx->keep_finished(s.id, std::move(s.finished));
        s.finished = nullptr;
        self->quit();
      },
      [=](secrets_atom, SecretsResolved& m) {
        if (!m.status.is_ok()) {
          // A missing secret will not appear by retrying the same attempt;
          // the user adds it and retries the execution.
          ToolResult r = ToolResult::failure(m.status.code(), m.status.message(), false);
          audit_tool_call(self, *m.call, m.tool_id, r);
          on_tool_result(self, m.call->path, m.call->attempt, m.call->idempotency_key,
                         std::move(r));
          return;
        }
        call_tool(self, m.tool_id, std::move(m.call), std::move(m.values));
      },
      [=](kill_atom) { self->quit(caf::make_error(caf::sec::runtime_error, "killed for test")); },
      // Leadership lost (partition.cpp): whoever waits is told, nothing is
      // appended (the partition's log already refuses), and the next leader
      // rebuilds the execution from the log. Batches still in the log's
      // queue are the log's to refuse; their acks reach no one.
      [=](release_atom) {
        auto& s = self->state;
        const Status gone = partition_not_led(s.partition, s.id);
        if (s.started) s.started(gone);
        s.started = nullptr;
        for (auto& w : s.cancel_waiters) w(gone);
        s.cancel_waiters.clear();
        for (auto& [batch, dones] : s.acks) {
          for (auto& done : dones) done(gone);
        }
        s.acks.clear();
        s.finished = nullptr;
        self->quit(caf::exit_reason::user_shutdown);
      },
  };
}

void init(Self* self, EngineCtx* ctx, uint32_t partition, std::string id,
          std::shared_ptr<const Flow> flow) {
  auto& s = self->state;
  s.ctx = ctx;
  s.partition = partition;
  s.id = std::move(id);
  s.flow = std::move(flow);
  ctx->active.fetch_add(1, std::memory_order_relaxed);
  self->attach_functor([ctx] { ctx->active.fetch_sub(1, std::memory_order_relaxed); });
}

Behavior fresh_execution(Self* self, EngineCtx* ctx, uint32_t partition, StartCommand cmd) {
  init(self, ctx, partition, cmd.execution_id, cmd.flow);
  auto& s = self->state;
  s.fresh = true;
  s.started = std::move(cmd.started);
  s.finished = std::move(cmd.finished);
  s.delete_key = std::move(cmd.delete_key);
  v1::Event ev = make_event(s.st, now_ms());
  auto& e = *ev.mutable_execution_started();
  e.set_execution_id(cmd.execution_id);
  e.set_tenant(cmd.request.tenant);
  e.set_flow_id(cmd.flow->id);
  e.set_flow_version(cmd.request.flow_version);
  e.set_input_json(dump_canonical(cmd.request.input));
  e.set_timeout_ms(cmd.flow->timeout_ms);
  e.set_idempotency_key(cmd.request.idempotency_key);
  ctx->started.fetch_add(1, std::memory_order_relaxed);
  static metrics::Counter& started =
      metrics::global().counter("yantra_executions_started_total", "Executions started");
  started.inc();
  submit(self, std::move(ev));
  return running(self);
}

Behavior rebuilt_execution(Self* self, EngineCtx* ctx, uint32_t partition, Activation act) {
  init(self, ctx, partition, act.execution_id, act.flow);
  auto& s = self->state;
  if (!act.error.is_ok() || s.flow == nullptr) {
    spdlog::error("execution {}: cannot activate: {}", s.id, act.error.to_string());
    self->quit();
    return Behavior::make_empty_behavior();
  }
  try {
    auto folded = act.base ? fold_from(std::move(*act.base), act.events) : fold(act.events);
    if (!folded.ok()) {
      spdlog::error("execution {}: log does not fold: {}", s.id, folded.status().to_string());
      self->quit();
      return Behavior::make_empty_behavior();
    }
    s.st = std::move(folded.value());
  } catch (const std::exception& e) {
    spdlog::error("execution {}: fold threw: {}", s.id, e.what());
    self->quit();
    return Behavior::make_empty_behavior();
  }
  s.started = std::move(act.started);
  if (act.unsaved) {
    // A fork: its copied history is persisted as the first batch, with the
    // listing row and the link to its parent, then it runs like any other.
    s.fresh = true;
    s.persisted_status.clear();
    ctx->started.fetch_add(1, std::memory_order_relaxed);
    std::vector<Command> cmds;
    std::vector<v1::Event> first = std::move(act.events);
    if (!is_terminal(s.st.status)) {
      auto more = settle(*s.flow, s.st, now_ms(), &cmds);
      if (!more.ok()) {
        if (s.started) s.started(more.status());
        self->quit();
        return Behavior::make_empty_behavior();
      }
      for (auto& ev : more.value()) first.push_back(std::move(ev));
    }
    persist(self, std::move(first), std::move(cmds));
    return running(self);
  }
  s.persisted_status = s.st.display_status();
  if (act.input) {  // a retry: the Resumed event revives a failed execution
    submit(self, std::move(*act.input));
    return running(self);
  }
  if (is_terminal(s.st.status)) {
    s.done = true;
    self->quit();
    return Behavior::make_empty_behavior();
  }
  // The log may end with decisions still to take (a crash between an input
  // and its decisions cannot happen, as both are one batch, but a newer
  // build may decide differently); settle, else resume what is in flight.
  std::vector<Command> cmds;
  auto batch = settle(*s.flow, s.st, now_ms(), &cmds);
  if (!batch.ok()) {
    spdlog::error("execution {}: {}", s.id, batch.status().to_string());
    self->quit();
    return Behavior::make_empty_behavior();
  }
  if (batch.value().empty()) {
    launch(self, cmds);
    maybe_sleep(self);
  } else {
    persist(self, std::move(batch.value()), std::move(cmds));
  }
  return running(self);
}

}  // namespace

execution_actor spawn_execution(caf::actor_system& sys, EngineCtx* ctx, uint32_t partition,
                                StartCommand cmd) {
  return sys.spawn(fresh_execution, ctx, partition, std::move(cmd));
}

execution_actor spawn_execution(caf::actor_system& sys, EngineCtx* ctx, uint32_t partition,
                                Activation act) {
  return sys.spawn(rebuilt_execution, ctx, partition, std::move(act));
}

}  // namespace yantra::detail
