// ClusterList: GET /api/v1/executions for the whole cluster when the nodes
// outnumber the replication factor, so that no node holds every partition
// (docs/cluster.md, "Routing"). The route asks through
// api::ClusterView::list_executions (NodeView in cluster_side.cpp delegates
// here).
//
// Asking side (list()). A node whose store holds every partition — it leads
// it, or the placement names it as a replica — answers from its own store,
// as before (list() returns false: no hop, no change). Otherwise, for each
// partition it lacks it picks one node that holds it: the leader, else a
// live replica of the placement; it groups the partitions by node and sends
// each node one ListExecutionsRequest (proto/yantra/v1/cluster_list.proto)
// on the transport's "list" service: the query (tenant, flow, status,
// limit, cursor) restricted to those partitions. Its own partitions are
// listed from its own store meanwhile (on the calling HTTP I/O thread, as a
// single node's list is). The pages are merged by merge_pages
// (list_merge.hpp: newest first, `limit`, a cursor that skips nothing).
// A node that does not answer (2 s per request), refuses, or answers
// garbage is dropped from this list's candidates and its partitions go to
// the next live replica; when a partition has none left, or 5 s have
// passed, the list answers 503 `unavailable` with Retry-After naming the
// nodes that failed — never a silently partial list. Nothing waits: the
// answer goes out from the callback of the last piece (a transport thread,
// or the calling thread when every request failed at once).
//
// Serving side (serve()). The transport calls the handler on a CAF
// scheduler thread, where no store read may run: requests are queued (at
// most 64; beyond, refused so the asker tries another replica) to one
// worker thread, which checks that this node still holds each partition
// asked (else refuses: the placement moved) and lists through
// Engine::list_executions with the partition filter.
//
// Lifecycle: made by ClusterSide::start() before the transport serves;
// stop() (before the node is destroyed) stops sending and serving — a
// list in flight then answers 503 — and joins the worker; destroyed after
// the node. Every method may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "api/cluster_view.hpp"
#include "base/result.hpp"
#include "cluster/transport.hpp"

namespace yantra {
class Engine;
struct ExecutionPage;
namespace cluster {
class ClusterNode;
}  // namespace cluster
}  // namespace yantra

namespace yantra::cli {

class ClusterList {
 public:
  ClusterList(cluster::ClusterNode& node, Engine& engine);
  ~ClusterList();
  ClusterList(const ClusterList&) = delete;
  ClusterList& operator=(const ClusterList&) = delete;

  // api::ClusterView::list_executions: false = this node holds every
  // partition (the caller lists locally); true = `done` is called once.
  bool list(const api::ClusterView::ListQuery& query,
            std::function<void(Result<ExecutionPage>)> done);

  // The transport's "list" service (another node's share of its list).
  void serve(const std::string& from_node, std::string payload, cluster::Reply reply);

  // Stops sending and serving and joins the worker; idempotent.
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace yantra::cli
