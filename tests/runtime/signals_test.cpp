// Signals and people in the loop (wait_signal and approval steps) as
// "given these events, expect these events and commands", with the Harness
// of driver.hpp: signals and decisions are input events like tool results,
// so each test feeds them at an explicit time and states the exact batch
// decide() writes in answer. The pure checks the engine and API run before
// appending (can_accept_signal, check_approval, pending_approvals,
// is_idle_waiting) are tested on the same live states, so a check and the
// decision it leads to are seen to agree. Validation of the two step types
// is here too (with the JSON pointer of every problem), to keep everything
// of the feature in one suite.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/execution.hpp"
#include "runtime/flow.hpp"
#include "runtime/fork.hpp"
#include "runtime/redact.hpp"
#include "runtime/snapshot.hpp"
#include "runtime/timeline.hpp"
#include "runtime/waits.hpp"
#include "tests/runtime/driver.hpp"

namespace yantra {
namespace {

using namespace test;  // NOLINT: the shared harness

Strings Signal(Harness& h, const std::string& name, const json& data, int64_t now,
               const std::string& id = "") {
  return h.Feed(make_signal_event(h.st(), name, data, id, now), now);
}

v1::Event DecisionEvent(const Harness& h, const std::string& path, const std::string& key,
                        const std::string& role, bool approved, int64_t now,
                        const std::string& comment = "") {
  v1::Event ev = make_event(h.st(), now);
  auto& e = *ev.mutable_approval_recorded();
  e.set_step_path(path);
  e.set_key_id(key);
  e.set_role(role);
  e.set_decision(approved ? "approved" : "rejected");
  e.set_comment(comment);
  e.set_time_ms(now);
  return ev;
}

// Checks the decision as the API would, then records it.
Strings Decide(Harness& h, const std::string& path, const std::string& key, const std::string& role,
               bool approved, int64_t now) {
  auto target = check_approval(h.flow(), h.st(), path, key, role);
  if (!target.ok()) return {"<refused " + target.status().code() + ">"};
  return h.Feed(make_approval_event(h.st(), target.value(), key, role, approved, "", now), now);
}

std::string CheckCode(const Harness& h, const std::string& path, const std::string& key,
                      const std::string& role) {
  auto r = check_approval(h.flow(), h.st(), path, key, role);
  return r.ok() ? "ok" : r.status().code();
}

// ---------------------------------------------------------------- wait_signal

const char* kPayment = R"({"id":"pay","steps":[
  {"id":"a","type":"action","config":{"tool_id":"t","action":"x"},"on_success":"w"},
  {"id":"w","type":"wait_signal","config":{"name":"payment"},"on_success":"b"},
  {"id":"b","type":"action","config":{"tool_id":"t","action":"y",
    "parameters":{"paid":{"$ref":"w.amount"}}}}]})";

TEST(WaitSignal, SignalBeforeTheWaitIsBufferedThenConsumedWhenTheStepIsReached) {
  Harness h(kPayment);
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 10);
  EXPECT_EQ(Signal(h, "payment", {{"amount", 5}}, 20, "sig-1"),
            (Strings{R"(SignalReceived payment {"amount":5})"}));
  ASSERT_EQ(h.st().signals.count("payment"), 1u);
  EXPECT_EQ(h.st().signals.at("payment").front().seq, 3u);
  EXPECT_EQ(h.st().signals.at("payment").front().signal_id, "sig-1");
  EXPECT_EQ(h.st().display_status(), "running");  // a's call is still in flight
  EXPECT_EQ(h.Complete("a", 1, json::object(), 30),
            (Strings{"StepCompleted a#1 {}",
                     R"(StepStarted w#1 wait_signal {"name":"payment","timeout_ms":0})",
                     R"(StepCompleted w#1 {"amount":5} signal=3)",
                     R"(StepStarted b#1 action {"paid":5})"}));
  EXPECT_TRUE(h.st().signals.empty()) << "consumed exactly once";
  EXPECT_EQ(h.st().steps.at("w").output, (json{{"amount", 5}}));
}

TEST(WaitSignal, SignalAfterTheWaitCompletesTheStep) {
  Harness h(kPayment);
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 10);
  EXPECT_EQ(h.Complete("a", 1, json::object(), 30),
            (Strings{"StepCompleted a#1 {}",
                     R"(StepStarted w#1 wait_signal {"name":"payment","timeout_ms":0})"}));
  EXPECT_TRUE(h.Commands().empty()) << "no timer without timeout_ms";
  EXPECT_EQ(h.st().display_status(), "waiting");
  EXPECT_TRUE(is_idle_waiting(h.st()));
  EXPECT_EQ(next_timer_due_ms(h.st()), std::nullopt);
  EXPECT_EQ(input_waits(h.st()), (Strings{"w"}));
  // Another name is buffered, not consumed.
  EXPECT_EQ(Signal(h, "other", "x", 35), (Strings{R"(SignalReceived other "x")"}));
  EXPECT_TRUE(is_idle_waiting(h.st()));
  EXPECT_EQ(Signal(h, "payment", {{"amount", 9}}, 40),
            (Strings{R"(SignalReceived payment {"amount":9})",
                     R"(StepCompleted w#1 {"amount":9} signal=6)",
                     R"(StepStarted b#1 action {"paid":9})"}));
  EXPECT_EQ(h.st().display_status(), "running");
  EXPECT_FALSE(is_idle_waiting(h.st()));
  EXPECT_EQ(h.st().signals.at("other").size(), 1u);
  EXPECT_EQ(h.Complete("b", 1, {{"ok", true}}, 50),
            (Strings{R"(StepCompleted b#1 {"ok":true})", R"(ExecutionCompleted {"ok":true})"}));
  // The execution ended: no more signals.
  EXPECT_EQ(can_accept_signal(h.st(), "payment").code(), "conflict");
}

