// decide()/apply() as a table of "given these events, expect these events and
// commands". A small Harness plays the engine without actors: it owns the
// flow, the live ExecutionState and the append-only log, feeds input events
// (start, tool results, timer firings, cancel) through advance(), and
// renders every batch and command list as short strings (the Harness lives
// in driver.hpp, shared with the time machine tests) so each expectation
// states the exact events (kinds, paths, attempts, resolved inputs, due
// times, outputs) in order. Rejections are checked through Harness::Try,
// which also verifies that a rejected event leaves the state byte-identical.
// Time is explicit: every input is fed at a given `now`, so due times are
// exact numbers.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "runtime/backoff.hpp"
#include "runtime/execution.hpp"
#include "runtime/flow.hpp"
#include "tests/runtime/driver.hpp"

namespace yantra {
namespace {

using namespace test;  // NOLINT: the shared harness

// The example of the documentation: an action with refs, an expression,
// a deadline and retries, a condition, and an error handler.
const char* kOrders = R"({"id":"orders","steps":[
  {"id":"get","type":"action","config":{"tool_id":"core","action":"echo",
    "parameters":{"x":{"$ref":"input.a"},"t":{"$expr":"input.n * 2"}},"timeout_ms":5000},
   "retry_config":{"max_attempts":3,"backoff_type":"exponential","initial_delay_ms":100,
                   "max_delay_ms":2000},
   "on_success":"check","on_failure":"alert"},
  {"id":"check","type":"condition","config":{
    "condition":{"operator":">","left":{"$ref":"get.t"},"right":100},
    "on_true":"vip","on_false":"basic"}},
  {"id":"vip","type":"action","config":{"tool_id":"core","action":"vip",
    "parameters":{"who":{"$ref":"get.x"}}}},
  {"id":"basic","type":"action","config":{"tool_id":"core","action":"basic",
    "parameters":{"t":{"$ref":"get.t"}}}},
  {"id":"alert","type":"action","config":{"tool_id":"core","action":"alert",
    "parameters":{"code":{"$ref":"get.error.code"},"msg":{"$ref":"get.error.message"}}}}],
 "output":{"total":{"$ref":"get.t"}},
 "config":{"timeout_ms":300000,"on_error":"fail"}})";

// ---------------------------------------------------------------- first decision

TEST(DecideStart, FirstStepStartsWithResolvedParametersAndCommands) {
  Harness h(kOrders);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(
      h.Start({{"a", "A"}, {"n", 60}}, 1000),
      (Strings{"ExecutionStarted", R"(StepStarted get#1 action {"t":120,"x":"A"} due=6000)"}));
  const auto& batch = h.last_batch();
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].seq(), 1u);
  EXPECT_EQ(batch[1].seq(), 2u);
  EXPECT_EQ(batch[1].time_ms(), 1000);
  const auto& ss = batch[1].step_started();
  EXPECT_EQ(ss.step_id(), "get");
  EXPECT_EQ(ss.frame(), "");
  EXPECT_EQ(ss.max_attempts(), 3u);
  EXPECT_EQ(h.Commands(),
            (Strings{R"(invoke get#1 core.echo {"t":120,"x":"A"} key=exec-1/get/1 timeout=5000)",
                     "timer #timeout due=301000", "timer get#1 due=6000"}));
  EXPECT_EQ(h.st().running, (std::set<std::string>{"get"}));
  EXPECT_EQ(h.st().display_status(), "running");
  EXPECT_EQ(h.st().last_seq, 2u);
}

TEST(DecideStart, SettledStateRepeatsTheSameCommands) {
  Harness h(kOrders);
  ASSERT_TRUE(h.ok());
  h.Start({{"a", "A"}, {"n", 60}}, 1000);
  // decide() on a settled state: no events, the same commands, whatever now.
  Decision d1 = decide(h.flow(), h.st(), 1000);
  Decision d2 = decide(h.flow(), h.st(), 99999);
  EXPECT_TRUE(d1.events.empty());
  EXPECT_EQ(d1.commands, h.commands());
  EXPECT_EQ(d2.commands, h.commands());
}

TEST(DecideStart, StepWithoutDeadlineHasNoTimer) {
  Harness h(R"({"id":"f","steps":[{"id":"a","type":"action",
      "config":{"tool_id":"t","action":"go","parameters":{"k":[1,{"$ref":"input.v"}]}}}]})");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start({{"v", true}}, 50),
            (Strings{"ExecutionStarted", R"(StepStarted a#1 action {"k":[1,true]})"}));
  EXPECT_EQ(h.Commands(), (Strings{R"(invoke a#1 t.go {"k":[1,true]} key=exec-1/a/1 timeout=0)"}));
  EXPECT_TRUE(h.st().timers.empty());
}

TEST(DecideStart, FailingParameterExpressionFailsTheStep) {
  Harness h(R"({"id":"f","steps":[{"id":"a","type":"action",
      "config":{"tool_id":"t","action":"go","parameters":{"k":{"$expr":"input.v / 0"}}}}]})");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start({{"v", 1}}, 50),
            (Strings{"ExecutionStarted", "StepStarted a#1 action null",
                     "StepFailed a#1 invalid_parameters", "ExecutionFailed invalid_parameters"}));
  EXPECT_EQ(h.st().status, ExecStatus::kFailed);
  EXPECT_TRUE(h.commands().empty());
}

// ---------------------------------------------------------------- chaining and output

TEST(DecideChain, OnSuccessChainsThroughConditionToTheEndWithOutputMapping) {
  Harness h(kOrders);
  ASSERT_TRUE(h.ok());
  h.Start({{"a", "A"}, {"n", 60}}, 1000);
  EXPECT_EQ(h.Complete("get", 1, {{"t", 120}, {"x", "A"}}, 1500),
            (Strings{R"(StepCompleted get#1 {"t":120,"x":"A"})",
                     R"(StepStarted check#1 condition {"left":120,"operator":">","right":100})",
                     "BranchTaken check true -> vip", R"(StepStarted vip#1 action {"who":"A"})"}));
  EXPECT_EQ(h.Commands(),
            (Strings{R"(invoke vip#1 core.vip {"who":"A"} key=exec-1/vip/1 timeout=0)",
                     "timer #timeout due=301000"}));
  EXPECT_EQ(h.st().steps.at("check").next, "vip");
  EXPECT_EQ(h.Complete("vip", 1, {{"ok", true}}, 1600),
            (Strings{R"(StepCompleted vip#1 {"ok":true})", R"(ExecutionCompleted {"total":120})"}));
  EXPECT_EQ(h.st().status, ExecStatus::kCompleted);
  EXPECT_EQ(h.st().output, (json{{"total", 120}}));
  EXPECT_EQ(h.st().ended_ms, 1600);
  EXPECT_TRUE(h.st().timers.empty());
  EXPECT_TRUE(h.commands().empty());
  EXPECT_EQ(h.st().display_status(), "completed");
}

