// apply(): records one event into ExecutionState. It never consults the flow
// or a clock (the event carries everything), so recovery, the time machine
// and live execution fold the very same way. It also maintains the derived
// indexes (running steps, active frames) so decide() and the actor never scan
// the whole state: a loop of 100,000 iterations stays cheap per event.
//
// Signals and approval decisions are facts from outside: they are recorded
// (buffered per name, appended to the step) and never acted on here; the
// policy checks that decide whether they may be appended at all live in
// runtime/waits.hpp, and what they lead to is decide()'s to write down.
//
// What differs between step types is read from the type's StepKind
// (runtime/steps/step_kind.hpp), found by the kind name the StepStarted
// recorded, never from the flow: its traits (calls a tool, owns frames,
// takes decisions, which timer it starts) and, for a wait_signal's
// StepCompleted, its `complete` hook.
#include <algorithm>
#include <string>

#include "runtime/errc.hpp"
#include "runtime/execution.hpp"
#include "runtime/json_patch.hpp"
#include "runtime/steps/step_kind.hpp"

namespace yantra {
namespace {

Status bad(const v1::Event& ev, const std::string& what) {
  return Status(RuntimeErrc::kInvalidEvent, "event " + std::to_string(ev.seq()) + ": " + what);
}

bool parse_payload(const std::string& text, json& out) {
  if (text.empty()) {
    out = nullptr;
    return true;
  }
  out = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return !out.is_discarded();
}

json error_json(const v1::Error& e) {
  json j = {{"code", e.code()}, {"message", e.message()}, {"retriable", e.retriable()}};
  if (!e.details_json().empty()) {
    json d = json::parse(e.details_json(), nullptr, false);
    if (!d.is_discarded()) j["details"] = std::move(d);
  }
  return j;
}

std::string timer_id(const std::string& path, uint32_t attempt) {
  return path + "#" + std::to_string(attempt);
}

bool is_container(const StepState& s) {
  return recorded_kind(s.kind).body != BodyKind::kNone;
}

// Marks the active child frames of a finished container as abandoned, down
// through their own running containers, and forgets their in-flight tool
// calls: nothing will wait for them any more. Detached frames (parallel
// wait_for "none") live on.
void abandon_children(ExecutionState& st, StepState& container) {
  for (const auto& fid : container.children) {
    auto fit = st.frames.find(fid);
    if (fit == st.frames.end() || fit->second.status != FrameStatus::kActive ||
        fit->second.detached) {
      continue;
    }
    fit->second.status = FrameStatus::kAbandoned;
    st.active_frames.erase(fid);
    auto sit = st.steps.find(fit->second.current);
    if (sit == st.steps.end()) continue;
    const std::string& path = fit->second.current;
    st.running.erase(path);
    // Its deadline, delay or retry timer would only wake a step nobody waits for.
    st.timers.erase(timer_id(path, sit->second.attempt));
    st.timers.erase(timer_id(path, sit->second.attempt + 1));
    if (sit->second.status == StepStatus::kRunning && is_container(sit->second)) {
      abandon_children(st, sit->second);
    }
  }
}

void fail_attempt(ExecutionState& st, const std::string& path, StepState& s, json error,
                  int64_t now) {
  const bool retriable = error.value("retriable", false);
  s.error = std::move(error);
  s.ended_ms = now;
  s.status =
      (retriable && s.attempt < s.max_attempts) ? StepStatus::kAttemptFailed : StepStatus::kFailed;
  st.running.erase(path);
  st.timers.erase(timer_id(path, s.attempt));
  if (s.status == StepStatus::kFailed) abandon_children(st, s);
}

// Only an attempt in flight can end. A late result (its attempt timed out,
// its frame was abandoned, or it already ended) does not fit the state.
bool in_flight(const ExecutionState& st, const std::string& path, const StepState& s) {
  return s.status == StepStatus::kRunning &&
         (!recorded_kind(s.kind).calls_tool || st.running.count(path) != 0);
}

Status apply_started(ExecutionState& st, const v1::Event& ev) {
  const auto& e = ev.execution_started();
  if (st.started) return bad(ev, "execution already started");
  json input;
  if (!parse_payload(e.input_json(), input)) return bad(ev, "input is not JSON");
  st.started = true;
  st.execution_id = e.execution_id();
  st.tenant = e.tenant();
  st.flow_id = e.flow_id();
  st.flow_version = e.flow_version();
  st.idempotency_key = e.idempotency_key();
  st.parent_execution_id = e.parent_execution_id();
  st.forked_at_seq = e.forked_at_seq();
  st.timeout_ms = e.timeout_ms();
  st.created_ms = ev.time_ms();
  st.status = ExecStatus::kRunning;
  st.input = std::move(input);
  if (e.timeout_ms() > 0) {
    st.timers["#timeout"] =
        Timer{TimerKind::kWorkflowTimeout, "", 0, ev.time_ms() + e.timeout_ms()};
  }
  return {};
}

Status apply_step_started(ExecutionState& st, const v1::Event& ev) {
  const auto& e = ev.step_started();
  json input;
  if (!parse_payload(e.input_json(), input)) return bad(ev, "step input is not JSON");
  auto prev = st.steps.find(e.path());
  if (prev != st.steps.end() && prev->second.attempt > 0 && e.attempt() <= prev->second.attempt) {
    return bad(ev, "attempt " + std::to_string(e.attempt()) + " of '" + e.path() + "' already ran");
  }

  auto fit = st.frames.find(e.frame());
  if (fit == st.frames.end()) {
    FrameState f;
    f.parent = e.frame_parent();
    f.index = e.frame_index();
    f.detached = e.frame_detached();
    if (e.frame().empty()) {
      f.prefix = "";
    } else {
      auto cit = st.steps.find(e.frame_parent());
      if (cit == st.steps.end()) return bad(ev, "frame parent '" + e.frame_parent() + "' unknown");
      if (f.index >= 0) {
        f.prefix = e.frame() + "/";
      } else {
        auto pf = st.frames.find(cit->second.frame);
        f.prefix = pf == st.frames.end() ? "" : pf->second.prefix;
      }
      StepState& c = cit->second;
      c.children.push_back(e.frame());
      c.active++;
      if (f.index >= 0 && static_cast<uint32_t>(f.index) + 1 > c.next_index) {
        c.next_index = static_cast<uint32_t>(f.index) + 1;
      }
      if (f.detached) st.detached_active++;
    }
    fit = st.frames.emplace(e.frame(), std::move(f)).first;
    st.active_frames.insert(e.frame());
  }
  fit->second.current = e.path();

  const StepKind& kind = recorded_kind(e.kind());
  StepState& s = st.steps[e.path()];
  s.step_id = e.step_id();
  s.frame = e.frame();
  s.kind = e.kind();
  s.status = StepStatus::kRunning;
  s.attempt = e.attempt();
  s.max_attempts = e.max_attempts() == 0 ? 1 : e.max_attempts();
  s.input = std::move(input);
  s.output = nullptr;
  s.started_ms = ev.time_ms();
  s.ended_ms = 0;
  if (e.attempt() <= 1) s.first_started_ms = ev.time_ms();
  // A new attempt of an approval asks again: earlier decisions do not carry over.
  s.decisions = kind.takes_decisions ? json::array() : json(nullptr);
  st.timers.erase(timer_id(e.path(), e.attempt()));  // a consumed retry timer
  if (kind.calls_tool) st.running.insert(e.path());
  if (kind.body == BodyKind::kIterations) {
    s.results = json::array();
    if (s.input.is_array()) s.results = json(std::vector<json>(s.input.size(), nullptr));
  } else if (kind.body == BodyKind::kBranches) {
    s.results = json::object();
  }
  if (e.timer_due_ms() > 0) {
    st.timers[timer_id(e.path(), e.attempt())] =
        Timer{kind.timer, e.path(), e.attempt(), e.timer_due_ms()};
  }
  return {};
}

Status apply_step_completed(ExecutionState& st, const v1::Event& ev) {
  const auto& e = ev.step_completed();
  auto it = st.steps.find(e.path());
  if (it == st.steps.end()) return bad(ev, "unknown step '" + e.path() + "'");
  StepState& s = it->second;
  if (s.attempt != e.attempt()) return bad(ev, "attempt mismatch for '" + e.path() + "'");
  if (!in_flight(st, e.path(), s)) return bad(ev, "'" + e.path() + "' has no attempt in flight");
  json output;
  if (!parse_payload(e.output_json(), output)) return bad(ev, "output is not JSON");
  // A wait_signal step ends only by consuming a signal, which its hook
  // checks and removes; no other step consumes one.
  const StepKind& kind = recorded_kind(s.kind);
  if (kind.complete != nullptr) {
    Status checked = kind.complete(st, e.path(), s, e);
    if (!checked.is_ok()) return bad(ev, checked.message());
  } else if (e.signal_seq() != 0) {
    return bad(ev, "'" + e.path() + "' is not a wait_signal step and consumes no signal");
  }
  s.output = std::move(output);
  s.status = StepStatus::kCompleted;
  s.ended_ms = ev.time_ms();
  st.running.erase(e.path());
  st.timers.erase(timer_id(e.path(), e.attempt()));
  abandon_children(st, s);
  return {};
}

Status apply_step_failed(ExecutionState& st, const v1::Event& ev) {
  const auto& e = ev.step_failed();
  auto it = st.steps.find(e.path());
  if (it == st.steps.end()) return bad(ev, "unknown step '" + e.path() + "'");
  if (it->second.attempt != e.attempt()) return bad(ev, "attempt mismatch for '" + e.path() + "'");
  if (!in_flight(st, e.path(), it->second)) {
    return bad(ev, "'" + e.path() + "' has no attempt in flight");
  }
  fail_attempt(st, e.path(), it->second, error_json(e.error()), ev.time_ms());
  return {};
}

Status apply_retry(ExecutionState& st, const v1::Event& ev) {
  const auto& e = ev.retry_scheduled();
  auto it = st.steps.find(e.path());
  if (it == st.steps.end()) return bad(ev, "unknown step '" + e.path() + "'");
  it->second.status = StepStatus::kRetryWaiting;
  st.timers[timer_id(e.path(), e.next_attempt())] =
      Timer{TimerKind::kRetry, e.path(), e.next_attempt(), e.due_ms()};
  return {};
}

Status apply_timer(ExecutionState& st, const v1::Event& ev) {
  auto tit = st.timers.find(ev.timer_fired().timer_id());
  if (tit == st.timers.end())
    return bad(ev, "no pending timer '" + ev.timer_fired().timer_id() + "'");
  Timer t = tit->second;
  st.timers.erase(tit);
  if (t.kind == TimerKind::kWorkflowTimeout) {
    st.timeout_fired = true;
    return {};
  }
  auto sit = st.steps.find(t.path);
  if (sit == st.steps.end()) return bad(ev, "timer of unknown step '" + t.path + "'");
  StepState& s = sit->second;
  switch (t.kind) {
    case TimerKind::kDeadline: {
      int64_t limit = t.due_ms - s.started_ms;
      // A slow tool call may succeed next time; nobody answering a wait
      // (signal, approval) is not something a retry fixes.
      const StepKind& kind = recorded_kind(s.kind);
      json error = {{"code", "timeout"},
                    {"message", "step timed out after " + std::to_string(limit) + " ms"},
                    {"retriable", kind.calls_tool}};
      if (kind.takes_decisions) error["details"] = {{"decisions", s.decisions}};
      fail_attempt(st, t.path, s, std::move(error), ev.time_ms());
      break;
    }
    case TimerKind::kRetry: s.status = StepStatus::kRetryReady; break;
    case TimerKind::kDelay:  // the step's own timer (StepKind::timer): it ends the step
      s.status = StepStatus::kCompleted;
      s.ended_ms = ev.time_ms();
      s.output = json{{"delayed_ms", ev.time_ms() - s.started_ms}};
      break;
    case TimerKind::kWorkflowTimeout: break;
  }
  return {};
}

Status apply_signal(ExecutionState& st, const v1::Event& ev) {
  const auto& e = ev.signal_received();
  if (e.name().empty()) return bad(ev, "a signal needs a name");
  PendingSignal sig;
  if (!parse_payload(e.data_json(), sig.data)) return bad(ev, "signal data is not JSON");
  sig.seq = ev.seq();
  sig.signal_id = e.signal_id();
  sig.received_ms = ev.time_ms();
  st.signals[e.name()].push_back(std::move(sig));
  return {};
}

// Only a live wait takes decisions: the step's attempt is in flight and it is
// still its frame's current step in an active frame (an abandoned branch
// keeps its step "running").
Status apply_approval(ExecutionState& st, const v1::Event& ev) {
  const auto& e = ev.approval_recorded();
  auto it = st.steps.find(e.step_path());
  if (it == st.steps.end()) return bad(ev, "unknown step '" + e.step_path() + "'");
  StepState& s = it->second;
  auto fit = st.frames.find(s.frame);
  if (!recorded_kind(s.kind).takes_decisions || s.status != StepStatus::kRunning ||
      fit == st.frames.end() || fit->second.status != FrameStatus::kActive ||
      fit->second.current != e.step_path()) {
    return bad(ev, "'" + e.step_path() + "' is not an approval step waiting for decisions");
  }
  if (e.key_id().empty()) return bad(ev, "a decision needs a key id");
  if (e.decision() != "approved" && e.decision() != "rejected") {
    return bad(ev, "decision must be approved or rejected, not '" + e.decision() + "'");
  }
  if (!s.decisions.is_array()) s.decisions = json::array();
  for (const auto& d : s.decisions) {
    if (d.value("key_id", "") == e.key_id()) {
      return bad(ev, "key " + e.key_id() + " already decided on '" + e.step_path() + "'");
    }
  }
  s.decisions.push_back({{"key_id", e.key_id()},
                         {"role", e.role()},
                         {"decision", e.decision()},
                         {"comment", e.comment()},
                         {"time_ms", e.time_ms() != 0 ? e.time_ms() : ev.time_ms()}});
  return {};
}

// A loop iteration that completed lives on only in the loop's results: its
// frame and step instances are dropped. Nothing can refer to them any more
// (steps of an iteration see only their own iteration; outside the loop only
// its output is visible), and keeping them would make the state, its
// snapshots and every activation grow with the number of iterations: a loop
// of 100,000 items must stay as cheap to load as one of ten. What each
// iteration did remains in the log (the timeline is built from events).
// Failed and abandoned iterations stay, so retry can revive them.
void prune_iteration(ExecutionState& st, StepState& loop, const std::string& frame) {
  const std::string prefix = frame + "/";
  // Detached branches (parallel wait_for "none") may outlive the iteration:
  // then it stays whole until the end of the run.
  for (auto it = st.frames.lower_bound(prefix);
       it != st.frames.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    if (it->second.status == FrameStatus::kActive) return;
  }
  for (auto it = st.steps.lower_bound(prefix);
       it != st.steps.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    st.running.erase(it->first);
    it = st.steps.erase(it);
  }
  for (auto it = st.frames.lower_bound(prefix);
       it != st.frames.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    st.active_frames.erase(it->first);
    it = st.frames.erase(it);
  }
  st.frames.erase(frame);
  auto child = std::find(loop.children.begin(), loop.children.end(), frame);
  if (child != loop.children.end()) loop.children.erase(child);
}

Status apply_frame_ended(ExecutionState& st, const v1::Event& ev) {
  const auto& e = ev.frame_ended();
  auto fit = st.frames.find(e.frame());
  if (fit == st.frames.end()) return bad(ev, "unknown frame '" + e.frame() + "'");
  FrameState& f = fit->second;
  if (f.status != FrameStatus::kActive) return bad(ev, "frame '" + e.frame() + "' already ended");
  json value;
  if (e.failed()) {
    f.status = FrameStatus::kFailed;
    f.error = error_json(e.error());
  } else {
    if (!parse_payload(e.output_json(), value)) return bad(ev, "frame output is not JSON");
    f.status = FrameStatus::kCompleted;
    f.output = value;
  }
  st.active_frames.erase(e.frame());
  if (f.detached && st.detached_active > 0) st.detached_active--;
  auto cit = st.steps.find(f.parent);
  if (cit == st.steps.end()) return {};
  StepState& c = cit->second;
  if (c.active > 0) c.active--;
  c.done++;
  if (e.failed()) {
    if (!c.child_failed) {
      c.child_failed = true;
      c.child_error = f.error;
      c.child_error["frame"] = e.frame();
    }
  } else if (f.index >= 0 && c.results.is_array() &&
             static_cast<size_t>(f.index) < c.results.size()) {
    c.results[static_cast<size_t>(f.index)] = std::move(value);
    prune_iteration(st, c, e.frame());
  } else if (c.results.is_object()) {
    auto colon = e.frame().rfind(':');
    c.results[e.frame().substr(colon == std::string::npos ? 0 : colon + 1)] = std::move(value);
  }
  return {};
}

// Drops the step's own timers (deadline or delay of the current attempt, the
// retry timer of the next one): a step whose fate was decided by a user
// must not be woken by them.
void drop_step_timers(ExecutionState& st, const std::string& path, const StepState& s) {
  st.timers.erase(timer_id(path, s.attempt));
  st.timers.erase(timer_id(path, s.attempt + 1));
}

Status apply_overridden(ExecutionState& st, const v1::Event& ev) {
  json patch;
  if (!parse_payload(ev.state_overridden().patch_json(), patch) || !patch.is_object()) {
    return bad(ev, "the patch is not a JSON object");
  }
  // Validate everything first: a rejected event leaves the state unchanged.
  const json* input = nullptr;
  const json* steps = nullptr;
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.key() == "input" && it->is_object()) {
      input = &*it;
    } else if (it.key() == "steps" && it->is_object()) {
      steps = &*it;
    } else {
      return bad(ev,
                 "patch member '" + it.key() + "' is not allowed (input: object, steps: object)");
    }
  }
  if (steps != nullptr) {
    for (auto it = steps->begin(); it != steps->end(); ++it) {
      auto sit = st.steps.find(it.key());
      if (sit == st.steps.end()) return bad(ev, "unknown step '" + it.key() + "'");
      // A condition's successor was chosen by the flow; an output alone
      // cannot say which branch to take.
      if (recorded_kind(sit->second.kind).branches) {
        return bad(ev, sit->second.kind + " step '" + it.key() + "' cannot be overridden");
      }
      if (!it->is_object() || it->size() != 1 || !it->contains("output")) {
        return bad(ev, "step '" + it.key() + "' must be overridden as {\"output\": value}");
      }
    }
  }
  // The first override of a fork restarts its clock: timers copied from the
  // source were due relative to the source's time line, and the fork resumes
  // with the time that remained at the fork point (not an immediate timeout
  // because the source ran long ago).
  if (!st.parent_execution_id.empty() && st.last_seq == st.forked_at_seq &&
      ev.time_ms() > st.updated_ms) {
    const int64_t shift = ev.time_ms() - st.updated_ms;
    for (auto& [id, t] : st.timers) t.due_ms += shift;
  }
  if (input != nullptr) merge_patch(st.input, *input);
  if (steps != nullptr) {
    for (auto it = steps->begin(); it != steps->end(); ++it) {
      StepState& s = st.steps[it.key()];
      s.output = (*it)["output"];
      s.status = StepStatus::kCompleted;
      s.ended_ms = ev.time_ms();
      st.running.erase(it.key());
      drop_step_timers(st, it.key(), s);
      abandon_children(st, s);
    }
  }
  return {};
}

