// An engine that leads only the partitions it is given (EngineOptions::
// lead_all_partitions = false, Engine::lead_partition / release_partition),
// as a cluster node runs it, without a cluster: real RocksDB in a temp dir,
// a local storage::LogWriter as each led partition's log. Checks where new
// executions go, that commands for unled partitions are refused with
// partition_not_led, that a release writes nothing and fails its watchers,
// that leading again resumes the released executions with no step recorded
// twice, the schedule-slot claim and the callback outbox filter.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "actors/engine.hpp"
#include "actors/errc.hpp"
#include "actors/internal/parts.hpp"
#include "actors/testing.hpp"
#include "runtime/ids.hpp"
#include "storage/log_writer.hpp"
#include "tests/test_util.hpp"

namespace yantra {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

constexpr uint32_t kPartitions = 4;

// Polls `cond` (bounded) instead of sleeping for a fixed time.
template <class Fn>
bool eventually(Fn cond, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

class PartitionLeadTest : public ::testing::Test {
 protected:
  void open(EngineOptions opts = {}) {
    opts.data_dir = dir_.str();
    opts.partitions = kPartitions;
    opts.lead_all_partitions = lead_all_;
    auto e = Engine::open(std::move(opts));
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(e.value());
  }

  // A fresh local log over the engine's store: what the cluster hands over.
  std::unique_ptr<storage::PartitionLog> log_for(uint32_t p) {
    return std::make_unique<storage::LogWriter>(*detail::parts_of(*engine_).store, p);
  }

  void lead(uint32_t p) {
    Status s = engine_->lead_partition(p, log_for(p));
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }

  void put(const json& flow) {
    auto v = engine_->put_flow("default", flow);
    ASSERT_TRUE(v.ok()) << v.status().to_string();
  }

  Result<std::string> start(const std::string& flow_id, const std::string& key = "") {
    RunRequest r;
    r.flow_id = flow_id;
    r.idempotency_key = key;
    return engine_->start_sync(std::move(r));
  }

  // Every event of every execution of the tenant, by execution id.
  std::map<std::string, size_t> event_counts() {
    std::map<std::string, size_t> out;
    auto page = engine_->list_executions("default", "", "", 1000, "");
    EXPECT_TRUE(page.ok());
    for (const auto& s : page.value().items) {
      auto events = engine_->load_events(s.execution_id());
      out[s.execution_id()] = events.ok() ? events.value().size() : 0;
    }
    return out;
  }

  static json nap_flow(int64_t ms) {
    json f = json::parse(R"J({"id": "nap", "steps": [
      {"id": "d", "type": "delay", "config": {"duration_ms": 0}, "on_success": "e"},
      {"id": "e", "type": "action", "config": {"tool_id": "core", "action": "echo",
                                               "parameters": {"ok": true}}}]})J");
    f["steps"][0]["config"]["duration_ms"] = ms;
    return f;
  }

  bool lead_all_ = false;
  TempDir dir_;
  std::unique_ptr<Engine> engine_;
};

Status wait_status(std::future<Status>& f) {
  if (f.wait_for(10s) != std::future_status::ready) return Status(Errc::kTimeout, "no answer");
  return f.get();
}

