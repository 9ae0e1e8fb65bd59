// RunQueue: runs accepted while their flow is at its concurrency limit
// (since 0.3), in the `executions` column family
// (docs/event-log-format.md):
//   "q" | tenant | 0x00 | flow_id | 0x00 | queue_seq(be64) -> QueuedRun
// One flow's rows are one prefix, oldest (lowest seq) first. queue_seq is a
// store-wide counter seeded at open from the rows present (and raised above
// them by reseed() when a cluster node starts leading a partition whose rows
// other leaders wrote): a seq freed by a dequeue may be reused after a
// restart, which is harmless since only the order among rows present matters.
//
// A queued run leaves the queue in the LogWriter batch that holds its
// ExecutionStarted (WriteRequest::delete_key = row_key(run)), so a crash can
// neither lose the run nor start it twice.
//
// Writes: synced unless the store is Durability::kAsync. The caller
// serialises the dequeue and cancel of one flow's queue (a single admission
// point per flow); the store only keeps every step atomic.
//
// Thread-safety: every method may be called from any thread. Owned by Store
// (store.run_queue()).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "storage/partition_log.hpp"
#include "storage/store.hpp"
#include "yantra/v1/events.pb.h"
#include "yantra/v1/tenancy.pb.h"

namespace yantra::storage {

class RunQueue {
 public:
  RunQueue(const RunQueue&) = delete;
  RunQueue& operator=(const RunQueue&) = delete;

  // Assigns run.queue_seq and writes, in one batch, the queue row, `summary`
  // (status "queued", as given), the listing row and the idempotency row
  // when run.idempotency_key is set. No active marker: a queued run has no
  // events yet; recovery finds it via queued_flows(). summary must name the
  // same execution, tenant and flow as run.
  Result<v1::QueuedRun> enqueue(v1::QueuedRun run, const v1::ExecutionSummary& summary);
  // One flow's queued runs, oldest first, at most `limit`.
  Result<std::vector<v1::QueuedRun>> runs(std::string_view tenant, std::string_view flow_id,
                                          size_t limit) const;
  // Distinct (tenant, flow_id) with at least one queued run, in key order.
  Result<std::vector<std::pair<std::string, std::string>>> queued_flows() const;
  // Removes a run from its queue and writes `cancelled_summary`, one batch.
  // "not_found" when the queue row is gone (the run already started).
  Status cancel(const v1::QueuedRun& run, const v1::ExecutionSummary& cancelled_summary);
  // The executions-CF key of a run's queue row, for WriteRequest::delete_key.
  static std::string row_key(const v1::QueuedRun& run);

  // The same two writes as a WriteRequest for a partition's log (the engine
  // queues through it, so a cluster replicates the queue): enqueue() and
  // cancel() write exactly these rows (internal::add_request). The enqueue
  // request assigns run.queue_seq.
  Result<WriteRequest> prepare_enqueue(v1::QueuedRun run, const v1::ExecutionSummary& summary,
                                       uint32_t partition);
  Result<WriteRequest> prepare_cancel(const v1::QueuedRun& run,
                                      const v1::ExecutionSummary& cancelled_summary,
                                      uint32_t partition) const;
  // Seeds the counter above every row present again: a cluster node calls
  // it when it starts leading a partition, whose rows other leaders wrote.
  Status reseed() { return init_seq(); }

 private:
  friend class Store;
  explicit RunQueue(const internal::Db& db) : db_(db) {}
  // Seeds next_seq_ from the queue rows present (at open).
  Status init_seq();
  // Writes one prepared request's rows, synced as the store's writes are.
  Status write(const WriteRequest& request) const;
  const internal::Db& db_;
  std::atomic<uint64_t> next_seq_{1};
};

}  // namespace yantra::storage
