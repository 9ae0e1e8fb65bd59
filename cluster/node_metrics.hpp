// NodeMetrics: a cluster node's view of its partitions and peers as
// Prometheus gauges, read at scrape time (a collector of the global metrics
// registry) rather than kept current on the data path:
//
//   yantra_cluster_partition_led{partition}          1 when led here, else 0
//   yantra_cluster_partition_epoch{partition}        the epoch this node knows
//   yantra_cluster_partition_committed_lsn{partition} the commit point it knows
//   yantra_cluster_partition_applied_lsn{partition}  what its store applied
//   yantra_cluster_partition_apply_lag_batches{partition}  committed - applied
//   yantra_cluster_partitions_led                    partitions led here
//   yantra_cluster_partitions_leaderless             partitions with no leader now
//   yantra_cluster_nodes_live                        live nodes in etcd's view
//
// Counted where they happen, declared here (base units):
//   yantra_cluster_snapshot_transfers_total{partition}       snapshots installed here
//   yantra_cluster_snapshot_transfer_bytes_total{partition}  their bytes received
//   yantra_cluster_trimmed_segments_total{partition}         dropped from the chain here
//
// The counters and histograms of the data path (commit latency, replicated
// bytes, leadership changes, recoveries, append groups, follower applies)
// are kept where they happen; docs/cluster.md lists them all.
//
// Threads: constructed after ClusterNode::start(), destroyed before the
// node; the collector runs on the thread that renders /metrics.
#pragma once

#include <cstdint>

namespace yantra::cluster {

class ClusterNode;

// A partition snapshot installed on this node (the follower, when the log no
// longer holds the batches it needs): one transfer of `bytes` chunk bytes.
void count_snapshot_transfer(uint32_t partition, uint64_t bytes);
// Segments this node, as the partition's leader, dropped from its chain.
void count_trimmed_segments(uint32_t partition, uint64_t segments);

class NodeMetrics {
 public:
  explicit NodeMetrics(const ClusterNode& node);
  ~NodeMetrics();
  NodeMetrics(const NodeMetrics&) = delete;
  NodeMetrics& operator=(const NodeMetrics&) = delete;

  // What the collector does, callable directly (tests).
  void collect() const;

 private:
  const ClusterNode& node_;
  uint64_t collector_ = 0;
};

}  // namespace yantra::cluster
