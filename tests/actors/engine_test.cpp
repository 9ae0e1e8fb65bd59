// End-to-end tests of one engine in-process: real RocksDB in a temp dir, real
// CAF actors, the built-in `core` tool and a blocking recording tool. Each
// test drives executions through the public Engine API only and checks both
// the outcome and what the event log recorded.
#include "actors/engine.hpp"
#include "actors/testing.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "tests/test_util.hpp"

namespace yantra {
namespace {

using namespace std::chrono_literals;
using testing::RecordingTool;
using testing::TempDir;

json three_step_flow() {
  return json::parse(R"J({
    "id": "three", "name": "Three echoes",
    "steps": [
      {"id": "a", "type": "action",
       "config": {"tool_id": "core", "action": "echo", "parameters": {"n": {"$ref": "input.n"}}},
       "on_success": "b"},
      {"id": "b", "type": "action",
       "config": {"tool_id": "core", "action": "echo",
                  "parameters": {"n": {"$expr": "a.n + 1"}}},
       "on_success": "c"},
      {"id": "c", "type": "action",
       "config": {"tool_id": "core", "action": "echo",
                  "parameters": {"n": {"$expr": "b.n * 10"}}}}
    ],
    "output": {"result": {"$ref": "c.n"}}
  })J");
}

class EngineTest : public ::testing::Test {
 protected:
  void open(EngineOptions opts = {}) {
    opts.data_dir = dir_.str();
    if (rec_ == nullptr) rec_ = std::make_shared<RecordingTool>(4);
    opts.tools.push_back(rec_);
    auto e = Engine::open(std::move(opts));
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(e.value());
  }

  std::string run(const std::string& flow, json input) {
    RunRequest req;
    req.flow_id = flow;
    req.input = std::move(input);
    auto id = engine_->start_sync(std::move(req));
    EXPECT_TRUE(id.ok()) << id.status().to_string();
    return id.ok() ? id.value() : "";
  }

  ExecutionResult finish(const std::string& id, std::chrono::milliseconds timeout = 10s) {
    auto r = engine_->wait(id, timeout);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r.value() : ExecutionResult{};
  }

  uint32_t put(const json& flow) {
    auto v = engine_->put_flow("default", flow);
    EXPECT_TRUE(v.ok()) << v.status().to_string();
    return v.ok() ? v.value() : 0;
  }

  TempDir dir_;
  std::shared_ptr<RecordingTool> rec_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, ThreeStepFlowCompletesAndLogIsDense) {
  open();
  EXPECT_EQ(put(three_step_flow()), 1u);
  const std::string id = run("three", {{"n", 4}});
  ExecutionResult r = finish(id);
  EXPECT_EQ(r.status, "completed");
  EXPECT_EQ(r.output, json({{"result", 50}}));

  auto events = engine_->load_events(id);
  ASSERT_TRUE(events.ok());
  // Started, 3 x (StepStarted, StepCompleted), Completed.
  ASSERT_EQ(events.value().size(), 8u);
  for (size_t i = 0; i < events.value().size(); ++i) {
    EXPECT_EQ(events.value()[i].seq(), i + 1);
  }
  EXPECT_TRUE(events.value().front().has_execution_started());
  EXPECT_TRUE(events.value().back().has_execution_completed());
  auto summary = testing::store_of(*engine_).executions().summary(id);
  ASSERT_TRUE(summary.ok() && summary.value().has_value());
  EXPECT_EQ(summary.value()->status(), "completed");
  EXPECT_EQ(summary.value()->last_seq(), 8u);
  auto active = testing::store_of(*engine_).executions().active(summary.value()->partition());
  ASSERT_TRUE(active.ok());
  EXPECT_TRUE(std::find(active.value().begin(), active.value().end(), id) == active.value().end());
}

TEST_F(EngineTest, UnknownAndInvalidFlowsAreRejected) {
  open();
  RunRequest req;
  req.flow_id = "nope";
  auto id = engine_->start_sync(req);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), "not_found");

  json bad = three_step_flow();
  bad["steps"][0]["config"]["tool_id"] = "nosuchtool";
  bad["steps"][1]["on_success"] = "missing";
  auto v = engine_->put_flow("default", bad);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), "invalid_flow");
  EXPECT_GE(v.status().details().size(), 2u);
}

