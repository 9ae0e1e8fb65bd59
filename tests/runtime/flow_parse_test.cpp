// Flow definitions: parsing into the model, every validation rule with the
// exact pointer and message a tenant sees, YAML/JSON text handling, and
// robustness against hostile input. Each rule is tested on a minimal valid
// flow with one thing broken, so a failure names the rule that regressed.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "runtime/flow.hpp"

namespace yantra {

void PrintTo(const Problem& p, std::ostream* os) {
  *os << "{\"" << p.path << "\", \"" << p.message << "\"}";
}

namespace {

using Problems = std::vector<Problem>;

json example() {
  return json::parse(R"({
    "id": "process-orders", "name": "Process orders", "description": "Charge and route orders",
    "trigger": {"type": "manual"},
    "steps": [
      {"id": "get", "type": "action",
       "config": {"tool_id": "core", "action": "echo",
                  "parameters": {"customer": {"$ref": "input.customer_id"},
                                 "total": {"$expr": "input.amount * 1.1"}},
                  "timeout_ms": 5000},
       "retry_config": {"max_attempts": 3, "backoff_type": "exponential",
                        "initial_delay_ms": 100, "max_delay_ms": 2000},
       "on_success": "check", "on_failure": "alert"},
      {"id": "check", "type": "condition",
       "config": {"condition": {"operator": ">", "left": {"$ref": "get.total"}, "right": 100},
                  "on_true": "vip", "on_false": "basic"}},
      {"id": "vip", "type": "action", "name": "VIP treatment",
       "config": {"tool_id": "core", "action": "echo", "parameters": {"tier": "vip"}}},
      {"id": "basic", "type": "delay", "config": {"duration_ms": 10}},
      {"id": "alert", "type": "action", "config": {"tool_id": "core", "action": "fail"}}
    ],
    "output": {"total": {"$ref": "get.total"}},
    "config": {"timeout_ms": 300000, "on_error": "fail"}
  })");
}

const char* kExampleYaml = R"(
id: process-orders
name: Process orders
description: Charge and route orders
trigger:
  type: manual
steps:
  - id: get
    type: action
    config:
      tool_id: core
      action: echo
      parameters:
        customer: {$ref: input.customer_id}
        total:
          $expr: input.amount * 1.1
      timeout_ms: 5000
    retry_config:
      max_attempts: 3
      backoff_type: exponential
      initial_delay_ms: 100
      max_delay_ms: 2000
    on_success: check
    on_failure: alert
  - id: check
    type: condition
    config:
      condition: {operator: ">", left: {$ref: get.total}, right: 100}
      on_true: vip
      on_false: basic
  - id: vip
    type: action
    name: VIP treatment
    config: {tool_id: core, action: echo, parameters: {tier: vip}}
  - id: basic
    type: delay
    config: {duration_ms: 10}
  - id: alert
    type: action
    config: {tool_id: core, action: fail}
output:
  total: {$ref: get.total}
config:
  timeout_ms: 300000
  on_error: fail
)";

json action(const std::string& id, json parameters = json::object()) {
  return {{"id", id},
          {"type", "action"},
          {"config", {{"tool_id", "core"}, {"action", "echo"}, {"parameters", parameters}}}};
}

json chain(json step, const std::string& next) {
  step["on_success"] = next;
  return step;
}

// One valid action step; tests break one thing in it.
json minimal() {
  return {{"id", "f"}, {"steps", json::array({action("a")})}};
}

std::shared_ptr<const Flow> parse_ok(const json& doc, const ParseOptions& opts = {}) {
  auto r = parse_flow(doc, opts);
  EXPECT_TRUE(r.ok()) << r.status().to_string() << " "
                      << (r.ok() || r.status().details().empty()
                              ? ""
                              : r.status().details()[0].path + ": " +
                                    r.status().details()[0].message);
  return r.ok() ? r.value() : nullptr;
}

Problems problems(const json& doc, const ParseOptions& opts = {}) {
  auto r = parse_flow(doc, opts);
  EXPECT_FALSE(r.ok()) << "expected the flow to be invalid";
  if (r.ok()) return {};
  EXPECT_EQ(r.status().code(), "invalid_flow");
  return r.status().details();
}

Problems one(std::string path, std::string message) {
  return {Problem{std::move(path), std::move(message)}};
}

class MapScope : public expr::Scope {
 public:
  explicit MapScope(std::map<std::string, json> values) : values_(std::move(values)) {}
  const json* lookup(std::string_view name) const override {
    auto it = values_.find(std::string(name));
    return it == values_.end() ? nullptr : &it->second;
  }

 private:
  std::map<std::string, json> values_;
};

// ---------------------------------------------------------------- the model

TEST(FlowParse, ExampleYieldsTheModel) {
  auto flow = parse_ok(example());
  ASSERT_TRUE(flow);
  EXPECT_EQ(flow->id, "process-orders");
  EXPECT_EQ(flow->name, "Process orders");
  EXPECT_EQ(flow->description, "Charge and route orders");
  EXPECT_EQ(flow->trigger, json({{"type", "manual"}}));
  EXPECT_EQ(flow->timeout_ms, 300000);
  EXPECT_EQ(flow->on_error, OnError::kFail);
  EXPECT_EQ(flow->source, example());

  const Scope& root = flow->root;
  ASSERT_EQ(root.steps.size(), 5u);
  EXPECT_EQ(root.roots, std::vector<std::string>{"get"});
  EXPECT_EQ(root.index.at("basic"), 3u);
  EXPECT_EQ(root.find("vip"), &root.steps[2]);
  EXPECT_EQ(root.find("nope"), nullptr);

  const Step& get = root.steps[0];
  EXPECT_EQ(get.type, StepType::kAction);
  EXPECT_EQ(get.tool_id, "core");
  EXPECT_EQ(get.action, "echo");
  EXPECT_EQ(get.timeout_ms, 5000);
  EXPECT_EQ(get.on_success, "check");
  EXPECT_EQ(get.on_failure, "alert");
  EXPECT_EQ(get.retry.max_attempts, 3u);
  EXPECT_EQ(get.retry.backoff, Backoff::kExponential);
  EXPECT_EQ(get.retry.initial_delay_ms, 100);
  EXPECT_EQ(get.retry.max_delay_ms, 2000);
  EXPECT_EQ(get.retry.multiplier, 2.0);
  EXPECT_FALSE(get.parameters.is_static());
  MapScope scope({{"input", {{"customer_id", "c-1"}, {"amount", 200}}}});
  auto params = get.parameters.eval(scope);
  ASSERT_TRUE(params.ok()) << params.status().to_string();
  EXPECT_EQ((*params)["customer"], "c-1");
  EXPECT_DOUBLE_EQ((*params)["total"].get<double>(), 220.0);

  const Step& check = root.steps[1];
  EXPECT_EQ(check.type, StepType::kCondition);
  EXPECT_EQ(check.op, ">");
  EXPECT_EQ(check.expression, nullptr);
  EXPECT_EQ(check.on_true, "vip");
  EXPECT_EQ(check.on_false, "basic");
  EXPECT_TRUE(check.right.is_static());
  ASSERT_EQ(check.left.uses().size(), 1u);
  EXPECT_EQ(check.left.uses()[0].root, "get");

  EXPECT_EQ(root.steps[2].name, "VIP treatment");
  EXPECT_EQ(root.steps[2].retry.max_attempts, 1u);  // no retry_config: no retry
  EXPECT_EQ(root.steps[3].type, StepType::kDelay);
  EXPECT_EQ(root.steps[3].duration_ms, 10);
  EXPECT_EQ(root.steps[4].action, "fail");
  EXPECT_TRUE(root.steps[4].parameters.is_static());
  EXPECT_EQ(root.steps[4].parameters.eval(scope).value(), json::object());

  EXPECT_TRUE(flow->has_output);
  EXPECT_EQ(flow->output.uses().size(), 1u);

  ASSERT_EQ(flow->all_steps.size(), 5u);
  for (const Step& step : root.steps) {
    const Flow::Located* at = flow->locate(step.id);
    ASSERT_NE(at, nullptr) << step.id;
    EXPECT_EQ(at->step, &step);
    EXPECT_EQ(at->scope, &root);
    EXPECT_EQ(at->container, nullptr);
  }
  EXPECT_EQ(flow->locate("input"), nullptr);
}

