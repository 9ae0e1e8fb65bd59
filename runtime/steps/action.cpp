// action: one call of a tool's action with parameters resolved when the
// attempt starts (so the log holds exactly what the tool received). What a
// tool call shares with any future kind that calls one (the running set, the
// InvokeTool command, retries, a retriable deadline) is the generic
// machinery's, switched on by `calls_tool`; this file only reads the config
// and resolves the parameters.
#include <algorithm>
#include <string>

#include "runtime/json_schema.hpp"
#include "runtime/steps/decider.hpp"
#include "runtime/steps/step_kind.hpp"

namespace yantra::steps {
namespace {

void parse(ParseContext& ctx, const json& config, const std::string& cp, Step& step) {
  DocReader& r = ctx.reader();
  r.check_fields(config, cp, {"action", "parameters", "timeout_ms", "tool_id"});
  bool has_tool = r.read_string(config, "tool_id", cp, true, step.tool_id, true);
  bool has_action = r.read_string(config, "action", cp, true, step.action, true);
  const json* parameters = DocReader::find(config, "parameters");
  const std::string pp = pointer_child(cp, "parameters");
  const std::vector<ToolSpec>& tools = ctx.tools();
  const ActionSpec* spec = nullptr;
  if (has_tool && !tools.empty()) {
    auto tool = std::find_if(tools.begin(), tools.end(),
                             [&](const ToolSpec& t) { return t.id == step.tool_id; });
    if (tool == tools.end()) {
      if (!ctx.stored()) {
        r.add(pointer_child(cp, "tool_id"), "unknown tool " + quote_name(step.tool_id));
      }
    } else if (has_action && !tool->actions.empty()) {
      spec = tool->find_action(step.action);
      if (spec == nullptr && !ctx.stored()) {
        r.add(pointer_child(cp, "action"),
              "tool " + quote_name(step.tool_id) + " has no action " + quote_name(step.action));
      }
    }
  }
  // The static parts of the parameters against the action's input schema;
  // $ref/$expr parts are checked when the attempt starts (start() below).
  if (spec != nullptr && !spec->input_schema.empty()) {
    step.input_schema = std::make_shared<const json>(spec->input_schema);
    if (!ctx.stored()) {
      std::vector<Problem> problems;
      validate_schema(spec->input_schema, parameters ? *parameters : json::object(), pp, problems);
      for (auto& p : problems) r.add(p.path, std::move(p.message));
    }
  }
  step.parameters = ctx.compile(parameters ? *parameters : json::object(), pp);
  r.read_int(config, "timeout_ms", cp, false, 0, kMaxDurationMs, step.timeout_ms);
  if (step.timeout_ms == 0 && spec != nullptr) step.timeout_ms = spec->default_timeout_ms;
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
  // What $ref/$expr produced, against the action's schema: a mismatch fails
  // the attempt before the tool sees it (retrying would give the same values).
  if (def.input_schema != nullptr) {
    std::vector<Problem> problems;
    validate_schema(*def.input_schema, params.value(), "", problems);
    if (!problems.empty()) {
      std::string message =
          "the parameters do not match the input schema of " + def.tool_id + "." + def.action + ":";
      for (size_t i = 0; i < problems.size() && i < 5; ++i) {
        message += (i == 0 ? " " : "; ") +
                   (problems[i].path.empty() ? std::string("(the parameters)") : problems[i].path) +
                   " " + problems[i].message;
      }
      if (problems.size() > 5) message += "; and " + std::to_string(problems.size() - 5) + " more";
      d.fail_step(path, attempt, make_error("invalid_parameters", message, false));
      return;
    }
  }
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
