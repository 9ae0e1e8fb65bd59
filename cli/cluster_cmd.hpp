// `yantra cluster ...`: commands that talk to the cluster's etcd directly
// rather than to a node's HTTP API. Today `cluster init`, which creates a
// cluster in an empty etcd prefix (docs/cluster.md); the operator commands
// over /admin/v1 come with the controller.
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

class ClusterCommands {
 public:
  explicit ClusterCommands(CLI::App& app);
  bool parsed() const;
  // Exit codes as main.cpp documents them: 0 created (or already created
  // with the same settings), 1 etcd refused (another cluster with other
  // settings is there), 2 usage, 3 etcd could not be reached.
  int run() const;

 private:
  CLI::App* init_ = nullptr;
  ClusterInitFlags flags_;
};

}  // namespace yantra::cli
