// `yantra serve`: one node — engine (RocksDB under the data dir), the http
// tool, and the HTTP front door — until SIGTERM or SIGINT, then a clean
// shutdown (stop accepting, stop actors, flush the log writers).
#pragma once

#include <cstdint>
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

// Blocks SIGTERM/SIGINT in the calling thread; call it before any other
// thread exists so every thread inherits the mask.
void block_shutdown_signals();
int run_serve(const ServeFlags& flags);

}  // namespace yantra::cli
