// Any node answers any request (api/forwarding.hpp): two complete nodes in
// one process, "a" and "b" — each an Engine on its own RocksDB in its own
// temp dir, an Admin, an ApiApp and an HttpServer on loopback — joined by a
// test Forwarding that says even partitions are led by "a" and odd ones by
// "b", and whose forward() hands the bytes to the other app's
// handle_forwarded on a thread of its own (as the network would).
//
// The engines are single-node engines (they lead every partition, so they
// never refuse with partition_not_led), which makes routing observable: an
// execution exists only in the store of the node that ran the request, and
// each Forwarding counts what it sent. Reads of one execution go to its
// leader too (fresh answers); the list of executions stays local, so it
// shows only the node's own here, where nodes replicate nothing.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "actors/admin.hpp"
#include "actors/engine.hpp"
#include "actors/errc.hpp"
#include "api/app.hpp"
#include "api/forwarding.hpp"
#include "api/http_server.hpp"
#include "api/services.hpp"
#include "runtime/ids.hpp"
#include "tests/e2e/wire.hpp"
#include "tests/test_util.hpp"
#include "yantra/v1/forward.pb.h"

namespace yantra {
namespace {

using e2e::Api;
using e2e::json;
using e2e::Reply;
using namespace std::chrono_literals;

constexpr char kKey[] = "yk_forwarding_test_owner_key_0123456789";
constexpr uint32_t kPartitions = 4;

// Even partitions are led by "a", odd ones by "b".
std::string leader_by_parity(uint32_t p) {
  return p % 2 == 0 ? "a" : "b";
}

// The composition root's part, for tests: leadership from a table, forwards
// delivered on a worker thread to the peer app's handle_forwarded.
class TestForwarding : public api::Forwarding {
 public:
  explicit TestForwarding(std::string self) : self_(std::move(self)) {
    worker_ = std::thread([this] { run(); });
  }
  ~TestForwarding() override { stop(); }

  void add_peer(const std::string& node, api::ApiApp* app) { peers_[node] = app; }
  // Overrides the leader of `p` (std::nullopt = nobody).
  void set_leader(uint32_t p, std::optional<std::string> node) {
    std::lock_guard<std::mutex> lock(mu_);
    overrides_[p] = std::move(node);
  }
  void set_any_leader(std::optional<std::string> node) {
    std::lock_guard<std::mutex> lock(mu_);
    any_ = std::move(node);
  }
  void set_down(const std::string& node) {
    std::lock_guard<std::mutex> lock(mu_);
    down_.insert(node);
  }
  int sent() const { return sent_.load(); }
  // The ForwardedRequests sent so far, decoded.
  std::vector<v1::ForwardedRequest> sent_requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_requests_;
  }

  uint32_t partitions() const override { return kPartitions; }
  std::optional<std::string> leader_of(uint32_t p) const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::optional<std::string> leader = leader_by_parity(p);
    if (auto it = overrides_.find(p); it != overrides_.end()) leader = it->second;
    return leader && *leader == self_ ? std::optional<std::string>("") : leader;
  }
  std::optional<std::string> any_leader() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return any_ && *any_ == self_ ? std::optional<std::string>("") : any_;
  }
  void forward(const std::string& node, std::string request, uint32_t timeout_ms,
               std::function<void(Result<std::string>)> done) override {
    EXPECT_GE(timeout_ms, 1000u);
    sent_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    v1::ForwardedRequest decoded;
    EXPECT_TRUE(decoded.ParseFromString(request));
    sent_requests_.push_back(decoded);
    jobs_.push_back({node, std::move(request), std::move(done)});
    cv_.notify_one();
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      cv_.notify_one();
    }
    if (worker_.joinable()) worker_.join();
  }

 private:
  struct Job {
    std::string node;
    std::string request;
    std::function<void(Result<std::string>)> done;
  };
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      const bool down = down_.count(job.node) > 0;
      lock.unlock();
      auto peer = peers_.find(job.node);
      if (down || peer == peers_.end()) {
        job.done(Status(Errc::kUnavailable, "connection refused"));
      } else {
        auto done = std::move(job.done);
        peer->second->handle_forwarded(std::move(job.request),
                                       [done](std::string reply) { done(std::move(reply)); });
      }
      lock.lock();
    }
  }

  const std::string self_;
  std::map<std::string, api::ApiApp*> peers_;  // set before any request
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::map<uint32_t, std::optional<std::string>> overrides_;
  std::optional<std::string> any_;
  std::set<std::string> down_;
  std::vector<v1::ForwardedRequest> sent_requests_;
  bool stopping_ = false;
  std::atomic<int> sent_{0};
  std::thread worker_;
};

