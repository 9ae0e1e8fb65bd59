// The time machine through a real Engine (RocksDB in a temp dir, CAF actors,
// the `core` and `http` tools): state at any seq with and without snapshots,
// retry of a failed run, forks (patched and not), version pinning and
// retention.
//
// Design:
// - Snapshots must be invisible. Two engines that differ only in
//   snapshot_every (7 and 0) run the same flows live; then the histories the
//   snapshotting engine wrote are also appended, through the storage layer
//   (LogWriter, no snapshot), to the other engine's store, so that both
//   engines hold the very same events and "state after seq N" can be
//   compared byte for byte across them, and against fold(events 1..N).
//   (Histories of two live runs cannot be compared directly: ids, times and
//   the order of parallel results differ.)
// - Failures come from the outside world where that is the point: retry is
//   exercised with an `http` step against a local HttpTestServer whose
//   answer the test switches from 500 to 200, so the server sees exactly
//   which attempts (idempotency keys) were made.
// - Every wait is bounded (Engine::wait with a timeout, polling with a
//   deadline); no test sleeps for a fixed time to let something happen,
//   except to let retention passes go by where the point is that nothing
//   happens.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "actors/engine.hpp"
#include "actors/http_tool.hpp"
#include "actors/testing.hpp"
#include "base/time.hpp"
#include "runtime/timeline.hpp"
#include "storage/event_log.hpp"
#include "storage/log_writer.hpp"
#include "storage/store.hpp"
#include "tests/http_test_server.hpp"
#include "tests/support/slowdown.hpp"
#include "tests/test_util.hpp"

namespace yantra {
namespace {

using namespace std::chrono_literals;
using testing::HttpTestServer;
using testing::TempDir;
using testing::TestRequest;
using testing::TestResponse;

std::unique_ptr<Engine> open_engine(EngineOptions opts) {
  auto e = Engine::open(std::move(opts));
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? std::move(e.value()) : nullptr;
}

std::string start(Engine& engine, const std::string& flow, json input = json::object()) {
  RunRequest req;
  req.flow_id = flow;
  req.input = std::move(input);
  auto id = engine.start_sync(std::move(req));
  EXPECT_TRUE(id.ok()) << id.status().to_string();
  return id.ok() ? id.value() : "";
}

ExecutionResult finish(Engine& engine, const std::string& id,
                       std::chrono::milliseconds timeout = 20s) {
  auto r = engine.wait(id, timeout);
  EXPECT_TRUE(r.ok()) << id << ": " << r.status().to_string();
  return r.ok() ? r.value() : ExecutionResult{};
}

void put(Engine& engine, const json& flow) {
  auto v = engine.put_flow("default", flow);
  ASSERT_TRUE(v.ok()) << v.status().to_string();
}

// Engine::fork / Engine::retry, waited for (bounded).
Result<std::string> fork_sync(Engine& engine, const std::string& source, uint64_t at_seq,
                              const json& patch) {
  auto p = std::make_shared<std::promise<Result<std::string>>>();
  auto f = p->get_future();
  engine.fork("default", source, at_seq, patch,
              [p](Result<std::string> id) { p->set_value(std::move(id)); });
  if (f.wait_for(10s) != std::future_status::ready)
    return Status(Errc::kTimeout, "fork: no answer");
  return f.get();
}

Result<std::string> retry_sync(Engine& engine, const std::string& id) {
  auto p = std::make_shared<std::promise<Result<std::string>>>();
  auto f = p->get_future();
  engine.retry("default", id, [p](Result<std::string> r) { p->set_value(std::move(r)); });
  if (f.wait_for(10s) != std::future_status::ready)
    return Status(Errc::kTimeout, "retry: no answer");
  return f.get();
}

std::vector<std::string> serialized(const std::vector<v1::Event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.SerializeAsString());
  return out;
}

uint64_t seq_of(const std::vector<v1::Event>& log, v1::Event::BodyCase kind) {
  for (const auto& e : log) {
    if (e.body_case() == kind) return e.seq();
  }
  return 0;
}

// ---------------------------------------------------------------- (a) snapshots

// A sequential loop of 50 iterations, a step that fails twice before it
// succeeds (retries with backoff timers) and a parallel step whose branches
// are an action and a delay: every kind of event, and well over 7 per run.
json mixed_flow() {
  return json::parse(R"J({"id": "mixed", "steps": [
    {"id": "each", "type": "loop",
     "config": {"items": {"$ref": "input.items"}, "steps": [
       {"id": "sq", "type": "action",
        "config": {"tool_id": "core", "action": "echo",
                   "parameters": {"v": {"$expr": "item * item"}}}}]},
     "on_success": "flaky"},
    {"id": "flaky", "type": "action",
     "config": {"tool_id": "core", "action": "fail", "parameters": {"times": 2}},
     "retry_config": {"max_attempts": 3, "backoff_type": "fixed", "initial_delay_ms": 5},
     "on_success": "both"},
    {"id": "both", "type": "parallel", "config": {"wait_for": "all", "steps": [
       {"id": "left", "type": "action",
        "config": {"tool_id": "core", "action": "echo", "parameters": {"n": {"$expr": "len(each)"}}}},
       {"id": "nap", "type": "delay", "config": {"duration_ms": 5}}]}}],
    "output": {"last": {"$ref": "each.49.v"}, "attempt": {"$ref": "flaky.attempt"},
               "left": {"$ref": "both.left.n"}}})J");
}

