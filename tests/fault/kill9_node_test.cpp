// kill -9 of a real node. A `yantra serve` child runs 200 executions that
// wait in durable delays and in slow `http` tool calls to a local server
// which counts calls per Idempotency-Key. The node is SIGKILLed mid-flight,
// its log is inspected as it was left, and a new node on the same data must
// finish every execution with the right output without calling the server
// again for any HTTP step whose completion was already recorded.
#include <signal.h>

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "runtime/execution.hpp"
#include "runtime/ids.hpp"
#include "storage/event_log.hpp"
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
constexpr int kRuns = 200;

json flow(const std::string& url) {
  return {
      {"id", "kill9"},
      {"steps",
       {{{"id", "a"},
         {"type", "action"},
         {"config",
          {{"tool_id", "core"},
           {"action", "echo"},
           {"parameters", {{"v", {{"$ref", "input.n"}}}}}}},
         {"on_success", "d"}},
        {{"id", "d"}, {"type", "delay"}, {"config", {{"duration_ms", 150}}}, {"on_success", "b"}},
        {{"id", "b"},
         {"type", "action"},
         {"config",
          {{"tool_id", "http"},
           {"action", "request"},
           {"parameters",
            {{"method", "POST"}, {"url", url}, {"body", {{"v", {{"$ref", "a.v"}}}}}}}}},
         {"retry_config",
          {{"max_attempts", 3}, {"backoff_type", "fixed"}, {"initial_delay_ms", 20}}},
         {"on_success", "c"}},
        {{"id", "c"},
         {"type", "action"},
         {"config",
          {{"tool_id", "core"},
           {"action", "echo"},
           {"parameters", {{"final", {{"$expr", "b.body.v + 1"}}}}}}}}}},
      {"output", {{"final", {{"$ref", "c.final"}}}}}};
}

struct LogSnapshot {
  std::set<std::string> completed_http_keys;
  int finished = 0;
  int in_delay = 0;
  int in_http = 0;
};

LogSnapshot inspect(const std::string& data_dir, const std::vector<std::string>& ids) {
  LogSnapshot snap;
  auto store = storage::Store::open(storage::StoreOptions{data_dir, storage::Durability::kSync});
  EXPECT_TRUE(store.ok()) << store.status().to_string();
  if (!store.ok()) return snap;
  for (const auto& id : ids) {
    auto events = store.value()->events().read(partition_of(id, kPartitions), id);
    EXPECT_TRUE(events.ok());
    auto st = fold(events.value());
    EXPECT_TRUE(st.ok()) << id << ": " << st.status().to_string();
    if (!st.ok()) continue;
    if (is_terminal(st.value().status)) snap.finished++;
    if (st.value().running.count("b") != 0) snap.in_http++;
    if (st.value().display_status() == "waiting") snap.in_delay++;
    auto b = st.value().steps.find("b");
    if (b != st.value().steps.end() && b->second.status == StepStatus::kCompleted) {
      snap.completed_http_keys.insert(id + "/b/" + std::to_string(b->second.attempt));
    }
  }
  return snap;
}

TEST(Kill9, NodeRestartsOnItsDataAndNothingRecordedRunsAgain) {
  testing::HttpTestServer server([](const testing::TestRequest& req) {
    json body = json::parse(req.body, nullptr, false);
    testing::TestResponse r =
        testing::TestResponse::json(200, {{"v", body.is_object() ? body.value("v", 0) * 3 : -1}});
    r.delay = 120ms;
    return r;
  });
  e2e::TempDir dir;
  NodeProcess::Options options;
  options.data_dir = dir.sub("data");
  // Enough tool threads that calls overlap the kill instead of queueing.
  options.env.emplace_back("YANTRA_HTTP_TOOL_CONCURRENCY", "64");

  std::vector<std::string> ids;
  std::map<std::string, int> input_of;
  {
    NodeProcess node(options);
    std::string error;
    ASSERT_TRUE(node.start(&error)) << error;
    Api api(node.port(), node.key());
    auto created = api.request("POST", "/api/v1/flows", flow(server.url("/triple")).dump(),
                               {{"Content-Type", "application/json"}});
    ASSERT_EQ(created.status, 201) << created.body;
    for (int i = 0; i < kRuns; ++i) {
      // Two waves: the first is in HTTP calls when the kill comes, the
      // second still in its delay.
      if (i == kRuns / 2) std::this_thread::sleep_for(150ms);
      auto r = api.request("POST", "/api/v1/flows/kill9/run", json{{"input", {{"n", i}}}}.dump(),
                           {{"Content-Type", "application/json"}});
      ASSERT_EQ(r.status, 202) << r.body;
      const std::string id = json::parse(r.body).at("execution_id");
      ids.push_back(id);
      input_of[id] = i;
    }
    std::this_thread::sleep_for(60ms);
    ASSERT_TRUE(node.kill9());
  }

  const LogSnapshot snap = inspect(options.data_dir, ids);
  std::cout << "at the kill: " << snap.finished << " finished, " << snap.in_delay << " in a delay, "
            << snap.in_http << " in an http call, " << snap.completed_http_keys.size()
            << " http steps recorded\n";
  EXPECT_GT(snap.in_delay, 0);
  EXPECT_GT(snap.in_http, 0);
  EXPECT_LT(snap.finished, kRuns);
  std::map<std::string, size_t> calls_before;
  for (const auto& key : server.idempotency_keys()) calls_before[key]++;

  NodeProcess node(options);
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  Api api(node.port(), node.key());
  for (const auto& [id, view] : e2e::wait_all_ended(api, ids, 60s)) {
    ASSERT_EQ(view.value("status", ""), "completed") << id << " " << view.dump();
    EXPECT_EQ(view.at("output"), json({{"final", input_of[id] * 3 + 1}})) << id;
  }

  std::map<std::string, size_t> calls_total;
  for (const auto& key : server.idempotency_keys()) calls_total[key]++;
  for (const auto& key : snap.completed_http_keys) {
    EXPECT_EQ(calls_total[key], calls_before[key]) << "recorded step called again: " << key;
  }
  for (const auto& [key, n] : calls_total) {
    EXPECT_LE(n, 2u) << key;  // at most the lost call and its one re-dispatch
  }
  EXPECT_TRUE(node.stop()) << node.log();
}

}  // namespace
}  // namespace yantra
