// The cluster's etcd key layout and the JSON records stored under it
// (docs/cluster.md, "Membership and leadership"). Every node and the
// `yantra cluster` commands name keys only through Layout, so the layout
// lives in one place:
//
//   P/meta                          ClusterMeta (created once by init_cluster)
//   P/nodes/<id>                    NodeRecord, leased by the node's lease
//   P/node-admin/<id>               operator state of a node (controller)
//   P/leader/<p>                    LeaderRecord, leased; epoch = create_revision
//   P/segments/<p>/<epoch:020>      SegmentRecord: the partition's log chain
//   P/placement/<p>                 replicas and preferred leader (controller)
//   P/controller                    the controller's leased key
//   P/rebalance                     an operator's rebalance request (controller)
//
// Epochs are written as 20 zero-padded digits so that etcd's byte order of
// the keys is the epochs' numeric order (a range over P/segments/<p>/ lists
// the chain oldest first).
//
// Records are JSON objects. Parsing refuses a value that is not one, lacks a
// field, has a field of the wrong type or out of range, with
// kInvalidRecord naming the key and the field; unknown fields are ignored so
// that a newer node's extra fields do not break an older one during a
// rolling upgrade (`protocol` says when a change is incompatible). Nothing
// here throws: nlohmann's exceptions stay inside layout.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "cluster/errc.hpp"

namespace yantra::cluster {

class EtcdClient;

// The records' protocol version: written into ClusterMeta and NodeRecord.
inline constexpr int64_t kClusterProtocol = 1;
inline constexpr uint32_t kMaxPartitions = 4096;
inline constexpr uint32_t kMaxReplication = 7;

// Node ids: 1-64 characters of [A-Za-z0-9._-] (they are etcd key segments
// and appear in URLs and logs). kInvalidArgument otherwise.
Status validate_node_id(std::string_view id);

class Layout {
 public:
  // `prefix` "/yantra" by default; a missing leading '/' is added and
  // trailing '/' are dropped ("/" alone becomes "", keys then start at "/").
  explicit Layout(std::string_view prefix = "/yantra");

  const std::string& prefix() const { return prefix_; }

  std::string meta() const { return prefix_ + "/meta"; }
  std::string nodes() const { return prefix_ + "/nodes/"; }
  std::string node(std::string_view id) const { return nodes() + std::string(id); }
  std::string node_admins() const { return prefix_ + "/node-admin/"; }
  std::string node_admin(std::string_view id) const { return node_admins() + std::string(id); }
  std::string leaders() const { return prefix_ + "/leader/"; }
  std::string leader(uint32_t partition) const { return leaders() + std::to_string(partition); }
  // "P/segments/<p>/": the chain of one partition.
  std::string segments(uint32_t partition) const;
  std::string segment(uint32_t partition, int64_t epoch) const;
  std::string placements() const { return prefix_ + "/placement/"; }
  std::string placement(uint32_t partition) const {
    return placements() + std::to_string(partition);
  }
  std::string controller() const { return prefix_ + "/controller"; }
  std::string rebalance() const { return prefix_ + "/rebalance"; }
  // The inverse of node_admin() / placement(): nullopt for another shape.
  std::optional<std::string> node_id_of_admin(std::string_view key) const;
  std::optional<uint32_t> partition_of_placement(std::string_view key) const;

  // The inverse of node() / leader(): nullopt for a key of another shape.
  std::optional<std::string> node_id_of(std::string_view key) const;
  std::optional<uint32_t> partition_of_leader(std::string_view key) const;

 private:
  std::string prefix_;
};

struct ClusterMeta {
  std::string cluster_id;  // random, 32 hex digits, fixed at init
  uint32_t partitions = 0;
  uint32_t replication = 0;
  uint32_t write_quorum = 0;  // replication / 2 + 1
  int64_t protocol = kClusterProtocol;
  bool operator==(const ClusterMeta&) const = default;
};

struct NodeRecord {
  std::string id;       // --node-id
  std::string http;     // HOST:PORT of the HTTP API
  std::string cluster;  // HOST:PORT of the node-to-node transport
  std::string version;  // Yantra's version
  int64_t protocol = kClusterProtocol;
  int64_t started_ms = 0;  // Unix ms when the process started
  // false while its store refuses writes (disk under its floor, a write
  // error): the controller then prefers other nodes for its partitions and
  // no leader hands one to it. Absent in older records = true.
  bool writable = true;
  bool operator==(const NodeRecord&) const = default;
};

struct LeaderRecord {
  std::string node;
  std::string http;
  std::string cluster;
  bool operator==(const LeaderRecord&) const = default;
};

// One segment of a partition's log (shared/notes/replicated-log.md): written
// by the leader of `epoch`, stored on `replicas`, LSNs from `first_lsn`;
// sealed_end (the last LSN of the segment; first_lsn - 1 when empty) once a
// later leader sealed it, absent while it is open.
struct SegmentRecord {
  int64_t epoch = 0;
  std::string writer;
  std::vector<std::string> replicas;
  uint64_t first_lsn = 0;
  std::optional<uint64_t> sealed_end;
  bool operator==(const SegmentRecord&) const = default;
};

// Where a partition should live (P/placement/<p>), written by the
// controller or an operator: the replicas its next segment opens on and the
// node that should lead it (one of the replicas).
struct PlacementRecord {
  std::vector<std::string> replicas;
  std::string preferred;
  bool operator==(const PlacementRecord&) const = default;
};

// The operator's state of a node (P/node-admin/<id>); no record = active.
enum class NodeAdminState { kActive, kDraining, kRemoved };
const char* to_string(NodeAdminState s);
std::optional<NodeAdminState> parse_node_admin_state(std::string_view s);

// The controller's key (P/controller), under its node lease.
struct ControllerRecord {
  std::string node;
  bool operator==(const ControllerRecord&) const = default;
};

std::string to_json(const ClusterMeta& m);
std::string to_json(const PlacementRecord& p);
std::string to_json(NodeAdminState s);
std::string to_json(const ControllerRecord& c);
std::string to_json(const NodeRecord& n);
std::string to_json(const LeaderRecord& l);
std::string to_json(const SegmentRecord& s);

// `key` only names the record in error messages.
Result<ClusterMeta> parse_cluster_meta(std::string_view value, std::string_view key = "meta");
Result<NodeRecord> parse_node_record(std::string_view value, std::string_view key = "node");
Result<LeaderRecord> parse_leader_record(std::string_view value, std::string_view key = "leader");
Result<SegmentRecord> parse_segment_record(std::string_view value,
                                           std::string_view key = "segment");
Result<PlacementRecord> parse_placement_record(std::string_view value,
                                               std::string_view key = "placement");
Result<NodeAdminState> parse_node_admin_record(std::string_view value,
                                               std::string_view key = "node-admin");
Result<ControllerRecord> parse_controller_record(std::string_view value,
                                                 std::string_view key = "controller");

// Creates the cluster under the layout's prefix: P/meta by a create-if-absent
// txn. The same partitions and replication again return the existing meta
// (idempotent: a retried `cluster init` or several nodes racing to create it
// all succeed with one cluster_id); other values are kClusterExists naming
// both. kInvalidArgument unless 1 <= partitions <= 4096 and 1 <= replication
// <= 7. A write whose outcome etcd left unknown is settled by re-reading.
Result<ClusterMeta> init_cluster(EtcdClient& etcd, const Layout& layout, uint32_t partitions,
                                 uint32_t replication);
// The meta record; Errc::kNotFound when no cluster was created there.
Result<ClusterMeta> load_cluster(EtcdClient& etcd, const Layout& layout);

}  // namespace yantra::cluster
