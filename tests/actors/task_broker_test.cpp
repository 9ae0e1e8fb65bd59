// The task broker (actors/task_broker.hpp) and the worker tool on top of it,
// in process with real threads and short leases: dispatch and completion,
// long polls, leases extended by heartbeats, a lost lease re-dispatched as a
// new attempt (its old id refused with lease_expired) up to the third, then
// worker_lost; joins by idempotency key, the per-tool concurrency limit,
// fairness (tenants apart, tools round-robin), tenant isolation, withdrawn
// calls, shutdown, and WorkerTool's timeout and output check. Every wait is
// bounded (futures with a deadline).
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "actors/task_broker.hpp"
#include "actors/worker_tool.hpp"

namespace yantra {
namespace {

using namespace std::chrono_literals;

TaskRequest request(const std::string& tenant, const std::string& tool, const std::string& key,
                    json params = json::object()) {
  TaskRequest r;
  r.tenant = tenant;
  r.tool_id = tool;
  r.action = "run";
  r.idempotency_key = key;
  r.execution_id = "exe_1";
  r.path = "s";
  r.parameters = std::move(params);
  return r;
}

// A submit's outcome as a future.
struct Call {
  std::shared_ptr<std::promise<TaskOutcome>> p = std::make_shared<std::promise<TaskOutcome>>();
  std::future<TaskOutcome> f = p->get_future();
  uint64_t ticket = 0;
  TaskBroker::Done done() {
    return [p = p](TaskOutcome o) { p->set_value(std::move(o)); };
  }
  bool ready(std::chrono::milliseconds within = 0ms) {
    return f.wait_for(within) == std::future_status::ready;
  }
};

Call submit(TaskBroker& b, TaskRequest r) {
  Call c;
  c.ticket = b.submit(std::move(r), c.done());
  return c;
}

std::optional<DispatchedTask> poll(TaskBroker& b, const std::string& tenant,
                                   const std::string& worker, std::vector<std::string> tools,
                                   int64_t wait_ms = 0) {
  auto p = std::make_shared<std::promise<std::optional<DispatchedTask>>>();
  auto f = p->get_future();
  b.poll(tenant, worker, std::move(tools), wait_ms,
         [p](std::optional<DispatchedTask> t) { p->set_value(std::move(t)); });
  if (f.wait_for(std::chrono::milliseconds(wait_ms) + 5s) != std::future_status::ready) {
    ADD_FAILURE() << "poll not answered";
    return std::nullopt;
  }
  return f.get();
}

TEST(TaskBroker, DispatchesAndCompletes) {
  TaskBroker b;
  Call c = submit(b, request("t1", "text", "k1", {{"x", 1}}));
  EXPECT_EQ(b.queue_depth(), 1u);
  auto t = poll(b, "t1", "w1", {"text"});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->tool_id, "text");
  EXPECT_EQ(t->idempotency_key, "k1");
  EXPECT_EQ(t->parameters, json({{"x", 1}}));
  EXPECT_EQ(t->attempt, 1u);
  EXPECT_EQ(t->lease_ms, 30000);
  EXPECT_EQ(t->task_id.rfind("task_", 0), 0u);
  EXPECT_EQ(b.queue_depth(), 0u);
  EXPECT_EQ(b.worker_status("t1", "w1").in_flight.size(), 1u);
  EXPECT_FALSE(c.ready());
  ASSERT_TRUE(b.complete("t1", t->task_id, {{"y", 2}}).is_ok());
  ASSERT_TRUE(c.ready(1s));
  TaskOutcome o = c.f.get();
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(o.output, json({{"y", 2}}));
  // Done: a second complete is refused, and the worker holds nothing.
  EXPECT_EQ(b.complete("t1", t->task_id, nullptr).code(), "not_found");
  EXPECT_TRUE(b.worker_status("t1", "w1").in_flight.empty());
}

TEST(TaskBroker, FailCarriesTheWorkersCodeAndRetryable) {
  TaskBroker b;
  Call c = submit(b, request("t1", "text", "k1"));
  auto t = poll(b, "t1", "w1", {"text"});
  ASSERT_TRUE(t);
  ASSERT_TRUE(b.fail("t1", t->task_id, "bad_text", "no vowels", false).is_ok());
  ASSERT_TRUE(c.ready(1s));
  TaskOutcome o = c.f.get();
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.code, "bad_text");
  EXPECT_EQ(o.message, "no vowels");
  EXPECT_FALSE(o.retryable);
}

