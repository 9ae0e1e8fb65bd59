// A partition leader cut off from the network under load (issue 11, "a
// leader cut off from the others"): three `yantra serve` processes and etcd,
// each in a network namespace of its own joined by a bridge
// (tests/cluster/netns.hpp); the cut sets the leader's link down, so it
// reaches neither its peers nor etcd, while its own clients (on its
// loopback) keep writing through it and other clients write through the
// two other nodes.
//
// What it shows:
// - the others elect new leaders for its partitions and go on (the time
//   from the cut to the first write a new leader acknowledged is printed);
// - the cut leader acknowledges nothing sent after the cut (it cannot reach
//   a write quorum) and stops offering writes (/readyz?writes=true 503);
// - after healing it steps down (newer epochs in its view) and catches up;
// - every acknowledged start, through any node, before, during and after
//   the cut, completed with its result and no step completed twice, and
//   every replica holds the same events for each of them (read from each
//   node alone, where a read is served from its own copy): nothing the cut
//   leader did after the takeover survives anywhere.
//
// Needs root for the namespaces (CI runs as root); skipped otherwise.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/cluster/cluster_harness.hpp"

namespace yantra::cluster_test {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Until node `via` reports the same leader for every partition for `quiet`
// in a row, at most `timeout`; returns its last view.
json wait_settled(TestCluster& cluster, size_t via, std::chrono::milliseconds quiet,
                  std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  json last;
  auto since = Clock::now();
  while (Clock::now() < deadline) {
    json d = cluster.describe(via);
    json leaders = json::array();
    if (d.is_object()) {
      for (const auto& p : d["partitions"]) leaders.push_back(p["leader"]);
    }
    if (leaders != last) {
      last = leaders;
      since = Clock::now();
    } else if (Clock::now() - since >= quiet) {
      return d;
    }
    std::this_thread::sleep_for(100ms);
  }
  return cluster.describe(via);
}

TEST(ClusterNetCut, CutLeaderCommitsNothingAfterTakeoverAndCatchesUpWhenHealed) {
  std::string why;
  if (!NetLab::permitted(&why)) GTEST_SKIP() << why;
  TestCluster::Options options;
  options.network_namespaces = true;
  TestCluster cluster(options);
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  for (size_t i = 0; i < cluster.size(); ++i) {
    ASSERT_TRUE(cluster.wait_writable(i, 30s, &error)) << cluster.id(i) << ": " << error;
  }
  Api a = cluster.api(0);
  e2e::create_flow(a, echo_delay_flow("cut", 300));

  // The victim: the node leading most partitions once leaderships settled.
  json d = wait_settled(cluster, 0, 1500ms, 20s);
  ASSERT_TRUE(d.is_object()) << "describe through n1 failed";
  size_t victim = 0;
  std::map<uint32_t, int64_t> before;
  for (size_t i = 0; i < cluster.size(); ++i) {
    auto led = cluster.led_by(0, cluster.id(i));
    if (led.size() > before.size()) {
      victim = i;
      before = led;
    }
  }
  ASSERT_FALSE(before.empty()) << d.dump();
  std::set<uint32_t> victim_parts;
  for (const auto& [p, e] : before) victim_parts.insert(p);
  const size_t s1 = (victim + 1) % cluster.size();
  const size_t s2 = (victim + 2) % cluster.size();
  const std::string vid = cluster.id(victim);

  // Clients: two on the victim (its partitions), one on each survivor
  // aimed at the victim's partitions (forwarded to their leader), one on a
  // survivor anywhere. Long timeouts: a request the victim holds across
  // the cut must be answered, not abandoned.
  HistoryLoad load(cluster, "cut",
                   {{victim, victim_parts},
                    {victim, victim_parts},
                    {s1, victim_parts},
                    {s2, victim_parts},
                    {s1, {}}},
                   30s);
  auto acked_via = [&](size_t node) {
    size_t n = 0;
    for (const auto& r : load.requests()) n += (r.node == node && !r.execution.empty()) ? 1 : 0;
    return n;
  };
  {
    const auto deadline = Clock::now() + 30s;
    while (acked_via(victim) < 20 && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
    ASSERT_GE(acked_via(victim), 20u) << "the victim acknowledged too little before the cut";
  }

  const auto cut_at = Clock::now();
  ASSERT_TRUE(cluster.cut(victim, &error)) << error;
  const auto cut_done = Clock::now();
  // Both survivors see another leader for every partition the victim led;
  // meanwhile the victim stops offering writes (it cannot renew its lease).
  bool taken_over = false;
  int victim_ready = 0;
  Clock::time_point victim_refusing{};
  auto probe_victim = [&](std::chrono::milliseconds timeout) {
    if (victim_ready == 503) return;
    victim_ready = cluster.ready_for_writes(victim, timeout);
    if (victim_ready == 503) victim_refusing = Clock::now();
  };
  {
    const auto deadline = Clock::now() + 30s;
    while (!taken_over && Clock::now() < deadline) {
      probe_victim(300ms);
      taken_over = true;
      for (size_t via : {s1, s2}) {
        json v = cluster.describe(via);
        if (!v.is_object()) {
          taken_over = false;
          continue;
        }
        for (const auto& p : v["partitions"]) {
          if (victim_parts.count(p["id"].get<uint32_t>()) == 0) continue;
          if (!p["leader"].is_string() || p["leader"] == vid) taken_over = false;
        }
      }
      if (!taken_over) std::this_thread::sleep_for(20ms);
    }
  }
  ASSERT_TRUE(taken_over) << cluster.describe(s1).dump();
  const auto taken_over_at = Clock::now();
  {
    const auto deadline = Clock::now() + 15s;
    while (victim_ready != 503 && Clock::now() < deadline) {
      probe_victim(1s);
      std::this_thread::sleep_for(20ms);
    }
  }
  EXPECT_EQ(victim_ready, 503) << vid << " still offers writes while cut off";
  // Writes through the survivors on the victim's partitions go on: enough
  // sent after the cut are acknowledged (by the new leaders).
  auto survivor_acks_after_cut = [&] {
    std::vector<HistoryLoad::Request> out;
    for (const auto& r : load.requests()) {
      if (r.node != victim && r.sent > cut_done && !r.execution.empty() &&
          victim_parts.count(partition_of_key("default", r.key, cluster.partitions())) != 0) {
        out.push_back(r);
      }
    }
    return out;
  };
  {
    const auto deadline = Clock::now() + 30s;
    while (survivor_acks_after_cut().size() < 20 && Clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
  }
  const auto during = survivor_acks_after_cut();
  ASSERT_GE(during.size(), 20u) << "the survivors acknowledged too little on " << vid
                                << "'s partitions while it was cut off";
  Clock::time_point first_commit = during.front().answered;
  for (const auto& r : during) first_commit = std::min(first_commit, r.answered);
  std::cout << "[ measure ] cut of " << vid << " (leading " << before.size()
            << " partitions): new leaders for all of them seen by both survivors after "
            << ms_between(cut_at, taken_over_at)
            << " ms; first start on them acknowledged through a survivor after "
            << ms_between(cut_at, first_commit) << " ms; " << vid
            << " answering /readyz?writes=true 503 after "
            << (victim_ready == 503 ? ms_between(cut_at, victim_refusing) : -1.0) << " ms"
            << std::endl;
  // Reads during the cut: through a survivor they go on; through the cut
  // node (its copy, or a forward that cannot reach the leader) as printed.
  {
    std::string before_cut;  // an execution the victim acknowledged before the cut
    for (const auto& r : load.requests()) {
      if (r.node == victim && !r.execution.empty() && r.answered < cut_at) before_cut = r.execution;
    }
    ASSERT_FALSE(before_cut.empty());
    Reply via_survivor = cluster.api(s1).get("/api/v1/executions/" + before_cut);
    EXPECT_EQ(via_survivor.status, 200) << via_survivor.describe();
    Reply via_victim = cluster.api(victim).get("/api/v1/executions/" + before_cut);
    Reply list = cluster.api(victim).get("/api/v1/executions?limit=5");
    std::cout << "[ measure ] reads during the cut: an execution through " << cluster.id(s1) << " "
              << via_survivor.status << ", through " << vid << " " << via_victim.status << " "
              << via_victim.code() << "; the list through " << vid << " " << list.status
              << std::endl;
  }
  // Stay cut a while under load (the victim's clients keep trying).
  const auto cut_until = cut_at + 10s;
  if (Clock::now() < cut_until) std::this_thread::sleep_for(cut_until - Clock::now());

  const auto healed_at = Clock::now();
  ASSERT_TRUE(cluster.heal(victim, &error)) << error;
  // The healed node steps down: in its view every partition it led has a
  // leader at a newer epoch (itself only if it won it again).
  bool stepped_down = false;
  json seen;
  {
    const auto deadline = Clock::now() + 30s;
    while (!stepped_down && Clock::now() < deadline) {
      seen = cluster.describe(victim);
      stepped_down = seen.is_object();
      if (stepped_down) {
        for (const auto& p : seen["partitions"]) {
          const uint32_t id = p["id"].get<uint32_t>();
          if (victim_parts.count(id) == 0) continue;
          if (!p["leader"].is_string() || !(p["epoch"].get<int64_t>() > before[id])) {
            stepped_down = false;
          }
        }
      }
      if (!stepped_down) std::this_thread::sleep_for(50ms);
    }
  }
  ASSERT_TRUE(stepped_down) << "after healing " << vid
                            << " still shows its old epochs: " << seen.dump();
  std::cout << "[ measure ] heal of " << vid
            << " to its view showing newer epochs for all its old partitions: "
            << ms_between(healed_at, Clock::now()) << " ms" << std::endl;
  std::string writable_why;
  EXPECT_TRUE(cluster.wait_writable(victim, 30s, &writable_why)) << vid << ": " << writable_why;
  std::this_thread::sleep_for(2s);  // load through the healed node too
  load.stop();

  // What the victim's clients saw while it was cut off.
  std::map<int, int> statuses;
  size_t acked_after_cut = 0;
  for (const auto& r : load.requests()) {
    if (r.node != victim || r.sent <= cut_done || r.sent >= healed_at) continue;
    ++statuses[r.status];
    if (!r.execution.empty()) {
      ++acked_after_cut;
      ADD_FAILURE() << vid << " acknowledged a start sent " << ms_between(cut_done, r.sent)
                    << " ms after it was cut off: key " << r.key << " -> " << r.execution;
    }
  }
  std::cout << "[ measure ] starts sent to " << vid << " while it was cut off, by status:";
  for (const auto& [status, n] : statuses) std::cout << " " << status << " x" << n;
  std::cout << std::endl;
  EXPECT_FALSE(statuses.empty()) << "no request reached the victim while it was cut off";
  EXPECT_EQ(acked_after_cut, 0u);

  // Every acknowledged start completed with its result, no step twice.
  const auto acked = load.acked();
  ASSERT_GT(acked.size(), 60u);
  Api reader = cluster.api(s1);
  expect_completed_with_output(reader, acked, 90s, "read through " + cluster.id(s1));
  std::map<std::string, json> reference;
  for (const auto& [id, n] : acked) {
    expect_no_step_twice(reader, id);
    reference[id] = events_of(reader, id);
  }
  // Every replica, the healed one included, holds exactly those events.
  const size_t compared = expect_identical_replicas(cluster, reference);
  std::cout << "[ measure ] " << acked.size() << " acknowledged starts (" << during.size() << " on "
            << vid << "'s partitions through survivors during the cut); events of " << compared
            << " compared on all " << cluster.size() << " replicas" << std::endl;
}

}  // namespace
}  // namespace yantra::cluster_test
