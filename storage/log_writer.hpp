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
#include "storage/partition_log.hpp"
#include "storage/store.hpp"
#include "yantra/v1/events.pb.h"

namespace yantra::storage {

// The single-node PartitionLog (storage/partition_log.hpp): group commit
// into the local store.
class LogWriter final : public PartitionLog {
 public:
  // max_batch_requests bounds one WriteBatch (latency under overload).
  LogWriter(Store& store, uint32_t partition, size_t max_batch_requests = 4096);
  ~LogWriter() override;  // commits what is queued, then joins the thread
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Thread-safe, never blocks on I/O. The callback gets ok once the request
  // is durable (per the store's durability mode), or the write error:
  // "store_read_only" once any write of the store failed, "invalid_argument"
  // for a partition above 0xFFFF, an execution id not of 1..255 bytes or an
  // outbox row without an id (that request only). Keys use
  // request.partition, not partition().
  void append(WriteRequest request, Callback done) override;

  // Test hook simulating power loss: queued requests are dropped without
  // their callbacks running, and later appends are silently dropped too.
  void halt() override;

  WriterStats stats() const override;
  uint32_t partition() const override { return partition_; }

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

// One LogWriter per partition, on the local store (the default of
// EngineOptions::partition_logs).
class LocalPartitionLogs final : public PartitionLogFactory {
 public:
  Result<std::unique_ptr<PartitionLog>> open(Store& store, uint32_t partition) override {
    return std::unique_ptr<PartitionLog>(std::make_unique<LogWriter>(store, partition));
  }
};

}  // namespace yantra::storage
