// PartitionLeadership (leadership.hpp).
//
// The rule that keeps on_elected/on_lost honest: a leadership we recorded
// (mine_) ends as soon as the mirror, at a revision at or after our epoch,
// no longer shows our key with that create_revision, or the lease it was
// created under is lost. reconcile_locked() applies the first rule after
// every batch the mirror delivers (including re-listings after a
// compaction, where intermediate events are gone); on_lease() the second.
// A campaign that won is recorded only if neither rule has ended it already
// (record_win), so a key that was deleted between our txn and its recording
// does not leave a leadership nobody will ever end.
//
// Lock order: cb_mu_, then mu_; no etcd call with either held. The lease's
// callback comes with NodeLease's own callback mutex held and takes cb_mu_;
// nothing here calls into NodeLease while holding cb_mu_ except its atomics.
#include "cluster/leadership.hpp"

#include "cluster/etcd_client.hpp"

namespace yantra::cluster {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

PartitionLeadership::PartitionLeadership(EtcdClient& etcd, const Layout& layout, NodeLease& lease,
                                         LeaderRecord self, LeadershipOptions options,
                                         Callbacks callbacks)
    : etcd_(etcd),
      layout_(layout),
      lease_(lease),
      self_(std::move(self)),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      rng_(std::random_device{}()) {}

Result<std::unique_ptr<PartitionLeadership>> PartitionLeadership::start(
    EtcdClient& etcd, const Layout& layout, NodeLease& lease, LeaderRecord self,
    LeadershipOptions options, Callbacks callbacks) {
  if (Status s = validate_node_id(self.node); !s.is_ok()) return s;
  const milliseconds sync_timeout = options.sync_timeout;
  std::unique_ptr<PartitionLeadership> l(new PartitionLeadership(
      etcd, layout, lease, std::move(self), std::move(options), std::move(callbacks)));
  l->subscription_ =
      lease.subscribe([p = l.get()](NodeLease::Event e, int64_t) { p->on_lease(e); });
  l->mirror_ = std::make_unique<PrefixMirror>(
      etcd, layout.leaders(),
      [p = l.get()](const std::vector<PrefixMirror::Change>& c, int64_t revision) {
        p->on_changes(c, revision);
      });
  if (!l->mirror_->wait_synced(sync_timeout))
    return Status(ClusterErrc::kTimeout, "no listing of " + layout.leaders() + " within " +
                                             std::to_string(sync_timeout.count()) + " ms");
  l->campaigner_ = std::thread([p = l.get()] { p->campaign_loop(); });
  return l;
}

PartitionLeadership::~PartitionLeadership() {
  if (subscription_ != 0) lease_.unsubscribe(subscription_);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (campaigner_.joinable()) campaigner_.join();
  mirror_.reset();
  std::map<uint32_t, int64_t> held;
  {
    std::lock_guard callbacks(cb_mu_);
    {
      std::lock_guard lock(mu_);
      held.swap(mine_);
    }
    for (auto [p, epoch] : held) {
      if (callbacks_.on_lost) callbacks_.on_lost(p, epoch);
    }
  }
  for (auto [p, epoch] : held) {
    TxnRequest txn;
    txn.compare.push_back(
        Compare::create_revision_is(layout_.leader(p), Compare::Op::kEqual, epoch));
    txn.success.push_back(DeleteRequest::single(layout_.leader(p)));
    (void)etcd_.txn(txn);
  }
}

std::optional<LeaderInfo> PartitionLeadership::leader_of(uint32_t partition) const {
  std::lock_guard lock(mu_);
  auto it = cache_.find(partition);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::optional<int64_t> PartitionLeadership::my_epoch(uint32_t partition) const {
  std::lock_guard lock(mu_);
  auto it = mine_.find(partition);
  if (it == mine_.end() || !lease_.valid()) return std::nullopt;
  return it->second;
}

std::map<uint32_t, int64_t> PartitionLeadership::led() const {
  std::lock_guard lock(mu_);
  return mine_;
}

int64_t PartitionLeadership::campaigns_won() const {
  std::lock_guard lock(mu_);
  return won_;
}

void PartitionLeadership::set_preferred(uint32_t partition, bool preferred) {
  {
    std::lock_guard lock(mu_);
    if (preferred) {
      options_.preferred.insert(partition);
      if (auto it = due_.find(partition); it != due_.end())
        it->second = campaign_time_locked(partition);
    } else {
      options_.preferred.erase(partition);
    }
  }
  cv_.notify_all();
}

Clock::time_point PartitionLeadership::campaign_time_locked(uint32_t partition) {
  const int64_t jitter =
      options_.jitter.count() > 0
          ? static_cast<int64_t>(rng_() % static_cast<uint64_t>(options_.jitter.count() + 1))
          : 0;
  const milliseconds wait =
      (options_.preferred.count(partition) ? milliseconds(0) : options_.standby_delay) +
      milliseconds(jitter);
  return Clock::now() + wait;
}

void PartitionLeadership::reconcile_locked(std::vector<std::pair<uint32_t, int64_t>>* lost) {
  for (auto it = mine_.begin(); it != mine_.end();) {
    auto c = cache_.find(it->first);
    const bool shown = c != cache_.end() && c->second.epoch == it->second;
    if (!shown && mirror_revision_ >= it->second) {
      lost->emplace_back(it->first, it->second);
      it = mine_.erase(it);
    } else {
      ++it;
    }
  }
  schedule_vacant_locked();
}

void PartitionLeadership::schedule_vacant_locked() {
  for (uint32_t p : options_.partitions) {
    if (cache_.count(p) || mine_.count(p) || due_.count(p)) continue;
    due_[p] = campaign_time_locked(p);
  }
}

void PartitionLeadership::find_stale_locked() {
  const int64_t current_lease = lease_.id();
  for (const auto& [p, info] : cache_) {
    auto mine = mine_.find(p);
    if (info.node == self_.node && (mine == mine_.end() || mine->second != info.epoch) &&
        info.lease != current_lease)
      stale_[p] = info;
  }
}

void PartitionLeadership::on_changes(const std::vector<PrefixMirror::Change>& changes,
                                     int64_t revision) {
  std::lock_guard callbacks(cb_mu_);
  std::vector<std::pair<uint32_t, int64_t>> lost;
  {
    std::lock_guard lock(mu_);
    for (const auto& c : changes) {
      auto p = layout_.partition_of_leader(c.key);
      if (!p) continue;
      stale_.erase(*p);
      if (!c.after) {
        cache_.erase(*p);
        continue;
      }
      LeaderInfo info;
      info.epoch = c.after->create_revision;
      info.lease = c.after->lease;
      if (auto rec = parse_leader_record(c.after->value, c.key); rec.ok()) {
        info.node = rec->node;
        info.http = rec->http;
        info.cluster = rec->cluster;
      }
      cache_[*p] = std::move(info);
    }
    mirror_revision_ = std::max(mirror_revision_, revision);
    reconcile_locked(&lost);
    find_stale_locked();
  }
  cv_.notify_all();
  for (auto [p, epoch] : lost) {
    if (callbacks_.on_lost) callbacks_.on_lost(p, epoch);
  }
}

void PartitionLeadership::on_lease(NodeLease::Event event) {
  std::lock_guard callbacks(cb_mu_);
  std::map<uint32_t, int64_t> lost;
  {
    std::lock_guard lock(mu_);
    if (event == NodeLease::Event::kLost) {
      lost.swap(mine_);
    } else {
      schedule_vacant_locked();
      find_stale_locked();  // keys of the old lease that its revoke missed
    }
  }
  cv_.notify_all();
  for (auto [p, epoch] : lost) {
    if (callbacks_.on_lost) callbacks_.on_lost(p, epoch);
  }
}

void PartitionLeadership::record_win(uint32_t partition, int64_t epoch, int64_t lease_id) {
  bool elected = false;
  {
    std::lock_guard lock(mu_);
    // The lease we campaigned with is gone: on_lease() has run or will; the
    // key goes with the lease.
    if (lease_.id() != lease_id || !lease_.valid()) return;
    auto c = cache_.find(partition);
    const bool shown = c != cache_.end() && c->second.epoch == epoch;
    if (!shown && mirror_revision_ >= epoch) return;  // already deleted again
    if (mine_.count(partition)) return;
    mine_[partition] = epoch;
    ++won_;
    elected = true;
  }
  if (elected && callbacks_.on_elected) callbacks_.on_elected(partition, epoch);
}

void PartitionLeadership::campaign(uint32_t partition) {
  const int64_t lease_id = lease_.id();
  const auto retry = [&] {
    std::lock_guard lock(mu_);
    if (!due_.count(partition)) due_[partition] = Clock::now() + options_.retry;
  };
  if (lease_id == 0 || !lease_.valid()) return retry();
  const std::string key = layout_.leader(partition);
  TxnRequest txn;
  txn.compare.push_back(Compare::create_revision_is(key, Compare::Op::kEqual, 0));
  txn.success.push_back(PutRequest{key, to_json(self_), lease_id, false});
  txn.failure.push_back(RangeRequest::single(key));
  auto r = etcd_.txn(txn);
  int64_t epoch = 0;
  if (r.ok()) {
    if (!r->succeeded) return;   // someone leads; the mirror tells us who
    epoch = r->header.revision;  // the put is the txn's only write
  } else if (r.status().is(ClusterErrc::kTimeout) || r.status().is(ClusterErrc::kOutcomeUnknown)) {
    auto again = etcd_.range(RangeRequest::single(key));
    if (!again.ok() || again->kvs.empty()) return retry();
    const KeyValue& kv = again->kvs[0];
    if (kv.lease != lease_id) return;  // not ours
    epoch = kv.create_revision;
  } else {
    return retry();
  }
  std::lock_guard callbacks(cb_mu_);
  record_win(partition, epoch, lease_id);
}

void PartitionLeadership::campaign_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (!stale_.empty()) {
      const auto [p, info] = *stale_.begin();
      stale_.erase(stale_.begin());
      lock.unlock();
      // Ours by node id, not led by us, under a lease we no longer hold: a
      // leftover of an earlier lease or process. Delete it rather than let
      // its partition wait out the TTL.
      const std::string key = layout_.leader(p);
      TxnRequest txn;
      txn.compare.push_back(Compare::create_revision_is(key, Compare::Op::kEqual, info.epoch));
      txn.compare.push_back(Compare::lease_is(key, Compare::Op::kEqual, info.lease));
      txn.success.push_back(DeleteRequest::single(key));
      (void)etcd_.txn(txn);
      lock.lock();
      continue;
    }
    const auto now = Clock::now();
    auto next = due_.end();
    for (auto it = due_.begin(); it != due_.end(); ++it) {
      if (next == due_.end() || it->second < next->second) next = it;
    }
    if (next == due_.end()) {
      // Nothing scheduled: a periodic sweep in case a wake-up was missed.
      cv_.wait_for(lock, milliseconds(1000));
      if (!stopping_) schedule_vacant_locked();
      continue;
    }
    if (next->second > now) {
      cv_.wait_until(lock, next->second);
      continue;
    }
    const uint32_t p = next->first;
    due_.erase(next);
    if (cache_.count(p) || mine_.count(p) || !options_.partitions.count(p)) continue;
    if (auto h = holdoff_.find(p); h != holdoff_.end()) {
      if (h->second > now) {
        due_[p] = h->second;
        continue;
      }
      holdoff_.erase(h);
    }
    if (options_.may_campaign && !options_.may_campaign()) {
      due_[p] = now + options_.retry;
      continue;
    }
    lock.unlock();
    campaign(p);
    lock.lock();
  }
}

