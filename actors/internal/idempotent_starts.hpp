// IdempotentStarts: an Idempotency-Key names at most one execution per
// tenant. A repeated request gets the id of the first — also while the first
// is still being started, before its key row (written in the same batch as
// ExecutionStarted) is durable: such repeats join the in-flight start and are
// answered with it.
//
// Threads: any (one mutex). claim() reads the execution index, so it runs
// where Engine::start runs — I/O-pool, trigger and admin threads, never a
// CAF scheduler thread. Callbacks are called outside the lock.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/engine.hpp"

namespace yantra::storage {
class ExecutionIndex;
}  // namespace yantra::storage

namespace yantra::detail {

class IdempotentStarts {
 public:
  explicit IdempotentStarts(const storage::ExecutionIndex& index) : index_(index) {}

  enum class Claim {
    kFirst,     // no execution has the key: start one, then call finish()
    kJoined,    // a start with the key is in flight: `repeat` gets its answer
    kExisting,  // *existing is the execution the key names
  };
  Result<Claim> claim(const std::string& tenant, const std::string& key, Engine::StartedFn repeat,
                      std::string* existing);
  // The start that claimed the key answered: `first` (its caller), then
  // every repeat that joined it, get `r`; the key is free to be looked up in
  // the store from now on.
  void finish(const std::string& tenant, const std::string& key, const Engine::StartedFn& first,
              const Result<std::string>& r);

 private:
  const storage::ExecutionIndex& index_;
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<Engine::StartedFn>> pending_;  // tenant\0key
};

}  // namespace yantra::detail
