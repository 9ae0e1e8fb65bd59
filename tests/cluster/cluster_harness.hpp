// A real cluster for tests: one etcd member (tests/support/etcd_process.hpp),
// `yantra cluster init`, a cluster key file, and N `yantra serve` children
// on loopback (tests/e2e/node_process.hpp), each with its own data dir,
// transport port and node id, stopped by PID. A node can be killed (-9),
// stopped, paused (SIGSTOP, resumed by SIGCONT) and started again on the
// same data and transport port; etcd can be paused, killed and restarted.
// With Options::network_namespaces each node and etcd run in network
// namespaces the test makes (netns.hpp) and a node can be cut off and
// healed; Options::customize_node adds arguments or a wrapper per node.
// A paused node or etcd is resumed before teardown, so a failing test does
// not leave the others waiting on a hung peer while they shut down.
#pragma once

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "base/time.hpp"
#include "runtime/ids.hpp"
#include "tests/cluster/netns.hpp"
#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_process.hpp"
#include "tests/support/etcd_process.hpp"

namespace yantra::cluster_test {

using e2e::Api;
using e2e::NodeProcess;
using e2e::Reply;
using nlohmann::json;
using namespace std::chrono_literals;

inline constexpr const char* kOperatorKey = "test-operator-key-6f1e0c2d";

class TestCluster {
 public:
  struct Options {
    int nodes = 3;
    uint32_t partitions = 8;
    uint32_t replication = 3;
    // Each node (and etcd) in a network namespace of its own, joined by a
    // bridge (tests/cluster/netns.hpp), so cut() can cut a node off; root only.
    bool network_namespaces = false;
    // Called before each start of node i (e.g. extra arguments, a wrapper).
    std::function<void(size_t, NodeProcess::Options&)> customize_node = nullptr;
    std::vector<std::pair<std::string, std::string>> env = {};  // extra environment for every node
  };

  explicit TestCluster(Options options) : options_(options) {}
  ~TestCluster() {
    for (size_t i : paused_) {
      if (nodes_[i] && nodes_[i]->pid() > 0) ::kill(nodes_[i]->pid(), SIGCONT);
    }
    if (etcd_ && etcd_paused_) etcd_->resume(0);
    if (::testing::Test::HasFailure()) {
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (!nodes_[i]) continue;
        const std::string log = nodes_[i]->log();
        std::cerr << "----- log of " << slots_[i].id << " (last 6000 bytes) -----\n"
                  << (log.size() > 6000 ? log.substr(log.size() - 6000) : log) << "\n";
      }
    }
    if (net_ != nullptr) {  // a cut node could not leave etcd cleanly
      for (size_t i : cut_) net_->heal(i, nullptr);
    }
    nodes_.clear();  // nodes first: they leave etcd cleanly
    etcd_.reset();
    net_.reset();  // after every process its workers spawned
  }

  // Starts etcd, creates the cluster and starts every node; false with
  // `error` on the first failure.
  bool start(std::string* error) {
    etcd_ = std::make_unique<test::EtcdCluster>(1);
    const std::vector<std::string> init_argv = {YANTRA_BIN,
                                                "cluster",
                                                "init",
                                                "--etcd",
                                                "",
                                                "--partitions",
                                                std::to_string(options_.partitions),
                                                "--replication",
                                                std::to_string(options_.replication)};
    test::ProcessResult init;
    if (options_.network_namespaces) {
      net_ = std::make_unique<NetLab>(static_cast<size_t>(options_.nodes));
      if (!net_->create(error)) return false;
      etcd_->set_client_host(net_->hub_address());
      if (!net_->hub().run([&] { return etcd_->start(error); })) return false;
      net_->expose_hub_port(etcd_->client_port(0));
      auto argv = init_argv;
      argv[4] = etcd_url();
      init = net_->hub().run([&] { return test::run_process(argv); });
    } else {
      if (!etcd_->start(error)) return false;
      auto argv = init_argv;
      argv[4] = etcd_url();
      init = test::run_process(argv);
    }
    if (init.exit_code != 0) {
      *error = "cluster init: " + init.out + init.err;
      return false;
    }
    key_file_ = dir_.sub("cluster.key");
    {
      std::ofstream f(key_file_);
      f << "0123456789abcdef0123456789abcdef-test-cluster-key\n";
    }
    ::chmod(key_file_.c_str(), 0600);
    for (int i = 0; i < options_.nodes; ++i) {
      Slot slot;
      slot.id = "n" + std::to_string(i + 1);
      slot.data = dir_.sub(slot.id);
      slot.cluster_port = test::free_loopback_port();
      slots_.push_back(slot);
      nodes_.push_back(nullptr);
      if (!start_node(static_cast<size_t>(i), error)) return false;
    }
    return true;
  }

