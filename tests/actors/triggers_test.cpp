// Triggers at the engine level: schedules driven by a ManualClock (no test
// sleeps until a minute passes: time jumps and the scheduler is awaited by
// its own state), events with filters, and webhook ids. Restarts reopen the
// Engine on the same data dir, cleanly and after a simulated power loss
// (halt_for_test), and the count of executions per slot is checked to be
// exactly one: none lost, none doubled.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "actors/engine.hpp"
#include "actors/testing.hpp"
#include "storage/trigger_store.hpp"
#include "tests/test_util.hpp"

namespace yantra {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

constexpr int64_t kMinute = 60 * 1000;
// 2026-01-05T10:00:00Z, a Monday.
constexpr int64_t kT0 = 1767607200000;

json schedule_flow(const std::string& id, const std::string& cron, const std::string& catch_up,
                   const std::string& zone = "UTC") {
  json f = json::parse(R"({
    "steps": [{"id": "a", "type": "action",
               "config": {"tool_id": "core", "action": "echo",
                          "parameters": {"at": {"$ref": "input.scheduled_at"}}}}]})");
  f["id"] = id;
  f["trigger"] = {
      {"type", "schedule"},
      {"config",
       {{"cron", cron}, {"timezone", zone}, {"catch_up", catch_up}, {"input", {{"k", 1}}}}}};
  return f;
}

json event_flow(const std::string& id, const std::string& name, const std::string& filter = "") {
  json f = json::parse(R"({
    "steps": [{"id": "a", "type": "action",
               "config": {"tool_id": "core", "action": "echo",
                          "parameters": {"got": {"$ref": "input.data"}}}}]})");
  f["id"] = id;
  f["trigger"] = {{"type", "event"}, {"config", {{"event_name", name}}}};
  if (!filter.empty()) f["trigger"]["config"]["filter"] = filter;
  return f;
}

class TriggersTest : public ::testing::Test {
 protected:
  void open(Durability durability = Durability::kSync) {
    EngineOptions opts;
    opts.data_dir = dir_.str();
    opts.durability = durability;
    opts.clock = clock_;
    auto e = Engine::open(std::move(opts));
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(e.value());
  }

  void put(const json& flow) {
    auto v = engine_->put_flow("default", flow);
    ASSERT_TRUE(v.ok()) << v.status().to_string();
  }

  std::optional<ScheduleInfo> schedule(const std::string& flow_id) {
    for (auto& s : engine_->schedules("default")) {
      if (s.flow_id == flow_id) return s;
    }
    return std::nullopt;
  }

  // Moves the clock to `t` and waits (in real time, bounded) until the
  // scheduler has handled every slot of `flow_id` up to `t`.
  void advance_to(int64_t t, const std::string& flow_id) {
    clock_->set(t);
    settle(t, flow_id);
  }
  void settle(int64_t t, const std::string& flow_id) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto s = schedule(flow_id);
      if (s && (s->next_fire_ms > t || s->next_fire_ms == 0)) return;
      std::this_thread::sleep_for(5ms);
    }
    FAIL() << "scheduler did not catch up to " << t << " for " << flow_id;
  }

  // The scheduled_at of every execution of the flow, sorted (duplicates kept).
  std::vector<std::string> fired(const std::string& flow_id) {
    std::vector<std::string> out;
    std::string cursor;
    do {
      auto page = engine_->list_executions("default", flow_id, "", 500, cursor);
      EXPECT_TRUE(page.ok()) << page.status().to_string();
      if (!page.ok()) return out;
      for (const auto& s : page.value().items) {
        auto st = engine_->load_state(s.execution_id());
        EXPECT_TRUE(st.ok()) << st.status().to_string();
        if (!st.ok()) continue;
        EXPECT_EQ(st.value().input.value("k", 0), 1) << st.value().input.dump();
        out.push_back(st.value().input.value("scheduled_at", ""));
      }
      cursor = page.value().next_cursor;
    } while (!cursor.empty());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::vector<EventStart> emit(const std::string& name, const json& data) {
    auto promise = std::make_shared<std::promise<std::vector<EventStart>>>();
    auto future = promise->get_future();
    engine_->emit_event("default", name, data,
                        [promise](std::vector<EventStart> r) { promise->set_value(std::move(r)); });
    if (future.wait_for(10s) != std::future_status::ready) {
      ADD_FAILURE() << "emit_event did not answer";
      return {};
    }
    return future.get();
  }

  TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(kT0);
  std::unique_ptr<Engine> engine_;
};