// A run that fails after a retry: the snapshots of a failed history too.
json failing_flow() {
  return json::parse(R"J({"id": "failing", "steps": [
    {"id": "each", "type": "loop", "config": {"items": [1, 2, 3, 4, 5, 6], "steps": [
       {"id": "e", "type": "action",
        "config": {"tool_id": "core", "action": "echo", "parameters": {"i": {"$ref": "item"}}}}]},
     "on_success": "boom"},
    {"id": "boom", "type": "action",
     "config": {"tool_id": "core", "action": "fail", "parameters": {"code": "boom"}},
     "retry_config": {"max_attempts": 2, "backoff_type": "fixed", "initial_delay_ms": 5}}]})J");
}

// Appends a finished execution's history (and its summary) to another store
// exactly as the engine's log writer would, without any snapshot.
Status transplant(const storage::Store& from, const std::string& id,
                  const std::vector<v1::Event>& events, storage::Store& to) {
  auto summary = from.executions().summary(id);
  if (!summary.ok()) return summary.status();
  if (!summary.value().has_value()) return Status(Errc::kNotFound, id);
  storage::WriteRequest req;
  req.partition = summary.value()->partition();
  req.execution_id = id;
  for (const auto& e : events) req.events.emplace_back(e.seq(), e.SerializeAsString());
  req.summary = *summary.value();
  req.created = true;
  std::promise<Status> done;
  auto f = done.get_future();
  {
    storage::LogWriter writer(to, req.partition);
    writer.append(std::move(req), [&done](const Status& s) { done.set_value(s); });
  }  // the destructor commits what is queued
  if (f.wait_for(10s) != std::future_status::ready) return Status(Errc::kTimeout, "transplant");
  return f.get();
}

