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
// Placement: the controller (cluster/controller.hpp; one node at a time)
// writes P/placement/<p> = {replicas, preferred}; every node follows it: the
// preferred node campaigns at once (others after the standby delay), a
// leader hands a partition to its preferred node once that node is ready,
// and a leader whose open segment's replicas are not the placement's hands
// it to a new epoch whose segment opens on them (this node first, then the
// placement's replicas; one may be down: the segment commits on any W).
// Before any placement exists (a cluster's first second) a partition
// prefers the live node ranking first by rendezvous hashing, and segments
// open on live nodes by that ranking. Losing the controller stops nothing:
// nodes follow the last placement.
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
  // A node down this long has its replicas replaced by the controller.
  std::chrono::milliseconds down_grace{30000};
  // How often a partition leader looks for segments to trim (docs/cluster.md,
  // "Trimming"); 0: never on its own (trim_now() still does).
  std::chrono::milliseconds trim_interval{10000};
};

// A node as this node sees it (GET /admin/v1/cluster). state: "alive"
// (lease live), "draining" (live, an operator drains it), "suspect" (no
// live lease for less than the grace period: its replicas are kept),
// "down" (past the grace period: its replicas are replaced), "removed".
struct NodeStatus {
  std::string id;
  std::optional<NodeRecord> record;  // while live
  std::string state;
  NodeAdminState admin = NodeAdminState::kActive;
  int64_t down_for_ms = 0;  // not live for this long (0 while live)
  size_t leads = 0;         // partitions it leads now (leader keys)
  size_t replicas = 0;      // partitions whose placement names it
  size_t preferred = 0;     // partitions whose placement prefers it
  // Draining, and neither leads nor is named by any placement.
  bool drained = false;
};

// The answer to a leadership move: the placement written, the leader as
// etcd says at the answer, and whether it is the node asked for.
struct LeaderMove {
  PlacementRecord placement;
  std::optional<std::string> leader;
  int64_t epoch = 0;
  bool moved = false;
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

// One partition as one node holds it (GET /admin/v1/cluster puts every
// node's side by side; proto/yantra/v1/node_status.proto carries it).
struct ReplicaPosition {
  uint32_t partition = 0;
  bool leads = false;        // its replicated log is open on this node
  uint64_t applied_lsn = 0;  // this node's state (the store's applied marker)
  // The highest lsn this node's segment store holds of `segment`: the open
  // segment (the leader's epoch) when it holds it, else its newest one.
  uint64_t durable_lsn = 0;
  uint64_t segment = 0;  // 0: no segment of the partition held here
  // Its own commit point while it leads; else the last one the leader sent.
  uint64_t committed_lsn = 0;
  std::vector<std::string> segment_replicas;  // of the open segment, while it leads
};

// What a node is doing now.
struct NodeLoad {
  uint64_t active_executions = 0;  // execution actors alive in its engine
  uint64_t executions_started = 0;
  uint64_t executions_finished = 0;
  double cpu_seconds = 0;  // user + system CPU time of the process
  uint64_t rss_bytes = 0;  // resident set size of the process
};

// A node's report of itself (ClusterNode::report, gather_reports).
struct NodeReport {
  std::string node;
  std::string version;
  int64_t at_ms = 0;
  NodeLoad load;
  std::vector<ReplicaPosition> partitions;  // every partition, by id
};

// One etcd endpoint as its maintenance status answered (or did not).
struct EtcdEndpointStatus {
  std::string url;
  bool reachable = false;
  std::string error;       // why not, when not reachable
  uint64_t member_id = 0;  // the member behind the endpoint
  uint64_t leader_id = 0;  // the leader as that member sees it (0: none)
  int64_t db_size_bytes = 0;
  uint64_t raft_index = 0;
  uint64_t raft_term = 0;
  std::string version;  // etcd's
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
  // Sends `payload` to `service` on `node`; `done` exactly once. A live
  // node this one is not linked to yet (it just joined, or its link is
  // being re-made) is waited for, up to 2 s within `timeout`, rather than
  // refused at once (peer_unavailable then).
  void request(const std::string& node, const std::string& service, std::string payload,
               std::chrono::milliseconds timeout, std::function<void(Result<std::string>)> done);

  // Whether this node may fire schedule slot `slot_ms` of (tenant, flow):
  // it leads partition_of_key(tenant, flow) and a fenced etcd txn moved the
  // flow's slot marker to it (once per slot in the whole cluster). Blocks on
  // etcd (the scheduler's thread).
  bool claim_schedule_slot(const std::string& tenant, const std::string& flow_id, int64_t slot_ms);

  std::vector<PartitionView> partitions() const;

  // The operators' picture (GET /admin/v1/cluster). report(): this node's
  // positions of every partition and its load; reads the store, so call it
  // from a worker thread. gather_reports(): asks every other live node for
  // its report (transport service "status", each request bounded by
  // `timeout`), then makes this node's on the calling thread (a worker
  // thread, never a CAF or HTTP I/O thread); `done` gets every live node's
  // answer (a report, or why not: not connected, no answer in time, an
  // older node without the service) exactly once, on the calling thread or
  // a transport thread, no later than `timeout` after the requests went.
  Result<NodeReport> report() const;
  // One round of the trim loop now, on the calling thread (blocks on etcd
  // and rpcs: a worker or test thread): returns the segments it dropped
  // from the chains of the partitions led here.
  size_t trim_now();
  void gather_reports(std::chrono::milliseconds timeout,
                      std::function<void(std::map<std::string, Result<NodeReport>>)> done);
  // Every etcd endpoint's maintenance status, asked at once, each within
  // `timeout` (a dead or paused member costs no more). Blocks: a worker
  // thread only.
  std::vector<EtcdEndpointStatus> etcd_status(std::chrono::milliseconds timeout);
  std::map<std::string, NodeRecord> live_nodes() const;
  // Whether this node can accept and commit writes now (readiness).
  bool can_write() const;

  // The controller and the placement (in memory: any thread).
  std::vector<NodeStatus> nodes() const;
  // The controller's node id (nullopt: none now).
  std::optional<std::string> controller() const;
  bool is_controller() const;
  std::optional<PlacementRecord> placement(uint32_t partition) const;

  // Operators' commands (docs/cluster.md, runbook). They block on etcd (and
  // move_leader / remove_node on the cluster for up to `wait`): call them
  // from a worker thread, never an HTTP I/O or CAF thread. Errors:
  // kNotFound (no such node or partition), kConflict (not allowed in the
  // node's state, naming why), kInvalidArgument (a bad replica list), etcd's.
  Result<NodeStatus> drain(const std::string& id);
  Result<NodeStatus> undrain(const std::string& id);
  // Only a drained or down node: its replicas are replaced first (state
  // draining until no placement names it, at most `wait`), then it is
  // marked removed.
  Result<NodeStatus> remove_node(const std::string& id, std::chrono::milliseconds wait);
  // Sets the partition's preferred node (added to its replicas in place of
  // the last other one when it is not among them) and waits up to `wait`
  // for the leadership to move.
  Result<LeaderMove> move_leader(uint32_t partition, const std::string& node,
                                 std::chrono::milliseconds wait);
  Result<PlacementRecord> set_replicas(uint32_t partition, const std::vector<std::string>& nodes);
  // Asks the controller to even out replicas and leaderships now.
  Status rebalance();

  struct Impl;

 private:
  explicit ClusterNode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace yantra::cluster