const char* kTwoWaits = R"({"id":"two","steps":[
  {"id":"a","type":"action","config":{"tool_id":"t","action":"x"},"on_success":"w1"},
  {"id":"w1","type":"wait_signal","config":{"name":"go"},"on_success":"w2"},
  {"id":"w2","type":"wait_signal","config":{"name":"go"}}],
 "output":{"first":{"$ref":"w1.n"},"second":{"$ref":"w2.n"}}})";

TEST(WaitSignal, TwoBufferedSignalsOfOneNameGoInOrderToTwoConsecutiveWaits) {
  Harness h(kTwoWaits);
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 10);
  Signal(h, "go", {{"n", 1}}, 20);
  Signal(h, "go", {{"n", 2}}, 21);
  EXPECT_EQ(h.Complete("a", 1, json::object(), 30),
            (Strings{"StepCompleted a#1 {}",
                     R"(StepStarted w1#1 wait_signal {"name":"go","timeout_ms":0})",
                     R"(StepCompleted w1#1 {"n":1} signal=3)",
                     R"(StepStarted w2#1 wait_signal {"name":"go","timeout_ms":0})",
                     R"(StepCompleted w2#1 {"n":2} signal=4)",
                     R"(ExecutionCompleted {"first":1,"second":2})"}));
}

TEST(WaitSignal, SignalsArrivingOneByOneFeedConsecutiveWaits) {
  Harness h(kTwoWaits);
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 10);
  h.Complete("a", 1, json::object(), 30);
  EXPECT_EQ(Signal(h, "go", {{"n", 1}}, 40),
            (Strings{R"(SignalReceived go {"n":1})", R"(StepCompleted w1#1 {"n":1} signal=5)",
                     R"(StepStarted w2#1 wait_signal {"name":"go","timeout_ms":0})"}));
  EXPECT_EQ(Signal(h, "go", {{"n", 2}}, 50),
            (Strings{R"(SignalReceived go {"n":2})", R"(StepCompleted w2#1 {"n":2} signal=8)",
                     R"(ExecutionCompleted {"first":1,"second":2})"}));
}

TEST(WaitSignal, ParallelWaitsForOneNameTakeConsecutiveSignalsInOneRound) {
  Harness h(R"({"id":"par","steps":[
    {"id":"a","type":"action","config":{"tool_id":"t","action":"x"},"on_success":"p"},
    {"id":"p","type":"parallel","config":{"steps":[
      {"id":"p1","type":"wait_signal","config":{"name":"go"}},
      {"id":"p2","type":"wait_signal","config":{"name":"go"}}]}}]})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 10);
  Signal(h, "go", 1, 20);
  Signal(h, "go", 2, 21);
  Signal(h, "go", 3, 22);
  EXPECT_EQ(
      h.Complete("a", 1, json::object(), 30),
      (Strings{"StepCompleted a#1 {}", "StepStarted p#1 parallel null",
               R"(StepStarted p1#1 wait_signal {"name":"go","timeout_ms":0} @p:p1)",
               R"(StepStarted p2#1 wait_signal {"name":"go","timeout_ms":0} @p:p2)",
               "StepCompleted p1#1 1 signal=3", "StepCompleted p2#1 2 signal=4",
               "FrameEnded p:p1 ok 1", "FrameEnded p:p2 ok 2",
               R"(StepCompleted p#1 {"p1":1,"p2":2})", R"(ExecutionCompleted {"p1":1,"p2":2})"}));
  // The third one was never waited for; it stays buffered.
  ASSERT_EQ(h.st().signals.at("go").size(), 1u);
  EXPECT_EQ(h.st().signals.at("go").front().data, json(3));
}

const char* kTimedWait = R"({"id":"tw","steps":[
  {"id":"w","type":"wait_signal","config":{"name":"payment","timeout_ms":1000},
   "on_success":"next","on_timeout":"remind","on_failure":"x"},
  {"id":"next","type":"action","config":{"tool_id":"t","action":"next"}},
  {"id":"remind","type":"action","config":{"tool_id":"t","action":"remind",
    "parameters":{"code":{"$ref":"w.error.code"}}}},
  {"id":"x","type":"action","config":{"tool_id":"t","action":"x"}}]})";

TEST(WaitSignal, TimeoutGoesToOnTimeout) {
  Harness h(kTimedWait);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(
      h.Start(json::object(), 100),
      (Strings{"ExecutionStarted",
               R"(StepStarted w#1 wait_signal {"name":"payment","timeout_ms":1000} due=1100)"}));
  EXPECT_EQ(h.Commands(), (Strings{"timer w#1 due=1100"}));
  EXPECT_EQ(next_timer_due_ms(h.st()), 1100);
  EXPECT_TRUE(is_idle_waiting(h.st()));
  EXPECT_EQ(h.st().display_status(), "waiting");
  EXPECT_EQ(h.Fire("w#1", 1100),
            (Strings{"TimerFired w#1", R"(StepStarted remind#1 action {"code":"timeout"})"}));
  EXPECT_EQ(h.st().steps.at("w").error["code"], "timeout");
  EXPECT_EQ(h.st().steps.at("w").error["retriable"], false) << "waiting again would not help";
  // A signal after the timeout finds nobody waiting: it is only buffered.
  EXPECT_EQ(Signal(h, "payment", 1, 1200), (Strings{"SignalReceived payment 1"}));
  EXPECT_EQ(h.st().signals.at("payment").size(), 1u);
}

TEST(WaitSignal, SignalBeforeTheTimeoutCancelsTheTimer) {
  Harness h(kTimedWait);
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 100);
  EXPECT_EQ(Signal(h, "payment", {{"ok", 1}}, 500),
            (Strings{R"(SignalReceived payment {"ok":1})", R"(StepCompleted w#1 {"ok":1} signal=3)",
                     "StepStarted next#1 action {}"}));
  EXPECT_TRUE(h.st().timers.empty());
}