TEST(TimeMachineEngine, SnapshotsAreOnlyAnOptimisation) {
  TempDir dir_snap, dir_plain;
  json items = json::array();
  for (int i = 1; i <= 50; ++i) items.push_back(i);

  std::vector<std::string> ids;  // on the snapshotting engine
  std::vector<std::vector<v1::Event>> logs;
  std::vector<std::string> plain_ids;
  {
    EngineOptions plain_opts;
    plain_opts.data_dir = dir_plain.str();
    plain_opts.snapshot_every = 0;
    auto plain = open_engine(plain_opts);
    EngineOptions snap_opts;
    snap_opts.data_dir = dir_snap.str();
    snap_opts.snapshot_every = 7;
    auto snap = open_engine(snap_opts);
    ASSERT_TRUE(plain && snap);
    for (Engine* e : {plain.get(), snap.get()}) {
      put(*e, mixed_flow());
      put(*e, failing_flow());
    }
    for (Engine* e : {snap.get(), plain.get()}) {
      std::vector<std::string>& out = e == snap.get() ? ids : plain_ids;
      out.push_back(start(*e, "mixed", {{"items", items}}));
      out.push_back(start(*e, "failing"));
    }
    // The same flows end the same way on both engines.
    for (size_t i = 0; i < ids.size(); ++i) {
      ExecutionResult a = finish(*snap, ids[i]);
      ExecutionResult b = finish(*plain, plain_ids[i]);
      EXPECT_EQ(a.status, b.status);
      EXPECT_EQ(a.output.dump(), b.output.dump());
      EXPECT_EQ(a.error.dump(), b.error.dump());
    }
    EXPECT_EQ(finish(*snap, ids[0]).output, json({{"last", 2500}, {"attempt", 3}, {"left", 50}}));
    EXPECT_EQ(finish(*snap, ids[1]).status, "failed");

    for (const auto& id : ids) {
      auto events = snap->load_events(id);
      ASSERT_TRUE(events.ok()) << events.status().to_string();
      logs.push_back(events.value());
    }
    ASSERT_GT(logs[0].size(), 150u);
    // The snapshotting engine did take snapshots (else this test proves
    // nothing): several for the long run, none on the other engine.
    const uint32_t p0 = testing::store_of(*snap).executions().summary(ids[0]).value()->partition();
    auto last_snap = testing::store_of(*snap).events().latest_snapshot(p0, ids[0], UINT64_MAX);
    ASSERT_TRUE(last_snap.ok() && last_snap.value().has_value());
    EXPECT_GE(last_snap.value()->seq(), logs[0].size() - 14);
    auto early_snap = testing::store_of(*snap).events().latest_snapshot(p0, ids[0], 20);
    ASSERT_TRUE(early_snap.ok() && early_snap.value().has_value());
    EXPECT_LE(early_snap.value()->seq(), 20u);
    const uint32_t q0 =
        testing::store_of(*plain).executions().summary(plain_ids[0]).value()->partition();
    auto none = testing::store_of(*plain).events().latest_snapshot(q0, plain_ids[0], UINT64_MAX);
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none.value().has_value());
  }

  // Give the engine without snapshots the same histories.
  {
    auto store = storage::Store::open({dir_plain.str(), storage::Durability::kSync});
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    auto snap_store = storage::Store::open({dir_snap.str(), storage::Durability::kSync});
    ASSERT_TRUE(snap_store.ok()) << snap_store.status().to_string();
    for (size_t i = 0; i < ids.size(); ++i) {
      Status s = transplant(*snap_store.value(), ids[i], logs[i], *store.value());
      ASSERT_TRUE(s.is_ok()) << s.to_string();
    }
  }

  EngineOptions plain_opts;
  plain_opts.data_dir = dir_plain.str();
  plain_opts.snapshot_every = 0;
  auto plain = open_engine(plain_opts);
  EngineOptions snap_opts;
  snap_opts.data_dir = dir_snap.str();
  snap_opts.snapshot_every = 7;
  auto snap = open_engine(snap_opts);
  ASSERT_TRUE(plain && snap);
  for (size_t i = 0; i < ids.size(); ++i) {
    SCOPED_TRACE(ids[i]);
    const uint32_t p = testing::store_of(*plain).executions().summary(ids[i]).value()->partition();
    ASSERT_FALSE(testing::store_of(*plain)
                     .events()
                     .latest_snapshot(p, ids[i], UINT64_MAX)
                     .value()
                     .has_value());
    ASSERT_EQ(serialized(plain->load_events(ids[i]).value()), serialized(logs[i]));
    const uint64_t last = logs[i].back().seq();
    size_t from_snapshot = 0;
    for (uint64_t n = 1; n <= last; ++n) {
      auto a = snap->load_state_at(ids[i], n);
      auto b = plain->load_state_at(ids[i], n);
      auto prefix = snap->load_events(ids[i], 1, n);
      ASSERT_TRUE(a.ok() && b.ok() && prefix.ok()) << "seq " << n;
      auto folded = fold(prefix.value());
      ASSERT_TRUE(folded.ok()) << "seq " << n << ": " << folded.status().to_string();
      const std::string bytes = to_json(a.value()).dump();
      ASSERT_EQ(bytes, to_json(b.value()).dump()) << "seq " << n;
      ASSERT_EQ(bytes, to_json(folded.value()).dump()) << "seq " << n;
      EXPECT_EQ(a.value().last_seq, n);
      auto s = testing::store_of(*snap).events().latest_snapshot(p, ids[i], n);
      if (s.ok() && s.value().has_value()) ++from_snapshot;
    }
    EXPECT_GT(from_snapshot, last / 2) << "most states should start from a snapshot";
  }
}

