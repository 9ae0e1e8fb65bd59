// Callbacks end to end inside one process: a real Engine, real HTTP on
// loopback to a local receiver (tests/http_test_server.hpp) that refuses the
// first attempts of every delivery with a 500. What is checked, per delivery
// id (X-Yantra-Delivery):
// - every event the flows' callbacks subscribe to, read back from the log of
//   each execution (completed, failed, cancelled, timed out), arrives;
// - exactly as often as the receiver made it necessary (its refusals + 1):
//   nothing is lost, nothing sent again after a 2xx, no two attempts of one
//   message overlap;
// - the headers and the HMAC signature, recomputed here (base/crypto), are
//   right, including a signing secret read from the vault (and one that is
//   missing at first: retried until it is set);
// - the outbox is empty afterwards; a receiver that never accepts gets the
//   row dropped after the maximum age. How fast a callback leaves is
//   measured by bench/run callbacks (printed here for information only: a
//   timed assertion would fail on a loaded CI machine, not on a regression).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "actors/engine.hpp"
#include "actors/testing.hpp"
#include "base/crypto.hpp"
#include "base/metrics.hpp"
#include "base/time.hpp"
#include "storage/outbox.hpp"
#include "storage/vault.hpp"
#include "tests/http_test_server.hpp"
#include "tests/test_util.hpp"

namespace yantra {
namespace {

using namespace std::chrono_literals;
using testing::HttpTestServer;
using testing::TempDir;
using testing::TestRequest;
using testing::TestResponse;

const char* kAllEvents[] = {"execution.started",   "execution.completed", "execution.failed",
                            "execution.cancelled", "execution.timed_out", "step.completed",
                            "step.failed"};

// The callback type of an event, written out here rather than taken from
// runtime/callbacks.hpp, so the test does not share the code it checks.
std::string type_of(const v1::Event& ev) {
  if (ev.has_execution_started()) return "execution.started";
  if (ev.has_step_completed()) return "step.completed";
  if (ev.has_step_failed()) return "step.failed";
  if (ev.has_execution_completed()) return "execution.completed";
  if (ev.has_execution_failed()) return "execution.failed";
  if (ev.has_execution_cancelled()) return "execution.cancelled";
  if (ev.has_execution_timed_out()) return "execution.timed_out";
  return "";
}

// Refuses the first `refusals` requests of every delivery id with a 500,
// then answers 204; records everything (thread-safe: the server runs
// handlers on its connection threads).
class Receiver {
 public:
  explicit Receiver(int refusals)
      : refusals_(refusals), server_([this](const TestRequest& req) { return handle(req); }) {}

  std::string url() const { return server_.url("/hooks"); }
  std::map<std::string, int> counts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return counts_;
  }
  std::vector<TestRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  int max_concurrent_per_id() const {
    std::lock_guard<std::mutex> lock(mu_);
    return max_overlap_;
  }
  // Receipt time (system clock, ms) of the first accepted request per id.
  std::map<std::string, int64_t> accepted_ms() const {
    std::lock_guard<std::mutex> lock(mu_);
    return accepted_ms_;
  }

 private:
  TestResponse handle(const TestRequest& req) {
    const std::string id = req.header("x-yantra-delivery");
    int n = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = ++counts_[id];
      requests_.push_back(req);
      max_overlap_ = std::max(max_overlap_, ++in_flight_[id]);
      if (n > refusals_) {
        accepted_ms_.emplace(id, now_ms());
      }
    }
    // Long enough that a second attempt of the same message, were one sent
    // while this one is open, would overlap it.
    std::this_thread::sleep_for(5ms);
    {
      std::lock_guard<std::mutex> lock(mu_);
      --in_flight_[id];
    }
    if (n <= refusals_) return TestResponse::text(500, "not yet");
    TestResponse ok = TestResponse::text(204, "");
    ok.content_type.clear();
    return ok;
  }

  const int refusals_;
  mutable std::mutex mu_;
  std::map<std::string, int> counts_;
  std::map<std::string, int> in_flight_;
  std::map<std::string, int64_t> accepted_ms_;
  std::vector<TestRequest> requests_;
  int max_overlap_ = 0;
  HttpTestServer server_;  // last: stopped before the state its handler uses goes
};