TEST(DecideChain, FalseBranchTakesOnFalse) {
  Harness h(kOrders);
  ASSERT_TRUE(h.ok());
  h.Start({{"a", "A"}, {"n", 10}}, 1000);
  EXPECT_EQ(
      h.Complete("get", 1, {{"t", 20}, {"x", "A"}}, 1100),
      (Strings{R"(StepCompleted get#1 {"t":20,"x":"A"})",
               R"(StepStarted check#1 condition {"left":20,"operator":">","right":100})",
               "BranchTaken check false -> basic", R"(StepStarted basic#1 action {"t":20})"}));
}

TEST(DecideChain, WithoutOutputMappingTheLastStepOutputIsTheResult) {
  Harness h(R"({"id":"f","steps":[
      {"id":"a","type":"action","config":{"tool_id":"t","action":"x"},"on_success":"b"},
      {"id":"b","type":"action","config":{"tool_id":"t","action":"y",
        "parameters":{"from_a":{"$ref":"a.v"}}}}]})");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start(json::object(), 10),
            (Strings{"ExecutionStarted", "StepStarted a#1 action {}"}));
  EXPECT_EQ(h.Complete("a", 1, {{"v", 7}}, 20),
            (Strings{R"(StepCompleted a#1 {"v":7})", R"(StepStarted b#1 action {"from_a":7})"}));
  EXPECT_EQ(h.Complete("b", 1,
                       {{"w",
                         [] {
                           return json::array({1, 2});
                         }()}},
                       30),
            (Strings{R"(StepCompleted b#1 {"w":[1,2]})", R"(ExecutionCompleted {"w":[1,2]})"}));
  EXPECT_EQ(h.st().output, json::parse(R"({"w":[1,2]})"));
}

// ---------------------------------------------------------------- conditions

const char* kExprCondition = R"({"id":"c","steps":[
  {"id":"check","type":"condition","config":{"condition":{"$expr":"input.n > 3"},
    "on_true":"big","on_false":"small"}},
  {"id":"big","type":"action","config":{"tool_id":"t","action":"big"}},
  {"id":"small","type":"action","config":{"tool_id":"t","action":"small"}}]})";

TEST(DecideCondition, ExpressionFormTakesOnTrue) {
  Harness h(kExprCondition);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start({{"n", 5}}, 1),
            (Strings{"ExecutionStarted",
                     R"(StepStarted check#1 condition {"expr":"input.n > 3","value":true})",
                     "BranchTaken check true -> big", "StepStarted big#1 action {}"}));
  EXPECT_EQ(h.st().steps.at("check").output, (json{{"result", true}}));
}

TEST(DecideCondition, ExpressionFormTakesOnFalse) {
  Harness h(kExprCondition);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start({{"n", 3}}, 1),
            (Strings{"ExecutionStarted",
                     R"(StepStarted check#1 condition {"expr":"input.n > 3","value":false})",
                     "BranchTaken check false -> small", "StepStarted small#1 action {}"}));
}

TEST(DecideCondition, MissingBranchFallsBackToOnSuccessThenEndsTheFrame) {
  const char* flow = R"({"id":"c","steps":[
    {"id":"check","type":"condition","config":{"condition":{"$expr":"input.n"},"on_true":"yes"},
     "on_success":"after"},
    {"id":"yes","type":"action","config":{"tool_id":"t","action":"yes"}},
    {"id":"after","type":"action","config":{"tool_id":"t","action":"after"}}]})";
  Harness h(flow);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(
      h.Start({{"n", 0}}, 1),
      (Strings{"ExecutionStarted", R"(StepStarted check#1 condition {"expr":"input.n","value":0})",
               "BranchTaken check false -> after", "StepStarted after#1 action {}"}));
  // No on_true/on_false/on_success for the taken branch: the frame ends.
  Harness h2(R"({"id":"c","steps":[
    {"id":"check","type":"condition","config":{"condition":{"$expr":"input.n"},"on_true":"yes"}},
    {"id":"yes","type":"action","config":{"tool_id":"t","action":"yes"}}]})");
  ASSERT_TRUE(h2.ok());
  EXPECT_EQ(
      h2.Start({{"n", ""}}, 1),
      (Strings{"ExecutionStarted", R"(StepStarted check#1 condition {"expr":"input.n","value":""})",
               "BranchTaken check false -> ", R"(ExecutionCompleted {"result":false})"}));
}

TEST(DecideCondition, ExpressionErrorFailsTheStep) {
  Harness h(R"({"id":"c","steps":[
    {"id":"check","type":"condition","config":{"condition":{"$expr":"input.s * 2"},
      "on_true":"a"}},
    {"id":"a","type":"action","config":{"tool_id":"t","action":"a"}}]})");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start({{"s", "text"}}, 1),
            (Strings{"ExecutionStarted", "StepStarted check#1 condition null",
                     "StepFailed check#1 expression_error", "ExecutionFailed expression_error"}));
  EXPECT_EQ(h.st().error.value("code", ""), "expression_error");
  EXPECT_EQ(h.st().steps.at("check").status, StepStatus::kFailed);
}

TEST(DecideCondition, OperatorErrorFailsTheStepAndRunsOnFailure) {
  Harness h(R"({"id":"c","steps":[
    {"id":"check","type":"condition","config":{
      "condition":{"operator":">","left":{"$ref":"input.s"},"right":1},"on_true":"a"},
     "on_failure":"handle"},
    {"id":"a","type":"action","config":{"tool_id":"t","action":"a"}},
    {"id":"handle","type":"action","config":{"tool_id":"t","action":"h",
      "parameters":{"code":{"$ref":"check.error.code"}}}}]})");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start({{"s", "text"}}, 1),
            (Strings{"ExecutionStarted",
                     R"(StepStarted check#1 condition {"left":"text","operator":">","right":1})",
                     "StepFailed check#1 expression_error",
                     R"(StepStarted handle#1 action {"code":"expression_error"})"}));
}

// ---------------------------------------------------------------- retries

