// Engine::Impl wires the node together and owns everything with a lifetime:
// the store, one LogWriter per partition, the I/O pool, the CAF actor system
// and the engine's parts (actors/internal/: flow cache, watchers, run queue,
// idempotent starts, retention, admission, triggers, callbacks), each of
// which says which thread owns it. Shutdown order matters: actors first (so nothing new is
// written), then the I/O pool (its tasks read the store), then the writers
// (which commit what is queued), then the store.
//
// Leadership: each partition has a Slot (led or not, under its own mutex).
// Every command for a partition goes through route(), which sends to its
// supervisor only while it is led, so a release (which flips the slot
// first) is never overtaken by a command that then finds no actor.
// Running executions counted by admission are also tallied per partition
// (Slot::counted), so a release gives back exactly what its executions held;
// a start's failure arriving after its partition was released (an older
// epoch) gives back nothing, the release did.
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <caf/thread_hook.hpp>

#include "actors/admin.hpp"
#include "actors/engine.hpp"
#include "actors/errc.hpp"
#include "actors/http_tool.hpp"
#include "actors/internal/admission.hpp"
#include "actors/internal/callbacks.hpp"
#include "actors/internal/context.hpp"
#include "actors/internal/flow_cache.hpp"
#include "actors/internal/idempotent_starts.hpp"
#include "actors/internal/parts.hpp"
#include "actors/internal/queued_runs.hpp"
#include "actors/internal/retention.hpp"
#include "actors/internal/triggers.hpp"
#include "actors/internal/watchers.hpp"
#include "actors/testing.hpp"
#include "base/thread_name.hpp"
#include "runtime/fork.hpp"
#include "runtime/ids.hpp"
#include "runtime/snapshot.hpp"
#include "runtime/waits.hpp"
#include "storage/audit_log.hpp"
#include "storage/auth_store.hpp"
#include "storage/event_log.hpp"
#include "storage/flow_store.hpp"
#include "storage/log_writer.hpp"
#include "storage/vault.hpp"

namespace yantra {

namespace {

// Names CAF's threads (scheduler workers, the middleman's loop) for top -H
// and perf; CAF 0.17 leaves them unnamed.
class NameThreads final : public caf::thread_hook {
 public:
  explicit NameThreads(const char* name) : name_(name) {}
  void init(caf::actor_system&) override {}
  void thread_started() override { name_this_thread(name_); }
  void thread_terminates() override {}

 private:
  const char* name_;
};

std::string new_execution_id() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^ static_cast<uint64_t>(now_ms())};
  return make_execution_id(now_ms(), rng(), rng());
}

// A fresh execution id in partition p: ids are drawn until one maps there
// (expected `partitions` draws; the bound is never reached in practice).
Result<std::string> new_execution_id_in(uint32_t p, uint32_t partitions) {
  const uint64_t bound = 64ull * partitions + 64;
  for (uint64_t i = 0; i < bound; ++i) {
    std::string id = new_execution_id();
    if (partition_of(id, partitions) == p) return id;
  }
  return Status(Errc::kInternalError, "no execution id for partition " + std::to_string(p) +
                                          " after " + std::to_string(bound) + " draws");
}

std::string count_key(const std::string& tenant, const std::string& flow_id) {
  std::string k = tenant;
  k.push_back('\0');
  k += flow_id;
  return k;
}

// Parsed flow versions kept in memory (FlowCache): beyond this the least
// recently used are parsed again from the store when next started.
constexpr size_t kFlowCacheEntries = 4096;

}  // namespace

struct Engine::Impl {
  EngineOptions options;
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<storage::Vault> vault;  // null without a master key
  std::unique_ptr<storage::AuditLog> audit;
  std::unique_ptr<detail::Admission> admission;
  // Webhook ids, the event index and the scheduler (triggers.hpp). Stopped
  // first at shutdown: the scheduler starts executions.
  std::unique_ptr<detail::Triggers> triggers;
  // Delivers the callback outbox (callbacks.hpp). Stopped before anything
  // else at shutdown, destroyed after the writers (which may notify it).
  std::unique_ptr<detail::CallbackDispatcher> callbacks;
  detail::EngineCtx ctx;
  std::unique_ptr<detail::IoPool> io;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  ToolRegistry registry;
  // Engine::watch_tool_registrations: one handler per kind. Held by
  // shared_ptr so a call runs outside the lock (a handler may add tools).
  std::mutex registration_mu;
  std::map<std::string, std::shared_ptr<Engine::RegistrationHandler>> registration_handlers;
  void notify_registration(const ToolRegistration& r, bool deleted) {
    std::shared_ptr<Engine::RegistrationHandler> h;
    {
      std::lock_guard lock(registration_mu);
      auto it = registration_handlers.find(r.kind);
      if (it != registration_handlers.end()) h = it->second;
    }
    if (h) (*h)(r, deleted);
  }
  std::atomic<bool> ready{false};
  std::atomic<uint32_t> partitions_to_recover{0};
  std::atomic<bool> recovery_pending{false};  // open() led every partition; recover() not yet run
  bool stopped = false;

  // One per partition (see the top of this file).
  struct Slot {
    std::mutex mu;
    std::atomic<bool> led{false};  // written under mu; read without it by leads()
    // Bumped by each release: a start's failure from an older leadership
    // finds its count already given back.
    uint64_t epoch = 0;
    // Running executions of this partition counted by admission, by
    // tenant \0 flow_id.
    std::unordered_map<std::string, int64_t> counted;
    // The partition's audit chains while led (append_audit), one per
    // leadership. Read and replaced under mu; audit_mu serializes stamping
    // and handing the rows to the log, so links reach the log in order
    // without holding mu (the starts' lock) during a store read.
    std::shared_ptr<storage::AuditChainer> chainer;
    std::mutex audit_mu;
  };
  std::unique_ptr<Slot[]> slots;
  std::atomic<uint32_t> led_count{0};
  std::atomic<uint64_t> next_partition{0};  // round-robin of keyless starts
  std::mutex lead_mu;                       // one lead/release at a time; also against shutdown