// ---------------------------------------------------------------- (b) retry

TEST(TimeMachineEngine, RetryOfAFailedHttpStepRecordsEveryAttempt) {
  std::atomic<int> answer{500};
  HttpTestServer server([&](const TestRequest&) {
    const int status = answer.load();
    return TestResponse::json(status, {{"status", status}});
  });
  TempDir dir;
  EngineOptions opts;
  opts.data_dir = dir.str();
  opts.tools = {make_http_tool()};
  auto engine = open_engine(opts);
  ASSERT_TRUE(engine);
  json flow = json::parse(R"J({"id": "hook", "steps": [
    {"id": "call", "type": "action",
     "config": {"tool_id": "http", "action": "request", "parameters": {"method": "POST"}},
     "retry_config": {"max_attempts": 2, "backoff_type": "fixed", "initial_delay_ms": 10},
     "on_success": "after"},
    {"id": "after", "type": "action",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"got": {"$ref": "call.status"}}}}],
    "output": {"got": {"$ref": "after.got"}}})J");
  flow["steps"][0]["config"]["parameters"]["url"] = server.url("/hook");
  put(*engine, flow);

  const std::string id = start(*engine, "hook");
  ExecutionResult failed = finish(*engine, id);
  ASSERT_EQ(failed.status, "failed");
  EXPECT_EQ(failed.error.value("code", ""), "http_500") << failed.error.dump();
  const uint64_t failed_last = engine->load_events(id).value().back().seq();

  answer = 200;
  auto retried = retry_sync(*engine, id);
  ASSERT_TRUE(retried.ok()) << retried.status().to_string();
  EXPECT_EQ(retried.value(), id);
  ExecutionResult done = finish(*engine, id);
  ASSERT_EQ(done.status, "completed") << done.error.dump();
  EXPECT_EQ(done.output, json({{"got", 200}}));

  auto st = engine->load_state(id);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st.value().steps.at("call").attempt, 3u);
  EXPECT_EQ(st.value().steps.at("call").status, StepStatus::kCompleted);
  auto events = engine->load_events(id);
  ASSERT_TRUE(events.ok());
  // The failed history is kept as it was; the retry appends to it.
  EXPECT_EQ(events.value()[failed_last].body_case(), v1::Event::kResumed);
  const json tl = timeline(events.value());
  ASSERT_FALSE(tl.contains("error")) << tl.dump();
  EXPECT_EQ(tl["status"], "completed");
  json call;
  for (const auto& s : tl["steps"]) {
    if (s["path"] == "call") call = s;
  }
  ASSERT_TRUE(call.is_object()) << tl.dump();
  std::vector<std::string> outcomes;
  for (const auto& a : call["attempts"]) outcomes.push_back(a["outcome"]);
  EXPECT_EQ(outcomes, (std::vector<std::string>{"failed", "failed", "completed"})) << call.dump();
  EXPECT_EQ(tl["resumes"].size(), 1u);

  const std::vector<std::string> keys = server.idempotency_keys();
  EXPECT_EQ(keys, (std::vector<std::string>{id + "/call/1", id + "/call/2", id + "/call/3"}));
  // Only a failed or timed-out run can be retried.
  auto again = retry_sync(*engine, id);
  EXPECT_EQ(again.status().code(), "conflict");
  EXPECT_EQ(retry_sync(*engine, "01ARZ3NDEKTSV4RRFFQ69G5FAV").status().code(), "not_found");
}

