// The controller in a real cluster (etcd + `yantra serve` processes on
// loopback, tests/cluster/cluster_harness.hpp; docs/cluster.md "Controller
// and placement"): a node that joins receives leaderships and replicas; a
// drain under load leaves the node with no leadership and in no open
// segment, with zero failed executions and no step run twice, and undrain
// gives it leaderships back; move-leader and set-replicas over HTTP with
// their refusals; the controller killed (another takes over, executions go
// on) and left down past the (short) grace period: its replicas are
// replaced and the remaining replicas converge on the same log.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/cluster/cluster_harness.hpp"

namespace yantra::cluster_test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kPartitions = 8;

TestCluster::Options options(int nodes) {
  TestCluster::Options o;
  o.nodes = nodes;
  o.partitions = kPartitions;
  o.replication = 3;
  // A node down 3 s past its lease is replaced (default 30 s).
  o.env = {{"YANTRA_NODE_DOWN_GRACE_MS", "3000"}};
  return o;
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Polls `pred` every 50 ms until true or `timeout`.
template <typename Pred>
bool eventually(std::chrono::milliseconds timeout, Pred pred) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

// The open segment's replicas of every partition, as its leader reports
// them (GET /admin/v1/cluster shows "replicas" where the answering node
// leads the partition), asked of every node in `via`.
std::map<uint32_t, std::set<std::string>> open_segments(TestCluster& cluster,
                                                        const std::vector<size_t>& via) {
  std::map<uint32_t, std::set<std::string>> out;
  for (size_t i : via) {
    json d = cluster.describe(i);
    if (!d.is_object()) continue;
    for (const auto& p : d["partitions"]) {
      if (!p.contains("replicas") || p["leader"] != d["node"]) continue;
      auto reps = p["replicas"].get<std::vector<std::string>>();
      out[p["id"].get<uint32_t>()] = std::set<std::string>(reps.begin(), reps.end());
    }
  }
  return out;
}

json node_of(const json& described, const std::string& id) {
  if (!described.is_object()) return json();
  for (const auto& n : described["nodes"]) {
    if (n.value("id", "") == id) return n;
  }
  return json();
}

size_t index_of(TestCluster& cluster, const std::string& id) {
  for (size_t i = 0; i < cluster.size(); ++i) {
    if (cluster.id(i) == id) return i;
  }
  return SIZE_MAX;
}

// Starts `n` executions of `flow` through the given nodes in turn.
std::vector<std::string> start_load(TestCluster& cluster, const std::vector<size_t>& via,
                                    const std::string& flow, int n, int first = 0) {
  std::vector<std::string> ids;
  for (int k = 0; k < n; ++k) {
    Api api = cluster.api(via[static_cast<size_t>(k) % via.size()]);
    ids.push_back(run_retrying(api, flow, {{"n", first + k}}));
  }
  return ids;
}

void expect_all_completed(Api& reader, const std::vector<std::string>& ids,
                          std::chrono::milliseconds timeout) {
  auto views = e2e::wait_all_ended(reader, ids, timeout);
  int failed = 0;
  for (const auto& id : ids) {
    const json& v = views[id];
    const bool ok = v.is_object() && v.value("status", "") == "completed";
    if (!ok) ++failed;
    EXPECT_TRUE(ok) << id << " " << v.dump();
  }
  EXPECT_EQ(failed, 0) << "failed or unfinished executions of " << ids.size();
}

// (b) a node joins and receives leaderships and replicas; (a) drained
// under load it leads nothing and is in no open segment, no execution
// fails, none runs a step twice; undrained, it leads again.
TEST(ClusterController, AJoiningNodeIsUsedAndADrainUnderLoadFailsNothing) {
  TestCluster cluster(options(3));
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  ASSERT_TRUE(cluster.wait_writable(0, 30s, &error)) << error;
  // A controller exists and placed every partition on three replicas.
  ASSERT_TRUE(eventually(20s, [&] {
    json d = cluster.describe(0);
    if (!d.is_object() || !d["controller"].is_string()) return false;
    for (const auto& p : d["partitions"]) {
      if (!p["placement"].is_object() || p["placement"]["replicas"].size() != 3) return false;
    }
    return true;
  })) << cluster.describe(0).dump();

  // (b) n4 joins.
  const auto joined_at = Clock::now();
  ASSERT_TRUE(cluster.add_node(&error)) << error;
  const size_t n4 = 3;
  const std::string id4 = cluster.id(n4);
  const std::vector<size_t> all{0, 1, 2, 3};
  ASSERT_TRUE(eventually(30s, [&] {
    json me = node_of(cluster.describe(0), id4);
    if (!me.is_object() || me.value("partitions_led", 0) < 1 ||
        me.value("partitions_replicated", 0) < 5) {
      return false;
    }
    size_t in_segments = 0;
    for (const auto& [p, reps] : open_segments(cluster, all)) in_segments += reps.count(id4);
    return in_segments >= 5;
  })) << cluster.describe(0).dump();
  std::cout << "[ measure ] " << id4
            << " joined to leading and replicating: " << ms_since(joined_at) << " ms" << std::endl;
  ASSERT_TRUE(cluster.wait_writable(0, 30s, &error)) << error;

  // (a) Load: executions sleeping in delays, started through every node.
  Api a = cluster.api(0);
  e2e::create_flow(a, echo_delay_flow("slow", 1500));
  std::vector<std::string> ids = start_load(cluster, all, "slow", 120);
  ASSERT_EQ(ids.size(), 120u);
  const auto drained_at = Clock::now();
  Reply drain = cluster.operator_api(1).post("/admin/v1/nodes/" + id4 + "/drain", json::object());
  ASSERT_EQ(drain.status, 202) << drain.describe();
  EXPECT_EQ(drain.doc().value("state", ""), "draining") << drain.describe();
  // More load while it drains.
  auto more = start_load(cluster, {0, 1, 2}, "slow", 30, 1000);
  ids.insert(ids.end(), more.begin(), more.end());
  ASSERT_TRUE(eventually(40s, [&] {
    json me = node_of(cluster.describe(2), id4);
    if (!me.is_object() || !me.value("drained", false)) return false;
    auto segs = open_segments(cluster, all);
    if (segs.size() != kPartitions) return false;
    for (const auto& [p, reps] : segs) {
      if (reps.count(id4) != 0) return false;
    }
    return cluster.led_by(0, id4).empty();
  })) << cluster.describe(2).dump();
  std::cout << "[ measure ] drain of " << id4 << " under load: " << ms_since(drained_at) << " ms"
            << std::endl;
  EXPECT_EQ(node_of(cluster.describe(0), id4).value("state", ""), "draining");
  expect_all_completed(a, ids, 60s);
  for (size_t k = 0; k < ids.size(); k += 3) expect_no_step_twice(a, ids[k]);

  // A drained node may be removed only once drained; undrain reverses.
  Reply undrain =
      cluster.operator_api(0).post("/admin/v1/nodes/" + id4 + "/undrain", json::object());
  ASSERT_EQ(undrain.status, 202) << undrain.describe();
  ASSERT_TRUE(eventually(30s, [&] { return !cluster.led_by(0, id4).empty(); }))
      << cluster.describe(0).dump();
  EXPECT_EQ(node_of(cluster.describe(0), id4).value("state", ""), "alive");
}

// (d) move-leader and set-replicas over HTTP with their refusals; the other
// operator routes' refusals; a single node answers 404.
TEST(ClusterController, OperatorsMoveLeadersAndSetReplicas) {
  TestCluster cluster(options(4));
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  ASSERT_TRUE(cluster.wait_writable(0, 30s, &error)) << error;
  Api op = cluster.operator_api(0);
  ASSERT_TRUE(eventually(20s, [&] {
    json d = cluster.describe(0);
    return d.is_object() && d["partitions"][0]["placement"].is_object() &&
           d["partitions"][0]["leader"].is_string();
  }));

  // Move partition 0's leadership to a node that does not lead it.
  json d = cluster.describe(0);
  const std::string leader = d["partitions"][0]["leader"];
  std::string target;
  for (size_t i = 0; i < cluster.size(); ++i) {
    if (cluster.id(i) != leader) target = cluster.id(i);
  }
  Reply moved = op.post("/admin/v1/partitions/0/leader", {{"node", target}});
  ASSERT_EQ(moved.status, 200) << moved.describe();
  EXPECT_EQ(moved.doc().value("leader", ""), target) << moved.describe();
  EXPECT_EQ(moved.doc().value("preferred", ""), target);
  EXPECT_TRUE(moved.doc().value("moved", false));
  ASSERT_TRUE(cluster.wait_writable(1, 30s, &error)) << error;
  // It stays there (the controller keeps a valid choice): not a wait for a
  // condition but a window (three controller ticks) in which nothing may
  // undo the move.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(cluster.describe(1)["partitions"][0].value("leader", ""), target);

  // Refusals of a move.
  EXPECT_EQ(op.post("/admin/v1/partitions/0/leader", {{"node", "nobody"}}).status, 404);
  EXPECT_EQ(op.post("/admin/v1/partitions/99/leader", {{"node", target}}).status, 404);
  Reply nan = op.post("/admin/v1/partitions/zero/leader", {{"node", target}});
  EXPECT_EQ(nan.status, 400) << nan.describe();
  EXPECT_NE(nan.body.find("partition"), std::string::npos) << nan.describe();
  EXPECT_EQ(op.post("/admin/v1/partitions/0/leader", json::object()).status, 400);
  EXPECT_EQ(op.post("/admin/v1/partitions/0/leader", {{"node", target}, {"x", 1}}).status, 400);
  EXPECT_EQ(op.post("/admin/v1/partitions/0/leader?x=1", {{"node", target}}).status, 400);
  EXPECT_EQ(cluster.api(0).post("/admin/v1/partitions/0/leader", {{"node", target}}).status, 403);

  // Set partition 1's replicas to three named nodes; its leader reopens
  // its segment on them.
  const std::vector<std::string> want{cluster.id(0), cluster.id(1), cluster.id(3)};
  Reply set = op.post("/admin/v1/partitions/1/replicas", {{"replicas", want}});
  ASSERT_EQ(set.status, 200) << set.describe();
  EXPECT_EQ(set.doc()["replicas"], json(want)) << set.describe();
  const std::vector<size_t> all{0, 1, 2, 3};
  ASSERT_TRUE(eventually(30s, [&] {
    auto segs = open_segments(cluster, all);
    return segs.count(1) != 0 && segs[1] == std::set<std::string>(want.begin(), want.end());
  })) << cluster.describe(0).dump();
  // Refusals of a replica set, each naming what is wrong.
  auto refused = [&](const json& body, const std::string& says) {
    Reply r = op.post("/admin/v1/partitions/1/replicas", body);
    EXPECT_EQ(r.status, 400) << body.dump() << " " << r.describe();
    EXPECT_NE(r.body.find(says), std::string::npos) << body.dump() << " " << r.describe();
  };
  refused({{"replicas", {cluster.id(0), cluster.id(0), cluster.id(1)}}}, "twice");
  refused({{"replicas", {cluster.id(0), "ghost"}}}, "unknown node 'ghost'");
  refused({{"replicas", {cluster.id(0)}}}, "write quorum");
  refused({{"replicas", {cluster.id(0), cluster.id(1), cluster.id(2), cluster.id(3)}}},
          "replication factor");
  refused({{"replicas", "n1"}}, "replicas");
  refused({{"replicas", {1, 2}}}, "replicas");
  EXPECT_EQ(op.post("/admin/v1/partitions/8/replicas", {{"replicas", want}}).status, 404);

  // Nodes: unknown 404; removing a live node that is not drained: 409
  // naming why.
  EXPECT_EQ(op.post("/admin/v1/nodes/ghost/drain", json::object()).status, 404);
  EXPECT_EQ(op.post("/admin/v1/nodes/ghost/undrain", json::object()).status, 404);
  EXPECT_EQ(op.del("/admin/v1/nodes/ghost").status, 404);
  Reply busy = op.del("/admin/v1/nodes/" + cluster.id(2));
  EXPECT_EQ(busy.status, 409) << busy.describe();
  EXPECT_NE(busy.body.find("drain it first"), std::string::npos) << busy.describe();
  EXPECT_EQ(op.post("/admin/v1/rebalance?now=1", json::object()).status, 400);
  Reply rebalance = op.post("/admin/v1/rebalance", json::object());
  EXPECT_EQ(rebalance.status, 202) << rebalance.describe();
  // The CLI does the same.
  auto cli = e2e::run_process({YANTRA_BIN, "cluster", "move-leader", "--url", cluster.node(2).url(),
                               "--key", kOperatorKey, "2", cluster.id(2)});
  EXPECT_EQ(cli.exit_code, 0) << cli.out << cli.err;
  EXPECT_NE(cli.out.find("\"leader\""), std::string::npos) << cli.out;
  auto cli_bad =
      e2e::run_process({YANTRA_BIN, "cluster", "set-replicas", "--url", cluster.node(2).url(),
                        "--key", kOperatorKey, "2", "ghost", cluster.id(0)});
  EXPECT_EQ(cli_bad.exit_code, 1) << cli_bad.out << cli_bad.err;
  EXPECT_NE(cli_bad.err.find("unknown node"), std::string::npos) << cli_bad.err;

  // A single node has no cluster: 404 on every operator route of it.
  e2e::NodeProcess::Options so;
  so.env = {{"YANTRA_OPERATOR_KEY", kOperatorKey}};
  NodeProcess single(so);
  ASSERT_TRUE(single.start(&error, 30s)) << error;
  Api sop(single.port(), kOperatorKey);
  EXPECT_EQ(sop.post("/admin/v1/rebalance", json::object()).status, 404);
  EXPECT_EQ(sop.post("/admin/v1/nodes/n1/drain", json::object()).status, 404);
  EXPECT_EQ(sop.post("/admin/v1/partitions/0/leader", {{"node", "n1"}}).status, 404);
}

// (e) the controller killed: another node becomes controller and the data
// path goes on; (c) left down past the grace period, its replicas are
// replaced in the placement and the open segments, executions keep
// completing, and each partition's remaining replicas converge on the same
// log (every replica's applied position reaches its leader's commit).
TEST(ClusterController, LosingTheControllerStopsNothingAndADownNodeIsReplaced) {
  TestCluster cluster(options(4));
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  ASSERT_TRUE(cluster.wait_writable(0, 30s, &error)) << error;
  std::string controller;
  ASSERT_TRUE(eventually(20s, [&] {
    json d = cluster.describe(0);
    if (!d.is_object() || !d["controller"].is_string()) return false;
    controller = d["controller"];
    return true;
  }));
  const size_t victim = index_of(cluster, controller);
  ASSERT_NE(victim, SIZE_MAX) << controller;
  std::vector<size_t> rest;
  for (size_t i = 0; i < cluster.size(); ++i) {
    if (i != victim) rest.push_back(i);
  }
  Api reader = cluster.api(rest[0]);
  e2e::create_flow(reader, echo_delay_flow("steady", 800));
  std::vector<std::string> ids = start_load(cluster, rest, "steady", 60);
  const auto killed_at = Clock::now();
  ASSERT_TRUE(cluster.node(victim).kill9());
  // Another controller within the lease TTL and a tick or two.
  std::string next;
  ASSERT_TRUE(eventually(20s, [&] {
    json d = cluster.describe(rest[0]);
    if (!d.is_object() || !d["controller"].is_string() || d["controller"] == controller) {
      return false;
    }
    next = d["controller"];
    return true;
  })) << cluster.describe(rest[0]).dump();
  std::cout << "[ measure ] controller " << controller << " killed to " << next
            << " controlling: " << ms_since(killed_at) << " ms" << std::endl;
  // The data path goes on meanwhile.
  auto during = start_load(cluster, rest, "steady", 40, 100);
  ids.insert(ids.end(), during.begin(), during.end());

  // Past the grace: no placement and no open segment names the dead node.
  ASSERT_TRUE(eventually(40s, [&] {
    json d = cluster.describe(rest[1]);
    if (!d.is_object()) return false;
    for (const auto& p : d["partitions"]) {
      if (!p["placement"].is_object()) return false;
      for (const auto& n : p["placement"]["replicas"]) {
        if (n == controller) return false;
      }
      if (p["placement"]["replicas"].size() != 3) return false;
    }
    auto segs = open_segments(cluster, rest);
    if (segs.size() != kPartitions) return false;
    for (const auto& [p, reps] : segs) {
      if (reps.count(controller) != 0 || reps.size() != 3) return false;
    }
    return true;
  })) << cluster.describe(rest[1]).dump();
  std::cout << "[ measure ] " << controller
            << " killed to replaced in every replica set: " << ms_since(killed_at) << " ms"
            << std::endl;
  // Each node counts the grace from when it saw the node go (within the
  // lease TTL of the others): poll rather than read once.
  EXPECT_TRUE(eventually(5s, [&] {
    return node_of(cluster.describe(rest[0]), controller).value("state", "") == "down";
  })) << cluster.describe(rest[0]).dump();
  auto after = start_load(cluster, rest, "steady", 30, 200);
  ids.insert(ids.end(), after.begin(), after.end());
  expect_all_completed(reader, ids, 60s);
  for (size_t k = 0; k < ids.size(); k += 4) expect_no_step_twice(reader, ids[k]);

  // The remaining replicas of each partition converge on its leader's log.
  std::map<uint32_t, std::string> why;
  const bool converged = eventually(30s, [&] {
    why.clear();
    std::map<std::string, json> seen;
    for (size_t i : rest) seen[cluster.id(i)] = cluster.describe(i);
    for (uint32_t p = 0; p < kPartitions; ++p) {
      const json& any = seen.begin()->second;
      const json& part = any["partitions"][p];
      if (!part["leader"].is_string() || !part["placement"].is_object()) {
        why[p] = "no leader";
        continue;
      }
      const json& at_leader = seen[part["leader"].get<std::string>()]["partitions"][p];
      const uint64_t committed = at_leader.value("committed_lsn", uint64_t{0});
      for (const auto& n : part["placement"]["replicas"]) {
        const uint64_t applied =
            seen[n.get<std::string>()]["partitions"][p].value("applied_lsn", uint64_t{0});
        if (applied != committed) {
          why[p] = n.get<std::string>() + " applied " + std::to_string(applied) +
                   ", the leader committed " + std::to_string(committed);
        }
      }
    }
    return why.empty();
  });
  EXPECT_TRUE(converged) << why.begin()->first << ": " << why.begin()->second;

  // The runbook's last step: remove the dead node.
  Reply removed = cluster.operator_api(rest[0]).del("/admin/v1/nodes/" + controller);
  ASSERT_EQ(removed.status, 200) << removed.describe();
  EXPECT_EQ(removed.doc().value("state", ""), "removed") << removed.describe();
}

}  // namespace
}  // namespace yantra::cluster_test