  // Calls send(supervisor, slot) with p's lock held while p is led (send
  // may count an execution in slot.counted); false when p is not led.
  template <class Fn>
  bool route(uint32_t p, Fn&& send) {
    Slot& s = slots[p];
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.led.load(std::memory_order_relaxed)) return false;
    send(ctx.partitions[p], s);
    return true;
  }
  static void count_locked(Slot& s, const std::string& tenant, const std::string& flow_id) {
    ++s.counted[count_key(tenant, flow_id)];
  }
  static void uncount_locked(Slot& s, const std::string& tenant, const std::string& flow_id) {
    auto it = s.counted.find(count_key(tenant, flow_id));
    if (it != s.counted.end() && --it->second <= 0) s.counted.erase(it);
  }
  // A counted start of p failed: true (and the tally is updated) when its
  // count is still p's to give back, i.e. p was not released since.
  bool forget(uint32_t p, uint64_t epoch, const std::string& tenant, const std::string& flow_id) {
    Slot& s = slots[p];
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.epoch != epoch) return false;
    uncount_locked(s, tenant, flow_id);
    return true;
  }

  bool leads(uint32_t p) const {
    return p < ctx.partition_count && slots[p].led.load(std::memory_order_acquire);
  }

  // A queue row's write through its partition's log (QueuedRuns::AppendFn).
  Status append_queue_write(storage::WriteRequest request, detail::QueuedRuns::DoneFn done) {
    const uint32_t p = request.partition;
    if (p >= ctx.partition_count) return detail::partition_not_led(p, request.execution_id);
    Slot& s = slots[p];
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.led.load(std::memory_order_relaxed)) {
      return detail::partition_not_led(p, request.execution_id);
    }
    ctx.writers[p]->append(std::move(request), std::move(done));
    return Status::ok();
  }

  // A cluster node places every execution of a flow with a concurrency
  // limit or a rate limit in the flow's partition (engine.hpp,
  // EngineOptions::start_elsewhere), whose leader's admission then counts
  // them all.
  std::optional<uint32_t> home_partition(const std::string& tenant, const Flow& flow) const {
    if (options.lead_all_partitions ||
        (flow.max_concurrent_executions == 0 && flow.max_runs_per_minute == 0 &&
         flow.max_runs_per_hour == 0)) {
      return std::nullopt;
    }
    return partition_of_flow(tenant, flow.id, ctx.partition_count);
  }

  // The id of a new execution (see Engine::start in engine.hpp): in `home`
  // when set, else in the idempotency key's partition, else in any led one.
  Result<std::string> choose_execution_id(const std::string& tenant, const std::string& key,
                                          std::optional<uint32_t> home) {
    const uint32_t n = ctx.partition_count;
    if (home) {
      if (!leads(*home)) {
        return Status(ActorsErrc::kPartitionNotLed,
                      "partition " + std::to_string(*home) + " of this flow is not led here");
      }
      return new_execution_id_in(*home, n);
    }
    if (!key.empty()) {
      const uint32_t p = partition_of_key(tenant, key, n);
      if (!leads(p)) {
        return Status(ActorsErrc::kPartitionNotLed, "partition " + std::to_string(p) +
                                                        " of this idempotency key is not led "
                                                        "by this node");
      }
      return new_execution_id_in(p, n);
    }
    const uint32_t led = led_count.load(std::memory_order_acquire);
    if (led == n) return new_execution_id();  // every partition: any id will do
    if (led == 0) return Status(ActorsErrc::kPartitionNotLed, "this node leads no partition");
    const uint64_t first = next_partition.fetch_add(1, std::memory_order_relaxed);
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t p = static_cast<uint32_t>((first + i) % n);
      if (leads(p)) return new_execution_id_in(p, n);
    }
    return Status(ActorsErrc::kPartitionNotLed, "this node leads no partition");
  }

  // Spawns p's supervisor on `log` and marks p led.
  void start_partition(uint32_t p, std::unique_ptr<storage::PartitionLog> log) {
    {
      std::lock_guard<std::mutex> lock(slots[p].mu);
      ctx.writers[p] = std::move(log);
      slots[p].chainer = std::make_shared<storage::AuditChainer>(*store, p);
    }
    detail::partition_actor actor = detail::spawn_partition(*sys, &ctx, p);
    std::lock_guard<std::mutex> lock(slots[p].mu);
    ctx.partitions[p] = std::move(actor);
    slots[p].led.store(true, std::memory_order_release);
    led_count.fetch_add(1, std::memory_order_acq_rel);
  }

  // Recovery of one partition (on the I/O pool): every execution that had
  // not ended is counted and re-activated from its log.
  void recover_partition(uint32_t p) {
    auto ids = store->executions().active(p);
    if (!ids.ok()) {
      spdlog::error("recovery of partition {} failed: {}", p, ids.status().to_string());
      return;
    }
    for (const auto& id : ids.value()) {
      auto sum = store->executions().summary(id);
      route(p, [&](const detail::partition_actor& actor, Slot& s) {
        // Counted before it can end, so its end never precedes its count.
        if (sum.ok() && sum.value().has_value()) {
          count_locked(s, sum.value()->tenant(), sum.value()->flow_id());
          admission->count_running(sum.value()->tenant(), sum.value()->flow_id());
        }
        ctx.recovered.fetch_add(1, std::memory_order_relaxed);
        caf::anon_send(actor, detail::activate_atom::value, id);
      });
    }
  }

  // Parsed flows (actors/internal/flow_cache.hpp; any thread, bounded).
  detail::FlowCache flows{kFlowCacheEntries};
  // Callbacks waiting for executions to end (watchers.hpp; any thread).
  detail::Watchers watchers;
  // Deletes old events of ended executions on a thread of its own
  // (retention.hpp); null when retention is off. Stopped before the store
  // closes.
  std::unique_ptr<detail::Retention> retention;

  // Runs waiting for a slot of their flow (queued_runs.hpp; store threads).
  std::unique_ptr<detail::QueuedRuns> queued;
  // Idempotency keys of starts in flight (idempotent_starts.hpp; any thread).
  std::unique_ptr<detail::IdempotentStarts> idempotent;

  Result<std::pair<uint32_t, std::shared_ptr<const Flow>>> resolve_flow(const std::string& tenant,
                                                                        const std::string& flow_id,
                                                                        uint32_t version) {
    if (auto cached = flows.find(tenant, flow_id, version)) return *cached;
    auto stored = store->flows().get(tenant, flow_id, version);
    if (!stored.ok()) return stored.status();
    if (!stored.value().has_value() || stored.value()->deleted()) {
      return Status(Errc::kNotFound, version == 0 ? "flow '" + flow_id + "' not found"
                                                  : "flow '" + flow_id + "' has no version " +
                                                        std::to_string(version));
    }
    const v1::FlowVersion& fv = *stored.value();
    auto doc = parse_json_text(fv.definition_json());
    if (!doc.ok()) return doc.status();
    auto flow = parse_flow(doc.value(), ParseOptions{registry.list(tenant), true});
    if (!flow.ok()) return flow.status();
    flows.put(tenant, flow_id, fv.version(), flow.value());
    return std::make_pair(fv.version(), flow.value());
  }

  void on_finished(const ExecutionResult& r) {
    notify(r);
    {
      // Its actor is alive (it calls this), so p was not released yet.
      Slot& s = slots[partition_of(r.execution_id, ctx.partition_count)];
      std::lock_guard<std::mutex> lock(s.mu);
      uncount_locked(s, r.tenant, r.flow_id);
    }
    if (admission->finished(r.tenant, r.flow_id)) {
      io->submit(
          [this, tenant = r.tenant, flow_id = r.flow_id] { queued->drain(tenant, flow_id); });
    }
  }

  void notify(const ExecutionResult& r) { watchers.notify(r); }

  // Engine::append_audit: a refusal is returned (done not called), else
  // done is called by the log, or at once for a batch recorded before.
  Status append_audit(uint32_t p, std::vector<storage::AuditEntry> entries,
                      const std::string& sender, uint64_t first_counter,
                      const std::function<void(Status)>& done) {
    auto not_led = [p] {
      return Status(ActorsErrc::kPartitionNotLed,
                    "partition " + std::to_string(p) + " is not led by this node");
    };
    if (p >= ctx.partition_count) return not_led();
    Slot& slot = slots[p];
    std::lock_guard<std::mutex> serial(slot.audit_mu);
    std::shared_ptr<storage::AuditChainer> chainer;
    {
      std::lock_guard<std::mutex> lock(slot.mu);
      if (!slot.led.load(std::memory_order_relaxed)) return not_led();
      chainer = slot.chainer;
    }
    auto rows = chainer->stamp(std::move(entries), sender, first_counter);
    if (!rows.ok()) return rows.status();
    if (rows->empty()) {  // every entry was recorded before (a resend)
      io->submit([done] { done(Status::ok()); });
      return Status::ok();
    }
    storage::WriteRequest request;
    request.partition = p;
    request.audit = std::move(rows.value());
    std::lock_guard<std::mutex> lock(slot.mu);
    // Released between the stamp and now: nothing of these rows is written
    // and the next leadership has a chainer of its own.
    if (!slot.led.load(std::memory_order_relaxed) || slot.chainer != chainer) return not_led();
    ctx.writers[p]->append(std::move(request), [chainer, done](const Status& st) {
      // The heads name links that may never be stored: no more links in
      // this leadership (its successor reads the heads from the log).
      if (!st.is_ok()) chainer->poison();
      done(st);
    });
    return Status::ok();
  }

  void shutdown_actors() {
    std::lock_guard<std::mutex> serial(lead_mu);
    if (stopped) return;
    stopped = true;
    for (auto& p : ctx.partitions) caf::anon_send_exit(p, caf::exit_reason::user_shutdown);
    for (auto& [id, t] : ctx.tools) caf::anon_send_exit(t, caf::exit_reason::user_shutdown);
    {
      std::unique_lock lock(ctx.tenant_tools_mu);
      for (auto& [id, t] : ctx.tenant_tools)
        caf::anon_send_exit(t, caf::exit_reason::user_shutdown);
    }
    sys->await_all_actors_done();
    io.reset();
  }

  ~Impl() {
    if (callbacks) callbacks->stop();
    if (triggers) triggers->stop();
    triggers.reset();
    retention.reset();
    if (sys) shutdown_actors();
    sys.reset();
    ctx.writers.clear();
    callbacks.reset();
    audit.reset();  // flushes what is queued
    vault.reset();
    store.reset();
  }
};

