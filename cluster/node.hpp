// ClusterNode: one node of a Yantra cluster, composed from the parts of
// cluster/ around this node's Engine (docs/cluster.md):
//
//   etcd ── NodeLease ── Membership (P/nodes/<id>) ── peers connected over the Transport
//        └─ PartitionLeadership (P/leader/<p>) ── on elected: recovery, then a
//           ReplicatedPartitionLog handed to Engine::lead_partition;
//           on lost / deposed: Engine::release_partition, then follow
//   Transport "log" service ── LogServer (this node as a replica) ── FollowerApplier
//
// Leadership transitions run on a few transition threads, a partition's
// always on the same one (so "elected" and "lost" of one partition stay in
// order, and a slow recovery delays only its stripe). Recovery is retried
// while the node still holds the epoch it recovers for.
//
// Placement without a controller (until there is one): every node may lead
// every partition; a partition prefers the live node that ranks first for
// it by rendezvous hashing, and a node leading more than its share resigns
// partitions whose preferred node is alive, so leaderships spread as nodes
// join. Segment replicas: this node, then live nodes by the same ranking,
// then (with fewer live nodes than the replication factor) the previous
// segment's replicas, so a segment may name a down node and commit on any W.
//
// Threads: start() blocks (etcd, connects): call it from main. Accessors
// from any thread. The destructor resigns nothing explicitly: it stops the
// leadership (which deletes our leader keys, so failover is immediate),
// releases every partition from the engine, and stops the rest. The Engine
// must outlive the node.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "cluster/layout.hpp"

namespace yantra {
class Engine;
}  // namespace yantra

namespace yantra::cluster {

class EtcdClient;
class Transport;

struct ClusterNodeOptions {
  std::string node_id;
  std::vector<std::string> etcd;  // http://HOST:PORT endpoints
  std::string prefix = "/yantra";
  std::string cluster_listen;  // HOST:PORT of the node-to-node transport
  std::string http_address;    // HOST:PORT of this node's HTTP API (advertised)
  std::string cluster_key_file;
  std::string data_dir;  // node credentials go under <data_dir>/cluster-tls
  std::string version;
  std::chrono::seconds lease_ttl{3};
  std::chrono::milliseconds rpc_timeout{1000};
  size_t transition_threads = 4;
};

// What a node knows of one partition (for /admin/v1/cluster and routing).
struct PartitionView {
  uint32_t partition = 0;
  std::optional<std::string> leader;  // node id; nullopt = none now
  int64_t epoch = 0;
  bool led_here = false;
  uint64_t applied_lsn = 0;           // this node's state
  uint64_t committed_lsn = 0;         // as the leader told us (or, led here, ours)
  std::vector<std::string> replicas;  // of the open segment, when led here
};

class ClusterNode {
 public:
  // Connects to etcd and reads the cluster's meta record (written by
  // `yantra cluster init`): the engine must then be opened with
  // meta().partitions partitions and lead_all_partitions = false.
  static Result<std::unique_ptr<ClusterNode>> connect(ClusterNodeOptions options);
  ~ClusterNode();
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  const ClusterMeta& meta() const;
  const std::string& node_id() const;
  const Layout& layout() const;
  EtcdClient& etcd();

  // Joins: transport, log server, lease, membership, leadership. The engine
  // must have meta().partitions partitions. `services` registers further
  // transport services (the API's) before the transport listens. Blocks
  // until registered.
  Status start(Engine& engine, std::function<void(Transport&)> services = {});

  // Routing: the leader of `partition` ("" = this node; nullopt = none).
  std::optional<std::string> leader_of(uint32_t partition) const;
  // A node that leads at least one partition ("" = this node), for starts
  // this node cannot place.
  std::optional<std::string> any_leader() const;
  // The transport, once started (for services such as the API's).
  Transport* transport();
  // Sends `payload` to `service` on `node`; `done` exactly once.
  void request(const std::string& node, const std::string& service, std::string payload,
               std::chrono::milliseconds timeout, std::function<void(Result<std::string>)> done);

  // Whether this node may fire schedule slot `slot_ms` of (tenant, flow):
  // it leads partition_of_key(tenant, flow) and a fenced etcd txn moved the
  // flow's slot marker to it (once per slot in the whole cluster). Blocks on
  // etcd (the scheduler's thread).
  bool claim_schedule_slot(const std::string& tenant, const std::string& flow_id, int64_t slot_ms);

  std::vector<PartitionView> partitions() const;
  std::map<std::string, NodeRecord> live_nodes() const;
  // Whether this node can accept and commit writes now (readiness).
  bool can_write() const;

  struct Impl;

 private:
  explicit ClusterNode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace yantra::cluster