TEST(FlowParse, DefaultsOfAMinimalFlow) {
  auto flow = parse_ok(minimal());
  ASSERT_TRUE(flow);
  EXPECT_EQ(flow->trigger, json({{"type", "manual"}}));
  EXPECT_FALSE(flow->has_output);
  EXPECT_EQ(flow->timeout_ms, 0);
  EXPECT_EQ(flow->on_error, OnError::kFail);
  EXPECT_EQ(flow->name, "");
}

TEST(FlowParse, YamlSpellingGivesTheSameModel) {
  auto doc = yaml_to_json(kExampleYaml);
  ASSERT_TRUE(doc.ok()) << doc.status().to_string();
  EXPECT_EQ(*doc, example());
  EXPECT_EQ(doc->dump(), example().dump());  // same number representations too
  auto from_yaml = parse_ok(*doc);
  auto from_json = parse_ok(example());
  ASSERT_TRUE(from_yaml && from_json);
  EXPECT_EQ(from_yaml->source, from_json->source);
  ASSERT_EQ(from_yaml->root.steps.size(), from_json->root.steps.size());
  for (size_t i = 0; i < from_json->root.steps.size(); ++i) {
    const Step& a = from_yaml->root.steps[i];
    const Step& b = from_json->root.steps[i];
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.on_success, b.on_success);
    EXPECT_EQ(a.on_failure, b.on_failure);
    EXPECT_EQ(a.on_true, b.on_true);
    EXPECT_EQ(a.on_false, b.on_false);
    EXPECT_EQ(a.retry.max_attempts, b.retry.max_attempts);
    EXPECT_EQ(a.retry.max_delay_ms, b.retry.max_delay_ms);
    EXPECT_EQ(a.timeout_ms, b.timeout_ms);
    EXPECT_EQ(a.duration_ms, b.duration_ms);
  }
}

TEST(FlowParse, ToStringNamesMatchTheDocumentSpelling) {
  EXPECT_STREQ(to_string(StepType::kAction), "action");
  EXPECT_STREQ(to_string(StepType::kCondition), "condition");
  EXPECT_STREQ(to_string(StepType::kLoop), "loop");
  EXPECT_STREQ(to_string(StepType::kParallel), "parallel");
  EXPECT_STREQ(to_string(StepType::kDelay), "delay");
  EXPECT_STREQ(to_string(WaitFor::kAll), "all");
  EXPECT_STREQ(to_string(WaitFor::kAny), "any");
  EXPECT_STREQ(to_string(WaitFor::kNone), "none");
}

TEST(FlowParse, StatusNamesTheProblemCount) {
  json doc = minimal();
  doc["bogus"] = 1;
  auto r = parse_flow(doc);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "flow is invalid: 1 problem");
  doc["bogus2"] = 1;
  r = parse_flow(doc);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "flow is invalid: 2 problems");
}

// ---------------------------------------------------------------- flow-level fields

TEST(FlowValidate, DocumentMustBeAnObject) {
  EXPECT_EQ(problems(json::array()), one("", "must be an object"));
  EXPECT_EQ(problems(json("flow")), one("", "must be an object"));
  EXPECT_EQ(problems(json(nullptr)), one("", "must be an object"));
}

TEST(FlowValidate, RequiredTopLevelFields) {
  EXPECT_EQ(problems(json::object()),
            (Problems{{"/id", "is required"}, {"/steps", "is required"}}));
}

TEST(FlowValidate, TopLevelTypes) {
  json doc = minimal();
  doc["id"] = 7;
  doc["name"] = true;
  doc["description"] = json::array();
  doc["config"] = "fast";
  EXPECT_EQ(problems(doc), (Problems{{"/config", "must be an object"},
                                     {"/description", "must be a string"},
                                     {"/id", "must be a string"},
                                     {"/name", "must be a string"}}));
}

TEST(FlowValidate, StepsMustBeANonEmptyArray) {
  json doc = minimal();
  doc["steps"] = json::array();
  EXPECT_EQ(problems(doc), one("/steps", "must be a non-empty array"));
  doc["steps"] = action("a");
  EXPECT_EQ(problems(doc), one("/steps", "must be a non-empty array"));
}

TEST(FlowValidate, FlowIdFormat) {
  for (const char* bad : {"", "-lead", "has space", "ümlaut", "a/b"}) {
    json doc = minimal();
    doc["id"] = bad;
    EXPECT_EQ(problems(doc), one("/id", "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}")) << bad;
  }
  json doc = minimal();
  doc["id"] = std::string(129, 'a');
  EXPECT_EQ(problems(doc), one("/id", "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}"));
  for (const std::string& good :
       std::vector<std::string>{"0", "orders.v2", "a_b-c", std::string(128, 'z')}) {
    doc["id"] = good;
    EXPECT_TRUE(parse_ok(doc)) << good;
  }
}

TEST(FlowValidate, UnknownTopLevelField) {
  json doc = minimal();
  doc["ouptut"] = json::object();
  EXPECT_EQ(problems(doc), one("/ouptut", "unknown field 'ouptut'"));
}

TEST(FlowValidate, UnknownFieldNamesAreEscapedAndShortened) {
  json doc = minimal();
  doc["a/b~c"] = 1;
  doc[std::string(100, 'k')] = 1;
  EXPECT_EQ(
      problems(doc),
      (Problems{{"/a~1b~0c", "unknown field 'a/b~c'"},
                {"/" + std::string(100, 'k'), "unknown field '" + std::string(64, 'k') + "...'"}}));
}

TEST(FlowValidate, Trigger) {
  json doc = minimal();
  doc["trigger"] = {{"type", "manual"}};
  EXPECT_TRUE(parse_ok(doc));
  // Every trigger type in detail: trigger_test.cpp.
  doc["trigger"] = {{"type", "schedule"}, {"config", {{"cron", "@daily"}}}};
  EXPECT_TRUE(parse_ok(doc));
  doc["trigger"] = {{"type", "carrier-pigeon"}};
  EXPECT_EQ(problems(doc), one("/trigger/type", "unknown trigger type 'carrier-pigeon'"));
  doc["trigger"] = {{"type", "manual"}, {"when", "now"}};
  EXPECT_EQ(problems(doc), one("/trigger/when", "unknown field 'when'"));
  doc["trigger"] = json::object();
  EXPECT_EQ(problems(doc), one("/trigger/type", "is required"));
  doc["trigger"] = "manual";
  EXPECT_EQ(problems(doc), one("/trigger", "must be an object"));
}

TEST(FlowValidate, FlowConfig) {
  json doc = minimal();
  doc["config"] = {{"timeout_ms", 1000}, {"on_error", "continue"}};
  auto flow = parse_ok(doc);
  ASSERT_TRUE(flow);
  EXPECT_EQ(flow->timeout_ms, 1000);
  EXPECT_EQ(flow->on_error, OnError::kContinue);

  doc["config"] = {{"timeout_ms", -1}, {"on_error", "ignore"}, {"retries", 2}};
  EXPECT_EQ(problems(doc), (Problems{{"/config/on_error", "must be one of fail, continue"},
                                     {"/config/retries", "unknown field 'retries'"},
                                     {"/config/timeout_ms", "must be an integer ≥ 0"}}));
  doc["config"] = {{"timeout_ms", 1.5}};
  EXPECT_EQ(problems(doc), one("/config/timeout_ms", "must be an integer ≥ 0"));
  doc["config"] = {{"timeout_ms", "1000"}};
  EXPECT_EQ(problems(doc), one("/config/timeout_ms", "must be an integer ≥ 0"));
  doc["config"] = {{"timeout_ms", 3153600000001}};
  EXPECT_EQ(problems(doc), one("/config/timeout_ms", "must be at most 3153600000000"));
  doc["config"] = {{"timeout_ms", 18446744073709551615u}};
  EXPECT_EQ(problems(doc), one("/config/timeout_ms", "must be at most 3153600000000"));
}

