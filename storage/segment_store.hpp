// SegmentStore: this node's copy, as a replica, of the replicated partition
// logs (since 0.5). A partition's log is a chain of segments, each written by
// one writer (the partition leader of one epoch) to a replica set; this store
// keeps the segments this node is a replica of, in the `segments` column
// family (docs/replicated-log.md):
//   "m" | partition(be32) | segment(be64)             -> metadata (below)
//   "b" | partition(be32) | segment(be64) | lsn(be64) -> batch bytes
// A segment's id is its writer's epoch (the create_revision of the writer's
// etcd leader key). A batch is one group commit of the writer, opaque here.
// The metadata row (sealed, sealing epoch, first and last lsn, truncation
// point, trimmed) is written in the same WriteBatch as every change of the
// segment, so checking an append or a seal, and info(), is one point read
// (only a segment's first append also reads the partition's metadata rows,
// to see whether a newer epoch fenced it).
//
// What the store guarantees, whatever its callers do (the invariants of
// docs/replicated-log.md that one replica can keep on its own):
// - One writer per segment: append() refuses a writer_epoch other than the
//   segment id (segment_wrong_epoch).
// - A replica's copy is a prefix: lsns first_lsn..last_lsn with no hole. An
//   append beyond last_lsn + 1 is refused (segment_gap, naming the lsn the
//   replica expects: expected_lsn()); an lsn already held is accepted again
//   only with the same bytes (a retry after a lost answer) and refused
//   otherwise (conflict).
// - Sealing fences: after seal() returned, every append to that segment is
//   refused (segment_sealed, naming the sealing epoch: sealing_epoch()), also
//   after a restart, also when the seal came before the segment's first
//   append. seal() and append() of one partition are serialised by a mutex
//   held across "check, write, sync", so the last_lsn a seal answers is final
//   and every append acknowledged before it is at or below it.
// - Acknowledged means durable: every mutating call returns only after its
//   WriteBatch was written with sync (unless the store is Durability::kAsync,
//   the documented trade-off of a single node; a cluster runs kSync). While
//   the store is read-only every mutating call is refused, idempotent ones too.
//
// Repair (the recovering leader's "copy every batch up to end to W
// replicas") writes into a sealed segment, which append() must refuse; it is
// repair(): allowed only on a sealed segment, only for an epoch at least the
// sealing one, with the same prefix rules, and never beyond a recorded
// truncation point.
//
// Threads: every method blocks (RocksDB reads, fsync): call it from a thread
// of the replica's own (its per-partition channel's thread, a recovery
// worker), never from a CAF scheduler thread or an HTTP I/O thread. Any
// thread may call any method. Appends of one partition are expected from one
// ordered channel; seal(), repair(), truncate_after() and trim*() may arrive
// from other threads (the new leader) at any moment: each mutating call holds
// its partition's mutex for its whole check-write-sync. Reads take no lock;
// they see only whole batches, and may see a batch whose sync is still in
// flight (the writer's bytes either way). Owned by Store (store.segments()).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "storage/store.hpp"

namespace rocksdb {
class WriteBatch;
}  // namespace rocksdb

namespace yantra::storage::internal {
class BatchCheck;
}  // namespace yantra::storage::internal

namespace yantra::storage {

// One segment of a partition as this replica holds it.
struct SegmentInfo {
  uint32_t partition = 0;
  uint64_t segment = 0;  // the writer's epoch
  bool sealed = false;
  uint64_t sealing_epoch = 0;  // the epoch of the first seal; 0 while open
  // The batches held: first_lsn..last_lsn, both 0 when none.
  uint64_t first_lsn = 0;
  uint64_t last_lsn = 0;
  // Set by truncate_after(end): nothing beyond truncated_end is ever held
  // again (the segment's recorded sealed end).
  bool truncated = false;
  uint64_t truncated_end = 0;
  // Set by trim(): the batches are deleted (a snapshot covers them); the row
  // stays as the segment's fence, with first/last lsn as they were.
  bool trimmed = false;

  bool empty() const { return last_lsn == 0; }
  bool operator==(const SegmentInfo&) const = default;
};

// One batch of a segment, as read back.
struct SegmentBatch {
  uint64_t lsn = 0;
  std::string bytes;
  bool operator==(const SegmentBatch&) const = default;
};

class SegmentStore {
 public:
  SegmentStore(const SegmentStore&) = delete;
  SegmentStore& operator=(const SegmentStore&) = delete;

  // Appends batch `lsn` to `segment` for the writer of `writer_epoch` and
  // returns the segment after it (last_lsn >= lsn), once durable. The first
  // append to a segment this replica does not hold creates it with
  // first_lsn = lsn. Refusals: segment_sealed (sealed, or a newer segment or
  // seal of this partition shows the writer is deposed), segment_wrong_epoch
  // (writer_epoch != segment), segment_gap (lsn > last_lsn + 1),
  // conflict (an lsn held with other bytes, or below first_lsn),
  // invalid_argument (partition > 65535, segment or lsn 0).
  Result<SegmentInfo> append(uint32_t partition, uint64_t segment, uint64_t lsn,
                             std::string_view bytes, uint64_t writer_epoch);
  // The same for batches[i] at lsn first_lsn + i, in one WriteBatch and one
  // sync (a pipelining writer's group). A prefix of the group that is already
  // held with the same bytes is accepted again; all or nothing otherwise.
  Result<SegmentInfo> append(uint32_t partition, uint64_t segment, uint64_t first_lsn,
                             std::span<const std::string> batches, uint64_t writer_epoch);

