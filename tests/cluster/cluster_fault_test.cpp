// Fault tests of a real three-node cluster (etcd + three `yantra serve`
// processes on loopback, tests/cluster/cluster_harness.hpp), the ones
// issue 11 names that the cluster passes today:
//
// - a paused leader (SIGSTOP past its lease, then SIGCONT) commits nothing
//   after others took over: every start its clients saw acknowledged exists
//   and completes on the survivors, and it steps down;
// - a follower killed with -9 and restarted on its data catches up: its
//   local reads show every execution run while it was down, with the same
//   results and events as the survivors;
// - etcd down (paused, or killed and restarted): every node stops accepting
//   writes once its lease ends (503 with Retry-After, never a 2xx), reads go
//   on, and writes and executions waiting in delays resume when etcd is back;
// - two rounds of rolling restarts of every node under light load fail no
//   execution, and each node exits cleanly (status 0) on SIGTERM.
//
// Each test bounds every wait (a hung cluster fails with the nodes' logs,
// printed by TestCluster) and prints what it measured as `[ measure ]`.
// Why the checks are client-side: an acknowledgement (202/200) is the
// promise under test; an execution that was acknowledged and then is
// missing, not finished, or has a step completed twice is exactly the loss
// the replicated log must prevent (docs/replicated-log.md).
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/cluster/cluster_harness.hpp"

namespace yantra::cluster_test {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Each of `expected` (id -> n) completed with output m = 2n, read through
// `api` (one deadline for all).
void expect_all_completed(Api& api, const std::map<std::string, int>& expected,
                          std::chrono::milliseconds timeout, const std::string& where) {
  std::vector<std::string> ids;
  for (const auto& [id, n] : expected) ids.push_back(id);
  auto views = e2e::wait_all_ended(api, ids, timeout);
  for (const auto& [id, n] : expected) {
    const json& v = views[id];
    EXPECT_TRUE(v.is_object() && v.value("status", "") == "completed")
        << where << ": " << id << " (n=" << n << ") " << v.dump();
    if (v.is_object() && v.contains("output") && v["output"].contains("m")) {
      EXPECT_EQ(v["output"]["m"], 2 * n) << where << ": " << id;
    }
  }
}

// Until every node answers /readyz?writes=true with 200 (bounded).
void wait_all_writable(TestCluster& cluster, std::chrono::milliseconds timeout) {
  for (size_t i = 0; i < cluster.size(); ++i) {
    std::string why;
    ASSERT_TRUE(cluster.wait_writable(i, timeout, &why)) << cluster.id(i) << ": " << why;
  }
}

// Until node `via` reports the same leader for every partition for
// `quiet` in a row (the balancer has spread leaderships), at most `timeout`.
json wait_settled(TestCluster& cluster, size_t via, std::chrono::milliseconds quiet,
                  std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  json last;
  auto since = Clock::now();
  while (Clock::now() < deadline) {
    json d = cluster.describe(via);
    json leaders = json::array();
    if (d.is_object()) {
      for (const auto& p : d["partitions"]) leaders.push_back(p["leader"]);
    }
    if (leaders != last) {
      last = leaders;
      since = Clock::now();
    } else if (Clock::now() - since >= quiet) {
      return d;
    }
    std::this_thread::sleep_for(100ms);
  }
  return cluster.describe(via);
}

// Starts keyed runs of `flow` into node `port` from a few threads until
// stopped, recording every acknowledged execution (id -> n) and when each
// request was sent and answered: the clients of one node.
class Loader {
 public:
  struct Request {
    Clock::time_point sent;
    Clock::time_point answered;
    int status = 0;
  };