// ---------------------------------------------------------------- (c), (d) forks

json two_step_flow() {
  return json::parse(R"J({"id": "two", "steps": [
    {"id": "a", "type": "action",
     "config": {"tool_id": "core", "action": "fail",
                "parameters": {"code": "bad_request", "retriable": false}},
     "on_success": "b"},
    {"id": "b", "type": "action",
     "config": {"tool_id": "core", "action": "echo",
                "parameters": {"from_a": {"$ref": "a.v"}, "y": {"$ref": "input.y"}}}}],
    "output": {"b": {"$ref": "b"}}})J");
}

TEST(TimeMachineEngine, ForkOfAFailedRunWithAPatchedOutputCompletes) {
  TempDir dir;
  EngineOptions opts;
  opts.data_dir = dir.str();
  auto engine = open_engine(opts);
  ASSERT_TRUE(engine);
  put(*engine, two_step_flow());
  const std::string source = start(*engine, "two", {{"y", "Y"}});
  ASSERT_EQ(finish(*engine, source).status, "failed");
  auto before = engine->load_events(source);
  ASSERT_TRUE(before.ok());
  const uint64_t failed_at = seq_of(before.value(), v1::Event::kStepFailed);
  ASSERT_GT(failed_at, 1u);

  auto fork = fork_sync(*engine, source, failed_at - 1,
                        json::parse(R"({"steps": {"a": {"output": {"v": 42}}}})"));
  ASSERT_TRUE(fork.ok()) << fork.status().to_string();
  ASSERT_NE(fork.value(), source);
  ExecutionResult r = finish(*engine, fork.value());
  ASSERT_EQ(r.status, "completed") << r.error.dump();
  EXPECT_EQ(r.output, json({{"b", {{"from_a", 42}, {"y", "Y"}}}}));

  auto st = engine->load_state(fork.value());
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st.value().parent_execution_id, source);
  EXPECT_EQ(st.value().forked_at_seq, failed_at - 1);
  auto after = engine->load_events(source);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(serialized(after.value()), serialized(before.value())) << "the source was modified";
  EXPECT_EQ(engine->load_state(source).value().status, ExecStatus::kFailed);
  auto forks = engine->forks(source);
  ASSERT_TRUE(forks.ok());
  EXPECT_EQ(forks.value(), std::vector<std::string>{fork.value()});
  EXPECT_TRUE(engine->forks(fork.value()).value().empty());
  // The fork is listed like any execution, with its own summary.
  auto summary = engine->summary("default", fork.value());
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary.value().status(), "completed");
  // Another tenant sees neither the source nor a way to fork it.
  auto other = std::make_shared<std::promise<Result<std::string>>>();
  engine->fork("other", source, 1, nullptr,
               [other](Result<std::string> id) { other->set_value(std::move(id)); });
  auto of = other->get_future();
  ASSERT_EQ(of.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(of.get().status().code(), "not_found");
}