struct Node {
  std::string name;
  testing::TempDir dir;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Admin> admin;
  std::unique_ptr<api::ApiApp> app;
  std::unique_ptr<api::HttpServer> server;
  std::unique_ptr<TestForwarding> forwarding;
  std::unique_ptr<Api> api;

  bool has(const std::string& id) const { return engine->summary("default", id).ok(); }
  // Polls the execution's status until it is `want` (10 s at most).
  bool reaches(const std::string& id, const std::string& want) const {
    for (int i = 0; i < 1000; ++i) {
      auto s = engine->summary("default", id);
      if (s.ok() && s.value().status() == want) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
};

json waiter_flow() {
  return {{"id", "waiter"},
          {"steps",
           json::array({{{"id", "w"}, {"type", "wait_signal"}, {"config", {{"name", "go"}}}}})}};
}

json echo_flow() {
  return {{"id", "echo"},
          {"steps", json::array({{{"id", "a"},
                                  {"type", "action"},
                                  {"config", {{"tool_id", "core"}, {"action", "echo"}}}}})}};
}

class ForwardingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_.name = "a";
    b_.name = "b";
    for (Node* n : {&a_, &b_}) start(*n);
    a_.forwarding->add_peer("b", b_.app.get());
    b_.forwarding->add_peer("a", a_.app.get());
    for (Node* n : {&a_, &b_}) n->app->set_forwarding(n->forwarding.get());
    // Flows are cluster-wide resources: every node has them.
    for (Node* n : {&a_, &b_}) {
      for (const json& flow : {waiter_flow(), echo_flow()}) {
        Reply r = n->api->put("/api/v1/flows/" + flow["id"].get<std::string>(), flow);
        ASSERT_EQ(r.status, 201) << r.describe();
      }
    }
    // Creating the flows ran locally on each node.
    ASSERT_EQ(a_.forwarding->sent() + b_.forwarding->sent(), 0);
  }

