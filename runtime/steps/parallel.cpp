// parallel: starts every branch of its body at once (a branch is a step no
// other step of the body transitions to; its frame is "<path>:<branch>" and
// shares the prefix of the frame that owns the parallel step) and ends by
// wait_for: all branches (failing at the first failure), any (the first to
// complete; failing once all failed) or none (at once; the branches run on
// detached and the run waits for them before it completes). apply() keeps
// the results by branch id (BodyKind::kBranches).
#include <algorithm>
#include <string>

#include "runtime/steps/decider.hpp"
#include "runtime/steps/step_kind.hpp"

namespace yantra::steps {
namespace {

void parse(ParseContext& ctx, const json& config, const std::string& cp, Step& step) {
  DocReader& r = ctx.reader();
  r.check_fields(config, cp, {"steps", "wait_for"});
  std::string wait_for;
  if (r.read_enum(config, "wait_for", cp, false, {"all", "any", "none"}, wait_for)) {
    step.wait_for = wait_for == "all"   ? WaitFor::kAll
                    : wait_for == "any" ? WaitFor::kAny
                                        : WaitFor::kNone;
  }
  ctx.parse_body(config, cp, step);
}

// The branches start in the first round it is running (drive).
void start(Decider&, const FrameCtx&, const Step&, const std::string&, uint32_t,
           v1::StepStarted& e) {
  e.set_input_json("null");
}

void drive(Decider& d, const FrameCtx& frame, const std::string& path, const StepState& s,
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
      child.prefix = frame.prefix;
      child.parent = path;
      child.detached = def.wait_for == WaitFor::kNone;
      child.is_new = true;
      d.start_step(child, root, 1);
    }
    if (def.wait_for == WaitFor::kNone) d.complete_container(path, s.attempt, json::object());
    return;
  }
  const size_t n = s.children.size();
  switch (def.wait_for) {
    case WaitFor::kAll:
      if (s.child_failed) {
        d.fail_container(path, s.attempt,
                         make_error("branch_failed",
                                    "branch " + s.child_error.value("frame", "") +
                                        " failed: " + s.child_error.value("message", ""),
                                    false, s.child_error));
      } else if (s.done >= n) {
        d.complete_container(path, s.attempt, s.results);
      }
      return;
    case WaitFor::kAny:
      if (!s.results.empty()) {
        d.complete_container(path, s.attempt, s.results);
      } else if (s.done >= n) {
        d.fail_container(
            path, s.attempt,
            make_error("branch_failed",
                       "every branch failed; last: " + s.child_error.value("message", ""), false,
                       s.child_error));
      }
      return;
    case WaitFor::kNone:
      // Completes in the round that starts its branches; still running
      // only in a log cut inside that round.
      d.complete_container(path, s.attempt, json::object());
      return;
  }
}

}  // namespace

extern const StepKind kParallel;
constinit const StepKind kParallel{
    .type = StepType::kParallel,
    .name = "parallel",
    .body = BodyKind::kBranches,
    .parse = parse,
    .start = start,
    .drive = drive,
};

}  // namespace yantra::steps