std::vector<std::string> slots(std::initializer_list<const char*> times) {
  return std::vector<std::string>(times.begin(), times.end());
}

TEST_F(TriggersTest, OneExecutionPerSlotWithConfiguredInput) {
  open();
  put(schedule_flow("tick", "*/5 * * * *", "none"));
  auto s = schedule("tick");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->next_fire_ms, kT0 + 5 * kMinute);
  EXPECT_EQ(s->last_fired_ms, 0);
  EXPECT_EQ(s->status, "active");
  EXPECT_TRUE(fired("tick").empty());

  advance_to(kT0 + 4 * kMinute, "tick");
  EXPECT_TRUE(fired("tick").empty());
  advance_to(kT0 + 5 * kMinute, "tick");
  EXPECT_EQ(fired("tick"), slots({"2026-01-05T10:05:00.000Z"}));
  // A late wake-up fires every slot that came due, in order, once.
  advance_to(kT0 + 17 * kMinute, "tick");
  EXPECT_EQ(fired("tick"), slots({"2026-01-05T10:05:00.000Z", "2026-01-05T10:10:00.000Z",
                                  "2026-01-05T10:15:00.000Z"}));
  EXPECT_EQ(schedule("tick")->last_fired_ms, kT0 + 15 * kMinute);
  EXPECT_EQ(schedule("tick")->next_fire_ms, kT0 + 20 * kMinute);
  // A new version with the same cron keeps its position.
  json v2 = schedule_flow("tick", "*/5 * * * *", "none");
  v2["name"] = "renamed";
  put(v2);
  EXPECT_EQ(schedule("tick")->next_fire_ms, kT0 + 20 * kMinute);
  // Each run carries the slot's idempotency key.
  auto page = engine_->list_executions("default", "tick", "", 10, "");
  ASSERT_TRUE(page.ok());
  std::set<std::string> keys;
  for (const auto& e : page.value().items) {
    auto events = engine_->load_events(e.execution_id(), 1, 1);
    ASSERT_TRUE(events.ok());
    keys.insert(events.value()[0].execution_started().idempotency_key());
  }
  EXPECT_EQ(keys, (std::set<std::string>{"schedule/tick/" + std::to_string(kT0 + 5 * kMinute),
                                         "schedule/tick/" + std::to_string(kT0 + 10 * kMinute),
                                         "schedule/tick/" + std::to_string(kT0 + 15 * kMinute)}));
}

// catch_up "all": the slots missed while the node was down are fired after
// a restart, each once, also when the node died between starting a slot and
// recording it (the idempotency key answers with the first execution).
TEST_F(TriggersTest, RestartsNeitherLoseNorDoubleSlots) {
  open();
  put(schedule_flow("every5", "*/5 * * * *", "all"));
  advance_to(kT0 + 10 * kMinute, "every5");
  ASSERT_EQ(fired("every5").size(), 2u);

  // Clean shutdown; four slots pass while down.
  engine_.reset();
  clock_->set(kT0 + 30 * kMinute);
  open();
  settle(kT0 + 30 * kMinute, "every5");
  EXPECT_EQ(fired("every5"), slots({"2026-01-05T10:05:00.000Z", "2026-01-05T10:10:00.000Z",
                                    "2026-01-05T10:15:00.000Z", "2026-01-05T10:20:00.000Z",
                                    "2026-01-05T10:25:00.000Z", "2026-01-05T10:30:00.000Z"}));

  // Power loss right after a slot was started and recorded.
  advance_to(kT0 + 35 * kMinute, "every5");
  ASSERT_EQ(fired("every5").size(), 7u);
  engine_->halt_for_test();
  engine_.reset();
  // As if the node had died after the starts of 10:25..10:35 were durable
  // but before any of them was recorded as fired.
  {
    auto store = storage::Store::open(storage::StoreOptions{dir_.str()});
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    storage::TriggerStore rows(*store.value());
    auto row = rows.schedule("default", "every5");
    ASSERT_TRUE(row.ok() && row.value().has_value());
    EXPECT_EQ(row.value()->last_fired_ms, kT0 + 35 * kMinute);
    ASSERT_TRUE(rows.put_schedule("default", "every5", {kT0 + 20 * kMinute, row.value()->anchor_ms})
                    .is_ok());
  }
  clock_->set(kT0 + 41 * kMinute);
  open();
  settle(kT0 + 41 * kMinute, "every5");
  const auto all = fired("every5");
  EXPECT_EQ(all.size(), 8u);  // 10:05 .. 10:40, each once
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), all.size());
  EXPECT_EQ(all.back(), "2026-01-05T10:40:00.000Z");
  EXPECT_EQ(schedule("every5")->last_fired_ms, kT0 + 40 * kMinute);
}