TEST(FlowValidate, OutputTemplateIsCompiledAndChecked) {
  json doc = minimal();
  doc["output"] = {{"x", {{"$ref", "a.value"}}}, {"y", {{"$ref", "nope.value"}}}};
  EXPECT_EQ(problems(doc), one("/output/y/$ref", "unknown step 'nope' in $ref"));
  doc["output"] = {{"x", {{"$ref", ""}}}};
  auto p = problems(doc);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].path, "/output/x/$ref");
  doc["output"] = "constant";
  auto flow = parse_ok(doc);
  ASSERT_TRUE(flow);
  EXPECT_TRUE(flow->has_output);
  EXPECT_TRUE(flow->output.is_static());
}

// ---------------------------------------------------------------- step fields

TEST(StepValidate, StepMustBeAnObject) {
  json doc = minimal();
  doc["steps"].push_back("b");
  EXPECT_EQ(problems(doc), one("/steps/1", "must be an object"));
}

TEST(StepValidate, RequiredStepFields) {
  json doc = minimal();
  doc["steps"][0] = json::object();
  EXPECT_EQ(problems(doc), (Problems{{"/steps/0/config", "is required"},
                                     {"/steps/0/id", "is required"},
                                     {"/steps/0/type", "is required"}}));
}

TEST(StepValidate, StepFieldTypes) {
  json doc = minimal();
  doc["steps"][0]["id"] = 1;
  doc["steps"][0]["type"] = json::array();
  doc["steps"][0]["name"] = 2;
  doc["steps"][0]["on_success"] = 3;
  doc["steps"][0]["on_failure"] = "";
  doc["steps"][0]["config"] = "x";
  EXPECT_EQ(problems(doc), (Problems{{"/steps/0/config", "must be an object"},
                                     {"/steps/0/id", "must be a string"},
                                     {"/steps/0/name", "must be a string"},
                                     {"/steps/0/on_failure", "must be a non-empty string"},
                                     {"/steps/0/on_success", "must be a non-empty string"},
                                     {"/steps/0/type", "must be a string"}}));
}

TEST(StepValidate, UnknownFieldsInStepConfigAndRetry) {
  json doc = minimal();
  doc["steps"] = {chain(action("a"), "b"), action("b")};
  doc["steps"][0]["on_sucess"] = "b";
  doc["steps"][0]["config"]["timeout"] = 5;
  doc["steps"][0]["retry_config"] = {{"max_attempts", 2}, {"backof", "fixed"}};
  EXPECT_EQ(problems(doc), (Problems{{"/steps/0/config/timeout", "unknown field 'timeout'"},
                                     {"/steps/0/on_sucess", "unknown field 'on_sucess'"},
                                     {"/steps/0/retry_config/backof", "unknown field 'backof'"}}));
}

TEST(StepValidate, StepIdFormatAndReservedNames) {
  for (const char* bad : {"", "1st", "has.dot", "sp ace", "é"}) {
    json doc = minimal();
    doc["steps"][0]["id"] = bad;
    EXPECT_EQ(problems(doc), one("/steps/0/id", "must match [A-Za-z_][A-Za-z0-9_-]{0,63}")) << bad;
  }
  json doc = minimal();
  doc["steps"][0]["id"] = std::string(65, 'a');
  EXPECT_EQ(problems(doc), one("/steps/0/id", "must match [A-Za-z_][A-Za-z0-9_-]{0,63}"));
  for (const char* reserved : {"input", "item", "index", "execution"}) {
    doc["steps"][0]["id"] = reserved;
    EXPECT_EQ(problems(doc),
              one("/steps/0/id", std::string("'") + reserved + "' is a reserved name"));
  }
  for (const std::string& good : std::vector<std::string>{"_x", "a-b_c9", std::string(64, 'a')}) {
    doc["steps"][0]["id"] = good;
    EXPECT_TRUE(parse_ok(doc)) << good;
  }
}

TEST(StepValidate, DuplicateStepIdsAcrossScopes) {
  json doc = minimal();
  doc["steps"] = {chain(action("a"), "each"),
                  {{"id", "each"},
                   {"type", "loop"},
                   {"config", {{"items", json::array({1, 2})}, {"steps", {action("a")}}}},
                   {"on_success", "b"}},
                  action("b")};
  doc["steps"][2]["id"] = "each";
  EXPECT_EQ(
      problems(doc),
      (Problems{{"/steps/1/config/steps/0/id", "duplicate step id 'a' (first defined at /steps/0)"},
                {"/steps/1/on_success", "unknown step 'b'"},
                {"/steps/2/id", "duplicate step id 'each' (first defined at /steps/1)"}}));
}

TEST(StepValidate, UnknownStepType) {
  json doc = minimal();
  doc["steps"][0]["type"] = "http";
  doc["steps"][0]["config"] = {{"anything", "goes"}};  // not checked: the type is unknown
  EXPECT_EQ(problems(doc), one("/steps/0/type", "unknown step type 'http'"));
}

// ---------------------------------------------------------------- action

TEST(ActionValidate, RequiredAndTypedConfig) {
  json doc = minimal();
  doc["steps"][0]["config"] = json::object();
  EXPECT_EQ(problems(doc), (Problems{{"/steps/0/config/action", "is required"},
                                     {"/steps/0/config/tool_id", "is required"}}));
  doc["steps"][0]["config"] = {{"tool_id", ""}, {"action", 5}, {"timeout_ms", -5}};
  EXPECT_EQ(problems(doc), (Problems{{"/steps/0/config/action", "must be a non-empty string"},
                                     {"/steps/0/config/timeout_ms", "must be an integer ≥ 0"},
                                     {"/steps/0/config/tool_id", "must be a non-empty string"}}));
}

TEST(ActionValidate, ParametersAreOptionalTemplates) {
  json doc = minimal();
  doc["steps"][0]["config"].erase("parameters");
  auto flow = parse_ok(doc);
  ASSERT_TRUE(flow);
  MapScope empty({});
  EXPECT_EQ(flow->root.steps[0].parameters.eval(empty).value(), json::object());

  doc["steps"][0]["config"]["parameters"] = {{"bad", {{"$ref", "input.x"}, {"extra", 1}}}};
  auto p = problems(doc);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].path, "/steps/0/config/parameters/bad");
}

TEST(ActionValidate, ToolsAreCheckedWhenKnown) {
  ParseOptions opts{{{"core", {"echo", "fail", "sleep"}}, {"http", {}}}};
  json doc = minimal();
  EXPECT_TRUE(parse_ok(doc, opts));
  doc["steps"][0]["config"]["action"] = "explode";
  EXPECT_EQ(problems(doc, opts),
            one("/steps/0/config/action", "tool 'core' has no action 'explode'"));
  doc["steps"][0]["config"]["tool_id"] = "http";  // no action list: any action
  EXPECT_TRUE(parse_ok(doc, opts));
  doc["steps"][0]["config"]["tool_id"] = "smtp";
  EXPECT_EQ(problems(doc, opts), one("/steps/0/config/tool_id", "unknown tool 'smtp'"));
  EXPECT_TRUE(parse_ok(doc));  // no tool list: anything goes
}

