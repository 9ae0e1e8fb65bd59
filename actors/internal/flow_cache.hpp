// FlowCache: parsed flow definitions by (tenant, flow, version), and the
// newest version seen of each flow, so that a start does not re-parse a
// definition read from the store. Bounded: least recently used entries are
// dropped past `capacity` (a miss only costs a store read and a parse, as
// the first start of a flow does), so a tenant with many flows or versions
// cannot grow the node's memory without limit.
//
// Thread: any. Every method takes the one mutex briefly; nothing blocks
// while holding it (parsing and store reads happen in the caller, outside).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "runtime/flow.hpp"

namespace yantra::detail {

class FlowCache {
 public:
  using Entry = std::pair<uint32_t, std::shared_ptr<const Flow>>;  // version, flow

  explicit FlowCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // The cached parse of `version` of the flow; version 0 = the newest
  // version this cache has seen (a miss when it saw none).
  std::optional<Entry> find(const std::string& tenant, const std::string& flow_id,
                            uint32_t version) {
    std::lock_guard<std::mutex> lock(mu_);
    if (version == 0) {
      const uint32_t* latest = latest_.get(flow_name(tenant, flow_id));
      if (latest == nullptr) return std::nullopt;
      version = *latest;
    }
    const std::shared_ptr<const Flow>* flow = flows_.get(version_key(tenant, flow_id, version));
    if (flow == nullptr) return std::nullopt;
    return Entry{version, *flow};
  }

  // Caches a parse; the flow's newest version is raised to `version`.
  void put(const std::string& tenant, const std::string& flow_id, uint32_t version,
           std::shared_ptr<const Flow> flow) {
    std::lock_guard<std::mutex> lock(mu_);
    flows_.put(version_key(tenant, flow_id, version), std::move(flow), capacity_);
    const std::string name = flow_name(tenant, flow_id);
    const uint32_t* latest = latest_.get(name);
    if (latest == nullptr || *latest < version) latest_.put(name, version, capacity_);
  }

  // The flow was deleted: "newest version" must be read from the store again.
  void forget_latest(const std::string& tenant, const std::string& flow_id) {
    std::lock_guard<std::mutex> lock(mu_);
    latest_.erase(flow_name(tenant, flow_id));
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return flows_.size();
  }

 private:
  // A least-recently-used map: get() and put() move the entry to the front.
  template <typename V>
  class Lru {
   public:
    V* get(const std::string& key) {
      auto it = index_.find(key);
      if (it == index_.end()) return nullptr;
      order_.splice(order_.begin(), order_, it->second);
      return &it->second->second;
    }
    void put(const std::string& key, V value, size_t capacity) {
      if (V* v = get(key)) {
        *v = std::move(value);
        return;
      }
      order_.emplace_front(key, std::move(value));
      index_[key] = order_.begin();
      while (order_.size() > capacity) {
        index_.erase(order_.back().first);
        order_.pop_back();
      }
    }
    void erase(const std::string& key) {
      auto it = index_.find(key);
      if (it == index_.end()) return;
      order_.erase(it->second);
      index_.erase(it);
    }
    size_t size() const { return order_.size(); }

   private:
    std::list<std::pair<std::string, V>> order_;  // most recently used first
    std::unordered_map<std::string, typename std::list<std::pair<std::string, V>>::iterator> index_;
  };

  static std::string flow_name(const std::string& tenant, const std::string& flow_id) {
    return tenant + '\0' + flow_id;
  }
  static std::string version_key(const std::string& tenant, const std::string& flow_id,
                                 uint32_t version) {
    return flow_name(tenant, flow_id) + '\0' + std::to_string(version);
  }

  const size_t capacity_;
  mutable std::mutex mu_;
  Lru<std::shared_ptr<const Flow>> flows_;
  Lru<uint32_t> latest_;
};

}  // namespace yantra::detail
