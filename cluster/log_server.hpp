// LogServer: this node as a replica of the replicated partition logs. It
// serves the transport's "log" service (LogRequest in, LogReply out;
// proto/yantra/v1/log_rpc.proto): a partition leader's appends, seals,
// recovery copies (repair), reads, truncations and info, each executed on
// storage::SegmentStore (docs/replicated-log.md has the rules).
//
// Why workers of its own: every mutating call syncs, and transport handlers
// run on CAF threads that must not block. Requests are queued by partition
// onto a fixed set of worker threads (partition mod workers), each serving
// its queue in arrival order, so the appends of one partition are written
// in the order the leader sent them — the ordered channel of invariant 2 —
// and one partition's slow fsync holds only its own stripe.
//
// An append without batches is a commit notice: the writer tells a replica
// that holds everything its new commit point (LogAppend.committed_lsn) when
// no batch is coming to carry it. It writes nothing; it is refused like an
// append once the segment is sealed (so an idle deposed writer learns it
// too), and answers not_found when the segment is not held here.
//
// A group (LogGroup: what one node's partition leaders have for this
// replica at once, cluster/append_pipe.hpp) is served on the sender's
// stripe: its appends that carry batches go to the store first, in one
// WriteBatch and one sync (SegmentStore::append_group), each answered as if
// alone; then its other requests (commit notices; a group from another
// sender could hold anything but a group) are served in order.
//
// Refusals (sealed, gap, wrong epoch, conflict) are answers, not transport
// errors: the reply carries the code and what the leader needs to act on it
// (the lsn to resend from, the epoch that sealed the segment). Only a
// payload that is not a LogRequest is refused as an error.
//
// Snapshots (LogSnapshot, since 0.9): with Options::snapshot_store set, the
// server also hands out partition snapshots of that store chunk by chunk
// (storage/partition_snapshot.hpp), for a new replica to start from. Each
// transfer is a session holding one export (a pinned RocksDB snapshot, which
// keeps old row versions from compaction): at most max_snapshot_sessions at
// once, each dropped after snapshot_idle_timeout without a request. A chunk
// is read on the partition's stripe, like a read of its log.
//
// Threads: handle() is called on transport threads and never blocks; the
// reply is sent from a worker. The destructor answers what is still queued
// with kUnavailable and joins the workers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/result.hpp"
#include "storage/partition_snapshot.hpp"

namespace yantra::storage {
class SegmentStore;
class Store;
struct SegmentInfo;
}  // namespace yantra::storage

namespace yantra::v1 {
class LogAppend;
class LogGroup;
class LogReply;
class LogRequest;
class LogSnapshot;
}  // namespace yantra::v1

namespace yantra::cluster {

class LogServer {
 public:
  using Reply = std::function<void(Result<std::string>)>;

  struct Options {
    size_t workers = 2;
    // A read answers at most this many bytes of batches (the first batch
    // always), whatever the request asks: the transport's bound on
    // unacknowledged bytes must hold a reply.
    size_t max_read_bytes = 4u << 20;
    // Called on the worker after each append (or commit notice) this
    // replica accepted, with the writer's commit point: the follower's cue
    // to apply committed batches (cluster/follower.hpp). Must not block long.
    std::function<void(uint32_t partition, uint64_t segment, uint64_t committed_lsn)> on_committed;
    // The store whose partitions LogSnapshot exports (null: refused with
    // kUnavailable) and the node's execution id -> partition function.
    const storage::Store* snapshot_store = nullptr;
    storage::PartitionOfId partition_of;
    size_t max_snapshot_sessions = 2;
    std::chrono::milliseconds snapshot_idle_timeout{30000};
  };

  LogServer(storage::SegmentStore& segments, Options options);
  ~LogServer();
  LogServer(const LogServer&) = delete;
  LogServer& operator=(const LogServer&) = delete;

  // The transport handler of the "log" service.
  void handle(const std::string& from_node, std::string payload, Reply reply);

  // One serialized LogRequest to its serialized LogReply, on the calling
  // thread (blocking: a worker's job; public for tests). kInvalidArgument
  // for a payload that is not a LogRequest.
  Result<std::string> serve(std::string_view payload);

 private:
  struct Job {
    std::unique_ptr<v1::LogRequest> request;  // null: the payload did not parse
    Reply reply;
  };
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Job> queue;
    bool stopping = false;
    std::thread thread;
  };
  void run(Worker& w);
  Result<std::string> serve(const v1::LogRequest* request);
  Result<std::string> serve_group(const v1::LogGroup& group);
  // An append's reply, and the follower's cue when the replica heard the
  // writer's commit point.
  void finish_append(const v1::LogAppend& a, const Result<storage::SegmentInfo>& after,
                     v1::LogReply& out);
  Result<storage::SegmentInfo> notice(uint32_t partition, uint64_t segment, uint64_t writer_epoch);
  void serve_snapshot(const v1::LogSnapshot& request, v1::LogReply& out);

  struct SnapshotSession {
    std::unique_ptr<storage::PartitionSnapshotExport> exporter;
    uint32_t next_index = 0;
    std::string last_chunk;  // answered again when asked again (a lost reply)
    std::chrono::steady_clock::time_point used;
  };

  storage::SegmentStore& segments_;
  const Options options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // Sessions are served from any worker (one per partition stripe).
  std::mutex snapshots_mu_;
  std::map<uint64_t, std::shared_ptr<SnapshotSession>> snapshots_;
  uint64_t next_session_ = 1;
};

}  // namespace yantra::cluster