namespace {

// Hands a counted fork or retry to its partition; its count is given back
// if it does not start.
void activate_counted(Engine::Impl* impl, const std::string& tenant, const std::string& flow_id,
                      detail::Activation act, Engine::StartedFn started) {
  const uint32_t p = partition_of(act.execution_id, impl->ctx.partition_count);
  const std::string id = act.execution_id;
  const bool sent =
      impl->route(p, [&](const detail::partition_actor& actor, Engine::Impl::Slot& s) {
        Engine::Impl::count_locked(s, tenant, flow_id);
        act.started = [impl, p, epoch = s.epoch, tenant, flow_id, started](Result<std::string> r) {
          if (!r.ok() && impl->forget(p, epoch, tenant, flow_id)) {
            impl->admission->abandon(tenant, flow_id);
          }
          started(r);
        };
        caf::anon_send(actor, detail::activate_atom::value, std::move(act));
      });
  if (!sent) {
    impl->admission->abandon(tenant, flow_id);
    started(detail::partition_not_led(p, id));
  }
}

}  // namespace

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::open(EngineOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  storage::StoreOptions store_options{options.data_dir, options.durability == Durability::kAsync
                                                            ? storage::Durability::kAsync
                                                            : storage::Durability::kSync};
  store_options.accept_data_loss = options.accept_data_loss;
  store_options.file_system = options.file_system;
  store_options.min_free_disk_bytes = options.min_free_disk_bytes;
  auto store = storage::Store::open(store_options);
  if (!store.ok()) return store.status();
  impl->store = std::move(store.value());
  for (const auto& line : impl->store->data_loss()) {
    spdlog::critical("storage: DATA LOST, accepted by accept_data_loss: {}", line);
  }
  if (!options.master_key.empty()) {
    auto vault = storage::Vault::open(*impl->store, options.master_key);
    if (!vault.ok()) return vault.status();
    impl->vault = std::move(vault.value());
  }
  auto audit = storage::AuditLog::open(*impl->store);
  if (!audit.ok()) return audit.status();
  impl->audit = std::move(audit.value());
  // A cluster node admits its share of a tenant's concurrency limit: the
  // fraction of partitions it leads (admission.hpp).
  detail::Admission::ShareFn share;
  if (!options.lead_all_partitions) {
    share = [raw = impl.get()] {
      return static_cast<double>(raw->led_count.load(std::memory_order_acquire)) /
             static_cast<double>(std::max<uint32_t>(1, raw->ctx.partition_count));
    };
  }
  impl->admission =
      std::make_unique<detail::Admission>(impl->store->auth(), impl->store->executions(), share);
  const uint32_t parts = std::max<uint32_t>(1, options.partitions);

  auto& ctx = impl->ctx;
  ctx.store = impl->store.get();
  ctx.partition_count = parts;
  ctx.snapshot_every = options.snapshot_every;
  ctx.vault = impl->vault.get();
  ctx.audit = impl->audit.get();
  if (!options.lead_all_partitions) {
    // A cluster node: an execution's audit records chain in its partition.
    ctx.audit_partition = [raw = impl.get()](uint32_t p, storage::AuditEntry e) {
      raw->io->submit([raw, p, e = std::move(e)]() mutable {
        std::vector<storage::AuditEntry> one;
        one.push_back(std::move(e));
        Status refused = raw->append_audit(p, std::move(one), "", 0, [p](const Status& st) {
          if (!st.is_ok())
            spdlog::warn("audit record of partition {} not written: {}", p, st.to_string());
        });
        // Released meanwhile: the tool call is dispatched again by the new
        // leader (at-least-once), which records it then.
        if (!refused.is_ok())
          spdlog::debug("audit record of partition {} not written: {}", p, refused.to_string());
      });
    };
  }
  impl->slots = std::make_unique<Impl::Slot[]>(parts);
  ctx.writers.resize(parts);
  ctx.partitions.resize(parts);
  // A single node: each partition's log, from the composition root's
  // factory (default: a local LogWriter per partition). A cluster node
  // gets each led partition's log in lead_partition().
  std::vector<std::unique_ptr<storage::PartitionLog>> logs_at_open;
  if (options.lead_all_partitions) {
    std::shared_ptr<storage::PartitionLogFactory> logs = options.partition_logs;
    if (!logs) logs = std::make_shared<storage::LocalPartitionLogs>();
    for (uint32_t p = 0; p < parts; ++p) {
      auto log = logs->open(*impl->store, p);
      if (!log.ok()) return log.status();
      logs_at_open.push_back(std::move(log.value()));
    }
  }
  impl->io = std::make_unique<detail::IoPool>(options.io_threads);
  ctx.io = impl->io.get();
  Impl* raw = impl.get();
  ctx.load_flow = [raw](const std::string& tenant, const std::string& flow_id,
                        uint32_t version) -> Result<std::shared_ptr<const Flow>> {
    auto r = raw->resolve_flow(tenant, flow_id, version);
    if (!r.ok()) return r.status();
    return r.value().second;
  };
  ctx.on_finished = [raw](const ExecutionResult& r) { raw->on_finished(r); };
  ctx.keep_finished = [raw](const std::string& id, Engine::FinishedFn fn) {
    raw->watchers.add(id, [fn](Result<ExecutionResult> r) {
      if (r.ok()) fn(r.value());
    });
  };

  impl->cfg = std::make_unique<caf::actor_system_config>();
  size_t threads = options.scheduler_threads;
  if (threads == 0) threads = std::max<size_t>(2, std::thread::hardware_concurrency());
  impl->cfg->set("scheduler.max-threads", threads);
  // One shared queue beat work stealing here (engine_3step on 2 cores: ~37k
  // vs ~36k executions/s, p99 ~78 vs ~90 ms): execution actors hop between
  // threads constantly and stealing mostly adds wake-ups.
  impl->cfg->set("scheduler.policy", options.scheduler_policy == "stealing" ? caf::atom("stealing")
                                                                            : caf::atom("sharing"));
  impl->cfg->set("logger.console", caf::atom("none"));
  impl->cfg->add_thread_hook<NameThreads>("y-caf");
  impl->sys = std::make_unique<caf::actor_system>(*impl->cfg);

  impl->registry.add_builtin(detail::core_tool_spec());
  ctx.tools.emplace("core",
                    detail::spawn_core_tool(*impl->sys, options.core_tool_concurrency, &ctx));
  for (auto& tool : options.tools) {
    ToolSpec spec = tool->spec();
    ctx.tools[spec.id] = detail::spawn_tool_pool(*impl->sys, tool);
    impl->registry.add_builtin(std::move(spec));
  }
  ctx.registry = &impl->registry;
  for (const auto& spec : impl->registry.builtins()) {
    for (const auto& action : spec.actions) {
      if (!action.side_effects) ctx.pure_actions.insert(spec.id + "." + action.name);
    }
  }
  // The tenants' tool policies, before any execution can call a tool.
  if (auto tenants = impl->store->auth().list_tenants(); tenants.ok()) {
    for (const auto& t : tenants.value()) impl->registry.set_policy(t.id(), tool_policy_of(t));
  } else {
    return tenants.status();
  }
  // The callback dispatcher exists before any actor can commit a batch
  // (writers notify it); it starts sending once recovery has begun.
  std::shared_ptr<Tool> http;
  for (auto& tool : options.tools) {
    if (tool->spec().id == "http") http = tool;  // shares its pool and CA settings
  }
  detail::CallbackOptions callback_options;
  callback_options.workers = options.callback_workers;
  callback_options.initial_backoff_ms = options.callback_initial_backoff_ms;
  callback_options.max_age_ms = options.callback_max_age_ms;
  if (!options.lead_all_partitions) {
    // Only the led partitions' callbacks: the others' leaders deliver them.
    callback_options.delivers = [raw](const std::string& execution_id) {
      return raw->leads(partition_of(execution_id, raw->ctx.partition_count));
    };
  }
  impl->callbacks = std::make_unique<detail::CallbackDispatcher>(
      *impl->store, impl->vault.get(), http ? http : make_http_tool(), callback_options);
  ctx.outbox_written = [raw] { raw->callbacks->notify(); };
  for (uint32_t p = 0; p < logs_at_open.size(); ++p) {
    impl->start_partition(p, std::move(logs_at_open[p]));
  }
  impl->idempotent = std::make_unique<detail::IdempotentStarts>(impl->store->executions());
  impl->queued = std::make_unique<detail::QueuedRuns>(
      impl->store->run_queue(), *impl->admission, parts,
      [raw](const std::string& tenant, const std::string& flow_id, uint32_t version) {
        return raw->resolve_flow(tenant, flow_id, version);
      },
      [raw](detail::StartCommand cmd) {
        // Counted as running by the dequeue (admission); tallied for p here.
        const uint32_t p = partition_of(cmd.execution_id, raw->ctx.partition_count);
        Engine::StartedFn give_back = cmd.started;  // abandons its slot
        const bool sent = raw->route(p, [&](const detail::partition_actor& actor, Impl::Slot& s) {
          Impl::count_locked(s, cmd.request.tenant, cmd.request.flow_id);
          cmd.started = [raw, p, epoch = s.epoch, tenant = cmd.request.tenant,
                         flow_id = cmd.request.flow_id, give_back](Result<std::string> r) {
            if (!r.ok() && !raw->forget(p, epoch, tenant, flow_id)) return;  // released
            if (give_back) give_back(r);
          };
          caf::anon_send(actor, detail::start_atom::value, std::move(cmd));
        });
        if (!sent && give_back) give_back(detail::partition_not_led(p, cmd.execution_id));
      },
      [raw](const ExecutionResult& r) { raw->notify(r); },
      [raw](storage::WriteRequest request, detail::QueuedRuns::DoneFn done) {
        return raw->append_queue_write(std::move(request), std::move(done));
      },
      [raw](uint32_t p) { return raw->leads(p); });

  if (options.lead_all_partitions) impl->recovery_pending = true;
  raw->callbacks->start();
  if (options.retention_ms > 0 && options.retention_interval_ms > 0) {
    raw->retention = std::make_unique<detail::Retention>(raw->store->events(), options.retention_ms,
                                                         options.retention_interval_ms);
  }
  raw->triggers = std::make_unique<detail::Triggers>(*raw->store, options.clock);
  Status triggers =
      raw->triggers->load([raw](const std::string& tenant,
                                const std::string& flow_id) -> Result<std::shared_ptr<const Flow>> {
        auto r = raw->resolve_flow(tenant, flow_id, 0);
        if (!r.ok()) return r.status();
        return r.value().second;
      });
  if (!triggers.is_ok()) return triggers;
  auto engine = std::unique_ptr<Engine>(new Engine(std::move(impl)));
  Engine* self = engine.get();
  raw->triggers->start(
      [self](RunRequest run, StartedFn started) {
        self->start(std::move(run), std::move(started));
      },
      options.claim_schedule_slot);
  raw->ctx.emit_event = [raw](const std::string& tenant, const std::string& name, const json& data,
                              std::function<void(json)> done) {
    raw->triggers->emit(tenant, name, data, [done](std::vector<EventStart> starts) {
      json out = {{"executions", json::array()}, {"errors", json::array()}};
      for (const auto& s : starts) {
        if (s.error.is_ok()) {
          out["executions"].push_back({{"flow_id", s.flow_id},
                                       {"execution_id", s.execution_id},
                                       {"status", s.queued ? "queued" : "running"}});
        } else {
          out["errors"].push_back(
              {{"flow_id", s.flow_id},
               {"error", {{"code", s.error.code()}, {"message", s.error.message()}}}});
        }
      }
      done(std::move(out));
    });
  };
  if (!options.lead_all_partitions) raw->ready = true;  // reads are served; writes as led
  if (!options.defer_recovery) engine->recover();
  return engine;
}