TEST(ActionValidate, RetryConfig) {
  json doc = minimal();
  doc["steps"][0]["retry_config"] = {{"max_attempts", 5}};
  auto flow = parse_ok(doc);
  ASSERT_TRUE(flow);
  const RetryPolicy& r = flow->root.steps[0].retry;
  EXPECT_EQ(r.max_attempts, 5u);
  EXPECT_EQ(r.backoff, Backoff::kExponential);
  EXPECT_EQ(r.initial_delay_ms, 1000);
  EXPECT_EQ(r.max_delay_ms, 60000);
  EXPECT_EQ(r.multiplier, 2.0);

  doc["steps"][0]["retry_config"] = {{"max_attempts", 2},
                                     {"backoff_type", "fixed"},
                                     {"initial_delay_ms", 120000},
                                     {"multiplier", 1}};
  flow = parse_ok(doc);
  ASSERT_TRUE(flow);
  EXPECT_EQ(flow->root.steps[0].retry.backoff, Backoff::kFixed);
  EXPECT_EQ(flow->root.steps[0].retry.max_delay_ms, 120000);  // the default follows up
  EXPECT_EQ(flow->root.steps[0].retry.multiplier, 1.0);

  doc["steps"][0]["retry_config"] = {{"max_attempts", 0},
                                     {"backoff_type", "linear"},
                                     {"initial_delay_ms", 500},
                                     {"max_delay_ms", 100},
                                     {"multiplier", 0.5}};
  EXPECT_EQ(
      problems(doc),
      (Problems{{"/steps/0/retry_config/backoff_type", "must be one of fixed, exponential"},
                {"/steps/0/retry_config/max_attempts", "must be an integer between 1 and 100"},
                {"/steps/0/retry_config/max_delay_ms", "must be ≥ initial_delay_ms (500)"},
                {"/steps/0/retry_config/multiplier", "must be a number ≥ 1"}}));
  doc["steps"][0]["retry_config"] = {{"max_attempts", 101}};
  EXPECT_EQ(problems(doc),
            one("/steps/0/retry_config/max_attempts", "must be an integer between 1 and 100"));
  doc["steps"][0]["retry_config"] = json::object();
  EXPECT_EQ(problems(doc), one("/steps/0/retry_config/max_attempts", "is required"));
  doc["steps"][0]["retry_config"] = 3;
  EXPECT_EQ(problems(doc), one("/steps/0/retry_config", "must be an object"));
}

TEST(ActionValidate, RetryConfigOnlyOnActions) {
  json doc = minimal();
  doc["steps"][0] = {{"id", "a"},
                     {"type", "delay"},
                     {"config", {{"duration_ms", 5}}},
                     {"retry_config", {{"max_attempts", 2}}}};
  EXPECT_EQ(problems(doc),
            one("/steps/0/retry_config", "only action and script steps can have a retry_config"));
}

// ---------------------------------------------------------------- condition

json condition(json cond, json extra = json::object()) {
  json config = {{"condition", std::move(cond)}};
  config.update(extra);
  return {{"id", "c"}, {"type", "condition"}, {"config", config}};
}

TEST(ConditionValidate, OperatorForm) {
  for (const char* op : {"==", "!=", ">", "<", ">=", "<=", "contains", "in"}) {
    json doc = minimal();
    doc["steps"][0] = condition({{"operator", op}, {"left", 1}, {"right", 2}});
    auto flow = parse_ok(doc);
    ASSERT_TRUE(flow) << op;
    EXPECT_EQ(flow->root.steps[0].op, op);
  }
  json doc = minimal();
  doc["steps"][0] = condition({{"operator", "=~"}, {"lhs", 1}});
  EXPECT_EQ(problems(doc),
            (Problems{{"/steps/0/config/condition/left", "is required"},
                      {"/steps/0/config/condition/lhs", "unknown field 'lhs'"},
                      {"/steps/0/config/condition/operator",
                       "unknown operator '=~' (expected one of == != > < >= <= contains in)"},
                      {"/steps/0/config/condition/right", "is required"}}));
  doc["steps"][0] = condition({{"left", 1}, {"right", 2}});
  EXPECT_EQ(problems(doc), one("/steps/0/config/condition/operator", "is required"));
  doc["steps"][0] = condition({{"operator", "=="}, {"left", {{"$ref", "nope"}}}, {"right", 2}});
  EXPECT_EQ(problems(doc),
            one("/steps/0/config/condition/left/$ref", "unknown step 'nope' in $ref"));
}

TEST(ConditionValidate, ExpressionForm) {
  json doc = minimal();
  doc["steps"] = {chain(action("a"), "c"),
                  condition({{"$expr", "a.total > 100 && input.vip"}},
                            {{"on_true", "yes"}, {"on_false", "no"}}),
                  action("yes"), action("no")};
  auto flow = parse_ok(doc);
  ASSERT_TRUE(flow);
  const Step& c = flow->root.steps[1];
  ASSERT_NE(c.expression, nullptr);
  EXPECT_EQ(c.expression->source(), "a.total > 100 && input.vip");
  EXPECT_EQ(c.op, "");

  doc["steps"][1]["config"]["condition"] = {{"$expr", "nope.x > 1"}};
  EXPECT_EQ(problems(doc), one("/steps/1/config/condition/$expr", "unknown step 'nope' in $expr"));
  doc["steps"][1]["config"]["condition"] = {{"$expr", "a.x >"}};
  auto p = problems(doc);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].path, "/steps/1/config/condition/$expr");
  EXPECT_EQ(p[0].message.rfind("invalid $expr: at ", 0), 0u) << p[0].message;
  doc["steps"][1]["config"]["condition"] = {{"$expr", 5}};
  EXPECT_EQ(problems(doc), one("/steps/1/config/condition/$expr", "must be a string"));
  doc["steps"][1]["config"]["condition"] = {{"$expr", "true"}, {"operator", "=="}};
  EXPECT_EQ(problems(doc), one("/steps/1/config/condition/operator", "unknown field 'operator'"));
}

TEST(ConditionValidate, ConditionIsRequiredAndAnObject) {
  json doc = minimal();
  doc["steps"][0] = {{"id", "c"}, {"type", "condition"}, {"config", json::object()}};
  EXPECT_EQ(problems(doc), one("/steps/0/config/condition", "is required"));
  doc["steps"][0]["config"]["condition"] = "a > 1";
  EXPECT_EQ(problems(doc), one("/steps/0/config/condition", "must be an object"));
}

TEST(ConditionValidate, BranchesAreOptional) {
  json doc = minimal();
  doc["steps"] = {condition({{"$expr", "true"}}, {{"on_true", "t"}}), action("t")};
  EXPECT_TRUE(parse_ok(doc));
  doc["steps"][0]["config"]["on_false"] = 4;
  EXPECT_EQ(problems(doc), one("/steps/0/config/on_false", "must be a non-empty string"));
}

// ---------------------------------------------------------------- loop, parallel, delay

// A braced list of one step ({action("x")}) is an array with GCC but the
// step itself with clang (CWG 2137 vs 1467), so the step lists of loop() and
// parallel() accept both; elsewhere this file says json::array explicitly.
json step_list(json steps) {
  return steps.is_object() ? json::array({std::move(steps)}) : steps;
}

json loop(const std::string& id, json items, json steps, json extra = json::object()) {
  steps = step_list(std::move(steps));
  json config = {{"items", std::move(items)}, {"steps", std::move(steps)}};
  config.update(extra);
  return {{"id", id}, {"type", "loop"}, {"config", config}};
}

json parallel(const std::string& id, json steps, json extra = json::object()) {
  steps = step_list(std::move(steps));
  json config = {{"steps", std::move(steps)}};
  config.update(extra);
  return {{"id", id}, {"type", "parallel"}, {"config", config}};
}

TEST(LoopValidate, ModelOfALoop) {
  json doc = minimal();
  doc["steps"] = json::array({loop(
      "each", {{"$ref", "input.orders"}},
      {chain(action("charge", {{"id", {{"$ref", "item.id"}}}, {"n", {{"$expr", "index + 1"}}}}),
             "note"),
       action("note", {{"ok", {{"$ref", "charge.ok"}}}})},
      {{"parallel", true}, {"max_iterations", 50}, {"max_concurrency", 4}})});
  auto flow = parse_ok(doc);
  ASSERT_TRUE(flow);
  const Step& each = flow->root.steps[0];
  EXPECT_EQ(each.type, StepType::kLoop);
  EXPECT_TRUE(each.parallel);
  EXPECT_EQ(each.max_iterations, 50u);
  EXPECT_EQ(each.max_concurrency, 4u);
  ASSERT_TRUE(each.body);
  ASSERT_EQ(each.body->steps.size(), 2u);
  EXPECT_EQ(each.body->roots, std::vector<std::string>{"charge"});
  const Flow::Located* note = flow->locate("note");
  ASSERT_NE(note, nullptr);
  EXPECT_EQ(note->scope, each.body.get());
  EXPECT_EQ(note->container, &each);
  EXPECT_EQ(note->step, &each.body->steps[1]);
  EXPECT_EQ(flow->all_steps.size(), 3u);

  doc["steps"][0]["config"] = {{"items", json::array({1, 2})}, {"steps", {action("x")}}};
  flow = parse_ok(doc);
  ASSERT_TRUE(flow);
  EXPECT_FALSE(flow->root.steps[0].parallel);
  EXPECT_EQ(flow->root.steps[0].max_iterations, 1000u);
  EXPECT_EQ(flow->root.steps[0].max_concurrency, 0u);
}