TEST_F(TriggersTest, CatchUpNoneSkipsWhatWasMissedWhileDown) {
  open();
  put(schedule_flow("hourly", "0 * * * *", "none"));
  advance_to(kT0 + 60 * kMinute, "hourly");
  EXPECT_EQ(fired("hourly"), slots({"2026-01-05T11:00:00.000Z"}));
  engine_.reset();
  clock_->set(kT0 + 5 * 60 * kMinute + 30 * kMinute);  // 15:30: 12:00..15:00 missed
  open();
  EXPECT_EQ(schedule("hourly")->next_fire_ms, kT0 + 6 * 60 * kMinute);
  advance_to(kT0 + 6 * 60 * kMinute, "hourly");
  EXPECT_EQ(fired("hourly"), slots({"2026-01-05T11:00:00.000Z", "2026-01-05T16:00:00.000Z"}));
}

TEST_F(TriggersTest, CatchUpAllIsBoundedToTheOldestSlots) {
  // A thousand starts: without an fsync each, to keep the test short.
  open(Durability::kAsync);
  put(schedule_flow("minutely", "* * * * *", "all"));
  advance_to(kT0 + kMinute, "minutely");
  ASSERT_EQ(fired("minutely").size(), 1u);
  engine_.reset();
  clock_->set(kT0 + 1200 * kMinute + 30000);  // 1199 slots missed
  open(Durability::kAsync);
  settle(kT0 + 1200 * kMinute + 30000, "minutely");
  const auto all = fired("minutely");
  EXPECT_EQ(all.size(), 1001u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), all.size());
  EXPECT_EQ(all[1], "2026-01-05T10:02:00.000Z");  // the oldest missed first
  EXPECT_EQ(schedule("minutely")->next_fire_ms, kT0 + 1201 * kMinute);
}

// 02:30 every day in New York: 07:30Z in EST, then the spring-forward gap
// (2026-03-08 02:00 -> 03:00) fires at 03:00 EDT = 07:00Z, then 06:30Z.
TEST_F(TriggersTest, SlotsFollowTheTimeZoneAcrossDst) {
  clock_->set(1772798400000);  // 2026-03-06T12:00:00Z
  open();
  put(schedule_flow("ny", "30 2 * * *", "none", "America/New_York"));
  const std::vector<std::pair<int64_t, const char*>> expected = {
      {1772868600000, "2026-03-07T07:30:00.000Z"},
      {1772953200000, "2026-03-08T07:00:00.000Z"},
      {1773037800000, "2026-03-09T06:30:00.000Z"},
  };
  std::vector<std::string> want;
  for (const auto& [ms, iso] : expected) {
    ASSERT_EQ(schedule("ny")->next_fire_ms, ms) << iso;
    advance_to(ms, "ny");
    want.push_back(iso);
    EXPECT_EQ(fired("ny"), want);
  }
  EXPECT_EQ(schedule("ny")->time_zone, "America/New_York");
}