// Recovery: every execution that had not ended is re-activated from its log.
// Listing happens on the I/O pool; ready() turns true when every partition
// has handed its executions over. A cluster node recovers each partition
// when it is given to it (lead_partition), not here.
void Engine::recover() {
  Impl* raw = impl_.get();
  if (!raw->recovery_pending.exchange(false)) return;
  const uint32_t parts = raw->ctx.partition_count;
  raw->partitions_to_recover = parts;
  for (uint32_t p = 0; p < parts; ++p) {
    raw->ctx.io->submit([raw, p] {
      raw->recover_partition(p);
      if (raw->partitions_to_recover.fetch_sub(1) == 1) {
        raw->queued->recover();
        raw->ready = true;
      }
    });
  }
}

Result<uint32_t> Engine::put_flow(const std::string& tenant, const json& definition,
                                  const std::string& created_by, const std::string& note) {
  auto flow = parse_flow(definition, ParseOptions{impl_->registry.list(tenant)});
  if (!flow.ok()) return flow.status();
  v1::FlowVersion fv;
  fv.set_tenant(tenant);
  fv.set_flow_id(flow.value()->id);
  fv.set_definition_json(dump_canonical(definition));
  fv.set_created_ms(now_ms());
  fv.set_created_by(created_by);
  fv.set_note(note);
  auto version = impl_->store->flows().put(std::move(fv));
  if (!version.ok()) return version.status();
  impl_->flows.put(tenant, flow.value()->id, version.value(), flow.value());
  Status triggered = impl_->triggers->on_stored(tenant, version.value(), flow.value());
  if (!triggered.is_ok()) return triggered;
  return version.value();
}

Result<std::shared_ptr<const Flow>> Engine::get_flow(const std::string& tenant,
                                                     const std::string& flow_id, uint32_t version) {
  auto r = impl_->resolve_flow(tenant, flow_id, version);
  if (!r.ok()) return r.status();
  return r.value().second;
}

std::optional<uint32_t> Engine::home_partition(const std::string& tenant,
                                               const std::string& flow_id) {
  auto r = impl_->resolve_flow(tenant, flow_id, 0);
  if (!r.ok()) return std::nullopt;
  return impl_->home_partition(tenant, *r.value().second);
}

std::vector<ToolSpec> Engine::tool_specs() const {
  return impl_->registry.builtins();
}

std::vector<ToolSpec> Engine::tool_specs(const std::string& tenant) const {
  return impl_->registry.list(tenant);
}

const ToolRegistry& Engine::tools() const {
  return impl_->registry;
}

Status Engine::add_tool(const std::string& tenant, std::shared_ptr<Tool> tool) {
  ToolSpec spec = tool->spec();
  const std::string id = spec.id;
  if (Status s = impl_->registry.add(tenant, std::move(spec)); !s.is_ok()) return s;
  auto actor = detail::spawn_tool_pool(*impl_->sys, std::move(tool));
  std::optional<detail::tool_actor> old;
  {
    std::unique_lock lock(impl_->ctx.tenant_tools_mu);
    auto& slot = impl_->ctx.tenant_tools[detail::tenant_tool_key(tenant, id)];
    if (slot) old = slot;
    slot = actor;
  }
  // A replaced tool's pool finishes its queued calls' threads and exits.
  if (old) caf::anon_send_exit(*old, caf::exit_reason::user_shutdown);
  return Status::ok();
}

Status Engine::remove_tool(const std::string& tenant, const std::string& id) {
  if (!impl_->registry.remove(tenant, id)) {
    return Status(Errc::kNotFound, "tenant '" + tenant + "' has no tool '" + id + "'");
  }
  std::optional<detail::tool_actor> old;
  {
    std::unique_lock lock(impl_->ctx.tenant_tools_mu);
    auto it = impl_->ctx.tenant_tools.find(detail::tenant_tool_key(tenant, id));
    if (it != impl_->ctx.tenant_tools.end()) {
      old = it->second;
      impl_->ctx.tenant_tools.erase(it);
    }
  }
  if (old) caf::anon_send_exit(*old, caf::exit_reason::user_shutdown);
  return Status::ok();
}

Status Engine::put_tool_registration(const ToolRegistration& registration) {
  if (Status s = impl_->store->auth().put_tool_registration(to_proto(registration)); !s.is_ok()) {
    return s;
  }
  impl_->notify_registration(registration, /*deleted=*/false);
  return Status::ok();
}

Status Engine::delete_tool_registration(const std::string& tenant, const std::string& kind,
                                        const std::string& id) {
  if (Status s = impl_->store->auth().delete_tool_registration(tenant, kind, id); !s.is_ok()) {
    return s;
  }
  ToolRegistration gone;
  gone.tenant = tenant;
  gone.kind = kind;
  gone.id = id;
  gone.definition = nullptr;
  impl_->notify_registration(gone, /*deleted=*/true);
  return Status::ok();
}