TEST(LoopValidate, LoopConfig) {
  json doc = minimal();
  doc["steps"] =
      json::array({loop("each", "abc", json::array(),
                        {{"parallel", "yes"}, {"max_iterations", 0}, {"max_concurrency", -1}})});
  EXPECT_EQ(problems(doc),
            (Problems{{"/steps/0/config/items", "must be an array, a $ref or a $expr"},
                      {"/steps/0/config/max_concurrency", "must be an integer ≥ 0"},
                      {"/steps/0/config/max_iterations", "must be an integer between 1 and 100000"},
                      {"/steps/0/config/parallel", "must be a boolean"},
                      {"/steps/0/config/steps", "must be a non-empty array"}}));
  doc["steps"][0]["config"] = {{"items", json::array()}, {"max_iterations", 100001}};
  EXPECT_EQ(problems(doc),
            (Problems{{"/steps/0/config/max_iterations", "must be an integer between 1 and 100000"},
                      {"/steps/0/config/steps", "is required"}}));
  doc["steps"][0]["config"] = {{"steps", json::array({action("x")})}};
  EXPECT_EQ(problems(doc), one("/steps/0/config/items", "is required"));
}

TEST(LoopValidate, ItemAndIndexOnlyInsideLoops) {
  json doc = minimal();
  doc["steps"][0]["config"]["parameters"] = {{"i", {{"$ref", "item"}}},
                                             {"n", {{"$expr", "index"}}}};
  EXPECT_EQ(
      problems(doc),
      (Problems{
          {"/steps/0/config/parameters/i/$ref", "'item' is only available inside a loop"},
          {"/steps/0/config/parameters/n/$expr", "'index' is only available inside a loop"}}));

  // A loop's own items are evaluated outside its body.
  doc["steps"] = json::array({loop("each", {{"$ref", "item.list"}}, {action("x")})});
  EXPECT_EQ(problems(doc),
            one("/steps/0/config/items/$ref", "'item' is only available inside a loop"));

  // Inside a parallel that is inside a loop, item is still the loop's item.
  doc["steps"] = json::array({loop("each", json::array({1}),
                                   {parallel("fan", {action("x", {{"i", {{"$ref", "item"}}}})})})});
  EXPECT_TRUE(parse_ok(doc));
  // A parallel alone has no item.
  doc["steps"] = json::array({parallel("fan", {action("x", {{"i", {{"$ref", "item"}}}})})});
  EXPECT_EQ(problems(doc), one("/steps/0/config/steps/0/config/parameters/i/$ref",
                               "'item' is only available inside a loop"));
}

TEST(LoopValidate, Visibility) {
  json doc = minimal();
  doc["steps"] = {chain(action("fetch"), "each"),
                  chain(loop("each", {{"$ref", "fetch.items"}},
                             {chain(action("charge", {{"order", {{"$ref", "item"}}},
                                                      {"src", {{"$ref", "fetch.items"}}},
                                                      {"self", {{"$ref", "each"}}}}),
                                    "note"),
                              action("note", {{"paid", {{"$ref", "charge.ok"}}}})}),
                        "done"),
                  action("done", {{"all", {{"$ref", "each"}}}, {"one", {{"$ref", "charge.ok"}}}})};
  EXPECT_EQ(problems(doc), one("/steps/2/config/parameters/one/$ref",
                               "'charge' is inside loop 'each' and not visible here"));
  doc["steps"][2]["config"]["parameters"].erase("one");
  doc["output"] = {{"x", {{"$expr", "len(note)"}}}};
  EXPECT_EQ(problems(doc),
            one("/output/x/$expr", "'note' is inside loop 'each' and not visible here"));
}

TEST(LoopValidate, VisibilityNamesTheOutermostHiddenContainer) {
  json doc = minimal();
  doc["steps"] = {
      chain(loop("outer", json::array({1}), {loop("inner", json::array({2}), {action("deep")})}),
            "after"),
      action("after", {{"d", {{"$ref", "deep.x"}}}})};
  EXPECT_EQ(problems(doc), one("/steps/1/config/parameters/d/$ref",
                               "'deep' is inside loop 'outer' and not visible here"));
  // From inside outer, inner is visible but its body is not.
  doc["steps"][0]["config"]["steps"].push_back(action("peek", {{"d", {{"$ref", "deep.x"}}}}));
  doc["steps"][0]["config"]["steps"][0]["on_success"] = "peek";
  doc["steps"][1]["config"]["parameters"] = json::object();
  EXPECT_EQ(problems(doc), one("/steps/0/config/steps/1/config/parameters/d/$ref",
                               "'deep' is inside loop 'inner' and not visible here"));
}