TEST(TimeMachineEngine, ForkWithoutPatchIsTheSameRunAndAPatchedInputFlowsOn) {
  TempDir dir;
  EngineOptions opts;
  opts.data_dir = dir.str();
  auto engine = open_engine(opts);
  ASSERT_TRUE(engine);
  json flow = two_step_flow();
  flow["steps"][0]["config"] = {
      {"tool_id", "core"}, {"action", "echo"}, {"parameters", {{"v", {{"$ref", "input.x"}}}}}};
  put(*engine, flow);
  const std::string source = start(*engine, "two", {{"x", 1}, {"y", "old"}});
  ExecutionResult src = finish(*engine, source);
  ASSERT_EQ(src.status, "completed") << src.error.dump();
  EXPECT_EQ(src.output, json({{"b", {{"from_a", 1}, {"y", "old"}}}}));
  auto log = engine->load_events(source).value();

  // From the last event, no patch: the finished copy.
  auto same = fork_sync(*engine, source, log.back().seq(), nullptr);
  ASSERT_TRUE(same.ok()) << same.status().to_string();
  ExecutionResult copy = finish(*engine, same.value());
  EXPECT_EQ(copy.status, "completed");
  EXPECT_EQ(copy.output.dump(), src.output.dump());
  auto copy_log = engine->load_events(same.value()).value();
  ASSERT_EQ(copy_log.size(), log.size());
  for (size_t i = 1; i < log.size(); ++i) {
    EXPECT_EQ(copy_log[i].SerializeAsString(), log[i].SerializeAsString()) << "seq " << i + 1;
  }
  // at_seq 0 means "all of it".
  auto all = fork_sync(*engine, source, 0, nullptr);
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_EQ(finish(*engine, all.value()).output.dump(), src.output.dump());
  // A finished copy cannot take a patch.
  EXPECT_EQ(fork_sync(*engine, source, log.back().seq(), json::parse(R"({"input": {"y": "z"}})"))
                .status()
                .code(),
            "conflict");

  // From the StepStarted of a, with a patched input: b, which starts after
  // the fork point, reads the new input; a had already resolved its
  // parameters (they are in its StepStarted), so it runs again with x = 1.
  const uint64_t a_started = seq_of(log, v1::Event::kStepStarted);
  ASSERT_GT(a_started, 0u);
  auto patched =
      fork_sync(*engine, source, a_started, json::parse(R"({"input": {"y": "new", "x": 5}})"));
  ASSERT_TRUE(patched.ok()) << patched.status().to_string();
  ExecutionResult p = finish(*engine, patched.value());
  ASSERT_EQ(p.status, "completed") << p.error.dump();
  EXPECT_EQ(p.output, json({{"b", {{"from_a", 1}, {"y", "new"}}}}));
  // Forked before a started, the patched x reaches a too.
  auto early = fork_sync(*engine, source, 1, json::parse(R"({"input": {"x": 5}})"));
  ASSERT_TRUE(early.ok()) << early.status().to_string();
  EXPECT_EQ(finish(*engine, early.value()).output, json({{"b", {{"from_a", 5}, {"y", "old"}}}}));
  EXPECT_EQ(engine->load_state(patched.value()).value().input, json({{"x", 5}, {"y", "new"}}));
  EXPECT_EQ(engine->forks(source).value().size(), 4u);

  // Bad requests name the problem.
  auto bad = fork_sync(*engine, source, 1, json::parse(R"({"steps": {"nope": {"output": 1}}})"));
  EXPECT_EQ(bad.status().code(), "invalid_argument");
  EXPECT_EQ(fork_sync(*engine, source, log.back().seq() + 1, nullptr).status().code(),
            "invalid_argument");
}

// ---------------------------------------------------------------- (e) pinning

TEST(TimeMachineEngine, ARunKeepsTheFlowVersionItStartedOn) {
  TempDir dir;
  EngineOptions opts;
  opts.data_dir = dir.str();
  auto engine = open_engine(opts);
  ASSERT_TRUE(engine);
  auto flow = [](const char* constant) {
    json f = json::parse(R"J({"id": "pinned", "steps": [
      {"id": "wait", "type": "delay", "config": {"duration_ms": 300}, "on_success": "say"},
      {"id": "say", "type": "action",
       "config": {"tool_id": "core", "action": "echo", "parameters": {"v": ""}}}],
      "output": {"v": {"$ref": "say.v"}}})J");
    f["steps"][1]["config"]["parameters"]["v"] = constant;
    return f;
  };
  put(*engine, flow("one"));
  const std::string id = start(*engine, "pinned");
  auto summary = engine->summary("default", id);
  ASSERT_TRUE(summary.ok());
  ASSERT_EQ(summary.value().status(), "waiting");
  auto v2 = engine->put_flow("default", flow("two"));
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2.value(), 2u);
  ExecutionResult r = finish(*engine, id);
  ASSERT_EQ(r.status, "completed");
  EXPECT_EQ(r.output, json({{"v", "one"}}));
  EXPECT_EQ(engine->load_state(id).value().flow_version, 1u);
  // New runs take the latest version; a fork keeps its source's.
  const std::string fresh = start(*engine, "pinned");
  EXPECT_EQ(finish(*engine, fresh).output, json({{"v", "two"}}));
  auto fork = fork_sync(*engine, id, 2, nullptr);
  ASSERT_TRUE(fork.ok()) << fork.status().to_string();
  EXPECT_EQ(finish(*engine, fork.value()).output, json({{"v", "one"}}));
  EXPECT_EQ(engine->load_state(fork.value()).value().flow_version, 1u);
}

