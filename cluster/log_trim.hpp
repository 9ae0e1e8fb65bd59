// When the partition leader may trim its log (invariant 7 of the replicated
// log, docs/cluster.md "Trimming"): a sealed segment's batches may go once
// every replica of the current set holds a state that covers them durably,
// so that any of them can hand a snapshot to a new or lagging replica.
//
// Durably: a follower writes its applied marker without a sync (its segment
// copy is the durable record), but every store has one RocksDB write-ahead
// log, so any synced write after the apply makes it durable too — and every
// append a replica accepts is synced. A report reads a node's applied LSN
// before its durable (synced) end of the open segment; so when a later
// report of the same segment shows a higher durable end, an append was
// synced after that applied LSN was written, and the earlier report's
// applied LSN is durable. trim_point() is that rule over two rounds of
// reports; a replica missing from either round, on another segment, with
// nothing synced in between, or whose applied LSN went back (a state being
// replaced) makes the point unknown: never trim past what is not known.
//
// Pure (no I/O): the leader's trim loop (node.cpp) gathers the reports.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace yantra::cluster {

// One node's position in one partition, as one report said it.
struct TrimPosition {
  uint64_t applied = 0;  // its store's applied marker
  uint64_t segment = 0;  // the segment `durable` is of
  uint64_t durable = 0;  // the last LSN of that segment synced on the node
};
using TrimPositions = std::map<std::string, TrimPosition>;  // by node id

// The lowest LSN every node of `replicas` has durably applied, from the
// previous round's and this round's reports; nullopt when not known.
std::optional<uint64_t> trim_point(const std::vector<std::string>& replicas,
                                   const TrimPositions& previous, const TrimPositions& current);

}  // namespace yantra::cluster