TEST(ParallelValidate, BranchesAreTheScopeRoots) {
  json doc = minimal();
  doc["steps"] =
      json::array({parallel("fan",
                            {chain(action("a"), "a2"), action("a2", {{"x", {{"$ref", "a.v"}}}}),
                             action("b"), chain(action("c"), "c2"), action("c2")},
                            {{"wait_for", "any"}})});
  auto flow = parse_ok(doc);
  ASSERT_TRUE(flow);
  const Step& fan = flow->root.steps[0];
  EXPECT_EQ(fan.type, StepType::kParallel);
  EXPECT_EQ(fan.wait_for, WaitFor::kAny);
  ASSERT_TRUE(fan.body);
  EXPECT_EQ(fan.body->roots, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(flow->locate("b")->container, &fan);

  doc["steps"][0]["config"].erase("wait_for");
  EXPECT_EQ(parse_ok(doc)->root.steps[0].wait_for, WaitFor::kAll);
  doc["steps"][0]["config"]["wait_for"] = "some";
  EXPECT_EQ(problems(doc), one("/steps/0/config/wait_for", "must be one of all, any, none"));
  doc["steps"][0]["config"] = {{"steps", json::array()}, {"max_concurrency", 2}};
  EXPECT_EQ(problems(doc),
            (Problems{{"/steps/0/config/max_concurrency", "unknown field 'max_concurrency'"},
                      {"/steps/0/config/steps", "must be a non-empty array"}}));
}

TEST(ParallelValidate, BranchesCannotMerge) {
  // Branch steps share their frame's path prefix: a step reached from two
  // branches would run twice under one path.
  json doc = minimal();
  doc["steps"] = json::array(
      {parallel("fan", {chain(action("a"), "join"), chain(action("b"), "join"), action("join")})});
  EXPECT_EQ(problems(doc),
            one("/steps/0/config/steps/2",
                "step 'join' is reached from branches 'a' and 'b'; parallel branches cannot "
                "merge, put the joining step after the parallel step"));
}

TEST(ParallelValidate, BranchStepsAreHiddenFromOutside) {
  json doc = minimal();
  doc["steps"] = {chain(parallel("fan", {action("a"), action("b")}), "after"),
                  action("after", {{"all", {{"$ref", "fan.a"}}}, {"x", {{"$ref", "b.v"}}}})};
  EXPECT_EQ(problems(doc), one("/steps/1/config/parameters/x/$ref",
                               "'b' is inside parallel 'fan' and not visible here"));
}

TEST(DelayValidate, Duration) {
  json doc = minimal();
  doc["steps"][0] = {{"id", "d"}, {"type", "delay"}, {"config", {{"duration_ms", 0}}}};
  EXPECT_TRUE(parse_ok(doc));
  doc["steps"][0]["config"] = json::object();
  EXPECT_EQ(problems(doc), one("/steps/0/config/duration_ms", "is required"));
  doc["steps"][0]["config"] = {{"duration_ms", -1}, {"until", "noon"}};
  EXPECT_EQ(problems(doc), (Problems{{"/steps/0/config/duration_ms", "must be an integer ≥ 0"},
                                     {"/steps/0/config/until", "unknown field 'until'"}}));
}

// ---------------------------------------------------------------- transitions

TEST(TransitionValidate, TargetsMustExistInTheSameScope) {
  json doc = minimal();
  doc["steps"] = {chain(action("a"), "ghost"),
                  chain(loop("each", json::array({1}), {chain(action("in"), "a")}), "in")};
  doc["steps"][0]["on_failure"] = "each";
  EXPECT_EQ(problems(doc),
            (Problems{{"/steps/0/on_success", "unknown step 'ghost'"},
                      {"/steps/1/config/steps/0/on_success", "step 'a' is in another scope"},
                      {"/steps/1/on_success", "step 'in' is in another scope"}}));
}

TEST(TransitionValidate, NoSelfTransition) {
  json doc = minimal();
  doc["steps"][0]["on_failure"] = "a";
  EXPECT_EQ(problems(doc), one("/steps/0/on_failure", "a step cannot transition to itself"));
}

TEST(TransitionValidate, NoCycles) {
  json doc = minimal();
  doc["steps"] = {chain(action("a"), "b"), chain(action("b"), "c"), chain(action("c"), "a")};
  EXPECT_EQ(problems(doc),
            one("/steps/2/on_success", "cycle: a -> b -> c -> a; use a loop step to repeat work"));
  // Through a condition branch, inside a loop body.
  doc["steps"] =
      json::array({loop("each", json::array({1}),
                        {chain(action("x"), "y"),
                         {{"id", "y"},
                          {"type", "condition"},
                          {"config", {{"condition", {{"$expr", "true"}}}, {"on_false", "x"}}}}})});
  EXPECT_EQ(problems(doc), one("/steps/0/config/steps/1/config/on_false",
                               "cycle: x -> y -> x; use a loop step to repeat work"));
}

TEST(TransitionValidate, DiamondIsNotACycle) {
  json doc = minimal();
  doc["steps"] = {condition({{"$expr", "true"}}, {{"on_true", "l"}, {"on_false", "r"}}),
                  chain(action("l"), "join"), chain(action("r"), "join"), action("join")};
  EXPECT_TRUE(parse_ok(doc));
}

TEST(TransitionValidate, EveryStepReachableFromTheFirst) {
  json doc = minimal();
  doc["steps"] = {chain(action("a"), "c"), action("b"), action("c"),
                  loop("d", json::array({1}), {action("x"), action("y")})};
  EXPECT_EQ(problems(doc),
            (Problems{{"/steps/1", "step 'b' is unreachable from 'a'"},
                      {"/steps/3", "step 'd' is unreachable from 'a'"},
                      {"/steps/3/config/steps/1", "step 'y' is unreachable from 'x'"}}));
}

// ---------------------------------------------------------------- all problems, in order

TEST(FlowValidate, ReportsEveryProblemInDocumentOrder) {
  json doc = json::parse(R"({
    "id": "bad id",
    "steps": [
      {"id": "a", "type": "action", "config": {"tool_id": "core", "action": "echo",
        "parameters": {"v": {"$ref": "zzz.v"}}}, "on_sucess": "b"},
      {"id": "b", "type": "action", "config": {"tool_id": "core"}},
      {"id": "a", "type": "weird", "config": {}},
      {"id": "c", "type": "condition",
       "config": {"condition": {"$expr": "b.x"}, "on_true": "nowhere"}}
    ],
    "output": {"$ref": "c"},
    "surprise": true
  })");
  EXPECT_EQ(problems(doc),
            (Problems{{"/id", "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}"},
                      {"/steps/0/config/parameters/v/$ref", "unknown step 'zzz' in $ref"},
                      {"/steps/0/on_sucess", "unknown field 'on_sucess'"},
                      {"/steps/1", "step 'b' is unreachable from 'a'"},
                      {"/steps/1/config/action", "is required"},
                      {"/steps/2/id", "duplicate step id 'a' (first defined at /steps/0)"},
                      {"/steps/2/type", "unknown step type 'weird'"},
                      {"/steps/3", "step 'c' is unreachable from 'a'"},
                      {"/steps/3/config/on_true", "unknown step 'nowhere'"},
                      {"/surprise", "unknown field 'surprise'"}}));
}

TEST(FlowValidate, ArrayIndicesSortNumerically) {
  json doc = minimal();
  doc["steps"] = json::array();
  for (int i = 0; i < 12; ++i) doc["steps"].push_back(action("s" + std::to_string(i)));
  for (int i = 0; i < 11; ++i) doc["steps"][i]["on_success"] = "s" + std::to_string(i + 1);
  doc["steps"][2]["bogus"] = 1;
  doc["steps"][10]["bogus"] = 1;
  EXPECT_EQ(problems(doc), (Problems{{"/steps/2/bogus", "unknown field 'bogus'"},
                                     {"/steps/10/bogus", "unknown field 'bogus'"}}));
}

// ---------------------------------------------------------------- limits

TEST(FlowLimits, AtMostAThousandSteps) {
  json doc = minimal();
  doc["steps"] = json::array();
  for (int i = 0; i < 1000; ++i) {
    doc["steps"].push_back(chain(action("s" + std::to_string(i)), "s" + std::to_string(i + 1)));
  }
  doc["steps"][999].erase("on_success");
  EXPECT_TRUE(parse_ok(doc));
  doc["steps"][999]["on_success"] = "s1000";
  doc["steps"].push_back(action("s1000"));
  EXPECT_EQ(problems(doc), one("/steps/1000", "a flow may have at most 1000 steps"));
  // Nested steps count too, and a huge array is not walked to its end.
  doc["steps"] = json::array({loop("each", json::array({1}), json::array())});
  for (int i = 0; i < 5000; ++i) {
    doc["steps"][0]["config"]["steps"].push_back(action("x" + std::to_string(i)));
  }
  EXPECT_EQ(problems(doc), one("/steps/0/config/steps/999", "a flow may have at most 1000 steps"));
}

TEST(FlowLimits, NestingDepth) {
  auto nested = [](int levels) {
    json steps = json::array({action("leaf")});
    for (int i = levels - 1; i >= 1; --i) {
      steps = json::array({loop("l" + std::to_string(i), json::array({1}), steps)});
    }
    return json{{"id", "f"}, {"steps", steps}};
  };
  EXPECT_TRUE(parse_ok(nested(16)));
  std::string pointer = "/steps";
  for (int i = 1; i < 17; ++i) pointer += "/0/config/steps";
  EXPECT_EQ(problems(nested(17)), one(pointer, "steps may be nested at most 16 levels deep"));
  auto p = problems(nested(200));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].path, pointer);
}

// ---------------------------------------------------------------- YAML

json yaml(const std::string& text) {
  auto r = yaml_to_json(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().to_string();
  return r.ok() ? r.value() : json("<error>");
}

std::string yaml_error(const std::string& text) {
  auto r = yaml_to_json(text);
  EXPECT_FALSE(r.ok()) << text << " parsed as " << (r.ok() ? r->dump() : "");
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), "invalid_yaml");
  return r.status().message();
}

TEST(Yaml, ScalarTyping) {
  struct Case {
    const char* text;
    json want;
  };
  const Case cases[] = {
      {"1", 1},
      {"-3", -3},
      {"+5", 5},
      {"0777", 777},  // YAML 1.2: no implicit octal
      {"0x1F", 31},
      {"0o17", 15},
      {"1.5", 1.5},
      {"-.5", -0.5},
      {"5.", 5.0},
      {"1e3", 1000.0},
      {"true", true},
      {"True", true},
      {"TRUE", true},
      {"false", false},
      {"False", false},
      {"FALSE", false},
      {"null", nullptr},
      {"Null", nullptr},
      {"~", nullptr},
      {"", nullptr},
      {"yes", "yes"},  // YAML 1.1 booleans are strings
      {"on", "on"},
      {"tRUE", "tRUE"},
      {"1_000", "1_000"},
      {"0x", "0x"},
      {"0xZZ", "0xZZ"},
      {"1.2.3", "1.2.3"},
      {"hello world", "hello world"},
      {"'1'", "1"},
      {"\"true\"", "true"},
      {"'null'", "null"},
      {"''", ""},
      {"!!str 12", "12"},
      {"!!float 1", 1.0},
      {"!!int 7", 7},
      {"|\n  block\n", "block\n"},
      {">-\n  folded\n  text\n", "folded text"},
      {"18446744073709551615", 18446744073709551615u},
      {"-9223372036854775808", INT64_MIN},
      {"99999999999999999999", 1e20},
      {"1e-400", 0.0},
  };
  for (const Case& c : cases) {
    json got = yaml(std::string("v: ") + c.text);
    ASSERT_TRUE(got.is_object()) << c.text;
    EXPECT_EQ(got["v"], c.want) << c.text;
    // Signed or unsigned is representation (nlohmann's parser makes 1 unsigned
    // too); integer versus float is not.
    EXPECT_EQ(got["v"].is_number_integer(), c.want.is_number_integer()) << c.text;
    EXPECT_EQ(got["v"].is_number_float(), c.want.is_number_float()) << c.text;
  }
  EXPECT_TRUE(yaml("v: 1e3")["v"].is_number_float());
  EXPECT_TRUE(yaml("v: -3")["v"].is_number_integer());
}

