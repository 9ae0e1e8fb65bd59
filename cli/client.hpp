// The client subcommands of `yantra`: flows (apply, list, get, delete,
// versions, rollback), run, and executions (list, get, events, cancel, and
// the time machine: state, timeline, diff, replay, retry), each one or a few
// calls to a node's HTTP API (api/openapi.json).
//
// Conventions every command follows, so that scripts can rely on them:
// - The server is --url, else $YANTRA_URL, else http://127.0.0.1:8080; the
//   key is --key, else $YANTRA_API_KEY (sent as "Authorization: Bearer").
// - Output is a readable, column-aligned table by default; --json prints the
//   server's JSON response unchanged instead (for `executions events`, which
//   may read several pages, the pages merged into one document of the same
//   shape). `executions replay` prints only the new execution's id, so a
//   script can capture it.
// - Errors go to stderr as "error: <code>: <message>" plus one
//   "  <path>: <message>" line per detail, and the exit code says who failed
//   (ExitCode below).
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace yantra::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitServerError = 1,  // the server answered with an error (or the run did not complete)
  kExitUsage = 2,        // bad flags or arguments, unreadable file, bad --input JSON
  kExitUnreachable = 3,  // no HTTP answer: connection refused, timeout, not an HTTP server
};

// Registers the client subcommands on `app`. The object holds the values the
// flags are parsed into, so it must outlive app.parse(). Not thread-safe (a
// CLI runs one command).
class ClientCommands {
 public:
  explicit ClientCommands(CLI::App& app);
  ~ClientCommands();
  ClientCommands(const ClientCommands&) = delete;
  ClientCommands& operator=(const ClientCommands&) = delete;

  // True if one of the client subcommands was on the command line.
  bool parsed() const;
  // Runs the parsed subcommand; returns the process exit code.
  int run();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace yantra::cli
