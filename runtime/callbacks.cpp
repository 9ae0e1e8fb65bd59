// callback_messages(): see callbacks.hpp for the contract. Design notes:
//
// - The common case is a flow without callbacks, on every batch of every
//   execution: it returns an empty vector before touching the batch (no
//   allocation). With callbacks, an event no callback subscribes to costs a
//   switch and a few string compares; payloads are built only for
//   subscribers, once per event and copied per extra subscriber.
// - Everything comes from the batch and the state after it, never from a
//   clock: "time" is the event's own time_ms, so the same batch always gives
//   the same bytes.
// - JSON text from the log that does not parse (it always should) is passed
//   on as the raw string rather than dropping the callback: a receiver is
//   better served by an odd field than by a missing event.
#include "runtime/callbacks.hpp"

#include <algorithm>

#include "base/time.hpp"
#include "runtime/redact.hpp"

namespace yantra {
namespace {

json parse_or_raw(const std::string& text) {
  if (text.empty()) return nullptr;
  json v = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return v.is_discarded() ? json(text) : v;
}

json error_json(const v1::Error& e) {
  json j = {{"code", e.code()}, {"message", e.message()}, {"retriable", e.retriable()}};
  if (!e.details_json().empty()) j["details"] = parse_or_raw(e.details_json());
  return j;
}

std::string step_id_of(const ExecutionState& after, const std::string& path) {
  auto it = after.steps.find(path);
  return it == after.steps.end() ? "" : it->second.step_id;
}

// A failed attempt is followed by another when the step waits for a retry
// once the batch is applied (and the execution goes on).
bool will_retry(const ExecutionState& after, const std::string& path, uint32_t attempt) {
  if (is_terminal(after.status)) return false;
  auto it = after.steps.find(path);
  if (it == after.steps.end() || it->second.attempt != attempt) return false;
  const StepStatus s = it->second.status;
  return s == StepStatus::kAttemptFailed || s == StepStatus::kRetryWaiting ||
         s == StepStatus::kRetryReady;
}

// The "data" member of an event's payload.
json event_data(const ExecutionState& after, const v1::Event& ev) {
  switch (ev.body_case()) {
    case v1::Event::kExecutionStarted: {
      const auto& e = ev.execution_started();
      json d = {{"input", parse_or_raw(e.input_json())}};
      if (!e.parent_execution_id().empty()) {
        d["parent_execution_id"] = e.parent_execution_id();
        d["forked_at_seq"] = e.forked_at_seq();
      }
      return d;
    }
    case v1::Event::kStepCompleted: {
      const auto& e = ev.step_completed();
      return {{"path", e.path()},
              {"step_id", step_id_of(after, e.path())},
              {"attempt", e.attempt()},
              {"output", parse_or_raw(e.output_json())}};
    }
    case v1::Event::kStepFailed: {
      const auto& e = ev.step_failed();
      return {{"path", e.path()},
              {"step_id", step_id_of(after, e.path())},
              {"attempt", e.attempt()},
              {"error", error_json(e.error())},
              {"will_retry", will_retry(after, e.path(), e.attempt())}};
    }
    case v1::Event::kExecutionCompleted:
      return {{"output", parse_or_raw(ev.execution_completed().output_json())}};
    case v1::Event::kExecutionFailed: return {{"error", error_json(ev.execution_failed().error())}};
    case v1::Event::kExecutionCancelled: return {{"reason", ev.execution_cancelled().reason()}};
    case v1::Event::kExecutionTimedOut:
      return {{"timeout_ms", ev.execution_timed_out().timeout_ms()}};
    default: return json::object();
  }
}

}  // namespace

std::string_view callback_event_type(const v1::Event& event) {
  switch (event.body_case()) {
    case v1::Event::kExecutionStarted: return "execution.started";
    case v1::Event::kStepCompleted: return "step.completed";
    case v1::Event::kStepFailed: return "step.failed";
    case v1::Event::kExecutionCompleted: return "execution.completed";
    case v1::Event::kExecutionFailed: return "execution.failed";
    case v1::Event::kExecutionCancelled: return "execution.cancelled";
    case v1::Event::kExecutionTimedOut: return "execution.timed_out";
    default: return "";
  }
}

std::vector<CallbackMessage> callback_messages(const Flow& flow, const ExecutionState& after,
                                               const std::vector<v1::Event>& batch) {
  std::vector<CallbackMessage> out;
  if (flow.callbacks.empty()) return out;
  for (const v1::Event& ev : batch) {
    const std::string_view type = callback_event_type(ev);
    if (type.empty()) continue;
    // A fork starts with a copy of its parent's events; they happened to
    // the parent (whose callbacks reported them), not to this execution.
    if (ev.seq() <= after.forked_at_seq && !ev.has_execution_started()) continue;
    json payload;  // built for the first subscriber, copied for the others
    for (size_t i = 0; i < flow.callbacks.size(); ++i) {
      const Callback& cb = flow.callbacks[i];
      if (std::find(cb.events.begin(), cb.events.end(), type) == cb.events.end()) continue;
      CallbackMessage& m = out.emplace_back();
      m.id = after.execution_id + "/" + std::to_string(ev.seq()) + "/" + std::to_string(i);
      m.type = std::string(type);
      m.url = cb.url;
      m.secret = cb.secret;
      m.event_ms = ev.time_ms();
      if (payload.is_null()) {
        payload = {{"type", m.type},
                   {"execution_id", after.execution_id},
                   {"flow_id", after.flow_id},
                   {"flow_version", after.flow_version},
                   {"tenant", after.tenant},
                   {"seq", ev.seq()},
                   {"time", format_rfc3339_ms(ev.time_ms())},
                   {"data", redact(event_data(after, ev))}};
      }
      m.payload = payload;
      m.payload["id"] = m.id;
    }
  }
  return out;
}

int64_t callback_retry_delay_ms(uint32_t failed_attempts, int64_t initial_ms, int64_t max_ms) {
  int64_t delay = std::max<int64_t>(1, initial_ms);
  for (uint32_t i = 1; i < failed_attempts && delay < max_ms; ++i) delay *= 2;
  return std::min(delay, max_ms);
}

}  // namespace yantra