TEST_F(EngineTest, RetriesUntilSuccessAndRecordsAttempts) {
  open();
  put(json::parse(R"J({"id": "flaky", "steps": [
    {"id": "f", "type": "action",
     "config": {"tool_id": "core", "action": "fail", "parameters": {"times": 2}},
     "retry_config": {"max_attempts": 3, "backoff_type": "fixed", "initial_delay_ms": 20}}]})J"));
  const std::string id = run("flaky", json::object());
  ExecutionResult r = finish(id);
  EXPECT_EQ(r.status, "completed");
  EXPECT_EQ(r.output["attempt"], 3);
  auto st = engine_->load_state(id);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st.value().steps.at("f").attempt, 3u);
  int retries = 0;
  for (const auto& ev : engine_->load_events(id).value()) retries += ev.has_retry_scheduled();
  EXPECT_EQ(retries, 2);
}

TEST_F(EngineTest, ExhaustedRetriesGoToOnFailureWithErrorInScope) {
  open();
  put(json::parse(R"J({"id": "fallback", "steps": [
    {"id": "f", "type": "action",
     "config": {"tool_id": "core", "action": "fail", "parameters": {"code": "boom"}},
     "retry_config": {"max_attempts": 2, "backoff_type": "fixed", "initial_delay_ms": 10},
     "on_failure": "alert"},
    {"id": "alert", "type": "action",
     "config": {"tool_id": "core", "action": "echo",
                "parameters": {"why": {"$ref": "f.error.code"}}}}]})J"));
  ExecutionResult r = finish(run("fallback", json::object()));
  EXPECT_EQ(r.status, "completed");
  EXPECT_EQ(r.output, json({{"why", "boom"}}));
}

TEST_F(EngineTest, StepTimeoutIsRetriedThenFailsTheRun) {
  open();
  put(json::parse(R"J({"id": "slow", "steps": [
    {"id": "s", "type": "action",
     "config": {"tool_id": "core", "action": "sleep", "parameters": {"ms": 5000},
                "timeout_ms": 100},
     "retry_config": {"max_attempts": 2, "backoff_type": "fixed", "initial_delay_ms": 10}}]})J"));
  const auto t0 = std::chrono::steady_clock::now();
  ExecutionResult r = finish(run("slow", json::object()));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_EQ(r.status, "failed");
  EXPECT_EQ(r.error["code"], "timeout");
}

TEST_F(EngineTest, DelayMakesTheExecutionWaitDurably) {
  open();
  put(json::parse(R"J({"id": "nap", "steps": [
    {"id": "d", "type": "delay", "config": {"duration_ms": 300}, "on_success": "e"},
    {"id": "e", "type": "action", "config": {"tool_id": "core", "action": "echo",
                                             "parameters": {"ok": true}}}]})J"));
  const auto t0 = std::chrono::steady_clock::now();
  const std::string id = run("nap", json::object());
  auto summary = testing::store_of(*engine_).executions().summary(id);
  ASSERT_TRUE(summary.ok() && summary.value().has_value());
  EXPECT_EQ(summary.value()->status(), "waiting");
  ExecutionResult r = finish(id);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);
  EXPECT_EQ(r.status, "completed");
  EXPECT_EQ(r.output, json({{"ok", true}}));
}

TEST_F(EngineTest, LoopAndParallelRunThroughActors) {
  open();
  put(json::parse(R"J({"id": "fan", "steps": [
    {"id": "each", "type": "loop",
     "config": {"items": {"$ref": "input.items"}, "parallel": true, "steps": [
       {"id": "sq", "type": "action",
        "config": {"tool_id": "core", "action": "echo",
                   "parameters": {"v": {"$expr": "item * item"}, "i": {"$ref": "index"}}}}]},
     "on_success": "both"},
    {"id": "both", "type": "parallel", "config": {"wait_for": "all", "steps": [
       {"id": "left", "type": "action",
        "config": {"tool_id": "core", "action": "echo", "parameters": {"n": {"$expr": "len(each)"}}}},
       {"id": "right", "type": "action",
        "config": {"tool_id": "rec", "action": "work", "parameters": {"v": "r", "ms": 10}}}]}}],
    "output": {"squares": {"$ref": "each"}, "both": {"$ref": "both"}}})J"));
  ExecutionResult r = finish(run("fan", {{"items", {1, 2, 3}}}));
  ASSERT_EQ(r.status, "completed") << r.error.dump();
  EXPECT_EQ(r.output["squares"], json::parse(R"J([{"v":1,"i":0},{"v":4,"i":1},{"v":9,"i":2}])J"));
  EXPECT_EQ(r.output["both"]["left"], json({{"n", 3}}));
  EXPECT_EQ(r.output["both"]["right"]["v"], "r");
}

