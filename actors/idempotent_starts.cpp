// IdempotentStarts (actors/internal/idempotent_starts.hpp).
#include "actors/internal/idempotent_starts.hpp"

#include "storage/execution_index.hpp"

namespace yantra::detail {
namespace {

std::string slot(const std::string& tenant, const std::string& key) {
  return tenant + '\0' + key;
}

}  // namespace

Result<IdempotentStarts::Claim> IdempotentStarts::claim(const std::string& tenant,
                                                        const std::string& key,
                                                        Engine::StartedFn repeat,
                                                        std::string* existing) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string id = slot(tenant, key);
  if (auto pending = pending_.find(id); pending != pending_.end()) {
    pending->second.push_back(std::move(repeat));
    return Claim::kJoined;
  }
  // Under the lock: a start finishing now erases its entry only after its
  // key row is durable, so the store read below sees it.
  auto found = index_.find_idempotent(tenant, key);
  if (!found.ok()) return found.status();
  if (found.value().has_value()) {
    *existing = std::move(*found.value());
    return Claim::kExisting;
  }
  pending_[id];
  return Claim::kFirst;
}

void IdempotentStarts::finish(const std::string& tenant, const std::string& key,
                              const Engine::StartedFn& first, const Result<std::string>& r) {
  std::vector<Engine::StartedFn> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(slot(tenant, key));
    if (it != pending_.end()) {
      waiters = std::move(it->second);
      pending_.erase(it);
    }
  }
  if (first) first(r);
  for (auto& w : waiters) {
    if (w) w(r);
  }
}

}  // namespace yantra::detail