  void start(Node& n) {
    EngineOptions options;
    options.data_dir = n.dir.str();
    options.partitions = kPartitions;
    options.scheduler_threads = 2;
    options.master_key = std::string(32, 'k');
    auto engine = Engine::open(options);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    n.engine = std::move(engine.value());
    for (int i = 0; i < 500 && !n.engine->ready(); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(n.engine->ready());
    n.admin = make_local_admin(*n.engine, 1);
    n.app = std::make_unique<api::ApiApp>(*n.engine, *n.admin);
    // Every node of a cluster knows the same keys.
    ASSERT_TRUE(n.app->auth().bootstrap(n.dir.str(), kKey).ok());
    n.forwarding = std::make_unique<TestForwarding>(n.name);
    api::HttpServerOptions server_options;
    server_options.port = 0;
    api::ApiApp* app = n.app.get();
    auto server = api::HttpServer::start(
        server_options,
        [app](api::HttpRequest req, api::Responder respond) {
          app->handle(std::move(req), std::move(respond));
        },
        [](const Status& status) { return api::error_response(status); });
    ASSERT_TRUE(server.ok()) << server.status().to_string();
    n.server = std::move(server.value());
    n.app->set_server(n.server.get());
    n.api = std::make_unique<Api>(n.server->port(), kKey);
  }

  void TearDown() override {
    for (Node* n : {&a_, &b_}) {
      if (n->app) n->app->set_server(nullptr);
      if (n->server) n->server->stop();
    }
    for (Node* n : {&a_, &b_}) {
      if (n->forwarding) n->forwarding->stop();
    }
    for (Node* n : {&a_, &b_}) {
      n->admin.reset();
      n->engine.reset();
    }
  }

  // An execution of `flow` started on `n`'s engine in a partition `n` leads
  // (ids are random: a few tries find one).
  std::string execution_led_by(Node& n, const std::string& flow = "waiter") {
    for (int i = 0; i < 64; ++i) {
      RunRequest run;
      run.flow_id = flow;
      auto id = n.engine->start_sync(run);
      EXPECT_TRUE(id.ok()) << id.status().to_string();
      if (!id.ok()) return "";
      if (leader_by_parity(partition_of(id.value(), kPartitions)) == n.name) return id.value();
    }
    ADD_FAILURE() << "no execution id in a partition of " << n.name;
    return "";
  }

  // An idempotency key whose partition `node` leads.
  static std::string key_led_by(const std::string& node, const std::string& prefix) {
    for (int i = 0;; ++i) {
      std::string key = prefix + "-" + std::to_string(i);
      if (leader_by_parity(partition_of_key("default", key, kPartitions)) == node) return key;
    }
  }

  // Serves `request` (ForwardedRequest bytes) on `n` as a forwarded one.
  static api::HttpResponse serve_forwarded(Node& n, std::string request) {
    std::promise<std::string> reply;
    auto got = reply.get_future();
    n.app->handle_forwarded(std::move(request),
                            [&reply](std::string bytes) { reply.set_value(std::move(bytes)); });
    EXPECT_EQ(got.wait_for(10s), std::future_status::ready);
    auto r = api::decode_forwarded_response(got.get());
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r.value() : api::HttpResponse{};
  }

  static std::string header_of(const api::HttpResponse& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (e2e::to_lower(k) == name) return v;
    }
    return "";
  }

  static api::HttpRequest request(const std::string& method, const std::string& target,
                                  const std::string& body, const std::string& key = kKey) {
    api::HttpRequest req;
    req.method = method;
    req.target = target;
    req.headers = {{"authorization", std::string("Bearer ") + key},
                   {"content-type", "application/json"}};
    req.body = body;
    return req;
  }

  Node a_;
  Node b_;
};