TEST(TaskBroker, LongPollWaitsForATaskAndTimesOutEmpty) {
  TaskBroker b;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(poll(b, "t1", "w1", {"text"}, 150));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 140ms);
  EXPECT_LT(waited, 2s);

  auto p = std::make_shared<std::promise<std::optional<DispatchedTask>>>();
  auto f = p->get_future();
  b.poll("t1", "w1", {"text"}, 5000,
         [p](std::optional<DispatchedTask> t) { p->set_value(std::move(t)); });
  EXPECT_TRUE(b.worker_status("t1", "w1").polling);
  std::this_thread::sleep_for(50ms);
  EXPECT_NE(f.wait_for(0ms), std::future_status::ready);
  Call c = submit(b, request("t1", "text", "k1"));
  ASSERT_EQ(f.wait_for(2s), std::future_status::ready) << "the waiting poll was not answered";
  auto t = f.get();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->idempotency_key, "k1");
  EXPECT_GT(b.worker_status("t1", "w1").last_poll_ms, 0);
}

TEST(TaskBroker, SeveralPollsOfOneWorkerWaitTogether) {
  TaskBroker b;
  std::vector<std::future<std::optional<DispatchedTask>>> polls;
  for (int i = 0; i < 2; ++i) {
    auto p = std::make_shared<std::promise<std::optional<DispatchedTask>>>();
    polls.push_back(p->get_future());
    b.poll("t1", "w1", {"text"}, 10000,
           [p](std::optional<DispatchedTask> t) { p->set_value(std::move(t)); });
  }
  Call other = submit(b, request("t2", "text", "k"));  // another tenant's: not for w1
  EXPECT_NE(polls[0].wait_for(50ms), std::future_status::ready);
  Call c1 = submit(b, request("t1", "text", "k1"));
  Call c2 = submit(b, request("t1", "text", "k2"));
  for (auto& f : polls) {
    ASSERT_EQ(f.wait_for(1s), std::future_status::ready);
    EXPECT_TRUE(f.get());
  }
  // Deregistering answers the waiting polls empty.
  auto p = std::make_shared<std::promise<std::optional<DispatchedTask>>>();
  auto f = p->get_future();
  b.poll("t1", "w1", {"text"}, 10000,
         [p](std::optional<DispatchedTask> t) { p->set_value(std::move(t)); });
  b.forget_worker("t1", "w1");
  ASSERT_EQ(f.wait_for(1s), std::future_status::ready);
  EXPECT_FALSE(f.get());
}

TEST(TaskBroker, HeartbeatsKeepTheLease) {
  BrokerOptions o;
  o.defaults.lease_ms = 200;
  TaskBroker b(o);
  Call c = submit(b, request("t1", "text", "k1"));
  auto t = poll(b, "t1", "w1", {"text"});
  ASSERT_TRUE(t);
  for (int i = 0; i < 8; ++i) {  // 800 ms: four leases' worth
    std::this_thread::sleep_for(100ms);
    auto hb = b.heartbeat("t1", t->task_id);
    ASSERT_TRUE(hb.ok()) << hb.status().to_string();
    EXPECT_EQ(hb.value(), 200);
  }
  EXPECT_FALSE(poll(b, "t1", "w2", {"text"}));  // never re-dispatched
  ASSERT_TRUE(b.complete("t1", t->task_id, "done").is_ok());
  ASSERT_TRUE(c.ready(1s));
  EXPECT_TRUE(c.f.get().ok);
}

