// ReplicatedPartitionLog (cluster/replicated_log.hpp): sequencer, per-replica
// senders, quorum commit, apply and callbacks. Design notes beyond the
// header's:
//
// - Locks: mu_ guards the log's state. Rpcs are never started with mu_
//   held (a transport may answer a refused request on the caller's thread):
//   the state machine queues them in sends_ and dispatch() starts them after
//   unlocking. Completions enter through Shared, whose mutex the destructor
//   takes to detach the log, so a completion never runs on a destroyed log;
//   lock order Shared::mu before mu_.
// - Only the log's thread applies and answers callbacks, in lsn order; the
//   reply path only moves the commit point and wakes it.
#include "cluster/replicated_log.hpp"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "base/errc.hpp"
#include "base/metrics.hpp"
#include "base/thread_name.hpp"
#include "cluster/errc.hpp"
#include "storage/partition_batch.hpp"
#include "storage/segment_store.hpp"
#include "storage/store.hpp"
#include "yantra/v1/log_rpc.pb.h"

namespace yantra::cluster {

using Clock = std::chrono::steady_clock;

struct ReplicatedPartitionLog::Shared {
  std::mutex mu;
  ReplicatedPartitionLog* log = nullptr;
};

namespace {

metrics::Histogram& commit_seconds() {
  static metrics::Histogram& h = metrics::global().histogram(
      "yantra_cluster_commit_seconds",
      "From a batch's first send to its commit on a write quorum (partition leaders)",
      metrics::latency_seconds_buckets());
  return h;
}

// How long a stopping log waits for the replies to appends it sent.
constexpr std::chrono::milliseconds kStopGrace{250};

metrics::Counter& replicated_bytes() {
  static metrics::Counter& c = metrics::global().counter(
      "yantra_cluster_replicated_bytes_total", "Batch bytes sent to replicas by partition leaders");
  return c;
}

Status not_leader(uint32_t partition, const std::string& why) {
  return Status(ClusterErrc::kNotLeader,
                "partition " + std::to_string(partition) + " lost its leader here: " + why);
}

}  // namespace

Result<std::unique_ptr<ReplicatedPartitionLog>> ReplicatedPartitionLog::create(
    storage::Store& store, ReplicatedLogOptions options, LogRpc rpc) {
  if (options.replicas.empty()) return Status(Errc::kInvalidArgument, "a log needs replicas");
  if (options.write_quorum < 1 || options.write_quorum > options.replicas.size()) {
    return Status(Errc::kInvalidArgument, "write quorum " + std::to_string(options.write_quorum) +
                                              " of " + std::to_string(options.replicas.size()) +
                                              " replicas");
  }
  if (options.epoch < 1 || options.first_lsn < 1 || !rpc) {
    return Status(Errc::kInvalidArgument, "a log needs an epoch, a first lsn and an rpc");
  }
  options.max_uncommitted = std::max<size_t>(1, options.max_uncommitted);
  options.max_batch_requests = std::max<size_t>(1, options.max_batch_requests);
  return std::unique_ptr<ReplicatedPartitionLog>(
      new ReplicatedPartitionLog(store, std::move(options), std::move(rpc)));
}

ReplicatedPartitionLog::ReplicatedPartitionLog(storage::Store& store, ReplicatedLogOptions options,
                                               LogRpc rpc)
    : store_(store),
      options_(std::move(options)),
      rpc_(std::move(rpc)),
      shared_(std::make_shared<Shared>()),
      next_lsn_(options_.first_lsn),
      committed_(options_.first_lsn - 1),
      applied_(options_.first_lsn - 1) {
  shared_->log = this;
  for (const auto& node : options_.replicas) {
    Replica r;
    r.node = node;
    r.acked = options_.first_lsn - 1;
    replicas_.push_back(r);
  }
  thread_ = std::thread([this] {
    name_this_thread("y-rlog-" + std::to_string(options_.partition));
    run();
  });
}

ReplicatedPartitionLog::~ReplicatedPartitionLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    stop_by_ = Clock::now() + kStopGrace;
  }
  cv_.notify_all();
  thread_.join();
  // Completions arriving from now on find no log.
  std::lock_guard lock(shared_->mu);
  shared_->log = nullptr;
}

