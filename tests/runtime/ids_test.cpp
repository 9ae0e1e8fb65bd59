// Execution ids and the partition hash: part of the on-disk key layout and of
// routing between nodes, so the values are pinned, not just their shape.
#include <gtest/gtest.h>

#include <set>

#include "runtime/ids.hpp"

namespace yantra {
namespace {

TEST(Ids, PartitionOfIsStableFnv1a) {
  // fnv1a64("") = 14695981039346656037; these pin the function, so a change
  // that would move existing executions to other partitions fails here.
  EXPECT_EQ(partition_of("", 1000), 14695981039346656037ull % 1000);
  EXPECT_EQ(partition_of("a", 1u << 31), 0xaf63dc4c8601ec8cull % (1u << 31));
  EXPECT_EQ(partition_of("abc", 7), partition_of("abc", 7));
  EXPECT_EQ(partition_of("abc", 0), 0u);
}

TEST(Ids, PartitionOfKeySeparatesTenantAndKey) {
  // ("ab", "c") and ("a", "bc") must not collide by construction.
  std::set<uint32_t> seen;
  const uint32_t p1 = partition_of_key("ab", "c", 1u << 30);
  const uint32_t p2 = partition_of_key("a", "bc", 1u << 30);
  EXPECT_NE(p1, p2);
  // Stable for the same input, spread over partitions.
  for (int i = 0; i < 640; ++i) seen.insert(partition_of_key("t", "key-" + std::to_string(i), 64));
  EXPECT_EQ(partition_of_key("t", "k", 64), partition_of_key("t", "k", 64));
  EXPECT_GT(seen.size(), 60u);
  EXPECT_EQ(partition_of_key("t", "k", 0), 0u);
}

TEST(Ids, PartitionOfFlowIsStableSpreadAndApartFromKeys) {
  std::set<uint32_t> seen;
  for (int i = 0; i < 640; ++i)
    seen.insert(partition_of_flow("t", "flow-" + std::to_string(i), 64));
  EXPECT_GT(seen.size(), 60u);
  EXPECT_EQ(partition_of_flow("t", "f", 64), partition_of_flow("t", "f", 64));
  EXPECT_NE(partition_of_flow("ab", "c", 1u << 30), partition_of_flow("a", "bc", 1u << 30));
  // Not the partition of an idempotency key spelled like the flow id.
  EXPECT_NE(partition_of_flow("t", "f", 1u << 30), partition_of_key("t", "f", 1u << 30));
  EXPECT_EQ(partition_of_flow("t", "f", 0), 0u);
}

TEST(Ids, ExecutionIdsAreValidUlids) {
  const std::string id = make_execution_id(1700000000000, 0x1234, 0x5678);
  EXPECT_EQ(id.size(), kExecutionIdLength);
  EXPECT_TRUE(is_valid_execution_id(id));
  EXPECT_FALSE(is_valid_execution_id(id.substr(1)));
  EXPECT_FALSE(is_valid_execution_id(std::string(26, 'U')));  // U is not Crockford
}

}  // namespace
}  // namespace yantra
