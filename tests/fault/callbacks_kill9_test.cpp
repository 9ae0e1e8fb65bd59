// Callbacks across kill -9 of a real node. A `yantra serve` child runs
// executions whose flow reports every event to a local receiver that is
// failing (503) while they run, so every callback is still owed when the node
// is SIGKILLed mid-flight (most executions sleep in a delay). Then:
// - the store as the kill left it holds exactly one outbox row per callback
//   event in the log: the rows committed with their events, none lost and
//   none invented (nothing was accepted yet, so none was removed);
// - the receiver recovers, a new node starts on the same data, the
//   executions finish, and every callback event of the final logs is
//   accepted exactly once, with a valid signature; the outbox ends empty.
#include <signal.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>

#include "base/crypto.hpp"
#include "runtime/ids.hpp"
#include "storage/event_log.hpp"
#include "storage/outbox.hpp"
#include "storage/store.hpp"
#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_process.hpp"
#include "tests/http_test_server.hpp"

namespace yantra {
namespace {

using namespace std::chrono_literals;
using e2e::Api;
using e2e::NodeProcess;
using nlohmann::json;

constexpr uint32_t kPartitions = 4;  // the node's default
constexpr int kRuns = 40;
constexpr const char* kSecret = "kill9-signing-key";

json flow(const std::string& url) {
  return {
      {"id", "cbk9"},
      {"config",
       {{"callbacks",
         {{{"url", url},
           {"events",
            {"execution.started", "execution.completed", "execution.failed", "step.completed",
             "step.failed"}},
           {"secret", kSecret}}}}}},
      {"steps",
       {{{"id", "a"},
         {"type", "action"},
         {"config",
          {{"tool_id", "core"},
           {"action", "echo"},
           {"parameters", {{"v", {{"$ref", "input.n"}}}}}}},
         {"on_success", "d"}},
        {{"id", "d"}, {"type", "delay"}, {"config", {{"duration_ms", 800}}}, {"on_success", "b"}},
        {{"id", "b"},
         {"type", "action"},
         {"config",
          {{"tool_id", "core"}, {"action", "echo"}, {"parameters", {{"w", {{"$ref", "a.v"}}}}}}}}}},
      {"output", {{"w", {{"$ref", "b.w"}}}}}};
}

// Delivery ids the logs of `ids` owe (callback index 0 of the flow above).
std::set<std::string> owed(storage::Store& store, const std::vector<std::string>& ids) {
  std::set<std::string> out;
  for (const auto& id : ids) {
    auto events = store.events().read(partition_of(id, kPartitions), id);
    EXPECT_TRUE(events.ok()) << events.status().to_string();
    if (!events.ok()) continue;
    for (const auto& ev : events.value()) {
      if (ev.has_execution_started() || ev.has_execution_completed() || ev.has_execution_failed() ||
          ev.has_step_completed() || ev.has_step_failed()) {
        out.insert(id + "/" + std::to_string(ev.seq()) + "/0");
      }
    }
  }
  return out;
}

std::unique_ptr<storage::Store> open_store(const std::string& dir) {
  auto store = storage::Store::open(storage::StoreOptions{dir, storage::Durability::kSync});
  EXPECT_TRUE(store.ok()) << store.status().to_string();
  return store.ok() ? std::move(store.value()) : nullptr;
}

TEST(CallbacksKill9, OwedCallbacksSurviveTheKillAndAreDeliveredOnceAfterRestart) {
  std::atomic<bool> accepting{false};
  std::mutex mu;
  std::map<std::string, int> accepted;  // by X-Yantra-Delivery
  std::vector<std::string> bad_signatures;
  int refused = 0;
  testing::HttpTestServer receiver([&](const testing::TestRequest& req) {
    std::lock_guard<std::mutex> lock(mu);
    if (!accepting.load()) {
      ++refused;
      return testing::TestResponse::text(503, "down for maintenance");
    }
    const std::string id = req.header("x-yantra-delivery");
    const std::string expected =
        "sha256=" +
        crypto::hmac_sha256_hex(kSecret, req.header("x-yantra-timestamp") + "." + req.body);
    if (req.header("x-yantra-signature") != expected) bad_signatures.push_back(id);
    ++accepted[id];
    return testing::TestResponse::json(200, {{"ok", true}});
  });

  e2e::TempDir dir;
  NodeProcess::Options options;
  options.data_dir = dir.sub("data");
  std::vector<std::string> ids;
  {
    NodeProcess node(options);
    std::string error;
    ASSERT_TRUE(node.start(&error)) << error;
    Api api(node.port(), node.key());
    auto created = api.request("POST", "/api/v1/flows", flow(receiver.url("/hook")).dump(),
                               {{"Content-Type", "application/json"}});
    ASSERT_EQ(created.status, 201) << created.body;
    for (int i = 0; i < kRuns; ++i) {
      auto r = api.request("POST", "/api/v1/flows/cbk9/run", json{{"input", {{"n", i}}}}.dump(),
                           {{"Content-Type", "application/json"}});
      ASSERT_EQ(r.status, 202) << r.body;
      ids.push_back(json::parse(r.body).at("execution_id"));
    }
    // Long enough for the first attempts to be refused, short of the delay.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (refused >= kRuns) break;
      }
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(node.kill9());
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_GE(refused, kRuns) << "the receiver was never tried before the kill";
    EXPECT_TRUE(accepted.empty());
  }

