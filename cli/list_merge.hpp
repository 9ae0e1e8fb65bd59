// merge_pages: one page of a cluster-wide list of executions from the pages
// of the nodes asked (cli/cluster_list.hpp), each of a disjoint set of
// partitions, all asked with the same query, limit and cursor.
//
// Why the cursor is what it is. Each node's page is what
// ExecutionIndex::list makes: newest first, at most `limit` items, and a
// cursor ("" = nothing more) below which that node has not looked yet. A
// node's cursor is its last item when its page is full, but a filtered (or
// partition-restricted) scan also stops after a bounded number of rows and
// then returns the last row it looked at, possibly with fewer than `limit`
// items. So:
// - the highest cursor among the nodes (`stop`) is a bound: below it some
//   node has not looked, and an item below it taken now would be taken
//   again by the next page (which resumes strictly below the merged
//   cursor) — such items are left for the next page;
// - of the rest, the newest `limit` are the page; when more remain, the
//   merged cursor is the lowest id taken (>= stop, since every item left
//   is); otherwise it is `stop` ("" when every node is done).
// The next page, asked with that cursor, therefore skips no row a node has
// not looked at and repeats none already returned.
//
// Pure and header-only: tests/cluster/list_merge_test.cpp checks it with
// no cluster.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "actors/engine.hpp"

namespace yantra::cli {

inline ExecutionPage merge_pages(std::vector<ExecutionPage> pages, size_t limit) {
  std::string stop;
  std::vector<v1::ExecutionSummary> all;
  for (auto& page : pages) {
    stop = std::max(stop, page.next_cursor);
    for (auto& item : page.items) all.push_back(std::move(item));
  }
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.execution_id() > b.execution_id(); });
  // Partitions are disjoint, so an id comes once; a node answering twice
  // for one partition (a retry elsewhere) must still not show it twice.
  all.erase(std::unique(
                all.begin(), all.end(),
                [](const auto& a, const auto& b) { return a.execution_id() == b.execution_id(); }),
            all.end());
  if (!stop.empty()) {
    all.erase(std::find_if(all.begin(), all.end(),
                           [&stop](const auto& s) { return s.execution_id() < stop; }),
              all.end());
  }
  ExecutionPage out;
  if (all.size() > limit) {
    all.resize(limit);
    out.next_cursor = all.back().execution_id();
  } else {
    out.next_cursor = std::move(stop);
  }
  out.items = std::move(all);
  return out;
}

}  // namespace yantra::cli