// ---------------------------------------------------------------- (f) retention

// Polls until `pred()` or the deadline; returns the last value of pred().
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

json retention_flows_quick() {
  return json::parse(R"J({"id": "quick", "steps": [
    {"id": "a", "type": "action",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"v": {"$ref": "input.v"}}}}],
    "output": {"v": {"$ref": "a.v"}}})J");
}

json retention_flows_slow(int64_t ms) {
  json f = json::parse(R"J({"id": "slow", "steps": [
    {"id": "d", "type": "delay", "config": {"duration_ms": 0}, "on_success": "e"},
    {"id": "e", "type": "action",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"done": true}}}],
    "output": {"done": {"$ref": "e.done"}}})J");
  f["steps"][0]["config"]["duration_ms"] = ms;
  return f;
}

bool events_gone(Engine& engine, const std::string& id) {
  auto e = engine.load_events(id);
  return !e.ok() && e.status().code() == "not_found";
}

// The whole history, from seq 1, folding to the summary's status.
void expect_full_history(Engine& engine, const std::string& id) {
  auto summary = engine.summary("default", id);
  ASSERT_TRUE(summary.ok()) << summary.status().to_string();
  auto events = engine.load_events(id);
  ASSERT_TRUE(events.ok()) << id << ": " << events.status().to_string();
  ASSERT_FALSE(events.value().empty());
  EXPECT_EQ(events.value().front().seq(), 1u);
  EXPECT_GE(events.value().back().seq(), summary.value().last_seq());
  auto st = fold(events.value());
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  EXPECT_EQ(st.value().execution_id, id);
}

TEST(TimeMachineEngine, RetentionDropsOldHistoriesKeepsSummariesAndLiveRuns) {
  TempDir dir;
  EngineOptions opts;
  opts.data_dir = dir.str();
  opts.retention_ms = 200;
  opts.retention_interval_ms = 50;
  auto engine = open_engine(opts);
  ASSERT_TRUE(engine);
  put(*engine, retention_flows_quick());
  put(*engine, retention_flows_slow(4000));

  const std::string waiting = start(*engine, "slow");
  std::vector<std::string> old;
  for (int i = 0; i < 3; ++i) old.push_back(start(*engine, "quick", {{"v", i}}));
  for (const auto& id : old) ASSERT_EQ(finish(*engine, id).status, "completed");

  // Never before retention_ms after the end: whenever a history is seen
  // gone, its execution ended at least retention_ms ago.
  for (const auto& id : old) {
    const int64_t ended = engine->summary("default", id).value().updated_ms();
    ASSERT_TRUE(eventually([&] {
      const int64_t now = now_ms();
      if (!events_gone(*engine, id)) return false;
      EXPECT_GE(now - ended, 200) << id << " expired too early";
      return true;
    })) << id
        << " was never expired";
    // The summary stays, and says what happened.
    auto summary = engine->summary("default", id);
    ASSERT_TRUE(summary.ok()) << summary.status().to_string();
    EXPECT_EQ(summary.value().status(), "completed");
    auto listed = engine->list_executions("default", "quick", "", 100, "");
    ASSERT_TRUE(listed.ok());
    EXPECT_EQ(listed.value().items.size(), old.size());
    EXPECT_FALSE(engine->load_state(id).ok());
    EXPECT_FALSE(engine->load_state_at(id, 1).ok());
  }

  // One that ends now keeps its history until it is old enough.
  const std::string recent = start(*engine, "quick", {{"v", 9}});
  ASSERT_EQ(finish(*engine, recent).status, "completed");
  const int64_t recent_end = engine->summary("default", recent).value().updated_ms();
  bool checked_present = false;
  ASSERT_TRUE(eventually([&] {
    const int64_t now = now_ms();
    if (!events_gone(*engine, recent)) {
      checked_present = true;
      return false;
    }
    EXPECT_GE(now - recent_end, 200) << "expired too early";
    return true;
  }));
  EXPECT_TRUE(checked_present);

  // The running execution lost nothing, through many retention passes.
  auto summary = engine->summary("default", waiting);
  ASSERT_TRUE(summary.ok());
  ASSERT_EQ(summary.value().status(), "waiting") << "the delay is too short for this machine";
  expect_full_history(*engine, waiting);

  // Recovery after a restart: the waiting run resumes and completes, the
  // expired ones stay summaries only.
  engine.reset();
  engine = open_engine(opts);
  ASSERT_TRUE(engine);
  // (ready() means every recovery was handed over, not yet activated.)
  EXPECT_TRUE(eventually([&] { return engine->ready() && engine->stats().recovered == 1u; }));
  ExecutionResult r = finish(*engine, waiting);
  EXPECT_EQ(r.status, "completed");
  EXPECT_EQ(r.output, json({{"done", true}}));
  for (const auto& id : old) {
    EXPECT_TRUE(events_gone(*engine, id));
    EXPECT_EQ(engine->summary("default", id).value().status(), "completed");
  }
}

