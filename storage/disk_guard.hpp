// DiskGuard: a reversible write gate on the free space of the data dir.
//
// RocksDB treats running out of space as a background error (and Debian's
// build, which keeps its assertions, aborted on the way there), so the node
// must stop writing *before* the disk is full: below a floor of free bytes
// every write of the store is refused with "store_no_space" (503), reads go
// on, and writes resume by themselves once space is back. Unlike the I/O
// error latch of Store (permanent: after a failed fsync the WAL's state is
// unknown), nothing has failed here, so the state may come and go.
//
// Why a thread that samples, and not a statvfs per write: writes happen on
// the log writers' hot path (one group commit per ~50 us under load), where
// a syscall each would show; one statvfs every `interval` (250 ms by
// default) costs nothing, and the floor (hundreds of MB) is far larger than
// what the node can write between two samples. sample() re-reads at once
// (at open, in tests).
//
// Hysteresis: refusing starts below the floor and ends once free space is
// back above floor + floor/20, so a disk hovering at the floor does not flip
// readiness every sample.
//
// Metrics: yantra_storage_free_bytes and yantra_storage_min_free_bytes
// (gauges, set at each sample).
//
// Lifecycle and threads: start() samples once on the caller's thread, then
// a thread of its own samples until the guard is destroyed. Every method is
// thread-safe; the getters are single atomic loads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/result.hpp"

namespace yantra::storage {

class DiskGuard {
 public:
  // Bytes an unprivileged writer may still use under the data dir.
  using Probe = std::function<Result<uint64_t>()>;

  struct Options {
    std::string path;             // the data dir (statvfs of it)
    uint64_t min_free_bytes = 0;  // the floor; 0 = never refuse
    std::chrono::milliseconds interval{250};
    Probe probe;  // null: statvfs(path), f_bavail * f_frsize (tests inject one)
    // Called on the sampling thread (or sample()'s caller) after each change
    // of below_floor(); must not block.
    std::function<void(bool below_floor)> on_change;
  };

  static std::shared_ptr<DiskGuard> start(Options options);
  ~DiskGuard();
  DiskGuard(const DiskGuard&) = delete;
  DiskGuard& operator=(const DiskGuard&) = delete;

  // True while writes must be refused (as of the last sample).
  bool below_floor() const { return below_floor_.load(std::memory_order_acquire); }
  uint64_t free_bytes() const { return free_bytes_.load(std::memory_order_relaxed); }
  uint64_t min_free_bytes() const { return options_.min_free_bytes; }
  const std::string& path() const { return options_.path; }

  // Re-reads free space now, on the caller's thread (one statvfs).
  void sample();
  // A write failed for lack of space although the last sample was above the
  // floor (something else filled the disk faster than the samples): refuse
  // from now on, until a sample shows space above the resume level.
  void note_no_space();
  // The node wrote `bytes`: when the last sample minus what was written
  // since would be below the floor, samples at once. So a burst of writes
  // cannot run through the floor between two samples; near the floor this
  // costs one statvfs per write batch.
  void note_written(uint64_t bytes);

  // "store_no_space" naming the free space, the floor and the path.
  Status refusal() const;

 private:
  explicit DiskGuard(Options options);
  void run();

  Options options_;
  std::atomic<bool> below_floor_{false};
  std::atomic<uint64_t> free_bytes_{0};
  std::atomic<uint64_t> written_{0};  // bytes noted since the last sample
  std::mutex mu_;                     // serialises sample() and guards stopping_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace yantra::storage
