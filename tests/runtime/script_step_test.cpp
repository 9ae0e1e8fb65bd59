// The `script` step in runtime/: store-time validation (the source compiles,
// ES2015 syntax Duktape lacks is named, every problem at its pointer), and
// decide/apply: what an attempt records (the source and only the parts of
// the execution it names), the tool call it becomes, and that a completed
// script is never asked for again after a fold (recovery, replay).
#include <gtest/gtest.h>

#include <string>

#include "runtime/execution.hpp"
#include "runtime/flow.hpp"
#include "tests/runtime/driver.hpp"

namespace yantra {
namespace {

using namespace test;  // NOLINT: the shared harness
using Problems = std::vector<Problem>;

json script_step(const std::string& id, json config) {
  return {{"id", id}, {"type", "script"}, {"config", std::move(config)}};
}

Problems problems_of(const json& doc) {
  auto r = parse_flow(doc);
  EXPECT_FALSE(r.ok()) << "expected the flow to be invalid";
  if (r.ok()) return {};
  EXPECT_EQ(r.status().code(), "invalid_flow");
  return r.status().details();
}

json flow_with(json step) {
  return {{"id", "f"},
          {"steps", json::array({{{"id", "a"},
                                  {"type", "action"},
                                  {"config", {{"tool_id", "core"}, {"action", "echo"}}},
                                  {"on_success", "s"}},
                                 std::move(step)})}};
}

TEST(ScriptValidate, AValidScriptParses) {
  auto r = parse_flow(flow_with(script_step("s", {{"source", "return {total: input.a + 1};"}})));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Step* s = r.value()->locate("s")->step;
  EXPECT_EQ(s->type, StepType::kScript);
  EXPECT_EQ(s->tool_id, "script");
  EXPECT_EQ(s->timeout_ms, 50);  // the default time cap
}

TEST(ScriptValidate, SyntaxErrorsPointAtTheSourceWithTheirLine) {
  Problems p = problems_of(flow_with(script_step("s", {{"source", "var a = 1;\nreturn a +;"}})));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].path, "/steps/1/config/source");
  EXPECT_NE(p[0].message.find("SyntaxError"), std::string::npos) << p[0].message;
  EXPECT_NE(p[0].message.find("line 2"), std::string::npos) << p[0].message;
}

TEST(ScriptValidate, Es2015SyntaxIsNamedAtStoreTime) {
  Problems p = problems_of(
      flow_with(script_step("s", {{"source", "var xs = input.xs;\nreturn xs.map(x => x * 2);"}})));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].path, "/steps/1/config/source");
  EXPECT_EQ(p[0].message,
            "line 2, column 17: arrow functions (=>) not supported: scripts run on Duktape, which "
            "is ES5.1 with a few ES2015 parts (docs/scripts.md)");
  p = problems_of(flow_with(script_step("s", {{"source", "let t = `x`;"}})));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].message.find("column 1: let declarations"), std::string::npos) << p[0].message;
}

TEST(ScriptValidate, ConfigFields) {
  EXPECT_EQ(problems_of(flow_with(script_step("s", json::object()))),
            (Problems{{"/steps/1/config/source", "is required"}}));
  EXPECT_EQ(problems_of(flow_with(script_step("s", {{"source", ""}}))),
            (Problems{{"/steps/1/config/source", "must be a non-empty string"}}));
  Problems p =
      problems_of(flow_with(script_step("s", {{"source", "return 1;"}, {"timeout_ms", 0}})));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].path, "/steps/1/config/timeout_ms");
  p = problems_of(flow_with(script_step("s", {{"source", "return 1;"}, {"code", "x"}})));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].path, "/steps/1/config/code");
  p = problems_of(flow_with(script_step("s", {{"source", std::string(70000, ' ')}})));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].message, "must be at most 65536 bytes");
}