void ReplicatedPartitionLog::append(storage::WriteRequest request, Callback done) {
  Status refused;
  {
    std::lock_guard lock(mu_);
    if (halted_) return;
    if (deposed_ || stopping_) {
      refused = deposed_ ? deposed_why_ : not_leader(options_.partition, "the log is stopping");
    } else {
      queue_.emplace_back(std::move(request), std::move(done));
    }
  }
  if (!refused.is_ok()) {
    // A stopped log has no thread to answer on; the refusal changes no
    // state, so answering on the caller's thread is safe (actors only send
    // themselves a message).
    if (done) done(refused);
    return;
  }
  cv_.notify_all();
}

void ReplicatedPartitionLog::halt() {
  std::lock_guard lock(mu_);
  halted_ = true;
  queue_.clear();
  cv_.notify_all();
}

storage::WriterStats ReplicatedPartitionLog::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

ReplicatedLogStats ReplicatedPartitionLog::replication() const {
  std::lock_guard lock(mu_);
  ReplicatedLogStats out;
  out.next_lsn = next_lsn_;
  out.committed_lsn = committed_;
  out.applied_lsn = applied_;
  out.deposed = deposed_;
  for (const auto& r : replicas_) out.replicas.push_back({r.node, r.acked, r.failures});
  return out;
}

Status ReplicatedPartitionLog::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const bool done = cv_.wait_for(lock, timeout, [&] {
    return (queue_.empty() && applied_ + 1 >= next_lsn_) || deposed_ || stopping_ || halted_;
  });
  if (deposed_) return deposed_why_;
  if (!done) return Status(Errc::kTimeout, "the log did not commit within the timeout");
  return {};
}

