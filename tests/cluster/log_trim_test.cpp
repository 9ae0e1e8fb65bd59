// trim_point (cluster/log_trim.hpp): the lowest durably applied LSN over the
// current replica set, from two rounds of reports; unknown whenever one
// replica is missing, moved segment, synced nothing, or went back.
#include <gtest/gtest.h>

#include "cluster/log_trim.hpp"

namespace yantra::cluster {
namespace {

const std::vector<std::string> kSet{"a", "b", "c"};

TrimPositions round(uint64_t applied_a, uint64_t applied_b, uint64_t applied_c, uint64_t durable) {
  return {{"a", {applied_a, 5, durable}},
          {"b", {applied_b, 5, durable}},
          {"c", {applied_c, 5, durable}}};
}

TEST(TrimPointTest, TheLowestAppliedOfTheEarlierRoundOnceEachReplicaSyncedSince) {
  EXPECT_EQ(trim_point(kSet, round(40, 38, 41, 41), round(50, 49, 50, 50)),
            std::optional<uint64_t>(38));
}

TEST(TrimPointTest, UnknownWhenAnyReplicaIsNotKnownToBeDurable) {
  const TrimPositions before = round(40, 38, 41, 41);
  // Nothing synced on c since the earlier report.
  TrimPositions now = round(50, 49, 50, 50);
  now["c"].durable = 41;
  EXPECT_EQ(trim_point(kSet, before, now), std::nullopt);
  // c did not answer this round, or the earlier one.
  now = round(50, 49, 50, 50);
  now.erase("c");
  EXPECT_EQ(trim_point(kSet, before, now), std::nullopt);
  EXPECT_EQ(trim_point(kSet, now, round(50, 49, 50, 50)), std::nullopt);
  // c is on another segment now (a new epoch).
  now = round(50, 49, 50, 50);
  now["c"].segment = 6;
  EXPECT_EQ(trim_point(kSet, before, now), std::nullopt);
  // b's applied position went back (its state is being replaced).
  now = round(50, 30, 50, 50);
  EXPECT_EQ(trim_point(kSet, before, now), std::nullopt);
  // No replica set.
  EXPECT_EQ(trim_point({}, before, round(50, 49, 50, 50)), std::nullopt);
}

}  // namespace
}  // namespace yantra::cluster