TEST(Yaml, CollectionsAndAliases) {
  EXPECT_EQ(yaml("a: [1, {b: c}]\nd:\n  - x\n  - e: f\n"),
            json::parse(R"({"a": [1, {"b": "c"}], "d": ["x", {"e": "f"}]})"));
  EXPECT_EQ(yaml("base: &b {x: 1}\ncopy: *b\n"),
            json::parse(R"({"base": {"x": 1}, "copy": {"x": 1}})"));
  EXPECT_EQ(yaml("[]"), json::array());
  EXPECT_EQ(yaml("{}"), json::object());
  EXPECT_EQ(yaml(""), json(nullptr));
  EXPECT_EQ(yaml("# only a comment\n"), json(nullptr));
  EXPECT_EQ(yaml("'1': a\ntrue: b\n"), json::parse(R"({"1": "a", "true": "b"})"));
}

TEST(Yaml, NonFiniteNumbersAreRejected) {
  EXPECT_EQ(yaml_error("v: .inf"), "line 1, column 4: '.inf' is not a valid JSON number");
  EXPECT_EQ(yaml_error("a: 1\nv: -.Inf"), "line 2, column 4: '-.Inf' is not a valid JSON number");
  EXPECT_EQ(yaml_error("v: .NaN"), "line 1, column 4: '.NaN' is not a valid JSON number");
  EXPECT_EQ(yaml_error("v: 1e999"), "line 1, column 4: number '1e999' is out of range");
  EXPECT_EQ(yaml_error("v: 0x10000000000000000"),
            "line 1, column 4: integer '0x10000000000000000' is out of range");
  EXPECT_EQ(yaml("v: '.inf'")["v"], ".inf");
}

TEST(Yaml, ErrorsCarryPositions) {
  EXPECT_EQ(yaml_error("key: [1, 2\n"), "line 2, column 1: end of sequence flow not found");
  EXPECT_EQ(yaml_error("a: 1\n  b: 2\n"), "line 2, column 4: illegal map value");
  EXPECT_EQ(yaml_error("a: 1\nb: 2\na: 3\n"), "line 3, column 1: duplicate key 'a'");
  EXPECT_EQ(yaml_error("? [1, 2]\n: x\n"), "line 1, column 3: a mapping key must be a string");
  EXPECT_EQ(yaml_error("a: !custom x\n"), "line 1, column 4: unsupported tag '!custom'");
  EXPECT_EQ(yaml_error("a: !!int x\n"),
            "line 1, column 4: 'x' does not match its tag 'tag:yaml.org,2002:int'");
  EXPECT_EQ(yaml_error("- a\n---\n- b\n"), "line 2, column 1: expected one YAML document");
  // yaml-cpp 0.7 alone would loop forever on these (jbeder/yaml-cpp#1040).
  EXPECT_EQ(yaml_error(","), "line 1, column 1: unexpected ','");
  EXPECT_EQ(yaml_error("- a\n- b\n,"), "line 3, column 1: unexpected ','");
  EXPECT_EQ(yaml_error("a: \xff\xfe\n"), "line 1, column 4: invalid UTF-8");
}

TEST(Yaml, AliasBombsAndSelfReferencesAreBounded) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    std::string prev(1, static_cast<char>(c - 1));
    bomb += std::string(1, c) + ": &" + c + " [*" + prev + ", *" + prev + ", *" + prev + ", *" +
            prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
            ", *" + prev + "]\n";
  }
  EXPECT_NE(yaml_error(bomb).find("more than 1000000 values"), std::string::npos);

  std::string big = "s: &s '" + std::string(1 << 20, 'x') + "'\nl: [";
  for (int i = 0; i < 100; ++i) big += "*s, ";
  big += "*s]\n";
  EXPECT_NE(yaml_error(big).find("more than 64 MiB of text"), std::string::npos);

  EXPECT_NE(yaml_error("a: &a [1, *a]\n").find("nesting deeper than 128"), std::string::npos);
}

TEST(Yaml, DeepNestingIsRejected) {
  std::string ok(128, '[');
  ok += std::string(128, ']');
  EXPECT_TRUE(yaml_to_json(ok).ok());
  std::string deep(129, '[');
  deep += std::string(129, ']');
  EXPECT_NE(yaml_error(deep).find("nesting deeper than 128"), std::string::npos);
  std::string very_deep(100000, '[');
  EXPECT_FALSE(yaml_to_json(very_deep).ok());
  std::string block;
  for (int i = 0; i < 300; ++i) block += std::string(i * 2, ' ') + "k:\n";
  EXPECT_FALSE(yaml_to_json(block).ok());
}

// ---------------------------------------------------------------- JSON text

TEST(JsonText, Parses) {
  auto r = parse_json_text(R"({"a": [1, 2.5, "x", null, true]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, json::parse(R"({"a": [1, 2.5, "x", null, true]})"));
}

TEST(JsonText, ErrorsCarryPositionAndReason) {
  auto r = parse_json_text("{\n  \"a\": tru\n}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "invalid_json");
  EXPECT_EQ(r.status().message(),
            "line 2, column 11 (byte 13): syntax error while parsing value - invalid literal; "
            "last read: '\"a\": tru<U+000A>'");
  r = parse_json_text("");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "line 1, column 1 (byte 1): syntax error while parsing value - unexpected end of "
            "input; expected '[', '{', or a literal");
  r = parse_json_text("{} x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("line 1, column 4 (byte 4): syntax error", 0), 0u)
      << r.status().message();
  r = parse_json_text("\"\xff\"");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("ill-formed UTF-8"), std::string::npos)
      << r.status().message();
}

TEST(JsonText, DeepNestingIsRejected) {
  std::string ok = std::string(128, '[') + std::string(128, ']');
  EXPECT_TRUE(parse_json_text(ok).ok());
  std::string deep = std::string(129, '[') + std::string(129, ']');
  auto r = parse_json_text(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "invalid_json");
  EXPECT_EQ(r.status().message(), "line 1, column 129 (byte 129): nesting deeper than 128 levels");
  // Brackets inside strings are not nesting.
  EXPECT_TRUE(parse_json_text("[\"" + std::string(1000, '[') + "\\\"\"]").ok());
  EXPECT_FALSE(parse_json_text(std::string(1000000, '{')).ok());
}

// ---------------------------------------------------------------- JSON -> YAML

void expect_round_trip(const json& doc) {
  std::string text = json_to_yaml(doc);
  auto back = yaml_to_json(text);
  ASSERT_TRUE(back.ok()) << back.status().to_string() << "\n" << text;
  EXPECT_EQ(*back, doc) << text;
  EXPECT_EQ(back->dump(), doc.dump()) << text;
}

TEST(JsonToYaml, RoundTrips) {
  expect_round_trip(example());
  json tricky = json::object();
  const char* strings[] = {"true",
                           "True",
                           "FALSE",
                           "null",
                           "~",
                           "",
                           "123",
                           "-4",
                           "+5",
                           "0x1F",
                           "0o7",
                           "1.5",
                           "1e3",
                           ".inf",
                           "-.inf",
                           ".nan",
                           "yes",
                           "- x",
                           "-",
                           "a: b",
                           "#hash",
                           "x #y",
                           "  lead",
                           "trail  ",
                           "multi\nline",
                           "tab\there",
                           "quote'\"",
                           "\\back",
                           "é 日本 🎉",
                           "\x01\x1f control",
                           "@at",
                           "`tick",
                           "%pct",
                           "!bang",
                           "&amp",
                           "*star",
                           "? q",
                           "{",
                           "}",
                           "[",
                           "]",
                           ",",
                           "|",
                           ">",
                           "'",
                           "\"",
                           ": x",
                           "x:",
                           "---",
                           "...",
                           "\r",
                           "line\r\nbreak",
                           "\t",
                           "nel\xc2\x85",
                           "ls\xe2\x80\xa8",
                           "\xef\xbb\xbf"
                           "bom",
                           "del\x7f",
                           "--- x",
                           "... y"};
  json list = json::array();
  for (const char* s : strings) {
    tricky[s] = s;
    list.push_back(s);
  }
  tricky["list"] = list;
  expect_round_trip(tricky);
  expect_round_trip(json::parse(R"({"n": [0, -1, 1.5, 1e300, -2.5e-10, 0.1, 2.0,
      18446744073709551615, -9223372036854775808, 9223372036854775807],
      "e": [[], {}, [[]], {"a": {}}, [{}], null, true, false]})"));
  for (const json& scalar : {json("str"), json("true"), json(""), json(5), json(-1.25),
                             json(nullptr), json(true), json::array(), json::object()}) {
    expect_round_trip(scalar);
  }
}