void ReplicatedPartitionLog::run() {
  std::vector<std::pair<storage::WriteRequest, Callback>> work;
  std::vector<storage::WriteRequest> requests;
  std::vector<Callback> callbacks;
  std::vector<Send> sends;
  auto dispatch = [&] {
    for (auto& s : sends) {
      std::weak_ptr<Shared> weak = shared_;
      const size_t i = s.replica;
      const uint64_t first = s.first;
      const size_t count = s.count;
      const uint64_t commit = s.commit;
      rpc_(s.node, std::move(s.payload), [weak, i, first, count, commit](Result<std::string> r) {
        auto shared = weak.lock();
        if (!shared) return;
        std::lock_guard lock(shared->mu);
        if (shared->log != nullptr) shared->log->on_reply(i, first, count, commit, std::move(r));
      });
    }
    sends.clear();
  };

  std::unique_lock lock(mu_);
  for (;;) {
    if (halted_) return;
    // 1. Apply what is committed, in order, then answer it.
    if (applied_ < committed_ && !batches_.empty()) {
      // Every committed batch not applied yet, in one WriteBatch (several
      // commit at once when one reply acknowledges a pipelined window).
      std::vector<std::string> ready;
      std::vector<Callback> done;
      const uint64_t first = applied_ + 1;
      for (auto& b : batches_) {
        if (b.lsn < first + ready.size()) continue;
        if (b.lsn != first + ready.size() || b.lsn > committed_) break;
        ready.push_back(b.bytes);  // copied: the deque may move under us
        for (auto& cb : b.callbacks) done.push_back(std::move(cb));
        b.callbacks.clear();
      }
      if (!ready.empty()) {
        const uint64_t last = first + ready.size() - 1;
        lock.unlock();
        Status applied = storage::apply_committed(store_, options_.partition, first, ready, false);
        if (!applied.is_ok()) {
          // The batches are committed (W copies): the state here is what
          // lags. Callers learn the store's refusal; the partition stops.
          spdlog::error("partition {}: applying committed batches {}..{} failed: {}",
                        options_.partition, first, last, applied.to_string());
        }
        for (auto& cb : done) {
          if (cb) cb(applied);
        }
        lock.lock();
        if (halted_) return;
        if (applied.is_ok()) {
          applied_ = last;
        } else {
          depose_locked(applied);
        }
        // Drop batches every replica holds (and that are applied).
        uint64_t min_acked = applied_;
        for (const auto& r : replicas_) min_acked = std::min(min_acked, r.acked);
        while (
            !batches_.empty() && batches_.front().lsn <= applied_ &&
            (batches_.front().lsn <= min_acked || retained_bytes_ > options_.max_retained_bytes)) {
          retained_bytes_ -= batches_.front().bytes.size();
          batches_.pop_front();
        }
        cv_.notify_all();  // flush() waiters
        continue;
      }
    }
    if (deposed_ && !deposed_told_) {
      deposed_told_ = true;
      // Fail what cannot commit any more: queued requests and batches
      // beyond the commit point.
      Status why = deposed_why_;
      std::vector<Callback> failed;
      for (auto& [req, cb] : queue_) failed.push_back(std::move(cb));
      queue_.clear();
      for (auto& b : batches_) {
        if (b.lsn > committed_) {
          for (auto& cb : b.callbacks) failed.push_back(std::move(cb));
          b.callbacks.clear();
        }
      }
      lock.unlock();
      for (auto& cb : failed) {
        if (cb) cb(why);
      }
      if (options_.on_deposed) options_.on_deposed(why);
      lock.lock();
      cv_.notify_all();
      continue;
    }
    if (stopping_) {
      // A clean stop (a hand-over, a shutdown): batches already sent may
      // commit within moments. Their replies are waited for, briefly, so
      // that their callers learn of the success (a start answered 202)
      // rather than of a refusal that is not one, which a client would
      // retry into a second execution. Nothing new is sent meanwhile.
      const bool sent = std::any_of(replicas_.begin(), replicas_.end(),
                                    [](const Replica& r) { return r.in_flight; });
      if (!sent || next_lsn_ - 1 <= committed_ || deposed_ || Clock::now() >= stop_by_) break;
      cv_.wait_until(lock, stop_by_);
      continue;
    }

    // 2. A new batch when the window allows.
    const Clock::time_point now = Clock::now();
    if (!deposed_ && !queue_.empty() && next_lsn_ - 1 - committed_ < options_.max_uncommitted) {
      if (options_.may_write && !options_.may_write()) {
        depose_locked(not_leader(options_.partition, "the node lease may have lapsed"));
        continue;
      }
      work.swap(queue_);
      lock.unlock();
      // Requests beyond max_batch_requests wait for the next batch.
      std::vector<std::pair<storage::WriteRequest, Callback>> rest;
      if (work.size() > options_.max_batch_requests) {
        rest.assign(std::make_move_iterator(work.begin() + options_.max_batch_requests),
                    std::make_move_iterator(work.end()));
        work.resize(options_.max_batch_requests);
      }
      requests.clear();
      callbacks.clear();
      std::vector<Callback> invalid;
      size_t events = 0;
      for (auto& [req, cb] : work) {
        if (!storage::valid_write_request(req) || req.partition != options_.partition) {
          invalid.push_back(std::move(cb));
          continue;
        }
        events += req.events.size();
        requests.push_back(std::move(req));
        callbacks.push_back(std::move(cb));
      }
      work.clear();
      for (auto& cb : invalid) {
        if (cb) {
          cb(Status(Errc::kInvalidArgument,
                    "write request needs this log's partition, an execution id of 1..255 bytes "
                    "and outbox rows with ids"));
        }
      }
      lock.lock();
      if (!rest.empty()) {
        queue_.insert(queue_.begin(), std::make_move_iterator(rest.begin()),
                      std::make_move_iterator(rest.end()));
      }
      if (requests.empty()) continue;
      if (deposed_ || halted_) {
        // Lost the race with a deposition: these never reach a replica.
        for (auto& cb : callbacks) queue_.emplace_back(storage::WriteRequest{}, std::move(cb));
        continue;
      }
      const uint64_t lsn = next_lsn_;
      auto encoded =
          storage::encode(options_.partition, lsn, static_cast<uint64_t>(options_.epoch), requests);
      if (!encoded.ok()) {
        lock.unlock();
        for (auto& cb : callbacks) {
          if (cb) cb(encoded.status());
        }
        lock.lock();
        continue;
      }
      ++next_lsn_;
      Batch b;
      b.lsn = lsn;
      b.bytes = std::move(encoded.value());
      b.callbacks = std::move(callbacks);
      b.requests = requests.size();
      b.events = events;
      b.sent_at = now;
      retained_bytes_ += b.bytes.size();
      ++stats_.batches;
      stats_.requests += b.requests;
      stats_.events += events;
      stats_.max_batch_requests = std::max<uint64_t>(stats_.max_batch_requests, b.requests);
      batches_.push_back(std::move(b));
      callbacks = {};
    }

    // 3. Replicas: what each lacks, retries that are due, commit notices.
    Clock::time_point wake = now + std::chrono::seconds(1);
    bool catch_up = false;
    for (size_t i = 0; i < replicas_.size(); ++i) {
      Replica& r = replicas_[i];
      if (r.needs_catch_up && !r.in_flight && r.retry_at <= now) {
        catch_up = true;
        continue;
      }
      pump_locked(i, now);
      if (!r.in_flight && r.retry_at > now) wake = std::min(wake, r.retry_at);
      if (!r.in_flight && r.told_commit < committed_ && r.acked + 1 >= next_lsn_) {
        wake = std::min(wake, now + options_.notice_delay);
      }
    }
    // Move the sends out of the shared queue into ours, then start them
    // unlocked.
    for (auto& s : pending_sends_) sends.push_back(std::move(s));
    pending_sends_.clear();
    if (!sends.empty()) {
      lock.unlock();
      dispatch();
      lock.lock();
      continue;
    }
    if (catch_up) {
      // A replica behind what memory holds: read our own copy.
      for (size_t i = 0; i < replicas_.size(); ++i) {
        Replica& r = replicas_[i];
        if (!r.needs_catch_up || r.in_flight) continue;
        const uint64_t from = r.acked + 1;
        const uint64_t to = batches_.empty() ? next_lsn_ - 1 : batches_.front().lsn - 1;
        r.in_flight = true;  // reserved while we read
        lock.unlock();
        std::vector<std::string> read = read_local(from, to);
        lock.lock();
        r.in_flight = false;
        if (read.empty()) {
          spdlog::error("partition {}: replica {} needs lsn {} and this node's copy lacks it",
                        options_.partition, r.node, from);
          r.retry_at = Clock::now() + options_.retry * 10;
          continue;
        }
        r.needs_catch_up = false;
        send_locked(i, from, std::move(read));
      }
      continue;
    }
    if (halted_) return;
    const bool work_ready =
        (applied_ < committed_) || (deposed_ && !deposed_told_) || stopping_ ||
        (!queue_.empty() && !deposed_ && next_lsn_ - 1 - committed_ < options_.max_uncommitted);
    if (!work_ready) cv_.wait_until(lock, wake);
  }

  // Stopping: nothing more is sent; what is not applied fails (its batches
  // may still commit through the replicas, and the next leader recovers
  // them: a client that got this error retries and finds out).
  std::vector<Callback> failed;
  for (auto& [req, cb] : queue_) failed.push_back(std::move(cb));
  queue_.clear();
  for (auto& b : batches_) {
    for (auto& cb : b.callbacks) failed.push_back(std::move(cb));
    b.callbacks.clear();
  }
  const Status why = not_leader(options_.partition, "the log was closed");
  lock.unlock();
  for (auto& cb : failed) {
    if (cb) cb(why);
  }
}

