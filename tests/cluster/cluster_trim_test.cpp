// Trimming and snapshots in a real cluster (etcd + `yantra serve` processes
// on loopback, tests/cluster/cluster_harness.hpp; docs/cluster.md "A new
// replica catches up" and "Trimming"): executions run, a leadership move
// seals a segment, the leader trims it once every replica applied it
// durably, and a node that joins afterwards as a replica of that partition
// cannot replay the log from LSN 1: it installs a snapshot, converges on the
// leader's applied position, and the executions read on it equal the
// leader's; a node that never held the partition, made its leader, installs
// the snapshot before it leads.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/ids.hpp"
#include "tests/cluster/cluster_harness.hpp"

namespace yantra::cluster_test {
namespace {

using Clock = std::chrono::steady_clock;

template <typename Pred>
bool eventually(std::chrono::milliseconds timeout, Pred pred) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return pred();
}

// The value of one series (name and labels exactly) in GET /metrics; 0 when absent.
double metric(TestCluster& cluster, size_t i, const std::string& series) {
  Reply r = cluster.api(i).get("/metrics");
  if (r.status != 200) return 0;
  std::istringstream in(r.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return 0;
}

size_t index_of(TestCluster& cluster, const std::string& id) {
  for (size_t i = 0; i < cluster.size(); ++i) {
    if (cluster.id(i) == id) return i;
  }
  return SIZE_MAX;
}

TEST(ClusterTrim, ATrimmedPartitionReachesANewReplicaAsASnapshot) {
  TestCluster::Options o;
  o.nodes = 3;
  o.partitions = 2;
  o.replication = 3;
  o.env = {{"YANTRA_LOG_TRIM_INTERVAL_MS", "300"}};
  TestCluster cluster(o);
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  ASSERT_TRUE(cluster.wait_writable(0, 30s, &error)) << error;
  ASSERT_TRUE(eventually(20s, [&] {
    json d = cluster.describe(0);
    if (!d.is_object()) return false;
    for (const auto& p : d["partitions"]) {
      if (!p["placement"].is_object() || p["placement"]["replicas"].size() != 3 ||
          !p["leader"].is_string()) {
        return false;
      }
    }
    return true;
  })) << cluster.describe(0).dump();
  Api api = cluster.api(0);
  e2e::create_flow(api, echo_delay_flow("quick", 20));
  std::vector<std::string> ids;
  auto load = [&](int n) {
    for (int k = 0; k < n; ++k) {
      ids.push_back(run_retrying(api, "quick", {{"n", static_cast<int>(ids.size())}}));
    }
  };
  load(20);

  // Move partition 0's leadership: the old leader's segment is sealed.
  json d = cluster.describe(0);
  const std::string old_leader = d["partitions"][0]["leader"];
  std::string target;
  for (size_t i = 0; i < cluster.size(); ++i) {
    if (cluster.id(i) != old_leader) target = cluster.id(i);
  }
  Reply moved = cluster.operator_api(0).post("/admin/v1/partitions/0/leader", {{"node", target}});
  ASSERT_EQ(moved.status, 200) << moved.describe();

  // Under load, the sealed segment is trimmed (by whichever node leads).
  const std::string trimmed = "yantra_cluster_trimmed_segments_total{partition=\"0\"}";
  ASSERT_TRUE(eventually(60s, [&] {
    load(4);
    double sum = 0;
    for (size_t i = 0; i < cluster.size(); ++i) sum += metric(cluster, i, trimmed);
    return sum >= 1;
  })) << cluster.describe(0).dump();

  // A new node becomes a replica of partition 0 in place of a follower.
  ASSERT_TRUE(cluster.add_node(&error)) << error;
  const size_t n4 = cluster.size() - 1;
  const std::string id4 = cluster.id(n4);
  // The partition may be between leaders for a moment (the move above).
  ASSERT_TRUE(eventually(20s, [&] {
    d = cluster.describe(0);
    return d.is_object() && d["partitions"][0]["leader"].is_string();
  })) << d.dump();
  const std::string leader = d["partitions"][0]["leader"];
  std::vector<std::string> want{leader};
  for (const auto& n : d["partitions"][0]["placement"]["replicas"]) {
    if (n != leader && want.size() < 2) want.push_back(n);
  }
  want.push_back(id4);
  Reply set = cluster.operator_api(0).post("/admin/v1/partitions/0/replicas", {{"replicas", want}});
  ASSERT_EQ(set.status, 200) << set.describe();

  const std::string installed = "yantra_cluster_snapshot_transfers_total{partition=\"0\"}";
  ASSERT_TRUE(eventually(60s, [&] {
    load(2);
    return metric(cluster, n4, installed) >= 1;
  })) << cluster.describe(n4).dump();
  EXPECT_GT(metric(cluster, n4, "yantra_cluster_snapshot_transfer_bytes_total{partition=\"0\"}"),
            0);

  // Every execution ends; the new replica converges on the leader.
  auto views = e2e::wait_all_ended(api, ids, 60s);
  for (const auto& id : ids) EXPECT_EQ(views[id].value("status", ""), "completed") << id;
  std::string why;
  ASSERT_TRUE(eventually(30s, [&] {
    json at = cluster.describe(n4);
    const std::string now_leader = at["partitions"][0].value("leader", "");
    const size_t li = index_of(cluster, now_leader);
    if (li == SIZE_MAX) return why = "no leader", false;
    const json dl = cluster.describe(li);
    const json& lp = dl["partitions"][0];
    const uint64_t want_lsn = lp.value("applied_lsn", uint64_t{0});
    const uint64_t got = at["partitions"][0].value("applied_lsn", uint64_t{0});
    why = id4 + " applied " + std::to_string(got) + ", " + now_leader + " " +
          std::to_string(want_lsn);
    return got == want_lsn && got > 0;
  })) << why;

  // The executions as the new replica's copy lists them equal the leader's.
  json d4 = cluster.describe(n4);
  const size_t li = index_of(cluster, d4["partitions"][0].value("leader", ""));
  ASSERT_NE(li, SIZE_MAX);
  Reply on_new = cluster.api(n4).get("/api/v1/executions?limit=1000");
  Reply on_leader = cluster.api(li).get("/api/v1/executions?limit=1000");
  ASSERT_EQ(on_new.status, 200) << on_new.describe();
  ASSERT_EQ(on_leader.status, 200) << on_leader.describe();
  // Partition 0's: the new replica answers them from its own copy (the
  // others it may not hold are read from their leaders).
  auto of_p0 = [](const json& list) {
    std::map<std::string, json> out;
    for (const auto& e : list) {
      const std::string id = e.value("execution_id", "");
      if (partition_of(id, 2) == 0) out[id] = e;
    }
    return out;
  };
  const auto new_p0 = of_p0(on_new.doc()["executions"]);
  EXPECT_EQ(new_p0, of_p0(on_leader.doc()["executions"]));
  size_t want_p0 = 0;
  for (const auto& id : ids) want_p0 += partition_of(id, 2) == 0 ? 1 : 0;
  EXPECT_EQ(new_p0.size(), want_p0);
  EXPECT_GT(want_p0, 0u);

  // A node that never held partition 0 is made its leader: it installs the
  // snapshot before it leads (the trimmed batches are gone), then serves.
  ASSERT_TRUE(cluster.add_node(&error)) << error;
  const size_t n5 = cluster.size() - 1;
  const std::string id5 = cluster.id(n5);
  Reply lead = cluster.operator_api(0).post("/admin/v1/partitions/0/leader", {{"node", id5}});
  ASSERT_EQ(lead.status, 200) << lead.describe();
  ASSERT_EQ(lead.doc().value("leader", ""), id5) << lead.describe();
  // (The move answers once the leader key moved; the recovery follows.)
  EXPECT_TRUE(eventually(30s, [&] { return metric(cluster, n5, installed) >= 1; }));
  const size_t before = ids.size();
  load(10);
  auto after = e2e::wait_all_ended(api, ids, 60s);
  for (size_t k = before; k < ids.size(); ++k) {
    EXPECT_EQ(after[ids[k]].value("status", ""), "completed") << ids[k];
  }
}

}  // namespace
}  // namespace yantra::cluster_test
