// What must stay true for the cluster as a whole (issue 11), on a real
// three-node cluster (etcd + three `yantra serve` processes on loopback,
// tests/cluster/cluster_harness.hpp):
//
// - the audit trail: admin writes (flows, keys) and executions made through
//   different nodes leave one record each in the tenant's chains (one per
//   (tenant, partition), written through the partitions' replicated logs);
//   `audit/verify` passes on every node, and every node holds the same
//   chains, record for record (partition, seq, hash);
// - a tenant's request rate limit holds for the cluster as a whole: with
//   requests spread over the three nodes, the cluster admits at most
//   rate × seconds + burst (each node admits its share, 1/3), within 10%,
//   and at least 80% of it.
//
// Every wait is bounded; the cluster's logs are printed on a failure.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/cluster/cluster_harness.hpp"

namespace yantra::cluster_test {
namespace {

using Clock = std::chrono::steady_clock;

void wait_all_writable(TestCluster& cluster, std::chrono::milliseconds timeout) {
  for (size_t i = 0; i < cluster.size(); ++i) {
    std::string why;
    ASSERT_TRUE(cluster.wait_writable(i, timeout, &why)) << cluster.id(i) << ": " << why;
  }
}

// Every record of the tenant's chains as node `api` serves them, page by
// page: (partition, seq) -> "action outcome hash". Null partition = -1.
using Chains = std::map<std::pair<int64_t, uint64_t>, std::string>;

bool read_chains(Api& api, Chains& out, std::string* why) {
  out.clear();
  std::string cursor;
  for (int page = 0; page < 1000; ++page) {
    // Small pages: the cursor walks across chains (PARTITION:SEQ).
    Reply r = api.get("/api/v1/audit?limit=7" + (cursor.empty() ? "" : "&cursor=" + cursor));
    if (r.status != 200) {
      *why = r.describe();
      return false;
    }
    json doc = r.doc();
    for (const auto& rec : doc["records"]) {
      const int64_t p = rec["partition"].is_null() ? -1 : rec["partition"].get<int64_t>();
      out[{p, rec["seq"].get<uint64_t>()}] = rec["action"].get<std::string>() + " " +
                                             rec["outcome"].get<std::string>() + " " +
                                             rec["hash"].get<std::string>();
    }
    if (doc["next_cursor"].is_null()) return true;
    cursor = doc["next_cursor"].get<std::string>();
  }
  *why = "more than 1000 pages";
  return false;
}

size_t count_of(const Chains& chains, const std::string& action_outcome) {
  size_t n = 0;
  for (const auto& [at, what] : chains) {
    if (what.compare(0, action_outcome.size() + 1, action_outcome + " ") == 0) ++n;
  }
  return n;
}

TEST(ClusterWide, AuditChainsVerifyOnEveryNodeAndAreIdenticalAcrossReplicas) {
  TestCluster cluster({3, 8, 3});
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  wait_all_writable(cluster, 30s);

  // Admin writes through every node (each goes to etcd; its audit record to
  // the tenant's home partition, wherever that is led), then executions
  // through every node (execution.run records; tool calls chain in the
  // executions' own partitions).
  constexpr int kFlows = 3;
  constexpr int kKeys = 3;
  constexpr int kRuns = 24;
  for (int i = 0; i < kFlows; ++i) {
    Api api = cluster.api(static_cast<size_t>(i) % cluster.size());
    e2e::create_flow(api, echo_delay_flow("audited" + std::to_string(i), 10));
  }
  for (int i = 0; i < kKeys; ++i) {
    Api api = cluster.api(static_cast<size_t>(i) % cluster.size());
    Reply r = api.post("/api/v1/keys", {{"role", "viewer"}, {"name", "k" + std::to_string(i)}});
    ASSERT_EQ(r.status, 201) << r.describe();
  }
  std::vector<std::string> ids;
  for (int n = 0; n < kRuns; ++n) {
    Api api = cluster.api(static_cast<size_t>(n) % cluster.size());
    // Half with an Idempotency-Key: forwarded to the key's leader, which
    // audits them (the forwarding node must not audit them again).
    e2e::Headers headers;
    if (n % 2 == 0) headers.emplace_back("Idempotency-Key", "audit-run-" + std::to_string(n));
    std::string id = run_retrying(api, "audited" + std::to_string(n % kFlows), {{"n", n}}, headers);
    ASSERT_FALSE(id.empty());
    ids.push_back(id);
  }
  Api a = cluster.api(0);
  auto ended = e2e::wait_all_ended(a, ids, 60s);
  for (const auto& id : ids) {
    ASSERT_EQ(ended[id].value("status", ""), "completed") << id << " " << ended[id].dump();
  }

  // verify on every node; once each node's replicas applied everything
  // (polled, bounded), every node holds the same chains.
  std::vector<Chains> chains(cluster.size());
  const auto deadline = Clock::now() + 20s;
  bool same = false;
  std::string why;
  while (!same && Clock::now() < deadline) {
    bool read = true;
    for (size_t i = 0; i < cluster.size() && read; ++i) {
      Api api = cluster.api(i);
      read = read_chains(api, chains[i], &why);
    }
    same = read && chains[0] == chains[1] && chains[0] == chains[2] &&
           count_of(chains[0], "execution.run ok") >= kRuns;
    if (!same) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(same) << why << "\nrecords per node: " << chains[0].size() << " " << chains[1].size()
                    << " " << chains[2].size();
  for (size_t i = 0; i < cluster.size(); ++i) {
    Api api = cluster.api(i);
    Reply r = api.get("/api/v1/audit/verify");
    ASSERT_EQ(r.status, 200) << r.describe();
    json v = r.doc();
    EXPECT_TRUE(v["ok"].get<bool>()) << cluster.id(i) << ": " << v.dump();
    EXPECT_EQ(v["records"].get<size_t>(), chains[i].size()) << cluster.id(i);
    EXPECT_GE(v["chains"].get<int>(), 2) << cluster.id(i) << ": " << v.dump();
  }
  // Exactly one record per change, whichever node handled it.
  const Chains& c = chains[0];
  EXPECT_EQ(count_of(c, "flow.create ok"), static_cast<size_t>(kFlows));
  EXPECT_EQ(count_of(c, "key.create ok"), static_cast<size_t>(kKeys));
  EXPECT_EQ(count_of(c, "execution.run ok"), static_cast<size_t>(kRuns));
  // 2 tool calls per execution (steps a and b); a call in flight while its
  // partition's leadership moves (the placement spreads leaderships in the
  // first seconds) is made again by the new leader and audited again, but
  // no step's result is recorded twice.
  EXPECT_GE(count_of(c, "tool.call ok"), static_cast<size_t>(2 * kRuns));
  EXPECT_LE(count_of(c, "tool.call ok"), static_cast<size_t>(2 * kRuns + 4));
  for (const auto& id : ids) expect_no_step_twice(a, id);
  // The API's records are in the tenant's home partition; tool calls in the
  // executions' partitions: more than one chain, none of them the node's own.
  std::set<int64_t> partitions;
  for (const auto& [at, what] : c) partitions.insert(at.first);
  EXPECT_GT(partitions.size(), 1u);
  EXPECT_EQ(partitions.count(-1), 0u);
  const json report = a.get("/api/v1/audit/report").doc();
  EXPECT_EQ(report["total"].get<size_t>(), c.size()) << report.dump();
  std::printf("[ measure ] %zu audit records in %zu chains, identical on 3 nodes\n", c.size(),
              partitions.size());
}

TEST(ClusterWide, ATenantsRateLimitHoldsForTheClusterAsAWhole) {
  TestCluster cluster({3, 8, 3});
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  wait_all_writable(cluster, 30s);
  constexpr int kRate = 30;
  constexpr int kBurst = 30;
  Reply created = cluster.operator_api(0).post(
      "/admin/v1/tenants",
      {{"id", "limited"}, {"limits", {{"requests_per_second", kRate}, {"burst", kBurst}}}});
  ASSERT_EQ(created.status, 201) << created.describe();
  const std::string key = created.doc()["owner_key"].value("secret", "");
  ASSERT_FALSE(key.empty());
  // The tenant and its key reach every node (etcd, mirrored); a probe spends
  // a token of that node's share, so the load starts after a full refill.
  for (size_t i = 0; i < cluster.size(); ++i) {
    Api api(cluster.node(i).port(), key);
    const auto deadline = Clock::now() + 10s;
    Reply r;
    while (Clock::now() < deadline) {
      r = api.get("/api/v1/flows");
      if (r.status == 200) break;
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(r.status, 200) << cluster.id(i) << ": " << r.describe();
  }
  std::this_thread::sleep_for(1500ms);  // every node's bucket full again

  // Four clients per node for kSeconds, each sending as fast as answers
  // come (refusals are tarpitted by the node, up to their Retry-After).
  constexpr int kSeconds = 4;
  constexpr int kClientsPerNode = 4;
  std::atomic<int> ok{0};
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(kSeconds);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < cluster.size(); ++i) {
    for (int c = 0; c < kClientsPerNode; ++c) {
      clients.emplace_back([&, port = cluster.node(i).port()] {
        Api api(port, key);
        while (Clock::now() < end) {
          Reply r = api.get("/api/v1/flows");
          if (Clock::now() > end) break;  // answered after the window
          if (r.status == 200) {
            ++ok;
          } else if (r.status == 429) {
            ++refused;
          } else {
            ++other;
          }
        }
      });
    }
  }
  for (auto& t : clients) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double allowed = kRate * seconds + kBurst;
  std::printf(
      "[ measure ] rate limit %d/s (burst %d) over 3 nodes, %.2f s: %d admitted "
      "(allowed %.0f), %d refused, %d other\n",
      kRate, kBurst, seconds, ok.load(), allowed, refused.load(), other.load());
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(refused.load(), 0);
  EXPECT_LE(ok.load(), allowed * 1.1);
  EXPECT_GE(ok.load(), allowed * 0.8);
}

TEST(ClusterWide, ATenantsConcurrencyLimitHoldsForTheClusterAsAWhole) {
  TestCluster cluster({3, 8, 3});
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  wait_all_writable(cluster, 30s);
  constexpr int kLimit = 16;
  Reply created = cluster.operator_api(0).post(
      "/admin/v1/tenants", {{"id", "busy"}, {"limits", {{"max_concurrent_executions", kLimit}}}});
  ASSERT_EQ(created.status, 201) << created.describe();
  const std::string key = created.doc()["owner_key"].value("secret", "");
  ASSERT_FALSE(key.empty());
  Api owner(cluster.node(0).port(), key);
  e2e::create_flow(owner, echo_delay_flow("long", 2500));
  wait_flow_everywhere(cluster, "long", key);  // tenant, key and flow everywhere
  // Every node leads partitions (the placement spread the leaderships after
  // the start), so each admits its share of the starts it receives.
  const auto spread_until = Clock::now() + 20s;
  auto spread = [&] {
    for (size_t i = 0; i < cluster.size(); ++i) {
      if (cluster.led_by(0, cluster.id(i)).empty()) return false;
    }
    return true;
  };
  while (!spread() && Clock::now() < spread_until) std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(spread()) << cluster.describe(0).dump();
  std::this_thread::sleep_for(500ms);  // hand-overs settled
  // Twice the limit, spread over the nodes, all while the first still run.
  std::vector<std::string> admitted;
  int refused = 0;
  for (int n = 0; n < 2 * kLimit; ++n) {
    Api api(cluster.node(static_cast<size_t>(n) % cluster.size()).port(), key);
    Reply r = api.post("/api/v1/flows/long/run", json{{"input", {{"n", n}}}});
    if (r.status == 202) {
      admitted.push_back(r.doc()["execution_id"]);
    } else {
      ASSERT_EQ(r.status, 429) << r.describe();
      ++refused;
    }
  }
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (const auto& id : admitted) {
    const json done = e2e::wait_finished(owner, id, 30s);
    ASSERT_EQ(done.value("status", ""), "completed") << id << ": " << done.dump();
    runs.push_back(run_interval(owner, id));
  }
  const size_t most = max_overlap(runs);
  std::printf("[ measure ] tenant limit %d over 3 nodes: %zu admitted of %d, at most %zu at once\n",
              kLimit, admitted.size(), 2 * kLimit, most);
  // Each node admits ceil(limit x its share of the partitions): at most one
  // more per node than the limit; counted per node it would be 3x.
  EXPECT_LE(most, static_cast<size_t>(kLimit) + cluster.size() - 1);
  EXPECT_GE(most, static_cast<size_t>(kLimit) * 8 / 10);
  EXPECT_GT(refused, 0);

  // The monthly quota: each node admits its share of what is left.
  constexpr int kQuota = 24;
  Reply quota = cluster.operator_api(0).post(
      "/admin/v1/tenants", {{"id", "metered"}, {"limits", {{"max_executions_per_month", kQuota}}}});
  ASSERT_EQ(quota.status, 201) << quota.describe();
  const std::string metered = quota.doc()["owner_key"].value("secret", "");
  Api m0(cluster.node(0).port(), metered);
  e2e::create_flow(m0, echo_delay_flow("quick", 1));
  wait_flow_everywhere(cluster, "quick", metered);
  int started = 0;
  int over = 0;
  for (int n = 0; n < 2 * kQuota; ++n) {
    Api api(cluster.node(static_cast<size_t>(n) % cluster.size()).port(), metered);
    Reply r = api.post("/api/v1/flows/quick/run", json{{"input", {{"n", n}}}});
    if (r.status == 202) {
      ++started;
    } else {
      ASSERT_EQ(r.status, 429) << r.describe();
      EXPECT_EQ(r.doc()["error"].value("code", ""), "quota_exceeded") << r.body;
      ++over;
    }
  }
  std::printf("[ measure ] monthly quota %d over 3 nodes: %d started of %d\n", kQuota, started,
              2 * kQuota);
  EXPECT_LE(started, kQuota + static_cast<int>(cluster.size()) - 1);
  EXPECT_GE(started, kQuota * 8 / 10);
  EXPECT_GT(over, 0);
}

}  // namespace
}  // namespace yantra::cluster_test
