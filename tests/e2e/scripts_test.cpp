// script steps end to end, through the real binary over HTTP: a script
// between two action steps (its output recorded and used), a script that
// loops forever (script_timeout), a throw (script_error with its line),
// store-time refusals (400 with the pointer of the source), and a kill -9
// during a later delay step: after the restart the completed script is not
// run again (one StepStarted and one StepCompleted for it in the log, and
// its recorded, time-dependent output unchanged).
#include <gtest/gtest.h>

#include <string>

#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_fixture.hpp"

namespace yantra::e2e {
namespace {

class ScriptsTest : public NodeSuite<ScriptsTest> {};

json script(const std::string& id, const std::string& source, const std::string& next = "") {
  json s = {{"id", id}, {"type", "script"}, {"config", {{"source", source}}}};
  if (!next.empty()) s["on_success"] = next;
  return s;
}

json events_of(Api& a, const std::string& id) {
  return a.get("/api/v1/executions/" + id + "/events?limit=1000").doc()["events"];
}

TEST_F(ScriptsTest, AScriptBetweenTwoActions) {
  Api a = api();
  json flow = json::parse(R"({"id": "script-between", "steps": [
    {"id": "fetch", "type": "action", "on_success": "calc",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"n": 2, "tags": ["x", "y"]}}},
    {"id": "calc", "type": "script", "on_success": "after",
     "config": {"source": "var t = input.n + steps.fetch.n;\nreturn {total: t, tags: steps.fetch.tags.join('+')};"}},
    {"id": "after", "type": "action",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"t": {"$ref": "calc.total"}}}}],
    "output": {"t": {"$ref": "after.t"}, "calc": {"$ref": "calc"}}})");
  create_flow(a, flow);
  Reply run = a.post("/api/v1/flows/script-between/run?wait_ms=10000", {{"input", {{"n", 40}}}});
  ASSERT_EQ(run.status, 200) << run.describe();
  EXPECT_EQ(run.doc()["status"], "completed") << run.body;
  EXPECT_EQ(run.doc()["output"], json::parse(R"({"t": 42, "calc": {"total": 42, "tags": "x+y"}})"));
  const std::string id = run.doc()["execution_id"];
  json view = a.get("/api/v1/executions/" + id).doc();
  const json& calc = view["steps"]["calc"];
  EXPECT_EQ(calc["type"], "script");
  EXPECT_EQ(calc["output"], json::parse(R"({"total": 42, "tags": "x+y"})"));
  // What the script saw is recorded: its source and what it names.
  EXPECT_EQ(calc["input"]["steps"], json::parse(R"({"fetch": {"n": 2, "tags": ["x", "y"]}})"));
  EXPECT_EQ(calc["input"]["input"], json::parse(R"({"n": 40})"));
}

TEST_F(ScriptsTest, AScriptThatLoopsForeverTimesOut) {
  Api a = api();
  json flow = {{"id", "script-forever"}, {"steps", json::array({script("spin", "for (;;) {}")})}};
  flow["steps"][0]["config"]["timeout_ms"] = 40;
  create_flow(a, flow);
  Reply run = a.post("/api/v1/flows/script-forever/run?wait_ms=10000", json::object());
  ASSERT_EQ(run.status, 200) << run.describe();
  EXPECT_EQ(run.doc()["status"], "failed") << run.body;
  EXPECT_EQ(run.doc()["error"]["code"], "script_timeout") << run.body;
  EXPECT_NE(run.doc()["error"].value("message", "").find("40 ms"), std::string::npos) << run.body;
}