  bool start_node(size_t i, std::string* error) {
    NodeProcess::Options o;
    o.data_dir = slots_[i].data;
    o.env = {{"YANTRA_OPERATOR_KEY", kOperatorKey}};
    o.env.insert(o.env.end(), options_.env.begin(), options_.env.end());
    o.args = {"--etcd",
              etcd_url(),
              "--node-id",
              slots_[i].id,
              "--cluster-listen",
              (net_ ? net_->node_address(i) : std::string("127.0.0.1")) + ":" +
                  std::to_string(slots_[i].cluster_port),
              "--cluster-key-file",
              key_file_};
    if (options_.customize_node) options_.customize_node(i, o);
    if (net_ && nodes_[i]) net_->forget_port(nodes_[i]->port());
    bool started = false;
    for (int attempt = 0; attempt < 5; ++attempt) {
      nodes_[i] = std::make_unique<NodeProcess>(o);
      started = net_ ? net_->node(i).run([&] { return nodes_[i]->start(error, 60s); })
                     : nodes_[i]->start(error, 60s);
      // Its HTTP port is another namespace's too: start it on another.
      if (!started || !net_ || !net_->exposed(nodes_[i]->port())) break;
      nodes_[i]->stop();
      started = false;
      *error = "no HTTP port distinct from the other namespaces' in 5 attempts";
    }
    if (net_ && started) net_->expose_node_port(i, nodes_[i]->port());
    if (!started) {
      *error = slots_[i].id + ": " + *error;
      return false;
    }
    return true;
  }

  NodeProcess& node(size_t i) { return *nodes_[i]; }
  Api operator_api(size_t i) { return Api(nodes_[i]->port(), kOperatorKey); }
  // GET /admin/v1/cluster through node i (null when it does not answer).
  json describe(size_t i) {
    Reply r = operator_api(i).get("/admin/v1/cluster");
    return r.status == 200 ? r.doc() : json();
  }
  // Until node i sees a leader for every partition, none of them `not_on`,
  // at most `timeout`; false at the deadline.
  bool wait_leaders(size_t i, const std::string& not_on, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      json d = describe(i);
      bool all = d.is_object() && d.contains("partitions");
      if (all) {
        for (const auto& p : d["partitions"]) {
          if (p["leader"].is_null() || p["leader"] == not_on) all = false;
        }
      }
      if (all) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  Api api(size_t i) { return Api(nodes_[i]->port(), nodes_[i]->key()); }

  // SIGSTOP / SIGCONT of node i by its PID; each returns once every thread
  // of the node is stopped (running again): the signal is asynchronous.
  bool pause(size_t i) {
    const pid_t pid = nodes_[i]->pid();
    if (pid <= 0 || ::kill(pid, SIGSTOP) != 0) return false;
    paused_.insert(i);
    return test::EtcdCluster::wait_stopped(pid, true);
  }
  bool resume(size_t i) {
    const pid_t pid = nodes_[i]->pid();
    if (pid <= 0 || ::kill(pid, SIGCONT) != 0) return false;
    paused_.erase(i);
    return test::EtcdCluster::wait_stopped(pid, false);
  }
  // Node i cut off from the other nodes and etcd, and joined again
  // (Options::network_namespaces only); its own clients still reach it.
  bool cut(size_t i, std::string* error) {
    if (!net_ || !net_->cut(i, error)) return false;
    cut_.insert(i);
    return true;
  }
  bool heal(size_t i, std::string* error) {
    if (!net_ || !net_->heal(i, error)) return false;
    cut_.erase(i);
    return true;
  }
  // The etcd member (one): paused, resumed, killed, restarted on its data.
  bool pause_etcd() { return etcd_paused_ = etcd_->pause(0); }
  bool resume_etcd() {
    etcd_paused_ = false;
    return etcd_->resume(0);
  }
  bool kill_etcd() { return etcd_->kill9(0); }
  bool restart_etcd(std::string* error) {
    return net_ ? net_->hub().run([&] { return etcd_->restart(0, error); })
                : etcd_->restart(0, error);
  }

  // The partitions `node` leads as node `via` sees them, with their epochs
  // (empty when `via` does not answer).
  std::map<uint32_t, int64_t> led_by(size_t via, const std::string& node) {
    std::map<uint32_t, int64_t> out;
    json d = describe(via);
    if (!d.is_object() || !d.contains("partitions")) return out;
    for (const auto& p : d["partitions"]) {
      if (p["leader"].is_string() && p["leader"] == node) {
        out[p["id"].get<uint32_t>()] = p.value("epoch", int64_t{0});
      }
    }
    return out;
  }
  // The next Idempotency-Key of the form "<stem>-<n>" (n from *counter,
  // which moves past it) whose start lands in one of `partitions`, for
  // tenant "default" (runtime/ids.hpp): load aimed at given leaders.
  std::string key_in(const std::set<uint32_t>& partitions, const std::string& stem,
                     uint64_t* counter) const {
    for (;;) {
      std::string key = stem + "-" + std::to_string((*counter)++);
      if (partitions.count(partition_of_key("default", key, options_.partitions)) != 0) return key;
    }
  }
  // GET /readyz?writes=true of node i (its status; 0 when it does not answer).
  int ready_for_writes(size_t i, std::chrono::milliseconds timeout = 2s) {
    return e2e::http_request(nodes_[i]->port(), "GET", "/readyz?writes=true", "", {}, timeout)
        .status;
  }
  size_t size() const { return nodes_.size(); }
  std::string etcd_url() const { return etcd_->endpoints().front(); }
  const std::string& id(size_t i) const { return slots_[i].id; }
  uint32_t partitions() const { return options_.partitions; }

  // Until a write through node i is accepted (every partition of the
  // cluster has a leader that finished recovery), at most `timeout`.
  bool wait_writable(size_t i, std::chrono::milliseconds timeout, std::string* why) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Reply r;
    while (std::chrono::steady_clock::now() < deadline) {
      r = e2e::http_request(nodes_[i]->port(), "GET", "/readyz?writes=true", "", {}, 1s);
      if (r.status == 200) return true;
      std::this_thread::sleep_for(50ms);
    }
    *why = r.describe();
    return false;
  }

