// Retention: deletes the events and snapshots of executions that ended more
// than `retention_ms` ago (their summaries stay), every `interval_ms`, in
// slices of 1000 executions.
//
// Thread: its own, so that a long deletion never delays a commit or an
// actor; stopped and joined by the destructor (or stop()).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "base/time.hpp"
#include "storage/event_log.hpp"

namespace yantra::detail {

class Retention {
 public:
  Retention(storage::EventLog& events, int64_t retention_ms, int64_t interval_ms)
      : events_(events), retention_ms_(retention_ms), interval_ms_(interval_ms) {
    thread_ = std::thread([this] { run(); });
  }
  ~Retention() { stop(); }
  Retention(const Retention&) = delete;
  Retention& operator=(const Retention&) = delete;

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(interval_ms_));
      if (stop_) break;
      lock.unlock();
      const int64_t cutoff = now_ms() - retention_ms_;
      for (;;) {
        auto n = events_.expire_finished(cutoff, kSlice);
        if (!n.ok()) {
          spdlog::error("retention: {}", n.status().to_string());
          break;
        }
        if (n.value() < kSlice) break;
      }
      lock.lock();
    }
  }

  static constexpr size_t kSlice = 1000;
  storage::EventLog& events_;
  const int64_t retention_ms_;
  const int64_t interval_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace yantra::detail