const char* kRetry = R"({"id":"r","steps":[
  {"id":"get","type":"action","config":{"tool_id":"core","action":"echo",
    "parameters":{"n":{"$ref":"input.n"}}},
   "retry_config":{"max_attempts":3,"backoff_type":"exponential","initial_delay_ms":100,
                   "max_delay_ms":150},
   "on_success":"done","on_failure":"alert"},
  {"id":"done","type":"action","config":{"tool_id":"core","action":"done"}},
  {"id":"alert","type":"action","config":{"tool_id":"core","action":"alert",
    "parameters":{"code":{"$ref":"get.error.code"}}}}]})";

TEST(DecideRetry, RetriableFailuresBackOffExponentiallyThenRunOnFailure) {
  Harness h(kRetry);
  ASSERT_TRUE(h.ok());
  h.Start({{"n", 1}}, 1000);
  EXPECT_EQ(h.Fail("get", 1, "unavailable", true, 2000),
            (Strings{"StepFailed get#1 unavailable retriable", "RetryScheduled get#2 due=2100"}));
  EXPECT_EQ(h.Commands(), (Strings{"timer get#2 due=2100"}));
  EXPECT_EQ(h.st().steps.at("get").status, StepStatus::kRetryWaiting);
  EXPECT_TRUE(h.st().running.empty());
  EXPECT_EQ(h.st().display_status(), "waiting");

  EXPECT_EQ(h.Fire("get#2", 2100),
            (Strings{"TimerFired get#2", R"(StepStarted get#2 action {"n":1})"}));
  EXPECT_EQ(h.Commands(),
            (Strings{R"(invoke get#2 core.echo {"n":1} key=exec-1/get/2 timeout=0)"}));
  EXPECT_EQ(h.st().display_status(), "running");
  EXPECT_EQ(h.st().steps.at("get").first_started_ms, 1000);
  EXPECT_EQ(h.st().steps.at("get").started_ms, 2100);

  // 100 * 2 = 200, capped by max_delay_ms 150.
  EXPECT_EQ(h.Fail("get", 2, "unavailable", true, 2200),
            (Strings{"StepFailed get#2 unavailable retriable", "RetryScheduled get#3 due=2350"}));
  EXPECT_EQ(h.Fire("get#3", 2350),
            (Strings{"TimerFired get#3", R"(StepStarted get#3 action {"n":1})"}));
  EXPECT_EQ(h.Commands(),
            (Strings{R"(invoke get#3 core.echo {"n":1} key=exec-1/get/3 timeout=0)"}));
  // Attempts exhausted: on_failure runs with get.error in scope.
  EXPECT_EQ(h.Fail("get", 3, "unavailable", true, 2400),
            (Strings{"StepFailed get#3 unavailable retriable",
                     R"(StepStarted alert#1 action {"code":"unavailable"})"}));
  EXPECT_EQ(h.st().steps.at("get").status, StepStatus::kFailed);
  EXPECT_EQ(h.st().steps.at("get").error,
            json::parse(R"({"code":"unavailable","message":"unavailable happened",
                            "retriable":true})"));
  EXPECT_EQ(
      h.Complete("alert", 1, {{"sent", true}}, 2500),
      (Strings{R"(StepCompleted alert#1 {"sent":true})", R"(ExecutionCompleted {"sent":true})"}));
}

TEST(DecideRetry, SuccessAfterRetryContinuesOnSuccess) {
  Harness h(kRetry);
  ASSERT_TRUE(h.ok());
  h.Start({{"n", 1}}, 1000);
  h.Fail("get", 1, "unavailable", true, 1000);
  h.Fire("get#2", 1100);
  EXPECT_EQ(h.Complete("get", 2, {{"n", 1}}, 1200),
            (Strings{R"(StepCompleted get#2 {"n":1})", "StepStarted done#1 action {}"}));
  EXPECT_EQ(h.st().steps.at("get").attempt, 2u);
}

TEST(DecideRetry, NonRetriableFailureIsNotRetried) {
  Harness h(kRetry);
  ASSERT_TRUE(h.ok());
  h.Start({{"n", 1}}, 1000);
  EXPECT_EQ(h.Fail("get", 1, "bad_request", false, 1010),
            (Strings{"StepFailed get#1 bad_request",
                     R"(StepStarted alert#1 action {"code":"bad_request"})"}));
  EXPECT_EQ(h.st().steps.at("get").attempt, 1u);
}

TEST(DecideRetry, FixedBackoffUsesTheInitialDelayEveryTime) {
  Harness h(R"({"id":"r","steps":[{"id":"a","type":"action","config":{"tool_id":"t","action":"a"},
      "retry_config":{"max_attempts":3,"backoff_type":"fixed","initial_delay_ms":250}}]})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 0);
  EXPECT_EQ(h.Fail("a", 1, "x", true, 10),
            (Strings{"StepFailed a#1 x retriable", "RetryScheduled a#2 due=260"}));
  h.Fire("a#2", 260);
  EXPECT_EQ(h.Fail("a", 2, "x", true, 300),
            (Strings{"StepFailed a#2 x retriable", "RetryScheduled a#3 due=550"}));
  h.Fire("a#3", 550);
  // Exhausted, no on_failure, on_error fail (default): the execution fails with the step error.
  EXPECT_EQ(h.Fail("a", 3, "x", true, 600),
            (Strings{"StepFailed a#3 x retriable", "ExecutionFailed x"}));
  EXPECT_EQ(h.st().error, json::parse(R"({"code":"x","message":"x happened","retriable":false})"));
  EXPECT_EQ(h.st().status, ExecStatus::kFailed);
}

TEST(DecideRetry, RetryDelayValues) {
  RetryPolicy fixed;
  fixed.backoff = Backoff::kFixed;
  fixed.initial_delay_ms = 250;
  fixed.max_delay_ms = 1000;
  for (uint32_t attempt : {1u, 2u, 5u, 50u}) EXPECT_EQ(retry_delay_ms(fixed, attempt), 250);
  fixed.max_delay_ms = 100;
  EXPECT_EQ(retry_delay_ms(fixed, 1), 100);

  RetryPolicy exp;
  exp.backoff = Backoff::kExponential;
  exp.initial_delay_ms = 100;
  exp.max_delay_ms = 2000;
  std::vector<int64_t> got;
  for (uint32_t a = 1; a <= 7; ++a) got.push_back(retry_delay_ms(exp, a));
  EXPECT_EQ(got, (std::vector<int64_t>{100, 200, 400, 800, 1600, 2000, 2000}));
  EXPECT_EQ(retry_delay_ms(exp, 4000000000u), 2000);
  exp.multiplier = 3.0;
  EXPECT_EQ(retry_delay_ms(exp, 3), 900);
  EXPECT_EQ(retry_delay_ms(exp, 4), 2000);
}

