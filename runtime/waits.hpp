// Signals and people in the loop: the pure rules of wait_signal and approval
// steps that the engine and the API need outside decide().
//
// Why a separate header: apply() records SignalReceived and ApprovalRecorded
// as facts and never refuses one for a policy reason, so every "may this be
// appended?" question (is the execution still running, is the signal buffer
// full, is this key an approver of that step, did it decide already) has to
// be answered before the event is written, from the state the engine holds.
// These functions answer them, and describe what is waiting, without a clock
// and without touching the state; decide() uses the same policy rules, so a
// check and the decision it leads to cannot disagree.
//
// What a waiting step waits for is read from the step's recorded input
// (StepStarted.input_json: wait_signal {"name","timeout_ms"}, approval
// {"approvers","policy","timeout_ms"}), not from the flow: the log is the
// truth, as with an action's resolved parameters.
//
// Approval policies count "seats": each approvers entry is a seat, taken by
// the first decision (in arrival order) of a key that matches it (the key id
// itself, or any key with the entry's role); one decision may take several
// seats (a key listed by id that also has a listed role). any: approved once
// a seat approves, rejected once every seat rejected; all: approved once
// every seat approved, rejected at the first rejecting seat; majority:
// approved once more than half the seats approved, rejected once that can no
// longer happen. A later decision of another matching key does not change a
// seat (it is still recorded, and shown).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "runtime/execution.hpp"
#include "runtime/flow.hpp"

namespace yantra {

// Buffered signals per execution, over all names. A signal for a name some
// step is waiting for right now is always accepted: it is consumed at once.
inline constexpr size_t kMaxPendingSignals = 1000;
inline constexpr size_t kMaxSignalNameBytes = 128;

// Before appending SignalReceived: ok, or "invalid_argument" (empty or too
// long name), "conflict" (the execution has not started or has ended),
// "too_many_signals" (kMaxPendingSignals are buffered already).
Status can_accept_signal(const ExecutionState& state, std::string_view name);

// The signal name a wait_signal step waits for, as its StepStarted
// recorded it ("" when its input has none).
std::string waited_signal_name(const StepState& step);

// Builds the input event for a signal (seq and time filled in as make_event
// does); the caller checks can_accept_signal() first.
v1::Event make_signal_event(const ExecutionState& state, std::string_view name, const json& data,
                            std::string_view signal_id, int64_t now_ms);

// Paths of the steps that wait for a signal or an approval now, sorted.
std::vector<std::string> input_waits(const ExecutionState& state);

// ---- approvals

enum class ApprovalOutcome { kPending, kApproved, kRejected };

// What an approval step waits for, as its StepStarted recorded it.
struct ApprovalSpec {
  std::vector<std::string> approvers;
  ApprovalPolicy policy = ApprovalPolicy::kAny;
};

// Null when the step is not an approval step or its input is malformed.
std::optional<ApprovalSpec> approval_spec(const StepState& step);

// Whether a decision of (key_id, role) takes the seat `entry` ("key_..." or
// "role:<role>").
bool approver_matches(std::string_view entry, std::string_view key_id, std::string_view role);

// The policy over the decisions so far (StepState::decisions).
ApprovalOutcome approval_outcome(const ApprovalSpec& spec, const json& decisions);

// The step output for a decided approval, and the details of a rejection:
// {"decision": "approved"|"rejected", "decisions": [...]}.
json approval_output(ApprovalOutcome outcome, const json& decisions);

// A decision the caller may record: the step it is for and the seats the
// caller's key matches.
struct ApprovalTarget {
  std::string step_path;
  std::string step_id;
  std::string frame;
  uint32_t attempt = 0;
  ApprovalSpec spec;
  std::vector<std::string> matched;  // the approvers entries the caller matches
};

// Before appending ApprovalRecorded: ok, or "not_found" (no approval step
// waits at step_path: unknown, not reached yet, already decided, or the
// execution ended), "forbidden" (the key matches no approvers entry),
// "conflict" (this key already decided on this attempt).
Result<ApprovalTarget> check_approval(const Flow& flow, const ExecutionState& state,
                                      std::string_view step_path, std::string_view key_id,
                                      std::string_view role);

// Builds the ApprovalRecorded input event for a checked target.
v1::Event make_approval_event(const ExecutionState& state, const ApprovalTarget& target,
                              std::string_view key_id, std::string_view role, bool approved,
                              std::string_view comment, int64_t now_ms);

// An approval step waiting now, for listings ("what waits for me").
struct PendingApproval {
  std::string step_path;
  std::string step_id;
  std::string frame;
  uint32_t attempt = 0;
  ApprovalSpec spec;
  json decisions = json::array();  // so far, in arrival order
  int64_t started_ms = 0;
  int64_t due_ms = 0;  // when it times out; 0 = never
};

// Every approval step waiting now, sorted by path. Steps the flow does not
// know (cannot happen with the pinned version) are left out.
std::vector<PendingApproval> pending_approvals(const Flow& flow, const ExecutionState& state);

// ---- passivation

// True when a settled state (what advance()/settle() leave) has no tool call
// in flight and nothing to do until a timer fires or a signal or approval
// arrives: the engine may unload the execution and wake it on those.
bool is_idle_waiting(const ExecutionState& state);

// The earliest pending durable timer (step deadlines, retries, delays, wait
// timeouts, the workflow timeout); nullopt when none is pending.
std::optional<int64_t> next_timer_due_ms(const ExecutionState& state);

}  // namespace yantra
