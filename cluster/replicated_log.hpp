// ReplicatedPartitionLog: the partition leader's storage::PartitionLog in a
// cluster. It turns the actors' WriteRequests into numbered batches, sends
// each to every replica of the leader's open segment and commits a batch
// once a write quorum holds it durably; only then does it apply the batch to
// the local state and answer the actors (docs/cluster.md, "The data path";
// the invariants in docs/replicated-log.md).
//
// How, and why so:
// - One thread per partition (like LogWriter): it takes everything queued,
//   encodes it as one PartitionBatch (lsn = last + 1, this epoch) and hands
//   it to the replicas; it also applies committed batches in lsn order and
//   runs their callbacks. At most `max_uncommitted` batches are in flight;
//   while the window is full requests queue up, so batches grow with load
//   and one replica fsync is shared by everything in them (group commit).
// - One outstanding append per replica, carrying every batch that replica
//   has not acknowledged yet (up to `max_append_bytes`). Appends to a
//   replica therefore arrive in order with no hole (invariant 2) without
//   relying on the transport's ordering; a refusal "segment_gap" moves the
//   replica back to the lsn it expects, a failed request (peer down,
//   timeout) is resent after `retry` from the last acknowledged lsn (a
//   replica accepts again a prefix it already holds).
// - Commit = the W-th highest acknowledged lsn over the replicas, the
//   leader's own copy counted like any other (it goes through its own log
//   server). The commit point rides on the next append; when nothing else
//   is sent, a replica that holds everything gets an empty append (a
//   commit notice) after `notice_delay`, so followers apply it too.
// - Deposed: a replica answering segment_sealed (or segment_wrong_epoch)
//   means a newer epoch sealed this segment; `may_write` false means the
//   node lease may expire before etcd hears from us (invariant 8). Either
//   way the log stops appending at once, fails every request not committed
//   with not_partition_leader (503: the client retries and reaches the new
//   leader) and calls on_deposed once; nothing it still holds can commit,
//   because sealed replicas refuse it (invariant 3).
// - Batches stay in memory until every replica acknowledged them or the
//   retained bytes pass `max_retained_bytes`; a replica further behind is
//   caught up from this node's own copy of the segment (SegmentStore).
// - Applying on the leader skips the fsync: the batch is already durable in
//   this node's segment copy (and on W nodes), and after a crash the node
//   re-applies from that copy up to the commit point it learns.
//
// Threads: append() from any thread, never blocks on I/O. Callbacks run on
// the log's thread. The rpc's completions may arrive on any thread (the
// transport's). The destructor stops the thread: it applies and answers
// what is committed, waits up to kStopGrace for the replies to appends in
// flight (what they commit is answered as committed), then fails the rest
// (not_partition_leader: it may still commit through the replicas, and the
// next leader recovers it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.hpp"
#include "storage/partition_log.hpp"