TEST(TaskBroker, ALostLeaseIsDispatchedAgainAndTheOldIdRefused) {
  BrokerOptions o;
  o.defaults.lease_ms = 100;
  std::mutex mu;
  std::vector<std::pair<std::string, DispatchedTask>> events;
  o.on_event = [&](const std::string& e, const DispatchedTask& t) {
    std::lock_guard<std::mutex> lock(mu);
    events.emplace_back(e, t);
  };
  TaskBroker b(o);
  Call c = submit(b, request("t1", "text", "k1"));
  auto first = poll(b, "t1", "w1", {"text"});
  ASSERT_TRUE(first);
  // w1 dies; w2 long-polls and gets the task once the lease runs out.
  auto second = poll(b, "t1", "w2", {"text"}, 3000);
  ASSERT_TRUE(second) << "not re-dispatched";
  EXPECT_EQ(second->attempt, 2u);
  EXPECT_NE(second->task_id, first->task_id);
  EXPECT_EQ(second->idempotency_key, "k1");
  EXPECT_EQ(second->worker_id, "w2");
  // The late worker is refused, and does not answer the call.
  EXPECT_EQ(b.complete("t1", first->task_id, "late").code(), "lease_expired");
  EXPECT_EQ(b.heartbeat("t1", first->task_id).status().code(), "lease_expired");
  EXPECT_EQ(b.fail("t1", first->task_id, "x", "y", true).code(), "lease_expired");
  EXPECT_FALSE(c.ready());
  EXPECT_EQ(b.complete("t1", "task_unknown", "x").code(), "not_found");
  ASSERT_TRUE(b.complete("t1", second->task_id, "ok").is_ok());
  ASSERT_TRUE(c.ready(1s));
  EXPECT_EQ(c.f.get().output, "ok");
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].first, "task.lease_lost");
  EXPECT_EQ(events[0].second.worker_id, "w1");
  EXPECT_EQ(events[0].second.attempt, 1u);
}

TEST(TaskBroker, TheThirdLostLeaseFailsTheCallWithWorkerLost) {
  BrokerOptions o;
  o.defaults.lease_ms = 60;
  std::atomic<int> lost{0};
  std::atomic<int> gone{0};
  o.on_event = [&](const std::string& e, const DispatchedTask&) {
    (e == "task.lease_lost" ? lost : gone)++;
  };
  TaskBroker b(o);
  Call c = submit(b, request("t1", "text", "k1"));
  for (uint32_t attempt = 1; attempt <= 3; ++attempt) {
    auto t = poll(b, "t1", "w" + std::to_string(attempt), {"text"}, 3000);
    ASSERT_TRUE(t) << "attempt " << attempt;
    EXPECT_EQ(t->attempt, attempt);
    // ...and never answers.
  }
  ASSERT_TRUE(c.ready(3s)) << "not failed after the third lost lease";
  TaskOutcome out = c.f.get();
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.code, "worker_lost");
  EXPECT_TRUE(out.retryable);
  EXPECT_EQ(lost.load(), 2);
  EXPECT_EQ(gone.load(), 1);
  EXPECT_FALSE(poll(b, "t1", "w4", {"text"}));
  EXPECT_EQ(b.queue_depth(), 0u);
}

TEST(TaskBroker, ASecondTaskWithTheSameKeyJoinsTheOneInFlight) {
  TaskBroker b;
  Call a = submit(b, request("t1", "text", "exe/s/1"));
  Call a2 = submit(b, request("t1", "text", "exe/s/1"));  // queued: joins
  EXPECT_EQ(b.queue_depth(), 1u);
  auto t = poll(b, "t1", "w1", {"text"});
  ASSERT_TRUE(t);
  Call a3 = submit(b, request("t1", "text", "exe/s/1"));  // leased: joins too
  EXPECT_FALSE(poll(b, "t1", "w2", {"text"})) << "dispatched twice";
  Call other = submit(b, request("t2", "text", "exe/s/1"));  // another tenant's key
  EXPECT_EQ(b.queue_depth(), 1u);
  ASSERT_TRUE(b.complete("t1", t->task_id, 7).is_ok());
  for (Call* c : {&a, &a2, &a3}) {
    ASSERT_TRUE(c->ready(1s));
    EXPECT_EQ(c->f.get().output, 7);
  }
  EXPECT_FALSE(other.ready());
  // Once done, the same key makes a new task.
  Call again = submit(b, request("t1", "text", "exe/s/1"));
  EXPECT_TRUE(poll(b, "t1", "w1", {"text"}));
}

