// RunQueue: runs accepted while their flow is at its concurrency limit
// (since 0.3), in the `executions` column family
// (docs/event-log-format.md):
//   "q" | tenant | 0x00 | flow_id | 0x00 | queue_seq(be64) -> QueuedRun
// One flow's rows are one prefix, oldest (lowest seq) first. queue_seq is a
// store-wide counter seeded at open from the rows present: a seq freed by a
// dequeue may be reused after a restart, which is harmless since only the
// order among rows present matters.
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

 private:
  friend class Store;
  explicit RunQueue(const internal::Db& db) : db_(db) {}
  // Seeds next_seq_ from the queue rows present (at open).
  Status init_seq();
  const internal::Db& db_;
  std::atomic<uint64_t> next_seq_{1};
};

}  // namespace yantra::storage