  // Appends of several partitions (a replica's share of what one node's
  // partition leaders send it at once) in one WriteBatch and one sync. Each
  // is checked and answered exactly as append() would answer it alone: one
  // refused holds none of the others back. A failed write fails every
  // append it carried. Two appends of one segment are written in order.
  struct GroupAppend {
    uint32_t partition = 0;
    uint64_t segment = 0;
    uint64_t first_lsn = 0;
    std::span<const std::string> batches;
    uint64_t writer_epoch = 0;
  };
  std::vector<Result<SegmentInfo>> append_group(std::span<const GroupAppend> appends);

  // Seals `segment` on behalf of the leader of `sealing_epoch` (>= segment;
  // an older epoch is refused with segment_wrong_epoch) and returns it, once
  // durable: last_lsn is the final end of this copy. A segment not held is
  // recorded sealed and empty, so that a late first append is refused too.
  // Sealing again answers the same segment (the first sealing epoch stays).
  Result<SegmentInfo> seal(uint32_t partition, uint64_t segment, uint64_t sealing_epoch);

  // Recovery's copy of batches into a sealed segment (see above): like the
  // group append(), but the segment must be sealed (conflict otherwise:
  // seal it first), by an epoch <= `recovery_epoch` (segment_sealed
  // otherwise: the recovering leader is itself deposed), and no lsn may
  // exceed a truncation point (conflict). The segment stays sealed.
  Result<SegmentInfo> repair(uint32_t partition, uint64_t segment, uint64_t first_lsn,
                             std::span<const std::string> batches, uint64_t recovery_epoch);

  // Batches from_lsn..to_lsn (inclusive, clipped to what is held) in lsn
  // order, stopping before the batch that would take the total of bytes past
  // `max_bytes` (the first batch is always returned, so a reader always
  // advances). not_found for a segment not held, segment_trimmed for a
  // trimmed one.
  Result<std::vector<SegmentBatch>> read(uint32_t partition, uint64_t segment, uint64_t from_lsn,
                                         uint64_t to_lsn, size_t max_bytes) const;

  // Removes the batches after `end` (a tail beyond the segment's recorded
  // sealed end, never acknowledged) and records end as the truncation
  // point, durably. The segment must be sealed (conflict otherwise);
  // not_found when not held. A second call with a higher end removes nothing.
  Result<SegmentInfo> truncate_after(uint32_t partition, uint64_t segment, uint64_t end);

  // Deletes the batches of a sealed segment that a durable snapshot covers
  // (one range delete, durable); the metadata row stays, marked trimmed, and
  // keeps fencing the segment. conflict for an open segment, not_found for
  // one not held; trimming twice is fine.
  Result<SegmentInfo> trim(uint32_t partition, uint64_t segment);
  // trim() of every sealed segment of the partition whose batches are all
  // below `lsn` (empty ones included), in one WriteBatch; returns those it
  // trimmed now.
  Result<std::vector<SegmentInfo>> trim_below(uint32_t partition, uint64_t lsn);

  // Every segment of the partition held here, trimmed ones included, by id.
  Result<std::vector<SegmentInfo>> segments(uint32_t partition) const;
  // One segment; not_found when not held.
  Result<SegmentInfo> info(uint32_t partition, uint64_t segment) const;

  // What a refusal says, for the writer: the lsn to resend from (of a
  // segment_gap) and the epoch that sealed the segment (of a
  // segment_sealed); nullopt for any other status.
  static std::optional<uint64_t> expected_lsn(const Status& refusal);
  static std::optional<uint64_t> sealing_epoch(const Status& refusal);

 private:
  friend class Store;
  explicit SegmentStore(const internal::Db& db) : db_(db) {}

  enum class Mode { kAppend, kRepair };
  Result<SegmentInfo> write_batches(Mode mode, uint32_t partition, uint64_t segment,
                                    uint64_t first_lsn, std::span<const std::string> batches,
                                    uint64_t epoch);
  // write_batches() without the write: checks (the caller holds the
  // partition's mutex) and, when there is something new, adds its rows and
  // metadata to `batch` (adds = true). Returns the segment as it is after
  // the write, or as held (nothing to add: a retry), or the refusal.
  Result<SegmentInfo> prepare_locked(Mode mode, uint32_t partition, uint64_t segment,
                                     uint64_t first_lsn, std::span<const std::string> batches,
                                     uint64_t epoch, rocksdb::WriteBatch& batch,
                                     internal::BatchCheck& check, bool& adds);
  // The metadata row; nullopt when the segment is not held. Callers that
  // change it hold the partition's mutex.
  Result<std::optional<SegmentInfo>> load(uint32_t partition, uint64_t segment) const;
  // The segment truncate_after() and trim() work on: the store writable,
  // the segment held and sealed (conflict, "<segment> is open: <why>",
  // otherwise). With mutex_of(partition) held.
  Result<SegmentInfo> load_sealed(uint32_t partition, uint64_t segment,
                                  const std::string& why_sealed) const;
  std::mutex& mutex_of(uint32_t partition) { return mutexes_[partition % mutexes_.size()]; }

  const internal::Db& db_;
  // One mutex per partition, striped: partitions sharing a stripe only
  // share waiting, never state.
  std::array<std::mutex, 64> mutexes_;
};

}  // namespace yantra::storage
