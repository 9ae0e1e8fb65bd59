// End-to-end tests run the real `yantra` binary: as a node (`yantra serve`)
// and as a client (`yantra flows ...`). This header starts and stops such
// processes and nothing else; wire.hpp speaks HTTP to them.
//
// Why it is built this way:
// - Children are stopped by their PID only: SIGTERM, a bounded wait, then
//   SIGKILL. Nothing is ever killed by name. If the test process itself
//   dies, the kernel kills its children (PR_SET_PDEATHSIG).
// - A node gets a fresh temporary data dir, a free loopback port and a known
//   key (YANTRA_BOOTSTRAP_KEY), so tests need no output parsing to log in.
//   The port comes from binding port 0 and closing the socket; another
//   process may grab it in between, so start() retries with a new port when
//   the node exits before it became ready.
// - Every wait polls against a deadline: a hung child fails one test with its
//   log attached instead of hanging the suite.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/e2e/wire.hpp"
#include "tests/support/process.hpp"

namespace yantra::e2e {

// The generic process helpers (tests/support/process.hpp), under the names
// the suites have always used.
using test::Env;
using test::free_loopback_port;
using test::ProcessResult;
using test::run_process;
using test::TempDir;
namespace detail {
using test::detail::c_strings;
using test::detail::environment_with;
using test::detail::spawn;
using test::detail::wait_exit;
}  // namespace detail

// One `yantra serve` child on 127.0.0.1. Lifecycle: start() (or the
// constructor's caller checks ok()), stop() by PID, destructor stops too.
// Owned by one test thread.
class NodeProcess {
 public:
  struct Options {
    std::string key = "e2e-owner-key-5b0c3c7a9f1d4e2a";
    Env env;               // extra environment for the node
    std::string data_dir;  // empty: a fresh temporary dir owned by this object
    // false: no YANTRA_BOOTSTRAP_KEY, so the node makes its own owner key
    // (in <data>/bootstrap-key); key() is then not it.
    bool preset_key = true;
    std::vector<std::string> args;  // extra arguments of `yantra serve`
    // A command that execs the rest of the argv (so pid() is still the
    // node's), e.g. nsenter into a mount namespace; empty: none.
    std::vector<std::string> wrapper = {};
  };

  NodeProcess() : NodeProcess(Options{}) {}
  explicit NodeProcess(Options options) : options_(std::move(options)) {
    data_dir_ = options_.data_dir.empty() ? tmp_.sub("data") : options_.data_dir;
    log_file_ = tmp_.sub("node.log");
  }
  ~NodeProcess() { stop(); }
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  // Starts the node and waits (bounded) until GET /readyz answers 200.
  // On failure returns false with `error` describing it and the node's log.
  bool start(std::string* error,
             std::chrono::milliseconds ready_timeout = std::chrono::seconds(30)) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_loopback_port();
      const int log_fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      // A fixed test master key (the node refuses to start without one); a
      // test's own entry wins, being later in the list.
      Env env{{"YANTRA_MASTER_KEY",
               "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}};
      env.insert(env.end(), options_.env.begin(), options_.env.end());
      if (options_.preset_key) env.emplace_back("YANTRA_BOOTSTRAP_KEY", options_.key);
      std::vector<std::string> argv = {YANTRA_BIN, "serve",
                                       "--data",   data_dir_,
                                       "--listen", "127.0.0.1:" + std::to_string(port_)};
      argv.insert(argv.end(), options_.args.begin(), options_.args.end());
      argv.insert(argv.begin(), options_.wrapper.begin(), options_.wrapper.end());
      pid_ = detail::spawn(argv, env, log_fd, log_fd);
      ::close(log_fd);
      if (pid_ < 0) {
        *error = "cannot spawn " + std::string(YANTRA_BIN);
        return false;
      }
      const auto deadline = std::chrono::steady_clock::now() + ready_timeout;
      bool exited = false;
      while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
          exited = true;
          break;
        }
        Reply r = http_request(port_, "GET", "/readyz", "", {}, std::chrono::milliseconds(500));
        if (r.status == 200) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (!exited) {
        stop();
        *error = "node not ready within " + std::to_string(ready_timeout.count()) + " ms; log:\n" +
                 log();
        return false;
      }
      pid_ = -1;  // exited early (most likely the port was taken): try another port
    }
    *error = "node exited before it became ready (5 attempts); log:\n" + log();
    return false;
  }

  // SIGTERM, wait up to `grace`, then SIGKILL. Returns true if the node
  // exited by itself with status 0 (a clean shutdown).
  bool stop(std::chrono::milliseconds grace = std::chrono::seconds(15)) {
    if (pid_ <= 0) return false;
    const pid_t pid = pid_;
    pid_ = -1;
    int status = 0;
    ::kill(pid, SIGTERM);
    if (detail::wait_exit(pid, grace, &status))
      return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    ::kill(pid, SIGKILL);
    detail::wait_exit(pid, std::chrono::seconds(10), &status);
    return false;
  }

  // A crash: SIGKILL (no shutdown path runs, nothing is flushed), then reap.
  // True once the node is gone.
  bool kill9() {
    if (pid_ <= 0) return false;
    const pid_t pid = pid_;
    pid_ = -1;
    if (::kill(pid, SIGKILL) != 0) return false;
    int status = 0;
    return detail::wait_exit(pid, std::chrono::seconds(10), &status);
  }

  // False once the node has exited (it is then reaped, so its PID is never
  // signalled again: the number may already belong to another process).
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == 0) return true;
    pid_ = -1;
    return false;
  }

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& key() const { return options_.key; }
  const std::string& data_dir() const { return data_dir_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const {
    std::ifstream in(log_file_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  Options options_;
  TempDir tmp_;
  std::string data_dir_;
  std::string log_file_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace yantra::e2e
