// The execution state machine: ExecutionState, apply() and decide().
//
//   state' = apply(state, event)            pure, flow-free, total on a valid log
//   decide(flow, state, now) -> Decision    pure; new events, or the commands
//                                           the (settled) state requires
//
// apply() only records facts; every choice (which step runs next, whether to
// retry, when a loop is done) is made by decide() and written down as an
// event first. Replay is therefore fold(apply) over the log, with no flow
// and no clock needed, and live execution and recovery share one code path
// (Temporal's Apply*/Add* split).
//
// Frames: a frame is one thread of sequential steps: the root ("") of the
// flow, one iteration of a loop ("<loop path>[i]") or one branch of a
// parallel step ("<parallel path>:<branch>"). A step instance is addressed by
// its path: frame prefix + step id, e.g. "each[2]/fetch" (branch frames share
// the prefix of the frame that owns the parallel step).
//
// Time enters only through events (each carries time_ms) and through the
// `now_ms` argument of decide(), whose output is recorded before use.
//
// Waiting for the outside world (since 0.3): a wait_signal or approval step
// is "running" while it waits. What it waits for arrives as input events the
// engine appends (SignalReceived, ApprovalRecorded); apply() only records
// them (signals are buffered per name, decisions on the step), and decide()
// turns them into the step's end: it consumes the oldest buffered signal of
// the step's name (StepCompleted.signal_seq names it, so apply() stays
// flow-free and a signal is consumed exactly once), or completes/fails an
// approval once its policy is decided. The pure checks the engine and API
// run before appending live in runtime/waits.hpp.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "runtime/flow.hpp"
#include "yantra/v1/events.pb.h"

namespace yantra {

enum class ExecStatus { kRunning, kWaiting, kCompleted, kFailed, kCancelled, kTimedOut };
enum class StepStatus {
  kRunning,        // attempt in flight (action, delay) or children running (loop, parallel)
  kAttemptFailed,  // the attempt failed and may be retried; decide() schedules the retry
  kRetryWaiting,   // retry timer pending
  kRetryReady,     // retry timer fired; decide() starts the next attempt
  kCompleted,
  kFailed,  // final
};
enum class FrameStatus { kActive, kCompleted, kFailed, kAbandoned };
enum class TimerKind { kDeadline, kRetry, kDelay, kWorkflowTimeout };

const char* to_string(ExecStatus);
const char* to_string(StepStatus);
const char* to_string(FrameStatus);
const char* to_string(TimerKind);
bool is_terminal(ExecStatus);

struct StepState {
  std::string step_id;
  std::string frame;
  std::string kind;  // action, condition, loop, parallel, delay, wait_signal, approval
  StepStatus status = StepStatus::kRunning;
  uint32_t attempt = 0;
  uint32_t max_attempts = 1;
  json input;
  json output;
  json error;  // {"code","message","retriable"} of the latest failure
  int64_t first_started_ms = 0;
  int64_t started_ms = 0;
  int64_t ended_ms = 0;
  std::string next;  // condition: chosen successor
  // containers (loop, parallel)
  std::vector<std::string> children;  // frame ids, in start order
  uint32_t next_index = 0;            // loop: next iteration to start
  uint32_t active = 0;
  uint32_t done = 0;
  json results;  // loop: array by index; parallel: object by branch
  bool child_failed = false;
  json child_error;
  // approval: the decisions of the current attempt, in arrival order, each
  // {"key_id","role","decision","comment","time_ms"} (null for other kinds).
  json decisions;
};

struct FrameState {
  std::string parent;   // container step path ("" for the root frame)
  std::string prefix;   // prepended to step ids to form paths
  std::string current;  // path of the frame's current step
  int32_t index = -1;   // loop iteration, -1 otherwise
  bool detached = false;
  FrameStatus status = FrameStatus::kActive;
  json output;
  json error;
};

// A signal delivered to the execution that no wait_signal step consumed yet.
struct PendingSignal {
  uint64_t seq = 0;  // of its SignalReceived: how StepCompleted names it
  std::string signal_id;
  json data;
  int64_t received_ms = 0;
};

struct Timer {
  TimerKind kind = TimerKind::kDeadline;
  std::string path;
  uint32_t attempt = 0;
  int64_t due_ms = 0;
};

struct ExecutionState {
  std::string execution_id;
  std::string tenant;
  std::string flow_id;
  uint32_t flow_version = 0;
  std::string idempotency_key;
  bool started = false;
  ExecStatus status = ExecStatus::kRunning;
  json input;
  json output;
  json error;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t ended_ms = 0;
  int64_t timeout_ms = 0;
  bool timeout_fired = false;
  uint64_t last_seq = 0;
  // A fork records where it came from (ExecutionStarted, since 0.2).
  std::string parent_execution_id;
  uint64_t forked_at_seq = 0;
  std::map<std::string, StepState> steps;
  std::map<std::string, FrameState> frames;
  std::map<std::string, Timer> timers;  // by timer id
  // Buffered signals by name, oldest first (bounded by the engine through
  // can_accept_signal() in runtime/waits.hpp). Kept after the execution ends,
  // so a resumed run still sees them.
  std::map<std::string, std::vector<PendingSignal>> signals;
  // Derived indexes, maintained by apply() so decide() touches only live work.
  std::set<std::string> running;        // action steps with an attempt in flight
  std::set<std::string> active_frames;  // frames decide() must drive
  uint32_t detached_active = 0;