TEST_F(TriggersTest, PauseStopsTheScheduleAndResumeCountsFromNow) {
  open();
  json def = schedule_flow("pausable", "*/5 * * * *", "all");
  put(def);
  advance_to(kT0 + 5 * kMinute, "pausable");
  ASSERT_EQ(fired("pausable").size(), 1u);

  def["status"] = "paused";
  put(def);
  EXPECT_EQ(schedule("pausable")->status, "paused");
  EXPECT_EQ(schedule("pausable")->next_fire_ms, 0);
  clock_->set(kT0 + 32 * kMinute);
  std::this_thread::sleep_for(100ms);  // a scheduler that wrongly fires would do so now
  EXPECT_EQ(fired("pausable").size(), 1u);
  // A run of a paused flow is refused, whoever asks.
  RunRequest run;
  run.flow_id = "pausable";
  auto refused = engine_->start_sync(run);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), "conflict");

  def["status"] = "active";
  put(def);
  EXPECT_EQ(schedule("pausable")->next_fire_ms, kT0 + 35 * kMinute);
  advance_to(kT0 + 35 * kMinute, "pausable");
  EXPECT_EQ(fired("pausable"), slots({"2026-01-05T10:05:00.000Z", "2026-01-05T10:35:00.000Z"}));
  // Catch-up after a restart never reaches back into the paused time.
  engine_.reset();
  clock_->set(kT0 + 41 * kMinute);
  open();
  settle(kT0 + 41 * kMinute, "pausable");
  EXPECT_EQ(fired("pausable"), slots({"2026-01-05T10:05:00.000Z", "2026-01-05T10:35:00.000Z",
                                      "2026-01-05T10:40:00.000Z"}));
  // Deleted: no schedule, and its rows are gone.
  ASSERT_TRUE(engine_->delete_flow("default", "pausable").ok());
  EXPECT_FALSE(schedule("pausable").has_value());
  auto row = testing::triggers_of(*engine_).schedule("default", "pausable");
  ASSERT_TRUE(row.ok());
  EXPECT_FALSE(row.value().has_value());
}

TEST_F(TriggersTest, EventsStartMatchingActiveFlows) {
  open();
  put(event_flow("big-orders", "order.created", "event.data.amount > 100"));
  put(event_flow("all-orders", "order.created"));
  put(event_flow("deletions", "order.deleted"));
  json paused = event_flow("paused-orders", "order.created");
  paused["status"] = "paused";
  put(paused);
  json limited = event_flow("limited-orders", "order.created");
  limited["config"] = {{"rate_limit", {{"max_per_minute", 1}}}};
  put(limited);

  auto small = emit("order.created", {{"amount", 50}});
  ASSERT_EQ(small.size(), 2u);
  EXPECT_EQ(small[0].flow_id, "all-orders");
  EXPECT_EQ(small[1].flow_id, "limited-orders");
  for (const auto& s : small) EXPECT_TRUE(s.error.is_ok()) << s.error.to_string();
  auto r = engine_->wait(small[0].execution_id, 10s);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r.value().output, json({{"got", {{"amount", 50}}}}));
  auto st = engine_->load_state(small[0].execution_id);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st.value().input, json({{"name", "order.created"}, {"data", {{"amount", 50}}}}));

  // The second event is over limited-orders' rate: listed as an error.
  auto big = emit("order.created", {{"amount", 500}});
  ASSERT_EQ(big.size(), 3u);
  EXPECT_EQ(big[0].flow_id, "all-orders");
  EXPECT_EQ(big[1].flow_id, "big-orders");
  EXPECT_EQ(big[2].flow_id, "limited-orders");
  EXPECT_TRUE(big[0].error.is_ok() && big[1].error.is_ok());
  EXPECT_EQ(big[2].error.code(), "rate_limited");
  EXPECT_TRUE(big[2].execution_id.empty());

  EXPECT_EQ(emit("order.shipped", json::object()).size(), 0u);
  EXPECT_EQ(emit("order.deleted", nullptr).size(), 1u);
  // Data the filter cannot judge does not match it.
  EXPECT_EQ(emit("order.created", "text").size(), 2u);

  // The index follows puts and deletes, and is rebuilt at open.
  ASSERT_TRUE(engine_->delete_flow("default", "all-orders").ok());
  put(event_flow("big-orders", "order.updated", "event.data.amount > 100"));
  auto after = emit("order.created", {{"amount", 500}});
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].flow_id, "limited-orders");
  engine_.reset();
  open();
  auto reopened = emit("order.updated", {{"amount", 101}});
  ASSERT_EQ(reopened.size(), 1u);
  EXPECT_EQ(reopened[0].flow_id, "big-orders");
  EXPECT_EQ(emit("order.created", {{"amount", 500}}).size(), 1u);
  // Other tenants' flows never hear of it.
  auto promise = std::make_shared<std::promise<size_t>>();
  engine_->emit_event("other-tenant", "order.updated", {{"amount", 500}},
                      [promise](std::vector<EventStart> r) { promise->set_value(r.size()); });
  EXPECT_EQ(promise->get_future().get(), 0u);
}

