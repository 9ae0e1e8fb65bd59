// QueuedRuns: the runs that wait for a slot of their flow
// (`max_concurrent_executions`), stored as rows of storage::RunQueue so a
// restart keeps them. Admission (admission.hpp) counts the slots and decides
// who queues; this class stores queued runs, starts them as slots free up
// (oldest first), cancels them and rebuilds the counts at recovery.
//
// Threads: every method reads or writes the store, so none runs on a CAF
// scheduler thread. drain() and recover() run on the I/O pool; enqueue() and
// cancel() on the caller's thread (an I/O-pool or admin thread). One drain
// at a time (mu_), so two drains never pick the same run; enqueue() commits
// under the same lock, so queue_seq order is commit order and a drain never
// sees a newer row before an older one.
//
// Partitions: a queued run belongs to the partition of its execution id
// (its first batch, which deletes the row, goes through that partition's
// log), so only a node leading that partition starts it. drain() skips
// rows of partitions the `led` predicate refuses (null = all led, the
// single node); recover(p) and release(p) add and remove one partition's
// rows from the counts when leadership comes and goes. A node looks at the
// oldest 1024 rows of a flow per drain step, so a flow whose oldest 1024
// queued runs all belong to other nodes' partitions waits for them here.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "actors/engine.hpp"
#include "actors/internal/execution_actor.hpp"

namespace yantra::storage {
class RunQueue;
}  // namespace yantra::storage

namespace yantra::detail {

class Admission;

class QueuedRuns {
 public:
  // A flow version by (tenant, flow, version; 0 = newest), with its number.
  using ResolveFn = std::function<Result<std::pair<uint32_t, std::shared_ptr<const Flow>>>(
      const std::string&, const std::string&, uint32_t)>;
  // Hands a run leaving the queue to its partition.
  using DispatchFn = std::function<void(StartCommand)>;
  // Tells the watchers of an execution that it ended (a cancelled run).
  using NotifyFn = std::function<void(const ExecutionResult&)>;
  // Whether this node leads a partition (null = every partition).
  using LedFn = std::function<bool(uint32_t)>;

  QueuedRuns(storage::RunQueue& queue, Admission& admission, uint32_t partition_count,
             ResolveFn resolve, DispatchFn dispatch, NotifyFn notify, LedFn led = {})
      : queue_(queue),
        admission_(admission),
        partition_count_(partition_count),
        resolve_(std::move(resolve)),
        dispatch_(std::move(dispatch)),
        notify_(std::move(notify)),
        led_(std::move(led)) {}

  // Stores a run that must wait (status "queued"). The caller then drains
  // its flow: a slot may have freed while the row was written.
  Status enqueue(const std::string& execution_id, const RunRequest& request);
  // Starts queued runs of one flow, oldest first, while it has free slots.
  void drain(const std::string& tenant, const std::string& flow_id);
  // A queued run has no actor and no events: cancelling removes its row and
  // marks its summary; its watchers hear of it like of any end. "conflict"
  // when the run is already leaving the queue.
  Status cancel(const v1::ExecutionSummary& summary, const std::string& reason);
  // At open, after the running executions were counted (so slots are
  // known): counts what waits and starts what may run.
  void recover();
  // The same for the rows of one partition (it became led here).
  void recover(uint32_t partition);
  // Its leadership was lost: its rows no longer count here (their new
  // leader counts them). Rows already handed to a start stay uncounted:
  // that start fails and gives its slot back.
  void release(uint32_t partition);

 private:
  void start(const v1::QueuedRun& run);
  // Counts (and drains) the rows of the partitions `which` selects.
  void recover_where(const std::function<bool(uint32_t)>& which);
  uint32_t partition_of_run(const std::string& execution_id) const;

  storage::RunQueue& queue_;
  Admission& admission_;
  const uint32_t partition_count_;
  const ResolveFn resolve_;
  const DispatchFn dispatch_;
  const NotifyFn notify_;
  const LedFn led_;
  std::mutex mu_;
};

}  // namespace yantra::detail
