// merge_pages (cli/list_merge.hpp), with no cluster: nodes are modelled as
// sorted id lists paged exactly as ExecutionIndex::list pages (a filter, a
// bound on rows looked at that ends a page early with the last row looked
// at as its cursor, a full page's cursor = its last item). Paging a merged
// list to its end must return every matching id once, newest first — for
// many random shapes (1–4 nodes, small limits and scan bounds, sparse
// filters), which is where a cursor rule that forgets a node's early stop
// skips rows, and one that ignores it repeats them.
#include "cli/list_merge.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

namespace yantra::cli {
namespace {

struct FakeNode {
  std::vector<std::string> ids;  // newest first
  std::set<std::string> matching;
};

v1::ExecutionSummary summary(const std::string& id) {
  v1::ExecutionSummary s;
  s.set_execution_id(id);
  return s;
}

// ExecutionIndex::list's paging, with `max_scan` rows looked at at most.
ExecutionPage list(const FakeNode& node, size_t limit, const std::string& before, size_t max_scan) {
  ExecutionPage page;
  size_t scanned = 0;
  std::string examined;
  for (const auto& id : node.ids) {
    if (!before.empty() && id >= before) continue;
    if (++scanned > max_scan && !examined.empty()) {
      page.next_cursor = examined;
      return page;
    }
    examined = id;
    if (node.matching.count(id) == 0) continue;
    if (page.items.size() == limit) {
      page.next_cursor = page.items.back().execution_id();
      return page;
    }
    page.items.push_back(summary(id));
  }
  return page;
}

std::vector<std::string> ids_of(const ExecutionPage& page) {
  std::vector<std::string> out;
  for (const auto& s : page.items) out.push_back(s.execution_id());
  return out;
}

TEST(ListMergeTest, FullPagesCutAtTheLimitAndResumeBelowTheLastTaken) {
  std::vector<ExecutionPage> pages(2);
  for (const char* id : {"09", "07", "05"}) pages[0].items.push_back(summary(id));
  pages[0].next_cursor = "05";
  for (const char* id : {"08", "06", "04"}) pages[1].items.push_back(summary(id));
  pages[1].next_cursor = "04";
  ExecutionPage merged = merge_pages(pages, 3);
  EXPECT_EQ(ids_of(merged), (std::vector<std::string>{"09", "08", "07"}));
  EXPECT_EQ(merged.next_cursor, "07");
}

TEST(ListMergeTest, ANodeThatStoppedEarlyBoundsThePage) {
  // Node 1 looked down to "06" only (its scan bound) and found nothing: the
  // items below "06" of node 0 wait for the next page, which resumes there.
  std::vector<ExecutionPage> pages(2);
  for (const char* id : {"09", "05", "03"}) pages[0].items.push_back(summary(id));
  pages[1].next_cursor = "06";
  ExecutionPage merged = merge_pages(pages, 5);
  EXPECT_EQ(ids_of(merged), (std::vector<std::string>{"09"}));
  EXPECT_EQ(merged.next_cursor, "06");
}

TEST(ListMergeTest, EveryNodeDoneMeansNoCursor) {
  std::vector<ExecutionPage> pages(3);
  pages[0].items.push_back(summary("02"));
  pages[2].items.push_back(summary("03"));
  ExecutionPage merged = merge_pages(pages, 2);
  EXPECT_EQ(ids_of(merged), (std::vector<std::string>{"03", "02"}));
  EXPECT_TRUE(merged.next_cursor.empty());
  EXPECT_TRUE(merge_pages({}, 5).items.empty());
}

TEST(ListMergeTest, PagingToTheEndReturnsEveryMatchOnceNewestFirst) {
  std::mt19937 rng(20261207);
  for (int round = 0; round < 3000; ++round) {
    const size_t nodes = 1 + rng() % 4;
    const size_t limit = 1 + rng() % 5;
    const size_t max_scan = 1 + rng() % 6;
    const unsigned match_percent = 10 + rng() % 91;
    std::vector<FakeNode> fake(nodes);
    std::set<std::string, std::greater<>> expected;
    for (int n = 0; n < 60; ++n) {
      if (rng() % 3 == 0) continue;  // ids are sparse among the nodes
      char buf[8];
      std::snprintf(buf, sizeof buf, "%04d", n);
      FakeNode& owner = fake[rng() % nodes];
      owner.ids.insert(owner.ids.begin(), buf);  // n grows: newest first
      if (rng() % 100 < match_percent) {
        owner.matching.insert(buf);
        expected.insert(buf);
      }
    }
    std::vector<std::string> got;
    std::string cursor;
    int pages = 0;
    do {
      std::vector<ExecutionPage> parts;
      for (const auto& node : fake) parts.push_back(list(node, limit, cursor, max_scan));
      ExecutionPage merged = merge_pages(std::move(parts), limit);
      ASSERT_LE(merged.items.size(), limit);
      for (const auto& id : ids_of(merged)) got.push_back(id);
      ASSERT_TRUE(merged.next_cursor.empty() || cursor.empty() || merged.next_cursor < cursor)
          << "no progress at round " << round;
      cursor = merged.next_cursor;
      ASSERT_LT(++pages, 1000) << "round " << round;
    } while (!cursor.empty());
    ASSERT_EQ(got, std::vector<std::string>(expected.begin(), expected.end()))
        << "round " << round << ": " << nodes << " nodes, limit " << limit << ", scan bound "
        << max_scan;
  }
}

}  // namespace
}  // namespace yantra::cli