TEST(DecideRetry, OnErrorContinueFollowsOnSuccess) {
  Harness h(R"({"id":"f","steps":[
      {"id":"a","type":"action","config":{"tool_id":"t","action":"a"},"on_success":"b"},
      {"id":"b","type":"action","config":{"tool_id":"t","action":"b",
        "parameters":{"prev":{"$ref":"a.error.code"}}}}],
    "config":{"on_error":"continue"}})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 0);
  EXPECT_EQ(h.Fail("a", 1, "boom", false, 5),
            (Strings{"StepFailed a#1 boom", R"(StepStarted b#1 action {"prev":"boom"})"}));
  // The last step fails too: the frame ends with the error as its value.
  EXPECT_EQ(
      h.Fail("b", 1, "bang", false, 6),
      (Strings{
          "StepFailed b#1 bang",
          R"(ExecutionCompleted {"error":{"code":"bang","message":"bang happened","retriable":false}})"}));
  EXPECT_EQ(h.st().status, ExecStatus::kCompleted);
}

// ---------------------------------------------------------------- step timeouts

const char* kSlow = R"({"id":"s","steps":[
  {"id":"get","type":"action","config":{"tool_id":"t","action":"slow","timeout_ms":5000},
   "retry_config":{"max_attempts":2,"backoff_type":"fixed","initial_delay_ms":100},
   "on_success":"next"},
  {"id":"next","type":"action","config":{"tool_id":"t","action":"next"}}]})";

TEST(DecideTimeout, DeadlineFailsTheAttemptAndLateResultsAreRejected) {
  Harness h(kSlow);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start(json::object(), 1000),
            (Strings{"ExecutionStarted", "StepStarted get#1 action {} due=6000"}));
  EXPECT_EQ(h.Commands(), (Strings{"invoke get#1 t.slow {} key=exec-1/get/1 timeout=5000",
                                   "timer get#1 due=6000"}));
  EXPECT_EQ(h.Fire("get#1", 6000), (Strings{"TimerFired get#1", "RetryScheduled get#2 due=6100"}));
  EXPECT_EQ(h.st().steps.at("get").error,
            json::parse(R"({"code":"timeout","message":"step timed out after 5000 ms",
                            "retriable":true})"));
  EXPECT_TRUE(h.st().running.empty());
  EXPECT_EQ(h.Commands(), (Strings{"timer get#2 due=6100"}));

  // The tool answers attempt 1 after its deadline: no longer in flight.
  EXPECT_EQ(h.Reject(h.CompletedEvent("get", 1, {{"late", true}}, 6050), 6050), "invalid_event");
  EXPECT_EQ(h.Reject(h.FailedEvent("get", 1, "late", true, 6050), 6050), "invalid_event");

  EXPECT_EQ(h.Fire("get#2", 6100),
            (Strings{"TimerFired get#2", "StepStarted get#2 action {} due=11100"}));
  EXPECT_EQ(h.Commands(), (Strings{"invoke get#2 t.slow {} key=exec-1/get/2 timeout=5000",
                                   "timer get#2 due=11100"}));
  EXPECT_EQ(h.Reject(h.CompletedEvent("get", 1, {{"late", true}}, 6200), 6200), "invalid_event");
  // The second deadline exhausts the attempts.
  EXPECT_EQ(h.Fire("get#2", 11100), (Strings{"TimerFired get#2", "ExecutionFailed timeout"}));
  EXPECT_EQ(h.st().status, ExecStatus::kFailed);
}

TEST(DecideTimeout, DuplicateResultOfACompletedAttemptIsRejected) {
  Harness h(kSlow);
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 1000);
  EXPECT_EQ(h.Complete("get", 1, {{"v", 1}}, 1100),
            (Strings{R"(StepCompleted get#1 {"v":1})", "StepStarted next#1 action {}"}));
  EXPECT_EQ(h.Reject(h.CompletedEvent("get", 1, {{"v", 2}}, 1200), 1200), "invalid_event");
  EXPECT_EQ(h.Reject(h.FailedEvent("get", 1, "late", true, 1200), 1200), "invalid_event");
  EXPECT_EQ(h.st().steps.at("get").output, (json{{"v", 1}}));
  // A timer that was cancelled by the result cannot fire any more.
  EXPECT_EQ(h.Reject(
                [&] {
                  v1::Event ev = make_event(h.st(), 7000);
                  ev.mutable_timer_fired()->set_timer_id("get#1");
                  return ev;
                }(),
                7000),
            "invalid_event");
}

// ---------------------------------------------------------------- loops

const char* kLoop = R"({"id":"l","steps":[
  {"id":"each","type":"loop","config":{"items":{"$ref":"input.list"},%PARALLEL%
    "steps":[{"id":"inner","type":"action","config":{"tool_id":"t","action":"echo",
      "parameters":{"x":{"$ref":"item.x"},"i":{"$ref":"index"},"a":{"$ref":"input.a"}}}}]}}]})";

std::string LoopFlow(const std::string& extra) {
  std::string f = kLoop;
  f.replace(f.find("%PARALLEL%"), 10, extra);
  return f;
}

TEST(DecideLoop, SequentialIterationsRunOneAfterAnother) {
  Harness h(LoopFlow(""));
  ASSERT_TRUE(h.ok());
  json input = json::parse(R"({"a":"A","list":[{"x":10},{"x":20}]})");
  EXPECT_EQ(h.Start(input, 1),
            (Strings{"ExecutionStarted", R"(StepStarted each#1 loop [{"x":10},{"x":20}])",
                     R"(StepStarted each[0]/inner#1 action {"a":"A","i":0,"x":10} @each[0])"}));
  const auto& first = h.last_batch()[2].step_started();
  EXPECT_EQ(first.frame_parent(), "each");
  EXPECT_EQ(first.frame_index(), 0);
  EXPECT_FALSE(first.frame_detached());
  EXPECT_EQ(
      h.Commands(),
      (Strings{
          R"(invoke each[0]/inner#1 t.echo {"a":"A","i":0,"x":10} key=exec-1/each[0]/inner/1 timeout=0)"}));
  EXPECT_EQ(h.Complete("each[0]/inner", 1, {{"r", 1}}, 2),
            (Strings{R"(StepCompleted each[0]/inner#1 {"r":1})", R"(FrameEnded each[0] ok {"r":1})",
                     R"(StepStarted each[1]/inner#1 action {"a":"A","i":1,"x":20} @each[1])"}));
  EXPECT_EQ(h.Complete("each[1]/inner", 1, {{"r", 2}}, 3),
            (Strings{R"(StepCompleted each[1]/inner#1 {"r":2})", R"(FrameEnded each[1] ok {"r":2})",
                     R"(StepCompleted each#1 [{"r":1},{"r":2}])",
                     R"(ExecutionCompleted [{"r":1},{"r":2}])"}));
  // Completed iterations live on only in the loop's results: their frames
  // and step instances are pruned so the state does not grow with the loop.
  EXPECT_TRUE(h.st().steps.at("each").children.empty());
  EXPECT_EQ(h.st().steps.count("each[0]/inner"), 0u);
  EXPECT_EQ(h.st().frames.count("each[1]"), 0u);
  EXPECT_EQ(h.st().steps.at("each").results, json::parse(R"([{"r":1},{"r":2}])"));
}