TEST(WaitSignal, TimeoutWithoutOnTimeoutGoesToOnFailureOrFailsTheExecution) {
  Harness with_failure(R"({"id":"f","steps":[
    {"id":"w","type":"wait_signal","config":{"name":"n","timeout_ms":50},"on_failure":"x"},
    {"id":"x","type":"action","config":{"tool_id":"t","action":"x"}}]})");
  ASSERT_TRUE(with_failure.ok());
  with_failure.Start(json::object(), 0);
  EXPECT_EQ(with_failure.Fire("w#1", 50), (Strings{"TimerFired w#1", "StepStarted x#1 action {}"}));

  Harness bare(R"({"id":"f","steps":[
    {"id":"w","type":"wait_signal","config":{"name":"n","timeout_ms":50}}]})");
  ASSERT_TRUE(bare.ok());
  bare.Start(json::object(), 0);
  EXPECT_EQ(bare.Fire("w#1", 50), (Strings{"TimerFired w#1", "ExecutionFailed timeout"}));
  EXPECT_EQ(bare.st().status, ExecStatus::kFailed);

  Harness go_on(R"({"id":"f","steps":[
    {"id":"w","type":"wait_signal","config":{"name":"n","timeout_ms":50},"on_success":"b"},
    {"id":"b","type":"action","config":{"tool_id":"t","action":"b",
      "parameters":{"e":{"$ref":"w.error.code"}}}}],
   "config":{"on_error":"continue"}})");
  ASSERT_TRUE(go_on.ok());
  go_on.Start(json::object(), 0);
  EXPECT_EQ(go_on.Fire("w#1", 50),
            (Strings{"TimerFired w#1", R"(StepStarted b#1 action {"e":"timeout"})"}));
}

TEST(WaitSignal, ApplyRefusesCompletionsThatConsumeNoSignalOrTheWrongOne) {
  Harness h(kTwoWaits);
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 10);
  h.Complete("a", 1, json::object(), 20);
  // The engine never completes a wait_signal step; only decide() does, with a signal.
  EXPECT_EQ(h.Reject(h.CompletedEvent("w1", 1, 1, 30), 30), "invalid_event");
  Signal(h, "other", 1, 31);
  v1::Event wrong = h.CompletedEvent("w1", 1, 1, 32);
  wrong.mutable_step_completed()->set_signal_seq(h.st().signals.at("other").front().seq);
  EXPECT_EQ(h.Reject(wrong, 32), "invalid_event");
  // Nor does a signal complete another kind of step.
  Harness p(kPayment);
  ASSERT_TRUE(p.ok());
  p.Start(json::object(), 10);
  Signal(p, "payment", 1, 11);
  v1::Event on_action = p.CompletedEvent("a", 1, 1, 12);
  on_action.mutable_step_completed()->set_signal_seq(3);
  EXPECT_EQ(p.Reject(on_action, 12), "invalid_event");
  v1::Event nameless = make_signal_event(p.st(), "", 1, "", 13);
  EXPECT_EQ(p.Reject(nameless, 13), "invalid_event");
}

TEST(WaitSignal, CanAcceptSignalBoundsTheBuffer) {
  Harness h(kPayment);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(can_accept_signal(h.st(), "payment").code(), "conflict") << "not started";
  h.Start(json::object(), 10);
  EXPECT_TRUE(can_accept_signal(h.st(), "payment").is_ok());
  EXPECT_EQ(can_accept_signal(h.st(), "").code(), "invalid_argument");
  EXPECT_EQ(can_accept_signal(h.st(), std::string(kMaxSignalNameBytes + 1, 'n')).code(),
            "invalid_argument");
  for (size_t i = 0; i < kMaxPendingSignals; ++i) {
    ASSERT_TRUE(can_accept_signal(h.st(), "payment").is_ok()) << i;
    Signal(h, i % 2 == 0 ? "payment" : "noise", static_cast<int>(i), 20);
  }
  EXPECT_EQ(can_accept_signal(h.st(), "noise").code(), "too_many_signals");
  EXPECT_EQ(can_accept_signal(h.st(), "payment").code(), "too_many_signals");
  // Reaching the wait consumes one; then there is room again.
  h.Complete("a", 1, json::object(), 30);
  EXPECT_TRUE(can_accept_signal(h.st(), "noise").is_ok());
}

TEST(WaitSignal, AFullBufferStillTakesTheSignalAWaitingStepConsumes) {
  Harness h(R"({"id":"f","steps":[
    {"id":"w","type":"wait_signal","config":{"name":"payment"}}]})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 10);
  for (size_t i = 0; i < kMaxPendingSignals; ++i) Signal(h, "noise", 0, 20);
  EXPECT_EQ(can_accept_signal(h.st(), "noise").code(), "too_many_signals");
  EXPECT_TRUE(can_accept_signal(h.st(), "payment").is_ok());
}

// ---------------------------------------------------------------- approval

std::string ApprovalFlow(const std::string& approvers, const std::string& policy) {
  return R"({"id":"appr","steps":[
    {"id":"gate","type":"approval","config":{"approvers":)" +
         approvers + R"(,"policy":")" + policy + R"J(","timeout_ms":5000},
     "on_success":"ok","on_failure":"no","on_timeout":"late"},
    {"id":"ok","type":"action","config":{"tool_id":"t","action":"ok",
      "parameters":{"d":{"$ref":"gate.decision"}}}},
    {"id":"no","type":"action","config":{"tool_id":"t","action":"no",
      "parameters":{"code":{"$ref":"gate.error.code"},
                    "d":{"$ref":"gate.error.details.decision"},
                    "n":{"$expr":"len(gate.error.details.decisions)"}}}},
    {"id":"late","type":"action","config":{"tool_id":"t","action":"late",
      "parameters":{"code":{"$ref":"gate.error.code"},
                    "n":{"$expr":"len(gate.error.details.decisions)"}}}}]})J";
}