  // One more node ("n<size+1>", its own data dir and transport port) joins
  // the running cluster; false with `error` when it does not start.
  bool add_node(std::string* error) {
    Slot slot;
    slot.id = "n" + std::to_string(slots_.size() + 1);
    slot.data = dir_.sub(slot.id);
    slot.cluster_port = test::free_loopback_port();
    slots_.push_back(slot);
    nodes_.push_back(nullptr);
    return start_node(slots_.size() - 1, error);
  }

 private:
  struct Slot {
    std::string id;
    std::string data;
    uint16_t cluster_port = 0;
  };
  Options options_;
  e2e::TempDir dir_;
  std::unique_ptr<test::EtcdCluster> etcd_;
  std::string key_file_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  std::set<size_t> paused_;
  bool etcd_paused_ = false;
  std::unique_ptr<NetLab> net_;  // with Options::network_namespaces
  std::set<size_t> cut_;
};

// Flows and checks the cluster suites share.

// a: echo n; a durable delay; b: echo m = 2n. Output {"m": 2n}.
inline json echo_delay_flow(const std::string& id, int delay_ms) {
  return {{"id", id},
          {"steps",
           {{{"id", "a"},
             {"type", "action"},
             {"config",
              {{"tool_id", "core"},
               {"action", "echo"},
               {"parameters", {{"n", {{"$ref", "input.n"}}}}}}},
             {"on_success", "d"}},
            {{"id", "d"},
             {"type", "delay"},
             {"config", {{"duration_ms", delay_ms}}},
             {"on_success", "b"}},
            {{"id", "b"},
             {"type", "action"},
             {"config",
              {{"tool_id", "core"},
               {"action", "echo"},
               {"parameters", {{"m", {{"$expr", "a.n * 2"}}}}}}}}}},
          {"output", {{"m", {{"$ref", "b.m"}}}}}};
}

inline bool accepted(const Reply& r) {
  return r.status == 202 || r.status == 200;
}

// POST run through `api` until accepted (leaders may be settling after a
// fault; 503 is the retriable answer), at most `timeout`.
inline std::string run_retrying(Api& api, const std::string& flow, const json& input,
                                e2e::Headers headers = {},
                                std::chrono::milliseconds timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Reply r;
  while (std::chrono::steady_clock::now() < deadline) {
    r = api.post("/api/v1/flows/" + flow + "/run", json{{"input", input}}, headers);
    if (accepted(r)) return r.doc().value("execution_id", "");
    std::this_thread::sleep_for(50ms);
  }
  ADD_FAILURE() << "run of " << flow << " never accepted: " << r.describe();
  return "";
}

