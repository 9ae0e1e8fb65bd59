// One step type, one StepKind: what the generic machinery of runtime/ must
// know about a type (its traits) and the few places where its behaviour
// differs (its hooks). Each type is one file in runtime/steps/ defining one
// constant StepKind; registry.cpp lists them in StepType order. Internal to
// runtime/ (and its tests): actors/ and api/ see StepType and the functions
// of execution.hpp, waits.hpp, fork.hpp and timeline.hpp, never a StepKind.
//
// Why traits plus a handful of hooks, not a class per type with a method per
// event: most of what a step does is the same for every type (frames,
// attempts, retries, transitions, timers, the end of an execution) and
// stays in decide.cpp and apply.cpp, written once. What differs is either a
// yes/no property (does an attempt call a tool? does the step own a body of
// frames?) that several generic places consult, or a small piece of logic:
// reading the config, what starting the step records, what a running step
// does each round. A property spelled as a trait is read the same way by
// decide(), apply(), the fork, the timeline and the snapshot code, so they
// cannot disagree about, say, which steps are containers.
//
// Why a plain table of function pointers: the kinds are constant data
// (constinit: no static-initialisation order to worry about), a lookup is
// an index (by StepType, for flows) or a compare over seven short names (by
// the kind string a StepStarted recorded, for states and logs: apply() never
// consults the flow), and a hook costs one indirect call where the code used
// to test the type: decide() still touches only live frames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "runtime/doc_reader.hpp"
#include "runtime/execution.hpp"
#include "runtime/flow.hpp"
#include "runtime/template.hpp"

namespace yantra {

class Decider;    // runtime/steps/decider.hpp
struct FrameCtx;  // runtime/steps/decider.hpp

// Durations are added to clock readings; a bound far above any real use keeps
// that arithmetic clear of int64 overflow.
inline constexpr int64_t kMaxDurationMs = 100LL * 365 * 24 * 3600 * 1000;  // 100 years

// The nested steps a container owns (config.steps).
enum class BodyKind {
  kNone,
  // One frame per item, entered at the body's first step; `item` and
  // `index` are visible inside; results are an array by index (loop).
  kIterations,
  // One frame per branch: every step no other step of the body transitions
  // to; results are an object by branch id (parallel).
  kBranches,
};

// What a kind's parse hook reads a step's config through: the flow parser's
// readers and its bookkeeping for the second pass (transitions and $ref/$expr
// roots are checked once every step id is known). Every problem is recorded
// at its JSON pointer; nothing throws.
class ParseContext {
 public:
  // The shared field readers ("is required", "unknown field 'x'", ...).
  virtual DocReader& reader() = 0;
  virtual bool read_bool(const json& obj, std::string_view key, std::string_view pointer,
                         bool& out) = 0;
  // A transition (a step id of the same scope), e.g. a condition's on_true.
  virtual void read_transition(const json& obj, std::string_view key, std::string_view pointer,
                               std::string& out) = 0;
  // A template whose $ref/$expr roots must be visible from the step.
  virtual Template compile(const json& doc, const std::string& pointer) = 0;
  // A root an expression reads (checked as a template's are).
  virtual void use(const std::string& root, const std::string& pointer) = 0;
  // The container's body, config.steps, shaped by the kind's BodyKind.
  virtual void parse_body(const json& config, const std::string& pointer, Step& step) = 0;
  // The tools an action may name (empty: any).
  virtual const std::vector<ToolSpec>& tools() const = 0;
  // ParseOptions::stored: the definition was accepted before (lenient about
  // tools that are gone and schemas that changed).
  virtual bool stored() const { return false; }

 protected:
  ~ParseContext() = default;
};

struct StepKind {
  StepType type;
  std::string_view name;  // in definitions, StepStarted.kind and StepState::kind (a stored format)

  // ---- traits

  // An attempt is a call to a tool: it is in ExecutionState::running while in
  // flight, decide() returns an InvokeTool command for it (tool_id, action,
  // timeout_ms of the Step, its recorded input as parameters), its deadline
  // is retriable, and it may have a retry_config.
  bool calls_tool = false;
  // A container: children frames are started by its drive hook; ending it
  // abandons them; fork/resume and the timeline follow them.
  BodyKind body = BodyKind::kNone;
  // While running it waits for signals or approvals: the run may be
  // passivated (unless input_ready), input_waits() and the timeline list
  // it, and it may have an on_timeout transition.
  bool waits_for_input = false;
  // It chooses its successor (BranchTaken.next) instead of following
  // on_success; a fork patch cannot set its output (an output cannot say
  // which way to go).
  bool branches = false;
  // It takes ApprovalRecorded decisions (StepState::decisions, reset per
  // attempt, shown in the state and in its timeout's error details).
  bool takes_decisions = false;
  // The timer StepStarted.timer_due_ms starts: a deadline that fails the
  // attempt, or kDelay, the step's own timer that completes it.
  TimerKind timer = TimerKind::kDeadline;

  // ---- hooks (null: nothing type-specific)

  // Reads `config` (at `pointer`) into `step`: its fields, and problems.
  void (*parse)(ParseContext& ctx, const json& config, const std::string& pointer,
                Step& step) = nullptr;
  // decide(): the step starts (attempt `attempt` at `path`). `started` is the
  // StepStarted being written: the hook sets input_json (what the attempt
  // works on, recorded so the log holds exactly that) and timer_due_ms, and
  // may then write more events through `d` (a StepFailed for input that did
  // not resolve, a condition's BranchTaken). Set `started` first: writing
  // another event may move it.
  void (*start)(Decider& d, const FrameCtx& frame, const Step& def, const std::string& path,
                uint32_t attempt, v1::StepStarted& started) = nullptr;
  // decide(): a round in which the step is its frame's current step and
  // running: start children, end the step once its input arrived, ...
  // Null: it waits for a tool result or a timer, which apply() records.
  void (*drive)(Decider& d, const FrameCtx& frame, const std::string& path, const StepState& s,
                const Step& def) = nullptr;
  // apply(): checks a StepCompleted of this kind beyond the generic checks
  // (attempt, in flight) and records its kind-specific effect, before the
  // step is marked completed. An error leaves `st` unchanged. Null: a
  // StepCompleted that consumes a signal is refused.
  Status (*complete)(ExecutionState& st, const std::string& path, const StepState& s,
                     const v1::StepCompleted& event) = nullptr;
  // waits_for_input kinds: whether decide() would end the step now (its
  // signal is buffered, its approval policy is settled): then the run is
  // not idle.
  bool (*input_ready)(const ExecutionState& st, const StepState& s) = nullptr;
  // waits_for_input kinds: the timeline's "waiting_for" ({"kind", ...}; the
  // timeline adds "due_at_ms").
  json (*waiting_for)(const StepState& s) = nullptr;
};

// Every registered kind, in StepType order (registry.cpp).
std::span<const StepKind* const> step_kinds();

// The kind of a StepType of a parsed flow.
const StepKind& step_kind(StepType type);

// The kind a definition names; null when no registered kind has that name.
const StepKind* find_step_kind(std::string_view name);

// The kind of a recorded step (StepState::kind, StepStarted.kind). A name no
// registered kind has (a log written by a later version) gets a kind with no
// traits and no hooks, which is how such a step has always been treated.
const StepKind& recorded_kind(std::string_view name);

// The names of the kinds that have `trait` (all kinds when null), in
// registry order, joined as "a, b and c" (or with `last` instead of " and ").
std::string step_kind_names(bool StepKind::*trait = nullptr, std::string_view last = " and ");

}  // namespace yantra
