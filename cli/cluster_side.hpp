// What `yantra serve` adds when the node is part of a cluster (--etcd): the
// composition of cluster/ (ClusterNode: membership, leadership, replicated
// logs; ResourceMirror and the cluster Admin: resources in etcd) with the
// engine and the API (the Forwarding and ClusterView seams api/ declares).
// Kept out of serve.cpp so the single-node path reads as it did; serve.cpp
// calls these steps in order:
//
//   connect()          etcd reachable, the cluster's meta record read
//   engine_options()   partitions from the cluster, nothing led at open,
//                      schedule slots claimed cluster-wide
//   (Engine::open)
//   make_admin()       the resource mirror (first listing installed) and the
//                      cluster Admin over it
//   attach(app)        routing, the cluster view, cache eviction on mirror
//   bootstrap()        tenant `default` and its owner key, once per cluster
//   start()            transport (with the API's "api" service), lease,
//                      membership, leadership: from here partitions are led
//   stop()             leaves the cluster (partitions released at once)
#pragma once

#include <memory>
#include <string>

#include "base/result.hpp"

namespace yantra {
class Admin;
class Engine;
struct EngineOptions;
struct NodeConfig;
namespace api {
class ApiApp;
}  // namespace api

namespace cli {

class ClusterSide {
 public:
  static Result<std::unique_ptr<ClusterSide>> connect(const NodeConfig& config,
                                                      const std::string& version);
  ~ClusterSide();
  ClusterSide(const ClusterSide&) = delete;
  ClusterSide& operator=(const ClusterSide&) = delete;

  void engine_options(EngineOptions& options);
  Result<std::unique_ptr<Admin>> make_admin(Engine& engine);
  void attach(api::ApiApp& app);
  // The owner key made here when this node bootstrapped the cluster without
  // YANTRA_BOOTSTRAP_KEY ("" otherwise; it is also written to
  // <data>/bootstrap-key); "conflict" for a preset key other than the
  // cluster's.
  Result<std::string> bootstrap(Engine& engine, const std::string& data_dir,
                                const std::string& preset);
  Status start(Engine& engine);
  void stop();
  // After the admin is gone (it waits on the mirror).
  void stop_mirror();

  struct Impl;

 private:
  explicit ClusterSide(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cli
}  // namespace yantra