void ReplicatedPartitionLog::pump_locked(size_t i, Clock::time_point now) {
  Replica& r = replicas_[i];
  if (r.in_flight || deposed_ || stopping_ || halted_ || r.retry_at > now) return;
  const uint64_t from = r.acked + 1;
  if (from < next_lsn_) {
    if (batches_.empty() || from < batches_.front().lsn) {
      r.needs_catch_up = true;
      return;
    }
    if (options_.may_write && !options_.may_write()) {
      depose_locked(not_leader(options_.partition, "the node lease may have lapsed"));
      return;
    }
    std::vector<std::string> out;
    size_t bytes = 0;
    for (const auto& b : batches_) {
      if (b.lsn < from) continue;
      if (!out.empty() && bytes + b.bytes.size() > options_.max_append_bytes) break;
      bytes += b.bytes.size();
      out.push_back(b.bytes);
    }
    send_locked(i, from, std::move(out));
    return;
  }
  // Holds everything: tell it the commit point once nothing else will.
  if (r.told_commit < committed_) send_locked(i, from, {});
}

void ReplicatedPartitionLog::send_locked(size_t i, uint64_t first_lsn,
                                         std::vector<std::string> batches) {
  Replica& r = replicas_[i];
  v1::LogRequest req;
  auto* a = req.mutable_append();
  a->set_partition(options_.partition);
  a->set_segment(static_cast<uint64_t>(options_.epoch));
  a->set_writer_epoch(static_cast<uint64_t>(options_.epoch));
  a->set_first_lsn(first_lsn);
  a->set_committed_lsn(committed_);
  size_t bytes = 0;
  for (auto& b : batches) {
    bytes += b.size();
    a->add_batches(std::move(b));
  }
  replicated_bytes().inc(bytes);
  r.in_flight = true;
  Send s;
  s.replica = i;
  s.node = r.node;
  s.payload = req.SerializeAsString();
  s.first = first_lsn;
  s.count = batches.size();
  s.commit = committed_;
  pending_sends_.push_back(std::move(s));
}

