// Group commit for one partition's event log (the LevelDB writers-queue idea):
// execution actors hand in WriteRequests from any thread; one dedicated
// writer thread takes everything queued, writes it as one rocksdb::WriteBatch
// with one sync (durability "sync") and then runs each request's callback.
// While a sync is in progress new requests queue up, so batches grow with
// load and the cost of an fsync is shared by every execution in the batch.
//
// Callbacks run on the writer thread and must not block (actors just send a
// message). Requests of one partition are committed in submission order.
// Blocking I/O never happens on the caller's thread, so CAF scheduler threads
// may call append().
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/result.hpp"
#include "storage/store.hpp"
#include "yantra/v1/events.pb.h"

namespace yantra::storage {

// One callback delivery owed (since 0.3): the outbox row "o" | due_ms | id
// holding `entry` (a serialized yantra.v1.OutboxEntry whose id and next_ms
// are `id` and `due_ms`).
struct OutboxRow {
  int64_t due_ms = 0;
  std::string id;
  std::string entry;
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
};

struct WriterStats {
  uint64_t batches = 0;
  uint64_t requests = 0;
  uint64_t events = 0;
  uint64_t sync_ns_total = 0;  // time spent in DB::Write
  uint64_t max_batch_requests = 0;
};

class LogWriter {
 public:
  using Callback = std::function<void(const Status&)>;

  // max_batch_requests bounds one WriteBatch (latency under overload).
  LogWriter(Store& store, uint32_t partition, size_t max_batch_requests = 4096);
  ~LogWriter();  // commits what is queued, then joins the thread
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Thread-safe, never blocks on I/O. The callback gets ok once the request
  // is durable (per the store's durability mode), or the write error:
  // "store_read_only" once any write of the store failed, "invalid_argument"
  // for a partition above 0xFFFF, an execution id not of 1..255 bytes or an
  // outbox row without an id (that request only). Keys use
  // request.partition, not partition().
  void append(WriteRequest request, Callback done);

  // Test hook simulating power loss: queued requests are dropped without
  // their callbacks running, and later appends are silently dropped too.
  void halt();

  WriterStats stats() const;
  uint32_t partition() const { return partition_; }

 private:
  void run();

  Store& store_;
  uint32_t partition_;
  size_t max_batch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // A vector, not a deque: the writer swaps it with its own (cleared) one,
  // so both keep their capacity and steady state allocates nothing per
  // request.
  std::vector<std::pair<WriteRequest, Callback>> queue_;
  bool stopping_ = false;
  bool halted_ = false;
  WriterStats stats_;
  std::thread thread_;
};

}  // namespace yantra::storage