TEST_F(PartitionLeadTest, StartsGoOnlyToLedPartitionsAndCommandsForOthersAreRefused) {
  open();
  EXPECT_TRUE(engine_->ready()) << "a cluster node serves reads from open() on";
  EXPECT_EQ(engine_->partition_count(), kPartitions);
  EXPECT_TRUE(engine_->led_partitions().empty());
  put(nap_flow(60000));

  auto refused = start("nap");
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().is(ActorsErrc::kPartitionNotLed)) << refused.status().to_string();
  EXPECT_NE(refused.status().message().find("leads no partition"), std::string::npos);

  // Leading twice, or a partition that does not exist, is refused.
  lead(0);
  EXPECT_TRUE(engine_->lead_partition(0, log_for(0)).is(Errc::kConflict));
  EXPECT_TRUE(engine_->lead_partition(kPartitions, log_for(0)).is(Errc::kInvalidArgument));
  auto in0 = start("nap");
  ASSERT_TRUE(in0.ok()) << in0.status().to_string();
  EXPECT_EQ(partition_of(in0.value(), kPartitions), 0u);
  engine_->release_partition(0);
  engine_->release_partition(0);  // idempotent
  EXPECT_FALSE(engine_->leads(0));

  lead(1);
  lead(3);
  EXPECT_EQ(engine_->led_partitions(), (std::vector<uint32_t>{1, 3}));
  std::map<uint32_t, int> landed;
  for (int i = 0; i < 20; ++i) {
    auto id = start("nap");
    ASSERT_TRUE(id.ok()) << id.status().to_string();
    ++landed[partition_of(id.value(), kPartitions)];
  }
  EXPECT_EQ(landed.size(), 2u) << "round-robin over both led partitions";
  EXPECT_EQ(landed[1] + landed[3], 20);
  EXPECT_EQ(engine_->usage("default").running, 20) << "the released partition's run left";

  // in0 lives in partition 0, which this node no longer leads.
  const std::string& x = in0.value();
  auto expect_not_led = [&](const Status& s, const char* what) {
    EXPECT_TRUE(s.is(ActorsErrc::kPartitionNotLed)) << what << ": " << s.to_string();
    EXPECT_NE(s.message().find("partition 0 of execution " + x), std::string::npos) << what;
  };
  expect_not_led(engine_->cancel(x, "no"), "cancel");
  {
    std::promise<Status> p;
    auto f = p.get_future();
    engine_->signal("default", x, "go", json::object(), [&p](Result<std::string> r) {
      p.set_value(r.ok() ? Status::ok() : r.status());
    });
    expect_not_led(wait_status(f), "signal");
  }
  {
    std::promise<Status> p;
    auto f = p.get_future();
    engine_->approve("default", x, "d", "key", "admin", true, "",
                     [&p](Status s) { p.set_value(s); });
    expect_not_led(wait_status(f), "approve");
  }
  {
    std::promise<Status> p;
    auto f = p.get_future();
    engine_->retry("default", x, [&p](Result<std::string> r) {
      p.set_value(r.ok() ? Status::ok() : r.status());
    });
    expect_not_led(wait_status(f), "retry");
  }
  // Reads stay local.
  auto sum = engine_->summary("default", x);
  ASSERT_TRUE(sum.ok()) << sum.status().to_string();
  EXPECT_EQ(sum.value().status(), "waiting");
  ASSERT_TRUE(engine_->load_events(x).ok());
  // A fork reads its source locally and starts in a led partition.
  std::promise<Result<std::string>> forked;
  auto ff = forked.get_future();
  engine_->fork("default", x, 0, json(), [&forked](Result<std::string> r) { forked.set_value(r); });
  ASSERT_EQ(ff.wait_for(10s), std::future_status::ready);
  auto fork_id = ff.get();
  ASSERT_TRUE(fork_id.ok()) << fork_id.status().to_string();
  const uint32_t fp = partition_of(fork_id.value(), kPartitions);
  EXPECT_TRUE(fp == 1 || fp == 3) << fp;
  EXPECT_TRUE(engine_->cancel(fork_id.value(), "done").is_ok());
}

TEST_F(PartitionLeadTest, AnIdempotencyKeyGoesToItsPartitionAndIsRefusedWhereItIsNotLed) {
  open();
  put(nap_flow(60000));
  const std::string key = "order-42";
  const uint32_t home = partition_of_key("default", key, kPartitions);
  for (uint32_t p = 0; p < kPartitions; ++p) {
    if (p != home) lead(p);
  }
  auto refused = start("nap", key);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().is(ActorsErrc::kPartitionNotLed)) << refused.status().to_string();
  EXPECT_NE(refused.status().message().find("partition " + std::to_string(home)), std::string::npos)
      << refused.status().to_string();
  lead(home);
  auto first = start("nap", key);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(partition_of(first.value(), kPartitions), home);
  auto again = start("nap", key);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again.value(), first.value());
}

// The single node too: a keyed start lands in its key's partition.
TEST_F(PartitionLeadTest, ASingleNodePutsAKeyedStartInItsKeysPartition) {
  lead_all_ = true;
  open();
  EXPECT_EQ(engine_->led_partitions().size(), kPartitions);
  put(nap_flow(1));
  for (int i = 0; i < 8; ++i) {
    const std::string key = "k" + std::to_string(i);
    auto id = start("nap", key);
    ASSERT_TRUE(id.ok()) << id.status().to_string();
    EXPECT_EQ(partition_of(id.value(), kPartitions), partition_of_key("default", key, kPartitions));
  }
}

