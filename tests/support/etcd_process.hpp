// A private etcd for tests: one member or a cluster of several, real
// `etcd` processes (Debian's etcd-server 3.4) on free loopback ports, each
// with its own data dir in a chmod-700 temporary directory. Tests of
// cluster/ start their own etcd this way; nothing touches a system etcd.
//
// Why it is built this way:
// - Spawning, ports and temp dirs come from tests/support/process.hpp, the
//   code the e2e suites start `yantra serve` with: children are signalled
//   by PID only (never by name) and die with the test (PR_SET_PDEATHSIG).
// - Members run with --pre-vote (off by default in 3.4) and a 50 ms
//   heartbeat / 500 ms election timeout, so a member is healthy in ~0.4 s
//   and a new leader is elected within about a second of a kill.
// - Ports: all of a cluster's client and peer ports are chosen before any
//   member starts (each member must know every peer URL). Another process
//   may take one in between; start() then retries the whole cluster on new
//   ports.
// - stop() sends SIGCONT first, so a member a test paused (SIGSTOP) still
//   gets its SIGTERM; SIGKILL after a bounded wait.
// Owned by one test thread.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/wire.hpp"
#include "tests/support/process.hpp"

namespace yantra::test {

class EtcdCluster {
 public:
  // `members` etcd processes forming one cluster (1 for a single member).
  explicit EtcdCluster(size_t members = 1) : tmp_("yantra-etcd"), members_(members) {
    std::filesystem::permissions(tmp_.str(), std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace);
    std::random_device rd;
    token_ = "yantra-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
  }
  ~EtcdCluster() {
    for (size_t i = 0; i < members_.size(); ++i) stop(i);
  }
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // Starts every member and waits (bounded) until each answers /health
  // with true (so the cluster has a leader). On failure returns false with
  // `error` holding the reason and the members' logs.
  bool start(std::string* error, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      pick_ports();
      for (size_t i = 0; i < members_.size(); ++i) {
        if (!spawn(i, "new")) {
          *error = "cannot spawn " + binary();
          return false;
        }
      }
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      bool exited = false;
      while (std::chrono::steady_clock::now() < deadline && !exited) {
        size_t healthy_count = 0;
        for (size_t i = 0; i < members_.size(); ++i) {
          if (!running(i)) exited = true;
          if (healthy(i)) ++healthy_count;
        }
        if (healthy_count == members_.size()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      const std::string logs = all_logs();
      for (size_t i = 0; i < members_.size(); ++i) stop(i);
      if (!exited) {
        *error =
            "etcd not healthy within " + std::to_string(timeout.count()) + " ms; logs:\n" + logs;
        return false;
      }
      // A member exited (most likely a port was taken): new ports, new data.
      for (size_t i = 0; i < members_.size(); ++i) {
        std::error_code ec;
        std::filesystem::remove_all(data_dir(i), ec);
      }
      last_logs_ = logs;
    }
    *error = "etcd exited before it became healthy (3 attempts); logs:\n" + last_logs_;
    return false;
  }

  // Starts member i again on its ports and data dir (after stop or kill9),
  // and waits until it answers /health with true.
  bool restart(size_t i, std::string* error,
               std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    if (running(i)) return true;
    if (!spawn(i, "existing")) {
      *error = "cannot spawn " + binary();
      return false;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!running(i)) break;
      if (healthy(i)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    *error = "member " + std::to_string(i) + " not healthy again; log:\n" + log(i);
    return false;
  }

  size_t size() const { return members_.size(); }
  // Clients reach the members at `host` (default 127.0.0.1), e.g. the
  // address of a bridge in a test's network namespace (tests/cluster/
  // netns.hpp); members listen on it and on 127.0.0.1 of their namespace,
  // which the health checks use. Set before start().
  void set_client_host(std::string host) { client_host_ = std::move(host); }
  uint16_t client_port(size_t i) const { return members_[i].client_port; }
  std::string endpoint(size_t i) const {
    return "http://" + client_host_ + ":" + std::to_string(members_[i].client_port);
  }
  std::vector<std::string> endpoints() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < members_.size(); ++i) out.push_back(endpoint(i));
    return out;
  }
  // The member serving `url`, or size() when none does.
  size_t index_of(const std::string& url) const {
    for (size_t i = 0; i < members_.size(); ++i) {
      if (endpoint(i) == url) return i;
    }
    return members_.size();
  }
  pid_t pid(size_t i) const { return members_[i].pid; }
  std::string data_dir(size_t i) const { return tmp_.sub("e" + std::to_string(i)); }

  // GET /health answers 200 with "true".
  bool healthy(size_t i) const {
    e2e::Reply r = e2e::http_request(members_[i].client_port, "GET", "/health", "", {},
                                     std::chrono::milliseconds(500));
    return r.status == 200 && r.body.find("\"true\"") != std::string::npos;
  }