TEST(Approval, StartsWaitingWithItsApproversPolicyAndTimer) {
  Harness h(ApprovalFlow(R"(["key_ab12","role:admin"])", "any"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.Start(json::object(), 100),
            (Strings{"ExecutionStarted",
                     R"(StepStarted gate#1 approval {"approvers":["key_ab12","role:admin"],)"
                     R"("policy":"any","timeout_ms":5000} due=5100)"}));
  EXPECT_EQ(h.Commands(), (Strings{"timer gate#1 due=5100"}));
  EXPECT_EQ(h.st().display_status(), "waiting");
  EXPECT_TRUE(is_idle_waiting(h.st()));
  auto pending = pending_approvals(h.flow(), h.st());
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].step_path, "gate");
  EXPECT_EQ(pending[0].step_id, "gate");
  EXPECT_EQ(pending[0].spec.approvers, (Strings{"key_ab12", "role:admin"}));
  EXPECT_EQ(pending[0].spec.policy, ApprovalPolicy::kAny);
  EXPECT_EQ(pending[0].decisions, json::array());
  EXPECT_EQ(pending[0].due_ms, 5100);
}

TEST(Approval, AnyApprovesWithOneRoleDecision) {
  Harness h(ApprovalFlow(R"(["key_ab12","role:admin"])", "any"));
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 100);
  auto target = check_approval(h.flow(), h.st(), "gate", "key_zz99", "admin");
  ASSERT_TRUE(target.ok()) << target.status().to_string();
  EXPECT_EQ(target->matched, (Strings{"role:admin"}));
  EXPECT_EQ(target->attempt, 1u);
  EXPECT_EQ(Decide(h, "gate", "key_zz99", "admin", true, 200),
            (Strings{"ApprovalRecorded gate key_zz99/admin approved",
                     R"(StepCompleted gate#1 {"decision":"approved","decisions":[{"comment":"",)"
                     R"("decision":"approved","key_id":"key_zz99","role":"admin","time_ms":200}]})",
                     R"(StepStarted ok#1 action {"d":"approved"})"}));
  EXPECT_TRUE(h.st().timers.empty());
  EXPECT_TRUE(pending_approvals(h.flow(), h.st()).empty());
  EXPECT_EQ(CheckCode(h, "gate", "key_ab12", "viewer"), "not_found") << "already decided";
}

TEST(Approval, AnyRejectsOnlyWhenEveryEntryRejected) {
  Harness h(ApprovalFlow(R"(["key_ab12","role:admin"])", "any"));
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 100);
  EXPECT_EQ(Decide(h, "gate", "key_ab12", "viewer", false, 200),
            (Strings{"ApprovalRecorded gate key_ab12/viewer rejected"}));
  EXPECT_EQ(pending_approvals(h.flow(), h.st()).at(0).decisions.size(), 1u);
  EXPECT_EQ(Decide(h, "gate", "key_cd34", "admin", false, 300),
            (Strings{"ApprovalRecorded gate key_cd34/admin rejected", "StepFailed gate#1 rejected",
                     R"(StepStarted no#1 action {"code":"rejected","d":"rejected","n":2})"}));
  const json& error = h.st().steps.at("gate").error;
  EXPECT_EQ(error["details"]["decision"], "rejected");
  EXPECT_EQ(error["details"]["decisions"][1]["key_id"], "key_cd34");
}

TEST(Approval, AllNeedsEveryEntryAndFailsAtTheFirstRejection) {
  const std::string flow = ApprovalFlow(R"(["key_ab12","key_cd34","role:editor"])", "all");
  Harness yes(flow);
  ASSERT_TRUE(yes.ok());
  yes.Start(json::object(), 100);
  EXPECT_EQ(Decide(yes, "gate", "key_ab12", "viewer", true, 200).size(), 1u);
  EXPECT_EQ(Decide(yes, "gate", "key_cd34", "viewer", true, 210).size(), 1u);
  EXPECT_EQ(yes.st().display_status(), "waiting");
  auto done = Decide(yes, "gate", "key_ed56", "editor", true, 220);
  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(done[1].substr(0, 57), R"(StepCompleted gate#1 {"decision":"approved","decisions":[)");
  EXPECT_EQ(done[2], R"(StepStarted ok#1 action {"d":"approved"})");

  Harness no(flow);
  ASSERT_TRUE(no.ok());
  no.Start(json::object(), 100);
  Decide(no, "gate", "key_ab12", "viewer", true, 200);
  EXPECT_EQ(Decide(no, "gate", "key_ed56", "editor", false, 210),
            (Strings{"ApprovalRecorded gate key_ed56/editor rejected", "StepFailed gate#1 rejected",
                     R"(StepStarted no#1 action {"code":"rejected","d":"rejected","n":2})"}));
}

TEST(Approval, OneKeyTakesEverySeatItMatches) {
  // key_ab12 is listed by id and has the listed role: one decision takes both seats.
  Harness h(ApprovalFlow(R"(["key_ab12","role:admin"])", "all"));
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 100);
  auto target = check_approval(h.flow(), h.st(), "gate", "key_ab12", "admin");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->matched, (Strings{"key_ab12", "role:admin"}));
  EXPECT_EQ(Decide(h, "gate", "key_ab12", "admin", true, 200).back(),
            R"(StepStarted ok#1 action {"d":"approved"})");
}

TEST(Approval, MajorityApprovesAboveHalfAndRejectsOnceUnreachable) {
  const std::string flow = ApprovalFlow(R"(["key_a1","key_b2","key_c3"])", "majority");
  Harness yes(flow);
  ASSERT_TRUE(yes.ok());
  yes.Start(json::object(), 100);
  EXPECT_EQ(Decide(yes, "gate", "key_a1", "viewer", true, 200).size(), 1u);
  EXPECT_EQ(Decide(yes, "gate", "key_b2", "viewer", false, 210).size(), 1u);
  EXPECT_EQ(Decide(yes, "gate", "key_c3", "viewer", true, 220).back(),
            R"(StepStarted ok#1 action {"d":"approved"})");

  Harness no(flow);
  ASSERT_TRUE(no.ok());
  no.Start(json::object(), 100);
  EXPECT_EQ(Decide(no, "gate", "key_a1", "viewer", false, 200).size(), 1u);
  EXPECT_EQ(Decide(no, "gate", "key_b2", "viewer", false, 210),
            (Strings{"ApprovalRecorded gate key_b2/viewer rejected", "StepFailed gate#1 rejected",
                     R"(StepStarted no#1 action {"code":"rejected","d":"rejected","n":2})"}));
}