  Loader(uint16_t port, std::string key, std::string flow, std::set<uint32_t> partitions,
         TestCluster& cluster, int threads, std::chrono::milliseconds timeout)
      : key_(std::move(key)), flow_(std::move(flow)) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, port, partitions, &cluster, t, timeout] {
        Api api(port, key_);
        uint64_t counter = 0;
        const std::string stem = "load-" + std::to_string(port) + "-" + std::to_string(t);
        while (!stop_) {
          const std::string idem = cluster.key_in(partitions, stem, &counter);
          const int n = next_n_++;
          Request req;
          req.sent = Clock::now();
          Reply r = api.request(
              "POST", "/api/v1/flows/" + flow_ + "/run", json{{"input", {{"n", n}}}}.dump(),
              {{"Content-Type", "application/json"}, {"Idempotency-Key", idem}}, timeout);
          req.answered = Clock::now();
          req.status = r.status;
          std::lock_guard lock(mu_);
          requests_.push_back(req);
          if (accepted(r)) {
            const std::string id = r.doc().value("execution_id", "");
            if (!id.empty()) acked_[id] = n;
          } else if (r.status == 0) {
            std::this_thread::sleep_for(20ms);  // refused connection: do not spin
          }
        }
      });
    }
  }
  ~Loader() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::map<std::string, int> acked() const {
    std::lock_guard lock(mu_);
    return acked_;
  }
  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  std::string key_;
  std::string flow_;
  std::atomic<bool> stop_{false};
  std::atomic<int> next_n_{0};
  mutable std::mutex mu_;
  std::map<std::string, int> acked_;
  std::vector<Request> requests_;
  std::vector<std::thread> threads_;
};

