// loop: runs its body once per item of an array resolved when it starts
// (recorded as the step's input), one iteration after another or, with
// `parallel`, up to max_concurrency at once. Each iteration is a frame
// "<loop path>[i]"; apply() keeps the count of active and finished ones and
// the results by index (BodyKind::kIterations), and drops the frames of
// completed iterations. The loop fails at the first failed iteration.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "runtime/steps/decider.hpp"
#include "runtime/steps/step_kind.hpp"

namespace yantra::steps {
namespace {

void parse(ParseContext& ctx, const json& config, const std::string& cp, Step& step) {
  DocReader& r = ctx.reader();
  r.check_fields(config, cp, {"items", "max_concurrency", "max_iterations", "parallel", "steps"});
  if (const json* items = DocReader::find(config, "items")) {
    // Only an array can be iterated: a literal must be one, a $ref/$expr
    // is checked when it is evaluated.
    if (items->is_array() ||
        (items->is_object() && (items->contains("$ref") || items->contains("$expr")))) {
      step.items = ctx.compile(*items, pointer_child(cp, "items"));
    } else {
      r.add(pointer_child(cp, "items"), "must be an array, a $ref or a $expr");
    }
  } else {
    r.add(pointer_child(cp, "items"), "is required");
  }
  ctx.read_bool(config, "parallel", cp, step.parallel);
  int64_t n = 0;
  if (r.read_int(config, "max_iterations", cp, false, 1, 100000, n)) {
    step.max_iterations = static_cast<uint32_t>(n);
  }
  if (r.read_int(config, "max_concurrency", cp, false, 0, std::numeric_limits<int64_t>::max(), n)) {
    // Any bound above uint32 is "unbounded" in practice.
    step.max_concurrency =
        static_cast<uint32_t>(std::min<int64_t>(n, std::numeric_limits<uint32_t>::max()));
  }
  ctx.parse_body(config, cp, step);
}

void start(Decider& d, const FrameCtx& frame, const Step& def, const std::string& path,
           uint32_t attempt, v1::StepStarted& e) {
  FrameScope scope(d.state(), frame);
  auto items = def.items.eval(scope);
  if (!items.ok()) {
    e.set_input_json("null");
    d.fail_step(path, attempt, make_error("invalid_items", items.status().message(), false));
    return;
  }
  if (!items.value().is_array()) {
    e.set_input_json("null");
    d.fail_step(
        path, attempt,
        make_error("invalid_items",
                   std::string("loop items must be an array, got ") + items.value().type_name(),
                   false));
    return;
  }
  if (items.value().size() > def.max_iterations) {
    e.set_input_json("null");
    d.fail_step(
        path, attempt,
        make_error("too_many_iterations",
                   "loop has " + std::to_string(items.value().size()) +
                       " items, more than max_iterations " + std::to_string(def.max_iterations),
                   false));
    return;
  }
  e.set_input_json(dump_canonical(items.value()));
}

void drive(Decider& d, const FrameCtx&, const std::string& path, const StepState& s,
           const Step& def) {
  if (!s.input.is_array()) {
    // Items that did not resolve fail the loop in the round that starts
    // it; only a log cut in between (a fork) shows a running loop without
    // items. Fail it as that round would have.
    d.fail_container(
        path, s.attempt,
        make_error("invalid_items", "the loop's items were not resolved when it started", false));
    return;
  }
  const size_t n = s.input.size();
  if (s.child_failed) {
    d.fail_container(path, s.attempt,
                     make_error("iteration_failed",
                                "iteration " + s.child_error.value("frame", "") +
                                    " failed: " + s.child_error.value("message", ""),
                                false, s.child_error));
    return;
  }
  if (s.done >= n) {
    d.complete_container(path, s.attempt, s.results);
    return;
  }
  if (def.body == nullptr || def.body->roots.empty()) return;
  uint32_t limit = 1;
  if (def.parallel) limit = def.max_concurrency == 0 ? UINT32_MAX : def.max_concurrency;
  uint32_t active = s.active;
  for (uint32_t i = s.next_index; i < n && active < limit; ++i, ++active) {
    FrameCtx child;
    child.id = path + "[" + std::to_string(i) + "]";
    child.prefix = child.id + "/";
    child.parent = path;
    child.index = static_cast<int32_t>(i);
    child.is_new = true;
    d.start_step(child, def.body->roots.front(), 1);
  }
}

}  // namespace

extern const StepKind kLoop;
constinit const StepKind kLoop{
    .type = StepType::kLoop,
    .name = "loop",
    .body = BodyKind::kIterations,
    .parse = parse,
    .start = start,
    .drive = drive,
};

}  // namespace yantra::steps