TEST_F(ForwardingTest, CommandsOnAnExecutionRunOnItsPartitionsLeader) {
  const std::string signalled = execution_led_by(b_);
  const std::string cancelled = execution_led_by(b_);
  ASSERT_FALSE(a_.has(signalled));

  // A signal sent to "a" is durable on "b", and the run it wakes ends there.
  Reply signal =
      a_.api->post("/api/v1/executions/" + signalled + "/signals/go", {{"data", {{"n", 7}}}});
  ASSERT_EQ(signal.status, 202) << signal.describe();
  EXPECT_EQ(signal.doc().value("execution_id", ""), signalled);
  EXPECT_FALSE(signal.header("x-request-id").empty());
  EXPECT_EQ(a_.forwarding->sent(), 1);
  auto ended = b_.engine->wait(signalled, 10s);
  ASSERT_TRUE(ended.ok()) << ended.status().to_string();
  EXPECT_EQ(ended.value().status, "completed");
  EXPECT_NE(ended.value().output.dump().find("\"n\":7"), std::string::npos)
      << ended.value().output.dump();

  // A cancel likewise.
  Reply cancel = a_.api->post("/api/v1/executions/" + cancelled + "/cancel", {{"reason", "t"}});
  ASSERT_EQ(cancel.status, 200) << cancel.describe();
  EXPECT_EQ(a_.forwarding->sent(), 2);
  EXPECT_TRUE(b_.reaches(cancelled, "cancelled"));
  EXPECT_FALSE(a_.has(cancelled));

  // The leader audits the command; the node the client reached does not
  // audit it again. (verify waits for the records appended so far.)
  for (Node* n : {&a_, &b_}) ASSERT_EQ(n->api->get("/api/v1/audit/verify").status, 200);
  Reply on_b = b_.api->get("/api/v1/audit?action=execution.cancel");
  ASSERT_EQ(on_b.status, 200) << on_b.describe();
  ASSERT_EQ(on_b.doc()["records"].size(), 1u) << on_b.describe();
  EXPECT_EQ(on_b.doc()["records"][0].value("outcome", ""), "ok") << on_b.describe();
  Reply on_a = a_.api->get("/api/v1/audit?action=execution.cancel");
  ASSERT_EQ(on_a.status, 200) << on_a.describe();
  EXPECT_EQ(on_a.doc()["records"].size(), 0u) << on_a.describe();

  // The client's identity and request id travel with the command, once.
  auto sent = a_.forwarding->sent_requests();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].method(), "POST");
  EXPECT_EQ(sent[1].target(), "/api/v1/executions/" + cancelled + "/cancel");
  EXPECT_EQ(sent[1].hops(), 1u);
  std::map<std::string, int> names;
  for (const auto& h : sent[1].headers()) ++names[h.name()];
  EXPECT_EQ(names["authorization"], 1);
  EXPECT_EQ(names["x-request-id"], 1);
  EXPECT_EQ(names["content-length"], 0);
  EXPECT_EQ(names["connection"], 0);

  // Reads of one execution are served by its leader: "a" holds no replica
  // in this test, yet answers with b's view (and its events).
  Reply read = a_.api->get("/api/v1/executions/" + cancelled);
  EXPECT_EQ(read.status, 200) << read.describe();
  EXPECT_EQ(read.doc().value("status", ""), "cancelled") << read.describe();
  EXPECT_EQ(a_.api->get("/api/v1/executions/" + cancelled + "/events").status, 200);
  EXPECT_EQ(b_.api->get("/api/v1/executions/" + cancelled).status, 200);
  EXPECT_EQ(a_.forwarding->sent(), 4);
  // The list stays local: a's list does not show b's execution.
  Reply list = a_.api->get("/api/v1/executions");
  ASSERT_EQ(list.status, 200) << list.describe();
  EXPECT_EQ(list.describe().find(cancelled), std::string::npos);
  EXPECT_EQ(a_.forwarding->sent(), 4);
  // Commands on "a"'s own partitions stay on "a".
  const std::string local = execution_led_by(a_);
  Reply own = a_.api->post("/api/v1/executions/" + local + "/cancel", json::object());
  EXPECT_EQ(own.status, 200) << own.describe();
  EXPECT_EQ(a_.forwarding->sent(), 4);
  EXPECT_EQ(b_.forwarding->sent(), 0);
}

TEST_F(ForwardingTest, IdempotentStartRunsAtTheKeysLeaderWhicheverNodeIsAsked) {
  const std::string key = key_led_by("b", "order");
  Reply first =
      a_.api->post("/api/v1/flows/echo/run", {{"input", {{"x", 1}}}}, {{"Idempotency-Key", key}});
  ASSERT_EQ(first.status, 202) << first.describe();
  const std::string id = first.doc().value("execution_id", "");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(a_.forwarding->sent(), 1);
  EXPECT_TRUE(b_.has(id));
  EXPECT_FALSE(a_.has(id));

  // The retry returns the same execution through either node.
  Reply via_b =
      b_.api->post("/api/v1/flows/echo/run", {{"input", {{"x", 1}}}}, {{"Idempotency-Key", key}});
  ASSERT_EQ(via_b.status, 202) << via_b.describe();
  EXPECT_EQ(via_b.doc().value("execution_id", ""), id);
  EXPECT_EQ(b_.forwarding->sent(), 0);
  Reply via_a =
      a_.api->post("/api/v1/flows/echo/run", {{"input", {{"x", 1}}}}, {{"Idempotency-Key", key}});
  ASSERT_EQ(via_a.status, 202) << via_a.describe();
  EXPECT_EQ(via_a.doc().value("execution_id", ""), id);
  EXPECT_EQ(a_.forwarding->sent(), 2);

  // ?wait_ms travels too: the leader waits for the outcome.
  const std::string waited_key = key_led_by("b", "waited");
  Reply waited = a_.api->post("/api/v1/flows/echo/run?wait_ms=10000", {{"input", {{"y", 2}}}},
                              {{"Idempotency-Key", waited_key}});
  ASSERT_EQ(waited.status, 200) << waited.describe();
  EXPECT_EQ(waited.doc().value("status", ""), "completed");
  EXPECT_TRUE(b_.has(waited.doc().value("execution_id", "")));
  EXPECT_EQ(a_.forwarding->sent(), 3);

  // A key of "a"'s partitions, and a start without a key, run on "a".
  Reply own = a_.api->post("/api/v1/flows/echo/run", json::object(),
                           {{"Idempotency-Key", key_led_by("a", "own")}});
  ASSERT_EQ(own.status, 202) << own.describe();
  EXPECT_TRUE(a_.has(own.doc().value("execution_id", "")));
  Reply keyless = a_.api->post("/api/v1/flows/echo/run", json::object());
  ASSERT_EQ(keyless.status, 202) << keyless.describe();
  EXPECT_TRUE(a_.has(keyless.doc().value("execution_id", "")));
  EXPECT_EQ(a_.forwarding->sent(), 3);
}

