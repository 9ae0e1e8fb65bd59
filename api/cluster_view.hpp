// ClusterView: what the API may ask of the cluster a node belongs to — its
// write readiness (for /readyz?writes=true), the operator's picture of
// nodes and partitions (GET /admin/v1/cluster) and the operators' commands
// (drain, undrain, remove a node; move a leadership, set replicas,
// rebalance). api/ sits above cluster/ but
// knows it only through this seam: the composition root (cli/serve)
// implements it over cluster::ClusterNode; a single node has none (null in
// Services), and every route behaves as before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace yantra {
struct ExecutionPage;  // actors/engine.hpp
}  // namespace yantra

namespace yantra::api {

class ClusterView {
 public:
  virtual ~ClusterView() = default;
  // Ok while this node can accept and commit a write: its node lease is
  // valid and every partition has a leader that finished recovery. Else a
  // 503-class status saying why (the readiness probe's answer).
  virtual Status write_status() const = 0;
  // The operators' picture, {"node", "nodes": [...], "partitions": [...],
  // "etcd": {...}, ...} (docs/cluster.md, "Operators"): it asks every live
  // node for its positions and load, and etcd for its status, each with a
  // timeout (about 1 s), so it runs off the calling thread and calls `done`
  // exactly once from another thread: the answer (a node or etcd that did
  // not answer in time is shown as not reachable), or a 503-class error
  // when too many are in progress.
  virtual void describe(std::function<void(Result<nlohmann::json>)> done) = 0;

  // An operator's command (routes/cluster.cpp validated its shape).
  struct Command {
    enum class Kind { kDrain, kUndrain, kRemove, kMoveLeader, kSetReplicas, kRebalance };
    Kind kind = Kind::kRebalance;
    std::string node;  // drain, undrain, remove, move-leader
    uint32_t partition = 0;
    std::vector<std::string> replicas;  // set-replicas
  };
  // Runs `command` off the calling thread (it waits on etcd, and a move on
  // the cluster) and calls `done` exactly once from another thread: the
  // answer's body, or an error (kNotFound: no such node or partition;
  // kConflict: not in the node's state, naming why; kInvalidArgument: bad
  // replicas; 503-class: etcd).
  virtual void run(Command command, std::function<void(Result<nlohmann::json>)> done) = 0;
  // The live nodes (this one included, at least 1) sharing a tenant's
  // cluster-wide rate limit (rate_limiter.hpp). Called per limited request:
  // must be cheap (a cached count).
  virtual uint32_t live_nodes() const { return 1; }

  // GET /api/v1/executions across the cluster (docs/cluster.md, "Routing";
  // cli/cluster_list.hpp). False: this node replicates every partition and
  // the route lists from its own store, as a single node does (`done` is
  // not called). True: the list went to the nodes holding the partitions
  // this one lacks; `done` is called exactly once, from any thread (this
  // one included), with the merged page or a 503-class error naming a node
  // that did not answer.
  struct ListQuery {
    std::string tenant;
    std::string flow_id;  // "" = any
    std::string status;   // "" = any
    size_t limit = 50;
    std::string cursor;  // "" = newest
  };
  virtual bool list_executions(const ListQuery& /*query*/,
                               std::function<void(Result<ExecutionPage>)> /*done*/) {
    return false;
  }
};

}  // namespace yantra::api