namespace {
Result<std::vector<ToolRegistration>> from_protos(Result<std::vector<v1::ToolRegistration>> rows) {
  if (!rows.ok()) return rows.status();
  std::vector<ToolRegistration> out;
  out.reserve(rows.value().size());
  for (const auto& p : rows.value()) out.push_back(from_proto(p));
  return out;
}
}  // namespace

Result<std::vector<ToolRegistration>> Engine::tool_registrations(const std::string& tenant,
                                                                 const std::string& kind) const {
  return from_protos(impl_->store->auth().list_tool_registrations(tenant, kind));
}

Result<std::vector<ToolRegistration>> Engine::all_tool_registrations(
    const std::string& kind) const {
  return from_protos(impl_->store->auth().all_tool_registrations(kind));
}

Result<std::optional<ToolRegistration>> Engine::tool_registration(const std::string& tenant,
                                                                  const std::string& kind,
                                                                  const std::string& id) const {
  auto row = impl_->store->auth().get_tool_registration(tenant, kind, id);
  if (!row.ok()) return row.status();
  if (!row.value()) return std::optional<ToolRegistration>();
  return std::optional<ToolRegistration>(from_proto(*row.value()));
}

void Engine::watch_tool_registrations(const std::string& kind, RegistrationHandler handler) {
  auto shared = std::make_shared<RegistrationHandler>(std::move(handler));
  {
    std::lock_guard lock(impl_->registration_mu);
    impl_->registration_handlers[kind] = shared;
  }
  auto rows = all_tool_registrations(kind);
  if (!rows.ok()) {
    spdlog::error("tool registrations of kind {} could not be read: {}", kind,
                  rows.status().message());
    return;
  }
  for (const auto& r : rows.value()) (*shared)(r, false);
}

void Engine::start(RunRequest request, StartedFn started, FinishedFn finished) {
  if (impl_->stopped) {
    if (started) started(Status(Errc::kUnavailable, "engine is shutting down"));
    return;
  }
  // An idempotency key names at most one execution per tenant
  // (idempotent_starts.hpp). A repeated request learns the id like the
  // first and, if it asked, the outcome too: watching needs a store read, so
  // it runs on the I/O pool.
  Impl* impl = impl_.get();
  const std::string tenant = request.tenant;
  const std::string key = request.idempotency_key;
  if (!key.empty()) {
    Engine* self = this;
    StartedFn repeat = [impl, self, started, finished](Result<std::string> r) {
      if (started) started(r);
      if (!r.ok() || !finished) return;
      impl->io->submit([self, id = r.value(), finished] {
        self->watch(id, [finished](Result<ExecutionResult> er) {
          if (er.ok()) finished(er.value());
        });
      });
    };
    std::string existing;
    auto claim = impl_->idempotent->claim(tenant, key, repeat, &existing);
    if (!claim.ok()) {
      if (started) started(claim.status());
      return;
    }
    if (claim.value() == detail::IdempotentStarts::Claim::kJoined) return;
    if (claim.value() == detail::IdempotentStarts::Claim::kExisting) {
      repeat(existing);
      return;
    }
  }
  // Answers the caller and everyone who asked with the same idempotency key.
  auto answer_all = [impl, tenant, key](const StartedFn& first, const Result<std::string>& r) {
    if (key.empty()) {
      if (first) first(r);
      return;
    }
    impl->idempotent->finish(tenant, key, first, r);
  };
  auto flow = impl_->resolve_flow(request.tenant, request.flow_id, request.flow_version);
  if (!flow.ok()) return answer_all(started, flow.status());
  request.flow_version = flow.value().first;
  if (flow.value().second->status == "paused") {
    return answer_all(started, Status(Errc::kConflict, "flow '" + request.flow_id + "' is paused"));
  }
  // Its id, hence its partition: the flow's home in a cluster when it has a
  // concurrency limit, else one this node leads.
  const std::optional<uint32_t> home = impl_->home_partition(tenant, *flow.value().second);
  if (home && !impl_->leads(*home) && !request.forwarded && impl_->options.start_elsewhere) {
    // Its leader runs it, idempotency key and all (this node's claim above
    // only kept a concurrent twin from racing it here).
    request.forwarded = true;
    return impl_->options.start_elsewhere(
        *home, std::move(request),
        [answer_all, started](Result<std::string> r) { answer_all(started, r); });
  }
  auto chosen = impl_->choose_execution_id(tenant, key, home);
  if (!chosen.ok()) return answer_all(started, chosen.status());
  const std::string execution_id = std::move(chosen.value());
  auto verdict = impl_->admission->admit(request.tenant, *flow.value().second, now_ms());
  if (!verdict.ok()) return answer_all(started, verdict.status());
  if (verdict.value() == detail::Admission::Verdict::kQueue) {
    auto queued_flag = request.queued;
    Engine* self = this;
    impl_->queued->enqueue(
        execution_id, request,
        [impl, self, execution_id, queued_flag, answer_all, started, finished,
         tenant = request.tenant, flow_id = request.flow_id](const Status& queued) {
          // On a log thread: nothing here blocks; the store reads go to the
          // I/O pool.
          if (queued.is_ok() && queued_flag) queued_flag->store(true);
          answer_all(started, queued.is_ok() ? Result<std::string>(execution_id) : queued);
          if (!queued.is_ok()) return;
          // A slot may have freed while the row was being written.
          impl->io->submit([impl, self, execution_id, tenant, flow_id, finished] {
            impl->queued->drain(tenant, flow_id);
            if (!finished) return;
            self->watch(execution_id, [finished](Result<ExecutionResult> r) {
              if (r.ok()) finished(r.value());
            });
          });
        });
    return;
  }
  detail::StartCommand cmd;
  cmd.execution_id = execution_id;
  cmd.flow = flow.value().second;
  const std::string flow_id = request.flow_id;
  cmd.request = std::move(request);
  cmd.finished = std::move(finished);
  const uint32_t p = partition_of(execution_id, impl_->ctx.partition_count);
  const bool sent = impl_->route(p, [&](const detail::partition_actor& actor, Impl::Slot& s) {
    Impl::count_locked(s, tenant, flow_id);
    cmd.started = [impl, p, epoch = s.epoch, answer_all, started, tenant,
                   flow_id](Result<std::string> r) {
      if (!r.ok() && impl->forget(p, epoch, tenant, flow_id)) {
        impl->admission->abandon(tenant, flow_id);
      }
      answer_all(started, r);
    };
    caf::anon_send(actor, detail::start_atom::value, std::move(cmd));
  });
  if (!sent) {  // released since the id was chosen
    impl_->admission->abandon(tenant, flow_id);
    answer_all(started, detail::partition_not_led(p, execution_id));
  }
}