const char* kScriptFlow = R"({"id":"sf","steps":[
  {"id":"fetch","type":"action","config":{"tool_id":"core","action":"echo"},"on_success":"unused"},
  {"id":"unused","type":"action","config":{"tool_id":"core","action":"echo"},"on_success":"calc"},
  {"id":"calc","type":"script","config":{"source":"return {total: input.a + steps.fetch.n};",
    "timeout_ms":80},"on_success":"after"},
  {"id":"after","type":"action","config":{"tool_id":"core","action":"echo",
    "parameters":{"t":{"$ref":"calc.total"}}}}]})";

TEST(ScriptDecide, RecordsWhatTheSourceNamesAndCallsTheScriptTool) {
  Harness h(kScriptFlow);
  ASSERT_TRUE(h.ok());
  h.Start({{"a", 1}, {"big", "not named by the script, still in input"}}, 1000);
  h.Complete("fetch", 1, {{"n", 41}}, 1001);
  // `unused` is not named by the source: its output is not recorded again.
  EXPECT_EQ(
      h.Complete("unused", 1, {{"huge", "x"}}, 1002),
      (Strings{
          R"(StepCompleted unused#1 {"huge":"x"})",
          R"(StepStarted calc#1 script {"input":{"a":1,"big":"not named by the script, still in input"},"source":"return {total: input.a + steps.fetch.n};","steps":{"fetch":{"n":41}}})"}));
  // No deadline timer: the sandbox enforces timeout_ms itself.
  EXPECT_EQ(
      h.Commands(),
      (Strings{
          R"(invoke calc#1 script.run {"input":{"a":1,"big":"not named by the script, still in input"},"source":"return {total: input.a + steps.fetch.n};","steps":{"fetch":{"n":41}}} key=exec-1/calc/1 timeout=80)"}));
  EXPECT_EQ(
      h.Complete("calc", 1, {{"total", 42}}, 1003),
      (Strings{R"(StepCompleted calc#1 {"total":42})", R"(StepStarted after#1 action {"t":42})"}));
  // Recovery and replay fold the log: the completed script is not asked for
  // again, only the step after it.
  EXPECT_EQ(h.Load(h.log(), 5000), Strings{});
  EXPECT_EQ(h.Commands(),
            (Strings{R"(invoke after#1 core.echo {"t":42} key=exec-1/after/1 timeout=0)"}));
}

TEST(ScriptDecide, AFailedScriptFailsItsStep) {
  Harness h(kScriptFlow);
  ASSERT_TRUE(h.ok());
  h.Start({{"a", 1}}, 1000);
  h.Complete("fetch", 1, {{"n", 41}}, 1001);
  h.Complete("unused", 1, nullptr, 1002);
  Strings out = h.Fail("calc", 1, "script_timeout", false, 1003);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out[0], "StepFailed calc#1 script_timeout");
  EXPECT_EQ(h.st().display_status(), "failed");
}

TEST(ScriptDecide, InsideALoopItSeesItemAndIndex) {
  Harness h(R"({"id":"lf","steps":[
    {"id":"each","type":"loop","config":{"items":{"$ref":"input.xs"},"steps":[
      {"id":"sq","type":"script","config":{"source":"return item * item + index;"}}]}}]})");
  ASSERT_TRUE(h.ok());
  Strings out = h.Start({{"xs", {3, 4}}}, 1000);
  std::string all;
  for (const auto& s : out) all += s + "\n";
  EXPECT_NE(
      all.find(R"(script {"index":0,"item":3,"source":"return item * item + index;","steps":{}})"),
      std::string::npos)
      << all;
  // Sequential: the second iteration starts once the first completed.
  all.clear();
  for (const auto& s :
       h.Complete(h.st().running.empty() ? "" : *h.st().running.begin(), 1, 9, 1001)) {
    all += s + "\n";
  }
  EXPECT_NE(
      all.find(R"(script {"index":1,"item":4,"source":"return item * item + index;","steps":{}})"),
      std::string::npos)
      << all;
}

}  // namespace
}  // namespace yantra
