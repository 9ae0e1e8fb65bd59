// The controller's planning (cluster/controller.hpp, plan_placement): pure,
// no etcd, no processes. Given nodes and a current placement, expect
// replicas and leaderships spread evenly, valid placements kept, replicas
// of draining / removed / long-down nodes replaced, and a plan that is its
// own fixed point.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "cluster/controller.hpp"

namespace yantra::cluster {
namespace {

using Plan = std::map<uint32_t, PlacementRecord>;

PlanInput input(uint32_t partitions, uint32_t replication, std::set<std::string> eligible,
                Plan current = {}, bool balance = false) {
  PlanInput in;
  in.partitions = partitions;
  in.replication = replication;
  in.eligible = eligible;
  in.keep = eligible;
  in.current = std::move(current);
  in.balance = balance;
  return in;
}

std::map<std::string, size_t> replica_counts(const Plan& plan) {
  std::map<std::string, size_t> out;
  for (const auto& [p, rec] : plan) {
    for (const auto& n : rec.replicas) ++out[n];
  }
  return out;
}

std::map<std::string, size_t> leader_counts(const Plan& plan) {
  std::map<std::string, size_t> out;
  for (const auto& [p, rec] : plan) ++out[rec.preferred];
  return out;
}

size_t spread(const std::map<std::string, size_t>& counts, const std::set<std::string>& nodes) {
  size_t lo = SIZE_MAX;
  size_t hi = 0;
  for (const auto& n : nodes) {
    auto it = counts.find(n);
    const size_t c = it == counts.end() ? 0 : it->second;
    lo = std::min(lo, c);
    hi = std::max(hi, c);
  }
  return hi - lo;
}

// Every record valid: distinct replicas, preferred among them.
void expect_valid(const Plan& plan, uint32_t replication) {
  for (const auto& [p, rec] : plan) {
    std::set<std::string> distinct(rec.replicas.begin(), rec.replicas.end());
    EXPECT_EQ(distinct.size(), rec.replicas.size()) << "partition " << p;
    EXPECT_LE(rec.replicas.size(), replication) << "partition " << p;
    EXPECT_EQ(distinct.count(rec.preferred), 1u)
        << "partition " << p << " prefers " << rec.preferred;
  }
}

TEST(ControllerPlan, AFreshClusterSpreadsReplicasAndLeaderships) {
  const std::set<std::string> nodes{"n1", "n2", "n3", "n4"};
  const Plan plan = plan_placement(input(64, 3, nodes));
  ASSERT_EQ(plan.size(), 64u);
  expect_valid(plan, 3);
  for (const auto& [p, rec] : plan) EXPECT_EQ(rec.replicas.size(), 3u);
  EXPECT_LE(spread(replica_counts(plan), nodes), 1u);  // 48 each
  EXPECT_LE(spread(leader_counts(plan), nodes), 1u);   // 16 each
}

TEST(ControllerPlan, PlanningItsOwnOutputChangesNothing) {
  const std::set<std::string> nodes{"a", "b", "c", "d", "e"};
  const Plan first = plan_placement(input(37, 3, nodes));
  EXPECT_EQ(plan_placement(input(37, 3, nodes, first)), first);
  EXPECT_EQ(plan_placement(input(37, 3, nodes, first, true)), first);
}

TEST(ControllerPlan, ANewNodeReceivesReplicasAndLeadershipsOnlyWhenBalancing) {
  const Plan three = plan_placement(input(8, 3, {"n1", "n2", "n3"}));
  const std::set<std::string> four{"n1", "n2", "n3", "n4"};
  // Repair only: everything is valid where it is, nothing moves.
  EXPECT_EQ(plan_placement(input(8, 3, four, three)), three);
  // Balancing: n4 gets its share of 24 replicas (6) and of 8 leaderships (2).
  const Plan balanced = plan_placement(input(8, 3, four, three, true));
  expect_valid(balanced, 3);
  EXPECT_EQ(replica_counts(balanced)["n4"], 6u);
  EXPECT_EQ(leader_counts(balanced)["n4"], 2u);
  EXPECT_LE(spread(replica_counts(balanced), four), 1u);
  EXPECT_LE(spread(leader_counts(balanced), four), 1u);
  // Few moves: each partition changes at most one replica.
  for (const auto& [p, rec] : balanced) {
    size_t same = 0;
    for (const auto& n : rec.replicas) {
      const auto& old = three.at(p).replicas;
      same += std::count(old.begin(), old.end(), n);
    }
    EXPECT_GE(same, 2u) << "partition " << p;
  }
}

TEST(ControllerPlan, ADrainingNodeLosesEveryReplicaAndLeadership) {
  const Plan before = plan_placement(input(16, 3, {"n1", "n2", "n3", "n4"}));
  // n2 drains: neither eligible nor kept.
  const std::set<std::string> rest{"n1", "n3", "n4"};
  const Plan after = plan_placement(input(16, 3, rest, before, true));
  expect_valid(after, 3);
  for (const auto& [p, rec] : after) {
    EXPECT_EQ(std::count(rec.replicas.begin(), rec.replicas.end(), "n2"), 0) << p;
    EXPECT_NE(rec.preferred, "n2") << p;
    EXPECT_EQ(rec.replicas.size(), 3u) << p;
    // A leadership that was valid stays where it was.
    if (before.at(p).preferred != "n2") {
      EXPECT_EQ(rec.preferred, before.at(p).preferred) << p;
    }
  }
  EXPECT_LE(spread(leader_counts(after), rest), 1u);
}

TEST(ControllerPlan, ADownNodeKeepsItsReplicasWithinTheGraceAndLosesThemAfter) {
  const std::set<std::string> all{"n1", "n2", "n3", "n4"};
  const Plan before = plan_placement(input(12, 3, all));
  // n3 is down within the grace: kept as a replica, never preferred.
  PlanInput within = input(12, 3, {"n1", "n2", "n4"}, before);
  within.keep.insert("n3");
  const Plan kept = plan_placement(within);
  expect_valid(kept, 3);
  for (const auto& [p, rec] : kept) {
    EXPECT_EQ(rec.replicas, before.at(p).replicas) << p;
    EXPECT_NE(rec.preferred, "n3") << p;
  }
  // Past the grace: replaced by the node that is not yet a replica.
  const Plan replaced = plan_placement(input(12, 3, {"n1", "n2", "n4"}, kept));
  for (const auto& [p, rec] : replaced) {
    EXPECT_EQ(std::count(rec.replicas.begin(), rec.replicas.end(), "n3"), 0) << p;
    EXPECT_EQ(rec.replicas.size(), 3u) << p;
    const auto& old = kept.at(p).replicas;
    for (const auto& n : old) {
      if (n != "n3") {
        EXPECT_EQ(std::count(rec.replicas.begin(), rec.replicas.end(), n), 1) << p;
      }
    }
  }
}

TEST(ControllerPlan, FewerNodesThanTheReplicationFactorGiveSmallerSets) {
  const Plan plan = plan_placement(input(4, 3, {"solo", "duo"}));
  expect_valid(plan, 3);
  for (const auto& [p, rec] : plan) EXPECT_EQ(rec.replicas.size(), 2u);
  // No eligible node at all: the current records stay as they are.
  PlanInput none = input(4, 3, {}, plan);
  EXPECT_EQ(plan_placement(none), plan);
}

TEST(ControllerPlan, AnOperatorsValidChoiceSurvivesRepair) {
  const std::set<std::string> nodes{"n1", "n2", "n3"};
  Plan current = plan_placement(input(6, 3, nodes));
  current[2].preferred = current[2].replicas[1];  // a leadership moved by hand
  const Plan plan = plan_placement(input(6, 3, nodes, current));
  EXPECT_EQ(plan.at(2).preferred, current[2].replicas[1]);
}

}  // namespace
}  // namespace yantra::cluster
