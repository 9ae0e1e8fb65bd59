// `yantra cluster ...`: `cluster init` talks to the cluster's etcd directly
// and creates a cluster in an empty etcd prefix (docs/cluster.md); the
// others ask a node over HTTP with the operator key: `status` (GET
// /admin/v1/cluster), `drain ID`, `undrain ID`, `remove ID`, `move-leader
// P NODE`, `set-replicas P NODE...`, `rebalance` (the /admin/v1 routes of
// the same names; docs/cluster.md, runbook).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

// The arguments of the operator commands after `status`.
struct ClusterOpArgs {
  std::string node;
  uint32_t partition = 0;
  std::vector<std::string> replicas;
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
  // status and the operator commands: 0 done, 1 the node answered an
  // error (printed), 2 usage, 3 unreachable.
  int run() const;

 private:
  int run_init() const;
  int run_status() const;
  int run_op() const;
  CLI::App* init_ = nullptr;
  CLI::App* status_ = nullptr;
  CLI::App* drain_ = nullptr;
  CLI::App* undrain_ = nullptr;
  CLI::App* remove_ = nullptr;
  CLI::App* move_leader_ = nullptr;
  CLI::App* set_replicas_ = nullptr;
  CLI::App* rebalance_ = nullptr;
  ClusterOpArgs op_;
  ClusterInitFlags flags_;
  ClusterStatusFlags status_flags_;
};

}  // namespace yantra::cli
