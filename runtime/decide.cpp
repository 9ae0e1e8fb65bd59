// decide(): the only place where workflow semantics live. It looks at each
// active frame's current step and writes down the next decision as events:
// start a step (resolving its parameters now, so the log holds exactly what
// the tool received), schedule a retry, take a branch, start loop iterations
// or parallel branches, end a frame, end the execution. When there is nothing
// left to decide it returns the commands the settled state needs in flight.
//
// decide() reads only the flow, the state and `now`; it never mutates. It
// may emit several events for one frame in one call only when later ones do
// not need the state to reflect earlier ones (StepStarted followed by
// StepFailed for bad parameters, for instance).
//
// Waits (wait_signal, approval) are decided like the rest: a waiting step
// that has a buffered signal of its name, or whose approval policy is
// settled by the decisions recorded so far, ends in the next round. Two
// waits for the same name in one round take consecutive signals (oldest
// first, in active-frame order), which is the order apply() removes them in.
#include <algorithm>
#include <deque>
#include <map>
#include <string>

#include "runtime/backoff.hpp"
#include "runtime/execution.hpp"
#include "runtime/waits.hpp"

namespace yantra {
namespace {

// Where a step is about to run: an existing frame, or one this decision opens.
struct FrameCtx {
  std::string id;
  std::string prefix;
  std::string parent;  // container path owning the frame
  int32_t index = -1;
  bool detached = false;
  bool is_new = false;
};

// Resolves $ref/$expr roots for a frame: input, execution, item/index of the
// nearest enclosing loop iteration, and step outputs searched from the
// innermost frame outwards (ids are unique, so the first hit is the one).
class FrameScope final : public expr::Scope {
 public:
  FrameScope(const ExecutionState& st, const FrameCtx& ctx) : st_(st), ctx_(ctx) {}

