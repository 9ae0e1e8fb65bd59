// PrefixMirror (prefix_mirror.hpp). The listing thread owns the Watch object
// (creates and destroys it); the watch thread only updates the copy and
// flags the end. Lock order: deliver_mu_ before mu_; on_changes_ runs under
// deliver_mu_ only, so it may call snapshot().
#include "cluster/prefix_mirror.hpp"

#include <algorithm>

namespace yantra::cluster {

using std::chrono::milliseconds;

PrefixMirror::PrefixMirror(EtcdClient& etcd, std::string prefix, OnChanges on_changes)
    : etcd_(etcd), prefix_(std::move(prefix)), on_changes_(std::move(on_changes)) {
  thread_ = std::thread([this] { run(); });
}

PrefixMirror::~PrefixMirror() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool PrefixMirror::wait_synced(milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return synced_; });
}

std::map<std::string, KeyValue> PrefixMirror::snapshot() const {
  std::lock_guard lock(mu_);
  return kvs_;
}

void PrefixMirror::run() {
  milliseconds backoff(200);
  std::unique_ptr<Watch> watch;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    auto listing = etcd_.range(RangeRequest::prefix(prefix_));
    if (!listing.ok()) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, backoff, [&] { return stopping_; });
      backoff = std::min(backoff * 2, milliseconds(1000));
      continue;
    }
    backoff = milliseconds(200);
    {
      std::lock_guard deliver(deliver_mu_);
      std::vector<Change> changes;
      {
        std::lock_guard lock(mu_);
        std::map<std::string, KeyValue> fresh;
        for (auto& kv : listing->kvs) fresh.emplace(kv.key, kv);
        for (auto& [key, old] : kvs_) {
          auto it = fresh.find(key);
          if (it == fresh.end()) {
            changes.push_back({key, old, std::nullopt});
          } else if (!(it->second == old)) {
            changes.push_back({key, old, it->second});
          }
        }
        for (auto& [key, kv] : fresh) {
          if (kvs_.count(key) == 0) changes.push_back({key, std::nullopt, kv});
        }
        std::sort(changes.begin(), changes.end(),
                  [](const Change& a, const Change& b) { return a.key < b.key; });
        kvs_ = std::move(fresh);
        watch_ended_ = false;
        revision_.store(listing->header.revision);
        listings_.fetch_add(1);
      }
      if (!changes.empty() || listings_.load() == 1) on_changes_(changes, listing->header.revision);
      {
        std::lock_guard lock(mu_);
        synced_ = true;
      }
      cv_.notify_all();
    }
    WatchOptions options;
    options.key = prefix_;
    options.range_end = prefix_range_end(prefix_);
    options.start_revision = listing->header.revision + 1;
    options.prev_kv = true;
    watch = etcd_.watch(options, [this](const WatchUpdate& u) { on_watch(u); });
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || watch_ended_; });
    }
    watch.reset();  // joins the watch thread: no callback after this
  }
}

void PrefixMirror::on_watch(const WatchUpdate& update) {
  std::lock_guard deliver(deliver_mu_);
  std::vector<Change> changes;
  int64_t revision = 0;
  {
    std::lock_guard lock(mu_);
    for (const WatchEvent& e : update.events) {
      Change c;
      c.key = e.kv.key;
      if (auto it = kvs_.find(e.kv.key); it != kvs_.end()) c.before = it->second;
      if (e.type == WatchEvent::Type::kPut) {
        c.after = e.kv;
        kvs_[e.kv.key] = e.kv;
      } else {
        kvs_.erase(e.kv.key);
      }
      changes.push_back(std::move(c));
      revision = std::max(revision, e.kv.mod_revision);
    }
    // Only events move the revision: a watch header's revision may run ahead
    // of events not delivered yet.
    if (revision > revision_.load()) revision_.store(revision);
    revision = revision_.load();
    if (update.ended()) watch_ended_ = true;
  }
  if (update.ended()) cv_.notify_all();
  if (!changes.empty()) on_changes_(changes, revision);
}

}  // namespace yantra::cluster
