// A partition's group-commit batch as bytes, and applying a committed one.
//
// In a cluster the leader of a partition encodes each group commit (the
// WriteRequests LogWriter would write in one WriteBatch) as one
// yantra.v1.PartitionBatch (proto/yantra/v1/replication.proto) numbered by
// its LSN, replicates the bytes, and once a write quorum holds them every
// node applies the batch to its own store, in LSN order. Applying writes the
// rows exactly as LogWriter writes them (one shared function,
// internal/request_rows.hpp), so a node's state is the same whichever path
// wrote it.
//
// The applied position: apply_committed() writes, in the same WriteBatch as
// the rows, the partition's "applied lsn" marker (executions CF,
// "a" | partition(be16) -> lsn(be64); docs/event-log-format.md). After a
// crash a node therefore knows exactly which batches its state holds:
// replaying an applied batch is a no-op, and a batch beyond the next one is
// refused ("log_gap"), so the state is always the fold of LSNs 1..applied
// with no hole.
//
// Bytes from the network or a disk are untrusted: decode() turns anything
// that is not a well-formed batch into "storage_corrupt", never a crash.
// encode() refuses what decode() would refuse, so a leader cannot replicate
// a batch that no replica could apply (which would stop the partition's log
// at that LSN for good).
//
// Threads: encode and decode are pure. apply_committed() blocks on a
// RocksDB write and fsync (per the store's durability mode): call it off
// CAF scheduler threads, and for one partition from one thread at a time
// (the partition's applier), as LogWriter is one thread per partition.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "storage/partition_log.hpp"

namespace rocksdb {
class WriteBatch;
}  // namespace rocksdb

namespace yantra::storage {

class Store;

// The formats PartitionBatch.format this version writes and reads: 1, or 2
// for a batch carrying audit rows (since 0.6), which readers older than 0.6
// refuse rather than apply without them.
inline constexpr uint32_t kPartitionBatchFormat = 1;
inline constexpr uint32_t kPartitionBatchFormatAudit = 2;
// Format 3 (since 0.7): requests may carry a queued run (WriteRequest::queued_run).
inline constexpr uint32_t kPartitionBatchFormatQueue = 3;

struct DecodedBatch {
  uint32_t partition = 0;
  uint64_t lsn = 0;
  uint64_t epoch = 0;
  std::vector<WriteRequest> requests;  // in commit order
  // summaries[i]: requests[i].summary as the writer serialized it ("" when
  // the request has none). apply() writes these bytes, not a
  // re-serialization, so every node stores the writer's bytes.
  std::vector<std::string> summaries;
};

// The batch `lsn` (from 1) of `partition`, written by the leader of `epoch`.
// Every request must pass the LogWriter's validation (a partition of 16
// bits, an execution id of 1..255 bytes, outbox rows with ids) and be of
// `partition`; otherwise "invalid_argument" naming the request, and nothing
// is encoded. Event, snapshot and outbox bytes are copied once into the
// message and once into the result. The result ends with the CRC32C of the
// bytes before it (replication.proto).
Result<std::string> encode(uint32_t partition, uint64_t lsn, uint64_t epoch,
                           const std::vector<WriteRequest>& requests);

// Parses and validates a batch: its closing CRC32C, format 1, lsn >= 1, partition of 16 bits,
// every request valid (as for encode) and of the batch's partition, every
// summary a parseable ExecutionSummary. Anything else is "storage_corrupt".
Result<DecodedBatch> decode(std::string_view bytes);

// CRC32C (Castagnoli) of `data`, as a batch's trailer holds it.
uint32_t crc32c(std::string_view data);

// Adds the rows of every request of `batch` to `write_batch` (the store's
// column families), exactly as LogWriter adds them: not the applied marker.
// "storage_error" when the WriteBatch refuses a row (it outgrew its limit).
Status apply(const DecodedBatch& batch, const Store& store, rocksdb::WriteBatch& write_batch);

// Applies the committed batch `lsn` of `partition` (its bytes as encoded) to
// `store`: its rows and the partition's applied marker in one WriteBatch,
// synced unless the store is Durability::kAsync. Returns
//   ok                 applied now, or already (lsn <= applied_lsn: no-op);
//   "log_gap"          lsn > applied_lsn + 1: a batch before it is missing;
//   "storage_corrupt"  the bytes do not decode, or are another partition's
//                      or another lsn's batch;
//   the store's refusal while it is read-only or below its free-space floor
//   (read_only_error()), checked first; a failed write latches the store as
//   LogWriter's does (Store::write_failed).
//
// `sync` false skips the fsync even on a synced store: for a node whose
// segment copy already holds the batch durably (a cluster replica), a lost
// apply is redone from that copy after a crash, as the marker says.
Status apply_committed(Store& store, uint32_t partition, uint64_t lsn, std::string_view bytes,
                       bool sync = true);

// The same for consecutive committed batches first_lsn.. (batches[i] is lsn
// first_lsn + i) in one WriteBatch: a replica applying what several commit
// notices made ready pays one RocksDB write for all of them. Batches already
// applied are skipped; the rest must follow the applied marker without a
// hole ("log_gap"). A batch that does not decode fails the whole call and
// applies nothing.
Status apply_committed(Store& store, uint32_t partition, uint64_t first_lsn,
                       std::span<const std::string> batches, bool sync = true);

// Whether LogWriter and encode() accept the request: a partition of 16 bits,
// an execution id of 1..255 bytes, outbox rows with ids. A writer checks
// each request before encoding a batch, so one bad request fails alone.
bool valid_write_request(const WriteRequest& request);

// The LSN of the last batch of `partition` applied to `store`; 0 = none.
// "invalid_argument" for a partition above 0xFFFF, "storage_corrupt" when
// the marker does not parse.
Result<uint64_t> applied_lsn(const Store& store, uint32_t partition);

}  // namespace yantra::storage
