// Network namespaces for cluster tests that cut a node off: a hub namespace
// holding a bridge (10.77.0.254/24, where etcd listens) and one namespace per
// node joined to the bridge by a veth pair (the node at 10.77.0.<i+1>).
// Cutting node i sets the hub's end of its pair down: every packet between
// the node and the rest (peers and etcd) is dropped silently, as with a
// pulled cable; healing sets it up again.
//
// Why it is built this way:
// - Nothing is added to the root namespace (the machine's own network):
//   only namespaces named "ytnc-<pid>-<k>-..." that the test creates, and
//   deletes in its destructor even when the test fails. Namespaces a killed
//   test run left behind (their pid is gone) are deleted at the next start.
// - Each node serves HTTP on 127.0.0.1 of its own namespace, so its clients
//   are on its side of a cut (they keep reaching it, as clients next to a
//   cut-off leader would). The test reaches that loopback through the port
//   registry of tests/e2e/wire.hpp: a socket for the port is made inside the
//   node's namespace, so every helper written for loopback works unchanged.
// - Processes are spawned from a worker thread that entered the namespace
//   (a child inherits its parent thread's namespaces). The worker lives as
//   long as the lab: a child's PR_SET_PDEATHSIG fires when the *thread* that
//   forked it exits, so the nodes must be stopped before the lab goes.
// - Only `ip` (iproute2) is needed: netem is not in every kernel and
//   iptables/nftables are not installed; a link set down needs neither.
// Owned by one test thread; needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/wire.hpp"
#include "tests/support/process.hpp"

namespace yantra::cluster_test {

// A thread that entered a network namespace and runs what it is given there,
// one call at a time.
class NetnsThread {
 public:
  explicit NetnsThread(int netns_fd) {
    std::promise<bool> entered;
    auto done = entered.get_future();
    thread_ = std::thread([this, netns_fd, &entered] {
      const bool ok = ::setns(netns_fd, CLONE_NEWNET) == 0;
      e2e::loopback_in_this_namespace = true;
      entered.set_value(ok);
      loop();
    });
    ok_ = done.get();
  }
  ~NetnsThread() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  NetnsThread(const NetnsThread&) = delete;
  NetnsThread& operator=(const NetnsThread&) = delete;

  bool ok() const { return ok_; }
  // Runs f() on the thread and returns its result.
  template <typename F>
  auto run(F f) -> decltype(f()) {
    using R = decltype(f());
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(f));
    auto result = task->get_future();
    {
      std::lock_guard lock(mu_);
      queue_.push_back([task] { (*task)(); });
    }
    cv_.notify_all();
    return result.get();
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  bool ok_ = false;
  std::thread thread_;
};

class NetLab {
 public:
  static constexpr const char* kPrefix = "ytnc-";
  static constexpr const char* kIp = "/usr/sbin/ip";

  explicit NetLab(size_t nodes) : nodes_(nodes) {
    static int counter = 0;
    stem_ = std::string(kPrefix) + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  }
  ~NetLab() {
    for (uint16_t port : ports_) e2e::set_port_namespace(port, -1);
    workers_.clear();  // joined: whatever they spawned has been stopped by now
    for (int fd : fds_) ::close(fd);
    for (auto it = names_.rbegin(); it != names_.rend(); ++it) ip({"netns", "del", *it});
  }
  NetLab(const NetLab&) = delete;
  NetLab& operator=(const NetLab&) = delete;

  // Whether this process may create network namespaces (false with why).
  static bool permitted(std::string* why) {
    if (::geteuid() != 0) {
      *why = "network namespaces need root";
      return false;
    }
    const std::string probe = std::string(kPrefix) + std::to_string(::getpid()) + "-probe";
    auto r = test::run_process({kIp, "netns", "add", probe});
    if (r.exit_code != 0) {
      *why = "ip netns add: " + r.out + r.err;
      return false;
    }
    test::run_process({kIp, "netns", "del", probe});
    return true;
  }

