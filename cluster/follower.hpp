// FollowerApplier: a replica applies the committed batches of the
// partitions it does not lead to its own store, in lsn order, so that its
// state follows the leader's (docs/cluster.md, "The data path", step 5) and
// a new leader starts with at most the unapplied tail to catch up.
//
// The cue is the log server's: each append or commit notice a replica
// accepts carries the writer's commit point for its segment
// (LogServer::Options::on_committed). Batches from the writer's segment are
// read from this node's own copy, and only up to that commit point — a
// copy may hold an unacknowledged tail, which is never applied. Batches of
// earlier segments (a replica that was down for a whole epoch, or is new)
// come from `read_older` (the chain in etcd and the segment's replicas:
// read_committed in log_recovery.hpp).
//
// A replica whose next batch is no longer in the log (applied + 1 is below
// the first LSN of the chain's oldest live segment: the batches it needs were
// trimmed, invariant 7) installs the partition's snapshot instead
// (`Snapshots`: snapshot_transfer.hpp, from a replica of the newest segment,
// the others in turn on failure, then a growing pause) and follows from the
// snapshot's lsn + 1. A replica that still holds an older state of the
// partition drops it first (an import only goes into a store without the
// partition's marker): that state could never be advanced from the log.
//
// While this node leads a partition its ReplicatedPartitionLog applies it;
// pause(p) waits for an apply of p in progress and stops the applier for p
// until resume(p).
//
// Threads: on_committed() from log server workers, never blocks; one
// applier thread does the writes (RocksDB, not synced: the segment copy is
// the durable record). pause/resume from cluster threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/result.hpp"

namespace yantra::storage {
class Store;
}  // namespace yantra::storage

namespace yantra::cluster {

class FollowerApplier {
 public:
  // Committed batches from..to of `partition` from elsewhere (at least one,
  // or an error); called on the applier thread, may block.
  using ReadOlder = std::function<Result<std::vector<std::string>>(uint32_t partition,
                                                                   uint64_t from, uint64_t to)>;

  // Where the log of a partition starts now, and who holds its state.
  struct SnapshotSource {
    uint64_t first_live = 1;            // first LSN of the chain's oldest (untrimmed) segment
    std::vector<std::string> replicas;  // to ask, in order (of the newest segment)
  };
  struct Installed {
    uint64_t lsn = 0;    // the partition's applied marker after the import
    uint64_t bytes = 0;  // snapshot bytes received
  };
  struct Snapshots {
    // Both called on the applier thread, may block (etcd, rpcs, RocksDB).
    std::function<Result<SnapshotSource>(uint32_t partition)> locate;
    std::function<Result<Installed>(uint32_t partition, const std::string& node)> install;
    // The partition of an execution id (to drop a lagging copy's rows).
    std::function<uint32_t(std::string_view execution_id)> partition_of;
    // After every replica failed: wait backoff_min, doubling up to backoff_max.
    std::chrono::milliseconds backoff_min{200};
    std::chrono::milliseconds backoff_max{5000};
  };

  // Without `snapshots.locate`, older batches always come from read_older.
  FollowerApplier(storage::Store& store, ReadOlder read_older);
  FollowerApplier(storage::Store& store, ReadOlder read_older, Snapshots snapshots);
  ~FollowerApplier();
  FollowerApplier(const FollowerApplier&) = delete;
  FollowerApplier& operator=(const FollowerApplier&) = delete;

  void on_committed(uint32_t partition, uint64_t segment, uint64_t committed_lsn);
  void pause(uint32_t partition);
  void resume(uint32_t partition);
  // What this node applied of `partition` (the store's marker).
  uint64_t applied(uint32_t partition) const;
  // The highest commit point heard for `partition` (0 = none yet).
  uint64_t heard(uint32_t partition) const;

 private:
  struct Target {
    uint64_t segment = 0;
    uint64_t committed = 0;
  };
  void run();
  // Applies what it can of `partition` up to `target`; false on an error
  // (retried after a pause).
  bool apply(uint32_t partition, Target target);
  // Installs a snapshot that reaches at least first_live - 1; its lsn, or
  // an error after trying every replica (then backs off).
  Result<uint64_t> install(uint32_t partition, const SnapshotSource& source);

  struct Backoff {
    int failures = 0;
    std::chrono::steady_clock::time_point not_before{};
  };

  storage::Store& store_;
  ReadOlder read_older_;
  Snapshots snapshots_;
  std::map<uint32_t, Backoff> backoff_;  // applier thread only
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint32_t, Target> targets_;
  std::set<uint32_t> dirty_;
  std::set<uint32_t> paused_;
  uint32_t applying_ = UINT32_MAX;  // the partition being applied now
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace yantra::cluster
