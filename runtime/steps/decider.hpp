// The Decider: one round of decide() (decide.cpp), and what a step kind's
// decide hooks (runtime/steps/<type>.cpp) may use of it. Internal to
// runtime/.
//
// A round looks at each active frame's current step and writes the next
// decisions down as events; it reads the flow, the state and `now` and
// never mutates the state. The generic part (frames, attempts, retries,
// transitions, ending frames and the execution) is the Decider's; a kind's
// `start` and `drive` hooks add what only that kind does, through the
// methods below. The Decider owns the events of the round: emit() appends
// one (seq and time filled in), which may move the earlier ones.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/execution.hpp"
#include "runtime/expr.hpp"
#include "runtime/flow.hpp"

namespace yantra {

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

  const json* lookup(std::string_view name) const override;

 private:
  const json* step_value(const StepState& s) const;
  const json* loop_var(bool want_item) const;
  const json* keep(json v) const;

  const ExecutionState& st_;
  const FrameCtx& ctx_;
  const json null_;
  mutable std::deque<json> owned_;
};

v1::Error make_error(const std::string& code, const std::string& message, bool retriable,
                     const json& details = nullptr);

class Decider {
 public:
  Decider(const Flow& flow, const ExecutionState& st, int64_t now)
      : flow_(flow), st_(st), now_(now) {}

  // The events of one round (empty: nothing to decide).
  std::vector<v1::Event> run();

  // ---- for the kinds' hooks

  const Flow& flow() const { return flow_; }
  const ExecutionState& state() const { return st_; }
  int64_t now() const { return now_; }

  v1::Event& emit();
  // Starts `step_id` in `frame` (opening the frame when frame.is_new).
  void start_step(const FrameCtx& frame, const std::string& step_id, uint32_t attempt);
  // Ends an attempt that is not a container's.
  v1::StepCompleted& complete_step(const std::string& path, uint32_t attempt, const json& output);
  void fail_step(const std::string& path, uint32_t attempt, v1::Error error);
  // Ends a container. Its frames are abandoned when this applies, so the
  // round stops after the current frame: a decision for one of them later in
  // the round would be applied after that and revive it.
  void complete_container(const std::string& path, uint32_t attempt, const json& output);
  void fail_container(const std::string& path, uint32_t attempt, v1::Error error);
  // The oldest buffered signal named `name` that no step took this round
  // (two waits for one name in one round take consecutive signals, in the
  // order apply() removes them); null when there is none.
  const PendingSignal* take_signal(const std::string& name);

 private:
  static FrameCtx ctx_of(const std::string& id, const FrameState& f);
  void drive_frame(const std::string& fid, const FrameState& f);
  void end_frame(const FrameCtx& ctx, bool failed, const json& value);
  void fail_execution(v1::Error error);

  const Flow& flow_;
  const ExecutionState& st_;
  int64_t now_;
  bool ended_ = false;
  bool container_ended_ = false;
  std::map<std::string, size_t> taken_;  // signals handed out this round, by name
  std::vector<v1::Event> out_;
};

}  // namespace yantra