TEST_F(PartitionLeadTest, ReleaseWritesNothingFailsWatchersAndLeadingAgainFinishesTheRuns) {
  open();
  // Long enough for the executions to go to sleep (passivation), short
  // enough to finish once led again.
  put(nap_flow(3000));
  lead(2);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    auto id = start("nap");
    ASSERT_TRUE(id.ok()) << id.status().to_string();
    ids.push_back(id.value());
  }
  EXPECT_EQ(engine_->usage("default").running, 6);
  std::vector<std::future<Result<ExecutionResult>>> watched;
  for (const auto& id : ids) {
    auto p = std::make_shared<std::promise<Result<ExecutionResult>>>();
    watched.push_back(p->get_future());
    engine_->watch(id, [p](Result<ExecutionResult> r) { p->set_value(std::move(r)); });
  }
  const auto before = event_counts();
  engine_->release_partition(2);
  EXPECT_EQ(event_counts(), before) << "a release appends nothing";
  for (auto& f : watched) {
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready) << "a watcher was left hanging";
    auto r = f.get();
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.status().is(ActorsErrc::kPartitionNotLed)) << r.status().to_string();
  }
  EXPECT_EQ(engine_->usage("default").running, 0) << "the partition's counts went with it";
  for (const auto& id : ids) {
    auto s = engine_->summary("default", id);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s.value().status(), "waiting");
  }
  // Nothing moves while unled: the delays pass, nothing is written.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(event_counts(), before);

  lead(2);  // a fresh log; recovery from the local store
  EXPECT_EQ(engine_->usage("default").running, 6);
  for (const auto& id : ids) {
    auto r = engine_->wait(id, 15s);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r.value().status, "completed");
    auto events = engine_->load_events(id);
    ASSERT_TRUE(events.ok());
    // Each step recorded once: started once, its timer fired once, the
    // action completed once.
    std::map<std::string, int> recorded;
    for (const auto& ev : events.value()) {
      if (ev.has_step_started()) ++recorded["started " + ev.step_started().path()];
      if (ev.has_timer_fired()) ++recorded["timer"];
      if (ev.has_step_completed()) ++recorded["completed " + ev.step_completed().path()];
    }
    EXPECT_EQ(recorded, (std::map<std::string, int>{
                            {"started d", 1}, {"started e", 1}, {"timer", 1}, {"completed e", 1}}))
        << id;
  }
  EXPECT_TRUE(eventually([&] { return engine_->usage("default").running == 0; }));
}

// A release while executions are awake (actors live, not asleep): they stop
// without appending, and resume once led again.
TEST_F(PartitionLeadTest, ReleaseStopsLiveExecutionsWithoutWriting) {
  open();
  put(nap_flow(1500));  // below the passivation threshold: actors stay up
  lead(1);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto id = start("nap");
    ASSERT_TRUE(id.ok()) << id.status().to_string();
    ids.push_back(id.value());
  }
  const auto before = event_counts();
  engine_->release_partition(1);
  std::this_thread::sleep_for(1700ms);  // past the delays: a live timer would have fired
  EXPECT_EQ(event_counts(), before);
  lead(1);
  for (const auto& id : ids) {
    auto r = engine_->wait(id, 15s);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r.value().status, "completed");
  }
}