class CallbacksTest : public ::testing::Test {
 protected:
  void open(int64_t max_age_ms = 24LL * 3600 * 1000) {
    EngineOptions opts;
    opts.data_dir = dir_.str();
    opts.master_key = std::string(32, 'k');
    opts.callback_initial_backoff_ms = 50;
    opts.callback_max_age_ms = max_age_ms;
    auto e = Engine::open(std::move(opts));
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(e.value());
  }

  void put(json flow, const json& callbacks) {
    flow["config"]["callbacks"] = callbacks;
    auto v = engine_->put_flow("default", flow);
    ASSERT_TRUE(v.ok()) << v.status().to_string();
  }

  std::string run(const std::string& flow_id) {
    RunRequest r;
    r.flow_id = flow_id;
    r.input = {{"n", 7}};
    auto id = engine_->start_sync(r);
    EXPECT_TRUE(id.ok()) << id.status().to_string();
    return id.ok() ? id.value() : "";
  }

  // Delivery ids owed by the logs of `ids` for callback `index`, subscribed
  // to `events`.
  std::set<std::string> owed(const std::vector<std::string>& ids, size_t index,
                             const std::set<std::string>& events) {
    std::set<std::string> out;
    for (const auto& id : ids) {
      auto log = engine_->load_events(id);
      EXPECT_TRUE(log.ok()) << log.status().to_string();
      if (!log.ok()) continue;
      for (const auto& ev : log.value()) {
        if (events.count(type_of(ev)) != 0) {
          out.insert(id + "/" + std::to_string(ev.seq()) + "/" + std::to_string(index));
        }
      }
    }
    return out;
  }

  // Waits (bounded) until every id in `ids` was received at least `n` times.
  bool wait_received(const Receiver& rx, const std::set<std::string>& ids, int n,
                     std::chrono::milliseconds timeout = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto counts = rx.counts();
      if (std::all_of(ids.begin(), ids.end(), [&](const std::string& id) {
            auto it = counts.find(id);
            return it != counts.end() && it->second >= n;
          })) {
        return true;
      }
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  bool wait_outbox_empty(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto n = testing::store_of(*engine_).outbox().count();
      if (n.ok() && n.value() == 0) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
};

const json kOk = json::parse(R"({
  "id": "ok",
  "steps": [
    {"id": "a", "type": "action",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"v": {"$ref": "input.n"}}},
     "on_success": "b"},
    {"id": "b", "type": "action",
     "config": {"tool_id": "core", "action": "echo",
                "parameters": {"w": {"$ref": "a.v"}}}}],
  "output": {"w": {"$ref": "b.w"}}})");

// kOk whose step b also passes a vault secret (echoed back, so redacted).
json ok_with_secret() {
  json f = kOk;
  f["steps"][1]["config"]["parameters"]["key"] = {{"$secret", "API"}};
  return f;
}

const json kBad = json::parse(R"({
  "id": "bad",
  "steps": [
    {"id": "a", "type": "action",
     "config": {"tool_id": "core", "action": "fail", "parameters": {"code": "nope"}},
     "retry_config": {"max_attempts": 2, "backoff_type": "fixed", "initial_delay_ms": 10}}]})");

const json kSlow = json::parse(R"({
  "id": "slow",
  "steps": [{"id": "d", "type": "delay", "config": {"duration_ms": 60000}}]})");

