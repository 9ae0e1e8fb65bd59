// delay: waits duration_ms on a durable timer. The timer is the step's own
// (TimerKind::kDelay): when it fires apply() completes the step with
// {"delayed_ms": N}, so a delay needs nothing but its start.
#include <algorithm>
#include <string>

#include "runtime/steps/decider.hpp"
#include "runtime/steps/step_kind.hpp"

namespace yantra::steps {
namespace {

void parse(ParseContext& ctx, const json& config, const std::string& cp, Step& step) {
  DocReader& r = ctx.reader();
  r.check_fields(config, cp, {"duration_ms"});
  r.read_int(config, "duration_ms", cp, true, 0, kMaxDurationMs, step.duration_ms);
}

void start(Decider& d, const FrameCtx&, const Step& def, const std::string&, uint32_t,
           v1::StepStarted& e) {
  e.set_input_json(dump_canonical(json{{"duration_ms", def.duration_ms}}));
  // A due time of 0 means "no timer"; a zero delay still waits one tick.
  e.set_timer_due_ms(std::max<int64_t>(d.now() + std::max<int64_t>(def.duration_ms, 0), 1));
}

}  // namespace

extern const StepKind kDelay;
constinit const StepKind kDelay{
    .type = StepType::kDelay,
    .name = "delay",
    .timer = TimerKind::kDelay,
    .parse = parse,
    .start = start,
};

}  // namespace yantra::steps