TEST_F(TriggersTest, WebhookIdsSurviveVersionsAndGoWithTheFlow) {
  open();
  json def = json::parse(R"({"id": "hooked", "trigger": {"type": "webhook",
      "config": {"auth": "none"}},
      "steps": [{"id": "a", "type": "action",
                 "config": {"tool_id": "core", "action": "echo", "parameters": {}}}]})");
  put(def);
  auto& rows = testing::triggers_of(*engine_);
  auto id = rows.hook_of("default", "hooked");
  ASSERT_TRUE(id.ok() && id.value().has_value());
  EXPECT_EQ(id.value()->rfind("hk_", 0), 0u);
  EXPECT_EQ(id.value()->size(), 35u);
  auto target = rows.find_hook(*id.value());
  ASSERT_TRUE(target.ok() && target.value().has_value());
  EXPECT_EQ(target.value()->tenant, "default");
  EXPECT_EQ(target.value()->flow_id, "hooked");

  def["name"] = "v2";
  put(def);
  EXPECT_EQ(rows.hook_of("default", "hooked").value(), id.value());
  engine_.reset();
  open();
  EXPECT_EQ(testing::triggers_of(*engine_).hook_of("default", "hooked").value(), id.value());

  auto rotated = testing::triggers_of(*engine_).rotate_hook("default", "hooked");
  ASSERT_TRUE(rotated.ok());
  EXPECT_NE(rotated.value(), *id.value());
  EXPECT_FALSE(testing::triggers_of(*engine_).find_hook(*id.value()).value().has_value());
  EXPECT_TRUE(testing::triggers_of(*engine_).find_hook(rotated.value()).value().has_value());

  ASSERT_TRUE(engine_->delete_flow("default", "hooked").ok());
  EXPECT_FALSE(testing::triggers_of(*engine_).hook_of("default", "hooked").value().has_value());
  EXPECT_FALSE(testing::triggers_of(*engine_).find_hook(rotated.value()).value().has_value());
}

// A cluster node installs the hook id etcd assigned (cluster/resources.hpp):
// it replaces the flow's own, which stops resolving, and later versions
// keep it.
TEST_F(TriggersTest, SetHookInstallsAGivenIdAndRetiresThePreviousOne) {
  open();
  json def = json::parse(R"({"id": "hooked", "trigger": {"type": "webhook",
      "config": {"auth": "none"}},
      "steps": [{"id": "a", "type": "action",
                 "config": {"tool_id": "core", "action": "echo", "parameters": {}}}]})");
  put(def);
  auto& rows = testing::triggers_of(*engine_);
  auto own = rows.hook_of("default", "hooked");
  ASSERT_TRUE(own.ok() && own.value().has_value());
  ASSERT_TRUE(rows.set_hook("default", "hooked", "hk_given").is_ok());
  ASSERT_TRUE(rows.set_hook("default", "hooked", "hk_given").is_ok());
  EXPECT_FALSE(rows.find_hook(*own.value()).value().has_value());
  auto target = rows.find_hook("hk_given");
  ASSERT_TRUE(target.ok() && target.value().has_value());
  EXPECT_EQ(target.value()->flow_id, "hooked");
  def["name"] = "v2";
  put(def);
  EXPECT_EQ(rows.hook_of("default", "hooked").value(), std::optional<std::string>("hk_given"));
  EXPECT_EQ(rows.set_hook("default", "hooked", "").code(), "invalid_argument");
}

}  // namespace
}  // namespace yantra
