// Signals, approvals and passivation through the public Engine API, with
// real actors and RocksDB: an execution that only waits holds no actor
// (active_actors drops to zero), and every kind of input wakes it — a
// signal, an approval, a cancel, its own timer — also after a restart of
// the engine. Signals sent before the wait are kept and consumed in order;
// inputs racing the execution going to sleep are never lost.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "actors/engine.hpp"
#include "tests/test_util.hpp"

namespace yantra {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

class WaitsTest : public ::testing::Test {
 protected:
  void open() {
    EngineOptions opts;
    opts.data_dir = dir_.str();
    opts.retention_ms = 0;
    auto e = Engine::open(std::move(opts));
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(e.value());
  }

  void put(const std::string& text) {
    auto v = engine_->put_flow("default", json::parse(text));
    ASSERT_TRUE(v.ok()) << v.status().to_string();
  }

  std::string run(const std::string& flow, json input = json::object()) {
    RunRequest req;
    req.flow_id = flow;
    req.input = std::move(input);
    auto id = engine_->start_sync(std::move(req));
    EXPECT_TRUE(id.ok()) << id.status().to_string();
    return id.ok() ? id.value() : "";
  }

  Result<std::string> signal(const std::string& id, const std::string& name, json data) {
    std::promise<Result<std::string>> p;
    auto f = p.get_future();
    engine_->signal("default", id, name, std::move(data),
                    [&p](Result<std::string> r) { p.set_value(std::move(r)); });
    if (f.wait_for(10s) != std::future_status::ready) return Status(Errc::kTimeout, "no answer");
    return f.get();
  }

  Status approve(const std::string& id, const std::string& step, const std::string& key,
                 const std::string& role, bool approved) {
    std::promise<Status> p;
    auto f = p.get_future();
    engine_->approve("default", id, step, key, role, approved, "because",
                     [&p](Status s) { p.set_value(std::move(s)); });
    if (f.wait_for(10s) != std::future_status::ready) return Status(Errc::kTimeout, "no answer");
    return f.get();
  }

  // Waits until no execution actor is alive (every waiting one sleeps).
  bool all_asleep(std::chrono::milliseconds timeout = 5s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (engine_->stats().active_actors == 0) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  std::string status_of(const std::string& id) {
    auto s = engine_->summary("default", id);
    return s.ok() ? s.value().status() : s.status().code();
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
};

constexpr const char* kTwoWaits = R"({"id": "two", "steps": [
  {"id": "first", "type": "wait_signal", "config": {"name": "go"}, "on_success": "second"},
  {"id": "second", "type": "wait_signal", "config": {"name": "go"}}],
  "output": {"a": {"$ref": "first"}, "b": {"$ref": "second"}}})";

TEST_F(WaitsTest, AWaitingExecutionSleepsAndASignalWakesIt) {
  open();
  put(kTwoWaits);
  const std::string id = run("two");
  ASSERT_TRUE(all_asleep()) << engine_->stats().active_actors << " actors still alive";
  EXPECT_EQ(status_of(id), "waiting");
  auto s1 = signal(id, "go", {{"n", 1}});
  ASSERT_TRUE(s1.ok()) << s1.status().to_string();
  EXPECT_EQ(s1.value().rfind("sig_", 0), 0u);
  ASSERT_TRUE(all_asleep());  // the second wait sleeps again
  ASSERT_TRUE(signal(id, "go", {{"n", 2}}).ok());
  auto r = engine_->wait(id, 10s);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r.value().status, "completed");
  EXPECT_EQ(r.value().output, json({{"a", {{"n", 1}}}, {"b", {{"n", 2}}}}));
}

TEST_F(WaitsTest, SignalsSentBeforeTheWaitAreKeptInOrder) {
  open();
  put(R"({"id": "late", "steps": [
    {"id": "d", "type": "delay", "config": {"duration_ms": 200}, "on_success": "first"},
    {"id": "first", "type": "wait_signal", "config": {"name": "go"}, "on_success": "second"},
    {"id": "second", "type": "wait_signal", "config": {"name": "go"}}],
    "output": {"a": {"$ref": "first"}, "b": {"$ref": "second"}}})");
  const std::string id = run("late");
  ASSERT_TRUE(signal(id, "go", "one").ok());
  ASSERT_TRUE(signal(id, "go", "two").ok());
  ASSERT_TRUE(signal(id, "other", "ignored").ok());
  auto r = engine_->wait(id, 10s);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r.value().output, json({{"a", "one"}, {"b", "two"}}));
}