TEST(Approval, MajorityOfAnEvenNumberNeedsMoreThanHalf) {
  const ApprovalSpec spec{{"key_a", "key_b", "key_c", "key_d"}, ApprovalPolicy::kMajority};
  auto decisions = [](std::vector<std::pair<std::string, bool>> ds) {
    json out = json::array();
    for (const auto& [key, yes] : ds) {
      out.push_back(
          {{"key_id", key}, {"role", "viewer"}, {"decision", yes ? "approved" : "rejected"}});
    }
    return out;
  };
  EXPECT_EQ(approval_outcome(spec, decisions({{"key_a", true}, {"key_b", true}})),
            ApprovalOutcome::kPending);
  EXPECT_EQ(approval_outcome(spec, decisions({{"key_a", true}, {"key_b", true}, {"key_c", true}})),
            ApprovalOutcome::kApproved);
  EXPECT_EQ(approval_outcome(spec, decisions({{"key_a", false}})), ApprovalOutcome::kPending);
  EXPECT_EQ(approval_outcome(spec, decisions({{"key_a", false}, {"key_b", false}})),
            ApprovalOutcome::kRejected);
  // A role seat is taken by the first matching decision; a later one does not change it.
  const ApprovalSpec roles{{"role:admin"}, ApprovalPolicy::kAny};
  json two = json::array({{{"key_id", "key_x"}, {"role", "admin"}, {"decision", "rejected"}},
                          {{"key_id", "key_y"}, {"role", "admin"}, {"decision", "approved"}}});
  EXPECT_EQ(approval_outcome(roles, two), ApprovalOutcome::kRejected);
}

TEST(Approval, ChecksRefuseNonApproversDuplicatesAndStepsNotWaiting) {
  Harness h(R"({"id":"f","steps":[
    {"id":"a","type":"action","config":{"tool_id":"t","action":"x"},"on_success":"gate"},
    {"id":"gate","type":"approval","config":{"approvers":["key_ab12","role:admin"],
      "policy":"all"}}]})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 100);
  EXPECT_EQ(CheckCode(h, "gate", "key_ab12", "viewer"), "not_found") << "not reached yet";
  EXPECT_EQ(CheckCode(h, "a", "key_ab12", "viewer"), "not_found") << "not an approval step";
  EXPECT_EQ(CheckCode(h, "nope", "key_ab12", "viewer"), "not_found");
  h.Complete("a", 1, json::object(), 110);
  EXPECT_EQ(CheckCode(h, "gate", "key_zz", "viewer"), "forbidden");
  EXPECT_EQ(CheckCode(h, "gate", "key_zz", "editor"), "forbidden");
  EXPECT_EQ(CheckCode(h, "gate", "", "admin"), "forbidden") << "a decision needs a key";
  EXPECT_EQ(CheckCode(h, "gate", "key_ab12", "viewer"), "ok");
  EXPECT_EQ(Decide(h, "gate", "key_ab12", "viewer", true, 120).size(), 1u);
  EXPECT_EQ(CheckCode(h, "gate", "key_ab12", "viewer"), "conflict");
  // apply() refuses the duplicate too, and anything that is not a decision.
  EXPECT_EQ(h.Reject(DecisionEvent(h, "gate", "key_ab12", "viewer", false, 130), 130),
            "invalid_event");
  v1::Event odd = DecisionEvent(h, "gate", "key_cd34", "admin", true, 130);
  odd.mutable_approval_recorded()->set_decision("maybe");
  EXPECT_EQ(h.Reject(odd, 130), "invalid_event");
  EXPECT_EQ(h.Reject(DecisionEvent(h, "a", "key_cd34", "admin", true, 130), 130), "invalid_event");
  EXPECT_EQ(Decide(h, "gate", "key_cd34", "admin", true, 140).back(),
            R"(ExecutionCompleted {"decision":"approved","decisions":[{"comment":"",)"
            R"("decision":"approved","key_id":"key_ab12","role":"viewer","time_ms":120},)"
            R"({"comment":"","decision":"approved","key_id":"key_cd34","role":"admin",)"
            R"("time_ms":140}]})");
  EXPECT_EQ(CheckCode(h, "gate", "key_ef56", "admin"), "not_found") << "the execution ended";
}

TEST(Approval, TimeoutGoesToOnTimeoutWithTheDecisionsSoFar) {
  Harness h(ApprovalFlow(R"(["key_a1","key_b2"])", "all"));
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 100);
  Decide(h, "gate", "key_a1", "viewer", true, 200);
  EXPECT_EQ(
      h.Fire("gate#1", 5100),
      (Strings{"TimerFired gate#1", R"(StepStarted late#1 action {"code":"timeout","n":1})"}));
  EXPECT_EQ(CheckCode(h, "gate", "key_b2", "viewer"), "not_found");
}

TEST(Approval, ADecisionInAnAbandonedBranchIsRefused) {
  Harness h(R"({"id":"f","steps":[
    {"id":"p","type":"parallel","config":{"wait_for":"any","steps":[
      {"id":"gate","type":"approval","config":{"approvers":["role:admin"]}},
      {"id":"b","type":"action","config":{"tool_id":"t","action":"b"}}]},"on_success":"after"},
    {"id":"after","type":"wait_signal","config":{"name":"n"}}]})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 100);
  ASSERT_EQ(pending_approvals(h.flow(), h.st()).size(), 1u);
  EXPECT_EQ(pending_approvals(h.flow(), h.st())[0].frame, "p:gate");
  EXPECT_EQ(h.Complete("b", 1, 1, 200),
            (Strings{"StepCompleted b#1 1", "FrameEnded p:b ok 1", R"(StepCompleted p#1 {"b":1})",
                     R"(StepStarted after#1 wait_signal {"name":"n","timeout_ms":0})"}));
  // wait_for any abandoned the approval's branch: nobody waits for a decision.
  EXPECT_EQ(h.st().steps.at("gate").status, StepStatus::kRunning);
  EXPECT_TRUE(pending_approvals(h.flow(), h.st()).empty());
  EXPECT_EQ(input_waits(h.st()), (Strings{"after"}));
  EXPECT_EQ(CheckCode(h, "gate", "key_x", "admin"), "not_found");
  EXPECT_EQ(h.Reject(DecisionEvent(h, "gate", "key_x", "admin", true, 300), 300), "invalid_event");
}