// A failed run is queued for retention when it fails; retrying it makes it
// live again, so that entry must not expire it while it runs, nor earlier
// than retention_ms after it ends again.
TEST(TimeMachineEngine, RetentionNeverExpiresARetriedRunWhileItRuns) {
  // Every duration below is a multiple of `unit`: 100 ms, times kSlowdown in
  // a sanitizer build, where failing, reading and retrying take that much
  // longer and would otherwise not fit before retention.
  const int64_t unit = 100 * testing::kSlowdown;
  const std::chrono::milliseconds wait_limit(100 * unit);
  TempDir dir;
  EngineOptions opts;
  opts.data_dir = dir.str();
  opts.retention_ms = 10 * unit;
  opts.retention_interval_ms = 50;
  auto engine = open_engine(opts);
  ASSERT_TRUE(engine);
  // First attempt fails (no retries), the retried one succeeds, then a
  // delay keeps the run alive well past retention_ms.
  put(*engine, json::parse(R"J({"id": "comeback", "steps": [
    {"id": "f", "type": "action",
     "config": {"tool_id": "core", "action": "fail", "parameters": {"times": 1}},
     "on_success": "d"},
    {"id": "d", "type": "delay", "config": {"duration_ms": )J" +
                           std::to_string(25 * unit) + "}}]}"));
  const std::string id = start(*engine, "comeback");
  ASSERT_EQ(finish(*engine, id).status, "failed");
  const int64_t failed_at = engine->summary("default", id).value().updated_ms();
  auto retried = retry_sync(*engine, id);
  ASSERT_TRUE(retried.ok()) << retried.status().to_string();
  ASSERT_LT(now_ms() - failed_at, 10 * unit) << "too slow to retry before retention";

  // Past failed_at + retention_ms (+ a few passes) while the delay runs.
  ASSERT_TRUE(eventually([&] { return now_ms() - failed_at > 13 * unit; }, wait_limit));
  auto summary = engine->summary("default", id);
  ASSERT_TRUE(summary.ok());
  ASSERT_FALSE(summary.value().status() == "completed") << "the delay is too short";
  expect_full_history(*engine, id);

  ExecutionResult r = finish(*engine, id);
  ASSERT_EQ(r.status, "completed");
  const int64_t ended = engine->summary("default", id).value().updated_ms();
  if (now_ms() - ended < 9 * unit) expect_full_history(*engine, id);
  ASSERT_TRUE(eventually(
      [&] {
        const int64_t now = now_ms();
        if (!events_gone(*engine, id)) return false;
        EXPECT_GE(now - ended, 10 * unit) << "expired too early";
        return true;
      },
      wait_limit));
}

}  // namespace
}  // namespace yantra