Result<std::string> Engine::start_sync(RunRequest request) {
  auto promise = std::make_shared<std::promise<Result<std::string>>>();
  auto future = promise->get_future();
  start(std::move(request), [promise](Result<std::string> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    return Status(Errc::kTimeout, "start was not acknowledged within 30 s");
  }
  return future.get();
}

uint64_t Engine::watch(const std::string& execution_id, WatchFn done) {
  const uint64_t token = impl_->watchers.add(execution_id, std::move(done));
  // Registered first, then checked: an execution finishing in between is
  // seen either by the watcher or by the store (its summary is written in
  // the same batch as its last event, before anyone is notified).
  Result<ExecutionResult> now = Status(ActorsErrc::kRunning, "");
  auto summary = impl_->store->executions().summary(execution_id);
  if (!summary.ok()) {
    now = summary.status();
  } else if (!summary.value().has_value()) {
    now = Status(Errc::kNotFound, "execution " + execution_id + " not found");
  } else if (storage::is_terminal_status(summary.value()->status())) {
    auto st = load_state(execution_id);
    if (st.ok()) {
      now = ExecutionResult{execution_id,      to_string(st.value().status),
                            st.value().output, st.value().error,
                            st.value().tenant, st.value().flow_id};
    } else if (summary.value()->status() == "cancelled" && summary.value()->last_seq() == 0) {
      // Cancelled while queued: it never had events.
      now = ExecutionResult{execution_id,
                            "cancelled",
                            nullptr,
                            json{{"code", "cancelled"}, {"message", "cancelled while queued"}},
                            summary.value()->tenant(),
                            summary.value()->flow_id()};
    } else {
      now = st.status();
    }
  }
  if (!now.ok() && now.status().is(ActorsErrc::kRunning)) return token;
  if (WatchFn fn = impl_->watchers.take(execution_id, token)) fn(std::move(now));
  return token;
}

void Engine::unwatch(const std::string& execution_id, uint64_t token) {
  impl_->watchers.take(execution_id, token);
}

Result<ExecutionResult> Engine::wait(const std::string& execution_id,
                                     std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Result<ExecutionResult>>>();
  auto future = promise->get_future();
  const uint64_t token = watch(
      execution_id, [promise](Result<ExecutionResult> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(timeout) != std::future_status::ready) {
    if (impl_->watchers.take(execution_id, token)) {
      return Status(Errc::kTimeout, "execution " + execution_id + " still running");
    }
  }
  return future.get();
}

void Engine::cancel_async(const std::string& execution_id, const std::string& reason,
                          std::function<void(Status)> done) {
  if (!is_valid_execution_id(execution_id)) {
    done(Status(Errc::kNotFound, "execution " + execution_id + " not found"));
    return;
  }
  const uint32_t p = partition_of(execution_id, impl_->ctx.partition_count);
  if (!impl_->leads(p)) {
    done(detail::partition_not_led(p, execution_id));
    return;
  }
  auto summary = impl_->store->executions().summary(execution_id);
  if (!summary.ok()) {
    done(summary.status());
    return;
  }
  if (!summary.value().has_value()) {
    done(Status(Errc::kNotFound, "execution " + execution_id + " not found"));
    return;
  }
  if (storage::is_terminal_status(summary.value()->status())) {
    done(Status(Errc::kConflict, "execution " + execution_id + " already ended (" +
                                     summary.value()->status() + ")"));
    return;
  }
  if (summary.value()->status() == "queued") {
    impl_->queued->cancel(*summary.value(), reason,
                          [done = std::move(done)](const Status& s) { done(s); });
    return;
  }
  detail::CancelCommand cmd{execution_id, reason, std::move(done)};
  if (!impl_->route(p, [&](const detail::partition_actor& actor, Impl::Slot&) {
        caf::anon_send(actor, detail::cancel_atom::value, std::move(cmd));
      })) {
    cmd.done(detail::partition_not_led(p, execution_id));
  }
}

Status Engine::cancel(const std::string& execution_id, const std::string& reason) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  cancel_async(execution_id, reason, [promise](Status s) { promise->set_value(std::move(s)); });
  if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    return Status(Errc::kTimeout, "cancel was not acknowledged within 10 s");
  }
  return future.get();
}

Result<std::vector<v1::FlowVersion>> Engine::list_flows(const std::string& tenant) const {
  return impl_->store->flows().list(tenant);
}

Result<v1::FlowVersion> Engine::get_flow_version(const std::string& tenant,
                                                 const std::string& flow_id,
                                                 uint32_t version) const {
  auto fv = impl_->store->flows().get(tenant, flow_id, version);
  if (!fv.ok()) return fv.status();
  if (!fv.value().has_value() || (version == 0 && fv.value()->deleted())) {
    return Status(Errc::kNotFound, version == 0 ? "flow '" + flow_id + "' not found"
                                                : "flow '" + flow_id + "' has no version " +
                                                      std::to_string(version));
  }
  return std::move(*fv.value());
}

Result<std::vector<v1::FlowVersion>> Engine::flow_versions(const std::string& tenant,
                                                           const std::string& flow_id) const {
  return impl_->store->flows().versions(tenant, flow_id);
}

Result<uint32_t> Engine::delete_flow(const std::string& tenant, const std::string& flow_id,
                                     const std::string& deleted_by) {
  auto current = get_flow_version(tenant, flow_id, 0);
  if (!current.ok()) return current.status();
  v1::FlowVersion tomb;
  tomb.set_tenant(tenant);
  tomb.set_flow_id(flow_id);
  tomb.set_created_ms(now_ms());
  tomb.set_created_by(deleted_by);
  tomb.set_deleted(true);
  auto version = impl_->store->flows().put(std::move(tomb));
  if (!version.ok()) return version.status();
  impl_->flows.forget_latest(tenant, flow_id);
  impl_->triggers->on_deleted(tenant, flow_id, version.value());
  return version.value();
}

Status Engine::install_flow_version(const v1::FlowVersion& fv) {
  if (fv.deleted()) {
    if (Status s = impl_->store->flows().put_version(fv); !s.is_ok()) return s;
    impl_->flows.forget_latest(fv.tenant(), fv.flow_id());
    impl_->triggers->on_deleted(fv.tenant(), fv.flow_id(), fv.version());
    return Status::ok();
  }
  json doc = json::parse(fv.definition_json(), nullptr, false);
  auto flow = doc.is_discarded()
                  ? Result<std::shared_ptr<const Flow>>(
                        Status(Errc::kInvalidArgument, "the definition is not JSON"))
                  : parse_flow(doc, ParseOptions{impl_->registry.list(fv.tenant()), true});
  if (Status s = impl_->store->flows().put_version(fv); !s.is_ok()) return s;
  if (!flow.ok()) return flow.status();
  impl_->flows.put(fv.tenant(), fv.flow_id(), fv.version(), flow.value());
  return impl_->triggers->on_stored(fv.tenant(), fv.version(), flow.value());
}

Result<ExecutionPage> Engine::list_executions(const std::string& tenant, const std::string& flow_id,
                                              const std::string& status, size_t limit,
                                              const std::string& cursor) const {
  auto page = impl_->store->executions().list(tenant, flow_id, status, limit, cursor);
  if (!page.ok()) return page.status();
  return ExecutionPage{std::move(page.value().items), std::move(page.value().next_cursor)};
}

Result<ExecutionPage> Engine::list_executions(const std::string& tenant, const std::string& flow_id,
                                              const std::string& status, size_t limit,
                                              const std::string& cursor,
                                              const std::vector<uint32_t>& partitions) const {
  const uint32_t count = impl_->ctx.partition_count;
  std::vector<bool> wanted(count, false);
  for (uint32_t p : partitions) {
    if (p >= count) {
      return Status(Errc::kInvalidArgument, "partition " + std::to_string(p) + " out of range");
    }
    wanted[p] = true;
  }
  auto page = impl_->store->executions().list(
      tenant, flow_id, status, limit, cursor,
      [&wanted, count](std::string_view id) { return wanted[partition_of(id, count)]; });
  if (!page.ok()) return page.status();
  return ExecutionPage{std::move(page.value().items), std::move(page.value().next_cursor)};
}

Result<v1::ExecutionSummary> Engine::summary(const std::string& tenant,
                                             const std::string& execution_id) const {
  Status missing(Errc::kNotFound, "execution " + execution_id + " not found");
  if (!is_valid_execution_id(execution_id)) return missing;
  auto s = impl_->store->executions().summary(execution_id);
  if (!s.ok()) return s.status();
  if (!s.value().has_value() || s.value()->tenant() != tenant) return missing;
  return std::move(*s.value());
}

void Engine::fork(const std::string& tenant, const std::string& source_id, uint64_t at_seq,
                  const json& patch, StartedFn started) {
  auto source = summary(tenant, source_id);
  if (!source.ok()) return started(source.status());
  auto events = load_events(source_id);
  if (!events.ok()) return started(events.status());
  const uint64_t last = events.value().empty() ? 0 : events.value().back().seq();
  auto flow = impl_->resolve_flow(tenant, source.value().flow_id(), source.value().flow_version());
  if (!flow.ok()) return started(flow.status());
  // A fork of a limited flow lives in the flow's home like its source (the
  // fork request reached the source's leader, normally the home's).
  auto chosen =
      impl_->choose_execution_id(tenant, "", impl_->home_partition(tenant, *flow.value().second));
  if (!chosen.ok()) return started(chosen.status());
  const std::string id = std::move(chosen.value());
  auto forked = make_fork(events.value(), at_seq == 0 ? last : at_seq, patch, id, now_ms());
  if (!forked.ok()) return started(forked.status());
  detail::Activation act;
  act.execution_id = id;
  act.events = std::move(forked.value());
  act.flow = flow.value().second;
  act.unsaved = true;
  // A fork is a new execution: the tenant's limits apply to it.
  Status admitted = impl_->admission->admit_extra(tenant, source.value().flow_id(), true, now_ms());
  if (!admitted.is_ok()) return started(admitted);
  activate_counted(impl_.get(), tenant, source.value().flow_id(), std::move(act),
                   std::move(started));
}