  // Deletes namespaces "ytnc-<pid>-..." whose process is gone (a test run
  // killed before its destructor ran).
  static void remove_stale() {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(kPrefix, 0) != 0) continue;
      const pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + std::string(kPrefix).size()));
      if (pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM)) continue;
      test::run_process({kIp, "netns", "del", name});
    }
  }

  // Creates the hub (bridge, etcd's address, lo up) and one namespace per
  // node joined to it, and starts a worker in each.
  bool create(std::string* error) {
    remove_stale();
    const std::string hub = name("hub");
    if (!add_namespace(hub, error)) return false;
    if (!ip({"-n", hub, "link", "set", "lo", "up"}, error) ||
        !ip({"-n", hub, "link", "add", "br0", "type", "bridge", "forward_delay", "0"}, error) ||
        !ip({"-n", hub, "addr", "add", hub_address() + "/24", "dev", "br0"}, error) ||
        !ip({"-n", hub, "link", "set", "br0", "up"}, error)) {
      return false;
    }
    for (size_t i = 0; i < nodes_; ++i) {
      const std::string ns = name("n" + std::to_string(i + 1));
      if (!add_namespace(ns, error)) return false;
      const std::string port = hub_port(i);
      if (!ip({"-n", hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
              error) ||
          !ip({"-n", hub, "link", "set", port, "master", "br0"}, error) ||
          !ip({"-n", hub, "link", "set", port, "up"}, error) ||
          !ip({"-n", ns, "link", "set", "lo", "up"}, error) ||
          !ip({"-n", ns, "addr", "add", node_address(i) + "/24", "dev", "eth0"}, error) ||
          !ip({"-n", ns, "link", "set", "eth0", "up"}, error)) {
        return false;
      }
    }
    for (size_t k = 0; k < fds_.size(); ++k) {
      workers_.push_back(std::make_unique<NetnsThread>(fds_[k]));
      if (!workers_.back()->ok()) {
        *error = "setns into " + names_[k] + " failed";
        return false;
      }
    }
    return true;
  }

  std::string hub_address() const { return "10.77.0.254"; }
  std::string node_address(size_t i) const { return "10.77.0." + std::to_string(i + 1); }
  NetnsThread& hub() { return *workers_[0]; }
  NetnsThread& node(size_t i) { return *workers_[i + 1]; }
  // Clients of `port` (from any thread) reach the loopback of the hub's
  // (node i's) namespace.
  void expose_hub_port(uint16_t port) { expose(port, fds_[0]); }
  void expose_node_port(size_t i, uint16_t port) { expose(port, fds_[i + 1]); }
  void forget_port(uint16_t port) {
    e2e::set_port_namespace(port, -1);
    ports_.erase(port);
  }
  // A port number is free in every namespace but chosen in one: two
  // namespaces may pick the same, which the registry cannot tell apart.
  bool exposed(uint16_t port) const { return ports_.count(port) != 0; }

  // Node i cut off from the others and etcd (its clients on its loopback
  // still reach it), and joined again.
  bool cut(size_t i, std::string* error) {
    return ip({"-n", name("hub"), "link", "set", hub_port(i), "down"}, error);
  }
  bool heal(size_t i, std::string* error) {
    return ip({"-n", name("hub"), "link", "set", hub_port(i), "up"}, error);
  }

 private:
  std::string name(const std::string& what) const { return stem_ + "-" + what; }
  static std::string hub_port(size_t i) { return "vn" + std::to_string(i + 1); }

  bool add_namespace(const std::string& ns, std::string* error) {
    if (!ip({"netns", "add", ns}, error)) return false;
    names_.push_back(ns);
    const int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      *error = "cannot open /run/netns/" + ns;
      return false;
    }
    fds_.push_back(fd);
    return true;
  }
  void expose(uint16_t port, int fd) {
    e2e::set_port_namespace(port, fd);
    ports_.insert(port);
  }
  static bool ip(std::vector<std::string> args, std::string* error = nullptr) {
    args.insert(args.begin(), kIp);
    auto r = test::run_process(args);
    if (r.exit_code == 0) return true;
    if (error != nullptr) {
      std::string cmd;
      for (const auto& a : args) cmd += a + " ";
      *error = cmd + "failed: " + r.out + r.err;
    }
    return false;
  }

  size_t nodes_;
  std::string stem_;
  std::vector<std::string> names_;  // hub first, then the nodes
  std::vector<int> fds_;            // same order
  std::vector<std::unique_ptr<NetnsThread>> workers_;
  std::set<uint16_t> ports_;
};

}  // namespace yantra::cluster_test