TEST_F(ScriptsTest, AThrowFailsTheStepWithItsLine) {
  Api a = api();
  create_flow(
      a, {{"id", "script-throw"},
          {"steps", json::array({script("t", "var x = 1;\nthrow new RangeError('no ' + x);")})}});
  Reply run = a.post("/api/v1/flows/script-throw/run?wait_ms=10000", json::object());
  ASSERT_EQ(run.status, 200) << run.describe();
  EXPECT_EQ(run.doc()["error"]["code"], "script_error") << run.body;
  EXPECT_EQ(run.doc()["error"]["message"], "RangeError: no 1 (line 2)") << run.body;
  // A function is not JSON.
  create_flow(a, {{"id", "script-fn"},
                  {"steps", json::array({script("f", "return {f: function () {}};")})}});
  run = a.post("/api/v1/flows/script-fn/run?wait_ms=10000", json::object());
  EXPECT_EQ(run.doc()["error"]["code"], "script_result") << run.body;
}

TEST_F(ScriptsTest, BadScriptsAreRefusedWhenStored) {
  Api a = api();
  for (const auto& [source, needle] : std::vector<std::pair<std::string, std::string>>{
           {"var a = 1;\nreturn [1].map(x => x);",
            "line 2, column 18: arrow functions (=>) not supported"},
           {"return `t`;", "template strings"},
           {"let a = 1; return a;", "let declarations"},
           {"return {a: 1", "SyntaxError"}}) {
    json flow = {{"id", "script-bad"},
                 {"steps", json::array({json::object(), script("s", source)})}};
    flow["steps"][0] = {{"id", "first"},
                        {"type", "action"},
                        {"on_success", "s"},
                        {"config", {{"tool_id", "core"}, {"action", "echo"}}}};
    Reply r = a.post("/api/v1/flows", flow);
    ASSERT_EQ(r.status, 400) << source << ": " << r.describe();
    const json err = r.doc()["error"];
    EXPECT_EQ(err["code"], "invalid_flow");
    ASSERT_EQ(err["details"].size(), 1u) << r.body;
    EXPECT_EQ(err["details"][0]["path"], "/steps/1/config/source");
    EXPECT_NE(err["details"][0].value("message", "").find(needle), std::string::npos)
        << source << ": " << r.body;
  }
  EXPECT_EQ(a.get("/api/v1/flows/script-bad").status, 404);
}

// Its own node: it is killed.
TEST(ScriptsKill9, ACompletedScriptIsNotRunAgainAfterACrash) {
  NodeProcess node;
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  Api a(node.port(), node.key());
  // The script's output depends on the clock: a second run would differ.
  json flow = json::parse(R"({"id": "script-crash", "steps": [
    {"id": "calc", "type": "script", "on_success": "wait",
     "config": {"source": "return {at: Date.now(), r: Math.random()};"}},
    {"id": "wait", "type": "delay", "config": {"duration_ms": 1500}, "on_success": "done"},
    {"id": "done", "type": "action",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"calc": {"$ref": "calc"}}}}],
    "output": {"calc": {"$ref": "done.calc"}}})");
  create_flow(a, flow);
  const std::string id = start_run(a, "script-crash");
  json waiting = wait_status(a, id, "waiting");
  ASSERT_EQ(waiting.value("status", ""), "waiting") << waiting.dump();
  const json before = waiting["steps"]["calc"]["output"];
  ASSERT_TRUE(before.is_object()) << waiting.dump();

  ASSERT_TRUE(node.kill9());
  ASSERT_TRUE(node.start(&error)) << error;
  Api after(node.port(), node.key());
  json done = wait_finished(after, id, std::chrono::seconds(20));
  ASSERT_EQ(done.value("status", ""), "completed") << done.dump();
  EXPECT_EQ(done["output"]["calc"], before) << "the script ran again";
  int started = 0, completed = 0;
  for (const auto& e : events_of(after, id)) {
    if (e["data"].value("path", "") != "calc") continue;
    if (e["type"] == "step_started") ++started;
    if (e["type"] == "step_completed") ++completed;
  }
  EXPECT_EQ(started, 1);
  EXPECT_EQ(completed, 1);
}

}  // namespace
}  // namespace yantra::e2e