TEST_F(WaitsTest, SignalsToEndedOrUnknownExecutionsAreRefused) {
  open();
  put(R"({"id": "quick", "steps": [{"id": "e", "type": "action",
    "config": {"tool_id": "core", "action": "echo", "parameters": {}}}]})");
  const std::string id = run("quick");
  ASSERT_TRUE(engine_->wait(id, 10s).ok());
  EXPECT_EQ(signal(id, "go", 1).status().code(), "conflict");
  EXPECT_EQ(signal("01ZZZZZZZZZZZZZZZZZZZZZZZZ", "go", 1).status().code(), "not_found");
  put(kTwoWaits);
  const std::string waiting = run("two");
  EXPECT_EQ(signal(waiting, "", 1).status().code(), "invalid_argument");
  std::promise<Result<std::string>> p;
  engine_->signal("other-tenant", waiting, "go", 1,
                  [&p](Result<std::string> r) { p.set_value(std::move(r)); });
  EXPECT_EQ(p.get_future().get().status().code(), "not_found");
}

TEST_F(WaitsTest, ASleepingExecutionWakesForItsTimerCancelAndAfterARestart) {
  open();
  put(R"({"id": "timed", "steps": [{"id": "d", "type": "delay",
    "config": {"duration_ms": 300}}]})");
  put(kTwoWaits);
  const std::string timed = run("timed");
  const std::string cancelled = run("two");
  const std::string restarted = run("two");
  ASSERT_TRUE(all_asleep());
  // Its own timer wakes it.
  auto r = engine_->wait(timed, 10s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().status, "completed");
  // A cancel reaches a sleeping execution.
  ASSERT_TRUE(engine_->cancel(cancelled, "no longer needed").is_ok());
  EXPECT_EQ(engine_->wait(cancelled, 10s).value().status, "cancelled");
  // After a restart it sleeps again and still takes signals.
  engine_.reset();
  open();
  ASSERT_TRUE(all_asleep());
  ASSERT_TRUE(signal(restarted, "go", 1).ok());
  ASSERT_TRUE(signal(restarted, "go", 2).ok());
  r = engine_->wait(restarted, 10s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().output, json({{"a", 1}, {"b", 2}}));
}

// Inputs racing the execution falling asleep: many executions, signals sent
// at once from several threads while they go to sleep. Every one completes.
TEST_F(WaitsTest, SignalsRacingSleepAreNeverLost) {
  open();
  put(kTwoWaits);
  constexpr int kRuns = 200;
  std::vector<std::string> ids;
  for (int i = 0; i < kRuns; ++i) ids.push_back(run("two"));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kRuns; i += 4) {
        EXPECT_TRUE(signal(ids[static_cast<size_t>(i)], "go", i).ok());
        EXPECT_TRUE(signal(ids[static_cast<size_t>(i)], "go", -i).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < kRuns; ++i) {
    auto r = engine_->wait(ids[static_cast<size_t>(i)], 20s);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().to_string();
    EXPECT_EQ(r.value().output, json({{"a", i}, {"b", -i}})) << i;
  }
}

