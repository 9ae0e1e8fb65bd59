// Watchers: callbacks waiting for executions to end (Engine::watch, the
// `finished` callback of a start, ?wait_ms answers). notify() hands each
// watcher of an execution its outcome exactly once; take() removes one (a
// caller that stops waiting), and exactly one of take() and notify() gets
// to call it. notify() costs one atomic load when nobody watches, which is
// the common case on the commit path.
//
// Thread: any. Callbacks run on the notifying thread (an engine thread),
// outside the lock, and must not block.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/engine.hpp"

namespace yantra::detail {

class Watchers {
 public:
  using Fn = std::function<void(Result<ExecutionResult>)>;

  // Registers `fn` for `execution_id`; returns its token for take().
  uint64_t add(const std::string& execution_id, Fn fn) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t token = next_++;
    by_execution_[execution_id].emplace_back(token, std::move(fn));
    count_.fetch_add(1, std::memory_order_release);
    return token;
  }

  // Removes a watcher; returns it if it was still registered.
  Fn take(const std::string& execution_id, uint64_t token) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_execution_.find(execution_id);
    if (it == by_execution_.end()) return {};
    for (auto w = it->second.begin(); w != it->second.end(); ++w) {
      if (w->first != token) continue;
      Fn fn = std::move(w->second);
      it->second.erase(w);
      if (it->second.empty()) by_execution_.erase(it);
      count_.fetch_sub(1, std::memory_order_release);
      return fn;
    }
    return {};
  }

  // Calls (and removes) every watcher of the execution that ended.
  void notify(const ExecutionResult& r) {
    if (count_.load(std::memory_order_acquire) == 0) return;
    std::vector<std::pair<uint64_t, Fn>> ws;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = by_execution_.find(r.execution_id);
      if (it == by_execution_.end()) return;
      ws = std::move(it->second);
      by_execution_.erase(it);
      count_.fetch_sub(static_cast<int>(ws.size()), std::memory_order_release);
    }
    for (auto& w : ws) w.second(r);
  }

  // Calls (and removes) every watcher of the executions `which` selects
  // with `error` (their partition is no longer led here; they would
  // otherwise wait for an end this node will never see).
  template <class Pred>
  void fail_if(Pred which, const std::function<Status(const std::string&)>& error) {
    if (count_.load(std::memory_order_acquire) == 0) return;
    std::vector<std::pair<std::string, Fn>> ws;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = by_execution_.begin(); it != by_execution_.end();) {
        if (!which(it->first)) {
          ++it;
          continue;
        }
        for (auto& w : it->second) ws.emplace_back(it->first, std::move(w.second));
        count_.fetch_sub(static_cast<int>(it->second.size()), std::memory_order_release);
        it = by_execution_.erase(it);
      }
    }
    for (auto& [id, fn] : ws) fn(error(id));
  }

 private:
  std::mutex mu_;
  std::atomic<int> count_{0};
  uint64_t next_ = 1;
  std::unordered_map<std::string, std::vector<std::pair<uint64_t, Fn>>> by_execution_;
};

}  // namespace yantra::detail
