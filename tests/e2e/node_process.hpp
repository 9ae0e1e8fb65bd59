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

extern char** environ;

namespace yantra::e2e {

using Env = std::vector<std::pair<std::string, std::string>>;

// A directory under $TMPDIR removed (recursively) on destruction.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("yantra-e2e-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path_.string(); }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A port nobody listens on right now (it may be taken again at any moment).
inline uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

namespace detail {

// The current environment with `extra` set on top: an entry of `extra`
// replaces a variable of the same name, and a later entry an earlier one.
inline std::vector<std::string> environment_with(const Env& extra) {
  std::map<std::string, std::string> overrides;
  for (const auto& [k, v] : extra) overrides[k] = v;
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv = *e;
    if (overrides.count(kv.substr(0, kv.find('='))) == 0) out.push_back(std::move(kv));
  }
  for (const auto& [k, v] : overrides) out.push_back(k + "=" + v);
  return out;
}

inline std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// fork + execve with stdout/stderr dup'ed from the given fds, stdin from
// /dev/null, and default signal dispositions and mask, so the test's own
// signal setup never leaks into the child. The child gets SIGKILL if the test
// process dies first (PR_SET_PDEATHSIG), so a crashed or killed test run
// leaves no node behind. Between fork and exec only async-signal-safe calls
// are made (the test process has threads). Returns the PID, or -1.
inline pid_t spawn(std::vector<std::string> argv, const Env& env, int out_fd, int err_fd) {
  std::vector<std::string> envs = environment_with(env);
  auto argv_c = c_strings(argv);
  auto env_c = c_strings(envs);
  const pid_t parent = ::getpid();
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigset_t none;
  sigemptyset(&none);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the test is already gone
    ::dup2(devnull, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv_c[0], argv_c.data(), env_c.data());
    ::_exit(127);
  }
  if (devnull >= 0) ::close(devnull);
  return pid;
}

// Reaps `pid` if it has exited, waiting at most `timeout`. Returns true and
// the wait status once it has.
inline bool wait_exit(pid_t pid, std::chrono::milliseconds timeout, int* status) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0) return true;  // not our child any more (already reaped)
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace detail

struct ProcessResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs a program to completion, capturing stdout and stderr; after `timeout`
// it is killed (by PID) and timed_out is set.
inline ProcessResult run_process(const std::vector<std::string>& argv, const Env& env = {},
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  ProcessResult result;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return result;
  }
  const pid_t pid = detail::spawn(argv, env, out_pipe[1], err_pipe[1]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (pid < 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    result.err = "spawn failed: " + argv[0];
    return result;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left)) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buf[8192];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  if (!detail::wait_exit(pid, std::chrono::seconds(5), &status)) {
    ::kill(pid, SIGKILL);
    detail::wait_exit(pid, std::chrono::seconds(5), &status);
    result.timed_out = true;
  }
  if (!result.timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

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
