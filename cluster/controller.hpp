// The controller: the one node (at a time) that decides where partitions
// live (docs/cluster.md, "Controller and placement"; issue 11).
//
// Election. Every node runs a Controller; the holder of P/controller, a key
// created only if absent under the holder's node lease, is the controller.
// When its lease lapses (the node died, hung or lost etcd) the key expires
// and another node's next tick creates it. Every placement write compares
// the key's create_revision, so a deposed controller's write fails in etcd.
//
// What it writes: P/placement/<p> = {replicas, preferred} for every
// partition, planned by plan_placement() (pure, below) from what it reads
// each tick: the live nodes (P/nodes/), the operators' node states
// (P/node-admin/), the current placement and the rebalance requests
// (P/rebalance). Each write also compares the placement key's mod_revision
// as read, so an operator's write in between (move-leader, set-replicas)
// is never overwritten by a plan made before it: the tick re-plans.
//
// What it does not do: touch the data path. Nodes follow the placement
// (cluster/node.cpp): the preferred node campaigns for the leadership at
// once, a leader whose preferred node is another ready node resigns, and a
// leader whose open segment's replicas differ from the placement's hands
// over to a new epoch that opens a segment on them. Losing the controller
// therefore stops nothing: nodes keep leading and following with the last
// placement until another controller writes a new one.
//
// Threads: one thread of its own (ticks every `tick`, or at once after
// poke()); `read_view` is called on it and must not block long (the node's
// in-memory mirrors). is_controller() and poke() from any thread. The
// destructor joins the thread (it does not delete the key: the node lease's
// revoke on a clean stop does). The EtcdClient and NodeLease must outlive it.
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
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_client.hpp"
#include "cluster/layout.hpp"

namespace yantra::cluster {

class NodeLease;

// --- planning (pure) ---------------------------------------------------------

struct PlanInput {
  uint32_t partitions = 0;
  uint32_t replication = 0;
  // Alive and active nodes: the only ones that receive replicas and
  // leaderships.
  std::set<std::string> eligible;
  // Nodes whose replicas stay where they are: `eligible` plus active nodes
  // down for less than the grace period. A replica on any other node
  // (draining, removed, down past the grace) is replaced.
  std::set<std::string> keep;
  std::map<uint32_t, PlacementRecord> current;
  // Also even out replica and leadership counts over `eligible` (moves
  // replicas and leaderships that are valid where they are). Without it the
  // plan only repairs: fills missing replicas, replaces invalid ones, and
  // moves leaderships off nodes that are not eligible.
  bool balance = false;
};

// The placement of every partition 0..partitions-1. Deterministic, and a
// fixed point: planning its own output again changes nothing. Each
// partition gets min(replication, eligible + kept) replicas, its preferred
// node is one of them and eligible; a partition with no eligible node keeps
// its current record (or gets none). Counts differ by at most one between
// eligible nodes after a balancing plan (when the replica sets allow it).
std::map<uint32_t, PlacementRecord> plan_placement(const PlanInput& in);

// The rendezvous score of (partition, node): ties in planning are broken by
// it, and nodes fall back to it before any placement exists.
uint64_t rendezvous_score(uint32_t partition, const std::string& node);

// --- the controller -------------------------------------------------------------

struct ControllerOptions {
  std::string node_id;
  // A node down this long has its replicas replaced.
  std::chrono::milliseconds down_grace{30000};
  std::chrono::milliseconds tick{500};
};

class Controller {
 public:
  // What the node knows now (its mirrors), read on every tick.
  struct View {
    std::map<std::string, NodeRecord> live;
    std::map<std::string, NodeAdminState> admin;
    // partition -> (record, mod_revision of its key)
    std::map<uint32_t, std::pair<PlacementRecord, int64_t>> placement;
    int64_t rebalance_revision = 0;  // mod_revision of P/rebalance (0: none)
  };
  using ReadView = std::function<View()>;

  Controller(EtcdClient& etcd, const Layout& layout, NodeLease& lease, ClusterMeta meta,
             ControllerOptions options, ReadView read_view);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  bool is_controller() const { return active_.load(std::memory_order_acquire); }
  // The controller's node id as etcd said at our last tick ("" = none).
  std::string holder() const;
  // Ticks now (membership, node states or placement changed).
  void poke();
  // Placement records written so far by this node (tests, metrics).
  int64_t writes() const { return writes_.load(std::memory_order_acquire); }

 private:
  void run();
  void tick();
  // True while we hold the key (taking it when it is vacant); reads the key
  // from etcd (a mirror may not show our own create yet).
  bool hold();
  void plan_and_write(const View& view);

  EtcdClient& etcd_;
  const Layout layout_;
  NodeLease& lease_;
  const ClusterMeta meta_;
  const ControllerOptions options_;
  const ReadView read_view_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string holder_;
  bool stopping_ = false;
  bool poked_ = false;

  // Only the controller thread touches these.
  int64_t key_revision_ = 0;  // create_revision of our P/controller key
  std::map<std::string, std::chrono::steady_clock::time_point> down_since_;
  std::set<std::string> last_eligible_;
  int64_t last_rebalance_ = -1;

  std::atomic<bool> active_{false};
  std::atomic<int64_t> writes_{0};
  std::thread thread_;
};

}  // namespace yantra::cluster