void Engine::retry(const std::string& tenant, const std::string& execution_id, StartedFn started) {
  if (is_valid_execution_id(execution_id)) {
    const uint32_t p = partition_of(execution_id, impl_->ctx.partition_count);
    if (!impl_->leads(p)) return started(detail::partition_not_led(p, execution_id));
  }
  auto source = summary(tenant, execution_id);
  if (!source.ok()) return started(source.status());
  if (source.value().status() != "failed" && source.value().status() != "timed_out") {
    return started(
        Status(Errc::kConflict, "only a failed or timed-out execution can be retried (it is " +
                                    source.value().status() + ")"));
  }
  auto events = load_events(execution_id);
  if (!events.ok()) return started(events.status());
  auto st = fold(events.value());
  if (!st.ok()) return started(st.status());
  auto resumed = make_resume(st.value(), now_ms());
  if (!resumed.ok()) return started(resumed.status());
  auto flow = impl_->resolve_flow(tenant, source.value().flow_id(), source.value().flow_version());
  if (!flow.ok()) return started(flow.status());
  detail::Activation act;
  act.execution_id = execution_id;
  act.events = std::move(events.value());
  act.flow = flow.value().second;
  act.input = std::move(resumed.value());
  Status admitted =
      impl_->admission->admit_extra(tenant, source.value().flow_id(), false, now_ms());
  if (!admitted.is_ok()) return started(admitted);
  activate_counted(impl_.get(), tenant, source.value().flow_id(), std::move(act),
                   std::move(started));
}

Result<std::vector<std::string>> Engine::forks(const std::string& execution_id) const {
  return impl_->store->executions().forks(execution_id);
}

Status Engine::put_api_key(const std::string& hash, const v1::ApiKey& key) {
  return impl_->store->auth().put_api_key(hash, key);
}

Result<std::optional<v1::ApiKey>> Engine::find_api_key(const std::string& hash) const {
  return impl_->store->auth().find_api_key(hash);
}

Result<size_t> Engine::count_api_keys(const std::string& tenant) const {
  return impl_->store->auth().count_api_keys(tenant);
}

Result<std::vector<v1::Event>> Engine::load_events(const std::string& execution_id,
                                                   uint64_t from_seq, uint64_t to_seq) const {
  if (!is_valid_execution_id(execution_id)) {
    return Status(Errc::kNotFound, "execution " + execution_id + " not found");
  }
  auto events = impl_->store->events().read(partition_of(execution_id, impl_->ctx.partition_count),
                                            execution_id, from_seq, to_seq);
  if (!events.ok()) return events.status();
  if (events.value().empty() && from_seq <= 1) {
    return Status(Errc::kNotFound, "execution " + execution_id + " not found");
  }
  return events;
}

Result<ExecutionState> Engine::load_state(const std::string& execution_id) const {
  auto events = load_events(execution_id);
  if (!events.ok()) return events.status();
  return fold(events.value());
}

Result<ExecutionState> Engine::load_state_at(const std::string& execution_id, uint64_t seq) const {
  if (!is_valid_execution_id(execution_id)) {
    return Status(Errc::kNotFound, "execution " + execution_id + " not found");
  }
  const uint32_t p = partition_of(execution_id, impl_->ctx.partition_count);
  auto snap = impl_->store->events().latest_snapshot(p, execution_id, seq);
  if (snap.ok() && snap.value().has_value()) {
    auto base = restore_snapshot(*snap.value());
    if (base.ok()) {
      auto rest = impl_->store->events().read(p, execution_id, snap.value()->seq() + 1, seq);
      if (!rest.ok()) return rest.status();
      return fold_from(std::move(base.value()), rest.value());
    }
    // A snapshot that does not decode is only an optimisation lost.
  }
  auto events = load_events(execution_id, 1, seq);
  if (!events.ok()) return events.status();
  return fold(events.value());
}

// ---- partition leadership (see engine.hpp)

Status Engine::lead_partition(uint32_t p, std::unique_ptr<storage::PartitionLog> log) {
  Impl& impl = *impl_;
  if (p >= impl.ctx.partition_count) {
    return Status(Errc::kInvalidArgument, "partition " + std::to_string(p) +
                                              " does not exist (this engine has " +
                                              std::to_string(impl.ctx.partition_count) + ")");
  }
  if (!log) return Status(Errc::kInvalidArgument, "partition " + std::to_string(p) + ": no log");
  std::lock_guard<std::mutex> serial(impl.lead_mu);
  if (impl.stopped) return Status(Errc::kUnavailable, "engine is shutting down");
  if (impl.leads(p)) {
    return Status(Errc::kConflict, "partition " + std::to_string(p) + " is already led");
  }
  impl.start_partition(p, std::move(log));
  // Recovery as at a single node's open, on the I/O pool; waited for, so
  // that a release right after finds everything counted.
  auto recovered = std::make_shared<std::promise<void>>();
  auto future = recovered->get_future();
  impl.io->submit([raw = &impl, p, recovered] {
    raw->recover_partition(p);
    raw->queued->recover(p);
    recovered->set_value();
  });
  future.wait();
  spdlog::info("partition {} led", p);
  return Status::ok();
}

void Engine::append_audit(uint32_t p, std::vector<AuditEntry> entries, const std::string& sender,
                          uint64_t first_counter, std::function<void(Status)> done) {
  std::vector<storage::AuditEntry> stored;
  stored.reserve(entries.size());
  for (AuditEntry& e : entries) {
    stored.push_back({e.time_ms, std::move(e.tenant), std::move(e.key_id), std::move(e.role),
                      std::move(e.action), std::move(e.resource), std::move(e.outcome),
                      std::move(e.request_id), std::move(e.detail)});
  }
  Status refused = impl_->append_audit(p, std::move(stored), sender, first_counter, done);
  if (!refused.is_ok()) done(std::move(refused));
}

void Engine::release_partition(uint32_t p) {
  Impl& impl = *impl_;
  if (p >= impl.ctx.partition_count) return;
  std::lock_guard<std::mutex> serial(impl.lead_mu);
  if (impl.stopped) return;
  Impl::Slot& slot = impl.slots[p];
  detail::partition_actor supervisor;
  {
    std::lock_guard<std::mutex> lock(slot.mu);
    if (!slot.led.load(std::memory_order_relaxed)) return;
    slot.led.store(false, std::memory_order_release);
    supervisor = impl.ctx.partitions[p];
  }
  impl.led_count.fetch_sub(1, std::memory_order_acq_rel);
  // No command reaches the supervisor after this message (route() sees the
  // slot unled); it quits once its last execution actor is down.
  {
    caf::scoped_actor self{*impl.sys};
    self->send(supervisor, detail::release_atom::value);
    self->wait_for(supervisor);
  }
  // Its executions count at their new leader now.
  std::unordered_map<std::string, int64_t> counted;
  {
    std::lock_guard<std::mutex> lock(slot.mu);
    counted.swap(slot.counted);
    ++slot.epoch;
  }
  for (const auto& [key, n] : counted) {
    const size_t sep = key.find('\0');
    const std::string tenant = key.substr(0, sep);
    const std::string flow_id = key.substr(sep + 1);
    for (int64_t i = 0; i < n; ++i) impl.admission->abandon(tenant, flow_id);
    // Slots freed: queued runs of the partitions still led may start.
    impl.io->submit([raw = &impl, tenant, flow_id] { raw->queued->drain(tenant, flow_id); });
  }
  impl.queued->release(p);
  const uint32_t parts = impl.ctx.partition_count;
  impl.watchers.fail_if([parts, p](const std::string& id) { return partition_of(id, parts) == p; },
                        [p](const std::string& id) { return detail::partition_not_led(p, id); });
  // The log goes last: no actor of p is left to append to it.
  std::unique_ptr<storage::PartitionLog> log;
  {
    std::lock_guard<std::mutex> lock(slot.mu);
    log = std::move(impl.ctx.writers[p]);
    impl.ctx.partitions[p] = detail::partition_actor{};
    slot.chainer.reset();
  }
  log.reset();
  spdlog::info("partition {} released", p);
}

bool Engine::leads(uint32_t p) const {
  return impl_->leads(p);
}

std::vector<uint32_t> Engine::led_partitions() const {
  std::vector<uint32_t> out;
  for (uint32_t p = 0; p < impl_->ctx.partition_count; ++p) {
    if (impl_->leads(p)) out.push_back(p);
  }
  return out;
}