// Until every node serves `flow` to `key` (the cluster's default key when
// empty): resources reach each node's mirror within about a second.
inline void wait_flow_everywhere(TestCluster& cluster, const std::string& flow,
                                 const std::string& key = "") {
  for (size_t i = 0; i < cluster.size(); ++i) {
    Api api = key.empty() ? cluster.api(i) : Api(cluster.node(i).port(), key);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (api.get("/api/v1/flows/" + flow).status != 200 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(api.get("/api/v1/flows/" + flow).status, 200) << cluster.id(i);
  }
}

// [started, ended] of a finished execution, from its first and last events'
// times ({0, 0} when unreadable).
inline std::pair<int64_t, int64_t> run_interval(Api& api, const std::string& id) {
  const json events = api.get("/api/v1/executions/" + id + "/events?limit=1000").doc();
  if (!events.is_object() || !events.contains("events") || events["events"].size() < 2) {
    ADD_FAILURE() << id << ": " << events.dump();
    return {0, 0};
  }
  auto ms = [](const json& e) {
    auto t = parse_rfc3339_ms(e.value("time", ""));
    return t.ok() ? t.value() : int64_t{-1};
  };
  return {ms(events["events"].front()), ms(events["events"].back())};
}

// The most of `runs` ([started, ended]) running at one moment.
inline size_t max_overlap(const std::vector<std::pair<int64_t, int64_t>>& runs) {
  size_t most = 0;
  for (const auto& [start, end] : runs) {
    size_t n = 0;
    for (const auto& [s, e] : runs) n += s <= start && start < e ? 1 : 0;
    most = std::max(most, n);
  }
  return most;
}

// The execution's events as `api` serves them (null when unreadable).
inline json events_of(Api& api, const std::string& id) {
  Reply r = api.get("/api/v1/executions/" + id + "/events");
  return r.status == 200 ? r.doc().value("events", json::array()) : json();
}

// Every step of an execution completed at most once (no recorded step ran
// twice), from its event history as `api` serves it.
inline void expect_no_step_twice(Api& api, const std::string& id) {
  json events = events_of(api, id);
  ASSERT_TRUE(events.is_array()) << id << ": events unreadable";
  std::map<std::string, int> completed;
  for (const auto& e : events) {
    if (e.value("type", "") == "step_completed") {
      ++completed[e["data"].value("path", e.dump())];
    }
  }
  for (const auto& [path, n] : completed) EXPECT_EQ(n, 1) << id << " step " << path;
}

// Clients recording a whole history: each client thread sends keyed starts
// of `flow` ({"n": unique}) to one node, each with a fresh Idempotency-Key
// landing in the client's partitions (any when empty), and records every
// request: where, when sent and answered, the status, the execution on a
// 2xx. A node's port is looked up at each request (set_port when a node
// restarts on a new port; 0 while it is down: its clients wait).
class HistoryLoad {
 public:
  using Clock = std::chrono::steady_clock;
  struct Client {
    size_t node = 0;
    std::set<uint32_t> partitions;  // empty: every partition
  };
  struct Request {
    size_t node = 0;
    std::string key;
    int n = 0;
    Clock::time_point sent;
    Clock::time_point answered;
    int status = 0;  // 0: no answer (refused, reset, timed out)
    std::string execution;
  };

  HistoryLoad(TestCluster& cluster, std::string flow, std::vector<Client> clients,
              std::chrono::milliseconds timeout,
              std::chrono::milliseconds gap = std::chrono::milliseconds(0))
      : flow_(std::move(flow)), key_(cluster.api(0).key()) {
    for (size_t i = 0; i < cluster.size(); ++i) ports_.push_back(cluster.node(i).port());
    std::set<uint32_t> every;
    for (uint32_t p = 0; p < cluster.partitions(); ++p) every.insert(p);
    for (size_t t = 0; t < clients.size(); ++t) {
      Client c = clients[t];
      if (c.partitions.empty()) c.partitions = every;
      threads_.emplace_back([this, c, t, timeout, gap, &cluster] {
        uint64_t counter = 0;
        const std::string stem = "h" + std::to_string(t) + "-" + std::to_string(c.node);
        while (!stop_) {
          const uint16_t port = port_of(c.node);
          if (port == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
          }
          Request req;
          req.node = c.node;
          req.key = cluster.key_in(c.partitions, stem, &counter);
          req.n = next_n_++;
          req.sent = Clock::now();
          Api api(port, key_);
          Reply r = api.request(
              "POST", "/api/v1/flows/" + flow_ + "/run", json{{"input", {{"n", req.n}}}}.dump(),
              {{"Content-Type", "application/json"}, {"Idempotency-Key", req.key}}, timeout);
          req.answered = Clock::now();
          req.status = r.status;
          if (accepted(r)) req.execution = r.doc().value("execution_id", "");
          {
            std::lock_guard lock(mu_);
            requests_.push_back(req);
          }
          if (!accepted(r)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));  // do not spin on refusals
          } else if (gap.count() > 0) {
            std::this_thread::sleep_for(gap);
          }
        }
      });
    }
  }
  ~HistoryLoad() { stop(); }
  HistoryLoad(const HistoryLoad&) = delete;
  HistoryLoad& operator=(const HistoryLoad&) = delete;

  void set_port(size_t node, uint16_t port) {
    std::lock_guard lock(mu_);
    ports_[node] = port;
  }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // Acknowledged executions: id -> n.
  std::map<std::string, int> acked() const {
    std::lock_guard lock(mu_);
    std::map<std::string, int> out;
    for (const auto& r : requests_) {
      if (!r.execution.empty()) out[r.execution] = r.n;
    }
    return out;
  }

 private:
  uint16_t port_of(size_t node) {
    std::lock_guard lock(mu_);
    return ports_[node];
  }

  std::string flow_;
  std::string key_;
  std::atomic<bool> stop_{false};
  std::atomic<int> next_n_{0};
  mutable std::mutex mu_;
  std::vector<uint16_t> ports_;
  std::vector<Request> requests_;
  std::vector<std::thread> threads_;
};

