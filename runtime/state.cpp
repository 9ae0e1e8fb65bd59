// Names, canonical JSON and the user-facing status of ExecutionState. The
// canonical form sorts keys (nlohmann::json is ordered by std::map) and
// includes every field apply() maintains, so "same events, same bytes" is a
// meaningful check. Members added in 0.3 (buffered signals, approval
// decisions) are written only when there is something in them, so a state
// that uses neither has the bytes it had before.
#include "runtime/execution.hpp"
#include "runtime/steps/step_kind.hpp"
#include "runtime/waits.hpp"

namespace yantra {

const char* to_string(ExecStatus s) {
  switch (s) {
    case ExecStatus::kRunning: return "running";
    case ExecStatus::kWaiting: return "waiting";
    case ExecStatus::kCompleted: return "completed";
    case ExecStatus::kFailed: return "failed";
    case ExecStatus::kCancelled: return "cancelled";
    case ExecStatus::kTimedOut: return "timed_out";
  }
  return "unknown";
}

const char* to_string(StepStatus s) {
  switch (s) {
    case StepStatus::kRunning: return "running";
    case StepStatus::kAttemptFailed: return "attempt_failed";
    case StepStatus::kRetryWaiting: return "retry_waiting";
    case StepStatus::kRetryReady: return "retry_ready";
    case StepStatus::kCompleted: return "completed";
    case StepStatus::kFailed: return "failed";
  }
  return "unknown";
}

const char* to_string(FrameStatus s) {
  switch (s) {
    case FrameStatus::kActive: return "active";
    case FrameStatus::kCompleted: return "completed";
    case FrameStatus::kFailed: return "failed";
    case FrameStatus::kAbandoned: return "abandoned";
  }
  return "unknown";
}

const char* to_string(TimerKind k) {
  switch (k) {
    case TimerKind::kDeadline: return "deadline";
    case TimerKind::kRetry: return "retry";
    case TimerKind::kDelay: return "delay";
    case TimerKind::kWorkflowTimeout: return "workflow_timeout";
  }
  return "unknown";
}

bool is_terminal(ExecStatus s) {
  return s == ExecStatus::kCompleted || s == ExecStatus::kFailed || s == ExecStatus::kCancelled ||
         s == ExecStatus::kTimedOut;
}

std::string ExecutionState::display_status() const {
  if (is_terminal(status)) return to_string(status);
  if (!running.empty()) return "running";
  for (const auto& [id, t] : timers) {
    if (t.kind != TimerKind::kWorkflowTimeout) return "waiting";
  }
  return input_waits(*this).empty() ? "running" : "waiting";
}

std::string dump_canonical(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json to_json(const ExecutionState& st) {
  json steps = json::object();
  for (const auto& [path, s] : st.steps) {
    json j = {{"step_id", s.step_id},
              {"frame", s.frame},
              {"kind", s.kind},
              {"status", to_string(s.status)},
              {"attempt", s.attempt},
              {"max_attempts", s.max_attempts},
              {"input", s.input},
              {"output", s.output},
              {"error", s.error},
              {"first_started_ms", s.first_started_ms},
              {"started_ms", s.started_ms},
              {"ended_ms", s.ended_ms}};
    if (!s.next.empty()) j["next"] = s.next;
    const StepKind& kind = recorded_kind(s.kind);
    if (kind.body != BodyKind::kNone) {
      j["children"] = s.children;
      j["next_index"] = s.next_index;
      j["active"] = s.active;
      j["done"] = s.done;
      j["results"] = s.results;
      j["child_failed"] = s.child_failed;
      j["child_error"] = s.child_error;
    }
    if (kind.takes_decisions) j["decisions"] = s.decisions;
    steps[path] = std::move(j);
  }
  json frames = json::object();
  for (const auto& [id, f] : st.frames) {
    frames[id] = {{"parent", f.parent}, {"prefix", f.prefix},     {"current", f.current},
                  {"index", f.index},   {"detached", f.detached}, {"status", to_string(f.status)},
                  {"output", f.output}, {"error", f.error}};
  }
  json timers = json::object();
  for (const auto& [id, t] : st.timers) {
    timers[id] = {{"kind", to_string(t.kind)},
                  {"path", t.path},
                  {"attempt", t.attempt},
                  {"due_ms", t.due_ms}};
  }
  json out = {{"execution_id", st.execution_id},
              {"tenant", st.tenant},
              {"flow_id", st.flow_id},
              {"flow_version", st.flow_version},
              {"idempotency_key", st.idempotency_key},
              {"status", to_string(st.status)},
              {"input", st.input},
              {"output", st.output},
              {"error", st.error},
              {"created_ms", st.created_ms},
              {"updated_ms", st.updated_ms},
              {"ended_ms", st.ended_ms},
              {"timeout_ms", st.timeout_ms},
              {"timeout_fired", st.timeout_fired},
              {"last_seq", st.last_seq},
              {"parent_execution_id", st.parent_execution_id},
              {"forked_at_seq", st.forked_at_seq},
              {"steps", std::move(steps)},
              {"frames", std::move(frames)},
              {"timers", std::move(timers)},
              {"running", st.running},
              {"active_frames", st.active_frames},
              {"detached_active", st.detached_active}};
  if (!st.signals.empty()) {
    json signals = json::object();
    for (const auto& [name, queue] : st.signals) {
      json list = json::array();
      for (const auto& sig : queue) {
        list.push_back({{"seq", sig.seq},
                        {"signal_id", sig.signal_id},
                        {"data", sig.data},
                        {"received_ms", sig.received_ms}});
      }
      signals[name] = std::move(list);
    }
    out["signals"] = std::move(signals);
  }
  return out;
}

}  // namespace yantra
