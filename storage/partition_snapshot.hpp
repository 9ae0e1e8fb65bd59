// A partition's state as a snapshot: exported from one store, imported into
// another (a new replica), so that a replica can start from it instead of
// replaying the partition's log from LSN 1 — the precondition of trimming
// the log (invariant 7 of the replicated log, docs/cluster.md).
//
// What belongs to a partition. The state of partition P on a node is the
// fold of P's committed batches (partition_batch.hpp), i.e. exactly the rows
// that internal/request_rows.cpp and audit rows write for P's requests,
// plus P's applied marker. classify_row() places every kind of row of every
// column family (docs/event-log-format.md) in one table:
//   - rows of a partition: events and snapshots (partition in the key),
//     the executions CF's "s", "l", "f", "e" (the execution id in the key),
//     "i" (the execution id is the value) and "q" (a QueuedRun, whose
//     execution id is the value's), the active markers "r" and the audit
//     CF's "p"/"w" (partition in the key), outbox rows (the execution id
//     heads the message id "<execution>/<seq>/<index>"). An execution's
//     partition is partition_of(id) (runtime/ids.hpp), handed in by the
//     caller: storage does not know P nor the hash.
//   - the applied marker "a" | P: travels as the snapshot's LSN, not a row;
//   - node-local rows, which never travel: the segments CF (this node's copy
//     of the log itself) and the node's own audit chains "c";
//   - cluster-wide rows, which never travel either: flows, auth and secrets
//     (in a cluster they come from etcd through each node's mirror).
// A row the table does not know, or one too short for its kind, is
// "malformed": an export refuses it rather than silently leave state behind.
//
// Consistency. An export pins one RocksDB snapshot at open() and reads the
// applied marker and every row through it, so the rows are exactly the fold
// of batches 1..lsn() even while the partition keeps applying batches. Each
// chunk is read by a fresh bounded iterator from where the previous chunk
// stopped (no iterator lives across chunks, so none across a network send).
//
// Chunks (a wire format between nodes, checked on arrival as untrusted bytes):
//   "YSN" · format(u8 = 1) · partition(be32) · lsn(be64) · index(be32) ·
//   last(u8) · rows(be32) · { cf(u8) · len(be32) · key · len(be32) · value }* ·
//   crc32c(be32) of every byte before it
// A chunk holds rows until adding the next would pass max_bytes, and at
// least one row, so a chunk is at most max(max_bytes, header + one row).
//
// Import replaces: it is for a store that holds no applied marker of P (a
// new replica, or one whose earlier import stopped halfway); a store with a
// marker refuses, so a snapshot never moves the marker backwards (a replica
// that holds P catches up from the log). begin() deletes whatever rows of P
// the store holds (leftovers of an interrupted import), add() writes each
// chunk's rows in one unsynced WriteBatch, and finish() writes the applied
// marker alone, last, in a synced batch (its fsync makes the earlier
// batches of the same WAL durable too). After a crash in the middle the
// store has rows of P but no marker: recognisably incomplete, and the next
// import starts by deleting them.
//
// Threads: export and import block on RocksDB (and import on an fsync):
// run them off CAF scheduler threads. One import per partition at a time,
// and nothing else writes P meanwhile (the caller's follower does both).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace rocksdb {
class Snapshot;
}  // namespace rocksdb