TEST_F(PartitionLeadTest, AScheduleSlotFiresOnlyWhenClaimed) {
  constexpr int64_t kMinute = 60 * 1000;
  constexpr int64_t kT0 = 1767607200000;  // 2026-01-05T10:00:00Z
  auto clock = std::make_shared<ManualClock>(kT0);
  std::mutex mu;
  std::vector<int64_t> asked;
  EngineOptions opts;
  opts.clock = clock;
  opts.claim_schedule_slot = [&](const std::string& tenant, const std::string& flow_id,
                                 int64_t slot_ms) {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(tenant, "default");
    EXPECT_EQ(flow_id, "tick");
    asked.push_back(slot_ms);
    return slot_ms != kT0 + 5 * kMinute;  // another node holds the first slot
  };
  lead_all_ = true;
  open(std::move(opts));
  json f = json::parse(R"J({"id": "tick", "steps": [
    {"id": "a", "type": "action", "config": {"tool_id": "core", "action": "echo",
                                             "parameters": {}}}]})J");
  f["trigger"] = {{"type", "schedule"},
                  {"config", {{"cron", "*/5 * * * *"}, {"timezone", "UTC"}, {"catch_up", "none"}}}};
  put(f);
  auto settled = [&](int64_t t) {
    return eventually([&] {
      for (const auto& s : engine_->schedules("default")) {
        if (s.flow_id == "tick") return s.next_fire_ms > t;
      }
      return false;
    });
  };
  auto runs = [&] {
    auto page = engine_->list_executions("default", "tick", "", 100, "");
    EXPECT_TRUE(page.ok());
    return page.ok() ? page.value().items.size() : 0;
  };
  clock->set(kT0 + 5 * kMinute);
  ASSERT_TRUE(settled(kT0 + 5 * kMinute));
  EXPECT_EQ(runs(), 0u) << "a slot another node claimed is not fired here";
  clock->set(kT0 + 10 * kMinute);
  ASSERT_TRUE(settled(kT0 + 10 * kMinute));
  EXPECT_EQ(runs(), 1u);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(asked, (std::vector<int64_t>{kT0 + 5 * kMinute, kT0 + 10 * kMinute}));
}

// Stands in for the `http` tool: records each callback attempt's execution,
// fails them until told to accept.
class FakeHttp final : public Tool {
 public:
  ToolSpec spec() const override { return ToolSpec{"http", {"request"}}; }
  ToolResult invoke(const ToolCall& call) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++attempts_[call.execution_id];
    if (!accept_) return ToolResult::failure("http_unreachable", "receiver down", true);
    return ToolResult::success(json{{"status", 204}});
  }
  int attempts(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_[id];
  }
  void accept() {
    std::lock_guard<std::mutex> lock(mu_);
    accept_ = true;
  }

 private:
  std::mutex mu_;
  std::map<std::string, int> attempts_;
  bool accept_ = false;
};

TEST_F(PartitionLeadTest, CallbacksOfUnledPartitionsStayForTheirLeader) {
  auto http = std::make_shared<FakeHttp>();
  EngineOptions opts;
  opts.tools.push_back(http);
  opts.callback_initial_backoff_ms = 20;
  open(std::move(opts));
  json f = nap_flow(1);
  f["config"]["callbacks"] =
      json::array({{{"url", "http://127.0.0.1:9/hook"}, {"events", {"execution.completed"}}}});
  put(f);
  lead(0);
  lead(1);
  // One execution in each partition (keys pick them).
  std::map<uint32_t, std::string> in;
  for (int i = 0; in.size() < 2 && i < 1000; ++i) {
    const std::string key = "cb" + std::to_string(i);
    const uint32_t p = partition_of_key("default", key, kPartitions);
    if (p > 1 || in.count(p) != 0) continue;
    auto id = start("nap", key);
    ASSERT_TRUE(id.ok()) << id.status().to_string();
    in[p] = id.value();
  }
  ASSERT_EQ(in.size(), 2u);
  for (const auto& [p, id] : in) ASSERT_TRUE(engine_->wait(id, 10s).ok());
  ASSERT_TRUE(eventually([&] { return http->attempts(in[0]) > 0 && http->attempts(in[1]) > 0; }));
  engine_->release_partition(1);
  // Partition 0's row keeps being retried; partition 1's is left alone.
  const int at_release = http->attempts(in[1]);
  const int zero_before = http->attempts(in[0]);
  ASSERT_TRUE(eventually([&] { return http->attempts(in[0]) >= zero_before + 3; }));
  // A scan in flight at the release may have taken the row once more.
  EXPECT_LE(http->attempts(in[1]), at_release + 1);
  const int settled = http->attempts(in[1]);
  ASSERT_TRUE(eventually([&] { return http->attempts(in[0]) >= zero_before + 6; }));
  EXPECT_EQ(http->attempts(in[1]), settled) << "an unled partition's callback was delivered";
  auto rows = testing::store_of(*engine_).outbox().count();
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows.value(), 2u);
  // Its new leader (here: this node again) delivers it.
  http->accept();
  lead(1);
  ASSERT_TRUE(eventually([&] {
    auto n = testing::store_of(*engine_).outbox().count();
    return n.ok() && n.value() == 0;
  }));
  EXPECT_GT(http->attempts(in[1]), settled);
}

}  // namespace
}  // namespace yantra
