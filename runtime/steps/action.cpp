// action: one call of a tool's action with parameters resolved when the
// attempt starts (so the log holds exactly what the tool received). What a
// tool call shares with any future kind that calls one (the running set, the
// InvokeTool command, retries, a retriable deadline) is the generic
// machinery's, switched on by `calls_tool`; this file only reads the config
// and resolves the parameters.
#include <algorithm>
#include <string>

#include "runtime/steps/decider.hpp"
#include "runtime/steps/step_kind.hpp"

namespace yantra::steps {
namespace {

void parse(ParseContext& ctx, const json& config, const std::string& cp, Step& step) {
  DocReader& r = ctx.reader();
  r.check_fields(config, cp, {"action", "parameters", "timeout_ms", "tool_id"});
  bool has_tool = r.read_string(config, "tool_id", cp, true, step.tool_id, true);
  bool has_action = r.read_string(config, "action", cp, true, step.action, true);
  const std::vector<ToolSpec>& tools = ctx.tools();
  if (has_tool && !tools.empty()) {
    auto tool = std::find_if(tools.begin(), tools.end(),
                             [&](const ToolSpec& t) { return t.id == step.tool_id; });
    if (tool == tools.end()) {
      r.add(pointer_child(cp, "tool_id"), "unknown tool " + quote_name(step.tool_id));
    } else if (has_action && !tool->actions.empty() &&
               std::find(tool->actions.begin(), tool->actions.end(), step.action) ==
                   tool->actions.end()) {
      r.add(pointer_child(cp, "action"),
            "tool " + quote_name(step.tool_id) + " has no action " + quote_name(step.action));
    }
  }
  const json* parameters = DocReader::find(config, "parameters");
  step.parameters =
      ctx.compile(parameters ? *parameters : json::object(), pointer_child(cp, "parameters"));
  r.read_int(config, "timeout_ms", cp, false, 0, kMaxDurationMs, step.timeout_ms);
}

void start(Decider& d, const FrameCtx& frame, const Step& def, const std::string& path,
           uint32_t attempt, v1::StepStarted& e) {
  FrameScope scope(d.state(), frame);
  auto params = def.parameters.eval(scope);
  if (!params.ok()) {
    e.set_input_json("null");
    d.fail_step(path, attempt, make_error("invalid_parameters", params.status().message(), false));
    return;
  }
  e.set_input_json(dump_canonical(params.value()));
  if (def.timeout_ms > 0) e.set_timer_due_ms(d.now() + def.timeout_ms);
}

}  // namespace

extern const StepKind kAction;
constinit const StepKind kAction{
    .type = StepType::kAction,
    .name = "action",
    .calls_tool = true,
    .parse = parse,
    .start = start,
};

}  // namespace yantra::steps