TEST(DecideLoop, ParallelIterationsStartTogetherAndKeepIndexOrder) {
  Harness h(LoopFlow(R"("parallel":true,)"));
  ASSERT_TRUE(h.ok());
  json input = json::parse(R"({"a":"A","list":[{"x":1},{"x":2},{"x":3}]})");
  EXPECT_EQ(h.Start(input, 1),
            (Strings{"ExecutionStarted", R"(StepStarted each#1 loop [{"x":1},{"x":2},{"x":3}])",
                     R"(StepStarted each[0]/inner#1 action {"a":"A","i":0,"x":1} @each[0])",
                     R"(StepStarted each[1]/inner#1 action {"a":"A","i":1,"x":2} @each[1])",
                     R"(StepStarted each[2]/inner#1 action {"a":"A","i":2,"x":3} @each[2])"}));
  EXPECT_EQ(h.commands().size(), 3u);
  EXPECT_EQ(h.Complete("each[2]/inner", 1, "c", 2),
            (Strings{R"(StepCompleted each[2]/inner#1 "c")", R"(FrameEnded each[2] ok "c")"}));
  EXPECT_EQ(h.Complete("each[0]/inner", 1, "a", 3),
            (Strings{R"(StepCompleted each[0]/inner#1 "a")", R"(FrameEnded each[0] ok "a")"}));
  EXPECT_EQ(
      h.Complete("each[1]/inner", 1, "b", 4),
      (Strings{R"(StepCompleted each[1]/inner#1 "b")", R"(FrameEnded each[1] ok "b")",
               R"(StepCompleted each#1 ["a","b","c"])", R"(ExecutionCompleted ["a","b","c"])"}));
}

TEST(DecideLoop, MaxConcurrencyBoundsParallelIterations) {
  Harness h(LoopFlow(R"("parallel":true,"max_concurrency":2,)"));
  ASSERT_TRUE(h.ok());
  json input = json::parse(R"({"a":"A","list":[{"x":1},{"x":2},{"x":3}]})");
  EXPECT_EQ(h.Start(input, 1),
            (Strings{"ExecutionStarted", R"(StepStarted each#1 loop [{"x":1},{"x":2},{"x":3}])",
                     R"(StepStarted each[0]/inner#1 action {"a":"A","i":0,"x":1} @each[0])",
                     R"(StepStarted each[1]/inner#1 action {"a":"A","i":1,"x":2} @each[1])"}));
  EXPECT_EQ(h.st().running, (std::set<std::string>{"each[0]/inner", "each[1]/inner"}));
  EXPECT_EQ(h.Complete("each[1]/inner", 1, 2, 2),
            (Strings{"StepCompleted each[1]/inner#1 2", "FrameEnded each[1] ok 2",
                     R"(StepStarted each[2]/inner#1 action {"a":"A","i":2,"x":3} @each[2])"}));
  EXPECT_EQ(h.Complete("each[2]/inner", 1, 3, 3),
            (Strings{"StepCompleted each[2]/inner#1 3", "FrameEnded each[2] ok 3"}));
  EXPECT_EQ(h.Complete("each[0]/inner", 1, 1, 4),
            (Strings{"StepCompleted each[0]/inner#1 1", "FrameEnded each[0] ok 1",
                     "StepCompleted each#1 [1,2,3]", "ExecutionCompleted [1,2,3]"}));
}

TEST(DecideLoop, EmptyItemsCompleteWithEmptyArray) {
  Harness h(LoopFlow(""));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start(json::parse(R"({"list":[]})"), 1),
            (Strings{"ExecutionStarted", "StepStarted each#1 loop []", "StepCompleted each#1 []",
                     "ExecutionCompleted []"}));
}

TEST(DecideLoop, NonArrayItemsFailInvalidItems) {
  Harness h(LoopFlow(""));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start(json::parse(R"({"list":{"x":1}})"), 1),
            (Strings{"ExecutionStarted", "StepStarted each#1 loop null",
                     "StepFailed each#1 invalid_items", "ExecutionFailed invalid_items"}));
}

TEST(DecideLoop, TooManyItemsFailTooManyIterations) {
  Harness h(LoopFlow(R"("max_iterations":2,)"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(
      h.Start(json::parse(R"({"list":[1,2,3]})"), 1),
      (Strings{"ExecutionStarted", "StepStarted each#1 loop null",
               "StepFailed each#1 too_many_iterations", "ExecutionFailed too_many_iterations"}));
}

TEST(DecideLoop, FailingIterationFailsTheLoop) {
  Harness h(LoopFlow(""));
  ASSERT_TRUE(h.ok());
  h.Start(json::parse(R"({"list":[{"x":1},{"x":2}]})"), 1);
  EXPECT_EQ(h.Fail("each[0]/inner", 1, "boom", false, 2),
            (Strings{"StepFailed each[0]/inner#1 boom", "FrameEnded each[0] failed boom",
                     "StepFailed each#1 iteration_failed", "ExecutionFailed iteration_failed"}));
  const json& err = h.st().steps.at("each").error;
  EXPECT_EQ(err.value("code", ""), "iteration_failed");
  EXPECT_EQ(err["details"].value("frame", ""), "each[0]");
  EXPECT_EQ(err["details"].value("code", ""), "boom");
}

TEST(DecideLoop, FailedParallelLoopAbandonsTheOtherIterations) {
  Harness h(R"({"id":"l","steps":[
    {"id":"each","type":"loop","config":{"items":[1,2,3],"parallel":true,
      "steps":[{"id":"inner","type":"action","config":{"tool_id":"t","action":"a",
        "parameters":{"v":{"$ref":"item"}}}}]},
     "on_failure":"recover"},
    {"id":"recover","type":"action","config":{"tool_id":"t","action":"r",
      "parameters":{"why":{"$ref":"each.error.code"}}}}]})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 1);
  EXPECT_EQ(h.Complete("each[2]/inner", 1, "ok", 2),
            (Strings{R"(StepCompleted each[2]/inner#1 "ok")", R"(FrameEnded each[2] ok "ok")"}));
  EXPECT_EQ(h.Fail("each[1]/inner", 1, "boom", false, 3),
            (Strings{"StepFailed each[1]/inner#1 boom", "FrameEnded each[1] failed boom",
                     "StepFailed each#1 iteration_failed",
                     R"(StepStarted recover#1 action {"why":"iteration_failed"})"}));
  EXPECT_EQ(h.st().running, (std::set<std::string>{"recover"}));
  EXPECT_EQ(h.st().frames.at("each[0]").status, FrameStatus::kAbandoned);
  EXPECT_EQ(h.st().active_frames, (std::set<std::string>{""}));
  EXPECT_EQ(
      h.Commands(),
      (Strings{
          R"(invoke recover#1 t.r {"why":"iteration_failed"} key=exec-1/recover/1 timeout=0)"}));
  // The abandoned iteration's result arrives late: not in flight any more.
  EXPECT_EQ(h.Reject(h.CompletedEvent("each[0]/inner", 1, "late", 4), 4), "invalid_event");
  EXPECT_EQ(h.Complete("recover", 1, "r", 5),
            (Strings{R"(StepCompleted recover#1 "r")", R"(ExecutionCompleted "r")"}));
}

