// callback_messages() without an engine: real batches from advance() on a
// parsed flow, and the messages they owe. What matters to receivers is
// checked exactly: which events produce messages for which callbacks, the
// ids (deterministic, so a batch decided twice owes the same deliveries),
// the payload fields, redaction of $secret markers, and that a fork does not
// report its parent's history again.
#include <gtest/gtest.h>

#include "runtime/callbacks.hpp"
#include "runtime/execution.hpp"
#include "runtime/flow.hpp"

namespace yantra {
namespace {

constexpr int64_t kT0 = 1767607200000;  // 2026-01-05T10:00:00.000Z

std::shared_ptr<const Flow> flow_with(const json& callbacks) {
  json doc = json::parse(R"({
    "id": "cb",
    "steps": [
      {"id": "a", "type": "action",
       "config": {"tool_id": "t", "action": "go", "parameters": {"n": {"$ref": "input.n"}}},
       "retry_config": {"max_attempts": 2, "backoff_type": "fixed", "initial_delay_ms": 10}}],
    "output": {"a": {"$ref": "a"}}})");
  if (!callbacks.is_null()) doc["config"] = {{"callbacks", callbacks}};
  auto flow = parse_flow(doc);
  EXPECT_TRUE(flow.ok()) << flow.status().to_string();
  return flow.value();
}

// Plays one execution of the flow above, batch by batch.
struct Script {
  explicit Script(std::shared_ptr<const Flow> f) : flow(std::move(f)) {}

  std::shared_ptr<const Flow> flow;
  ExecutionState st;
  int64_t now = kT0;

  std::vector<v1::Event> start(const std::string& id = "exec-1") {
    v1::Event ev = make_event(st, now);
    auto& e = *ev.mutable_execution_started();
    e.set_execution_id(id);
    e.set_tenant("acme");
    e.set_flow_id(flow->id);
    e.set_flow_version(3);
    e.set_input_json(R"({"n":1,"token":{"$secret":"API"}})");
    return feed(std::move(ev));
  }
  std::vector<v1::Event> complete(const std::string& output_json, uint32_t attempt = 1) {
    v1::Event ev = make_event(st, now);
    auto& e = *ev.mutable_step_completed();
    e.set_path("a");
    e.set_attempt(attempt);
    e.set_output_json(output_json);
    return feed(std::move(ev));
  }
  std::vector<v1::Event> fail(uint32_t attempt) {
    v1::Event ev = make_event(st, now);
    auto& e = *ev.mutable_step_failed();
    e.set_path("a");
    e.set_attempt(attempt);
    e.mutable_error()->set_code("boom");
    e.mutable_error()->set_message("it broke");
    e.mutable_error()->set_retriable(true);
    return feed(std::move(ev));
  }
  std::vector<v1::Event> fire(const std::string& timer) {
    v1::Event ev = make_event(st, now);
    ev.mutable_timer_fired()->set_timer_id(timer);
    return feed(std::move(ev));
  }
  std::vector<v1::Event> feed(v1::Event ev) {
    std::vector<Command> cmds;
    auto batch = advance(*flow, st, std::move(ev), now, &cmds);
    EXPECT_TRUE(batch.ok()) << batch.status().to_string();
    now += 100;
    return batch.ok() ? batch.value() : std::vector<v1::Event>{};
  }
};

std::vector<std::string> ids(const std::vector<CallbackMessage>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) out.push_back(m.id + " " + m.type + " " + m.url);
  return out;
}

TEST(CallbackMessages, FlowWithoutCallbacksOwesNothing) {
  Script run{flow_with(nullptr)};
  auto batch = run.start();
  ASSERT_FALSE(batch.empty());
  EXPECT_TRUE(callback_messages(*run.flow, run.st, batch).empty());
}