  // The outbox as the kill left it: one row per callback event in the log.
  {
    auto store = open_store(options.data_dir);
    ASSERT_TRUE(store);
    const std::set<std::string> expected = owed(*store, ids);
    auto rows = store->outbox().due(INT64_MAX / 2, 100000);
    ASSERT_TRUE(rows.ok()) << rows.status().to_string();
    std::set<std::string> present;
    for (const auto& row : rows.value()) {
      EXPECT_TRUE(present.insert(row.id()).second) << "two rows for " << row.id();
      EXPECT_EQ(row.url(), receiver.url("/hook"));
    }
    EXPECT_EQ(present, expected);
    // At least every ExecutionStarted (each run was acknowledged after it).
    EXPECT_GE(expected.size(), static_cast<size_t>(kRuns));
    EXPECT_LT(expected.size(), static_cast<size_t>(4 * kRuns));  // and none had ended
    std::cout << "at the kill: " << expected.size() << " callbacks owed, " << refused
              << " attempts refused\n";
  }

  accepting = true;
  NodeProcess node(options);
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  Api api(node.port(), node.key());
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (const auto& [id, view] : e2e::wait_all_ended(api, ids, 60s)) {
    ASSERT_EQ(view.value("status", ""), "completed") << id << " " << view.dump();
  }
  // Every execution ended: wait until its callbacks are all accepted.
  size_t owed_total = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu);
      // Per execution: started, the completions of a and b (a delay ends
      // with its TimerFired, no callback event), completed.
      owed_total = 4 * static_cast<size_t>(kRuns);
      if (accepted.size() >= owed_total) break;
    }
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(1s);  // anything sent twice would arrive by now
  EXPECT_TRUE(node.stop()) << node.log();

  auto store = open_store(options.data_dir);
  ASSERT_TRUE(store);
  const std::set<std::string> expected = owed(*store, ids);
  EXPECT_EQ(expected.size(), owed_total);
  EXPECT_EQ(*store->outbox().count(), 0u);
  std::lock_guard<std::mutex> lock(mu);
  std::map<std::string, int> want;
  for (const auto& id : expected) want[id] = 1;
  EXPECT_EQ(accepted, want);
  EXPECT_TRUE(bad_signatures.empty()) << bad_signatures.size() << " bad signatures";
}

}  // namespace
}  // namespace yantra