void ReplicatedPartitionLog::on_reply(size_t i, uint64_t first_sent, size_t count,
                                      uint64_t commit_sent, Result<std::string> reply) {
  std::unique_lock lock(mu_);
  if (i >= replicas_.size()) return;
  Replica& r = replicas_[i];
  r.in_flight = false;
  const Clock::time_point now = Clock::now();
  auto fail = [&](const std::string& why) {
    ++r.failures;
    r.retry_at = now + options_.retry;
    if (r.failures == 1 || r.failures % 50 == 0) {
      spdlog::warn("partition {}: append to replica {} failed ({}x): {}", options_.partition,
                   r.node, r.failures, why);
    }
  };
  if (!reply.ok()) {
    fail(reply.status().to_string());
  } else {
    v1::LogReply out;
    if (!out.ParseFromString(reply.value())) {
      fail("the reply is not a LogReply");
    } else if (out.code().empty()) {
      r.failures = 0;
      // A prefix: everything up to last_lsn is held (this segment).
      if (out.last_lsn() > r.acked) r.acked = std::min<uint64_t>(out.last_lsn(), next_lsn_ - 1);
      r.told_commit = std::max(r.told_commit, commit_sent);
      advance_commit_locked();
    } else if (out.code() == "segment_gap" && out.expected_lsn() > 0) {
      // It holds less than we thought (restarted, or an earlier send was
      // lost): resend from where it is.
      r.acked = std::max<uint64_t>(out.expected_lsn(), options_.first_lsn) - 1;
    } else if (out.code() == "not_found" && count == 0) {
      if (first_sent == options_.first_lsn) {
        // Nothing of this segment was written yet, so it holds nothing: the
        // notice itself was heard (the log server passes it on).
        r.told_commit = std::max(r.told_commit, commit_sent);
      } else {
        // It lost the segment: start it over from the first batch.
        r.acked = options_.first_lsn - 1;
        r.retry_at = now + options_.retry;
      }
    } else if (out.code() == "segment_sealed" || out.code() == "segment_wrong_epoch") {
      depose_locked(not_leader(options_.partition, "replica " + r.node + " answered " + out.code() +
                                                       ": " + out.message()));
    } else {
      fail(out.code() + ": " + out.message());
    }
  }
  cv_.notify_all();
}

void ReplicatedPartitionLog::advance_commit_locked() {
  std::vector<uint64_t> acked;
  acked.reserve(replicas_.size());
  for (const auto& r : replicas_) acked.push_back(r.acked);
  std::sort(acked.begin(), acked.end(), std::greater<>());
  const uint64_t quorum = acked[options_.write_quorum - 1];
  if (quorum <= committed_) return;
  if (options_.may_write && !options_.may_write()) {
    depose_locked(not_leader(options_.partition, "the node lease may have lapsed"));
    return;
  }
  const Clock::time_point now = Clock::now();
  for (const auto& b : batches_) {
    if (b.lsn > committed_ && b.lsn <= quorum) {
      commit_seconds().observe(std::chrono::duration<double>(now - b.sent_at).count());
    }
  }
  committed_ = quorum;
}

void ReplicatedPartitionLog::depose_locked(Status why) {
  if (deposed_) return;
  deposed_ = true;
  deposed_why_ = std::move(why);
  spdlog::warn("partition {} epoch {}: stepping down: {}", options_.partition, options_.epoch,
               deposed_why_.to_string());
  cv_.notify_all();
}

std::vector<std::string> ReplicatedPartitionLog::read_local(uint64_t from, uint64_t to) {
  std::vector<std::string> out;
  if (from > to) return out;
  auto read = store_.segments().read(options_.partition, static_cast<uint64_t>(options_.epoch),
                                     from, to, options_.max_append_bytes);
  if (!read.ok()) return out;
  uint64_t expect = from;
  for (auto& b : read.value()) {
    if (b.lsn != expect) break;
    out.push_back(std::move(b.bytes));
    ++expect;
  }
  return out;
}

}  // namespace yantra::cluster
