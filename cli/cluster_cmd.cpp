// `yantra cluster init` (cli/cluster_cmd.hpp): init_cluster over the etcd
// client, with the answer printed as JSON on stdout and the reason for a
// failure on stderr.
#include "cli/cluster_cmd.hpp"

#include <iostream>
#include <sstream>
#include <vector>

#include <CLI/CLI.hpp>

#include "cluster/etcd_client.hpp"
#include "cluster/layout.hpp"

namespace yantra::cli {
namespace {

std::vector<std::string> split_endpoints(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// etcd unreachable or slow: 3, like a node that cannot be reached; any
// other refusal: 1; bad arguments: 2.
int exit_code(const Status& s) {
  if (s.is(ClusterErrc::kUnavailable) || s.is(ClusterErrc::kTimeout) ||
      s.is(ClusterErrc::kOutcomeUnknown)) {
    return 3;
  }
  if (s.is(Errc::kInvalidArgument) || s.is(ClusterErrc::kInvalidEndpoint)) return 2;
  return 1;
}

}  // namespace

ClusterCommands::ClusterCommands(CLI::App& app) {
  auto* cluster = app.add_subcommand("cluster", "create and inspect a cluster (its etcd)");
  cluster->require_subcommand(1);
  init_ = cluster->add_subcommand(
      "init", "create a cluster in an empty etcd prefix (the partition count is fixed then)");
  init_->add_option("--etcd", flags_.etcd, "etcd endpoints, http://HOST:PORT[,...]")
      ->envname("YANTRA_ETCD")
      ->required();
  init_->add_option("--prefix", flags_.prefix, "etcd key prefix of the cluster (default /yantra)")
      ->envname("YANTRA_ETCD_PREFIX");
  init_->add_option("--partitions", flags_.partitions, "number of partitions (default 64)")
      ->check(CLI::Range(1, 4096));
  init_
      ->add_option("--replication", flags_.replication,
                   "copies of each partition's log (default 3; 1 for development)")
      ->check(CLI::Range(1, 7));
}

bool ClusterCommands::parsed() const {
  return init_->parsed();
}

int ClusterCommands::run() const {
  cluster::EtcdOptions options;
  options.endpoints = split_endpoints(flags_.etcd);
  auto etcd = cluster::EtcdClient::create(options);
  if (!etcd.ok()) {
    std::cerr << "yantra cluster init: " << etcd.status().to_string() << "\n";
    return exit_code(etcd.status());
  }
  const cluster::Layout layout(flags_.prefix);
  auto meta = cluster::init_cluster(*etcd.value(), layout, flags_.partitions, flags_.replication);
  if (!meta.ok()) {
    std::cerr << "yantra cluster init: " << meta.status().to_string() << "\n";
    return exit_code(meta.status());
  }
  std::cout << cluster::to_json(meta.value()) << "\n";
  return 0;
}

}  // namespace yantra::cli
