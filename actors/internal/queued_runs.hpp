// QueuedRuns: the runs that wait for a slot of their flow
// (`max_concurrent_executions`), stored as rows of storage::RunQueue so a
// restart keeps them. Admission (admission.hpp) counts the slots and decides
// who queues; this class stores queued runs, starts them as slots free up
// (oldest first), cancels them and rebuilds the counts at recovery.
//
// Writes go through the run's partition log (`append`, since 0.7): the
// queue row in the request that queues the run, and its removal in the
// request that cancels it (or in the started execution's first batch), so
// in a cluster every replica of the partition holds its queue and a new
// leader finds it.
//
// Threads: every method reads the store, so none runs on a CAF scheduler
// thread. drain() and recover() run on the I/O pool; enqueue() and
// cancel() on the caller's thread (an I/O-pool or admin thread), and their
// `done` on a log thread. One drain at a time (mu_), so two drains never
// pick the same run; enqueue() hands its request to the log under the same
// lock, so within a partition queue_seq order is commit order and a drain
// never sees a newer row of it before an older one. A cancel marks its run
// under mu_ until its request committed: a drain skips it meanwhile, and a
// run a drain handed to a start cannot be cancelled as queued.
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
#include <unordered_set>
#include <utility>

#include "actors/engine.hpp"
#include "actors/internal/execution_actor.hpp"

namespace yantra::storage {
class RunQueue;
struct WriteRequest;
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
  // Writes a request through the log of its partition (request.partition):
  // a refusal (the partition is not led here) is returned and `done` is
  // never called; else `done` gets the outcome once the request is durable
  // (committed, in a cluster) or failed, on a log thread, and must not block.
  using DoneFn = std::function<void(const Status&)>;
  using AppendFn = std::function<Status(storage::WriteRequest, DoneFn)>;

  QueuedRuns(storage::RunQueue& queue, Admission& admission, uint32_t partition_count,
             ResolveFn resolve, DispatchFn dispatch, NotifyFn notify, AppendFn append,
             LedFn led = {})
      : queue_(queue),
        admission_(admission),
        partition_count_(partition_count),
        resolve_(std::move(resolve)),
        dispatch_(std::move(dispatch)),
        notify_(std::move(notify)),
        append_(std::move(append)),
        led_(std::move(led)) {}

  // Stores a run that must wait (status "queued"), admitted as kQueue;
  // `done` gets the outcome (see AppendFn; a refusal is passed to it at
  // once). The caller then drains its flow: a slot may have freed while the
  // row was written.
  void enqueue(const std::string& execution_id, const RunRequest& request, DoneFn done);
  // Starts queued runs of one flow, oldest first, while it has free slots.
  void drain(const std::string& tenant, const std::string& flow_id);
  // A queued run has no actor and no events: cancelling removes its row and
  // marks its summary; its watchers hear of it like of any end. "conflict"
  // when the run is already leaving the queue (or being cancelled). `done`
  // as for enqueue().
  void cancel(const v1::ExecutionSummary& summary, const std::string& reason, DoneFn done);
  // At open, after the running executions were counted (so slots are
  // known): counts what waits and starts what may run.
  void recover();
  // The same for the rows of one partition (it became led here; other
  // leaders wrote its rows, so the seq counter is seeded above them first).
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
  const AppendFn append_;
  const LedFn led_;
  std::mutex mu_;
  std::unordered_set<std::string> cancelling_;  // execution ids; under mu_
};

}  // namespace yantra::detail
