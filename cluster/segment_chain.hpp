// A partition's log layout in etcd: the chain of segment records under
// P/segments/<p>/, one per epoch that wrote (shared/notes/replicated-log.md,
// invariants 5c and 5d). Every write here is fenced in etcd: the txn also
// compares P/leader/<p>'s create_revision with the writer's epoch, so a
// deposed or paused leader cannot change the layout after another node took
// the partition, whatever it still believes.
//
// - open_segment: the leader of `epoch` records its segment. Compares the
//   leader key (kFenced when it moved on), that no record for this epoch
//   exists, and the mod_revision of the latest earlier record, which must be
//   sealed with first_lsn == its sealed_end + 1 (else kSegmentConflict /
//   kInvalidArgument): no segment opens on top of an unsealed one.
//   Re-opening the same record again (a retry after an unknown outcome)
//   succeeds while the leader key still has that epoch; a different record
//   for the epoch is kSegmentConflict.
// - seal_segment: a recovering leader records the sealed end of an earlier
//   segment by compare-and-swap on the record's mod_revision as read (two
//   racing recoverers: exactly one wins, the other gets kSegmentConflict, or
//   kFenced when its epoch is no longer the leader's). A record already
//   sealed is kSegmentConflict naming the recorded end: re-read the chain.
// - trim_chain: the leader of `my_epoch` drops the oldest records of the
//   chain (as read) that are sealed with sealed_end <= `point` (every
//   batch they hold is covered by the replicas' state: invariant 7), never
//   the newest record (open_segment needs it to check first_lsn). One txn
//   deletes them, comparing the leader key and each dropped record's
//   mod_revision (kFenced / kSegmentConflict: re-read the chain). The
//   chain's first record then says where the log starts.
// - segments: the chain, oldest epoch first, each record parsed.
//
// Blocking etcd calls: cluster threads only (etcd_client.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "cluster/layout.hpp"

namespace yantra::cluster {

class EtcdClient;

struct SegmentEntry {
  SegmentRecord record;
  int64_t mod_revision = 0;  // for a later compare-and-swap
};

Status open_segment(EtcdClient& etcd, const Layout& layout, uint32_t partition,
                    const SegmentRecord& segment);
Status seal_segment(EtcdClient& etcd, const Layout& layout, uint32_t partition,
                    int64_t segment_epoch, uint64_t sealed_end, int64_t my_epoch);
// The records trim_chain() would drop of `chain` at `point` (oldest first).
std::vector<SegmentEntry> trimmable(const std::vector<SegmentEntry>& chain, uint64_t point);
// Drops trimmable(chain, point); returns them (none: nothing to do, ok).
Result<std::vector<SegmentEntry>> trim_chain(EtcdClient& etcd, const Layout& layout,
                                             uint32_t partition,
                                             const std::vector<SegmentEntry>& chain, uint64_t point,
                                             int64_t my_epoch);
Result<std::vector<SegmentEntry>> segments(EtcdClient& etcd, const Layout& layout,
                                           uint32_t partition);

}  // namespace yantra::cluster