TEST(DecideLoop, NestedScopesResolveItemIndexAndOuterSteps) {
  Harness h(R"({"id":"n","steps":[
    {"id":"get","type":"action","config":{"tool_id":"t","action":"g"},"on_success":"each"},
    {"id":"each","type":"loop","config":{"items":[{"x":"p"},{"x":"q"}],"parallel":true,"steps":[
      {"id":"par","type":"parallel","config":{"steps":[
        {"id":"left","type":"action","config":{"tool_id":"t","action":"l",
          "parameters":{"x":{"$ref":"item.x"},"i":{"$ref":"index"},"g":{"$ref":"get.v"}}}},
        {"id":"right","type":"delay","config":{"duration_ms":5}}]}}]}}]})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 100);
  EXPECT_EQ(
      h.Complete("get", 1, {{"v", 9}}, 110),
      (Strings{
          R"(StepCompleted get#1 {"v":9})", R"(StepStarted each#1 loop [{"x":"p"},{"x":"q"}])",
          "StepStarted each[0]/par#1 parallel null @each[0]",
          "StepStarted each[1]/par#1 parallel null @each[1]",
          R"(StepStarted each[0]/left#1 action {"g":9,"i":0,"x":"p"} @each[0]/par:left)",
          R"(StepStarted each[0]/right#1 delay {"duration_ms":5} @each[0]/par:right due=115)",
          R"(StepStarted each[1]/left#1 action {"g":9,"i":1,"x":"q"} @each[1]/par:left)",
          R"(StepStarted each[1]/right#1 delay {"duration_ms":5} @each[1]/par:right due=115)"}));
  EXPECT_EQ(h.Fire("each[0]/right#1", 115),
            (Strings{"TimerFired each[0]/right#1",
                     R"(FrameEnded each[0]/par:right ok {"delayed_ms":5})"}));
  h.Fire("each[1]/right#1", 115);
  h.Complete("each[1]/left", 1, "L1", 120);
  EXPECT_EQ(
      h.Complete("each[0]/left", 1, "L0", 121),
      (Strings{
          R"(StepCompleted each[0]/left#1 "L0")", R"(FrameEnded each[0]/par:left ok "L0")",
          R"(StepCompleted each[0]/par#1 {"left":"L0","right":{"delayed_ms":5}})",
          R"(FrameEnded each[0] ok {"left":"L0","right":{"delayed_ms":5}})",
          R"(StepCompleted each#1 [{"left":"L0","right":{"delayed_ms":5}},{"left":"L1","right":{"delayed_ms":5}}])",
          R"(ExecutionCompleted [{"left":"L0","right":{"delayed_ms":5}},{"left":"L1","right":{"delayed_ms":5}}])"}));
}

// ---------------------------------------------------------------- parallel

std::string ParallelFlow(const std::string& wait_for) {
  return R"({"id":"p","steps":[
    {"id":"par","type":"parallel","config":{"wait_for":")" +
         wait_for + R"(","steps":[
      {"id":"a","type":"action","config":{"tool_id":"t","action":"a"},"on_success":"a2"},
      {"id":"a2","type":"action","config":{"tool_id":"t","action":"a2",
        "parameters":{"prev":{"$ref":"a.v"}}}},
      {"id":"b","type":"action","config":{"tool_id":"t","action":"b"}}]},
     "on_success":"after"},
    {"id":"after","type":"action","config":{"tool_id":"t","action":"after",
      "parameters":{"p":{"$ref":"par"}}}}]})";
}

TEST(DecideParallel, WaitForAllCollectsOutputsByBranch) {
  Harness h(ParallelFlow("all"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start(json::object(), 1),
            (Strings{"ExecutionStarted", "StepStarted par#1 parallel null",
                     "StepStarted a#1 action {} @par:a", "StepStarted b#1 action {} @par:b"}));
  const auto& branch = h.last_batch()[2].step_started();
  EXPECT_EQ(branch.frame_parent(), "par");
  EXPECT_EQ(branch.frame_index(), -1);
  EXPECT_FALSE(branch.frame_detached());
  EXPECT_EQ(h.Complete("b", 1, {{"b", 1}}, 2),
            (Strings{R"(StepCompleted b#1 {"b":1})", R"(FrameEnded par:b ok {"b":1})"}));
  EXPECT_EQ(
      h.Complete("a", 1, {{"v", 5}}, 3),
      (Strings{R"(StepCompleted a#1 {"v":5})", R"(StepStarted a2#1 action {"prev":5} @par:a)"}));
  EXPECT_EQ(h.Complete("a2", 1, "A2", 4),
            (Strings{R"(StepCompleted a2#1 "A2")", R"(FrameEnded par:a ok "A2")",
                     R"(StepCompleted par#1 {"a":"A2","b":{"b":1}})",
                     R"(StepStarted after#1 action {"p":{"a":"A2","b":{"b":1}}})"}));
}

TEST(DecideParallel, WaitForAllFailsWhenABranchFails) {
  Harness h(ParallelFlow("all"));
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 1);
  EXPECT_EQ(h.Fail("b", 1, "nope", false, 2),
            (Strings{"StepFailed b#1 nope", "FrameEnded par:b failed nope",
                     "StepFailed par#1 branch_failed", "ExecutionFailed branch_failed"}));
}