TEST_F(WaitsTest, ApprovalsFollowTheirPolicyAndWakeTheExecution) {
  open();
  put(R"({"id": "two-of-them", "steps": [{"id": "ok", "type": "approval",
    "config": {"approvers": ["key_alice", "role:admin"], "policy": "all"},
    "on_success": "done", "on_failure": "refused"},
    {"id": "done", "type": "action", "config": {"tool_id": "core", "action": "echo",
      "parameters": {"d": {"$ref": "ok.decision"}}}},
    {"id": "refused", "type": "action", "config": {"tool_id": "core", "action": "echo",
      "parameters": {"d": "refused"}}}]})");
  const std::string approved = run("two-of-them");
  const std::string rejected = run("two-of-them");
  ASSERT_TRUE(all_asleep());
  auto pending = engine_->pending_approvals("default");
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending.value().size(), 2u);
  EXPECT_EQ(approve(approved, "ok", "key_bob", "editor", true).code(), "forbidden");
  EXPECT_EQ(approve(approved, "nope", "key_alice", "viewer", true).code(), "not_found");
  ASSERT_TRUE(approve(approved, "ok", "key_alice", "viewer", true).is_ok());
  EXPECT_EQ(approve(approved, "ok", "key_alice", "viewer", true).code(), "conflict");
  EXPECT_EQ(status_of(approved), "waiting");  // "all": the admin seat is still empty
  ASSERT_TRUE(approve(approved, "ok", "key_carol", "admin", true).is_ok());
  auto r = engine_->wait(approved, 10s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().status, "completed");
  auto st = engine_->load_state(approved);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st.value().steps.at("done").output, json({{"d", "approved"}}));

  ASSERT_TRUE(approve(rejected, "ok", "key_dave", "admin", false).is_ok());
  r = engine_->wait(rejected, 10s);
  ASSERT_TRUE(r.ok());
  st = engine_->load_state(rejected);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st.value().steps.at("refused").output, json({{"d", "refused"}}));
  EXPECT_EQ(st.value().steps.at("ok").status, StepStatus::kFailed);
  pending = engine_->pending_approvals("default");
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending.value().empty());
}

// Tools may emit events too: core.emit starts the flows of the execution's
// tenant that the event triggers, and answers with their ids.
TEST_F(WaitsTest, AToolEmitsAnEventThatStartsTriggeredFlows) {
  open();
  put(R"({"id": "listener", "trigger": {"type": "event", "config": {"event_name": "order.paid",
    "filter": "event.data.amount > 10"}}, "steps": [{"id": "e", "type": "action",
    "config": {"tool_id": "core", "action": "echo", "parameters": {"got": {"$ref": "input.data"}}}}],
    "output": {"got": {"$ref": "e.got"}}})");
  put(R"({"id": "emitter", "steps": [{"id": "big", "type": "action", "config": {"tool_id": "core",
    "action": "emit", "parameters": {"name": "order.paid", "data": {"amount": 42}}},
    "on_success": "small"}, {"id": "small", "type": "action", "config": {"tool_id": "core",
    "action": "emit", "parameters": {"name": "order.paid", "data": {"amount": 1}}}}],
    "output": {"big": {"$ref": "big"}, "small": {"$ref": "small"}}})");
  const std::string id = run("emitter");
  auto r = engine_->wait(id, 10s);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r.value().status, "completed") << r.value().error.dump();
  const json started = r.value().output["big"]["executions"];
  ASSERT_EQ(started.size(), 1u) << r.value().output.dump();
  EXPECT_EQ(started[0]["flow_id"], "listener");
  EXPECT_TRUE(r.value().output["small"]["executions"].empty()) << "the filter drops amount 1";
  auto listened = engine_->wait(started[0]["execution_id"].get<std::string>(), 10s);
  ASSERT_TRUE(listened.ok());
  EXPECT_EQ(listened.value().output, json({{"got", {{"amount", 42}}}}));
  // Without a name there is nothing to emit: refused when stored (emit's
  // input schema requires it) ...
  auto refused = engine_->put_flow("default", json::parse(R"({"id": "no-name", "steps": [{"id":
    "x", "type": "action", "config": {"tool_id": "core", "action": "emit",
    "parameters": {"data": 1}}}]})"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), "invalid_flow") << refused.status().to_string();
  // ... and, when an expression makes it no string, when the step runs.
  put(R"({"id": "bad-emit", "steps": [{"id": "x", "type": "action", "config": {
    "tool_id": "core", "action": "emit", "parameters": {"name": {"$expr": "1 + 1"}}}}]})");
  auto bad = engine_->wait(run("bad-emit"), 10s);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad.value().status, "failed");
  EXPECT_EQ(bad.value().error.value("code", ""), "invalid_parameters") << bad.value().error.dump();
}

}  // namespace
}  // namespace yantra