TEST(TaskBroker, TheConcurrencyLimitHoldsTasksInTheQueue) {
  TaskBroker b;
  b.set_limits("t1", "text", ToolLimits{2, 30000});
  std::vector<Call> calls;
  for (int i = 0; i < 5; ++i) calls.push_back(submit(b, request("t1", "text", std::to_string(i))));
  auto t1 = poll(b, "t1", "w1", {"text"});
  auto t2 = poll(b, "t1", "w2", {"text"});
  ASSERT_TRUE(t1 && t2);
  EXPECT_FALSE(poll(b, "t1", "w3", {"text"})) << "a third task leased beyond the limit of 2";
  EXPECT_EQ(b.queue_depth("t1", "text"), 3u);
  // A waiting poll gets the next task as soon as a slot frees.
  auto p = std::make_shared<std::promise<std::optional<DispatchedTask>>>();
  auto f = p->get_future();
  b.poll("t1", "w3", {"text"}, 5000,
         [p](std::optional<DispatchedTask> t) { p->set_value(std::move(t)); });
  EXPECT_NE(f.wait_for(50ms), std::future_status::ready);
  ASSERT_TRUE(b.complete("t1", t1->task_id, 1).is_ok());
  ASSERT_EQ(f.wait_for(1s), std::future_status::ready);
  EXPECT_TRUE(f.get());
  // The limit is per tenant: another tenant's tool of the same id is not held.
  Call o = submit(b, request("t2", "text", "x"));
  EXPECT_TRUE(poll(b, "t2", "w9", {"text"}));
}

TEST(TaskBroker, TenantsAreApartAndToolsTakeTurns) {
  TaskBroker b;
  std::vector<Call> calls;
  for (int i = 0; i < 200; ++i)
    calls.push_back(submit(b, request("busy", "text", "b" + std::to_string(i))));
  calls.push_back(submit(b, request("quiet", "text", "q")));
  // The quiet tenant's worker gets its task at once, whatever the backlog.
  auto q = poll(b, "quiet", "wq", {"text"});
  ASSERT_TRUE(q);
  EXPECT_EQ(q->tenant, "quiet");
  // And a busy tenant's worker never sees it, nor completes it.
  EXPECT_EQ(b.complete("busy", q->task_id, 1).code(), "not_found");

  // One worker, two tools: a backlog of x does not starve y.
  for (int i = 0; i < 10; ++i)
    calls.push_back(submit(b, request("t", "x", "x" + std::to_string(i))));
  for (int i = 0; i < 2; ++i)
    calls.push_back(submit(b, request("t", "y", "y" + std::to_string(i))));
  std::vector<std::string> order;
  for (int i = 0; i < 6; ++i) {
    auto t = poll(b, "t", "w", {"x", "y"});
    ASSERT_TRUE(t);
    order.push_back(t->tool_id);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"x", "y", "x", "y", "x", "x"}));
}

TEST(TaskBroker, AWithdrawnQueuedCallIsNotDispatched) {
  TaskBroker b;
  Call c = submit(b, request("t1", "text", "k"));
  EXPECT_TRUE(b.withdraw(c.ticket));
  EXPECT_FALSE(b.withdraw(c.ticket));
  EXPECT_EQ(b.queue_depth(), 0u);
  EXPECT_FALSE(poll(b, "t1", "w", {"text"}));
  EXPECT_FALSE(c.ready());
}