Status PartitionLeadership::resign(uint32_t partition) {
  return resign(partition, options_.resign_holdoff);
}

Status PartitionLeadership::resign(uint32_t partition, milliseconds holdoff) {
  int64_t epoch = 0;
  {
    std::lock_guard lock(mu_);
    auto it = mine_.find(partition);
    if (it == mine_.end())
      return Status(ClusterErrc::kNotLeader,
                    "this node does not lead partition " + std::to_string(partition));
    epoch = it->second;
  }
  const std::string key = layout_.leader(partition);
  TxnRequest txn;
  txn.compare.push_back(Compare::create_revision_is(key, Compare::Op::kEqual, epoch));
  txn.success.push_back(DeleteRequest::single(key));
  auto r = etcd_.txn(txn);
  if (!r.ok()) return r.status();
  // Deleted, or the key is not our epoch's any more: either way it is over.
  std::lock_guard callbacks(cb_mu_);
  bool lost = false;
  {
    std::lock_guard lock(mu_);
    holdoff_[partition] = Clock::now() + holdoff;
    auto it = mine_.find(partition);
    if (it != mine_.end() && it->second == epoch) {
      mine_.erase(it);
      lost = true;
    }
  }
  cv_.notify_all();
  if (lost && callbacks_.on_lost) callbacks_.on_lost(partition, epoch);
  return Status::ok();
}

}  // namespace yantra::cluster