TEST(Approval, RetryAfterATimeoutAsksAgain) {
  Harness h(R"({"id":"f","steps":[{"id":"gate","type":"approval",
    "config":{"approvers":["key_a1","key_b2"],"policy":"all","timeout_ms":100}}]})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 0);
  Decide(h, "gate", "key_a1", "viewer", true, 10);
  EXPECT_EQ(h.Fire("gate#1", 100), (Strings{"TimerFired gate#1", "ExecutionFailed timeout"}));
  auto resume = make_resume(h.st(), 200);
  ASSERT_TRUE(resume.ok()) << resume.status().to_string();
  EXPECT_EQ(h.Feed(resume.value(), 200),
            (Strings{R"(Resumed steps=[gate] frames=[""])",
                     R"(StepStarted gate#2 approval {"approvers":["key_a1","key_b2"],)"
                     R"("policy":"all","timeout_ms":100} due=300)"}));
  EXPECT_EQ(h.st().steps.at("gate").decisions, json::array()) << "a new attempt asks again";
  EXPECT_EQ(CheckCode(h, "gate", "key_a1", "viewer"), "ok");
}

// ---------------------------------------------------------------- fold, snapshots, timeline

const char* kMixed = R"({"id":"mixed","steps":[
  {"id":"a","type":"action","config":{"tool_id":"t","action":"x"},"on_success":"gate"},
  {"id":"gate","type":"approval","config":{"approvers":["key_a1","key_b2","role:admin"],
    "policy":"majority","timeout_ms":10000},"on_success":"w"},
  {"id":"w","type":"wait_signal","config":{"name":"payment","timeout_ms":20000}}]})";

// A live state with buffered signals of two names and an approval half-way.
Harness MixedHalfWay() {
  Harness h(kMixed);
  h.Start(json::object(), 100);
  Signal(h, "later", {{"k", "v"}}, 110, "s-1");
  Signal(h, "payment", {{"amount", 3}}, 120, "s-2");
  Signal(h, "later", json::array({1, 2}), 130, "s-3");
  h.Complete("a", 1, json::object(), 140);
  Decide(h, "gate", "key_a1", "viewer", true, 150);
  return h;
}

TEST(WaitState, FoldIsDeterministicAndSnapshotsRoundTripPendingWork) {
  Harness h = MixedHalfWay();
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h.st().steps.at("gate").decisions.size(), 1u);
  ASSERT_EQ(h.st().signals.size(), 2u);
  const std::string live = StateBytes(h.st());
  const json doc = to_json(h.st());
  EXPECT_EQ(doc["signals"]["later"].size(), 2u);
  EXPECT_EQ(doc["signals"]["later"][1]["data"], json::array({1, 2}));
  EXPECT_EQ(doc["steps"]["gate"]["decisions"][0]["key_id"], "key_a1");

  auto a = fold(h.log());
  auto b = fold(h.log());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(StateBytes(a.value()), live);
  EXPECT_EQ(StateBytes(b.value()), live);

  auto decoded = decode_state(encode_state(h.st()));
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(StateBytes(decoded.value()), live);
  v1::Snapshot row = make_snapshot(h.st());
  EXPECT_EQ(row.format(), kSnapshotFormat);
  auto restored = restore_snapshot(row);
  ASSERT_TRUE(restored.ok()) << restored.status().to_string();
  EXPECT_EQ(StateBytes(restored.value()), live);

  // Snapshot at every seq, then fold the rest: the same bytes, and the
  // restored state decides the same way as the live one.
  for (size_t k = 1; k <= h.log().size(); ++k) {
    std::vector<v1::Event> head(h.log().begin(), h.log().begin() + static_cast<std::ptrdiff_t>(k));
    std::vector<v1::Event> rest(h.log().begin() + static_cast<std::ptrdiff_t>(k), h.log().end());
    auto base = restore_snapshot(make_snapshot(fold(head).value()));
    ASSERT_TRUE(base.ok()) << k << ": " << base.status().to_string();
    auto folded = fold_from(std::move(base.value()), rest);
    ASSERT_TRUE(folded.ok()) << k;
    EXPECT_EQ(StateBytes(folded.value()), live) << k;
  }
  Decision d1 = decide(h.flow(), h.st(), 160);
  Decision d2 = decide(h.flow(), restored.value(), 160);
  EXPECT_TRUE(d1.events.empty());
  EXPECT_EQ(d1.commands, d2.commands);

  // Finishing the live state and the restored one gives the same log.
  Harness again(kMixed);
  again.Load(h.log(), 160);
  for (Harness* x : {&h, &again}) {
    EXPECT_EQ(Decide(*x, "gate", "key_x", "admin", true, 170),
              (Strings{"ApprovalRecorded gate key_x/admin approved",
                       R"(StepCompleted gate#1 {"decision":"approved","decisions":[)"
                       R"({"comment":"","decision":"approved","key_id":"key_a1","role":"viewer",)"
                       R"("time_ms":150},{"comment":"","decision":"approved","key_id":"key_x",)"
                       R"("role":"admin","time_ms":170}]})",
                       R"(StepStarted w#1 wait_signal {"name":"payment","timeout_ms":20000})"
                       " due=20170",
                       R"(StepCompleted w#1 {"amount":3} signal=4)",
                       R"(ExecutionCompleted {"amount":3})"}));
  }
  EXPECT_EQ(StateBytes(h.st()), StateBytes(again.st()));
  // Buffered signals outlive the run (a resumed run would still see them).
  EXPECT_EQ(h.st().signals.at("later").size(), 2u);
}

