// One function per source so that precedence (file < env < flags) is just
// the order of calls, and each source reports its own mistakes by name.
#include "config/node_config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <yaml-cpp/yaml.h>

#include "base/host_port.hpp"

namespace yantra {
namespace {

Status set_key(NodeConfig& c, const std::string& key, const std::string& value,
               const std::string& where) {
  auto as_u32 = [&](uint32_t& out) -> Status {
    uint32_t v = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || ptr != value.data() + value.size()) {
      return Status(Errc::kInvalidConfig,
                    where + ": '" + value + "' is not a non-negative integer");
    }
    out = v;
    return {};
  };
  auto as_bool = [&](bool& out) -> Status {
    if (value == "true" || value == "1" || value == "yes") {
      out = true;
    } else if (value == "false" || value == "0" || value == "no") {
      out = false;
    } else {
      return Status(Errc::kInvalidConfig, where + ": '" + value + "' is not true or false");
    }
    return {};
  };
  if (key == "data_dir") {
    c.data_dir = value;
  } else if (key == "listen") {
    c.listen = value;
  } else if (key == "partitions") {
    return as_u32(c.partitions);
  } else if (key == "durability") {
    c.durability = value;
  } else if (key == "scheduler_threads") {
    return as_u32(c.scheduler_threads);
  } else if (key == "core_tool_concurrency") {
    return as_u32(c.core_tool_concurrency);
  } else if (key == "http_threads") {
    return as_u32(c.http_threads);
  } else if (key == "http_ca_file") {
    c.http_ca_file = value;
  } else if (key == "http_tool_concurrency") {
    return as_u32(c.http_tool_concurrency);
  } else if (key == "script_concurrency") {
    return as_u32(c.script_concurrency);
  } else if (key == "script_max_timeout_ms") {
    return as_u32(c.script_max_timeout_ms);
  } else if (key == "script_memory_mb") {
    return as_u32(c.script_memory_mb);
  } else if (key == "snapshot_every") {
    return as_u32(c.snapshot_every);
  } else if (key == "retention_days") {
    return as_u32(c.retention_days);
  } else if (key == "max_runs_in_flight") {
    return as_u32(c.max_runs_in_flight);
  } else if (key == "max_connections_per_address") {
    return as_u32(c.max_connections_per_address);
  } else if (key == "master_key_file") {
    c.master_key_file = value;
  } else if (key == "operator_key") {
    c.operator_key = value;
  } else if (key == "accept_data_loss") {
    return as_bool(c.accept_data_loss);
  } else if (key == "min_free_disk_mb") {
    return as_u32(c.min_free_disk_mb);
  } else if (key == "etcd") {
    c.etcd = value;
  } else if (key == "etcd_prefix") {
    c.etcd_prefix = value;
  } else if (key == "node_id") {
    c.node_id = value;
  } else if (key == "cluster_listen") {
    c.cluster_listen = value;
  } else if (key == "cluster_key_file") {
    c.cluster_key_file = value;
  } else if (key == "advertise_http") {
    c.advertise_http = value;
  } else if (key == "node_down_grace_ms") {
    return as_u32(c.node_down_grace_ms);
  } else if (key == "log_trim_interval_ms") {
    return as_u32(c.log_trim_interval_ms);
  } else {
    return Status(Errc::kInvalidConfig, where + ": unknown key '" + key + "'");
  }
  return {};
}

// mcp_servers: [{id, command, args: [..], env: {K: V}, tenants: [..]}]
Status read_mcp_servers(const YAML::Node& node, const std::string& path,
                        std::vector<McpStdioServer>& out) {
  auto bad = [&](size_t i, const std::string& what) {
    return Status(Errc::kInvalidConfig, path + ": mcp_servers[" + std::to_string(i) + "]: " + what);
  };
  if (node.IsNull()) return {};
  if (!node.IsSequence()) {
    return Status(Errc::kInvalidConfig, path + ": mcp_servers must be a list");
  }
  out.clear();
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node& n = node[i];
    if (!n.IsMap()) return bad(i, "must be a mapping of id, command, args, env, tenants");
    McpStdioServer s;
    for (const auto& kv : n) {
      const std::string k = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (k == "id" || k == "command") {
        if (!v.IsScalar()) return bad(i, k + " must be a string");
        (k == "id" ? s.id : s.command) = v.as<std::string>();
      } else if (k == "args" || k == "tenants") {
        if (!v.IsSequence()) return bad(i, k + " must be a list of strings");
        for (const auto& e : v) {
          if (!e.IsScalar()) return bad(i, k + " must be a list of strings");
          (k == "args" ? s.args : s.tenants).push_back(e.as<std::string>());
        }
      } else if (k == "env") {
        if (!v.IsMap()) return bad(i, "env must be a mapping of names to strings");
        for (const auto& e : v) {
          if (!e.second.IsScalar()) return bad(i, "env must be a mapping of names to strings");
          s.env[e.first.as<std::string>()] = e.second.as<std::string>();
        }
      } else {
        return bad(i, "unknown key '" + k + "' (id, command, args, env, tenants)");
      }
    }
    out.push_back(std::move(s));
  }
  return {};
}

}  // namespace

