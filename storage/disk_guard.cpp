// DiskGuard: see disk_guard.hpp for the design. Notes on the details:
//
// - Free space is f_bavail (blocks available to unprivileged users), not
//   f_bfree: ext4 keeps ~5% for root, and a node run as root could otherwise
//   believe in space that other services of the machine cannot use.
// - A failed statvfs (the directory was removed under us, a stale network
//   mount) keeps the last state: the guard must not invent space, and a
//   write attempt will report the real error anyway.
// - sample() holds a mutex so that two samplers (the thread and an
//   on-demand caller) cannot publish their results out of order.
#include "storage/disk_guard.hpp"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "base/metrics.hpp"
#include "base/storage_errc.hpp"

namespace yantra::storage {
namespace {

Result<uint64_t> statvfs_free(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) {
    return Status(StorageErrc::kError, "statvfs " + path + ": " + std::strerror(errno));
  }
  return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

std::string mib(uint64_t bytes) {
  return std::to_string(bytes / (1024 * 1024)) + " MiB";
}

}  // namespace

DiskGuard::DiskGuard(Options options) : options_(std::move(options)) {
  if (!options_.probe) {
    options_.probe = [path = options_.path] { return statvfs_free(path); };
  }
  metrics::global()
      .gauge("yantra_storage_min_free_bytes",
             "Free-space floor of the data dir below which writes are refused")
      .set(static_cast<int64_t>(options_.min_free_bytes));
}

std::shared_ptr<DiskGuard> DiskGuard::start(Options options) {
  std::shared_ptr<DiskGuard> guard(new DiskGuard(std::move(options)));
  guard->sample();
  guard->thread_ = std::thread([raw = guard.get()] { raw->run(); });
  return guard;
}

DiskGuard::~DiskGuard() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void DiskGuard::sample() {
  static metrics::Gauge& free_gauge = metrics::global().gauge(
      "yantra_storage_free_bytes", "Free bytes under the data dir (as of the last sample)");
  std::unique_lock lock(mu_);
  written_.store(0, std::memory_order_relaxed);
  Result<uint64_t> free = options_.probe();
  if (!free.ok()) return;
  const uint64_t floor = options_.min_free_bytes;
  const uint64_t resume_at = floor + floor / 20;
  free_bytes_.store(free.value(), std::memory_order_relaxed);
  free_gauge.set(static_cast<int64_t>(free.value()));
  const bool was_below = below_floor_.load(std::memory_order_acquire);
  const bool below = floor > 0 && (was_below ? free.value() < resume_at : free.value() < floor);
  if (below == was_below) return;
  below_floor_.store(below, std::memory_order_release);
  lock.unlock();
  if (options_.on_change) options_.on_change(below);
}

void DiskGuard::note_no_space() {
  {
    std::lock_guard lock(mu_);
    if (below_floor_.exchange(true, std::memory_order_acq_rel)) return;
  }
  if (options_.on_change) options_.on_change(true);
}

void DiskGuard::note_written(uint64_t bytes) {
  const uint64_t floor = options_.min_free_bytes;
  if (floor == 0 || below_floor()) return;
  const uint64_t written = written_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  const uint64_t free = free_bytes_.load(std::memory_order_relaxed);
  if (written >= free || free - written < floor) sample();
}

Status DiskGuard::refusal() const {
  return {StorageErrc::kNoSpace, "the node is read-only: " + mib(free_bytes()) + " free under " +
                                     options_.path + ", below the floor of " +
                                     mib(options_.min_free_bytes) +
                                     " (min_free_disk_mb); writes resume once space is freed"};
}

void DiskGuard::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, options_.interval, [this] { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    sample();
    lock.lock();
  }
}

}  // namespace yantra::storage