TEST_F(EngineTest, ToolConcurrencyIsBounded) {
  rec_ = std::make_shared<RecordingTool>(2);
  open();
  put(json::parse(R"J({"id": "busy", "steps": [
    {"id": "each", "type": "loop",
     "config": {"items": [1, 2, 3, 4, 5, 6], "parallel": true, "steps": [
       {"id": "w", "type": "action",
        "config": {"tool_id": "rec", "action": "work", "parameters": {"v": {"$ref": "item"}, "ms": 50}}}]}}]})J"));
  ExecutionResult r = finish(run("busy", json::object()));
  EXPECT_EQ(r.status, "completed");
  EXPECT_EQ(rec_->keys().size(), 6u);
  EXPECT_EQ(rec_->max_concurrent(), 2);
}

TEST_F(EngineTest, CoreSleepHoldsItsSlot) {
  EngineOptions opts;
  opts.core_tool_concurrency = 2;
  open(opts);
  put(json::parse(R"J({"id": "sleepers", "steps": [
    {"id": "each", "type": "loop",
     "config": {"items": [1, 2, 3, 4], "parallel": true, "steps": [
       {"id": "z", "type": "action",
        "config": {"tool_id": "core", "action": "sleep", "parameters": {"ms": 150}}}]}}]})J"));
  const auto t0 = std::chrono::steady_clock::now();
  ExecutionResult r = finish(run("sleepers", json::object()));
  EXPECT_EQ(r.status, "completed");
  // Four 150 ms sleeps through two slots take two rounds.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);
}

TEST_F(EngineTest, WorkflowTimeoutEndsTheRun) {
  open();
  put(json::parse(R"J({"id": "late", "config": {"timeout_ms": 150}, "steps": [
    {"id": "d", "type": "delay", "config": {"duration_ms": 60000}}]})J"));
  ExecutionResult r = finish(run("late", json::object()));
  EXPECT_EQ(r.status, "timed_out");
}

TEST_F(EngineTest, CancelIsAnEvent) {
  open();
  put(json::parse(R"J({"id": "long", "steps": [
    {"id": "d", "type": "delay", "config": {"duration_ms": 60000}}]})J"));
  const std::string id = run("long", json::object());
  Status s = engine_->cancel(id, "user asked");
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  ExecutionResult r = finish(id);
  EXPECT_EQ(r.status, "cancelled");
  EXPECT_TRUE(engine_->load_events(id).value().back().has_execution_cancelled());
  EXPECT_EQ(engine_->cancel(id, "again").code(), "conflict");
  EXPECT_EQ(engine_->cancel("01ARZ3NDEKTSV4RRFFQ69G5FAV", "x").code(), "not_found");
}

TEST_F(EngineTest, KilledExecutionActorIsRebuiltAndOthersAreUnharmed) {
  open();
  put(json::parse(R"J({"id": "pair", "steps": [
    {"id": "w", "type": "action",
     "config": {"tool_id": "rec", "action": "work", "parameters": {"v": {"$ref": "input.v"}, "ms": 200}},
     "on_success": "e"},
    {"id": "e", "type": "action",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"v": {"$ref": "w.v"}}}}]})J"));
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(run("pair", {{"v", i}}));
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(engine_->kill_execution_actor_for_test(ids[1]));
  for (int i = 0; i < 4; ++i) {
    ExecutionResult r = finish(ids[static_cast<size_t>(i)]);
    EXPECT_EQ(r.status, "completed");
    EXPECT_EQ(r.output, json({{"v", i}}));
  }
  EXPECT_GE(engine_->stats().restarts, 1u);
  // The rebuilt actor re-dispatched the in-flight call with the same key.
  std::multiset<std::string> keys;
  for (const auto& k : rec_->keys()) keys.insert(k);
  EXPECT_EQ(keys.count(ids[1] + "/w/1"), 2u);
  EXPECT_EQ(keys.count(ids[0] + "/w/1"), 1u);
}

TEST_F(EngineTest, CleanShutdownResumesOnReopen) {
  open();
  put(json::parse(R"J({"id": "resume", "steps": [
    {"id": "d", "type": "delay", "config": {"duration_ms": 400}, "on_success": "e"},
    {"id": "e", "type": "action",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"v": {"$ref": "input.v"}}}}]})J"));
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(run("resume", {{"v", i}}));
  engine_.reset();
  open();
  for (int i = 0; i < 20; ++i) {
    ExecutionResult r = finish(ids[static_cast<size_t>(i)]);
    EXPECT_EQ(r.status, "completed");
    EXPECT_EQ(r.output, json({{"v", i}}));
  }
  EXPECT_EQ(engine_->stats().recovered, 20u);
  EXPECT_TRUE(engine_->ready());
}

}  // namespace
}  // namespace yantra
