// `yantra cluster ...`: `cluster init` talks to the cluster's etcd directly
// and creates a cluster in an empty etcd prefix (docs/cluster.md); `cluster
// status` asks a node (GET /admin/v1/cluster, operator key) for its picture
// of nodes and partitions. The other operator commands come with the
// controller.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace yantra::cli {

struct ClusterInitFlags {
  std::string etcd;  // comma-separated http://HOST:PORT endpoints
  std::string prefix = "/yantra";
  uint32_t partitions = 64;
  uint32_t replication = 3;
};

struct ClusterStatusFlags {
  std::string url;  // a node's HTTP API (YANTRA_URL)
  std::string key;  // the operator key (YANTRA_OPERATOR_KEY)
  bool json = false;
};

class ClusterCommands {
 public:
  explicit ClusterCommands(CLI::App& app);
  bool parsed() const;
  // Exit codes as main.cpp documents them. init: 0 created (or already
  // created with the same settings), 1 etcd refused (another cluster with
  // other settings is there), 2 usage, 3 etcd could not be reached.
  // status: 0 shown, 1 the node answered an error, 2 usage, 3 unreachable.
  int run() const;

 private:
  int run_init() const;
  int run_status() const;
  CLI::App* init_ = nullptr;
  CLI::App* status_ = nullptr;
  ClusterInitFlags flags_;
  ClusterStatusFlags status_flags_;
};

}  // namespace yantra::cli