  // SIGCONT (a paused member must see the SIGTERM), SIGTERM, a bounded
  // wait, SIGKILL. True if it exited by itself.
  bool stop(size_t i, std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    Member& m = members_[i];
    if (m.pid <= 0) return false;
    const pid_t pid = m.pid;
    m.pid = -1;
    ::kill(pid, SIGCONT);
    ::kill(pid, SIGTERM);
    int status = 0;
    if (detail::wait_exit(pid, grace, &status)) return true;
    ::kill(pid, SIGKILL);
    detail::wait_exit(pid, std::chrono::seconds(10), &status);
    return false;
  }

  // A crash: SIGKILL, then reap. True once the member is gone.
  bool kill9(size_t i) {
    Member& m = members_[i];
    if (m.pid <= 0) return false;
    const pid_t pid = m.pid;
    m.pid = -1;
    if (::kill(pid, SIGKILL) != 0) return false;
    int status = 0;
    return detail::wait_exit(pid, std::chrono::seconds(10), &status);
  }

  // A hung member: SIGSTOP / SIGCONT. Its sockets stay open (the kernel
  // still accepts connections), it just never answers. Both return once
  // every thread of the member has stopped (resumed): the signal itself is
  // asynchronous, and a request sent right after kill() could still be
  // answered.
  bool pause(size_t i) {
    return members_[i].pid > 0 && ::kill(members_[i].pid, SIGSTOP) == 0 &&
           wait_stopped(members_[i].pid, true);
  }
  bool resume(size_t i) {
    return members_[i].pid > 0 && ::kill(members_[i].pid, SIGCONT) == 0 &&
           wait_stopped(members_[i].pid, false);
  }

  // False once member i has exited (it is then reaped).
  bool running(size_t i) {
    Member& m = members_[i];
    if (m.pid <= 0) return false;
    int status = 0;
    if (::waitpid(m.pid, &status, WNOHANG) == 0) return true;
    m.pid = -1;
    return false;
  }

  std::string log(size_t i) const {
    std::ifstream in(log_file(i));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Polls /proc (bounded, 5 s) until every thread of `pid` is (or none is)
  // in state T; public so other harnesses pausing processes can use it.
  static bool wait_stopped(pid_t pid, bool stopped) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    while (std::chrono::steady_clock::now() < deadline) {
      bool all = true;
      std::error_code ec;
      for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
        std::ifstream in(t.path() / "stat");
        std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        // "pid (comm) S ...": the state follows the last ')'.
        const auto close = stat.rfind(')');
        const bool is_stopped = close != std::string::npos && close + 2 < stat.size() &&
                                (stat[close + 2] == 'T' || stat[close + 2] == 't');
        if (is_stopped != stopped) all = false;
      }
      if (!ec && all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

  // $YANTRA_ETCD_BIN, or Debian's etcd-server.
  static std::string binary() {
    const char* env = std::getenv("YANTRA_ETCD_BIN");
    return env != nullptr && *env != '\0' ? env : "/usr/bin/etcd";
  }

 private:
  struct Member {
    uint16_t client_port = 0;
    uint16_t peer_port = 0;
    pid_t pid = -1;
  };

  std::string log_file(size_t i) const { return tmp_.sub("e" + std::to_string(i) + ".log"); }

  std::string all_logs() const {
    std::string out;
    for (size_t i = 0; i < members_.size(); ++i)
      out += "--- member " + std::to_string(i) + " ---\n" + log(i);
    return out;
  }

  void pick_ports() {
    std::set<uint16_t> taken;
    auto fresh = [&] {
      uint16_t p = 0;
      while (p == 0 || taken.count(p) != 0) p = free_loopback_port();
      taken.insert(p);
      return p;
    };
    for (auto& m : members_) {
      m.client_port = fresh();
      m.peer_port = fresh();
    }
  }

  bool spawn(size_t i, const std::string& state) {
    std::string initial;
    for (size_t k = 0; k < members_.size(); ++k) {
      if (!initial.empty()) initial += ",";
      initial +=
          "e" + std::to_string(k) + "=http://127.0.0.1:" + std::to_string(members_[k].peer_port);
    }
    const std::string client = endpoint(i);
    const std::string listen_client =
        client_host_ == "127.0.0.1"
            ? client
            : client + ",http://127.0.0.1:" + std::to_string(members_[i].client_port);
    const std::string peer = "http://127.0.0.1:" + std::to_string(members_[i].peer_port);
    std::vector<std::string> argv = {binary(),
                                     "--name=e" + std::to_string(i),
                                     "--data-dir=" + data_dir(i),
                                     "--listen-client-urls=" + listen_client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=" + initial,
                                     "--initial-cluster-token=" + token_,
                                     "--initial-cluster-state=" + state,
                                     "--pre-vote",
                                     "--heartbeat-interval=50",
                                     "--election-timeout=500",
                                     "--logger=zap"};
    const int log_fd = ::open(log_file(i).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    members_[i].pid = detail::spawn(argv, {}, log_fd, log_fd);
    if (log_fd >= 0) ::close(log_fd);
    return members_[i].pid > 0;
  }

  TempDir tmp_;
  std::string client_host_ = "127.0.0.1";
  std::vector<Member> members_;
  std::string token_;
  std::string last_logs_;
};

}  // namespace yantra::test
