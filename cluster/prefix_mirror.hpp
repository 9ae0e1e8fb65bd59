// A local copy of every key under an etcd prefix, kept current by a watch:
// what Membership (P/nodes/) and PartitionLeadership (P/leader/) read.
//
// How it stays exact: list the prefix (revision R), then watch from R + 1, so
// no change between the listing and the watch is missed. When the watch
// reports that its revision was compacted away (events are missing) or
// etcd ends it, list again, deliver the difference between the old copy and
// the new listing as changes, and watch from the new listing's revision + 1.
// A failed listing is retried (200 ms doubling to 1 s) until etcd answers.
//
// Threads: one thread of its own for listings, plus the watch's thread for
// events; `on_changes` runs on either, one call at a time, in revision order,
// with the copy already updated (snapshot() from inside it sees the change).
// Keep it short, let nothing throw out of it, and do not destroy the mirror
// from inside it. The destructor stops both threads. The EtcdClient must
// outlive the mirror.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_client.hpp"

namespace yantra::cluster {

class PrefixMirror {
 public:
  struct Change {
    std::string key;
    std::optional<KeyValue> before;  // nullopt: the key is new
    std::optional<KeyValue> after;   // nullopt: the key was deleted (or expired)
  };
  // `revision`: the etcd revision the copy reflects after these changes.
  using OnChanges = std::function<void(const std::vector<Change>& changes, int64_t revision)>;

  PrefixMirror(EtcdClient& etcd, std::string prefix, OnChanges on_changes);
  ~PrefixMirror();
  PrefixMirror(const PrefixMirror&) = delete;
  PrefixMirror& operator=(const PrefixMirror&) = delete;

  // Blocks until the first listing was delivered (true) or `timeout`.
  bool wait_synced(std::chrono::milliseconds timeout) const;
  std::map<std::string, KeyValue> snapshot() const;
  int64_t revision() const { return revision_.load(std::memory_order_acquire); }
  // Listings so far (1 after the first; each later one followed a compaction
  // or a watch that ended).
  int64_t listings() const { return listings_.load(std::memory_order_acquire); }

 private:
  void run();
  void on_watch(const WatchUpdate& update);

  EtcdClient& etcd_;
  const std::string prefix_;
  const OnChanges on_changes_;

  std::mutex deliver_mu_;  // one delivery at a time, in order
  mutable std::mutex mu_;  // guards what follows
  mutable std::condition_variable cv_;
  std::map<std::string, KeyValue> kvs_;
  bool synced_ = false;
  bool watch_ended_ = false;
  bool stopping_ = false;

  std::atomic<int64_t> revision_{0};
  std::atomic<int64_t> listings_{0};
  std::thread thread_;
};

}  // namespace yantra::cluster