TEST(ClusterFault, PausedLeaderCommitsNothingAfterTakeoverAndStepsDown) {
  TestCluster cluster({3, 8, 3});
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  wait_all_writable(cluster, 30s);
  Api a = cluster.api(0);
  e2e::create_flow(a, echo_delay_flow("paused", 300));
  // The victim: the node leading most partitions once leaderships settled.
  json d = wait_settled(cluster, 0, 1500ms, 20s);
  ASSERT_TRUE(d.is_object()) << "describe through n1 failed";
  size_t victim = 0;
  std::map<uint32_t, int64_t> before;
  for (size_t i = 0; i < cluster.size(); ++i) {
    auto led = cluster.led_by(0, cluster.id(i));
    if (led.size() > before.size()) {
      victim = i;
      before = led;
    }
  }
  ASSERT_FALSE(before.empty()) << d.dump();
  std::set<uint32_t> victim_parts;
  for (const auto& [p, e] : before) victim_parts.insert(p);
  const size_t s1 = (victim + 1) % cluster.size();
  const size_t s2 = (victim + 2) % cluster.size();
  const std::string vid = cluster.id(victim);

  // The victim's clients: keyed starts on the partitions it leads, sent to
  // it, with a timeout that outlasts the pause (requests in flight when it
  // stops are answered after SIGCONT, and must not be a lost success).
  Loader clients(cluster.node(victim).port(), cluster.api(victim).key(), "paused", victim_parts,
                 cluster, 3, 60s);
  {
    const auto deadline = Clock::now() + 30s;
    while (clients.acked().size() < 20 && Clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    ASSERT_GE(clients.acked().size(), 20u) << "the victim acknowledged too little before pausing";
  }
  const auto paused_at = Clock::now();
  ASSERT_TRUE(cluster.pause(victim));
  // Both survivors see another leader for every partition the victim led.
  const auto deadline = Clock::now() + 30s;
  bool taken_over = false;
  while (!taken_over && Clock::now() < deadline) {
    taken_over = true;
    for (size_t via : {s1, s2}) {
      json v = cluster.describe(via);
      if (!v.is_object()) {
        taken_over = false;
        continue;
      }
      for (const auto& p : v["partitions"]) {
        if (victim_parts.count(p["id"].get<uint32_t>()) == 0) continue;
        if (!p["leader"].is_string() || p["leader"] == vid) taken_over = false;
      }
    }
    if (!taken_over) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(taken_over) << cluster.describe(s1).dump();
  std::cout << "[ measure ] SIGSTOP of " << vid << " (leading " << before.size()
            << " partitions) to new leaders for all of them: " << ms_since(paused_at) << " ms"
            << std::endl;
  // Executions through the survivors on the taken-over partitions, finished
  // while the old leader is still paused.
  std::map<std::string, int> survivor_runs;
  {
    Api b = cluster.api(s1);
    Api c = cluster.api(s2);
    uint64_t counter = 0;
    for (int k = 0; k < 16; ++k) {
      const int n = 100000 + k;
      const std::string id =
          run_retrying(k % 2 == 0 ? b : c, "paused", {{"n", n}},
                       {{"Idempotency-Key", cluster.key_in(victim_parts, "survivor", &counter)}});
      ASSERT_FALSE(id.empty());
      survivor_runs[id] = n;
    }
    expect_all_completed(b, survivor_runs, 60s, "survivors while " + vid + " is paused");
  }
  // SIGCONT: the old leader steps down; every partition it leads again it
  // re-won at a newer epoch.
  const auto resumed_at = Clock::now();
  ASSERT_TRUE(cluster.resume(victim));
  bool stepped_down = false;
  json seen;
  const auto down_deadline = Clock::now() + 30s;
  while (!stepped_down && Clock::now() < down_deadline) {
    seen = cluster.describe(victim);
    stepped_down = seen.is_object();
    if (stepped_down) {
      for (const auto& p : seen["partitions"]) {
        const uint32_t id = p["id"].get<uint32_t>();
        if (victim_parts.count(id) == 0) continue;
        // Its own log gone ("replicas" is shown only where the partition's
        // log is open) unless it re-won the partition at a newer epoch.
        const bool re_won = p["leader"] == vid && p["epoch"] > before[id];
        if (p["leader"].is_null() || (p["leader"] == vid && !re_won) ||
            (!re_won && p.contains("replicas"))) {
          stepped_down = false;
        }
      }
    }
    if (!stepped_down) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(stepped_down) << "after SIGCONT " << vid
                            << " still claims its old epochs: " << seen.dump();
  std::cout << "[ measure ] SIGCONT of " << vid
            << " to its view showing newer epochs: " << ms_since(resumed_at) << " ms" << std::endl;
  // What it claims to have re-won, the survivors saw it win (its view is
  // not a stale claim of its own).
  std::map<uint32_t, int64_t> re_won;
  for (const auto& p : seen["partitions"]) {
    if (victim_parts.count(p["id"].get<uint32_t>()) != 0 && p["leader"] == vid) {
      re_won[p["id"].get<uint32_t>()] = p["epoch"].get<int64_t>();
    }
  }
  if (!re_won.empty()) {
    bool agreed = false;
    const auto agree_deadline = Clock::now() + 10s;
    while (!agreed && Clock::now() < agree_deadline) {
      json v = cluster.describe(s1);
      agreed = v.is_object();
      for (const auto& p : agreed ? v["partitions"] : json::array()) {
        auto it = re_won.find(p["id"].get<uint32_t>());
        if (it != re_won.end() && !(p["epoch"].get<int64_t>() >= it->second)) agreed = false;
      }
      if (!agreed) std::this_thread::sleep_for(50ms);
    }
    EXPECT_TRUE(agreed) << vid << " claims " << seen.dump() << "; " << cluster.id(s1) << " sees "
                        << cluster.describe(s1).dump();
  }
  // Its clients keep going a little (through the resumed node, now
  // forwarding or re-elected), then stop.
  std::this_thread::sleep_for(1s);
  clients.stop();
  size_t in_flight = 0;
  std::map<int, int> statuses;
  for (const auto& r : clients.requests()) {
    if (r.sent < resumed_at && r.answered >= resumed_at) {
      ++in_flight;
      ++statuses[r.status];
    }
  }
  std::cout << "[ measure ] requests to " << vid << " answered only after SIGCONT: " << in_flight
            << " (by status:";
  for (const auto& [status, n] : statuses) std::cout << " " << status << " x" << n;
  std::cout << ")" << std::endl;
  EXPECT_GT(in_flight, 0u) << "no request was in flight across the pause: nothing was tested";
  // Every acknowledged execution — the victim's clients' and the
  // survivors' — exists and completes, read through a survivor, with no
  // step completed twice.
  const auto acked = clients.acked();
  Api b = cluster.api(s1);
  expect_all_completed(b, acked, 90s, "victim's clients, read through " + cluster.id(s1));
  expect_all_completed(b, survivor_runs, 30s, "survivors' runs");
  for (const auto& [id, n] : acked) expect_no_step_twice(b, id);
  for (const auto& [id, n] : survivor_runs) expect_no_step_twice(b, id);
  // The resumed node's own replica converges on the same results.
  Api v = cluster.api(victim);
  expect_all_completed(v, survivor_runs, 30s, "survivors' runs read through " + vid);
}

TEST(ClusterFault, FollowerKilledAndRestartedCatchesUp) {
  TestCluster cluster({3, 8, 3});
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  wait_all_writable(cluster, 30s);
  Api a = cluster.api(0);
  Api b = cluster.api(1);
  e2e::create_flow(a, echo_delay_flow("catch", 100));
  std::map<std::string, int> runs;
  for (int n = 0; n < 15; ++n) runs[run_retrying(n % 2 == 0 ? a : b, "catch", {{"n", n}})] = n;
  expect_all_completed(a, runs, 30s, "before the kill");
  // n3 dies; the others run executions on every partition (n3's fail over)
  // while it is down, so segments it replicates are written without it.
  const size_t victim = 2;
  ASSERT_TRUE(cluster.node(victim).kill9());
  ASSERT_TRUE(cluster.wait_leaders(0, cluster.id(victim), 30s)) << cluster.describe(0).dump();
  for (int n = 15; n < 90; ++n) runs[run_retrying(n % 2 == 0 ? a : b, "catch", {{"n", n}})] = n;
  expect_all_completed(a, runs, 60s, "survivors while " + cluster.id(victim) + " is down");
  std::map<std::string, size_t> event_counts;
  for (const auto& [id, n] : runs) {
    json events = events_of(a, id);
    ASSERT_TRUE(events.is_array()) << id;
    event_counts[id] = events.size();
  }
  // Restarted on its data: its local reads show every execution with the
  // survivors' results and as many events, within a bound.
  const auto restarted_at = Clock::now();
  ASSERT_TRUE(cluster.start_node(victim, &error)) << error;
  Api c = cluster.api(victim);
  std::map<std::string, int> pending = runs;
  std::map<std::string, json> last;  // the last view read of each
  const auto deadline = Clock::now() + 60s;
  while (!pending.empty() && Clock::now() < deadline) {
    for (auto it = pending.begin(); it != pending.end();) {
      Reply r = c.get("/api/v1/executions/" + it->first);
      bool done = false;
      if (r.status == 200) {
        const json view = r.doc();
        last[it->first] = view;
        done = view.value("status", "") == "completed" && view.contains("output") &&
               view["output"].value("m", -1) == 2 * it->second;
        if (done) {
          json events = events_of(c, it->first);
          done = events.is_array() && events.size() == event_counts[it->first];
        }
      }
      it = done ? pending.erase(it) : std::next(it);
    }
    if (!pending.empty()) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(pending.empty()) << pending.size() << " of " << runs.size()
                               << " executions not caught up on " << cluster.id(victim) << ", e.g. "
                               << pending.begin()->first << ": "
                               << last[pending.begin()->first].dump();
  std::cout << "[ measure ] " << cluster.id(victim) << " restarted to every one of " << runs.size()
            << " executions read back locally: " << ms_since(restarted_at) << " ms" << std::endl;
  for (const auto& [id, n] : runs) expect_no_step_twice(c, id);
}

// etcd down — hung (SIGSTOP: connections accepted, nothing answered) or
// crashed (kill -9, restarted on its data) — while executions wait in
// delays that end during the outage.
void etcd_outage(bool crash) {
  const char* how = crash ? "killed" : "paused";
  TestCluster cluster({3, 8, 3});
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  wait_all_writable(cluster, 30s);
  Api a = cluster.api(0);
  e2e::create_flow(a, echo_delay_flow("sleepy", 4000));
  e2e::create_flow(a, echo_delay_flow("quick", 1));
  // Finished before the outage (read during it), and waiting in a delay
  // that ends while etcd is down (they finish after it returns).
  std::map<std::string, int> finished;
  for (int n = 0; n < 6; ++n) finished[run_retrying(a, "quick", {{"n", n}})] = n;
  expect_all_completed(a, finished, 30s, "before the outage");
  std::map<std::string, int> sleeping;
  for (int n = 0; n < 24; ++n) {
    Api via = cluster.api(static_cast<size_t>(n) % cluster.size());
    sleeping[run_retrying(via, "sleepy", {{"n", n}})] = n;
  }
  // Reads during the outage come from each node's own copy, which trails
  // its leader by what is in flight: wait until every replica of every
  // partition applied its leader's commit (the operators' picture), so the
  // reads below may expect every execution on every node.
  auto caught_up = [&] {
    json d = cluster.describe(0);
    if (!d.is_object() || !d.contains("partitions")) return false;
    for (const auto& p : d["partitions"]) {
      if (!p.contains("positions") || p["positions"].size() != 3) return false;
      for (const auto& r : p["positions"]) {
        if (!r.value("reachable", false) || r.value("lag", int64_t{1}) != 0) return false;
      }
    }
    return true;
  };
  bool ok = false;
  for (auto until = Clock::now() + 15s; !(ok = caught_up()) && Clock::now() < until;) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(ok) << cluster.describe(0).dump();

  const auto stopped_at = Clock::now();
  ASSERT_TRUE(crash ? cluster.kill_etcd() : cluster.pause_etcd());
  // Every node refuses writes no later than its lease ends (TTL 3 s; 2 s of
  // margin for scheduling on a loaded machine).
  std::vector<bool> refusing(cluster.size(), false);
  const auto deadline = stopped_at + 5s;
  size_t count = 0;
  while (count < cluster.size() && Clock::now() < deadline) {
    for (size_t i = 0; i < cluster.size(); ++i) {
      if (!refusing[i] && cluster.ready_for_writes(i, 1s) == 503) {
        refusing[i] = true;
        ++count;
        std::cout << "[ measure ] etcd " << how << " to " << cluster.id(i)
                  << " answering /readyz?writes=true 503: " << ms_since(stopped_at) << " ms"
                  << std::endl;
      }
    }
    std::this_thread::sleep_for(20ms);
  }
  for (size_t i = 0; i < cluster.size(); ++i) {
    EXPECT_TRUE(refusing[i]) << cluster.id(i) << " still ready for writes " << ms_since(stopped_at)
                             << " ms after etcd stopped";
  }
  // Writes are refused everywhere with a retriable 503; reads go on.
  const auto lease_over = stopped_at + 3s;
  if (Clock::now() < lease_over) std::this_thread::sleep_for(lease_over - Clock::now());
  uint64_t counter = 0;
  std::set<uint32_t> every;
  for (uint32_t p = 0; p < cluster.partitions(); ++p) every.insert(p);
  for (size_t i = 0; i < cluster.size(); ++i) {
    Api api = cluster.api(i);
    for (int k = 0; k < 4; ++k) {
      e2e::Headers h;
      if (k % 2 == 1) h.emplace_back("Idempotency-Key", cluster.key_in(every, "outage", &counter));
      Reply r = api.post("/api/v1/flows/quick/run", json{{"input", {{"n", 7}}}}, h);
      EXPECT_EQ(r.status, 503) << cluster.id(i)
                               << " accepted a write with etcd down: " << r.describe();
      EXPECT_TRUE(r.headers.count("retry-after") == 1) << cluster.id(i) << ": " << r.describe();
    }
    for (const auto& [id, n] : finished) {
      Reply r = api.get("/api/v1/executions/" + id);
      EXPECT_EQ(r.status, 200) << cluster.id(i) << " read of " << id << ": " << r.describe();
      if (r.status == 200) {
        EXPECT_EQ(r.doc().value("status", ""), "completed") << r.body;
      }
    }
    for (const auto& [id, n] : sleeping) {
      Reply r = api.get("/api/v1/executions/" + id);
      EXPECT_EQ(r.status, 200) << cluster.id(i) << " read of " << id << ": " << r.describe();
    }
  }
  // Stay down past the sleepers' delays, so their timers come due while
  // no node leads.
  const auto timers_due = stopped_at + 5s;
  if (Clock::now() < timers_due) std::this_thread::sleep_for(timers_due - Clock::now());
  EXPECT_NE(cluster.ready_for_writes(0), 200);

  const auto back_at = Clock::now();
  if (crash) {
    ASSERT_TRUE(cluster.restart_etcd(&error)) << error;
  } else {
    ASSERT_TRUE(cluster.resume_etcd());
  }
  wait_all_writable(cluster, 30s);
  const double writable_ms = ms_since(back_at);
  std::map<std::string, int> after;
  for (size_t i = 0; i < cluster.size(); ++i) {
    Api api = cluster.api(i);
    after[run_retrying(api, "quick", {{"n", 50 + static_cast<int>(i)}}, {}, 30s)] =
        50 + static_cast<int>(i);
  }
  std::cout << "[ measure ] etcd " << how << ", back to every node writable: " << writable_ms
            << " ms; to a run accepted through each node: " << ms_since(back_at) << " ms"
            << std::endl;
  expect_all_completed(a, after, 30s, "after the outage");
  expect_all_completed(a, sleeping, 60s, "waiting in delays across the outage");
  for (const auto& [id, n] : sleeping) expect_no_step_twice(a, id);
}

TEST(ClusterFault, EtcdPausedStopsWritesWithinTheLeaseKeepsReadsAndResumes) {
  etcd_outage(false);
}

TEST(ClusterFault, EtcdKilledStopsWritesWithinTheLeaseKeepsReadsAndResumes) {
  etcd_outage(true);
}

TEST(ClusterFault, RollingRestartUnderLoadFailsNoExecution) {
  TestCluster cluster({3, 8, 3});
  std::string error;
  ASSERT_TRUE(cluster.start(&error)) << error;
  wait_all_writable(cluster, 30s);
  Api a = cluster.api(0);
  e2e::create_flow(a, echo_delay_flow("roll", 500));
  const std::string key = a.key();
  // A light load of delay flows through every node that is up.
  std::mutex ports_mu;
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < cluster.size(); ++i) ports.push_back(cluster.node(i).port());
  std::atomic<bool> stop{false};
  std::mutex acked_mu;
  std::map<std::string, int> acked;
  std::thread load([&] {
    int n = 0;
    while (!stop) {
      uint16_t port = 0;
      {
        std::lock_guard lock(ports_mu);
        port = ports[static_cast<size_t>(n) % ports.size()];
      }
      if (port != 0) {
        Api api(port, key);
        Reply r = api.request("POST", "/api/v1/flows/roll/run", json{{"input", {{"n", n}}}}.dump(),
                              {{"Content-Type", "application/json"}}, 10s);
        if (accepted(r)) {
          std::lock_guard lock(acked_mu);
          acked[r.doc().value("execution_id", "")] = n;
        }
      }
      ++n;
      std::this_thread::sleep_for(15ms);
    }
  });
  // Two rounds: each clean stop under load is also a check that a node
  // shuts down cleanly while commit notices still arrive (exit status 0).
  for (size_t step = 0; step < 2 * cluster.size(); ++step) {
    const size_t i = step % cluster.size();
    std::this_thread::sleep_for(1s);
    {
      std::lock_guard lock(ports_mu);
      ports[i] = 0;
    }
    const auto t = Clock::now();
    if (!cluster.node(i).stop()) {
      // Its log goes with the process object start_node replaces: show it now.
      const std::string log = cluster.node(i).log();
      ADD_FAILURE() << cluster.id(i) << " did not stop cleanly (SIGTERM: exit status not 0); "
                    << "its log (last 8000 bytes):\n"
                    << (log.size() > 8000 ? log.substr(log.size() - 8000) : log);
    }
    ASSERT_TRUE(cluster.start_node(i, &error)) << error;
    std::string why;
    ASSERT_TRUE(cluster.wait_writable(i, 30s, &why)) << cluster.id(i) << ": " << why;
    {
      std::lock_guard lock(ports_mu);
      ports[i] = cluster.node(i).port();
    }
    std::cout << "[ measure ] rolling restart of " << cluster.id(i)
              << " (stop, start, writable): " << ms_since(t) << " ms" << std::endl;
  }
  std::this_thread::sleep_for(1s);
  stop = true;
  load.join();
  ASSERT_GT(acked.size(), 50u);
  Api reader = cluster.api(0);  // n1's new port
  expect_all_completed(reader, acked, 90s, "under the rolling restart");
  size_t k = 0;
  for (const auto& [id, n] : acked) {
    if (k++ % 4 == 0) expect_no_step_twice(reader, id);
  }
  std::cout << "[ measure ] rolling restart: " << acked.size() << " executions acknowledged"
            << std::endl;
}

}  // namespace
}  // namespace yantra::cluster_test
