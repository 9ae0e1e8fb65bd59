// `yantra serve`: one node — engine (RocksDB under the data dir), the http
// tool, and the HTTP front door — until SIGTERM or SIGINT, then a clean
// shutdown (stop accepting, stop actors, flush the log writers).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace yantra::cli {

struct ServeFlags {
  std::string config_file;
  std::string data_dir;         // empty: from config / env / default
  std::string listen;           // empty: from config / env / default
  std::string master_key_file;  // empty: from config / env
  // -1: from config / env / default.
  int64_t max_connections_per_address = -1;
  bool accept_data_loss = false;  // --accept-data-loss; else from config / env
  std::string min_free_disk_mb;   // empty: from config / env / default
  // Print the owner key made at first start (default: only its file's path,
  // so that the key never reaches a log shipper reading stdout).
  bool print_bootstrap_key = false;
  // Cluster flags (empty: from config / env): --etcd, --prefix, --node-id,
  // --cluster-listen, --cluster-key-file, --advertise-http.
  std::map<std::string, std::string> cluster;  // config key -> value
};

// `yantra rotate-master-key`: re-wraps every tenant's data key under a new
// master key, offline (the node must be stopped: RocksDB allows one
// process). Secrets themselves are not re-encrypted; only their keys are.
struct RotateFlags {
  std::string data_dir = "./data";
  std::string old_key_file;
  std::string new_key_file;
};
int run_rotate_master_key(const RotateFlags& flags);

// Owner-only files: sets the process umask to 077 (every file and directory
// the node creates from then on, RocksDB's included, is 0600 / 0700) and
// narrows an existing `data_dir` and what is in it to the owner, with a
// warning on stderr naming what was wider. Call before anything is created.
void harden_data_dir(const std::string& data_dir);

// Blocks SIGTERM/SIGINT in the calling thread; call it before any other
// thread exists so every thread inherits the mask.
void block_shutdown_signals();
int run_serve(const ServeFlags& flags);

}  // namespace yantra::cli
