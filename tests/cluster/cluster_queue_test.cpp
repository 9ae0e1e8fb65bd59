// A flow's concurrency limit in a cluster (issue 11; docs/cluster.md
// "Limits and quotas"), on a real three-node cluster (etcd + three
// `yantra serve` processes on loopback, tests/cluster/cluster_harness.hpp):
//
// - every execution of a flow with max_concurrent_executions lives in the
//   flow's home partition (partition_of_flow), whichever node a start
//   reached and however it came (API run with or without an idempotency
//   key, an event), so the home's leader counts them all: at no moment do
//   more than the limit run, cluster-wide;
// - its queue is written through the home partition's replicated log: a
//   kill -9 of the home's leader while runs wait loses none of them; the
//   new leader starts them, still one at a time, and no step runs twice;
// - a queued run cancelled through a node that does not lead the home.
//
// Every wait is bounded; the cluster's logs are printed on a failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/cluster/cluster_harness.hpp"

namespace yantra::cluster_test {
namespace {

using e2e::wait_finished;

void wait_all_writable(TestCluster& cluster, std::chrono::milliseconds timeout) {
  for (size_t i = 0; i < cluster.size(); ++i) {
    std::string why;
    ASSERT_TRUE(cluster.wait_writable(i, timeout, &why)) << cluster.id(i) << ": " << why;
  }
}

// The node index whose id leads partition p, as node `via` sees it (-1: none).
int leader_index(TestCluster& cluster, size_t via, uint32_t p) {
  json d = cluster.describe(via);
  if (!d.contains("partitions")) return -1;
  for (const auto& part : d["partitions"]) {
    if (part.value("id", 0u) != p || !part["leader"].is_string()) continue;
    for (size_t i = 0; i < cluster.size(); ++i) {
      if (cluster.id(i) == part["leader"].get<std::string>()) return static_cast<int>(i);
    }
  }
  return -1;
}

TEST(ClusterQueue, AFlowsLimitHoldsClusterWideWhereverItsStartsArrive) {
  TestCluster cluster({3, 8, 3});
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  wait_all_writable(cluster, 30s);
  Api first = cluster.api(0);
  json def = echo_delay_flow("lim", 400);
  // Started by an event too, whose input is {"name", "data"}: echo a constant.
  def["steps"][0]["config"]["parameters"] = {{"n", 1}};
  def["config"] = {{"max_concurrent_executions", 2}};
  def["trigger"] = {{"type", "event"}, {"config", {{"event_name", "lim.go"}}}};
  e2e::create_flow(first, def);
  wait_flow_everywhere(cluster, "lim");
  const uint32_t home = partition_of_flow("default", "lim", cluster.partitions());

  // Starts through every node: plain, keyed, and by event.
  std::vector<std::string> ids;
  size_t queued = 0;
  std::map<std::string, std::string> keyed;  // key -> execution
  for (int i = 0; i < 9; ++i) {
    Api api = cluster.api(static_cast<size_t>(i % 3));
    e2e::Headers headers;
    if (i % 3 == 1) headers = {{"Idempotency-Key", "lim-key-" + std::to_string(i)}};
    Reply r = api.post("/api/v1/flows/lim/run", json{{"input", {{"n", i}}}}, headers);
    // A link to the leader not up yet (a loaded machine, just after the
    // start): the request was never sent, so sending it again is safe.
    for (int tries = 0;
         tries < 100 && r.status == 503 && r.body.find("is not connected now") != std::string::npos;
         ++tries) {
      std::this_thread::sleep_for(100ms);
      r = api.post("/api/v1/flows/lim/run", json{{"input", {{"n", i}}}}, headers);
    }
    ASSERT_EQ(r.status, 202) << i << ": " << r.describe();
    ids.push_back(r.doc()["execution_id"]);
    if (r.doc().value("status", "") == "queued") ++queued;
    if (!headers.empty()) keyed[headers[0].second] = ids.back();
  }
  for (size_t n = 0; n < 3; ++n) {
    Api api = cluster.api(n);
    Reply r = api.post("/api/v1/events", json{{"name", "lim.go"}, {"data", {{"n", 100}}}});
    ASSERT_EQ(r.status, 202) << r.describe();
    ASSERT_EQ(r.doc()["executions"].size(), 1u) << r.body;
    ASSERT_EQ(r.doc()["errors"].size(), 0u) << r.body;
    ids.push_back(r.doc()["executions"][0]["execution_id"]);
    if (r.doc()["executions"][0].value("status", "") == "queued") ++queued;
  }
  EXPECT_GE(queued, 5u) << "twelve starts of a flow limited to two: most wait";
  // A keyed start retried through another node finds the same execution.
  for (const auto& [key, id] : keyed) {
    Api other = cluster.api(2);
    Reply again = other.post("/api/v1/flows/lim/run", json{{"input", {{"n", -1}}}},
                             {{"Idempotency-Key", key}});
    ASSERT_TRUE(accepted(again)) << again.describe();
    EXPECT_EQ(again.doc().value("execution_id", ""), id) << key;
  }
  // All of them live in the flow's home partition.
  for (const auto& id : ids) {
    EXPECT_EQ(partition_of(id, cluster.partitions()), home) << id;
  }

  std::vector<std::pair<int64_t, int64_t>> intervals;
  for (const auto& id : ids) {
    Api api = cluster.api(1);
    const json done = wait_finished(api, id, 60s);
    ASSERT_EQ(done.value("status", ""), "completed") << id << ": " << done.dump();
    intervals.push_back(run_interval(api, id));
    expect_no_step_twice(api, id);
  }
  EXPECT_LE(max_overlap(intervals), 2u) << "more than the limit ran at one moment";
  EXPECT_EQ(max_overlap(intervals), 2u) << "the limit was used";
}

TEST(ClusterQueue, QueuedRunsSurviveAKillOfTheirPartitionsLeader) {
  TestCluster cluster({3, 8, 3});
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  wait_all_writable(cluster, 30s);
  Api first = cluster.api(0);
  json def = echo_delay_flow("one", 700);
  def["config"] = {{"max_concurrent_executions", 1}};
  e2e::create_flow(first, def);
  wait_flow_everywhere(cluster, "one");
  const uint32_t home = partition_of_flow("default", "one", cluster.partitions());
  const int leader = leader_index(cluster, 0, home);
  ASSERT_GE(leader, 0);
  const size_t other = (static_cast<size_t>(leader) + 1) % cluster.size();
  const size_t third = (static_cast<size_t>(leader) + 2) % cluster.size();

  // Started through a node that does not lead the home.
  Api api = cluster.api(other);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    Reply r = api.post("/api/v1/flows/one/run", json{{"input", {{"n", i}}}});
    ASSERT_EQ(r.status, 202) << r.describe();
    EXPECT_EQ(r.doc().value("status", ""), i == 0 ? "running" : "queued") << r.body;
    ids.push_back(r.doc()["execution_id"]);
  }
  // One more, cancelled while queued through the third node.
  Reply extra = api.post("/api/v1/flows/one/run", json{{"input", {{"n", 99}}}});
  ASSERT_EQ(extra.status, 202) << extra.describe();
  const std::string cancelled = extra.doc()["execution_id"];
  Api third_api = cluster.api(third);
  Reply cancel = third_api.post("/api/v1/executions/" + cancelled + "/cancel", json::object());
  EXPECT_EQ(cancel.status, 200) << cancel.describe();

  // Every replica holds the queue: the leader dies while five runs wait.
  ASSERT_TRUE(cluster.node(static_cast<size_t>(leader)).kill9());
  std::vector<std::pair<int64_t, int64_t>> intervals;
  for (const auto& id : ids) {
    const json done = wait_finished(api, id, 90s);
    ASSERT_EQ(done.value("status", ""), "completed") << id << ": " << done.dump();
    intervals.push_back(run_interval(api, id));
    expect_no_step_twice(api, id);
  }
  EXPECT_EQ(max_overlap(intervals), 1u) << "two runs of a flow limited to one overlapped";
  const json c = api.get("/api/v1/executions/" + cancelled).doc();
  EXPECT_EQ(c.value("status", ""), "cancelled") << c.dump();
  // The killed node comes back and holds the same histories.
  ASSERT_TRUE(cluster.start_node(static_cast<size_t>(leader), &error)) << error;
  std::string why;
  ASSERT_TRUE(cluster.wait_writable(static_cast<size_t>(leader), 30s, &why)) << why;
}

}  // namespace
}  // namespace yantra::cluster_test
