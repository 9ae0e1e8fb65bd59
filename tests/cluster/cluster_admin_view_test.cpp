// The operators' picture of a real three-node cluster (etcd + three `yantra
// serve` processes on loopback, cluster_harness.hpp): GET /admin/v1/cluster
// asks every live node for its positions and load and etcd for its status
// (docs/cluster.md, "Operators"), so it shows every replica of every
// partition with its applied and durable positions and lag, each node's
// version and load, and etcd's members — and still answers, within its
// timeouts, while a node or etcd is paused (SIGSTOP).
//
// One cluster for the whole suite (starting one costs seconds); the tests
// run in the order written, and each leaves the cluster as it found it (a
// paused process resumed, every node writable).
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
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

// The node entry `id` of a picture (null when absent).
json node_in(const json& d, const std::string& id) {
  for (const auto& n : d.value("nodes", json::array())) {
    if (n.value("id", "") == id) return n;
  }
  return json();
}

class AdminView : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = std::make_unique<TestCluster>(TestCluster::Options{3, 8, 3});
    std::string error;
    if (!cluster_->start(&error)) {
      start_error_ = "cluster start: " + error;
      return;
    }
    for (size_t i = 0; i < cluster_->size(); ++i) {
      if (!cluster_->wait_writable(i, 30s, &error)) {
        start_error_ = cluster_->id(i) + " not writable: " + error;
        return;
      }
    }
    // The flow the tests run, on every node (its mirror has it within 1 s).
    Api a = cluster_->api(0);
    Reply created = a.post("/api/v1/flows", echo_delay_flow("view", 5));
    if (created.status != 201) {
      start_error_ = "flow: " + created.describe();
      return;
    }
    for (size_t i = 1; i < cluster_->size(); ++i) {
      Api via = cluster_->api(i);
      const auto deadline = Clock::now() + 10s;
      while (via.get("/api/v1/flows/view").status != 200 && Clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
      }
    }
  }
  static void TearDownTestSuite() { cluster_.reset(); }
  void SetUp() override { ASSERT_TRUE(start_error_.empty()) << start_error_; }

  // GET /admin/v1/cluster through node i, with how long it took.
  static json timed_describe(size_t i, double* took_ms) {
    const auto sent = Clock::now();
    Reply r = cluster_->operator_api(i).get("/admin/v1/cluster");
    *took_ms = ms_since(sent);
    EXPECT_EQ(r.status, 200) << r.describe();
    return r.status == 200 ? r.doc() : json();
  }

  // Until the cluster settled, as node 0 sees it, at most 30 s: every
  // leader finished its recovery (its log is open: it reports its commit)
  // and is the placement's preferred node (the controller spreads
  // leaderships once all three nodes are up, so each node leads some).
  // `last` gets the last picture.
  static bool wait_settled(json* last) {
    std::set<std::string> leaders;
    auto settled = [&] {
      leaders.clear();
      *last = cluster_->describe(0);
      if (!last->is_object()) return false;
      for (const auto& p : (*last)["partitions"]) {
        if (!p["leader"].is_string() || !p["leader_committed_lsn"].is_number() ||
            !p["placement"].is_object() || p["placement"]["preferred"] != p["leader"]) {
          return false;
        }
        leaders.insert(p["leader"].get<std::string>());
      }
      return leaders.size() == cluster_->size();
    };
    for (auto until = Clock::now() + 30s; Clock::now() < until;) {
      if (settled()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return settled();
  }

  // Runs `count` executions through the three nodes and waits until all ended.
  static void run_load(const std::string& flow, int count) {
    std::vector<std::string> ids;
    for (int n = 0; n < count; ++n) {
      Api via = cluster_->api(static_cast<size_t>(n) % 3);
      ids.push_back(run_retrying(via, flow, {{"n", n}}));
    }
    Api reader = cluster_->api(0);
    auto views = e2e::wait_all_ended(reader, ids, 60s);
    for (const auto& id : ids) {
      EXPECT_EQ(views[id].value("status", ""), "completed") << id << " " << views[id].dump();
    }
  }

  static std::unique_ptr<TestCluster> cluster_;
  static std::string start_error_;
};

std::unique_ptr<TestCluster> AdminView::cluster_;
std::string AdminView::start_error_;

// Every partition lists its three replicas with their positions (the
// leader's among them, leading, on the open segment), every node its
// version and load, etcd its member; unknown parameters are refused.
TEST_F(AdminView, EveryReplicaNodeAndEtcdMemberWithPositionsAndLoad) {
  TestCluster& c = *cluster_;
  run_load("view", 45);
  json settled;
  ASSERT_TRUE(wait_settled(&settled)) << "never settled: " << settled.dump();

  double took = 0;
  const json d = timed_describe(1, &took);
  ASSERT_TRUE(d.is_object());
  std::cout << "[ measure ] GET /admin/v1/cluster, all reachable: " << took << " ms" << std::endl;
  ASSERT_EQ(d["partitions"].size(), 8u) << d.dump();
  for (const auto& p : d["partitions"]) {
    ASSERT_TRUE(p["leader"].is_string()) << p.dump();
    // The fields the answer had before the fan-out are still there.
    for (const char* key : {"id", "epoch", "committed_lsn", "applied_lsn", "lag", "placement"}) {
      EXPECT_TRUE(p.contains(key)) << key << " missing: " << p.dump();
    }
    ASSERT_TRUE(p["positions"].is_array()) << p.dump();
    ASSERT_EQ(p["positions"].size(), 3u) << p.dump();
    EXPECT_TRUE(p["leader_committed_lsn"].is_number()) << p.dump();
    std::set<std::string> nodes;
    int leading = 0;
    for (const auto& r : p["positions"]) {
      nodes.insert(r.value("node", ""));
      EXPECT_TRUE(r.value("reachable", false)) << p.dump();
      for (const char* key : {"applied_lsn", "durable_lsn", "committed_lsn", "segment", "lag"}) {
        EXPECT_TRUE(r.contains(key) && r[key].is_number()) << key << " missing: " << p.dump();
      }
      if (r.value("leads", false)) {
        ++leading;
        EXPECT_EQ(r["node"], p["leader"]) << p.dump();
        // Its newest segment: the open one (its epoch's) once it appended
        // to it, an older one before (a partition with no load yet since a
        // move), none (0) when nothing was ever appended.
        EXPECT_LE(r["segment"].get<int64_t>(), p["epoch"].get<int64_t>()) << p.dump();
        if (r["segment"] == 0) {
          EXPECT_EQ(r["durable_lsn"], 0) << p.dump();
        }
        EXPECT_EQ(r["committed_lsn"], p["leader_committed_lsn"]) << p.dump();
      }
    }
    EXPECT_EQ(nodes, (std::set<std::string>{"n1", "n2", "n3"})) << p.dump();
    EXPECT_EQ(leading, 1) << p.dump();
  }
  uint64_t started = 0;
  for (const char* id : {"n1", "n2", "n3"}) {
    const json n = node_in(d, id);
    ASSERT_TRUE(n.is_object()) << id << " missing: " << d.dump();
    EXPECT_TRUE(n.value("reachable", false)) << n.dump();
    EXPECT_FALSE(n.value("version", "").empty()) << n.dump();
    ASSERT_TRUE(n["load"].is_object()) << n.dump();
    EXPECT_GT(n["load"].value("rss_bytes", uint64_t{0}), 1u << 20) << n.dump();
    EXPECT_GT(n["load"].value("cpu_seconds", 0.0), 0.0) << n.dump();
    EXPECT_TRUE(n["load"]["active_executions"].is_number()) << n.dump();
    EXPECT_EQ(n["load"].value("partitions_leading", -1), n.value("partitions_led", -2)) << n.dump();
    started += n["load"].value("executions_started", uint64_t{0});
  }
  EXPECT_GE(started, 45u) << "the executions run on the leaders: " << d["nodes"].dump();
  const json& etcd = d["etcd"];
  EXPECT_TRUE(etcd.value("lease_valid", false)) << etcd.dump();
  ASSERT_EQ(etcd["endpoints"].size(), 1u) << etcd.dump();
  const json& e = etcd["endpoints"][0];
  EXPECT_EQ(e.value("url", ""), c.etcd_url()) << e.dump();
  EXPECT_TRUE(e.value("reachable", false)) << e.dump();
  EXPECT_TRUE(e.value("leader", false)) << "a single member leads: " << e.dump();
  EXPECT_GT(e.value("db_size_bytes", int64_t{0}), 0) << e.dump();
  EXPECT_GT(e.value("raft_index", uint64_t{0}), 0u) << e.dump();
  EXPECT_FALSE(e.value("version", "").empty()) << e.dump();

  EXPECT_EQ(c.operator_api(0).get("/admin/v1/cluster?x=1").status, 400);
  EXPECT_EQ(c.operator_api(0).get("/admin/v1/cluster?replicas=all").status, 400);
}

// Once the load stops, every replica's applied position reaches its
// leader's commit (the followers apply what the commit notices announce)
// and every replica durably holds it.
TEST_F(AdminView, AfterTheLoadEveryReplicaReachesTheLeadersCommit) {
  TestCluster& c = *cluster_;
  run_load("view", 30);
  json last;
  std::string why;
  auto caught_up = [&] {
    last = c.describe(2);
    if (!last.is_object()) return why = "no answer", false;
    uint64_t committed_total = 0;
    for (const auto& p : last["partitions"]) {
      const json& lc = p["leader_committed_lsn"];
      if (!lc.is_number()) return why = "no leader commit: " + p.dump(), false;
      committed_total += lc.get<uint64_t>();
      if (p["positions"].size() != 3) return why = "not 3 replicas: " + p.dump(), false;
      for (const auto& r : p["positions"]) {
        if (!r.value("reachable", false) || r["applied_lsn"] != lc || r.value("lag", 1) != 0 ||
            r.value("durable_lsn", uint64_t{0}) < lc.get<uint64_t>()) {
          return why = "behind: " + p.dump(), false;
        }
      }
    }
    if (committed_total == 0) return why = "nothing committed", false;
    return true;
  };
  const auto since = Clock::now();
  bool ok = false;
  while (!(ok = caught_up()) && Clock::now() < since + 15s) std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(ok) << why;
  std::cout << "[ measure ] load ended to every replica applied at its leader's commit: "
            << ms_since(since) << " ms" << std::endl;
  // The compact table says so too, and --json prints the whole answer.
  auto table = e2e::run_process(
      {YANTRA_BIN, "cluster", "status", "--url", c.node(0).url(), "--key", kOperatorKey});
  EXPECT_EQ(table.exit_code, 0) << table.out << table.err;
  EXPECT_NE(table.out.find("REPLICAS (node:lag)"), std::string::npos) << table.out;
  // Three replicas at lag 0 on each of the 8 rows, none unreachable.
  const size_t rows = table.out.find("REPLICAS (node:lag)");
  const size_t rows_end = table.out.find("ETCD", rows);
  ASSERT_NE(rows_end, std::string::npos) << table.out;
  const std::string replicas = table.out.substr(rows, rows_end - rows);
  size_t at_zero = 0;
  for (size_t at = replicas.find(":0"); at != std::string::npos; at = replicas.find(":0", at + 1)) {
    ++at_zero;
  }
  EXPECT_EQ(at_zero, 3u * 8u) << table.out;
  EXPECT_EQ(replicas.find(":?"), std::string::npos) << table.out;
  auto raw = e2e::run_process(
      {YANTRA_BIN, "cluster", "status", "--url", c.node(0).url(), "--key", kOperatorKey, "--json"});
  EXPECT_EQ(raw.exit_code, 0) << raw.out << raw.err;
  json doc = json::parse(raw.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << raw.out;
  EXPECT_EQ(doc["partitions"][0]["positions"].size(), 3u) << raw.out;
}

// A paused node, one that leads partitions: the answer still comes within
// the fan-out's timeout (two pictures asked at once through two nodes) and
// shows that node unreachable (in the node list, with etcd's record, and as
// a replica), the others with their positions; the partitions it leads
// have no leader commit to count lag from, and list the placement's
// replicas. The pause (~1 s) stays within its lease (3 s).
TEST_F(AdminView, APausedNodeIsShownUnreachableAndTheAnswerStillComes) {
  TestCluster& c = *cluster_;
  // Settled first, with n3 leading some partitions (no move under way that
  // the pause would stall).
  json before;
  ASSERT_TRUE(wait_settled(&before)) << "never settled: " << before.dump();
  std::set<uint32_t> led_by_n3;
  for (const auto& p : before["partitions"]) {
    if (p["leader"] == "n3") led_by_n3.insert(p["id"].get<uint32_t>());
  }
  ASSERT_FALSE(led_by_n3.empty()) << before.dump();
  ASSERT_TRUE(c.pause(2));
  double took = 0;
  double again_took = 0;
  double third_took = 0;
  json d;
  json again;
  json third;
  std::thread one([&] { d = timed_describe(0, &took); });
  std::thread other([&] { again = timed_describe(1, &again_took); });
  std::thread another([&] { third = timed_describe(0, &third_took); });
  // While two pictures through n1 wait for n3, n1's HTTP I/O threads (2)
  // serve others: the pictures wait on threads of their own.
  std::this_thread::sleep_for(200ms);
  const auto health_sent = Clock::now();
  const int health = e2e::http_request(c.node(0).port(), "GET", "/healthz", "", {}, 5s).status;
  const double health_took = ms_since(health_sent);
  one.join();
  other.join();
  another.join();
  ASSERT_TRUE(c.resume(2));
  std::cout << "[ measure ] GET /admin/v1/cluster with n3 paused, through n1, n1, n2 at once: "
            << took << " ms, " << third_took << " ms, " << again_took
            << " ms; /healthz of n1 meanwhile: " << health_took << " ms" << std::endl;
  EXPECT_EQ(health, 200);
  EXPECT_LT(health_took, 500) << "an HTTP I/O thread waits on a picture";
  EXPECT_LT(took, 2000) << d.dump();
  EXPECT_LT(again_took, 2000) << again.dump();
  EXPECT_LT(third_took, 2000) << third.dump();
  for (const json* view : std::vector<const json*>{&d, &again, &third}) {
    ASSERT_TRUE(view->is_object());
    const json n3 = node_in(*view, "n3");
    EXPECT_FALSE(n3.value("reachable", true)) << n3.dump();
    EXPECT_TRUE(n3["load"].is_null()) << n3.dump();
    EXPECT_FALSE(n3.value("error", "").empty()) << n3.dump();
    // Its lease outlives this pause: etcd's record is shown.
    EXPECT_EQ(n3.value("state", ""), "alive") << n3.dump();
    EXPECT_FALSE(n3.value("http", "").empty()) << n3.dump();
    EXPECT_FALSE(n3.value("version", "").empty()) << n3.dump();
    EXPECT_TRUE(node_in(*view, "n1").value("reachable", false)) << view->dump();
    EXPECT_TRUE(node_in(*view, "n2").value("reachable", false)) << view->dump();
    for (const auto& p : (*view)["partitions"]) {
      ASSERT_EQ(p["positions"].size(), 3u) << p.dump();
      if (p["leader"] == "n3") {
        EXPECT_TRUE(p["leader_committed_lsn"].is_null()) << p.dump();
      } else {
        EXPECT_TRUE(p["leader_committed_lsn"].is_number()) << p.dump();
      }
      for (const auto& r : p["positions"]) {
        EXPECT_EQ(r.value("reachable", true), r.value("node", "") != "n3") << p.dump();
        if (r.value("node", "") != "n3") {
          EXPECT_TRUE(r["applied_lsn"].is_number() && r["lag"].is_number()) << p.dump();
        } else {
          EXPECT_FALSE(r.value("error", "").empty()) << p.dump();
        }
      }
    }
  }
  // Resumed: reachable again (its links may have dropped and reconnect).
  bool back = false;
  json seen;
  for (auto until = Clock::now() + 20s; !back && Clock::now() < until;) {
    seen = c.describe(0);
    back = node_in(seen, "n3").value("reachable", false);
    if (!back) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(back) << seen.dump();
  std::string error;
  for (size_t i = 0; i < c.size(); ++i) ASSERT_TRUE(c.wait_writable(i, 30s, &error)) << error;
}

// etcd paused: its endpoint shows unreachable with why, the answer still
// comes within the status call's timeout, and the nodes' reports are there.
TEST_F(AdminView, APausedEtcdIsShownUnreachableAndTheAnswerStillComes) {
  TestCluster& c = *cluster_;
  ASSERT_TRUE(c.pause_etcd());
  double took = 0;
  const json d = timed_describe(1, &took);
  ASSERT_TRUE(c.resume_etcd());
  std::cout << "[ measure ] GET /admin/v1/cluster with etcd paused: " << took << " ms" << std::endl;
  EXPECT_LT(took, 2000) << d.dump();
  ASSERT_TRUE(d.is_object());
  const json& e = d["etcd"]["endpoints"][0];
  EXPECT_FALSE(e.value("reachable", true)) << e.dump();
  EXPECT_FALSE(e.value("error", "").empty()) << e.dump();
  for (const char* id : {"n1", "n2", "n3"}) {
    EXPECT_TRUE(node_in(d, id).value("reachable", false)) << id << " " << d.dump();
  }
  // Resumed: reachable again.
  bool back = false;
  json seen;
  for (auto until = Clock::now() + 20s; !back && Clock::now() < until;) {
    seen = c.describe(1);
    back = seen.is_object() && seen["etcd"]["endpoints"][0].value("reachable", false);
    if (!back) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(back) << seen.dump();
  std::string error;
  for (size_t i = 0; i < c.size(); ++i) ASSERT_TRUE(c.wait_writable(i, 30s, &error)) << error;
}

}  // namespace
}  // namespace yantra::cluster_test