TEST(WaitState, SnapshotReaderChecksTheNewMembers) {
  Harness h = MixedHalfWay();
  ASSERT_TRUE(h.ok());
  json j = to_json(h.st());
  json bad = j;
  bad["signals"]["later"] = json::array();
  EXPECT_EQ(decode_state(bad.dump()).status().code(), "invalid_snapshot");
  bad = j;
  bad["signals"]["later"][0].erase("seq");
  EXPECT_EQ(decode_state(bad.dump()).status().code(), "invalid_snapshot");
  bad = j;
  bad["steps"]["gate"]["decisions"] = "none";
  EXPECT_EQ(decode_state(bad.dump()).status().code(), "invalid_snapshot");
  // A format-2 row (no 0.3 members) is still read.
  Harness plain(kPayment);
  plain.Start(json::object(), 10);
  v1::Snapshot old = make_snapshot(plain.st());
  old.set_format(2);
  auto restored = restore_snapshot(old);
  ASSERT_TRUE(restored.ok());
  EXPECT_FALSE(to_json(plain.st()).contains("signals")) << "unused members are not written";
  EXPECT_EQ(StateBytes(restored.value()), StateBytes(plain.st()));
}

TEST(WaitState, IdleWaitingOnlyWhenNothingCanMoveWithoutATimerSignalOrDecision) {
  Harness h(kMixed);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(is_idle_waiting(h.st())) << "not started";
  h.Start(json::object(), 100);
  EXPECT_FALSE(is_idle_waiting(h.st())) << "a tool call in flight";
  h.Complete("a", 1, json::object(), 140);
  EXPECT_TRUE(is_idle_waiting(h.st()));
  EXPECT_EQ(next_timer_due_ms(h.st()), 10140);
  // An unsettled state (a decision applied, decide() not yet run) is not idle.
  ExecutionState unsettled = h.st();
  v1::Event ev = DecisionEvent(h, "gate", "key_a1", "viewer", true, 150);
  ASSERT_TRUE(apply(unsettled, ev).is_ok());
  EXPECT_TRUE(is_idle_waiting(unsettled)) << "one of three approvals decides nothing";
  v1::Event ev2 = make_event(unsettled, 151);
  *ev2.mutable_approval_recorded() = ev.approval_recorded();
  ev2.mutable_approval_recorded()->set_key_id("key_b2");
  ASSERT_TRUE(apply(unsettled, ev2).is_ok());
  EXPECT_FALSE(is_idle_waiting(unsettled)) << "the majority is reached: decide() moves on";
}

TEST(WaitState, TimelineShowsWaitsSignalsAndDecisionsRedacted) {
  Harness h = MixedHalfWay();
  ASSERT_TRUE(h.ok());
  Signal(h, "later", {{"token", "hunter2-secret"}}, 155, "s-4");
  const json t = timeline(h.log(), {"hunter2"});
  ASSERT_FALSE(t.contains("error")) << t["error"];
  EXPECT_EQ(t["status"], "waiting");
  const json* gate = nullptr;
  for (const auto& s : t["steps"]) {
    if (s["path"] == "gate") gate = &s;
  }
  ASSERT_NE(gate, nullptr);
  EXPECT_EQ((*gate)["status"], "running");
  EXPECT_EQ((*gate)["waiting_for"], (json{{"kind", "approval"},
                                          {"approvers", {"key_a1", "key_b2", "role:admin"}},
                                          {"policy", "majority"},
                                          {"due_at_ms", 10140}}));
  const json& attempt = (*gate)["attempts"][0];
  EXPECT_EQ(attempt["outcome"], "running");
  ASSERT_EQ(attempt["decisions"].size(), 1u);
  EXPECT_EQ(attempt["decisions"][0]["key_id"], "key_a1");
  EXPECT_EQ(attempt["decisions"][0]["decision"], "approved");
  ASSERT_EQ(t["signals"].size(), 4u);
  EXPECT_EQ(t["signals"][0]["name"], "later");
  EXPECT_EQ(t["signals"][0]["consumed_by"], nullptr);
  EXPECT_EQ(t["signals"][3]["data"], (json{{"token", kRedacted}}));

  // Once consumed, the signal names its step and the step's attempt its signal.
  Decide(h, "gate", "key_b2", "viewer", true, 160);
  const json t2 = timeline(h.log());
  EXPECT_EQ(t2["status"], "completed");
  EXPECT_EQ(t2["signals"][1]["consumed_by"], "w");
  const json& w = t2["steps"].back();
  EXPECT_EQ(w["path"], "w");
  EXPECT_FALSE(w.contains("waiting_for"));
  EXPECT_EQ(w["attempts"][0]["signal"],
            (json{{"seq", 4}, {"name", "payment"}, {"signal_id", "s-2"}}));
  EXPECT_EQ(w["attempts"][0]["output"], (json{{"amount", 3}}));
}

TEST(WaitState, TimelineShowsAWaitThatTimedOut) {
  Harness h(kTimedWait);
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 100);
  EXPECT_EQ(timeline(h.log())["steps"][0]["waiting_for"],
            (json{{"kind", "signal"}, {"name", "payment"}, {"due_at_ms", 1100}}));
  h.Fire("w#1", 1100);
  const json t = timeline(h.log());
  EXPECT_EQ(t["steps"][0]["attempts"][0]["outcome"], "timed_out");
  EXPECT_EQ(t["steps"][0]["attempts"][0]["error"]["code"], "timeout");
  EXPECT_FALSE(t["steps"][0].contains("waiting_for"));
}

// ---------------------------------------------------------------- validation

Strings Problems(const json& doc) {
  auto r = parse_flow(doc);
  if (r.ok()) return {};
  Strings out;
  for (const auto& p : r.status().details()) out.push_back(p.path + ": " + p.message);
  return out;
}