TEST(DecideParallel, WaitForAnyCompletesOnFirstSuccessAndAbandonsTheRest) {
  Harness h(ParallelFlow("any"));
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 1);
  EXPECT_EQ(h.Complete("b", 1, "B", 2),
            (Strings{R"(StepCompleted b#1 "B")", R"(FrameEnded par:b ok "B")",
                     R"(StepCompleted par#1 {"b":"B"})",
                     R"(StepStarted after#1 action {"p":{"b":"B"}})"}));
  EXPECT_EQ(h.st().running, (std::set<std::string>{"after"}));
  EXPECT_EQ(h.st().frames.at("par:a").status, FrameStatus::kAbandoned);
  EXPECT_EQ(h.Commands(),
            (Strings{R"(invoke after#1 t.after {"p":{"b":"B"}} key=exec-1/after/1 timeout=0)"}));
  EXPECT_EQ(h.Reject(h.CompletedEvent("a", 1, "late", 3), 3), "invalid_event");
  EXPECT_EQ(h.Reject(h.FailedEvent("a", 1, "late", true, 3), 3), "invalid_event");
  EXPECT_EQ(h.Complete("after", 1, "done", 4),
            (Strings{R"(StepCompleted after#1 "done")", R"(ExecutionCompleted "done")"}));
}

TEST(DecideParallel, WaitForAnySkipsFailedBranchesAndFailsWhenAllFail) {
  Harness h(ParallelFlow("any"));
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 1);
  EXPECT_EQ(h.Fail("b", 1, "nope", false, 2),
            (Strings{"StepFailed b#1 nope", "FrameEnded par:b failed nope"}));
  EXPECT_EQ(
      h.Complete("a", 1, {{"v", 1}}, 3),
      (Strings{R"(StepCompleted a#1 {"v":1})", R"(StepStarted a2#1 action {"prev":1} @par:a)"}));
  EXPECT_EQ(h.Fail("a2", 1, "again", false, 4),
            (Strings{"StepFailed a2#1 again", "FrameEnded par:a failed again",
                     "StepFailed par#1 branch_failed", "ExecutionFailed branch_failed"}));
}

TEST(DecideParallel, WaitForNoneCompletesAtOnceButTheExecutionWaitsForBranches) {
  Harness h(ParallelFlow("none"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start(json::object(), 1),
            (Strings{"ExecutionStarted", "StepStarted par#1 parallel null",
                     "StepStarted a#1 action {} @par:a", "StepStarted b#1 action {} @par:b",
                     "StepCompleted par#1 {}", R"(StepStarted after#1 action {"p":{}})"}));
  EXPECT_TRUE(h.last_batch()[2].step_started().frame_detached());
  EXPECT_EQ(h.st().detached_active, 2u);
  EXPECT_EQ(h.st().running, (std::set<std::string>{"a", "after", "b"}));
  EXPECT_EQ(h.Complete("after", 1, "done", 2), (Strings{R"(StepCompleted after#1 "done")"}));
  EXPECT_EQ(h.st().status, ExecStatus::kRunning);
  EXPECT_EQ(h.Complete("b", 1, "B", 3),
            (Strings{R"(StepCompleted b#1 "B")", R"(FrameEnded par:b ok "B")"}));
  EXPECT_EQ(
      h.Complete("a", 1, {{"v", 2}}, 4),
      (Strings{R"(StepCompleted a#1 {"v":2})", R"(StepStarted a2#1 action {"prev":2} @par:a)"}));
  EXPECT_EQ(h.Complete("a2", 1, "A2", 5),
            (Strings{R"(StepCompleted a2#1 "A2")", R"(FrameEnded par:a ok "A2")",
                     R"(ExecutionCompleted "done")"}));
  EXPECT_EQ(h.st().detached_active, 0u);
}

// ---------------------------------------------------------------- delay, timeout, cancel

TEST(DecideDelay, DelayWaitsForItsTimer) {
  Harness h(R"({"id":"d","steps":[{"id":"wait","type":"delay","config":{"duration_ms":1000},
      "on_success":"go"},{"id":"go","type":"action","config":{"tool_id":"t","action":"go",
      "parameters":{"w":{"$ref":"wait.delayed_ms"}}}}]})");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(
      h.Start(json::object(), 1000),
      (Strings{"ExecutionStarted", R"(StepStarted wait#1 delay {"duration_ms":1000} due=2000)"}));
  EXPECT_EQ(h.Commands(), (Strings{"timer wait#1 due=2000"}));
  EXPECT_EQ(h.st().display_status(), "waiting");
  EXPECT_EQ(h.Fire("wait#1", 2003),
            (Strings{"TimerFired wait#1", R"(StepStarted go#1 action {"w":1003})"}));
  EXPECT_EQ(h.st().display_status(), "running");
}

TEST(DecideDelay, ZeroDelayStillWaitsForATimer) {
  Harness h(R"({"id":"d","steps":[{"id":"wait","type":"delay","config":{"duration_ms":0}}]})");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start(json::object(), 500),
            (Strings{"ExecutionStarted", R"(StepStarted wait#1 delay {"duration_ms":0} due=500)"}));
  EXPECT_EQ(h.Fire("wait#1", 500),
            (Strings{"TimerFired wait#1", R"(ExecutionCompleted {"delayed_ms":0})"}));
}

TEST(DecideTerminal, WorkflowTimeoutEndsTheExecution) {
  Harness h(kOrders);
  ASSERT_TRUE(h.ok());
  h.Start({{"a", "A"}, {"n", 60}}, 1000);
  h.Fail("get", 1, "unavailable", true, 1200);
  EXPECT_EQ(h.Commands(), (Strings{"timer #timeout due=301000", "timer get#2 due=1300"}));
  EXPECT_EQ(h.Fire("#timeout", 301000),
            (Strings{"TimerFired #timeout", "ExecutionTimedOut 300000"}));
  EXPECT_EQ(h.st().status, ExecStatus::kTimedOut);
  EXPECT_EQ(h.st().error.value("code", ""), "timed_out");
  EXPECT_EQ(h.st().display_status(), "timed_out");
  EXPECT_TRUE(h.st().timers.empty());
  EXPECT_TRUE(h.commands().empty());
  Decision d = decide(h.flow(), h.st(), 400000);
  EXPECT_TRUE(d.events.empty());
  EXPECT_TRUE(d.commands.empty());
  v1::Event fire = make_event(h.st(), 400000);
  fire.mutable_timer_fired()->set_timer_id("get#2");
  EXPECT_EQ(h.Reject(fire, 400000), "invalid_event");
  EXPECT_EQ(h.Reject(h.CompletedEvent("get", 1, "late", 400000), 400000), "invalid_event");
}

