// The list of executions is cluster-wide (cli/cluster_list.hpp) on a real
// cluster with more nodes than replicas: four `yantra serve` processes,
// replication 3, 8 partitions, so each node holds 6 partitions and lacks 2
// (tests/cluster/cluster_harness.hpp).
//
// - 40 executions started through all four nodes (two flows: one completes
//   at once, one waits on a 10-minute delay); then, through every node, the
//   list followed page by page with small pages (limit 7, cursors) is
//   exactly the set started — no duplicate, newest first, the same sequence
//   on every node —, and so are the lists filtered by flow_id and by
//   status=completed. A node answering from its own store only would miss
//   the executions of the partitions it lacks (checked: with the fan-out
//   disabled this test fails there).
// - With the leader of a partition the answering node lacks SIGSTOPped, the
//   list is still complete (that partition is asked of another live
//   replica), within the fan-out's deadline.
// - With every node holding that partition SIGSTOPped, the list answers 503
//   `unavailable` with Retry-After, naming a partition — never a silently
//   partial list; once they are resumed, it is complete again.
//
// Every wait is bounded; the cluster's logs are printed on a failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/cluster/cluster_harness.hpp"

namespace yantra::cluster_test {
namespace {

using Clock = std::chrono::steady_clock;

// Follows GET /api/v1/executions?limit=7[&query] page by page through `api`:
// the ids in the order served. False with `why` on an answer other than 200.
bool list_all(Api& api, const std::string& query, std::vector<std::string>* ids, std::string* why) {
  ids->clear();
  std::string cursor;
  for (int page = 0; page < 200; ++page) {
    Reply r = api.get("/api/v1/executions?limit=7" + (query.empty() ? "" : "&" + query) +
                      (cursor.empty() ? "" : "&cursor=" + cursor));
    if (r.status != 200) {
      *why = "page " + std::to_string(page) + ": " + r.describe();
      return false;
    }
    json doc = r.doc();
    if (doc["executions"].size() > 7) {
      *why = "a page of " + std::to_string(doc["executions"].size()) + " items";
      return false;
    }
    for (const auto& e : doc["executions"]) ids->push_back(e["execution_id"].get<std::string>());
    if (doc["next_cursor"].is_null()) return true;
    cursor = doc["next_cursor"].get<std::string>();
  }
  *why = "more than 200 pages";
  return false;
}

// `ids` newest first (ULIDs sort by creation) with no duplicate, and as a
// set exactly `expected`.
std::string check(const std::vector<std::string>& ids, const std::set<std::string>& expected) {
  for (size_t i = 1; i < ids.size(); ++i) {
    if (!(ids[i - 1] > ids[i])) return "not strictly newest first at " + std::to_string(i);
  }
  const std::set<std::string> got(ids.begin(), ids.end());
  if (got == expected) return "";
  std::string missing;
  std::string extra;
  size_t missed = 0;
  for (const auto& id : expected) {
    if (got.count(id) == 0 && ++missed <= 5) missing += " " + id;
  }
  for (const auto& id : got) {
    if (expected.count(id) == 0) extra += " " + id;
  }
  return std::to_string(ids.size()) + " listed, " + std::to_string(missed) + " of " +
         std::to_string(expected.size()) + " missing (" + missing + " ), extra: (" + extra + " )";
}

// Node i's list with `query`, polled until it is `expected` (a follower's
// copy may trail its leader by the batches in flight), at most `timeout`.
std::string wait_listed(TestCluster& cluster, size_t i, const std::string& query,
                        const std::set<std::string>& expected, std::vector<std::string>* ids,
                        std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string why;
  for (;;) {
    Api api = cluster.api(i);
    if (list_all(api, query, ids, &why)) {
      why = check(*ids, expected);
      if (why.empty()) return "";
    }
    if (Clock::now() > deadline) {
      for (const auto& id : *ids) {  // what the extra ones are
        if (expected.count(id) == 0) {
          why += "\n  " + id + ": " + api.get("/api/v1/executions/" + id).body.substr(0, 300);
        }
      }
      return cluster.id(i) + " ?" + query + ": " + why;
    }
    std::this_thread::sleep_for(100ms);
  }
}

// Until node 0 sees the placement of four nodes settled: every partition
// placed on 3 nodes and led by its preferred node, every node holding some
// but not all, at most `timeout`. Returns the placement (partition ->
// replicas), empty on timeout.
std::vector<std::set<std::string>> wait_spread(TestCluster& cluster,
                                               std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    json d = cluster.describe(0);
    std::vector<std::set<std::string>> placement;
    bool settled = d.is_object() && d.contains("partitions") && d["nodes"].size() == 4;
    for (const auto& p : settled ? d["partitions"] : json::array()) {
      // Placed on 3 nodes, and led by the preferred one (the hand-overs
      // are done).
      if (!p["placement"].is_object() || p["placement"]["replicas"].size() != 3 ||
          p["leader"] != p["placement"]["preferred"]) {
        settled = false;
      }
      if (!settled) break;
      std::set<std::string> replicas;
      for (const auto& r : p["placement"]["replicas"]) replicas.insert(r.get<std::string>());
      placement.push_back(std::move(replicas));
    }
    int total = 0;
    for (const auto& n : settled ? d["nodes"] : json::array()) {
      const int held = n.value("partitions_replicated", 0);
      if (held < 1 || held >= static_cast<int>(cluster.partitions())) settled = false;
      total += held;
    }
    if (total != 3 * static_cast<int>(cluster.partitions())) settled = false;
    if (settled && placement.size() == cluster.partitions()) return placement;
    std::this_thread::sleep_for(100ms);
  }
  return {};
}

TEST(ClusterList, EveryNodeListsTheWholeClusterWithMoreNodesThanReplicas) {
  TestCluster cluster({4, 8, 3});
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  const auto placement = wait_spread(cluster, 60s);
  ASSERT_EQ(placement.size(), cluster.partitions()) << "the placement never spread over 4 nodes";
  for (size_t i = 0; i < cluster.size(); ++i) {
    ASSERT_TRUE(cluster.wait_writable(i, 30s, &error)) << cluster.id(i) << ": " << error;
  }

  Api first = cluster.api(0);
  e2e::create_flow(first, echo_delay_flow("quick", 10));
  e2e::create_flow(first, echo_delay_flow("slow", 600000));
  std::set<std::string> all;
  std::set<std::string> quick;
  std::set<std::string> slow;
  std::vector<std::string> quick_ids;
  uint64_t counter = 0;
  for (int n = 0; n < 40; ++n) {
    Api api = cluster.api(static_cast<size_t>(n) % cluster.size());
    const bool is_slow = n % 4 == 3;
    // Keyed: a start retried after a 503 (a leadership moving while it
    // was in flight may have committed it) is the same execution; and the
    // key puts it in partition n mod 8, so every partition holds 5.
    const std::string key =
        cluster.key_in({static_cast<uint32_t>(n) % cluster.partitions()}, "list", &counter);
    std::string id =
        run_retrying(api, is_slow ? "slow" : "quick", {{"n", n}}, {{"Idempotency-Key", key}});
    ASSERT_FALSE(id.empty());
    all.insert(id);
    (is_slow ? slow : quick).insert(id);
    if (!is_slow) quick_ids.push_back(id);
  }
  auto ended = e2e::wait_all_ended(first, quick_ids, 60s);
  for (const auto& id : quick_ids) {
    ASSERT_EQ(ended[id].value("status", ""), "completed") << id << " " << ended[id].dump();
  }
  // The executions sit in every partition, so each node lacks some.
  std::map<uint32_t, int> used;
  for (const auto& id : all) ++used[partition_of(id, cluster.partitions())];
  ASSERT_EQ(used.size(), cluster.partitions());

  std::vector<std::string> reference;
  for (size_t i = 0; i < cluster.size(); ++i) {
    std::vector<std::string> ids;
    ASSERT_EQ(wait_listed(cluster, i, "", all, &ids, 20s), "");
    if (i == 0) reference = ids;
    EXPECT_EQ(ids, reference) << cluster.id(i) << " lists another sequence than " << cluster.id(0);
    EXPECT_EQ(wait_listed(cluster, i, "flow_id=slow", slow, &ids, 10s), "");
    EXPECT_EQ(wait_listed(cluster, i, "flow_id=quick", quick, &ids, 10s), "");
    EXPECT_EQ(wait_listed(cluster, i, "status=completed", quick, &ids, 10s), "");
    EXPECT_EQ(wait_listed(cluster, i, "flow_id=slow&status=completed", {}, &ids, 10s), "");
  }
  {  // For the record: a healthy fan-out's cost, page by page.
    Api api = cluster.api(0);
    std::vector<std::string> ids;
    std::string why;
    const auto t0 = Clock::now();
    for (int round = 0; round < 10; ++round) ASSERT_TRUE(list_all(api, "", &ids, &why)) << why;
    std::cerr << "a page of 7 through " << cluster.id(0) << ", healthy: "
              << std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count() /
                     60
              << " us on average\n";
  }

  // A partition n1 lacks (its three replicas are the others), and its leader.
  uint32_t lacked = cluster.partitions();
  for (uint32_t p = 0; p < cluster.partitions() && lacked == cluster.partitions(); ++p) {
    if (placement[p].count(cluster.id(0)) == 0) lacked = p;
  }
  ASSERT_LT(lacked, cluster.partitions());
  json described = cluster.describe(0);
  const json leader = described["partitions"][lacked]["leader"];
  ASSERT_TRUE(leader.is_string()) << described.dump();
  size_t hung = 0;
  for (size_t i = 1; i < cluster.size(); ++i) {
    if (cluster.id(i) == leader.get<std::string>()) hung = i;
  }
  ASSERT_NE(hung, 0u) << "partition " << lacked << " led by " << leader;

  // Its leader hung: the list goes around it, to another replica.
  ASSERT_TRUE(cluster.pause(hung));
  {
    const auto t0 = Clock::now();
    Api api = cluster.api(0);
    std::vector<std::string> ids;
    std::string why;
    ASSERT_TRUE(list_all(api, "", &ids, &why)) << why;
    EXPECT_EQ(check(ids, all), "") << "with " << cluster.id(hung) << " hung";
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    std::cerr << "list of " << ids.size() << " in pages of 7 through " << cluster.id(0) << " with "
              << cluster.id(hung) << " hung: " << took.count() << " ms\n";
    EXPECT_LT(took, 15s);
    EXPECT_EQ(wait_listed(cluster, 0, "status=completed", quick, &ids, 10s), "");
  }

  // Every holder of that partition hung: 503 with Retry-After, promptly.
  for (size_t i = 1; i < cluster.size(); ++i) {
    if (i != hung) {
      ASSERT_TRUE(cluster.pause(i));
    }
  }
  {
    const auto t0 = Clock::now();
    Api api = cluster.api(0);
    Reply r = api.get("/api/v1/executions?limit=7");
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    std::cerr << "list through " << cluster.id(0) << " with the 3 others hung: " << r.status
              << " after " << took.count() << " ms\n";
    EXPECT_EQ(r.status, 503) << r.describe();
    EXPECT_EQ(r.code(), "unavailable") << r.describe();
    EXPECT_FALSE(r.header("retry-after").empty()) << r.describe();
    EXPECT_NE(r.body.find("partition"), std::string::npos) << r.describe();
    EXPECT_LT(took, 8s);
  }
  for (size_t i = 1; i < cluster.size(); ++i) ASSERT_TRUE(cluster.resume(i));

  // Back: complete again once the nodes are.
  std::vector<std::string> ids;
  EXPECT_EQ(wait_listed(cluster, 0, "", all, &ids, 30s), "");
}

}  // namespace
}  // namespace yantra::cluster_test
