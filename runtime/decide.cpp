// decide(): where workflow semantics live. It looks at each active frame's
// current step and writes down the next decision as events: start a step
// (resolving its input now, so the log holds exactly what the step worked
// on), schedule a retry, follow a transition, end a frame, end the
// execution. When there is nothing left to decide it returns the commands
// the settled state needs in flight.
//
// What differs between step types (what starting one records, what a
// running loop, parallel, condition or wait does each round) is the type's
// own, in runtime/steps/<type>.cpp, called through its StepKind hooks; this
// file is the machinery every type shares: frames, attempts, retries,
// transitions and the end of the run (the Decider of steps/decider.hpp).
//
// decide() reads only the flow, the state and `now`; it never mutates. It
// may emit several events for one frame in one call only when later ones do
// not need the state to reflect earlier ones (StepStarted followed by
// StepFailed for bad parameters, for instance).
#include <string>
#include <utility>
#include <vector>

#include "runtime/backoff.hpp"
#include "runtime/execution.hpp"
#include "runtime/steps/decider.hpp"
#include "runtime/steps/step_kind.hpp"

namespace yantra {

// ---------------------------------------------------------------- FrameScope

const json* FrameScope::lookup(std::string_view name) const {
  if (name == "input") return &st_.input;
  if (name == "execution") {
    return keep(json{{"id", st_.execution_id},
                     {"flow_id", st_.flow_id},
                     {"flow_version", st_.flow_version},
                     {"tenant", st_.tenant}});
  }
  if (name == "item" || name == "index") return loop_var(name == "item");
  std::string key;
  std::string prefix = ctx_.prefix;
  std::string parent = ctx_.parent;
  for (int guard = 0; guard < 64; ++guard) {
    key.assign(prefix).append(name);
    auto it = st_.steps.find(key);
    if (it != st_.steps.end()) return step_value(it->second);
    if (parent.empty()) break;
    auto cit = st_.steps.find(parent);
    if (cit == st_.steps.end()) break;
    auto fit = st_.frames.find(cit->second.frame);
    if (fit == st_.frames.end()) break;
    prefix = fit->second.prefix;
    parent = fit->second.parent;
  }
  return &null_;
}

const json* FrameScope::step_value(const StepState& s) const {
  if (s.status == StepStatus::kCompleted) return &s.output;
  if (s.status == StepStatus::kFailed || s.status == StepStatus::kAttemptFailed) {
    return keep(json{{"error", s.error}});
  }
  return &null_;
}

const json* FrameScope::loop_var(bool want_item) const {
  int32_t index = ctx_.index;
  std::string parent = ctx_.parent;
  for (int guard = 0; guard < 64 && !parent.empty(); ++guard) {
    auto cit = st_.steps.find(parent);
    if (cit == st_.steps.end()) break;
    if (index >= 0 && recorded_kind(cit->second.kind).body == BodyKind::kIterations) {
      if (!want_item) return keep(json(index));
      const json& items = cit->second.input;
      if (items.is_array() && static_cast<size_t>(index) < items.size()) {
        return &items[static_cast<size_t>(index)];
      }
      return &null_;
    }
    auto fit = st_.frames.find(cit->second.frame);
    if (fit == st_.frames.end()) break;
    index = fit->second.index;
    parent = fit->second.parent;
  }
  return &null_;
}

const json* FrameScope::keep(json v) const {
  owned_.push_back(std::move(v));
  return &owned_.back();
}

// ---------------------------------------------------------------- Decider

v1::Error make_error(const std::string& code, const std::string& message, bool retriable,
                     const json& details) {
  v1::Error e;
  e.set_code(code);
  e.set_message(message);
  e.set_retriable(retriable);
  if (!details.is_null()) e.set_details_json(dump_canonical(details));
  return e;
}

namespace {

v1::Error error_from_json(const json& j, const std::string& fallback_code) {
  if (!j.is_object()) return make_error(fallback_code, "failed", false);
  json details = j.contains("details") ? j["details"] : json(nullptr);
  return make_error(j.value("code", fallback_code), j.value("message", std::string("failed")),
                    false, details);
}

}  // namespace

std::vector<v1::Event> Decider::run() {
  if (!st_.started || is_terminal(st_.status)) return std::move(out_);
  if (st_.timeout_fired) {
    auto& e = *emit().mutable_execution_timed_out();
    e.set_timeout_ms(st_.timeout_ms);
    return std::move(out_);
  }
  if (st_.frames.find("") == st_.frames.end()) {
    FrameCtx root;
    root.is_new = true;
    if (flow_.root.roots.empty()) {
      fail_execution(make_error("invalid_flow", "the flow has no steps", false));
    } else {
      start_step(root, flow_.root.roots.front(), 1);
    }
    return std::move(out_);
  }
  for (const auto& fid : st_.active_frames) {
    drive_frame(fid, st_.frames.at(fid));
    // Ending a container abandons its frames; decisions for them later in
    // this round would be applied after that and revive them. Stop here and
    // let the next round see the container's new state.
    if (ended_ || container_ended_) break;
  }
  return std::move(out_);
}

v1::Event& Decider::emit() {
  v1::Event& ev = out_.emplace_back();
  ev.set_seq(st_.last_seq + out_.size());
  ev.set_time_ms(now_);
  return ev;
}

FrameCtx Decider::ctx_of(const std::string& id, const FrameState& f) {
  FrameCtx c;
  c.id = id;
  c.prefix = f.prefix;
  c.parent = f.parent;
  c.index = f.index;
  c.detached = f.detached;
  return c;
}

void Decider::drive_frame(const std::string& fid, const FrameState& f) {
  auto sit = st_.steps.find(f.current);
  if (sit == st_.steps.end()) return;
  const StepState& s = sit->second;
  const Flow::Located* loc = flow_.locate(s.step_id);
  if (loc == nullptr) {
    fail_execution(
        make_error("internal_error", "step '" + s.step_id + "' is not in the flow", false));
    return;
  }
  const Step& def = *loc->step;
  const StepKind& kind = step_kind(def.type);
  const FrameCtx ctx = ctx_of(fid, f);
  switch (s.status) {
    case StepStatus::kRunning:
      if (kind.drive != nullptr) kind.drive(*this, ctx, f.current, s, def);
      return;
    case StepStatus::kAttemptFailed: {
      auto& e = *emit().mutable_retry_scheduled();
      e.set_path(f.current);
      e.set_next_attempt(s.attempt + 1);
      e.set_due_ms(now_ + retry_delay_ms(def.retry, s.attempt));
      return;
    }
    case StepStatus::kRetryWaiting: return;
    case StepStatus::kRetryReady: start_step(ctx, def.id, s.attempt + 1); return;
    case StepStatus::kCompleted: {
      const std::string& next = kind.branches ? s.next : def.on_success;
      if (!next.empty()) {
        start_step(ctx, next, 1);
      } else {
        end_frame(ctx, false, s.output);
      }
      return;
    }
    case StepStatus::kFailed:
      if (!def.on_timeout.empty() && s.error.is_object() &&
          s.error.value("code", "") == "timeout") {
        start_step(ctx, def.on_timeout, 1);
      } else if (!def.on_failure.empty()) {
        start_step(ctx, def.on_failure, 1);
      } else if (flow_.on_error == OnError::kContinue) {
        if (!def.on_success.empty()) {
          start_step(ctx, def.on_success, 1);
        } else {
          end_frame(ctx, false, json{{"error", s.error}});
        }
      } else {
        end_frame(ctx, true, s.error);
      }
      return;
  }
}

const PendingSignal* Decider::take_signal(const std::string& name) {
  auto it = st_.signals.find(name);
  size_t& taken = taken_[name];
  if (it == st_.signals.end() || taken >= it->second.size()) return nullptr;
  return &it->second[taken++];
}

v1::StepCompleted& Decider::complete_step(const std::string& path, uint32_t attempt,
                                          const json& output) {
  auto& e = *emit().mutable_step_completed();
  e.set_path(path);
  e.set_attempt(attempt);
  e.set_output_json(dump_canonical(output));
  return e;
}

void Decider::complete_container(const std::string& path, uint32_t attempt, const json& output) {
  container_ended_ = true;
  complete_step(path, attempt, output);
}

void Decider::fail_step(const std::string& path, uint32_t attempt, v1::Error error) {
  auto& e = *emit().mutable_step_failed();
  e.set_path(path);
  e.set_attempt(attempt);
  *e.mutable_error() = std::move(error);
}

void Decider::fail_container(const std::string& path, uint32_t attempt, v1::Error error) {
  container_ended_ = true;
  fail_step(path, attempt, std::move(error));
}

void Decider::end_frame(const FrameCtx& ctx, bool failed, const json& value) {
  if (ctx.id.empty()) {
    if (failed) {
      fail_execution(error_from_json(value, "step_failed"));
      return;
    }
    if (st_.detached_active > 0) return;  // wait for detached branches
    json output = value;
    if (flow_.has_output) {
      FrameScope scope(st_, ctx);
      auto r = flow_.output.eval(scope);
      if (!r.ok()) {
        fail_execution(make_error("output_error", r.status().message(), false));
        return;
      }
      output = std::move(r.value());
    }
    auto& e = *emit().mutable_execution_completed();
    e.set_output_json(dump_canonical(output));
    ended_ = true;
    return;
  }
  auto& e = *emit().mutable_frame_ended();
  e.set_frame(ctx.id);
  e.set_failed(failed);
  if (failed) {
    *e.mutable_error() = error_from_json(value, "step_failed");
  } else {
    e.set_output_json(dump_canonical(value));
  }
}

void Decider::fail_execution(v1::Error error) {
  *emit().mutable_execution_failed()->mutable_error() = std::move(error);
  ended_ = true;
}

void Decider::start_step(const FrameCtx& ctx, const std::string& step_id, uint32_t attempt) {
  const Flow::Located* loc = flow_.locate(step_id);
  if (loc == nullptr) {
    fail_execution(make_error("internal_error", "unknown step '" + step_id + "'", false));
    return;
  }
  const Step& def = *loc->step;
  const StepKind& kind = step_kind(def.type);
  const std::string path = ctx.prefix + step_id;
  v1::Event& ev = emit();
  auto& e = *ev.mutable_step_started();
  e.set_path(path);
  e.set_step_id(step_id);
  e.set_frame(ctx.id);
  e.set_attempt(attempt);
  e.set_max_attempts(kind.calls_tool ? def.retry.max_attempts : 1);
  e.set_kind(std::string(kind.name));
  if (ctx.is_new) {
    e.set_frame_parent(ctx.parent);
    e.set_frame_index(ctx.index);
    e.set_frame_detached(ctx.detached);
  }
  kind.start(*this, ctx, def, path, attempt, e);
}

Decision decide(const Flow& flow, const ExecutionState& st, int64_t now_ms) {
  Decision d;
  d.events = Decider(flow, st, now_ms).run();
  if (!d.events.empty() || is_terminal(st.status)) return d;
  // `running` holds the attempts of the kinds that call a tool
  // (StepKind::calls_tool), whose Step names the tool.
  for (const auto& path : st.running) {
    const StepState& s = st.steps.at(path);
    const Flow::Located* loc = flow.locate(s.step_id);
    if (loc == nullptr) continue;
    Command c;
    c.kind = Command::Kind::kInvokeTool;
    c.path = path;
    c.attempt = s.attempt;
    c.tool_id = loc->step->tool_id;
    c.action = loc->step->action;
    c.parameters = s.input;
    c.timeout_ms = loc->step->timeout_ms;
    c.idempotency_key = st.execution_id + "/" + path + "/" + std::to_string(s.attempt);
    d.commands.push_back(std::move(c));
  }
  for (const auto& [id, t] : st.timers) {
    Command c;
    c.kind = Command::Kind::kStartTimer;
    c.timer_id = id;
    c.due_ms = t.due_ms;
    d.commands.push_back(std::move(c));
  }
  return d;
}

v1::Event make_event(const ExecutionState& state, int64_t now_ms) {
  v1::Event ev;
  ev.set_seq(state.last_seq + 1);
  ev.set_time_ms(now_ms);
  return ev;
}

Result<std::vector<v1::Event>> settle(const Flow& flow, ExecutionState& state, int64_t now_ms,
                                      std::vector<Command>* commands) {
  std::vector<v1::Event> batch;
  // Each round settles at least one frame transition; a flow of N steps in
  // loops of M items needs O(N*M) rounds at most, far below this guard.
  for (int round = 0; round < 10000000; ++round) {
    Decision d = decide(flow, state, now_ms);
    if (d.events.empty()) {
      if (commands != nullptr) *commands = std::move(d.commands);
      return batch;
    }
    for (auto& ev : d.events) {
      Status as = apply(state, ev);
      if (!as.is_ok()) return as;
      batch.push_back(std::move(ev));
    }
  }
  return Status(Errc::kInternalError, "decide() did not settle");
}

Result<std::vector<v1::Event>> advance(const Flow& flow, ExecutionState& state, v1::Event input,
                                       int64_t now_ms, std::vector<Command>* commands) {
  input.set_seq(state.last_seq + 1);
  if (input.time_ms() == 0) input.set_time_ms(now_ms);
  Status s = apply(state, input);
  if (!s.is_ok()) return s;
  auto rest = settle(flow, state, now_ms, commands);
  if (!rest.ok()) return rest.status();
  std::vector<v1::Event> batch;
  batch.reserve(rest.value().size() + 1);
  batch.push_back(std::move(input));
  for (auto& ev : rest.value()) batch.push_back(std::move(ev));
  return batch;
}

}  // namespace yantra
