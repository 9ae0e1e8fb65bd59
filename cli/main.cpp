// The `yantra` command: `serve` runs a node; the other subcommands are
// clients of a node's HTTP API (see client.hpp). Exit codes scripts can rely
// on: 0 success, 1 the server answered with an error, 2 usage or
// configuration error, 3 the server could not be reached, 4 (`serve`) the
// data directory is damaged and the node refuses to start (restarting it
// will not help; see docs/operations.md).
#include <CLI/CLI.hpp>

#include <iterator>
#include <map>
#include <string>

#include "cli/client.hpp"
#include "cli/cluster_cmd.hpp"
#include "cli/serve.hpp"

int main(int argc, char** argv) {
  // Before any thread exists (see serve.hpp).
  yantra::cli::block_shutdown_signals();
  CLI::App app{"yantra: durable workflow engine"};
  app.require_subcommand(1);

  yantra::cli::ServeFlags serve;
  auto* serve_cmd = app.add_subcommand("serve", "run a node (engine + HTTP API)");
  serve_cmd->add_option("--config", serve.config_file, "YAML configuration file");
  serve_cmd->add_option("--data", serve.data_dir, "data directory (default ./data)");
  serve_cmd->add_option("--listen", serve.listen, "HOST:PORT (default 127.0.0.1:8080)");
  serve_cmd->add_option("--master-key-file", serve.master_key_file,
                        "vault master key file (or YANTRA_MASTER_KEY)");
  serve_cmd
      ->add_option("--max-connections-per-address", serve.max_connections_per_address,
                   "open HTTP connections per client address before 503 (default 1024, 0 = "
                   "no limit)")
      ->check(CLI::NonNegativeNumber);
  serve_cmd->add_flag("--accept-data-loss", serve.accept_data_loss,
                      "start even if the write-ahead log is damaged, dropping every write after "
                      "the damage (see docs/operations.md; remove it after that start)");
  serve_cmd->add_option(
      "--min-free-disk-mb", serve.min_free_disk_mb,
      "refuse writes while the data dir's disk has less free space (default 256)");
  serve_cmd->add_flag("--print-bootstrap-key", serve.print_bootstrap_key,
                      "print the owner key made at first start (default: only its file's path)");
  // Cluster membership (docs/cluster.md): with --etcd the node joins the
  // cluster `yantra cluster init` created there.
  static const std::pair<const char*, const char*> kClusterFlags[] = {
      {"--etcd", "etcd"},
      {"--prefix", "etcd_prefix"},
      {"--node-id", "node_id"},
      {"--cluster-listen", "cluster_listen"},
      {"--cluster-key-file", "cluster_key_file"},
      {"--advertise-http", "advertise_http"},
  };
  static const char* const kClusterHelp[] = {
      "join the cluster in this etcd, http://HOST:PORT[,...] (or YANTRA_ETCD)",
      "the cluster's etcd key prefix (default /yantra)",
      "this node's id, unique in the cluster",
      "HOST:PORT of the node-to-node transport (mutual TLS)",
      "the cluster key file: the same bytes on every node (>= 32 bytes, mode 0600)",
      "HOST:PORT of this node's HTTP API as others reach it (default --listen)",
  };
  std::map<std::string, std::string> cluster_values;
  for (size_t i = 0; i < std::size(kClusterFlags); ++i) {
    serve_cmd->add_option(kClusterFlags[i].first, cluster_values[kClusterFlags[i].second],
                          kClusterHelp[i]);
  }
  yantra::cli::RotateFlags rotate;
  auto* rotate_cmd = app.add_subcommand(
      "rotate-master-key", "re-wrap the tenants' secret keys under a new master key (offline)");
  rotate_cmd->add_option("--data", rotate.data_dir, "data directory (default ./data)");
  rotate_cmd->add_option("--old-key-file", rotate.old_key_file, "current master key file")
      ->required();
  rotate_cmd->add_option("--new-key-file", rotate.new_key_file, "new master key file")->required();
  yantra::cli::ClientCommands client(app);
  yantra::cli::ClusterCommands cluster(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (serve_cmd->parsed()) {
    for (const auto& [key, value] : cluster_values) {
      if (!value.empty()) serve.cluster[key] = value;
    }
    return yantra::cli::run_serve(serve);
  }
  if (rotate_cmd->parsed()) return yantra::cli::run_rotate_master_key(rotate);
  if (client.parsed()) return client.run();
  if (cluster.parsed()) return cluster.run();
  return 2;
}