// Makes a frame active again, undoing the bookkeeping of its end: an ended
// frame (failed or completed) is counted as active in its container again;
// an abandoned one never stopped being counted (see abandon_children).
void revive_frame(ExecutionState& st, const std::string& id, FrameState& f) {
  if (f.status == FrameStatus::kFailed || f.status == FrameStatus::kCompleted) {
    auto cit = st.steps.find(f.parent);
    if (cit != st.steps.end() && !id.empty()) {
      cit->second.active++;
      if (cit->second.done > 0) cit->second.done--;
    }
    if (f.detached) st.detached_active++;
  }
  f.status = FrameStatus::kActive;
  f.error = nullptr;
  f.output = nullptr;
  st.active_frames.insert(id);
}

Status apply_resumed(ExecutionState& st, const v1::Event& ev) {
  const auto& e = ev.resumed();
  if (st.status != ExecStatus::kFailed && st.status != ExecStatus::kTimedOut) {
    return bad(ev, std::string("only a failed or timed-out execution can resume; it is ") +
                       to_string(st.status));
  }
  for (const auto& fid : e.frames()) {
    if (st.frames.find(fid) == st.frames.end()) return bad(ev, "unknown frame '" + fid + "'");
  }
  for (const auto& path : e.steps()) {
    if (st.steps.find(path) == st.steps.end()) return bad(ev, "unknown step '" + path + "'");
  }
  st.status = ExecStatus::kRunning;
  st.error = nullptr;
  st.output = nullptr;
  st.ended_ms = 0;
  st.timeout_fired = false;
  if (st.timeout_ms > 0) {
    st.timers["#timeout"] = Timer{TimerKind::kWorkflowTimeout, "", 0, ev.time_ms() + st.timeout_ms};
  }
  for (const auto& fid : e.frames()) revive_frame(st, fid, st.frames[fid]);
  for (const auto& path : e.steps()) {
    StepState& s = st.steps[path];
    if (is_container(s) && !s.children.empty()) {
      // Its children keep their frame ids, so the container cannot start a
      // new attempt (that would reopen frames that exist); it is driven
      // again over its revived children instead.
      s.status = StepStatus::kRunning;
      s.child_failed = false;
      s.child_error = nullptr;
      s.ended_ms = 0;
    } else {
      s.status = StepStatus::kRetryReady;
      st.running.erase(path);
      drop_step_timers(st, path, s);
    }
  }
  return {};
}

