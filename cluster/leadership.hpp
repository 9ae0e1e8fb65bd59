// Partition leadership by etcd: a node leads partition p while it holds
// P/leader/<p>, a key created only if absent (txn: create_revision == 0) and
// attached to the node's lease; the key's create_revision is the
// leadership's epoch, which only grows (docs/cluster.md, "Membership and
// leadership"; shared/notes/replicated-log.md).
//
// What a PartitionLeadership does for the partitions it is given:
// - watches P/leader/ (a PrefixMirror) and keeps every partition's leader
//   and epoch, readable from any thread (leader_of);
// - campaigns for a partition whose key is absent: at once (plus up to
//   `jitter`) where the partition is `preferred` here, after
//   `standby_delay` (plus jitter) elsewhere, so placement hints win while
//   their node is alive, and any live node takes over when it is not;
// - calls on_elected(p, epoch) when it won, on_lost(p, epoch) when the
//   leadership ended: our key deleted or replaced, resign(), or the node lease
//   lost. The lease case fires the moment NodeLease says invalid, which is
//   before etcd can have expired the key (node_lease.hpp, lease accounting);
// - deletes its own leftover keys (this node's id under another lease, e.g.
//   from before a restart) so their partitions need not wait for the TTL.
//
// Node ids must be unique in the cluster: two processes with one id would
// take each other's keys for leftovers and delete them.
//
// Not here: moving leadership on purpose (the controller writes placement;
// this node then resigns and the preferred node's campaign wins).
//
// Threads: leader_of, my_epoch, led, set_preferred from any thread (a
// mutex, no etcd call). resign() blocks on etcd: cluster threads only. The
// callbacks run on the campaign thread, the mirror's threads or the lease's
// threads, one at a time and in order per partition (elected before lost);
// keep them short, never call etcd, resign() or the destructor from them.
// The destructor stops the threads, deletes the keys it still holds (so
// failover is immediate on a clean stop) and calls on_lost for each. The
// EtcdClient and the NodeLease must outlive it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/result.hpp"
#include "cluster/layout.hpp"
#include "cluster/node_lease.hpp"
#include "cluster/prefix_mirror.hpp"

namespace yantra::cluster {

struct LeaderInfo {
  std::string node;   // "" when the key's value does not parse
  int64_t epoch = 0;  // the key's create_revision
  int64_t lease = 0;
  std::string http;
  std::string cluster;
};

struct LeadershipOptions {
  std::set<uint32_t> partitions;  // campaign for these
  std::set<uint32_t> preferred;   // campaign for these at once
  // The wait of a non-preferred node before it campaigns for a vacant
  // partition. Failover when the preferred node is the one that died: lease
  // TTL + standby_delay + jitter (docs/cluster.md, timings).
  std::chrono::milliseconds standby_delay{500};
  // Random 0..jitter added to each campaign, so nodes do not collide.
  std::chrono::milliseconds jitter{100};
  // After a failed campaign (etcd error, no lease).
  std::chrono::milliseconds retry{250};
  // After resign(p), p is not campaigned for here for this long.
  std::chrono::milliseconds resign_holdoff{3000};
  // Bound on the wait for the first listing of P/leader/ in start().
  std::chrono::milliseconds sync_timeout{5000};
  // Asked before each campaign (with a lock held: cheap, never blocking);
  // false skips it and asks again after `retry`. Null: always campaign.
  // A node whose store refuses writes must not take leaderships.
  std::function<bool()> may_campaign;
};

class PartitionLeadership {
 public:
  struct Callbacks {
    std::function<void(uint32_t partition, int64_t epoch)> on_elected;
    std::function<void(uint32_t partition, int64_t epoch)> on_lost;
  };

  // `self.node` must be a valid node id (kInvalidArgument).
  static Result<std::unique_ptr<PartitionLeadership>> start(EtcdClient& etcd, const Layout& layout,
                                                            NodeLease& lease, LeaderRecord self,
                                                            LeadershipOptions options,
                                                            Callbacks callbacks);
  ~PartitionLeadership();
  PartitionLeadership(const PartitionLeadership&) = delete;
  PartitionLeadership& operator=(const PartitionLeadership&) = delete;

  // Any partition's leader as etcd's watch last said; nullopt when vacant.
  std::optional<LeaderInfo> leader_of(uint32_t partition) const;
  // Our epoch when we lead `partition` and the lease is valid right now.
  std::optional<int64_t> my_epoch(uint32_t partition) const;
  // Partitions we lead -> epoch.
  std::map<uint32_t, int64_t> led() const;
  // Deletes P/leader/<p> if its create_revision is still our epoch, calls
  // on_lost, and holds off our campaigns for p (resign_holdoff).
  // kNotLeader when we do not lead p; etcd's error when the delete failed
  // (we then still lead).
  Status resign(uint32_t partition);
  // The same with another holdoff: 0 campaigns again at once (as a
  // preferred node), for a leader that hands a partition to a new epoch of
  // its own (a new segment on a new replica set).
  Status resign(uint32_t partition, std::chrono::milliseconds holdoff);
  void set_preferred(uint32_t partition, bool preferred);
  int64_t campaigns_won() const;

 private:
  PartitionLeadership(EtcdClient& etcd, const Layout& layout, NodeLease& lease, LeaderRecord self,
                      LeadershipOptions options, Callbacks callbacks);
  void campaign_loop();
  void campaign(uint32_t partition);
  // With cb_mu_ held: records a won campaign unless it is already over.
  void record_win(uint32_t partition, int64_t epoch, int64_t lease_id);
  void on_changes(const std::vector<PrefixMirror::Change>& changes, int64_t revision);
  void on_lease(NodeLease::Event event);
  // With mu_ held: drops leaderships whose key the mirror no longer shows
  // (appended to `lost`), schedules campaigns for vacant partitions.
  void reconcile_locked(std::vector<std::pair<uint32_t, int64_t>>* lost);
  void schedule_vacant_locked();
  // With mu_ held: our node's keys under another lease, to delete.
  void find_stale_locked();
  std::chrono::steady_clock::time_point campaign_time_locked(uint32_t partition);

  EtcdClient& etcd_;
  const Layout layout_;
  NodeLease& lease_;
  const LeaderRecord self_;
  LeadershipOptions options_;
  const Callbacks callbacks_;

  std::mutex cb_mu_;       // held while a transition is made and its callback runs
  mutable std::mutex mu_;  // guards what follows; taken after cb_mu_
  std::condition_variable cv_;
  std::map<uint32_t, LeaderInfo> cache_;
  int64_t mirror_revision_ = 0;
  std::map<uint32_t, int64_t> mine_;                               // partition -> epoch we lead
  std::map<uint32_t, std::chrono::steady_clock::time_point> due_;  // scheduled campaigns
  std::map<uint32_t, std::chrono::steady_clock::time_point> holdoff_;
  std::map<uint32_t, LeaderInfo> stale_;  // our leftover keys to delete
  std::mt19937_64 rng_;
  int64_t won_ = 0;
  bool stopping_ = false;

  int64_t subscription_ = 0;
  std::thread campaigner_;
  std::unique_ptr<PrefixMirror> mirror_;
};

}  // namespace yantra::cluster