  // running / waiting / terminal, as shown to users: "waiting" when no tool
  // call is in flight and the execution only waits for timers, signals or
  // approvals.
  std::string display_status() const;
};

// Canonical JSON of the whole state (sorted keys): equal states give equal
// bytes. Used by tests, snapshots and the API.
json to_json(const ExecutionState& state);

// Applies one event. Error "invalid_event" (and the state unchanged) when the
// event does not fit the state: a gap in seq, an unknown step, ...
// No event applies after a terminal one, except Resumed on a failed or
// timed-out execution (see runtime/fork.hpp for StateOverridden/Resumed).
Status apply(ExecutionState& state, const v1::Event& event);

// Folds a whole log from the empty state.
Result<ExecutionState> fold(const std::vector<v1::Event>& events);

struct Command {
  enum class Kind { kInvokeTool, kStartTimer };
  Kind kind = Kind::kInvokeTool;
  // kInvokeTool
  std::string path;
  uint32_t attempt = 0;
  std::string tool_id;
  std::string action;
  json parameters;
  int64_t timeout_ms = 0;
  std::string idempotency_key;  // <execution>/<path>/<attempt>
  // kStartTimer
  std::string timer_id;
  int64_t due_ms = 0;

  bool operator==(const Command&) const = default;
};

struct Decision {
  // New events (seq and time_ms filled in) to record, then apply, then call
  // decide() again. Empty when the state is settled.
  std::vector<v1::Event> events;
  // Only when `events` is empty: every side effect the settled state needs
  // in flight (a tool call per running attempt, a timer per pending timer).
  // Idempotent: callers launch what is not already in flight.
  std::vector<Command> commands;
};

Decision decide(const Flow& flow, const ExecutionState& state, int64_t now_ms);

// Calls decide() and applies its events until the state settles; returns the
// events (possibly none) and the commands of the settled state. Error when
// an event does not apply or decide() does not settle (a bug: guarded so a
// poison execution fails instead of spinning).
Result<std::vector<v1::Event>> settle(const Flow& flow, ExecutionState& state, int64_t now_ms,
                                      std::vector<Command>* commands);

// Convenience for callers that own an input event (start, tool result, timer,
// cancel): the fully decided batch to persist, starting with `input` (whose
// seq and time_ms are filled in here): apply(input) then settle().
Result<std::vector<v1::Event>> advance(const Flow& flow, ExecutionState& state, v1::Event input,
                                       int64_t now_ms, std::vector<Command>* commands);

// Helpers to build input events with the next seq.
v1::Event make_event(const ExecutionState& state, int64_t now_ms);

std::string dump_canonical(const json& value);

}  // namespace yantra