namespace yantra::cluster {

// Sends a serialized v1::LogRequest to `node`'s log service (its own log
// server for this node) and calls `done` once with the serialized LogReply
// or a transport error. Must not block; `done` may run on any thread.
using LogRpc = std::function<void(const std::string& node, std::string request,
                                  std::function<void(Result<std::string>)> done)>;

struct ReplicatedLogOptions {
  uint32_t partition = 0;
  int64_t epoch = 0;                  // = the segment this log writes
  std::vector<std::string> replicas;  // node ids, this node among them
  uint32_t write_quorum = 1;
  uint64_t first_lsn = 1;  // the segment's first lsn: the next batch's
  size_t max_uncommitted = 4;
  size_t max_batch_requests = 4096;
  size_t max_append_bytes = 1u << 20;
  size_t max_retained_bytes = 64u << 20;
  std::chrono::milliseconds retry{100};
  std::chrono::milliseconds notice_delay{5};
  // Checked before every append sent and every commit: false = stop now
  // (the node lease may lapse before etcd hears from us).
  std::function<bool()> may_write;
  // Called once, on the log's thread, when the log stopped because it was
  // deposed or may_write said no: the owner steps down (releases the
  // partition, resigns). Must not block long or destroy the log.
  std::function<void(const Status& why)> on_deposed;
};

struct ReplicatedLogStats {
  uint64_t next_lsn = 0;
  uint64_t committed_lsn = 0;
  uint64_t applied_lsn = 0;
  bool deposed = false;
  struct Replica {
    std::string node;
    uint64_t acked_lsn = 0;
    uint64_t failures = 0;
  };
  std::vector<Replica> replicas;
};

class ReplicatedPartitionLog final : public storage::PartitionLog {
 public:
  // `store` outlives the log. Options are checked: at least one replica, W
  // in 1..replicas, epoch >= 1, first_lsn >= 1 (kInvalidArgument).
  static Result<std::unique_ptr<ReplicatedPartitionLog>> create(storage::Store& store,
                                                                ReplicatedLogOptions options,
                                                                LogRpc rpc);
  ~ReplicatedPartitionLog() override;
  ReplicatedPartitionLog(const ReplicatedPartitionLog&) = delete;
  ReplicatedPartitionLog& operator=(const ReplicatedPartitionLog&) = delete;

  void append(storage::WriteRequest request, Callback done) override;
  void halt() override;
  storage::WriterStats stats() const override;
  uint32_t partition() const override { return options_.partition; }

  ReplicatedLogStats replication() const;
  // Blocks until everything appended before the call is committed and
  // applied, or the log stopped; for tests and a clean handover.
  Status flush(std::chrono::milliseconds timeout);

 private:
  struct Batch {
    uint64_t lsn = 0;
    std::string bytes;
    std::vector<Callback> callbacks;
    size_t requests = 0;
    size_t events = 0;
    std::chrono::steady_clock::time_point sent_at;
  };
  struct Replica {
    std::string node;
    uint64_t acked = 0;        // highest lsn it holds durably (this segment)
    uint64_t told_commit = 0;  // the commit point it was last sent
    bool in_flight = false;
    bool needs_catch_up = false;  // behind what memory holds: read our copy
    std::chrono::steady_clock::time_point retry_at{};
    uint64_t failures = 0;
  };
  struct Shared;  // outlives the log while rpcs are in flight
  // An rpc decided under mu_, started after it is released.
  struct Send {
    size_t replica = 0;
    std::string node;
    std::string payload;
    uint64_t first = 0;
    size_t count = 0;
    uint64_t commit = 0;
  };

  ReplicatedPartitionLog(storage::Store& store, ReplicatedLogOptions options, LogRpc rpc);
  void run();
  // With mu_ held: sends to replica i what it lacks, if it may.
  void pump_locked(size_t i, std::chrono::steady_clock::time_point now);
  void send_locked(size_t i, uint64_t first_lsn, std::vector<std::string> batches);
  void on_reply(size_t i, uint64_t first_sent, size_t count, uint64_t commit_sent,
                Result<std::string> reply);
  void advance_commit_locked();
  void depose_locked(Status why);
  // Reads lsns [from, to] of this segment from the local copy (unlocked).
  std::vector<std::string> read_local(uint64_t from, uint64_t to);

  storage::Store& store_;
  const ReplicatedLogOptions options_;
  LogRpc rpc_;
  std::shared_ptr<Shared> shared_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<storage::WriteRequest, Callback>> queue_;
  std::deque<Batch> batches_;  // retained_first_ .. next_lsn_ - 1
  size_t retained_bytes_ = 0;
  std::vector<Replica> replicas_;
  std::vector<Send> pending_sends_;
  uint64_t next_lsn_;
  uint64_t committed_;
  uint64_t applied_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point stop_by_{};  // when stopping: the grace's end
  bool halted_ = false;
  bool deposed_ = false;
  bool deposed_told_ = false;
  Status deposed_why_;
  storage::WriterStats stats_;
  std::thread thread_;
};

}  // namespace yantra::cluster