Result<NodeConfig> load_config_file(const std::string& path, NodeConfig base) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return Status(Errc::kInvalidConfig, path + ": " + e.what());
  }
  if (root.IsNull()) return base;
  if (!root.IsMap()) return Status(Errc::kInvalidConfig, path + ": expected a mapping of options");
  for (const auto& kv : root) {
    std::string key;
    std::string value;
    try {
      key = kv.first.as<std::string>();
      if (key == "mcp_servers") {
        Status s = read_mcp_servers(kv.second, path, base.mcp_servers);
        if (!s.is_ok()) return s;
        continue;
      }
      if (!kv.second.IsScalar()) {
        return Status(Errc::kInvalidConfig, path + ": '" + key + "' must be a scalar");
      }
      value = kv.second.as<std::string>();
    } catch (const std::exception& e) {
      return Status(Errc::kInvalidConfig, path + ": " + e.what());
    }
    Status s = set_key(base, key, value, path + ": " + key);
    if (!s.is_ok()) return s;
  }
  return base;
}

Result<NodeConfig> apply_env(NodeConfig config, const std::map<std::string, std::string>& env) {
  static const std::pair<const char*, const char*> kVars[] = {
      {"YANTRA_DATA_DIR", "data_dir"},
      {"YANTRA_LISTEN", "listen"},
      {"YANTRA_PARTITIONS", "partitions"},
      {"YANTRA_DURABILITY", "durability"},
      {"YANTRA_SCHEDULER_THREADS", "scheduler_threads"},
      {"YANTRA_CORE_TOOL_CONCURRENCY", "core_tool_concurrency"},
      {"YANTRA_HTTP_THREADS", "http_threads"},
      {"YANTRA_HTTP_CA_FILE", "http_ca_file"},
      {"YANTRA_HTTP_TOOL_CONCURRENCY", "http_tool_concurrency"},
      {"YANTRA_SCRIPT_CONCURRENCY", "script_concurrency"},
      {"YANTRA_SCRIPT_MAX_TIMEOUT_MS", "script_max_timeout_ms"},
      {"YANTRA_SCRIPT_MEMORY_MB", "script_memory_mb"},
      {"YANTRA_SNAPSHOT_EVERY", "snapshot_every"},
      {"YANTRA_RETENTION_DAYS", "retention_days"},
      {"YANTRA_MAX_RUNS_IN_FLIGHT", "max_runs_in_flight"},
      {"YANTRA_MASTER_KEY_FILE", "master_key_file"},
      {"YANTRA_OPERATOR_KEY", "operator_key"},
      {"YANTRA_MAX_CONNECTIONS_PER_ADDRESS", "max_connections_per_address"},
      {"YANTRA_ACCEPT_DATA_LOSS", "accept_data_loss"},
      {"YANTRA_MIN_FREE_DISK_MB", "min_free_disk_mb"},
      {"YANTRA_ETCD", "etcd"},
      {"YANTRA_ETCD_PREFIX", "etcd_prefix"},
      {"YANTRA_NODE_ID", "node_id"},
      {"YANTRA_CLUSTER_LISTEN", "cluster_listen"},
      {"YANTRA_CLUSTER_KEY_FILE", "cluster_key_file"},
      {"YANTRA_ADVERTISE_HTTP", "advertise_http"},
      {"YANTRA_NODE_DOWN_GRACE_MS", "node_down_grace_ms"},
      {"YANTRA_LOG_TRIM_INTERVAL_MS", "log_trim_interval_ms"},
  };
  for (const auto& [var, key] : kVars) {
    auto it = env.find(var);
    if (it == env.end()) continue;
    Status s = set_key(config, key, it->second, var);
    if (!s.is_ok()) return s;
  }
  return config;
}

Result<NodeConfig> apply_flag(NodeConfig config, const std::string& key, const std::string& value,
                              const std::string& flag) {
  Status s = set_key(config, key, value, flag);
  if (!s.is_ok()) return s;
  return config;
}

