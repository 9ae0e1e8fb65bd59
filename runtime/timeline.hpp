// The timeline of an execution: what ran, when, how often, with what, and
// which way it went, per step instance. Why derive it from the events and
// not from the state: the state keeps only the latest attempt of a step,
// while the log keeps every attempt with its times, inputs and results, and
// the points where a user overrode state or resumed the run.
//
// Shape (all times in ms since the epoch, as in the events):
//   {"execution_id", "status" (display status after the last event),
//    "parent_execution_id", "forked_at_seq", "first_seq", "last_seq",
//    "steps": [ per step instance, ordered by its first event:
//      {"step_id", "path", "frame", "type",
//       "status" (the step's status after the last event),
//       "first_seq", "last_seq" (events that touched the step),
//       "attempts": [{"attempt", "started_at_ms", "ended_at_ms" (null while
//          running), "duration_ms" (null while running), "input",
//          "output" (completed) | "error" (failed, timed_out),
//          "outcome": completed | failed | timed_out | running | abandoned,
//          "first_seq", "last_seq"}],
//       "branch": {"result", "next"}            (conditions, once evaluated)
//       "override": {"seq", "output"}           (when StateOverridden set it)
//       "waiting_for": {"kind": "signal", "name", "due_at_ms"} |
//                      {"kind": "approval", "approvers", "policy", "due_at_ms"}
//                      (a wait_signal/approval step waiting after the last
//                      event; due_at_ms null without a timeout)
//      }],
//    attempts of wait_signal steps that consumed a signal carry
//      "signal": {"seq", "name", "signal_id"}; attempts of approval steps
//      carry "decisions": [{"seq", "key_id", "role", "decision", "comment",
//      "time_ms"}] (those made on that attempt, in order);
//    "overrides": [{"seq", "patch"}], "resumes": [{"seq", "steps", "frames"}],
//    "signals": [{"seq", "name", "signal_id", "data", "received_at_ms",
//                 "consumed_by" (step path, null while buffered),
//                 "consumed_seq"}]  (in arrival order),
//    "error": "..." (only when an event did not apply; the timeline stops
//                    there)}
// Outcomes: "timed_out" is a step deadline that fired; "abandoned" is an
// attempt nobody waits for any more (its frame was abandoned, the execution
// ended while it was in flight, or a StateOverridden replaced its result).
// Inputs, outputs, errors, patches, signal data and approval comments pass
// through redact(): secret markers and the given resolved secret values are
// never shown.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "yantra/v1/events.pb.h"

namespace yantra {

using json = nlohmann::json;

json timeline(const std::vector<v1::Event>& events,
              const std::vector<std::string>& secret_values = {});

}  // namespace yantra
