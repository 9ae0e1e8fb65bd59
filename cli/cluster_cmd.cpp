// `yantra cluster ...` (cli/cluster_cmd.hpp): init_cluster over the etcd
// client; status and the operator commands over a node's /admin/v1 routes.
// Answers are printed as JSON on stdout (status as tables unless --json),
// the reason for a failure on stderr.
#include "cli/cluster_cmd.hpp"

#include <cstdio>
#include <iostream>
#include <sstream>
#include <vector>

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include "cli/http_client.hpp"
#include "cluster/etcd_client.hpp"
#include "cluster/layout.hpp"

namespace yantra::cli {
namespace {

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
  status_ = cluster->add_subcommand(
      "status", "a node's picture of the cluster: nodes, partitions, leaders (operator key)");
  status_->add_option("--url", status_flags_.url, "a node's URL (default http://127.0.0.1:8080)")
      ->envname("YANTRA_URL");
  status_->add_option("--key", status_flags_.key, "the operator key")
      ->envname("YANTRA_OPERATOR_KEY");
  status_->add_flag("--json", status_flags_.json, "print the raw JSON response");

  // The operator commands share --url and --key with status.
  auto with_node = [this](CLI::App* sub) {
    sub->add_option("--url", status_flags_.url, "a node's URL (default http://127.0.0.1:8080)")
        ->envname("YANTRA_URL");
    sub->add_option("--key", status_flags_.key, "the operator key")->envname("YANTRA_OPERATOR_KEY");
    return sub;
  };
  drain_ = with_node(cluster->add_subcommand(
      "drain", "move every leadership and replica off a node (POST /admin/v1/nodes/ID/drain)"));
  drain_->add_option("node", op_.node, "the node id")->required();
  undrain_ = with_node(cluster->add_subcommand(
      "undrain", "make a drained node active again (POST /admin/v1/nodes/ID/undrain)"));
  undrain_->add_option("node", op_.node, "the node id")->required();
  remove_ = with_node(cluster->add_subcommand(
      "remove", "remove a drained or down node (DELETE /admin/v1/nodes/ID)"));
  remove_->add_option("node", op_.node, "the node id")->required();
  move_leader_ = with_node(cluster->add_subcommand(
      "move-leader", "move a partition's leadership (POST /admin/v1/partitions/P/leader)"));
  move_leader_->add_option("partition", op_.partition, "the partition number")->required();
  move_leader_->add_option("node", op_.node, "the node to lead it")->required();
  set_replicas_ = with_node(cluster->add_subcommand(
      "set-replicas", "set a partition's replicas (POST /admin/v1/partitions/P/replicas)"));
  set_replicas_->add_option("partition", op_.partition, "the partition number")->required();
  set_replicas_->add_option("nodes", op_.replicas, "the replica node ids")->required();
  rebalance_ = with_node(cluster->add_subcommand(
      "rebalance", "even out leaderships and replicas now (POST /admin/v1/rebalance)"));
}

bool ClusterCommands::parsed() const {
  return init_->parsed() || status_->parsed() || drain_->parsed() || undrain_->parsed() ||
         remove_->parsed() || move_leader_->parsed() || set_replicas_->parsed() ||
         rebalance_->parsed();
}

int ClusterCommands::run() const {
  if (init_->parsed()) return run_init();
  if (status_->parsed()) return run_status();
  return run_op();
}

int ClusterCommands::run_op() const {
  using nlohmann::json;
  std::string method = "POST";
  std::string path;
  json body = json::object();
  std::string name;
  if (drain_->parsed()) {
    name = "drain";
    path = "/admin/v1/nodes/" + op_.node + "/drain";
  } else if (undrain_->parsed()) {
    name = "undrain";
    path = "/admin/v1/nodes/" + op_.node + "/undrain";
  } else if (remove_->parsed()) {
    name = "remove";
    method = "DELETE";
    path = "/admin/v1/nodes/" + op_.node;
  } else if (move_leader_->parsed()) {
    name = "move-leader";
    path = "/admin/v1/partitions/" + std::to_string(op_.partition) + "/leader";
    body = {{"node", op_.node}};
  } else if (set_replicas_->parsed()) {
    name = "set-replicas";
    path = "/admin/v1/partitions/" + std::to_string(op_.partition) + "/replicas";
    body = {{"replicas", op_.replicas}};
  } else {
    name = "rebalance";
    path = "/admin/v1/rebalance";
  }
  auto base =
      parse_base_url(status_flags_.url.empty() ? "http://127.0.0.1:8080" : status_flags_.url);
  if (!base.ok()) {
    std::cerr << "yantra cluster " << name << ": " << base.status().to_string() << "\n";
    return 2;
  }
  // A leadership move waits up to 10 s on the node.
  HttpClient client(base.value(), std::chrono::seconds(30));
  auto reply = client.request(
      method, path,
      {{"Authorization", "Bearer " + status_flags_.key}, {"Content-Type", "application/json"}},
      method == "DELETE" ? std::string() : body.dump());
  if (!reply.ok()) {
    std::cerr << "yantra cluster " << name << ": " << reply.status().to_string() << "\n";
    return 3;
  }
  if (reply->status < 200 || reply->status >= 300) {
    std::cerr << "yantra cluster " << name << ": HTTP " << reply->status << ": " << reply->body
              << "\n";
    return 1;
  }
  std::cout << reply->body << "\n";
  return 0;
}

int ClusterCommands::run_status() const {
  using nlohmann::json;
  auto base =
      parse_base_url(status_flags_.url.empty() ? "http://127.0.0.1:8080" : status_flags_.url);
  if (!base.ok()) {
    std::cerr << "yantra cluster status: " << base.status().to_string() << "\n";
    return 2;
  }
  HttpClient client(base.value(), std::chrono::seconds(10));
  auto reply = client.request("GET", "/admin/v1/cluster",
                              {{"Authorization", "Bearer " + status_flags_.key}}, "");
  if (!reply.ok()) {
    std::cerr << "yantra cluster status: " << reply.status().to_string() << "\n";
    return 3;
  }
  json doc = json::parse(reply->body, nullptr, false);
  if (reply->status != 200 || doc.is_discarded()) {
    std::cerr << "yantra cluster status: HTTP " << reply->status << ": " << reply->body << "\n";
    return 1;
  }
  if (status_flags_.json) {
    std::cout << doc.dump(2) << "\n";
    return 0;
  }
  std::cout << "cluster " << doc.value("cluster_id", "") << " as node " << doc.value("node", "")
            << " sees it (replication " << doc.value("replication", 0) << ")\n\n"
            << "NODE\tSTATE\tHTTP\tLEADS\tRUNNING\tCPU_S\tRSS_MB\tVERSION\n";
  auto text = [](const json& j, const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string("-");
  };
  for (const auto& n : doc.value("nodes", json::array())) {
    // A node that did not answer the fan-out: its state as etcd says, marked.
    std::string state = n.value("state", "");
    if (!n.value("reachable", true)) state += ",unreachable";
    std::cout << n.value("id", "") << "\t" << state << "\t" << text(n, "http") << "\t"
              << n.value("partitions_led", 0) << "\t";
    if (n.contains("load") && n["load"].is_object()) {
      const json& l = n["load"];
      char cpu[32];
      std::snprintf(cpu, sizeof cpu, "%.1f", l.value("cpu_seconds", 0.0));
      std::cout << l.value("active_executions", 0) << "\t" << cpu << "\t"
                << l.value("rss_bytes", uint64_t{0}) / (1024 * 1024);
    } else {
      std::cout << "-\t-\t-";
    }
    std::cout << "\t" << text(n, "version") << "\n";
  }
  // Each replica as node:lag (the leader's commit minus what it applied),
  // '*' on the leader, '?' for one that did not answer.
  std::cout << "\nPARTITION\tLEADER\tEPOCH\tCOMMITTED\tREPLICAS (node:lag)\n";
  for (const auto& p : doc.value("partitions", json::array())) {
    const json& lc = p.contains("leader_committed_lsn") ? p["leader_committed_lsn"] : json();
    std::cout << p.value("id", 0) << "\t" << text(p, "leader") << "\t" << p.value("epoch", 0)
              << "\t" << (lc.is_number() ? std::to_string(lc.get<uint64_t>()) : std::string("?"))
              << "\t";
    bool first = true;
    for (const auto& r : p.value("positions", json::array())) {
      std::cout << (first ? "" : " ") << r.value("node", "") << (r.value("leads", false) ? "*" : "")
                << ":";
      if (r.value("reachable", false)) {
        std::cout << r.value("lag", uint64_t{0});
      } else {
        std::cout << "?";
      }
      first = false;
    }
    std::cout << "\n";
  }
  const json etcd = doc.value("etcd", json::object());
  std::cout << "\nETCD\tREACHABLE\tLEADER\tDB_BYTES\tRAFT_INDEX\tVERSION\n";
  for (const auto& e : etcd.value("endpoints", json::array())) {
    std::cout << e.value("url", "") << "\t" << (e.value("reachable", false) ? "yes" : "no") << "\t"
              << (e.value("leader", false) ? "yes" : "no") << "\t"
              << e.value("db_size_bytes", int64_t{0}) << "\t" << e.value("raft_index", uint64_t{0})
              << "\t" << text(e, "version") << "\n";
  }
  std::cout << "lease valid: " << (etcd.value("lease_valid", false) ? "yes" : "no") << "\n";
  return 0;
}

int ClusterCommands::run_init() const {
  cluster::EtcdOptions options;
  options.endpoints = cluster::split_endpoints(flags_.etcd);
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
