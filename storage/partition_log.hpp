// PartitionLog: the append path of one partition's event log, as the
// partition and execution actors use it: hand over everything one execution
// wants durable at once (a WriteRequest) and be told when it is durable.
// Declared below cluster/ so that the actors depend on this interface, not
// on how the log is kept: today's single-node implementation is LogWriter
// (group commit into the local RocksDB); the cluster puts a replicated,
// sealed segment log behind the same interface, where "durable" means
// committed on a write quorum.
//
// PartitionLogFactory makes one log per partition; the composition root
// (cli/serve, through EngineOptions::partition_logs) chooses it, and the
// engine uses LocalPartitionLogs (log_writer.hpp) when none is given.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "yantra/v1/events.pb.h"
#include "yantra/v1/tenancy.pb.h"

namespace yantra::storage {

class Store;

// One callback delivery owed (since 0.3): the outbox row "o" | due_ms | id
// holding `entry` (a serialized yantra.v1.OutboxEntry whose id and next_ms
// are `id` and `due_ms`).
struct OutboxRow {
  int64_t due_ms = 0;
  std::string id;
  std::string entry;
};

// A row of the `audit` column family written with the partition's log (since
// 0.6): a link of one of the partition's audit chains or a relay's
// high-water mark, both made by storage::AuditChainer (audit_log.hpp). Only
// keys "p" | partition(be16) | ... and "w" | partition(be16) | ... of the
// request's partition are valid, so a batch cannot touch another
// partition's chains or the single node's "c" chains.
struct AuditRow {
  std::string key;
  std::string value;
};

// Everything one execution wants durable at once.
struct WriteRequest {
  uint32_t partition = 0;
  std::string execution_id;
  // (seq, serialized yantra.v1.Event); seqs are dense and ascending.
  std::vector<std::pair<uint64_t, std::string>> events;
  // Upserts the summary row; a non-terminal status sets the active marker of
  // (partition, id), a terminal one removes it.
  std::optional<v1::ExecutionSummary> summary;
  // The first request of an execution: also writes its listing row (tenant
  // and flow from `summary`) and, if set, its idempotency row, atomically
  // with ExecutionStarted.
  bool created = false;
  std::string idempotency_key;
  std::string parent_execution_id;  // a fork: links parent -> this execution
  // A snapshot of the state after event `first` (yantra.v1.Snapshot bytes).
  std::optional<std::pair<uint64_t, std::string>> snapshot;
  // An executions-CF key deleted in the same batch (since 0.3): a queued
  // run's row (RunQueue::row_key), so that its ExecutionStarted and its
  // leaving the queue commit together; a crash can neither lose the run nor
  // start it twice. "" = nothing.
  std::string delete_key;
  // Callback deliveries the events of this request cause (since 0.3),
  // written in the same WriteBatch: a callback is owed exactly when its
  // event is in the log, never lost by a crash and never invented.
  std::vector<OutboxRow> outbox;
  // Audit rows committed in this batch (since 0.6). A request carrying only
  // audit rows has an empty execution_id and nothing else set.
  std::vector<AuditRow> audit;
  // A run waiting for a slot of its flow (since 0.7, RunQueue::prepare_enqueue):
  // its queue row, written with `summary` (status "queued", no active
  // marker: it has no events yet) and, as for `created`, its listing and
  // idempotency rows. Written through the partition's log so that, in a
  // cluster, every replica holds the queue and a new leader finds it.
  std::optional<v1::QueuedRun> queued_run;
};

struct WriterStats {
  uint64_t batches = 0;
  uint64_t requests = 0;
  uint64_t events = 0;
  uint64_t sync_ns_total = 0;  // time spent in DB::Write
  uint64_t max_batch_requests = 0;
};

class PartitionLog {
 public:
  using Callback = std::function<void(const Status&)>;

  virtual ~PartitionLog() = default;

  // Thread-safe, never blocks on I/O. `done` gets ok once the request is
  // durable, or the error; it runs on a thread of the log (never the
  // caller's synchronously) and must not block.
  virtual void append(WriteRequest request, Callback done) = 0;
  // Test hook simulating power loss: what is not yet durable is dropped
  // without its callback, and later appends are dropped too.
  virtual void halt() = 0;
  virtual WriterStats stats() const = 0;
  virtual uint32_t partition() const = 0;
};

class PartitionLogFactory {
 public:
  virtual ~PartitionLogFactory() = default;
  // The log of `partition` over `store` (which outlives it).
  virtual Result<std::unique_ptr<PartitionLog>> open(Store& store, uint32_t partition) = 0;
};

}  // namespace yantra::storage