TEST_F(ForwardingTest, AForwardedRequestIsNeverForwardedAgain) {
  const std::string on_a = execution_led_by(a_);
  // "a" forwarded this to "b", but "b" sees that "a" leads the partition
  // (leadership moved while it travelled): "b" refuses instead of bouncing it.
  api::HttpResponse r = serve_forwarded(
      b_, api::encode_forwarded_request(
              request("POST", "/api/v1/executions/" + on_a + "/cancel", "{}"), "req-hop", 1));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.error_code, "partition_not_led") << r.body;
  EXPECT_EQ(header_of(r, "retry-after"), "1");
  EXPECT_EQ(header_of(r, "x-request-id"), "req-hop");
  EXPECT_EQ(b_.forwarding->sent(), 0);
  EXPECT_NE(a_.engine->summary("default", on_a).value().status(), "cancelled");

  // A message claiming zero hops was still forwarded: it is not sent on.
  r = serve_forwarded(
      b_, api::encode_forwarded_request(
              request("POST", "/api/v1/executions/" + on_a + "/cancel", "{}"), "req-zero", 0));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(b_.forwarding->sent(), 0);

  // Forwarded to the right node, it runs there.
  r = serve_forwarded(
      a_, api::encode_forwarded_request(
              request("POST", "/api/v1/executions/" + on_a + "/cancel", "{}"), "req-ok", 1));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(a_.reaches(on_a, "cancelled"));
}

TEST_F(ForwardingTest, NoLeaderAnswers503WithRetryAfter) {
  const std::string on_b = execution_led_by(b_);
  a_.forwarding->set_leader(partition_of(on_b, kPartitions), std::nullopt);
  Reply r = a_.api->post("/api/v1/executions/" + on_b + "/cancel", json::object());
  EXPECT_EQ(r.status, 503) << r.describe();
  EXPECT_EQ(r.doc()["error"].value("code", ""), "partition_not_led");
  EXPECT_EQ(r.header("retry-after"), "1");
  EXPECT_EQ(a_.forwarding->sent(), 0);
  EXPECT_NE(b_.engine->summary("default", on_b).value().status(), "cancelled");
  // A read while nobody leads is served from this node's copy (here: none).
  Reply read = a_.api->get("/api/v1/executions/" + on_b);
  EXPECT_EQ(read.status, 404) << read.describe();
  EXPECT_EQ(a_.forwarding->sent(), 0);

  const std::string key = key_led_by("b", "nobody");
  a_.forwarding->set_leader(partition_of_key("default", key, kPartitions), std::nullopt);
  r = a_.api->post("/api/v1/flows/echo/run", json::object(), {{"Idempotency-Key", key}});
  EXPECT_EQ(r.status, 503) << r.describe();
  EXPECT_EQ(r.header("retry-after"), "1");
  EXPECT_EQ(a_.forwarding->sent(), 0);
}

