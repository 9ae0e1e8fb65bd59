// ClusterView: what the API may ask of the cluster a node belongs to — its
// write readiness (for /readyz?writes=true) and the operator's picture of
// nodes and partitions (GET /admin/v1/cluster). api/ sits above cluster/ but
// knows it only through this seam: the composition root (cli/serve)
// implements it over cluster::ClusterNode; a single node has none (null in
// Services), and every route behaves as before.
#pragma once

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace yantra::api {

class ClusterView {
 public:
  virtual ~ClusterView() = default;
  // Ok while this node can accept and commit a write: its node lease is
  // valid and every partition has a leader that finished recovery. Else a
  // 503-class status saying why (the readiness probe's answer).
  virtual Status write_status() const = 0;
  // {"node", "nodes": [...], "partitions": [...], "etcd": {...}}
  // (docs/cluster.md, "Operators").
  virtual nlohmann::json describe() const = 0;
  // The live nodes (this one included, at least 1) sharing a tenant's
  // cluster-wide rate limit (rate_limiter.hpp). Called per limited request:
  // must be cheap (a cached count).
  virtual uint32_t live_nodes() const { return 1; }
};

}  // namespace yantra::api