void finish(ExecutionState& st, ExecStatus status, int64_t now) {
  st.status = status;
  st.ended_ms = now;
  st.timers.clear();
  st.running.clear();
  st.active_frames.clear();
}

}  // namespace

Status apply(ExecutionState& st, const v1::Event& ev) {
  if (ev.seq() != st.last_seq + 1) {
    return bad(ev, "expected seq " + std::to_string(st.last_seq + 1));
  }
  if (!st.started && ev.body_case() != v1::Event::kExecutionStarted) {
    return bad(ev, "the first event must be ExecutionStarted");
  }
  if (is_terminal(st.status) && st.started && ev.body_case() != v1::Event::kResumed) {
    return bad(ev, "execution already ended");
  }
  Status s;
  switch (ev.body_case()) {
    case v1::Event::kExecutionStarted: s = apply_started(st, ev); break;
    case v1::Event::kStepStarted: s = apply_step_started(st, ev); break;
    case v1::Event::kStepCompleted: s = apply_step_completed(st, ev); break;
    case v1::Event::kStepFailed: s = apply_step_failed(st, ev); break;
    case v1::Event::kRetryScheduled: s = apply_retry(st, ev); break;
    case v1::Event::kTimerFired: s = apply_timer(st, ev); break;
    case v1::Event::kBranchTaken: {
      const auto& e = ev.branch_taken();
      auto it = st.steps.find(e.path());
      if (it == st.steps.end()) return bad(ev, "unknown step '" + e.path() + "'");
      it->second.status = StepStatus::kCompleted;
      it->second.next = e.next();
      it->second.output = json{{"result", e.result()}};
      it->second.ended_ms = ev.time_ms();
      break;
    }
    case v1::Event::kFrameEnded: s = apply_frame_ended(st, ev); break;
    case v1::Event::kExecutionCompleted:
      if (!parse_payload(ev.execution_completed().output_json(), st.output)) {
        return bad(ev, "output is not JSON");
      }
      finish(st, ExecStatus::kCompleted, ev.time_ms());
      break;
    case v1::Event::kExecutionFailed:
      st.error = error_json(ev.execution_failed().error());
      finish(st, ExecStatus::kFailed, ev.time_ms());
      break;
    case v1::Event::kExecutionCancelled:
      st.error = json{{"code", "cancelled"}, {"message", ev.execution_cancelled().reason()}};
      finish(st, ExecStatus::kCancelled, ev.time_ms());
      break;
    case v1::Event::kExecutionTimedOut:
      st.error =
          json{{"code", "timed_out"},
               {"message", "execution exceeded its timeout of " +
                               std::to_string(ev.execution_timed_out().timeout_ms()) + " ms"}};
      finish(st, ExecStatus::kTimedOut, ev.time_ms());
      break;
    case v1::Event::kStateOverridden: s = apply_overridden(st, ev); break;
    case v1::Event::kResumed: s = apply_resumed(st, ev); break;
    case v1::Event::kSignalReceived: s = apply_signal(st, ev); break;
    case v1::Event::kApprovalRecorded: s = apply_approval(st, ev); break;
    case v1::Event::BODY_NOT_SET: return bad(ev, "empty event");
  }
  if (!s.is_ok()) return s;
  st.last_seq = ev.seq();
  st.updated_ms = ev.time_ms();
  return {};
}

Result<ExecutionState> fold(const std::vector<v1::Event>& events) {
  ExecutionState st;
  for (const auto& ev : events) {
    Status s = apply(st, ev);
    if (!s.is_ok()) return s;
  }
  return st;
}

}  // namespace yantra
