// The time the trigger scheduler sees. Why an interface: cron schedules are
// about wall-clock minutes, hours and DST days, and tests must be able to
// cross a day or a DST transition in milliseconds without sleeping. The
// scheduler (and nothing else in the engine) reads time through a Clock and
// waits through it; execution events keep the real time.
//
// Waiting: the scheduler sleeps on its own condition variable for at most
// real_wait(deadline) of real time, and a clock that jumps (ManualClock)
// wakes every subscribed waiter. So a SystemClock waiter wakes at its
// deadline (re-reading the clock at least once a minute, in case the wall
// clock was stepped), and a ManualClock waiter wakes when a test moves time.
//
// Thread-safety: every method may be called from any thread. Listeners run
// on the thread that moves the clock and must not block.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "base/time.hpp"

namespace yantra {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix epoch milliseconds (UTC).
  virtual int64_t now_ms() const = 0;
  // How long a waiter for `deadline_ms` may sleep in real time before it
  // must read now_ms() again (it may wake earlier through a listener).
  virtual std::chrono::milliseconds real_wait(int64_t deadline_ms) const = 0;
  // `fn` is called whenever the time jumps. Returns a token for unsubscribe().
  virtual uint64_t subscribe(std::function<void()> fn) { return 0; }
  virtual void unsubscribe(uint64_t token) {}
};

class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override { return ::yantra::now_ms(); }
  std::chrono::milliseconds real_wait(int64_t deadline_ms) const override {
    const int64_t left = deadline_ms - now_ms();
    return std::chrono::milliseconds(left < 0 ? 0 : (left > 60000 ? 60000 : left));
  }
};

// Time that moves only when told to (tests). Starts at `start_ms`.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms) : now_(start_ms) {}
  int64_t now_ms() const override { return now_.load(); }
  std::chrono::milliseconds real_wait(int64_t) const override { return std::chrono::hours(1); }
  uint64_t subscribe(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    listeners_.emplace(++next_, std::move(fn));
    return next_;
  }
  void unsubscribe(uint64_t token) override {
    std::lock_guard<std::mutex> lock(mu_);
    listeners_.erase(token);
  }
  // Sets the time (it may go backwards, like a stepped wall clock) and wakes
  // every waiter.
  void set(int64_t ms) {
    now_.store(ms);
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [token, fn] : listeners_) fn();
  }
  void advance(int64_t ms) { set(now_.load() + ms); }

 private:
  std::atomic<int64_t> now_;
  std::mutex mu_;
  std::map<uint64_t, std::function<void()>> listeners_;
  uint64_t next_ = 0;
};

}  // namespace yantra
