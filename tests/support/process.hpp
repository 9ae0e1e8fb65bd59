// Child processes for tests: temporary directories, free loopback ports,
// spawning by fork + execve, and running a program to completion. Shared by
// the end-to-end suites (tests/e2e/node_process.hpp starts `yantra serve`
// with it) and the cluster suites (tests/support/etcd_process.hpp starts
// etcd), so there is one spawn path to get right.
//
// Why it is built this way:
// - Children are stopped by their PID only; nothing is ever killed by name.
//   If the test process itself dies, the kernel kills its children
//   (PR_SET_PDEATHSIG).
// - A port comes from binding port 0 and closing the socket; another process
//   may grab it in between, so callers retry with a new port when their
//   child exits before it became ready.
// - Every wait polls against a deadline: a hung child fails one test instead
//   of hanging the suite.
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
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace yantra::test {

using Env = std::vector<std::pair<std::string, std::string>>;

// A directory under $TMPDIR removed (recursively) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "yantra-e2e") {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
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

}  // namespace yantra::test
