// Fork ("replay with changes") and retry ("resume") of executions: the pure
// half of the time machine. Both only build events; the engine persists them
// and then drives the execution with decide() as usual, so a fork or a
// resumed run is an ordinary execution from then on, and its history says
// exactly what the user changed.
//
// Why a fork copies events instead of referencing the source: the event log
// stays the only truth of an execution (fold its own events, nothing else),
// the source is never touched (its bytes stay identical), and the copy's
// ExecutionStarted names the parent and fork point for the UI.
//
// ---------------------------------------------------------------- make_fork
// make_fork(source, at_seq, patch, new_id, now) returns:
//   1. events 1..at_seq of `source`, unchanged except ExecutionStarted:
//      execution_id = new_id, parent_execution_id = the source's id,
//      forked_at_seq = at_seq, idempotency_key cleared (the client's key
//      named the source run, not this one);
//   2. when `patch` is neither null nor {}: one StateOverridden event (seq
//      at_seq + 1, time now) carrying the patch as canonical JSON.
// Errors:
//   - "invalid_argument": at_seq < 1 or past the source's last seq (the
//     message names the bound), an empty new_id, a source log that does not
//     fold, or a malformed patch. The patch shape is strict:
//       {"input": {...}, "steps": {"<step path>": {"output": <any>}}}
//     (both members optional); unknown members, a step path the state at
//     at_seq does not have, and condition steps (their successor was chosen
//     by the flow, an output cannot say which branch to take) are rejected
//     with the JSON pointer of the offending member, every problem in
//     Status::details().
//   - "conflict": the state at at_seq is terminal and a patch was given: a
//     finished copy cannot continue, fork from an earlier seq instead. Without
//     a patch such a fork is simply the finished copy (same output).
// The result always folds. at_seq may fall inside a batch decide() wrote at
// once (between a condition's StepStarted and BranchTaken, between the
// branch starts of a parallel, ...): decide() finishes such an interrupted
// round itself (decide.cpp), except that an action cut between StepStarted
// and the StepFailed of parameters that did not resolve is invoked with null
// parameters; fork before it or override it.
//
// StateOverridden (apply()): "input" is merged into the execution input as
// an RFC 7396 merge patch; each listed step instance becomes completed with
// the given output (ended_ms = event time): it leaves the running set, its
// deadline/delay/retry timers are dropped and its active child frames are
// abandoned (as when a container completes). An override changes the flow
// only where the step is the current step of a live frame (decide() then
// moves on from it, as after a StepCompleted); for a step that already ended
// it only changes the data later steps read. To replace the output of a step
// that failed, fork at the seq just before its StepFailed (or any seq while
// it is still the current step of its frame, before the failure reached the
// execution). The first StateOverridden right after a fork's copied events
// also restarts the fork's clock: every pending timer is shifted by (event
// time - time of event at_seq), so deadlines, retries, delays and the
// workflow timeout keep the time that remained at the fork point. A fork
// without a patch keeps the source's due times (pass {"input": {}} to get
// only the clock restart).
//
// ---------------------------------------------------------------- make_resume
// make_resume(state, now) returns the Resumed event (seq last_seq + 1) that
// retries a failed or timed-out execution (error "conflict" for any other
// status). Its lists are computed from the state; the rules are:
//   frames: every frame to make active again:
//     - the root frame "" (finish() dropped every frame from active_frames;
//       the root never gets a FrameEnded, so it is still "active" in
//       `frames`);
//     - every other frame still "active" in `frames` (detached parallel
//       branches that were running when the execution ended);
//     - on the failure chain (failed executions only): the failed child frames
//       of a container that failed because of a child, and the frames that
//       container abandoned when it failed (they must run again or the
//       container would wait for them forever), recursively;
//     - inside a revived frame, the abandoned frames of a running container.
//   steps: for each revived frame, its current step when it is
//     - running (an action whose call was in flight, a delay, a condition,
//       a wait_signal or approval step): listed, so it starts a new attempt
//       (actions: attempt + 1, a fresh idempotency key
//       <execution>/<path>/<attempt + 1>; delays start their full delay
//       again; waits wait again, an approval asking anew);
//     - retry_waiting (finish() dropped its retry timer): listed, so the
//       retry starts at once;
//     - failed (failed executions only): listed; a loop/parallel that failed
//       because of a child frame is driven again over its revived children
//       instead of restarting, others start attempt + 1;
//     - completed, attempt_failed, retry_ready: not listed (decide() moves on
//       from them as usual).
//   A running container is not listed: it keeps running over its children.
//
// Resumed (apply(), only on a failed or timed-out execution): status running,
// error/output cleared, ended_ms = 0, timeout_fired = false, the workflow
// timeout re-armed as (event time + timeout_ms) when timeout_ms > 0. Each
// listed frame becomes active (into active_frames); a frame that had ended
// (failed/completed) counts as active in its container again (active + 1,
// done - 1, detached_active + 1 for a detached one); an abandoned frame
// never stopped being counted. Each listed step: a loop/parallel with child
// frames becomes running with child_failed/child_error cleared; any other
// step becomes retry_ready (its timers dropped), so decide() starts attempt
// + 1. A retried step gets one new attempt: its retry policy then applies to
// the attempt count as it stands (the budget is not renewed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "runtime/execution.hpp"

namespace yantra {

Result<std::vector<v1::Event>> make_fork(const std::vector<v1::Event>& source, uint64_t at_seq,
                                         const json& patch, const std::string& new_execution_id,
                                         int64_t now_ms);

Result<v1::Event> make_resume(const ExecutionState& state, int64_t now_ms);

}  // namespace yantra