// Found by tests/fuzz/fuzz_flow_yaml (corpus/flow_yaml/noncharacter-utf16):
// yaml-cpp's emitter writes U+FFFD for Unicode noncharacters (U+FDD0-U+FDEF,
// U+xFFFE, U+xFFFF) in quoted scalars, so such a flow read back changed.
TEST(JsonToYaml, NoncharactersSurvive) {
  for (const char* s : {"\x11\xef\xbf\xbf", "\xef\xbf\xbf ", "\xef\xbf\xbe:", "\xef\xb7\x90\n",
                        "\xef\xb7\xaf\x01", "\xf0\x9f\xbf\xbf ", "\xf4\x8f\xbf\xbe\t"}) {
    expect_round_trip(json{{"k", s}});
    expect_round_trip(json{{s, json::array({s, 1})}});
  }
  // The fuzzer's input: UTF-16LE text, which yaml-cpp reads as "\x11\uFFFF".
  auto doc = yaml_to_json(std::string("\x11\0\xff\xff", 4));
  ASSERT_TRUE(doc.ok()) << doc.status().to_string();
  EXPECT_EQ(*doc, json("\x11\xef\xbf\xbf"));
  expect_round_trip(*doc);
  // Their neighbours are ordinary characters, written in block style.
  EXPECT_EQ(json_to_yaml(json{{"a", "\xef\xb7\x8f \xef\xbf\xbd"}}),
            "a: \xef\xb7\x8f \xef\xbf\xbd\n");
}

// Random JSON documents over an alphabet rich in YAML syntax characters.
json random_json(std::mt19937& rng, int depth) {
  static const std::vector<std::string> pieces = {
      "a",  "Z",  "0",  "1",  "-", "+",    ".",    "e",     "x",    "o", " ",  ":", "#",    "'",
      "\"", "\\", "\n", "\t", "[", "]",    "{",    "}",     ",",    "&", "*",  "!", "|",    ">",
      "%",  "@",  "`",  "?",  "~", "null", "true", "False", ".inf", "é", "日", "🎉", "\x7f", "\x01"};
  auto str = [&] {
    std::string s;
    int n = static_cast<int>(rng() % 6);
    for (int i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
    return s;
  };
  switch (rng() % (depth > 3 ? 6 : 8)) {
    case 0: return nullptr;
    case 1: return rng() % 2 == 0;
    case 2: return static_cast<int64_t>(rng()) - (1LL << 31);
    case 3:
      return std::ldexp(static_cast<double>(rng()) - 2e9, static_cast<int>(rng() % 200) - 100);
    case 4:
    case 5: return str();
    case 6: {
      json a = json::array();
      for (int i = static_cast<int>(rng() % 4); i > 0; --i)
        a.push_back(random_json(rng, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      for (int i = static_cast<int>(rng() % 4); i > 0; --i) o[str()] = random_json(rng, depth + 1);
      return o;
    }
  }
}

TEST(JsonToYaml, RandomDocumentsRoundTrip) {
  std::mt19937 rng(12345);
  for (int i = 0; i < 2000; ++i) {
    json doc = random_json(rng, 0);
    expect_round_trip(doc);
    if (HasFailure()) break;
  }
}

// ---------------------------------------------------------------- hostile input

TEST(Robustness, GarbageNeverCrashes) {
  std::mt19937 rng(7);
  const std::string alphabet = "{}[]:,-?'\"\\ \n\t#&*!|>%@`~abc01.$";
  for (int i = 0; i < 3000; ++i) {
    std::string text;
    int n = static_cast<int>(rng() % 64);
    for (int k = 0; k < n; ++k) {
      text += rng() % 4 == 0 ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    }
    for (auto* parse : {&yaml_to_json, &parse_json_text}) {
      auto r = parse(text);
      if (r.ok()) parse_flow(*r);
    }
  }
}

TEST(Robustness, MutatedDefinitionsNeverCrash) {
  std::mt19937 rng(99);
  const std::string yaml_text = kExampleYaml;
  const std::string json_text = example().dump(2);
  const std::string alphabet = "{}[]:,- '\"\n#&*!$";
  ParseOptions opts{{{"core", {"echo", "fail", "sleep"}}}};
  int parsed = 0;
  for (int i = 0; i < 1500; ++i) {
    for (const std::string* base : {&yaml_text, &json_text}) {
      std::string text = *base;
      for (int m = static_cast<int>(rng() % 4); m >= 0; --m) {
        size_t at = rng() % text.size();
        switch (rng() % 3) {
          case 0: text.erase(at, 1 + rng() % 8); break;
          case 1: text.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
          default: text[at] = alphabet[rng() % alphabet.size()];
        }
      }
      auto doc = base == &yaml_text ? yaml_to_json(text) : parse_json_text(text);
      if (!doc.ok()) continue;
      auto flow = parse_flow(*doc, opts);
      if (!flow.ok()) {
        EXPECT_FALSE(flow.status().details().empty()) << text;
        for (const Problem& p : flow.status().details()) {
          EXPECT_TRUE(p.path.empty() || p.path[0] == '/') << p.path;
          EXPECT_FALSE(p.message.empty());
        }
      }
      ++parsed;
    }
  }
  EXPECT_GT(parsed, 100);
}

TEST(Robustness, OddButValidJsonShapes) {
  json doc = minimal();
  json deep = 1;
  for (int i = 0; i < 120; ++i) deep = json::array({deep});
  doc["steps"][0]["config"]["parameters"] = {{"deep", deep}};
  EXPECT_TRUE(parse_ok(doc));
  doc["steps"][0]["config"]["parameters"] = json::array({{{"$ref", "input"}}, 1, "x"});
  EXPECT_TRUE(parse_ok(doc));
}

}  // namespace
}  // namespace yantra

namespace yantra {
namespace {

// YAML caps an implicit key at 1024 characters of its spelling; json_to_yaml
// writes longer keys as explicit ones ("? key"), so every JSON document still
// reads back unchanged (tests/fuzz found a 1,270-character key that did not).
TEST(YamlRoundTrip, KeysLongerThanYamlsImplicitKeyLimit) {
  for (size_t n : {1000u, 1100u, 5000u}) {
    for (char c : {'a', '\x06'}) {
      const std::string key(n, c);
      const json doc = {{"steps", {{key, {"y"}}, {"short", 1}}}, {key, {{key, key}}}};
      const std::string yaml = json_to_yaml(doc);
      auto back = yaml_to_json(yaml);
      ASSERT_TRUE(back.ok()) << n << ": " << back.status().to_string();
      EXPECT_EQ(back.value(), doc) << n;
    }
  }
  // JSON text with such a key is not YAML: refused as invalid_yaml (a 400),
  // never read as something else.
  auto refused = yaml_to_json(json{{std::string(1100, 'a'), 1}}.dump());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), "invalid_yaml");
}

}  // namespace
}  // namespace yantra
