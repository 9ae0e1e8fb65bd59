// Node configuration: defaults, then a YAML file, then YANTRA_* environment
// variables, then command-line flags (the caller applies flags last). Only
// reading and validating configuration happens here; nothing is opened.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace yantra {

// An MCP server the node spawns (stdio transport; docs/tools.md "MCP
// servers"): operator configuration only, never the API. Available to the
// listed tenants as tool "mcp:<id>".
struct McpStdioServer {
  std::string id;  // [A-Za-z0-9][A-Za-z0-9_.-]{0,127}
  std::string command;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;  // added to the node's environment
  std::vector<std::string> tenants;
};

struct NodeConfig {
  std::string data_dir = "./data";
  std::string listen = "127.0.0.1:8080";
  uint32_t partitions = 4;
  std::string durability = "sync";  // sync | async
  uint32_t scheduler_threads = 0;   // 0 = one per core
  uint32_t core_tool_concurrency = 1024;
  uint32_t http_threads = 2;  // HTTP I/O threads
  std::string http_ca_file;   // extra CA certificates for the http tool
  uint32_t http_tool_concurrency = 64;
  // script steps (docs/scripts.md): scripts running at once, the largest
  // time cap a step may ask for, and every call's memory cap.
  uint32_t script_concurrency = 2;
  uint32_t script_max_timeout_ms = 1000;
  uint32_t script_memory_mb = 16;
  uint32_t snapshot_every = 1000;       // events between snapshots (0 = none)
  uint32_t retention_days = 30;         // history of finished executions (0 = forever)
  uint32_t max_runs_in_flight = 10000;  // unanswered run requests before 429
  // Open HTTP connections from one client address (an IPv6 /64 counts as
  // one) before 503: one client cannot take every connection slot. 0 = no
  // per-address limit (e.g. behind a reverse proxy that has its own).
  uint32_t max_connections_per_address = 1024;
  // The vault's master key: a file holding 64 hex characters or base64 of 32
  // bytes (mode 0600). YANTRA_MASTER_KEY (the key itself) takes precedence.
  // A node without a master key refuses to start.
  std::string master_key_file;
  // The operator key (opens /admin/v1 only); empty = no operator routes.
  std::string operator_key;
  // Start even if the write-ahead log is damaged, dropping what follows the
  // damage (docs/operations.md). For one start after an operator decided
  // so; without it such a node refuses to start.
  bool accept_data_loss = false;
  // Free-space floor of the data dir's disk, in MiB: below it the node
  // refuses writes (503 "store_no_space") and serves reads, until space is
  // back. Well above what RocksDB needs to flush and compact a while.
  uint32_t min_free_disk_mb = 256;
  // Cluster membership (docs/cluster.md). With `etcd` set the node joins the
  // cluster created there by `yantra cluster init` (partition count from the
  // cluster), and node_id, cluster_listen and cluster_key_file are required;
  // without it the node is the single-node default and needs no etcd.
  std::string etcd;  // http://HOST:PORT[,...]
  std::string etcd_prefix = "/yantra";
  std::string node_id;           // unique in the cluster: [A-Za-z0-9._-]{1,64}
  std::string cluster_listen;    // HOST:PORT of the node-to-node transport
  std::string cluster_key_file;  // the cluster secret (>= 32 bytes, mode 0600)
  // The HTTP address other nodes and clients are told (default: listen).
  std::string advertise_http;
  // How long a node may stay down before the controller replaces its
  // replicas in the placement (docs/cluster.md, "Controller and placement").
  uint32_t node_down_grace_ms = 30000;
  // Config file only (`mcp_servers:` a list of {id, command, args, env,
  // tenants}); no environment variable or flag.
  std::vector<McpStdioServer> mcp_servers;
  // How often a partition leader trims its log's sealed segments that every
  // replica's state covers (docs/cluster.md, "Trimming"); 0: never.
  uint32_t log_trim_interval_ms = 10000;
  bool clustered() const { return !etcd.empty(); }
};

// Reads `path` (YAML mapping with the keys of NodeConfig) over `base`.
// Errors: "invalid_config" naming the key and the problem.
Result<NodeConfig> load_config_file(const std::string& path, NodeConfig base = {});

// Applies YANTRA_DATA_DIR, YANTRA_LISTEN, YANTRA_PARTITIONS, YANTRA_DURABILITY,
// YANTRA_SCHEDULER_THREADS, YANTRA_CORE_TOOL_CONCURRENCY, YANTRA_HTTP_THREADS,
// YANTRA_HTTP_CA_FILE, YANTRA_HTTP_TOOL_CONCURRENCY, YANTRA_SNAPSHOT_EVERY,
// YANTRA_RETENTION_DAYS, YANTRA_MAX_RUNS_IN_FLIGHT, YANTRA_MASTER_KEY_FILE,
// YANTRA_OPERATOR_KEY, YANTRA_MAX_CONNECTIONS_PER_ADDRESS, YANTRA_ACCEPT_DATA_LOSS,
// YANTRA_MIN_FREE_DISK_MB, YANTRA_ETCD, YANTRA_ETCD_PREFIX, YANTRA_NODE_ID,
// YANTRA_CLUSTER_LISTEN, YANTRA_CLUSTER_KEY_FILE, YANTRA_ADVERTISE_HTTP, YANTRA_SCRIPT_CONCURRENCY,
// YANTRA_SCRIPT_MAX_TIMEOUT_MS, YANTRA_SCRIPT_MEMORY_MB from `env`. Booleans are
// true/false (also 1/0, yes/no).
Result<NodeConfig> apply_env(NodeConfig config, const std::map<std::string, std::string>& env);

// Sets one key (a name of the config file) from a command-line flag;
// errors name `flag`.
Result<NodeConfig> apply_flag(NodeConfig config, const std::string& key, const std::string& value,
                              const std::string& flag);

// Checks ranges and enums; every problem is reported.
Status validate(const NodeConfig& config);

}  // namespace yantra