  const json* lookup(std::string_view name) const override {
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

 private:
  const json* step_value(const StepState& s) const {
    if (s.status == StepStatus::kCompleted) return &s.output;
    if (s.status == StepStatus::kFailed || s.status == StepStatus::kAttemptFailed) {
      return keep(json{{"error", s.error}});
    }
    return &null_;
  }

  const json* loop_var(bool want_item) const {
    int32_t index = ctx_.index;
    std::string parent = ctx_.parent;
    for (int guard = 0; guard < 64 && !parent.empty(); ++guard) {
      auto cit = st_.steps.find(parent);
      if (cit == st_.steps.end()) break;
      if (index >= 0 && cit->second.kind == "loop") {
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

  const json* keep(json v) const {
    owned_.push_back(std::move(v));
    return &owned_.back();
  }

  const ExecutionState& st_;
  const FrameCtx& ctx_;
  const json null_;
  mutable std::deque<json> owned_;
};

v1::Error make_error(const std::string& code, const std::string& message, bool retriable,
                     const json& details = nullptr) {
  v1::Error e;
  e.set_code(code);
  e.set_message(message);
  e.set_retriable(retriable);
  if (!details.is_null()) e.set_details_json(dump_canonical(details));
  return e;
}

v1::Error error_from_json(const json& j, const std::string& fallback_code) {
  if (!j.is_object()) return make_error(fallback_code, "failed", false);
  json details = j.contains("details") ? j["details"] : json(nullptr);
  return make_error(j.value("code", fallback_code), j.value("message", std::string("failed")),
                    false, details);
}

class Decider {
 public:
  Decider(const Flow& flow, const ExecutionState& st, int64_t now)
      : flow_(flow), st_(st), now_(now) {}

  std::vector<v1::Event> run() {
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

 private:
  v1::Event& emit() {
    v1::Event& ev = out_.emplace_back();
    ev.set_seq(st_.last_seq + out_.size());
    ev.set_time_ms(now_);
    return ev;
  }

  static FrameCtx ctx_of(const std::string& id, const FrameState& f) {
    FrameCtx c;
    c.id = id;
    c.prefix = f.prefix;
    c.parent = f.parent;
    c.index = f.index;
    c.detached = f.detached;
    return c;
  }

  void drive_frame(const std::string& fid, const FrameState& f) {
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
    const FrameCtx ctx = ctx_of(fid, f);
    switch (s.status) {
      case StepStatus::kRunning:
        if (def.type == StepType::kLoop) drive_loop(f.current, s, def);
        if (def.type == StepType::kParallel) drive_parallel(ctx, f.current, s, def);
        if (def.type == StepType::kWaitSignal) take_signal(f.current, s);
        if (def.type == StepType::kApproval) settle_approval(f.current, s);
        if (def.type == StepType::kCondition) {
          // A condition is evaluated in the round that starts it, so a
          // running one only exists in a log cut between its StepStarted and
          // BranchTaken (a fork's copied prefix): evaluate it now.
          FrameScope scope(st_, ctx);
          json unused;
          take_branch(ctx, def, f.current, s.attempt, eval_condition(def, scope, unused));
        }
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
        const std::string& next = def.type == StepType::kCondition ? s.next : def.on_success;
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

  void drive_loop(const std::string& path, const StepState& s, const Step& def) {
    if (!s.input.is_array()) {
      // Items that did not resolve fail the loop in the round that starts
      // it; only a log cut in between (a fork) shows a running loop without
      // items. Fail it as that round would have.
      container_ended_ = true;
      fail_step(
          path, s.attempt,
          make_error("invalid_items", "the loop's items were not resolved when it started", false));
      return;
    }
    const size_t n = s.input.size();
    if (s.child_failed) {
      container_ended_ = true;
      fail_step(path, s.attempt,
                make_error("iteration_failed",
                           "iteration " + s.child_error.value("frame", "") +
                               " failed: " + s.child_error.value("message", ""),
                           false, s.child_error));
      return;
    }
    if (s.done >= n) {
      complete_step(path, s.attempt, s.results);
      return;
    }
    if (def.body == nullptr || def.body->roots.empty()) return;
    uint32_t limit = 1;
    if (def.parallel) limit = def.max_concurrency == 0 ? UINT32_MAX : def.max_concurrency;
    uint32_t active = s.active;
    for (uint32_t i = s.next_index; i < n && active < limit; ++i, ++active) {
      FrameCtx child;
      child.id = path + "[" + std::to_string(i) + "]";
      child.prefix = child.id + "/";
      child.parent = path;
      child.index = static_cast<int32_t>(i);
      child.is_new = true;
      start_step(child, def.body->roots.front(), 1);
    }
  }

  void drive_parallel(const FrameCtx& ctx, const std::string& path, const StepState& s,
                      const Step& def) {
    if (def.body == nullptr) return;
    // All branches start in one round; fewer children than branches only
    // happens in a log cut inside that round (a fork): start the rest.
    if (s.children.size() < def.body->roots.size()) {
      for (const auto& root : def.body->roots) {
        FrameCtx child;
        child.id = path + ":" + root;
        if (std::find(s.children.begin(), s.children.end(), child.id) != s.children.end()) {
          continue;
        }
        child.prefix = ctx.prefix;
        child.parent = path;
        child.detached = def.wait_for == WaitFor::kNone;
        child.is_new = true;
        start_step(child, root, 1);
      }
      if (def.wait_for == WaitFor::kNone) complete_step(path, s.attempt, json::object());
      return;
    }
    const size_t n = s.children.size();
    switch (def.wait_for) {
      case WaitFor::kAll:
        if (s.child_failed) {
          container_ended_ = true;
          fail_step(path, s.attempt,
                    make_error("branch_failed",
                               "branch " + s.child_error.value("frame", "") +
                                   " failed: " + s.child_error.value("message", ""),
                               false, s.child_error));
        } else if (s.done >= n) {
          complete_step(path, s.attempt, s.results);
        }
        return;
      case WaitFor::kAny:
        if (!s.results.empty()) {
          complete_step(path, s.attempt, s.results);
        } else if (s.done >= n) {
          container_ended_ = true;
          fail_step(path, s.attempt,
                    make_error("branch_failed",
                               "every branch failed; last: " + s.child_error.value("message", ""),
                               false, s.child_error));
        }
        return;
      case WaitFor::kNone:
        // Completes in the round that starts its branches; still running
        // only in a log cut inside that round.
        complete_step(path, s.attempt, json::object());
        return;
    }
  }

  // A wait_signal step takes the oldest signal of its name this round has
  // not handed out yet.
  void take_signal(const std::string& path, const StepState& s) {
    const std::string name = s.input.is_object() ? s.input.value("name", "") : "";
    auto it = st_.signals.find(name);
    size_t& taken = taken_[name];
    if (it == st_.signals.end() || taken >= it->second.size()) return;
    const PendingSignal& sig = it->second[taken++];
    auto& e = *emit().mutable_step_completed();
    e.set_path(path);
    e.set_attempt(s.attempt);
    e.set_output_json(dump_canonical(sig.data));
    e.set_signal_seq(sig.seq);
  }

  void settle_approval(const std::string& path, const StepState& s) {
    auto spec = approval_spec(s);
    if (!spec) {
      fail_step(path, s.attempt,
                make_error("invalid_input", "the approval's recorded input is malformed", false));
      return;
    }
    const ApprovalOutcome outcome = approval_outcome(*spec, s.decisions);
    if (outcome == ApprovalOutcome::kPending) return;
    const json output = approval_output(outcome, s.decisions);
    if (outcome == ApprovalOutcome::kApproved) {
      auto& e = *emit().mutable_step_completed();
      e.set_path(path);
      e.set_attempt(s.attempt);
      e.set_output_json(dump_canonical(output));
      return;
    }
    fail_step(path, s.attempt,
              make_error("rejected",
                         std::string("approval rejected (policy ") + to_string(spec->policy) + ")",
                         false, output));
  }

  void complete_step(const std::string& path, uint32_t attempt, const json& output) {
    container_ended_ = true;
    auto& e = *emit().mutable_step_completed();
    e.set_path(path);
    e.set_attempt(attempt);
    e.set_output_json(dump_canonical(output));
  }

  void fail_step(const std::string& path, uint32_t attempt, v1::Error error) {
    auto& e = *emit().mutable_step_failed();
    e.set_path(path);
    e.set_attempt(attempt);
    *e.mutable_error() = std::move(error);
  }

  void end_frame(const FrameCtx& ctx, bool failed, const json& value) {
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

  void fail_execution(v1::Error error) {
    *emit().mutable_execution_failed()->mutable_error() = std::move(error);
    ended_ = true;
  }

  // Evaluates a condition; `input` receives what it compared, for the log.
  static Result<bool> eval_condition(const Step& def, FrameScope& scope, json& input) {
    if (def.expression) {
      auto v = def.expression->eval(scope);
      if (!v.ok()) return v.status();
      input = json{{"expr", def.expression->source()}, {"value", v.value()}};
      return expr::truthy(v.value());
    }
    auto l = def.left.eval(scope);
    if (!l.ok()) return l.status();
    auto r = def.right.eval(scope);
    if (!r.ok()) return r.status();
    input = json{{"operator", def.op}, {"left", l.value()}, {"right", r.value()}};
    return expr::apply_operator(def.op, l.value(), r.value());
  }

  void take_branch(const FrameCtx& ctx, const Step& def, const std::string& path, uint32_t attempt,
                   const Result<bool>& result) {
    if (!result.ok()) {
      fail_step(path, attempt, make_error("expression_error", result.status().message(), false));
      return;
    }
    const bool b = result.value();
    const std::string& chosen = b ? def.on_true : def.on_false;
    auto& bt = *emit().mutable_branch_taken();
    bt.set_path(path);
    bt.set_step_id(def.id);
    bt.set_frame(ctx.id);
    bt.set_result(b);
    bt.set_next(chosen.empty() ? def.on_success : chosen);
  }

  void start_step(const FrameCtx& ctx, const std::string& step_id, uint32_t attempt) {
    const Flow::Located* loc = flow_.locate(step_id);
    if (loc == nullptr) {
      fail_execution(make_error("internal_error", "unknown step '" + step_id + "'", false));
      return;
    }
    const Step& def = *loc->step;
    const std::string path = ctx.prefix + step_id;
    v1::Event& ev = emit();
    auto& e = *ev.mutable_step_started();
    e.set_path(path);
    e.set_step_id(step_id);
    e.set_frame(ctx.id);
    e.set_attempt(attempt);
    e.set_max_attempts(def.type == StepType::kAction ? def.retry.max_attempts : 1);
    e.set_kind(to_string(def.type));
    if (ctx.is_new) {
      e.set_frame_parent(ctx.parent);
      e.set_frame_index(ctx.index);
      e.set_frame_detached(ctx.detached);
    }
    FrameScope scope(st_, ctx);
    switch (def.type) {
      case StepType::kAction: {
        auto params = def.parameters.eval(scope);
        if (!params.ok()) {
          e.set_input_json("null");
          fail_step(path, attempt,
                    make_error("invalid_parameters", params.status().message(), false));
          return;
        }
        e.set_input_json(dump_canonical(params.value()));
        if (def.timeout_ms > 0) e.set_timer_due_ms(now_ + def.timeout_ms);
        return;
      }
      case StepType::kCondition: {
        json input;
        Result<bool> result = eval_condition(def, scope, input);
        e.set_input_json(dump_canonical(input));
        take_branch(ctx, def, path, attempt, result);
        return;
      }
      case StepType::kLoop: {
        auto items = def.items.eval(scope);
        if (!items.ok()) {
          e.set_input_json("null");
          fail_step(path, attempt, make_error("invalid_items", items.status().message(), false));
          return;
        }
        if (!items.value().is_array()) {
          e.set_input_json("null");
          fail_step(path, attempt,
                    make_error("invalid_items",
                               std::string("loop items must be an array, got ") +
                                   items.value().type_name(),
                               false));
          return;
        }
        if (items.value().size() > def.max_iterations) {
          e.set_input_json("null");
          fail_step(path, attempt,
                    make_error("too_many_iterations",
                               "loop has " + std::to_string(items.value().size()) +
                                   " items, more than max_iterations " +
                                   std::to_string(def.max_iterations),
                               false));
          return;
        }
        e.set_input_json(dump_canonical(items.value()));
        return;
      }
      case StepType::kParallel: e.set_input_json("null"); return;
      case StepType::kWaitSignal:
        e.set_input_json(
            dump_canonical(json{{"name", def.signal_name}, {"timeout_ms", def.timeout_ms}}));
        if (def.timeout_ms > 0) e.set_timer_due_ms(now_ + def.timeout_ms);
        return;
      case StepType::kApproval:
        e.set_input_json(dump_canonical(json{{"approvers", def.approvers},
                                             {"policy", to_string(def.policy)},
                                             {"timeout_ms", def.timeout_ms}}));
        if (def.timeout_ms > 0) e.set_timer_due_ms(now_ + def.timeout_ms);
        return;
      case StepType::kDelay:
        e.set_input_json(dump_canonical(json{{"duration_ms", def.duration_ms}}));
        // A due time of 0 means "no timer"; a zero delay still waits one tick.
        e.set_timer_due_ms(std::max<int64_t>(now_ + std::max<int64_t>(def.duration_ms, 0), 1));
        return;
    }
  }

  const Flow& flow_;
  const ExecutionState& st_;
  int64_t now_;
  bool ended_ = false;
  bool container_ended_ = false;
  std::map<std::string, size_t> taken_;  // signals handed out this round, by name
  std::vector<v1::Event> out_;
};

}  // namespace

Decision decide(const Flow& flow, const ExecutionState& st, int64_t now_ms) {
  Decision d;
  d.events = Decider(flow, st, now_ms).run();
  if (!d.events.empty() || is_terminal(st.status)) return d;
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
  return Status("internal_error", "decide() did not settle");
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