TEST(WaitParse, ValidStepsBuildTheModel) {
  auto r = parse_flow(json::parse(R"({"id":"f","steps":[
    {"id":"w","type":"wait_signal","config":{"name":"payment","timeout_ms":60000},
     "on_success":"a","on_timeout":"r","on_failure":"x"},
    {"id":"a","type":"approval","config":{"approvers":["key_ab12","role:admin"],
      "policy":"majority","timeout_ms":1000},"on_timeout":"r"},
    {"id":"b","type":"approval","config":{"approvers":["role:viewer"]}},
    {"id":"r","type":"action","config":{"tool_id":"t","action":"r"},"on_success":"b"},
    {"id":"x","type":"action","config":{"tool_id":"t","action":"x"}}]})"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Flow& f = *r.value();
  const Step& w = *f.locate("w")->step;
  EXPECT_EQ(w.type, StepType::kWaitSignal);
  EXPECT_EQ(w.signal_name, "payment");
  EXPECT_EQ(w.timeout_ms, 60000);
  EXPECT_EQ(w.on_timeout, "r");
  const Step& a = *f.locate("a")->step;
  EXPECT_EQ(a.type, StepType::kApproval);
  EXPECT_EQ(a.approvers, (Strings{"key_ab12", "role:admin"}));
  EXPECT_EQ(a.policy, ApprovalPolicy::kMajority);
  EXPECT_EQ(f.locate("b")->step->policy, ApprovalPolicy::kAny) << "the default";
  EXPECT_EQ(f.locate("b")->step->timeout_ms, 0);
  EXPECT_STREQ(to_string(StepType::kWaitSignal), "wait_signal");
  EXPECT_STREQ(to_string(StepType::kApproval), "approval");
}

TEST(WaitParse, EveryMistakeHasItsPointer) {
  EXPECT_EQ(
      Problems(json::parse(R"({"id":"f","steps":[
    {"id":"w0","type":"wait_signal","config":{"timeout_ms":0,"extra":1},"on_success":"w1",
     "on_timeout":"x"},
    {"id":"w1","type":"wait_signal","config":{"name":""},"on_success":"a2"},
    {"id":"a2","type":"approval","config":{"approvers":[]},"on_success":"a3"},
    {"id":"a3","type":"approval","config":{"approvers":["admin","role:root","key_ok","key_ok",5,
      "key_"],"policy":"most","timeout_ms":"soon"},"on_success":"act"},
    {"id":"act","type":"action","config":{"tool_id":"t","action":"x"},"on_success":"w5",
     "on_timeout":"x"},
    {"id":"w5","type":"wait_signal","config":{"name":"n"},"on_success":"a6","on_timeout":"x"},
    {"id":"a6","type":"approval","config":{"policy":"all"},"on_success":"w7"},
    {"id":"w7","type":"wait_signal","config":{"name":"n","timeout_ms":5},"on_success":"x",
     "on_timeout":"nope"},
    {"id":"x","type":"delay","config":{"duration_ms":1},"on_timeout":""}]})")),
      (Strings{
          "/steps/0/config/extra: unknown field 'extra'",
          "/steps/0/config/name: is required",
          "/steps/0/config/timeout_ms: must be an integer ≥ 1",
          "/steps/1/config/name: must be a non-empty string",
          "/steps/2/config/approvers: must be a non-empty array of API key ids and \"role:<role>\" "
          "entries",
          "/steps/3/config/approvers/0: must be an API key id (key_...) or role:owner, role:admin, "
          "role:editor or role:viewer, got 'admin'",
          "/steps/3/config/approvers/1: must be an API key id (key_...) or role:owner, role:admin, "
          "role:editor or role:viewer, got 'role:root'",
          "/steps/3/config/approvers/3: duplicate approver 'key_ok'",
          "/steps/3/config/approvers/4: must be a string",
          "/steps/3/config/approvers/5: must be an API key id (key_...) or role:owner, role:admin, "
          "role:editor or role:viewer, got 'key_'",
          "/steps/3/config/policy: must be one of any, all, majority",
          "/steps/3/config/timeout_ms: must be an integer ≥ 1",
          "/steps/4/on_timeout: only wait_signal and approval steps can have on_timeout",
          "/steps/5/on_timeout: needs config.timeout_ms: without it the step never times out",
          "/steps/6/config/approvers: is required",
          "/steps/7/on_timeout: unknown step 'nope'",
          "/steps/8/on_timeout: only wait_signal and approval steps can have on_timeout",
      }));
}

TEST(WaitParse, OnTimeoutIsATransitionLikeTheOthers) {
  // Same scope, no cycles.
  EXPECT_EQ(Problems(json::parse(R"({"id":"f","steps":[
    {"id":"w","type":"wait_signal","config":{"name":"n","timeout_ms":5},"on_timeout":"b"},
    {"id":"b","type":"action","config":{"tool_id":"t","action":"b"},"on_success":"w"}]})")),
            (Strings{"/steps/1/on_success: cycle: w -> b -> w; use a loop step to repeat work"}));
  EXPECT_EQ(Problems(json::parse(R"({"id":"f","steps":[
    {"id":"l","type":"loop","config":{"items":[1],"steps":[
      {"id":"w","type":"wait_signal","config":{"name":"n","timeout_ms":5},"on_timeout":"b"}]}},
    {"id":"b","type":"action","config":{"tool_id":"t","action":"b"}}]})")),
            (Strings{"/steps/0/config/steps/0/on_timeout: step 'b' is in another scope",
                     "/steps/1: step 'b' is unreachable from 'l'"}));
  EXPECT_EQ(Problems(json::parse(R"({"id":"f","steps":[
    {"id":"w","type":"wait_signal","config":{"name":"n","timeout_ms":5},"on_timeout":"w"}]})")),
            (Strings{"/steps/0/on_timeout: a step cannot transition to itself"}));
  // A step reached only through on_timeout is reachable.
  EXPECT_EQ(Problems(json::parse(R"({"id":"f","steps":[
    {"id":"w","type":"wait_signal","config":{"name":"n","timeout_ms":5},"on_timeout":"b"},
    {"id":"b","type":"action","config":{"tool_id":"t","action":"b"}}]})")),
            Strings{});
}

}  // namespace
}  // namespace yantra