TEST(CallbackMessages, EachSubscribedEventOfTheBatchForEachSubscribedCallback) {
  Script run{flow_with(json::parse(R"([
    {"url": "http://a.example/hook",
     "events": ["execution.started", "step.completed", "execution.completed"]},
    {"url": "https://b.example/x", "events": ["execution.completed"],
     "secret": {"$secret": "HOOK_KEY"}}])"))};
  auto started = run.start();
  auto m1 = callback_messages(*run.flow, run.st, started);
  // ExecutionStarted is seq 1; StepStarted (seq 2) is no callback event.
  EXPECT_EQ(ids(m1),
            (std::vector<std::string>{"exec-1/1/0 execution.started http://a.example/hook"}));
  EXPECT_EQ(m1[0].payload.at("data").at("input"),
            json::parse(R"({"n":1,"token":"***"})"));  // the marker is redacted
  EXPECT_EQ(m1[0].event_ms, kT0);

  auto done = run.complete(R"({"v":42,"echo":{"$secret":"API"}})");
  auto m2 = callback_messages(*run.flow, run.st, done);
  // StepCompleted (seq 3) then ExecutionCompleted (seq 4), callbacks in flow order.
  EXPECT_EQ(ids(m2), (std::vector<std::string>{
                         "exec-1/3/0 step.completed http://a.example/hook",
                         "exec-1/4/0 execution.completed http://a.example/hook",
                         "exec-1/4/1 execution.completed https://b.example/x",
                     }));
  EXPECT_EQ(m2[0].payload, json({{"id", "exec-1/3/0"},
                                 {"type", "step.completed"},
                                 {"execution_id", "exec-1"},
                                 {"flow_id", "cb"},
                                 {"flow_version", 3},
                                 {"tenant", "acme"},
                                 {"seq", 3},
                                 {"time", "2026-01-05T10:00:00.100Z"},
                                 {"data",
                                  {{"path", "a"},
                                   {"step_id", "a"},
                                   {"attempt", 1},
                                   {"output", {{"v", 42}, {"echo", "***"}}}}}}));
  EXPECT_EQ(m2[1].payload.at("data"), json({{"output", {{"a", {{"v", 42}, {"echo", "***"}}}}}}));
  EXPECT_EQ(m2[2].payload.at("id"), "exec-1/4/1");
  EXPECT_TRUE(m2[0].secret.is_null());
  EXPECT_EQ(m2[2].secret, json({{"$secret", "HOOK_KEY"}}));  // resolved only when sending
}

TEST(CallbackMessages, SameBatchSameMessages) {
  Script run{flow_with(json::parse(R"([{"url": "http://r/", "events": ["step.completed"]}])"))};
  run.start();
  auto batch = run.complete(R"({"v":1})");
  auto first = callback_messages(*run.flow, run.st, batch);
  auto again = callback_messages(*run.flow, run.st, batch);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(first[0].id, again[0].id);
  EXPECT_EQ(first[0].payload.dump(), again[0].payload.dump());
}

TEST(CallbackMessages, StepFailedSaysWhetherItWillBeRetried) {
  Script run{flow_with(json::parse(
      R"([{"url": "http://r/", "events": ["step.failed", "execution.failed"], "secret": "s3"}])"))};
  run.start();
  auto first = callback_messages(*run.flow, run.st, run.fail(1));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].type, "step.failed");
  EXPECT_EQ(first[0].secret, "s3");
  EXPECT_EQ(first[0].payload.at("data"),
            json({{"path", "a"},
                  {"step_id", "a"},
                  {"attempt", 1},
                  {"error", {{"code", "boom"}, {"message", "it broke"}, {"retriable", true}}},
                  {"will_retry", true}}));
  run.fire("a#2");  // the retry timer: attempt 2 starts
  auto last = callback_messages(*run.flow, run.st, run.fail(2));
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last[0].type, "step.failed");
  EXPECT_EQ(last[0].payload.at("data").at("will_retry"), false);
  EXPECT_EQ(last[1].type, "execution.failed");
  EXPECT_EQ(last[1].payload.at("data").at("error").at("code"), "boom");
}

TEST(CallbackMessages, CancelledAndTimedOut) {
  Script run{flow_with(json::parse(
      R"([{"url": "http://r/", "events": ["execution.cancelled", "execution.timed_out"]}])"))};
  run.start();
  v1::Event cancel = make_event(run.st, run.now);
  cancel.mutable_execution_cancelled()->set_reason("operator");
  auto batch = run.feed(std::move(cancel));
  auto ms = callback_messages(*run.flow, run.st, batch);
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].type, "execution.cancelled");
  EXPECT_EQ(ms[0].payload.at("data"), json({{"reason", "operator"}}));

  v1::Event timed_out;
  timed_out.set_seq(9);
  timed_out.mutable_execution_timed_out()->set_timeout_ms(5000);
  EXPECT_EQ(callback_event_type(timed_out), "execution.timed_out");
}

TEST(CallbackMessages, AForkDoesNotReportItsParentsHistoryAgain) {
  Script run{flow_with(
      json::parse(R"([{"url": "http://r/", "events": ["execution.started", "step.completed"]}])"))};
  // A fork's first batch: a copy of events 1..3 of its parent (ExecutionStarted
  // rewritten with the new id), then what it decides next.
  v1::Event started = make_event(run.st, run.now);
  auto& e = *started.mutable_execution_started();
  e.set_execution_id("fork-1");
  e.set_tenant("acme");
  e.set_flow_id("cb");
  e.set_input_json("{}");
  e.set_parent_execution_id("exec-1");
  e.set_forked_at_seq(3);
  std::vector<v1::Event> batch = run.feed(started);
  auto completed = run.complete(R"({"v":7})");
  batch.insert(batch.end(), completed.begin(), completed.end());
  ASSERT_EQ(run.st.forked_at_seq, 3u);
  auto ms = callback_messages(*run.flow, run.st, batch);
  // The fork's own start is reported; the copied StepCompleted (seq 3) is not.
  EXPECT_EQ(ids(ms), (std::vector<std::string>{"fork-1/1/0 execution.started http://r/"}));
  EXPECT_EQ(ms[0].payload.at("data").at("parent_execution_id"), "exec-1");
}

TEST(CallbackMessages, EventsWithoutACallbackType) {
  v1::Event ev;
  ev.mutable_retry_scheduled()->set_path("a");
  EXPECT_EQ(callback_event_type(ev), "");
  ev.mutable_step_started()->set_path("a");
  EXPECT_EQ(callback_event_type(ev), "");
}

TEST(CallbackRetryDelay, DoublesFromTheInitialDelayUpToTheCap) {
  EXPECT_EQ(callback_retry_delay_ms(1), 1000);
  EXPECT_EQ(callback_retry_delay_ms(2), 2000);
  EXPECT_EQ(callback_retry_delay_ms(3), 4000);
  EXPECT_EQ(callback_retry_delay_ms(12), 2048000);
  EXPECT_EQ(callback_retry_delay_ms(13), 3600000);
  EXPECT_EQ(callback_retry_delay_ms(1000), 3600000);
  EXPECT_EQ(callback_retry_delay_ms(3, 50, 150), 150);
}

}  // namespace
}  // namespace yantra