TEST(DecideTerminal, CancelEndsTheExecution) {
  Harness h(kOrders);
  ASSERT_TRUE(h.ok());
  h.Start({{"a", "A"}, {"n", 60}}, 1000);
  EXPECT_EQ(h.Cancel("user asked", 1500), (Strings{"ExecutionCancelled user asked"}));
  EXPECT_EQ(h.st().status, ExecStatus::kCancelled);
  EXPECT_EQ(h.st().error, json::parse(R"({"code":"cancelled","message":"user asked"})"));
  EXPECT_EQ(h.st().ended_ms, 1500);
  EXPECT_TRUE(h.st().running.empty());
  EXPECT_TRUE(h.commands().empty());
  EXPECT_TRUE(decide(h.flow(), h.st(), 2000).events.empty());
  EXPECT_EQ(h.Reject(h.CompletedEvent("get", 1, "late", 1600), 1600), "invalid_event");
  v1::Event again = make_event(h.st(), 1700);
  again.mutable_execution_cancelled()->set_reason("twice");
  EXPECT_EQ(h.Reject(again, 1700), "invalid_event");
}

// ---------------------------------------------------------------- apply() guards

TEST(ApplyGuards, RejectsSeqGapsAndEventsBeforeStart) {
  ExecutionState st;
  v1::Event early;
  early.set_seq(1);
  early.set_time_ms(1);
  early.mutable_step_completed()->set_path("a");
  early.mutable_step_completed()->set_attempt(1);
  Status s = apply(st, early);
  EXPECT_EQ(s.code(), "invalid_event");
  EXPECT_FALSE(st.started);
  EXPECT_EQ(st.last_seq, 0u);

  v1::Event start;
  start.set_seq(2);  // a gap: the first seq is 1
  start.set_time_ms(1);
  start.mutable_execution_started()->set_execution_id("e");
  EXPECT_EQ(apply(st, start).code(), "invalid_event");
  start.set_seq(1);
  EXPECT_TRUE(apply(st, start).is_ok());
  EXPECT_EQ(st.last_seq, 1u);

  const std::string before = StateBytes(st);
  v1::Event cancel;
  cancel.set_seq(3);
  cancel.mutable_execution_cancelled()->set_reason("r");
  EXPECT_EQ(apply(st, cancel).code(), "invalid_event");
  cancel.set_seq(1);  // a replayed seq
  EXPECT_EQ(apply(st, cancel).code(), "invalid_event");
  v1::Event restart = start;
  restart.set_seq(2);
  EXPECT_EQ(apply(st, restart).code(), "invalid_event");
  v1::Event empty;
  empty.set_seq(2);
  EXPECT_EQ(apply(st, empty).code(), "invalid_event");
  EXPECT_EQ(StateBytes(st), before);
  cancel.set_seq(2);
  EXPECT_TRUE(apply(st, cancel).is_ok());
  EXPECT_EQ(st.status, ExecStatus::kCancelled);
}

TEST(ApplyGuards, RejectsUnknownStepsAndTimers) {
  Harness h(kSlow);
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 1);
  EXPECT_EQ(h.Reject(h.CompletedEvent("nope", 1, 1, 2), 2), "invalid_event");
  EXPECT_EQ(h.Reject(h.CompletedEvent("get", 2, 1, 2), 2), "invalid_event");
  v1::Event fire = make_event(h.st(), 2);
  fire.mutable_timer_fired()->set_timer_id("get#7");
  EXPECT_EQ(h.Reject(fire, 2), "invalid_event");
  EXPECT_EQ(h.st().last_seq, 2u);
}

// apply() promises "invalid_event and the state unchanged": a rejected event
// must not leave half of its changes behind (the caller keeps using the state).
TEST(ApplyGuards, RejectedEventsLeaveTheStateUnchanged) {
  Harness fresh(kSlow);
  ASSERT_TRUE(fresh.ok());
  v1::Event start = make_event(fresh.st(), 1);
  start.mutable_execution_started()->set_execution_id(kExec);
  start.mutable_execution_started()->set_input_json("{not json");
  EXPECT_EQ(fresh.Reject(start, 1), "invalid_event");
  EXPECT_FALSE(fresh.st().started);

  Harness h(kSlow);
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 1);
  v1::Event bad_output = h.CompletedEvent("get", 1, 1, 2);
  bad_output.mutable_step_completed()->set_output_json("{not json");
  EXPECT_EQ(h.Reject(bad_output, 2), "invalid_event");
  EXPECT_EQ(h.st().steps.at("get").output, nullptr);

  h.Complete("get", 1, {{"v", 1}}, 3);
  ASSERT_EQ(h.st().frames.at("").current, "next");
  // A StepStarted for an attempt that already ran (only a decide() bug could
  // emit one), in the current frame and opening a new frame.
  v1::Event rerun = make_event(h.st(), 4);
  auto& e = *rerun.mutable_step_started();
  e.set_path("get");
  e.set_step_id("get");
  e.set_attempt(1);
  e.set_kind("action");
  e.set_input_json("{}");
  EXPECT_EQ(h.Reject(rerun, 4), "invalid_event");
  EXPECT_EQ(h.st().frames.at("").current, "next");
  e.set_frame("get:x");
  e.set_frame_parent("get");
  EXPECT_EQ(h.Reject(rerun, 4), "invalid_event");
  EXPECT_EQ(h.st().frames.count("get:x"), 0u);
}

TEST(DisplayStatus, WaitingOnlyWhenNoToolCallIsInFlight) {
  Harness h(R"({"id":"d","steps":[
    {"id":"par","type":"parallel","config":{"steps":[
      {"id":"call","type":"action","config":{"tool_id":"t","action":"c"}},
      {"id":"nap","type":"delay","config":{"duration_ms":100}}]}}],
    "config":{"timeout_ms":60000}})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 0);
  EXPECT_EQ(h.st().display_status(), "running");  // a tool call and a delay
  h.Complete("call", 1, 1, 10);
  EXPECT_EQ(h.st().display_status(), "waiting");  // only the delay (and #timeout)
  h.Fire("nap#1", 100);
  EXPECT_EQ(h.st().status, ExecStatus::kCompleted);
  EXPECT_EQ(h.st().display_status(), "completed");
}

}  // namespace
}  // namespace yantra
