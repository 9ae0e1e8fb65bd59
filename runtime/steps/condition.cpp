// condition: compares two templates with an operator, or evaluates one
// $expr, and goes to on_true or on_false (each defaulting to on_success).
// It is evaluated in the round that starts it: StepStarted records what was
// compared and BranchTaken the way it went, which apply() turns into a
// completed step whose successor is BranchTaken.next (`branches`).
#include <memory>
#include <string>

#include "runtime/steps/decider.hpp"
#include "runtime/steps/step_kind.hpp"

namespace yantra::steps {
namespace {

void parse(ParseContext& ctx, const json& config, const std::string& cp, Step& step) {
  DocReader& r = ctx.reader();
  r.check_fields(config, cp, {"condition", "on_false", "on_true"});
  ctx.read_transition(config, "on_true", cp, step.on_true);
  ctx.read_transition(config, "on_false", cp, step.on_false);

  const json* cond = DocReader::find(config, "condition");
  std::string p = pointer_child(cp, "condition");
  if (cond == nullptr) {
    r.add(p, "is required");
    return;
  }
  if (!cond->is_object()) {
    r.add(p, "must be an object");
    return;
  }
  if (const json* source = DocReader::find(*cond, "$expr")) {
    r.check_fields(*cond, p, {"$expr"});
    std::string ep = pointer_child(p, "$expr");
    if (!source->is_string()) {
      r.add(ep, "must be a string");
      return;
    }
    auto parsed = expr::Expression::parse(source->get_ref<const std::string&>());
    if (!parsed) {
      r.add(ep, "invalid $expr: " + parsed.status().message());
      return;
    }
    for (const std::string& root : parsed->roots()) ctx.use(root, ep);
    step.expression = std::make_shared<const expr::Expression>(std::move(parsed).value());
    return;
  }
  r.check_fields(*cond, p, {"left", "operator", "right"});
  if (r.read_string(*cond, "operator", p, true, step.op) && !expr::is_operator(step.op)) {
    r.add(pointer_child(p, "operator"), "unknown operator " + quote_name(step.op) +
                                            " (expected one of == != > < >= <= contains in)");
  }
  if (const json* left = DocReader::find(*cond, "left")) {
    step.left = ctx.compile(*left, pointer_child(p, "left"));
  } else {
    r.add(pointer_child(p, "left"), "is required");
  }
  if (const json* right = DocReader::find(*cond, "right")) {
    step.right = ctx.compile(*right, pointer_child(p, "right"));
  } else {
    r.add(pointer_child(p, "right"), "is required");
  }
}

// Evaluates the condition; `input` receives what it compared, for the log.
Result<bool> evaluate(const Step& def, FrameScope& scope, json& input) {
  if (def.expression) {
    auto v = def.expression->eval(scope);
    if (!v.ok()) return v.status();
    input = json{{"expr", def.expression->source()}, {"value", v.value()}};
    return expr::truthy(v.value());
  }
  auto l = def.left.eval(scope);
  if (!l.ok()) return l.status();
  auto r = def.right.eval(scope);
  if (!r.ok()) return r.status();
  input = json{{"operator", def.op}, {"left", l.value()}, {"right", r.value()}};
  return expr::apply_operator(def.op, l.value(), r.value());
}

void take_branch(Decider& d, const FrameCtx& frame, const Step& def, const std::string& path,
                 uint32_t attempt, const Result<bool>& result) {
  if (!result.ok()) {
    d.fail_step(path, attempt, make_error("expression_error", result.status().message(), false));
    return;
  }
  const bool b = result.value();
  const std::string& chosen = b ? def.on_true : def.on_false;
  auto& bt = *d.emit().mutable_branch_taken();
  bt.set_path(path);
  bt.set_step_id(def.id);
  bt.set_frame(frame.id);
  bt.set_result(b);
  bt.set_next(chosen.empty() ? def.on_success : chosen);
}

void start(Decider& d, const FrameCtx& frame, const Step& def, const std::string& path,
           uint32_t attempt, v1::StepStarted& e) {
  FrameScope scope(d.state(), frame);
  json input;
  Result<bool> result = evaluate(def, scope, input);
  e.set_input_json(dump_canonical(input));
  take_branch(d, frame, def, path, attempt, result);
}

// A running condition only exists in a log cut between its StepStarted and
// BranchTaken (a fork's copied prefix): evaluate it now.
void drive(Decider& d, const FrameCtx& frame, const std::string& path, const StepState& s,
           const Step& def) {
  FrameScope scope(d.state(), frame);
  json unused;
  take_branch(d, frame, def, path, s.attempt, evaluate(def, scope, unused));
}

}  // namespace

extern const StepKind kCondition;
constinit const StepKind kCondition{
    .type = StepType::kCondition,
    .name = "condition",
    .branches = true,
    .parse = parse,
    .start = start,
    .drive = drive,
};

}  // namespace yantra::steps
