// FollowerApplier (cluster/follower.hpp).
#include "cluster/follower.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include "base/metrics.hpp"
#include "base/thread_name.hpp"
#include "cluster/node_metrics.hpp"
#include "storage/partition_batch.hpp"
#include "storage/partition_snapshot.hpp"
#include "storage/segment_store.hpp"
#include "storage/store.hpp"

namespace yantra::cluster {
namespace {

constexpr size_t kReadBytes = 1u << 20;

metrics::Counter& applied_batches() {
  static metrics::Counter& c = metrics::global().counter(
      "yantra_cluster_follower_applied_batches_total",
      "Committed batches a replica applied for partitions it does not lead");
  return c;
}

}  // namespace

FollowerApplier::FollowerApplier(storage::Store& store, ReadOlder read_older)
    : FollowerApplier(store, std::move(read_older), Snapshots{}) {}

FollowerApplier::FollowerApplier(storage::Store& store, ReadOlder read_older, Snapshots snapshots)
    : store_(store), read_older_(std::move(read_older)), snapshots_(std::move(snapshots)) {
  thread_ = std::thread([this] {
    name_this_thread("y-follower");
    run();
  });
}

FollowerApplier::~FollowerApplier() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void FollowerApplier::on_committed(uint32_t partition, uint64_t segment, uint64_t committed_lsn) {
  {
    std::lock_guard lock(mu_);
    Target& t = targets_[partition];
    // A newer segment's writer, or a higher commit point of the same one.
    if (segment < t.segment || (segment == t.segment && committed_lsn <= t.committed)) return;
    t.segment = segment;
    t.committed = std::max(t.committed, committed_lsn);
    dirty_.insert(partition);
  }
  cv_.notify_all();
}

void FollowerApplier::pause(uint32_t partition) {
  std::unique_lock lock(mu_);
  paused_.insert(partition);
  cv_.wait(lock, [&] { return applying_ != partition; });
}

void FollowerApplier::resume(uint32_t partition) {
  {
    std::lock_guard lock(mu_);
    paused_.erase(partition);
    if (targets_.count(partition) != 0) dirty_.insert(partition);
  }
  cv_.notify_all();
}

uint64_t FollowerApplier::applied(uint32_t partition) const {
  auto a = storage::applied_lsn(store_, partition);
  return a.ok() ? a.value() : 0;
}

uint64_t FollowerApplier::heard(uint32_t partition) const {
  std::lock_guard lock(mu_);
  auto it = targets_.find(partition);
  return it == targets_.end() ? 0 : it->second.committed;
}

void FollowerApplier::run() {
  std::unique_lock lock(mu_);
  std::set<uint32_t> failed;
  while (!stopping_) {
    uint32_t next = UINT32_MAX;
    for (uint32_t p : dirty_) {
      if (paused_.count(p) == 0) {
        next = p;
        break;
      }
    }
    if (next == UINT32_MAX) {
      if (!failed.empty()) {
        // Retry what failed (a replica that was unreachable) after a pause.
        cv_.wait_for(lock, std::chrono::milliseconds(200));
        dirty_.insert(failed.begin(), failed.end());
        failed.clear();
      } else {
        cv_.wait(lock);
      }
      continue;
    }
    dirty_.erase(next);
    const Target target = targets_[next];
    applying_ = next;
    lock.unlock();
    const bool ok = apply(next, target);
    lock.lock();
    applying_ = UINT32_MAX;
    cv_.notify_all();  // pause() waiters
    if (!ok) failed.insert(next);
  }
}

bool FollowerApplier::apply(uint32_t partition, Target target) {
  auto applied = storage::applied_lsn(store_, partition);
  if (!applied.ok()) return false;
  uint64_t next = applied.value() + 1;
  if (next > target.committed) return true;
  auto info = store_.segments().info(partition, target.segment);
  const uint64_t first = info.ok() && !info.value().empty() ? info.value().first_lsn : UINT64_MAX;
  while (next <= target.committed) {
    std::vector<std::string> batches;
    if (next >= first) {
      auto read =
          store_.segments().read(partition, target.segment, next, target.committed, kReadBytes);
      if (!read.ok() || read.value().empty() || read.value().front().lsn != next) return false;
      for (auto& b : read.value()) {
        if (b.lsn != next + batches.size()) break;
        batches.push_back(std::move(b.bytes));
      }
    } else {
      if (snapshots_.locate) {
        // Is `next` still in the log? Not when the chain's oldest live
        // segment starts after it (trimmed): only a snapshot gets us there.
        auto source = snapshots_.locate(partition);
        if (!source.ok()) {
          spdlog::warn("partition {}: cannot read its segment chain: {}", partition,
                       source.status().to_string());
          return false;
        }
        if (next < source->first_live) {
          auto lsn = install(partition, source.value());
          if (!lsn.ok()) return false;
          next = lsn.value() + 1;
          continue;
        }
      }
      const uint64_t to =
          std::min(target.committed, first == UINT64_MAX ? target.committed : first - 1);
      auto older = read_older_ ? read_older_(partition, next, to)
                               : Result<std::vector<std::string>>(
                                     Status(Errc::kUnavailable, "no reader of older segments"));
      if (!older.ok()) {
        spdlog::warn("partition {}: cannot read committed batch {} here: {}", partition, next,
                     older.status().to_string());
        return false;
      }
      batches = std::move(older.value());
    }
    {
      std::lock_guard lock(mu_);
      if (stopping_ || paused_.count(partition) != 0) return true;
    }
    // Everything read in one WriteBatch: one RocksDB write per cue, however
    // many commit notices it covers.
    Status st = storage::apply_committed(store_, partition, next, batches, false);
    if (!st.is_ok()) {
      spdlog::warn("partition {}: applying committed batches {}..{} failed: {}", partition, next,
                   next + batches.size() - 1, st.to_string());
      return false;
    }
    applied_batches().inc(batches.size());
    next += batches.size();
  }
  return true;
}

Result<uint64_t> FollowerApplier::install(uint32_t partition, const SnapshotSource& source) {
  Backoff& backoff = backoff_[partition];
  if (std::chrono::steady_clock::now() < backoff.not_before) {
    return Status(Errc::kUnavailable, "backing off");
  }
  Status last(Errc::kUnavailable, "no replica to install a snapshot from");
  for (const std::string& node : source.replicas) {
    {
      std::lock_guard lock(mu_);
      if (stopping_ || paused_.count(partition) != 0) return Status(Errc::kUnavailable, "paused");
    }
    auto applied = storage::applied_lsn(store_, partition);
    if (!applied.ok()) return applied.status();
    if (applied.value() != 0) {
      // This copy's state is behind the log's start: it can never be
      // advanced from the log, and an import needs a store without it.
      spdlog::info("partition {}: applied {} but the log starts at {}: replacing it by a snapshot",
                   partition, applied.value(), source.first_live);
      if (Status st = storage::drop_partition(store_, partition, snapshots_.partition_of);
          !st.is_ok()) {
        return st;
      }
    }
    auto installed = snapshots_.install(partition, node);
    if (installed.ok() && installed->lsn + 1 < source.first_live) {
      installed = Status(Errc::kUnavailable, "its snapshot (lsn " + std::to_string(installed->lsn) +
                                                 ") is older than the log's start " +
                                                 std::to_string(source.first_live));
    }
    if (!installed.ok()) {
      last = installed.status();
      spdlog::warn("partition {}: snapshot from {} failed: {}", partition, node, last.to_string());
      continue;
    }
    spdlog::info("partition {}: installed a snapshot at lsn {} from {} ({} bytes)", partition,
                 installed->lsn, node, installed->bytes);
    count_snapshot_transfer(partition, installed->bytes);
    backoff_.erase(partition);
    return installed->lsn;
  }
  // Every replica failed: wait longer each time before asking again.
  const auto wait =
      std::min(snapshots_.backoff_max,
               snapshots_.backoff_min * (int64_t{1} << std::min(backoff.failures, 16)));
  ++backoff.failures;
  backoff.not_before = std::chrono::steady_clock::now() + wait;
  return last;
}

}  // namespace yantra::cluster