namespace yantra::storage {

class Store;

// The partition of an execution id (runtime::partition_of with the node's P).
using PartitionOfId = std::function<uint32_t(std::string_view execution_id)>;

// Column families as a chunk names them (a wire value: never renumber).
enum class SnapshotCf : uint8_t {
  kEvents = 1,
  kExecutions = 2,
  kFlows = 3,
  kAuth = 4,
  kSnapshots = 5,
  kSecrets = 6,
  kAudit = 7,
  kOutbox = 8,
  kSegments = 9,
};

enum class RowScope {
  kPartition,      // state of `partition`: travels with its snapshot
  kAppliedMarker,  // the "a" marker of `partition`: travels as the snapshot's lsn
  kNodeLocal,      // this node's own (the log copy, its audit chain): never travels
  kClusterWide,    // from etcd in a cluster (flows, auth, secrets): never travels
  kMalformed,      // unknown kind, or too short for its kind
};

struct RowOwner {
  RowScope scope = RowScope::kMalformed;
  uint32_t partition = 0;  // for kPartition and kAppliedMarker
  std::string_view kind;   // the row kind's name, for messages and tests
};

// Where a row belongs (see the top of this file). Pure.
RowOwner classify_row(SnapshotCf cf, std::string_view key, std::string_view value,
                      const PartitionOfId& partition_of);

inline constexpr size_t kSnapshotChunkBytes = size_t{1} << 20;  // 1 MiB

class PartitionSnapshotExport {
 public:
  // Pins a RocksDB snapshot of `store` and reads P's applied marker under
  // it. "invalid_argument" for a partition above 0xFFFF or one with nothing
  // applied (no marker: no replicated state to hand over).
  static Result<std::unique_ptr<PartitionSnapshotExport>> open(const Store& store,
                                                               uint32_t partition,
                                                               PartitionOfId partition_of);
  ~PartitionSnapshotExport();  // releases the snapshot
  PartitionSnapshotExport(const PartitionSnapshotExport&) = delete;
  PartitionSnapshotExport& operator=(const PartitionSnapshotExport&) = delete;

  uint32_t partition() const { return partition_; }
  uint64_t lsn() const { return lsn_; }
  // The next chunk (the first is index 0; the one flagged last ends the
  // snapshot), or nullopt after the last. "storage_corrupt" for a malformed
  // row, "storage_error" when RocksDB fails.
  Result<std::optional<std::string>> next_chunk(size_t max_bytes = kSnapshotChunkBytes);
  uint64_t rows() const { return rows_; }    // rows handed out so far
  uint64_t bytes() const { return bytes_; }  // chunk bytes handed out so far

 private:
  PartitionSnapshotExport(const Store& store, uint32_t partition, PartitionOfId partition_of);
  const Store& store_;
  uint32_t partition_;
  PartitionOfId partition_of_;
  const rocksdb::Snapshot* snapshot_ = nullptr;
  uint64_t lsn_ = 0;
  size_t stage_ = 0;          // which range is being read (partition_snapshot.cpp)
  std::string resume_after_;  // the last key handed out in this stage; "" = from its start
  bool resume_ = false;
  uint32_t index_ = 0;
  bool done_ = false;
  uint64_t rows_ = 0;
  uint64_t bytes_ = 0;
};

// The header of a chunk, after its checks (CRC, format, row framing).
struct SnapshotChunkInfo {
  uint32_t partition = 0;
  uint64_t lsn = 0;
  uint32_t index = 0;
  bool last = false;
  uint32_t rows = 0;
};
Result<SnapshotChunkInfo> inspect_chunk(std::string_view chunk);

class PartitionSnapshotImport {
 public:
  // Refuses a store holding an applied marker of P ("invalid_argument"),
  // then deletes every row of P it holds.
  static Result<std::unique_ptr<PartitionSnapshotImport>> begin(Store& store, uint32_t partition,
                                                                PartitionOfId partition_of);
  // The chunks in order (index 0, 1, ...), all of one partition and lsn.
  // "storage_corrupt" for a damaged chunk, one out of order, of another
  // partition or lsn, or holding a row that is not P's; the store's refusal
  // while it refuses writes.
  Status add(std::string_view chunk);
  // After the last chunk: writes P's applied marker (synced) and returns
  // the lsn. "invalid_argument" before the last chunk arrived.
  Result<uint64_t> finish();

 private:
  PartitionSnapshotImport(Store& store, uint32_t partition, PartitionOfId partition_of);
  Store& store_;
  uint32_t partition_;
  PartitionOfId partition_of_;
  uint64_t lsn_ = 0;
  uint32_t next_index_ = 0;
  bool last_seen_ = false;
  bool finished_ = false;
};

// Deletes every row of P and its applied marker (the marker first, in its
// own synced batch, so a crash leaves "rows but no marker"). For begin(),
// and for a replica that stops holding P.
Status drop_partition(Store& store, uint32_t partition, const PartitionOfId& partition_of);

}  // namespace yantra::storage