TEST_F(ForwardingTest, AFailedForwardAnswers503NamingTheNode) {
  const std::string on_b = execution_led_by(b_);
  a_.forwarding->set_down("b");
  Reply r = a_.api->post("/api/v1/executions/" + on_b + "/signals/go", json::object());
  EXPECT_EQ(r.status, 503) << r.describe();
  EXPECT_EQ(r.doc()["error"].value("code", ""), "unavailable");
  EXPECT_NE(r.doc()["error"].value("message", "").find("node 'b'"), std::string::npos)
      << r.describe();
  EXPECT_EQ(r.header("retry-after"), "1");
  EXPECT_EQ(a_.forwarding->sent(), 1);
  EXPECT_NE(b_.engine->summary("default", on_b).value().status(), "cancelled");
}

TEST_F(ForwardingTest, UnauthenticatedOrForbiddenRequestsAreRefusedWithoutAForward) {
  const std::string on_b = execution_led_by(b_);
  Api stranger(a_.server->port(), "yk_not_a_key_of_this_cluster_0123456789");
  Reply r = stranger.post("/api/v1/executions/" + on_b + "/cancel", json::object());
  EXPECT_EQ(r.status, 401) << r.describe();
  r = e2e::http_request(a_.server->port(), "POST", "/api/v1/executions/" + on_b + "/cancel", "{}",
                        {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 401) << r.describe();
  // An unknown query parameter is refused here too.
  r = a_.api->post("/api/v1/executions/" + on_b + "/cancel?limt=1", json::object());
  EXPECT_EQ(r.status, 400) << r.describe();
  EXPECT_EQ(a_.forwarding->sent(), 0);
  EXPECT_NE(b_.engine->summary("default", on_b).value().status(), "cancelled");

  // The leader authenticates the forwarded credentials itself.
  api::HttpResponse forwarded = serve_forwarded(
      b_, api::encode_forwarded_request(
              request("POST", "/api/v1/executions/" + on_b + "/cancel", "{}", "yk_forged_key_xyz"),
              "req-forged", 1));
  EXPECT_EQ(forwarded.status, 401) << forwarded.body;
  EXPECT_NE(b_.engine->summary("default", on_b).value().status(), "cancelled");
}

TEST_F(ForwardingTest, MalformedForwardedBytesAnswer400) {
  auto expect_400 = [&](std::string bytes, const std::string& what) {
    api::HttpResponse r = serve_forwarded(b_, std::move(bytes));
    EXPECT_EQ(r.status, 400) << what << ": " << r.body;
    EXPECT_EQ(r.error_code, "invalid_request") << what;
  };
  expect_400("", "empty");
  expect_400(std::string("\xff\xff\xff\xff garbage", 13), "garbage");
  auto with = [](auto change) {
    v1::ForwardedRequest m;
    m.set_method("GET");
    m.set_target("/api/v1/flows");
    auto* h = m.add_headers();
    h->set_name("authorization");
    h->set_value(std::string("Bearer ") + kKey);
    m.set_hops(1);
    change(m);
    return m.SerializeAsString();
  };
  expect_400(with([](v1::ForwardedRequest& m) { m.set_method("get"); }), "lower-case method");
  expect_400(with([](v1::ForwardedRequest& m) { m.set_target("api/v1/flows"); }), "no slash");
  expect_400(with([](v1::ForwardedRequest& m) { m.set_target("/api/v1/fl%zzows"); }), "escape");
  expect_400(with([](v1::ForwardedRequest& m) { m.set_target("/api/v1 /flows"); }), "space");
  expect_400(with([](v1::ForwardedRequest& m) { m.set_target(std::string("/a\0b", 4)); }), "NUL");
  expect_400(with([](v1::ForwardedRequest& m) { m.mutable_headers(0)->set_name("bad name"); }),
             "header name");
  expect_400(with([](v1::ForwardedRequest& m) {
               m.mutable_headers(0)->set_value("Bearer x\r\nX-Evil: 1");
             }),
             "header value");
  expect_400(with([](v1::ForwardedRequest& m) {
               for (int i = 0; i < 300; ++i) {
                 auto* h = m.add_headers();
                 h->set_name("x-h" + std::to_string(i));
               }
             }),
             "too many headers");
  // A well-formed one is served.
  api::HttpResponse ok = serve_forwarded(b_, with([](v1::ForwardedRequest&) {}));
  EXPECT_EQ(ok.status, 200) << ok.body;

  // Random bytes, and valid messages with random bytes flipped: always an
  // answer, never a crash.
  std::mt19937 rng(20240611);
  const std::string valid = with([](v1::ForwardedRequest&) {});
  for (int i = 0; i < 400; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes.resize(rng() % 64);
      for (char& c : bytes) c = static_cast<char>(rng());
    } else {
      bytes = valid;
      for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    api::HttpResponse r = serve_forwarded(b_, bytes);
    EXPECT_GE(r.status, 200) << i;
    EXPECT_LT(r.status, 500) << i << ": " << r.body;
  }
  EXPECT_EQ(b_.api->get("/api/v1/flows").status, 200);
}

// The reply side is untrusted too: a node that answers garbage costs its
// client a 503, never a crash or a response with a header injected.
TEST(ForwardingWireTest, MalformedRepliesAreRefused) {
  EXPECT_FALSE(api::decode_forwarded_response("\xff\xff\xff").ok());
  api::HttpResponse r;
  r.status = 700;
  EXPECT_FALSE(api::decode_forwarded_response(api::encode_forwarded_response(r)).ok());
  r.status = 200;
  r.headers = {{"X-Ok", "fine\r\nSet-Cookie: stolen=1"}};
  EXPECT_FALSE(api::decode_forwarded_response(api::encode_forwarded_response(r)).ok());
  r.headers = {{"X-Ok", "fine"}};
  r.body = std::string("\0\xff binary", 9);
  auto back = api::decode_forwarded_response(api::encode_forwarded_response(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back.value().body, r.body);
  EXPECT_EQ(back.value().headers, r.headers);
}

// Starts that this node's engine refuses because it leads no partition
// (the refusal comes from a cluster engine; a single-node engine never
// answers it, so the fallback is driven directly here).
TEST_F(ForwardingTest, AStartThisNodeCannotPlaceGoesToANodeThatLeads) {
  api::Services svc{*a_.engine, *a_.admin};
  svc.forwarding.store(a_.forwarding.get());
  a_.forwarding->set_any_leader("b");
  auto ctx_for = [&](const std::string& target, api::Placement placement,
                     std::promise<api::HttpResponse>& answer) {
    auto ctx = std::make_shared<api::RouteCtx>();
    ctx->req = request("POST", target, "{}");
    ctx->req.path = target;
    ctx->who.tenant = "default";
    ctx->request_id = "req-place";
    ctx->placement = placement;
    ctx->respond = [&answer](api::HttpResponse r) { answer.set_value(std::move(r)); };
    return ctx;
  };
  std::promise<api::HttpResponse> answer;
  auto ctx = ctx_for("/api/v1/flows/echo/run", api::Placement::kKeyedStart, answer);
  ASSERT_TRUE(api::forward_not_led(svc, ctx, ctx->respond));
  auto got = answer.get_future();
  ASSERT_EQ(got.wait_for(10s), std::future_status::ready);
  api::HttpResponse r = got.get();
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_TRUE(r.forwarded);
  EXPECT_TRUE(b_.has(json::parse(r.body).value("execution_id", "")));
  EXPECT_EQ(a_.forwarding->sent(), 1);

  // Nobody leads anything, or this node again: the caller answers 503.
  a_.forwarding->set_any_leader(std::nullopt);
  std::promise<api::HttpResponse> unused;
  EXPECT_FALSE(api::forward_not_led(
      svc, ctx_for("/api/v1/flows/echo/run", api::Placement::kStart, unused), nullptr));
  a_.forwarding->set_any_leader("a");
  EXPECT_FALSE(api::forward_not_led(
      svc, ctx_for("/api/v1/flows/echo/run", api::Placement::kStart, unused), nullptr));
  // A forwarded request is never sent on.
  a_.forwarding->set_any_leader("b");
  auto hopped = ctx_for("/api/v1/flows/echo/run", api::Placement::kStart, unused);
  hopped->hops = 1;
  EXPECT_FALSE(api::forward_not_led(svc, hopped, nullptr));
  EXPECT_EQ(a_.forwarding->sent(), 1);
}

}  // namespace
}  // namespace yantra