uint32_t Engine::partition_count() const {
  return impl_->ctx.partition_count;
}

bool Engine::ready() const {
  return impl_->ready.load();
}

Status Engine::write_status() const {
  return impl_->store->write_status();
}

EngineStats Engine::stats() const {
  EngineStats s;
  const auto& c = impl_->ctx;
  s.started = c.started.load();
  s.finished = c.finished.load();
  s.active_actors = c.active.load();
  s.events = c.events.load();
  s.tool_calls = c.tool_calls.load();
  s.recovered = c.recovered.load();
  s.restarts = c.restarts.load();
  for (uint32_t p = 0; p < c.partition_count; ++p) {
    std::lock_guard<std::mutex> lock(impl_->slots[p].mu);
    if (!c.writers[p]) continue;
    auto ws = c.writers[p]->stats();
    s.writer.batches += ws.batches;
    s.writer.requests += ws.requests;
    s.writer.events += ws.events;
    s.writer.sync_ns_total += ws.sync_ns_total;
    s.writer.max_batch_requests = std::max(s.writer.max_batch_requests, ws.max_batch_requests);
  }
  return s;
}

detail::EngineParts detail::parts_of(const Engine& engine) {
  Engine::Impl& impl = *engine.impl_;
  return EngineParts{impl.store.get(), impl.vault.get(), impl.audit.get(), &impl.triggers->rows()};
}

const storage::Store& testing::store_of(const Engine& engine) {
  return *detail::parts_of(engine).store;
}

storage::Vault* testing::vault_of(Engine& engine) {
  return detail::parts_of(engine).vault;
}

storage::TriggerStore& testing::triggers_of(Engine& engine) {
  return *detail::parts_of(engine).triggers;
}

void Engine::emit_event(const std::string& tenant, const std::string& name, const json& data,
                        EmitFn done) {
  impl_->triggers->emit(tenant, name, data, std::move(done));
}

std::vector<ScheduleInfo> Engine::schedules(const std::string& tenant) const {
  return impl_->triggers->schedules(tenant);
}

Result<std::optional<v1::Tenant>> Engine::tenant(const std::string& id) const {
  return impl_->admission->tenant(id);
}

Result<std::vector<v1::Tenant>> Engine::list_tenants() const {
  return impl_->store->auth().list_tenants();
}

Status Engine::put_tenant(const v1::Tenant& tenant) {
  Status s = impl_->admission->put_tenant(tenant);
  if (s.is_ok()) impl_->registry.set_policy(tenant.id(), tool_policy_of(tenant));
  return s;
}

Status Engine::delete_tenant(const std::string& id) {
  return impl_->admission->delete_tenant(id);
}

ToolPolicy tool_policy_of(const v1::Tenant& tenant) {
  if (tenant.tool_policy_json().empty()) return {};
  auto policy = ToolPolicy::parse(json::parse(tenant.tool_policy_json(), nullptr, false));
  // Stored only after parse() accepted it; a record that does not parse
  // (written by a newer node) denies every tool rather than none.
  if (!policy.ok()) {
    ToolPolicy deny_all;
    deny_all.tenant.deny = {"*"};
    return deny_all;
  }
  return policy.value();
}

Engine::TenantUsage Engine::usage(const std::string& tenant) const {
  auto u = impl_->admission->usage(tenant);
  return TenantUsage{u.running, u.queued};
}

bool Engine::kill_execution_actor_for_test(const std::string& execution_id) {
  const uint32_t p = partition_of(execution_id, impl_->ctx.partition_count);
  detail::partition_actor partition;
  if (!impl_->route(
          p, [&](const detail::partition_actor& actor, Impl::Slot&) { partition = actor; })) {
    return false;
  }
  caf::scoped_actor self{*impl_->sys};
  bool killed = false;
  self->request(partition, std::chrono::seconds(5), detail::kill_atom::value, execution_id)
      .receive([&](bool b) { killed = b; }, [&](caf::error&) { killed = false; });
  return killed;
}

void Engine::halt_for_test() {
  impl_->callbacks->stop();
  impl_->triggers->stop();
  if (impl_->retention) impl_->retention->stop();
  {
    std::lock_guard<std::mutex> serial(impl_->lead_mu);
    for (auto& w : impl_->ctx.writers) {
      if (w) w->halt();
    }
  }
  impl_->shutdown_actors();
}

// ---- signals and approvals (see runtime/waits.hpp; the actor checks and
// appends, the partition wakes a sleeping execution for them)

void Engine::signal(const std::string& tenant, const std::string& execution_id,
                    const std::string& name, const json& data,
                    std::function<void(Result<std::string>)> done) {
  const uint32_t p = partition_of(execution_id, impl_->ctx.partition_count);
  if (is_valid_execution_id(execution_id) && !impl_->leads(p)) {
    return done(detail::partition_not_led(p, execution_id));
  }
  auto sum = summary(tenant, execution_id);
  if (!sum.ok()) return done(sum.status());
  if (storage::is_terminal_status(sum.value().status())) {
    return done(Status(Errc::kConflict, "execution " + execution_id + " already ended (" +
                                            sum.value().status() + ")"));
  }
  if (sum.value().status() == "queued") {
    return done(Status(
        Errc::kConflict,
        "execution " + execution_id + " is queued; signals are accepted once it has started"));
  }
  detail::SignalCommand cmd;
  cmd.execution_id = execution_id;
  cmd.name = name;
  cmd.data = data;
  cmd.signal_id = "sig_" + new_execution_id();
  cmd.done = [done, id = cmd.signal_id](Status s) {
    if (s.is_ok()) {
      done(id);
    } else {
      done(s);
    }
  };
  if (!impl_->route(p, [&](const detail::partition_actor& actor, Impl::Slot&) {
        caf::anon_send(actor, detail::signal_atom::value, std::move(cmd));
      })) {
    cmd.done(detail::partition_not_led(p, execution_id));
  }
}

void Engine::approve(const std::string& tenant, const std::string& execution_id,
                     const std::string& step_path, const std::string& key_id,
                     const std::string& role, bool approved, const std::string& comment,
                     std::function<void(Status)> done) {
  const uint32_t p = partition_of(execution_id, impl_->ctx.partition_count);
  if (is_valid_execution_id(execution_id) && !impl_->leads(p)) {
    return done(detail::partition_not_led(p, execution_id));
  }
  auto sum = summary(tenant, execution_id);
  if (!sum.ok()) return done(sum.status());
  if (storage::is_terminal_status(sum.value().status()) || sum.value().status() == "queued") {
    return done(Status(Errc::kNotFound, "execution " + execution_id + " has no step '" + step_path +
                                            "' waiting for approval"));
  }
  detail::ApprovalCommand cmd{execution_id, step_path, key_id,         role,
                              approved,     comment,   std::move(done)};
  if (!impl_->route(p, [&](const detail::partition_actor& actor, Impl::Slot&) {
        caf::anon_send(actor, detail::approve_atom::value, std::move(cmd));
      })) {
    cmd.done(detail::partition_not_led(p, execution_id));
  }
}

Result<std::vector<Engine::WaitingApproval>> Engine::pending_approvals(const std::string& tenant,
                                                                       size_t max_executions) {
  std::vector<WaitingApproval> out;
  std::string cursor;
  size_t seen = 0;
  while (seen < max_executions) {
    auto page = list_executions(tenant, "", "waiting", 200, cursor);
    if (!page.ok()) return page.status();
    for (const auto& sum : page.value().items) {
      ++seen;
      auto flow = get_flow(tenant, sum.flow_id(), sum.flow_version());
      if (!flow.ok()) continue;
      bool has_approvals = false;
      for (const auto& [id, loc] : flow.value()->all_steps) {
        has_approvals = has_approvals || loc.step->type == StepType::kApproval;
      }
      if (!has_approvals) continue;
      auto st = load_state(sum.execution_id());
      if (!st.ok()) continue;
      for (auto& pa : yantra::pending_approvals(*flow.value(), st.value())) {
        out.push_back(WaitingApproval{sum.execution_id(), sum.flow_id(), std::move(pa)});
      }
    }
    if (page.value().next_cursor.empty()) break;
    cursor = page.value().next_cursor;
  }
  return out;
}

}  // namespace yantra