TEST_F(CallbacksTest, EverySubscribedEventArrivesExactlyAsOftenAsRetriesNeedSigned) {
  constexpr int kRefusals = 2;
  Receiver rx(kRefusals);
  open();
  ASSERT_TRUE(testing::vault_of(*engine_)->put("default", "HOOK", "vault-signing-key", 0).ok());
  ASSERT_TRUE(testing::vault_of(*engine_)->put("default", "API", "api-value", 0).ok());
  const json all_events(std::vector<std::string>(std::begin(kAllEvents), std::end(kAllEvents)));
  const json callbacks = {
      {{"url", rx.url()}, {"events", all_events}, {"secret", "plain-signing-key"}},
      {{"url", rx.url()},
       {"events", {"execution.completed", "execution.failed"}},
       {"secret", {{"$secret", "HOOK"}}}}};
  put(ok_with_secret(), callbacks);
  put(kBad, callbacks);
  put(kSlow, callbacks);
  json timeout = kSlow;
  timeout["id"] = "late";
  timeout["config"]["timeout_ms"] = 200;
  put(timeout, callbacks);

  const std::string ok = run("ok");
  const std::string bad = run("bad");
  const std::string cancelled = run("slow");
  const std::string late = run("late");
  ASSERT_TRUE(engine_->cancel(cancelled, "test").is_ok());
  for (const auto& id : {ok, bad, cancelled, late}) {
    auto r = engine_->wait(id, 10s);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  EXPECT_EQ(engine_->wait(ok, 1s)->status, "completed");
  EXPECT_EQ(engine_->wait(bad, 1s)->status, "failed");
  EXPECT_EQ(engine_->wait(cancelled, 1s)->status, "cancelled");
  EXPECT_EQ(engine_->wait(late, 1s)->status, "timed_out");

  const std::vector<std::string> ids = {ok, bad, cancelled, late};
  std::set<std::string> expected =
      owed(ids, 0, std::set<std::string>(std::begin(kAllEvents), std::end(kAllEvents)));
  const std::set<std::string> vault_signed =
      owed(ids, 1, {"execution.completed", "execution.failed"});
  expected.insert(vault_signed.begin(), vault_signed.end());
  // 4 starts, 2 step completions, 2 step failures, 4 ends; 2 ends for #1.
  EXPECT_EQ(expected.size(), 14u);

  ASSERT_TRUE(wait_received(rx, expected, kRefusals + 1)) << "not every delivery was accepted";
  ASSERT_TRUE(wait_outbox_empty());
  std::this_thread::sleep_for(800ms);  // longer than a poll: nothing else may come
  std::map<std::string, int> want;
  for (const auto& id : expected) want[id] = kRefusals + 1;
  EXPECT_EQ(rx.counts(), want);
  EXPECT_EQ(rx.max_concurrent_per_id(), 1) << "two attempts of one message overlapped";

  std::set<std::string> types_seen;
  const int64_t now_s = now_ms() / 1000;
  for (const auto& req : rx.requests()) {
    const std::string id = req.header("x-yantra-delivery");
    SCOPED_TRACE(id);
    EXPECT_EQ(req.method, "POST");
    EXPECT_EQ(req.path, "/hooks");
    EXPECT_EQ(req.header("content-type"), "application/json");
    const json body = json::parse(req.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << req.body;
    EXPECT_EQ(body.at("id"), id);
    EXPECT_EQ(body.at("type"), req.header("x-yantra-event"));
    EXPECT_EQ(body.at("tenant"), "default");
    EXPECT_EQ(body.at("execution_id"), id.substr(0, id.find('/')));
    EXPECT_EQ(body.at("seq"), std::stoull(id.substr(id.find('/') + 1)));
    types_seen.insert(body.at("type").get<std::string>());
    const std::string stamp = req.header("x-yantra-timestamp");
    ASSERT_FALSE(stamp.empty());
    EXPECT_LE(std::llabs(std::stoll(stamp) - now_s), 120);
    const bool from_vault = id.substr(id.rfind('/') + 1) == "1";
    const std::string key = from_vault ? "vault-signing-key" : "plain-signing-key";
    EXPECT_EQ(req.header("x-yantra-signature"),
              "sha256=" + crypto::hmac_sha256_hex(key, stamp + "." + req.body));
    EXPECT_EQ(req.body.find("api-value"), std::string::npos) << "a secret value leaked";
  }
  EXPECT_EQ(types_seen, std::set<std::string>(std::begin(kAllEvents), std::end(kAllEvents)));

  // The payload of b's completion: output with the secret marker redacted.
  for (const auto& req : rx.requests()) {
    const json body = json::parse(req.body);
    if (body.at("type") == "step.completed" && body.at("data").at("path") == "b") {
      EXPECT_EQ(body.at("data").at("output"), json({{"w", 7}, {"key", "***"}}));
    }
  }
}

TEST_F(CallbacksTest, AMissingVaultSecretIsRetriedUntilItIsSet) {
  Receiver rx(0);
  open();
  put(kOk, json::array({{{"url", rx.url()},
                         {"events", {"execution.completed"}},
                         {"secret", {{"$secret", "LATER"}}}}}));
  const std::string id = run("ok");
  ASSERT_TRUE(engine_->wait(id, 10s).ok());
  // Not sent while the secret is missing: the row stays, attempts counted.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  uint32_t attempts = 0;
  while (attempts < 2 && std::chrono::steady_clock::now() < deadline) {
    auto rows = testing::store_of(*engine_).outbox().due(INT64_MAX / 2, 10);
    ASSERT_TRUE(rows.ok());
    attempts = rows->empty() ? 0 : rows->front().attempt();
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_GE(attempts, 2u);
  EXPECT_TRUE(rx.counts().empty());
  {
    auto rows = testing::store_of(*engine_).outbox().due(INT64_MAX / 2, 10);
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_NE(rows->front().last_error().find("secret_not_found"), std::string::npos)
        << rows->front().last_error();
  }
  ASSERT_TRUE(testing::vault_of(*engine_)->put("default", "LATER", "late-key", 0).ok());
  const std::set<std::string> expected = owed({id}, 0, {"execution.completed"});
  ASSERT_TRUE(wait_received(rx, expected, 1, 15s));
  ASSERT_TRUE(wait_outbox_empty());
  auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].header("x-yantra-signature"),
            "sha256=" + crypto::hmac_sha256_hex(
                            "late-key", reqs[0].header("x-yantra-timestamp") + "." + reqs[0].body));
}

TEST_F(CallbacksTest, ACallbackNeverAcceptedIsDroppedAfterItsMaximumAge) {
  Receiver rx(1 << 30);  // always 500
  open(/*max_age_ms=*/1500);
  auto& dropped = metrics::global().counter("yantra_callbacks_dropped_total", "");
  const uint64_t dropped_before = dropped.value();
  put(kOk, json::array({{{"url", rx.url()}, {"events", {"execution.completed"}}}}));
  const std::string id = run("ok");
  ASSERT_TRUE(engine_->wait(id, 10s).ok());
  ASSERT_TRUE(wait_outbox_empty(15s)) << "the row was never dropped";
  EXPECT_EQ(dropped.value(), dropped_before + 1);
  const auto counts = rx.counts();
  ASSERT_EQ(counts.size(), 1u);
  // 50, 100, 200, 400, 800 ms (+-20%) apart, the last at 1.5 s: several tries.
  EXPECT_GE(counts.begin()->second, 4);
  const size_t n = rx.requests().size();
  std::this_thread::sleep_for(800ms);
  EXPECT_EQ(rx.requests().size(), n);
}

TEST_F(CallbacksTest, AnAcceptingReceiverGetsEveryDeliveryOnce) {
  Receiver rx(0);
  open();
  put(kOk,
      json::array({{{"url", rx.url()}, {"events", {"step.completed", "execution.completed"}}}}));
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(run("ok"));
    ASSERT_TRUE(engine_->wait(ids.back(), 10s).ok());
  }
  const std::set<std::string> expected = owed(ids, 0, {"step.completed", "execution.completed"});
  ASSERT_EQ(expected.size(), 60u);
  ASSERT_TRUE(wait_received(rx, expected, 1));
  // Event time (from the log) -> receipt by the server.
  std::map<std::string, int64_t> event_ms;
  for (const auto& id : ids) {
    for (const auto& ev : engine_->load_events(id).value()) {
      event_ms[id + "/" + std::to_string(ev.seq()) + "/0"] = ev.time_ms();
    }
  }
  std::vector<int64_t> delays;
  for (const auto& [id, at] : rx.accepted_ms()) delays.push_back(at - event_ms.at(id));
  std::sort(delays.begin(), delays.end());
  ASSERT_EQ(delays.size(), 60u);
  const int64_t p50 = delays[delays.size() / 2];
  const int64_t max = delays.back();
  std::cout << "event -> delivery: p50 " << p50 << " ms, max " << max << " ms\n";
  const auto counts = rx.counts();
  for (const auto& id : expected) EXPECT_EQ(counts.at(id), 1) << id;
}

}  // namespace
}  // namespace yantra