// Each of `expected` (id -> n) completed with output m = 2n, read through
// `api` (one deadline for all); returns how many did.
inline size_t expect_completed_with_output(Api& api, const std::map<std::string, int>& expected,
                                           std::chrono::milliseconds timeout,
                                           const std::string& where) {
  std::vector<std::string> ids;
  for (const auto& [id, n] : expected) ids.push_back(id);
  auto views = e2e::wait_all_ended(api, ids, timeout);
  size_t ok = 0;
  for (const auto& [id, n] : expected) {
    const json& v = views[id];
    const bool done = v.is_object() && v.value("status", "") == "completed" &&
                      v.contains("output") && v["output"].is_object() &&
                      v["output"].value("m", -1) == 2 * n;
    EXPECT_TRUE(done) << where << ": " << id << " (n=" << n << ") " << v.dump();
    if (done) ++ok;
  }
  return ok;
}

// What each replica holds: stops every node (cleanly: their leader keys go),
// then starts each one alone, where no node can lead (a segment needs W
// live nodes) and a read is served from the node's own copy of the
// partition — and reads the events of `ids` there. Returns, per node, id ->
// events (null when unreadable). Every node is running again afterwards.
inline std::vector<std::map<std::string, json>> events_on_each_replica(
    TestCluster& cluster, const std::vector<std::string>& ids) {
  std::vector<std::map<std::string, json>> out(cluster.size());
  for (size_t i = 0; i < cluster.size(); ++i) {
    EXPECT_TRUE(cluster.node(i).stop()) << cluster.id(i) << " did not stop cleanly";
  }
  std::string error;
  for (size_t i = 0; i < cluster.size(); ++i) {
    if (!cluster.start_node(i, &error)) {
      ADD_FAILURE() << error;
      return out;
    }
    Api api = cluster.api(i);
    for (const auto& id : ids) out[i][id] = events_of(api, id);
    EXPECT_TRUE(cluster.node(i).stop()) << cluster.id(i) << " did not stop cleanly";
  }
  for (size_t i = 0; i < cluster.size(); ++i) {
    if (!cluster.start_node(i, &error)) ADD_FAILURE() << error;
  }
  return out;
}

// Every replica holds the same events for every execution of `ids`, and
// they are those `reference` holds (the events read through the cluster
// before): the replicas of each partition are identical. Returns the
// number of executions compared (those the cluster served events of).
inline size_t expect_identical_replicas(TestCluster& cluster,
                                        const std::map<std::string, json>& reference) {
  std::vector<std::string> ids;  // those the cluster served (a missing one fails elsewhere)
  for (const auto& [id, events] : reference) {
    if (events.is_array()) ids.push_back(id);
  }
  auto replicas = events_on_each_replica(cluster, ids);
  size_t differing = 0;
  for (const auto& [id, events] : reference) {
    if (!events.is_array()) continue;
    for (size_t i = 0; i < replicas.size(); ++i) {
      const json& mine = replicas[i][id];
      if (mine != events) {
        if (++differing <= 5) {
          ADD_FAILURE() << "replica " << cluster.id(i) << " differs on " << id << ": "
                        << mine.dump().substr(0, 1500) << "\nthe cluster served "
                        << events.dump().substr(0, 1500);
        }
      }
    }
  }
  EXPECT_EQ(differing, 0u) << "replica copies differing from the cluster's answer";
  return ids.size();
}

}  // namespace yantra::cluster_test
