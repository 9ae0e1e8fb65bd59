// `yantra serve`: one node — engine (RocksDB under the data dir), the http
// tool, and the HTTP front door — until SIGTERM or SIGINT, then a clean
// shutdown (stop accepting, stop actors, flush the log writers).
#pragma once

#include <string>

namespace yantra::cli {

struct ServeFlags {
  std::string config_file;
  std::string data_dir;  // empty: from config / env / default
  std::string listen;    // empty: from config / env / default
};

// Blocks SIGTERM/SIGINT in the calling thread; call it before any other
// thread exists so every thread inherits the mask.
void block_shutdown_signals();
int run_serve(const ServeFlags& flags);

}  // namespace yantra::cli
