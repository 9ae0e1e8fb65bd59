// NodeMetrics (cluster/node_metrics.hpp).
#include "cluster/node_metrics.hpp"

#include <string>

#include "base/metrics.hpp"
#include "cluster/node.hpp"

namespace yantra::cluster {

void count_snapshot_transfer(uint32_t partition, uint64_t bytes) {
  const metrics::Labels labels{{"partition", std::to_string(partition)}};
  auto& reg = metrics::global();
  reg.counter("yantra_cluster_snapshot_transfers_total",
              "Partition snapshots this node installed (its log was trimmed past it)", labels)
      .inc();
  reg.counter("yantra_cluster_snapshot_transfer_bytes_total",
              "Bytes of the partition snapshots this node installed", labels)
      .inc(bytes);
}

void count_trimmed_segments(uint32_t partition, uint64_t segments) {
  metrics::global()
      .counter("yantra_cluster_trimmed_segments_total",
               "Sealed segments this node, leading the partition, trimmed from its log",
               {{"partition", std::to_string(partition)}})
      .inc(segments);
}

NodeMetrics::NodeMetrics(const ClusterNode& node) : node_(node) {
  collector_ = metrics::global().add_collector([this] { collect(); });
}

NodeMetrics::~NodeMetrics() {
  metrics::global().remove_collector(collector_);
}

void NodeMetrics::collect() const {
  auto& reg = metrics::global();
  int64_t led = 0;
  int64_t leaderless = 0;
  for (const PartitionView& p : node_.partitions()) {
    const metrics::Labels labels{{"partition", std::to_string(p.partition)}};
    reg.gauge("yantra_cluster_partition_led", "1 when this node leads the partition", labels)
        .set(p.led_here ? 1 : 0);
    reg.gauge("yantra_cluster_partition_epoch", "The partition's epoch as this node knows it",
              labels)
        .set(p.epoch);
    reg.gauge("yantra_cluster_partition_committed_lsn",
              "The partition's commit point as this node knows it", labels)
        .set(static_cast<int64_t>(p.committed_lsn));
    reg.gauge("yantra_cluster_partition_applied_lsn",
              "The last batch of the partition this node's store applied", labels)
        .set(static_cast<int64_t>(p.applied_lsn));
    reg.gauge("yantra_cluster_partition_apply_lag_batches",
              "Committed batches of the partition this node has not applied yet", labels)
        .set(p.committed_lsn > p.applied_lsn ? static_cast<int64_t>(p.committed_lsn - p.applied_lsn)
                                             : 0);
    if (p.led_here) ++led;
    if (!p.leader) ++leaderless;
  }
  reg.gauge("yantra_cluster_partitions_led", "Partitions this node leads").set(led);
  reg.gauge("yantra_cluster_partitions_leaderless", "Partitions with no leader in this node's view")
      .set(leaderless);
  reg.gauge("yantra_cluster_nodes_live", "Live nodes of the cluster in this node's view")
      .set(static_cast<int64_t>(node_.live_nodes().size()));
}

}  // namespace yantra::cluster