Status validate(const NodeConfig& c) {
  std::vector<Problem> problems;
  if (c.data_dir.empty()) problems.push_back({"/data_dir", "must not be empty"});
  if (c.partitions < 1 || c.partitions > 1024) {
    problems.push_back({"/partitions", "must be between 1 and 1024"});
  }
  if (c.durability != "sync" && c.durability != "async") {
    problems.push_back({"/durability", "must be 'sync' or 'async'"});
  }
  if (auto hp = parse_host_port(c.listen, /*allow_port_zero=*/true); !hp.ok()) {
    problems.push_back({"/listen", hp.status().message()});
  }
  if (c.http_threads < 1 || c.http_threads > 64) {
    problems.push_back({"/http_threads", "must be between 1 and 64"});
  }
  if (c.max_runs_in_flight < 1) {
    problems.push_back({"/max_runs_in_flight", "must be at least 1"});
  }
  if (c.max_connections_per_address > 1000000) {
    problems.push_back(
        {"/max_connections_per_address", "must be at most 1000000 (0 = no per-address limit)"});
  }
  if (c.retention_days > 36500) {
    problems.push_back({"/retention_days", "must be at most 36500 (0 keeps history forever)"});
  }
  if (c.http_tool_concurrency < 1 || c.http_tool_concurrency > 4096) {
    problems.push_back({"/http_tool_concurrency", "must be between 1 and 4096"});
  }
  if (c.script_concurrency < 1 || c.script_concurrency > 256) {
    problems.push_back({"/script_concurrency", "must be between 1 and 256"});
  }
  if (c.script_max_timeout_ms < 1 || c.script_max_timeout_ms > 60000) {
    problems.push_back({"/script_max_timeout_ms", "must be between 1 and 60000"});
  }
  if (c.script_memory_mb < 1 || c.script_memory_mb > 1024) {
    problems.push_back({"/script_memory_mb", "must be between 1 and 1024 (MiB)"});
  }
  // Below 16 MiB the floor leaves RocksDB too little room for what it writes
  // between two samples of free space and at open (a MANIFEST, an OPTIONS
  // file, a new WAL); above 1 TiB it is a typo.
  if (c.min_free_disk_mb < 16 || c.min_free_disk_mb > 1048576) {
    problems.push_back({"/min_free_disk_mb", "must be between 16 and 1048576 (MiB)"});
  }
  std::vector<std::string> mcp_ids;
  for (size_t i = 0; i < c.mcp_servers.size(); ++i) {
    const auto& s = c.mcp_servers[i];
    const std::string at = "/mcp_servers/" + std::to_string(i);
    bool id_ok =
        !s.id.empty() && s.id.size() <= 128 && std::isalnum(static_cast<unsigned char>(s.id[0]));
    for (char ch : s.id) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.' && ch != '-')
        id_ok = false;
    }
    if (!id_ok) problems.push_back({at + "/id", "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}"});
    if (std::find(mcp_ids.begin(), mcp_ids.end(), s.id) != mcp_ids.end()) {
      problems.push_back({at + "/id", "is used by another MCP server"});
    }
    mcp_ids.push_back(s.id);
    if (s.command.empty()) problems.push_back({at + "/command", "must not be empty"});
    if (s.tenants.empty()) {
      problems.push_back({at + "/tenants", "must name at least one tenant"});
    }
  }
  if (c.clustered()) {
    if (c.node_id.empty()) problems.push_back({"/node_id", "is required with etcd (--node-id)"});
    if (c.cluster_listen.empty()) {
      problems.push_back({"/cluster_listen", "must be HOST:PORT with etcd (--cluster-listen)"});
    } else if (auto hp = parse_host_port(c.cluster_listen); !hp.ok()) {
      problems.push_back({"/cluster_listen", hp.status().message()});
    }
    if (!c.advertise_http.empty()) {
      if (auto hp = parse_host_port(c.advertise_http); !hp.ok()) {
        problems.push_back({"/advertise_http", hp.status().message()});
      }
    }
    if (c.cluster_key_file.empty()) {
      problems.push_back({"/cluster_key_file", "is required with etcd (--cluster-key-file)"});
    }
    if (c.etcd_prefix.empty() || c.etcd_prefix.front() != '/') {
      problems.push_back({"/etcd_prefix", "must start with '/'"});
    }
  } else if (!c.node_id.empty() || !c.cluster_listen.empty() || !c.cluster_key_file.empty()) {
    problems.push_back({"/etcd",
                        "is required when node_id, cluster_listen or cluster_key_file "
                        "is set (--etcd)"});
  }
  if (problems.empty()) return {};
  std::string msg =
      "invalid configuration: " + problems.front().path.substr(1) + " " + problems.front().message;
  return Status(Errc::kInvalidConfig, msg, std::move(problems));
}

}  // namespace yantra