TEST(TaskBroker, ShutdownAnswersCallsAndPolls) {
  TaskBroker b;
  Call c = submit(b, request("t1", "text", "k"));
  auto p = std::make_shared<std::promise<std::optional<DispatchedTask>>>();
  auto f = p->get_future();
  b.poll("t1", "w", {"other"}, 60000,
         [p](std::optional<DispatchedTask> t) { p->set_value(std::move(t)); });
  b.shutdown();
  ASSERT_TRUE(c.ready(1s));
  EXPECT_EQ(c.f.get().code, "node_shutting_down");
  ASSERT_EQ(f.wait_for(1s), std::future_status::ready);
  EXPECT_FALSE(f.get());
  Call late = submit(b, request("t1", "text", "k2"));
  ASSERT_TRUE(late.ready(1s));
  EXPECT_EQ(late.f.get().code, "node_shutting_down");
}

ToolSpec text_spec() {
  ActionSpec upper("upper");
  upper.output_schema = {
      {"type", "object"}, {"properties", {{"text", {{"type", "string"}}}}}, {"required", {"text"}}};
  return ToolSpec("text", {upper});
}

ToolCall call_of(const std::string& key, int64_t timeout_ms = 0) {
  ToolCall c;
  c.tenant = "t1";
  c.execution_id = "exe_1";
  c.path = "s";
  c.action = "upper";
  c.idempotency_key = key;
  c.parameters = {{"text", "hi"}};
  c.timeout_ms = timeout_ms;
  return c;
}

TEST(WorkerTool, InvokeWaitsForAWorkerAndChecksItsOutput) {
  auto b = std::make_shared<TaskBroker>();
  WorkerTool tool(b, text_spec(), 4);
  EXPECT_EQ(tool.spec().kind, "worker");
  EXPECT_EQ(tool.max_concurrency(), 4u);
  auto served = std::async(std::launch::async, [&] {
    for (int i = 0; i < 2; ++i) {
      auto t = poll(*b, "t1", "w", {"text"}, 3000);
      if (!t) return;
      const std::string text = t->parameters.value("text", "");
      // The first answers right, the second breaks the output schema.
      (void)b->complete("t1", t->task_id, i == 0 ? json{{"text", "HI"}} : json{{"txt", 1}});
    }
  });
  ToolResult ok = tool.invoke(call_of("k1", 5000));
  EXPECT_TRUE(ok.ok) << ok.code << ": " << ok.message;
  EXPECT_EQ(ok.output, json({{"text", "HI"}}));
  ToolResult bad = tool.invoke(call_of("k2", 5000));
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.code, "invalid_output");
  EXPECT_FALSE(bad.retriable);
  served.wait();
}

TEST(WorkerTool, TimesOutAndWithdrawsTheTask) {
  auto b = std::make_shared<TaskBroker>();
  WorkerTool tool(b, text_spec(), 1);
  const auto t0 = std::chrono::steady_clock::now();
  ToolResult r = tool.invoke(call_of("k1", 150));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.code, "timeout");
  EXPECT_EQ(b->queue_depth(), 0u);
}

TEST(WorkerTool, ARetiredToolStopsWaiting) {
  auto b = std::make_shared<TaskBroker>();
  auto tool = std::make_shared<WorkerTool>(b, text_spec(), 1);
  auto r = std::async(std::launch::async, [&] { return tool->invoke(call_of("k1")); });
  EXPECT_NE(r.wait_for(150ms), std::future_status::ready);
  tool->retire();
  ASSERT_EQ(r.wait_for(2s), std::future_status::ready);
  EXPECT_EQ(r.get().code, "tool_replaced");
}

TEST(WorkerTool, AWorkerFailureIsTheCallsFailure) {
  auto b = std::make_shared<TaskBroker>();
  WorkerTool tool(b, text_spec(), 1);
  auto served = std::async(std::launch::async, [&] {
    auto t = poll(*b, "t1", "w", {"text"}, 3000);
    if (t) (void)b->fail("t1", t->task_id, "too_long", "text too long", false);
  });
  ToolResult r = tool.invoke(call_of("k1", 5000));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.code, "too_long");
  EXPECT_EQ(r.message, "text too long");
  EXPECT_FALSE(r.retriable);
  served.wait();
}

}  // namespace
}  // namespace yantra
