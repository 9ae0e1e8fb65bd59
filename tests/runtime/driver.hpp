// Test drivers shared by the runtime suites (decide, fold properties, time
// machine). Two ways to play the engine without actors:
//   - Harness: scripted. It owns the flow, the live ExecutionState and the
//     append-only log, feeds input events (start, tool results, timer
//     firings, cancel, or any prepared event) through advance(), and renders
//     every batch and command list as short strings, so a test states the
//     exact events (kinds, paths, attempts, resolved inputs, due times,
//     outputs) in order.
//   - FlowGen + Driver: generated. FlowGen (a seeded std::mt19937) builds
//     random but valid flows; Driver answers tool calls, fires timers and
//     delivers signals and approval decisions to waiting steps (and stray
//     signals nobody waits for yet) from its own RNG, a tool's answer being
//     a pure function of (seed, idempotency key). See fold_property_test.cpp
//     for the properties.
// Everything is inline in namespace yantra::test so several test files of
// one binary can include it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "runtime/execution.hpp"
#include "runtime/flow.hpp"
#include "runtime/waits.hpp"

namespace yantra::test {

// ---------------------------------------------------------------- scripted harness

using Strings = std::vector<std::string>;

inline constexpr const char* kExec = "exec-1";

inline std::string Describe(const v1::Event& ev) {
  switch (ev.body_case()) {
    case v1::Event::kExecutionStarted: return "ExecutionStarted";
    case v1::Event::kStepStarted: {
      const auto& e = ev.step_started();
      std::string s = "StepStarted " + e.path() + "#" + std::to_string(e.attempt()) + " " +
                      e.kind() + " " + e.input_json();
      if (!e.frame().empty()) s += " @" + e.frame();
      if (e.timer_due_ms() > 0) s += " due=" + std::to_string(e.timer_due_ms());
      return s;
    }
    case v1::Event::kStepCompleted: {
      const auto& e = ev.step_completed();
      return "StepCompleted " + e.path() + "#" + std::to_string(e.attempt()) + " " +
             e.output_json() +
             (e.signal_seq() != 0 ? " signal=" + std::to_string(e.signal_seq()) : "");
    }
    case v1::Event::kStepFailed: {
      const auto& e = ev.step_failed();
      return "StepFailed " + e.path() + "#" + std::to_string(e.attempt()) + " " + e.error().code() +
             (e.error().retriable() ? " retriable" : "");
    }
    case v1::Event::kRetryScheduled: {
      const auto& e = ev.retry_scheduled();
      return "RetryScheduled " + e.path() + "#" + std::to_string(e.next_attempt()) +
             " due=" + std::to_string(e.due_ms());
    }
    case v1::Event::kTimerFired: return "TimerFired " + ev.timer_fired().timer_id();
    case v1::Event::kBranchTaken: {
      const auto& e = ev.branch_taken();
      return "BranchTaken " + e.path() + (e.result() ? " true" : " false") + " -> " + e.next();
    }
    case v1::Event::kFrameEnded: {
      const auto& e = ev.frame_ended();
      return "FrameEnded " + e.frame() +
             (e.failed() ? " failed " + e.error().code() : " ok " + e.output_json());
    }
    case v1::Event::kExecutionCompleted:
      return "ExecutionCompleted " + ev.execution_completed().output_json();
    case v1::Event::kExecutionFailed:
      return "ExecutionFailed " + ev.execution_failed().error().code();
    case v1::Event::kExecutionCancelled:
      return "ExecutionCancelled " + ev.execution_cancelled().reason();
    case v1::Event::kExecutionTimedOut:
      return "ExecutionTimedOut " + std::to_string(ev.execution_timed_out().timeout_ms());
    case v1::Event::kStateOverridden:
      return "StateOverridden " + ev.state_overridden().patch_json();
    case v1::Event::kResumed: {
      const auto& e = ev.resumed();
      std::string s = "Resumed steps=[";
      for (int i = 0; i < e.steps_size(); ++i) s += (i > 0 ? "," : "") + e.steps(i);
      s += "] frames=[";
      // The root frame's id is "": shown quoted so it is visible.
      for (int i = 0; i < e.frames_size(); ++i) {
        s += (i > 0 ? "," : "") + (e.frames(i).empty() ? std::string("\"\"") : e.frames(i));
      }
      return s + "]";
    }
    case v1::Event::kSignalReceived: {
      const auto& e = ev.signal_received();
      return "SignalReceived " + e.name() + " " + e.data_json();
    }
    case v1::Event::kApprovalRecorded: {
      const auto& e = ev.approval_recorded();
      return "ApprovalRecorded " + e.step_path() + " " + e.key_id() + "/" + e.role() + " " +
             e.decision();
    }
    case v1::Event::BODY_NOT_SET: break;
  }
  return "?";
}

inline std::string Describe(const Command& c) {
  if (c.kind == Command::Kind::kStartTimer) {
    return "timer " + c.timer_id + " due=" + std::to_string(c.due_ms);
  }
  return "invoke " + c.path + "#" + std::to_string(c.attempt) + " " + c.tool_id + "." + c.action +
         " " + dump_canonical(c.parameters) + " key=" + c.idempotency_key +
         " timeout=" + std::to_string(c.timeout_ms);
}

inline std::shared_ptr<const Flow> ParseOrFail(const std::string& text) {
  auto r = parse_flow(json::parse(text));
  if (!r.ok()) {
    std::string problems;
    for (const auto& p : r.status().details()) problems += "\n  " + p.path + ": " + p.message;
    ADD_FAILURE() << r.status().to_string() << problems;
    return nullptr;
  }
  return r.value();
}

inline std::string StateBytes(const ExecutionState& st) {
  return to_json(st).dump();
}

class Harness {
 public:
  explicit Harness(const std::string& flow_text) : flow_(ParseOrFail(flow_text)) {}

  bool ok() const { return flow_ != nullptr; }
  const Flow& flow() const { return *flow_; }
  const ExecutionState& st() const { return st_; }
  const std::vector<v1::Event>& log() const { return log_; }
  const std::vector<v1::Event>& last_batch() const { return batch_; }

  Strings Start(const json& input, int64_t now) {
    v1::Event ev = make_event(st_, now);
    auto& e = *ev.mutable_execution_started();
    e.set_execution_id(kExec);
    e.set_tenant("acme");
    e.set_flow_id(flow_->id);
    e.set_flow_version(1);
    e.set_input_json(dump_canonical(input));
    e.set_timeout_ms(flow_->timeout_ms);
    return Feed(std::move(ev), now);
  }

  Strings Complete(const std::string& path, uint32_t attempt, const json& output, int64_t now) {
    return Feed(CompletedEvent(path, attempt, output, now), now);
  }

  Strings Fail(const std::string& path, uint32_t attempt, const std::string& code, bool retriable,
               int64_t now) {
    return Feed(FailedEvent(path, attempt, code, retriable, now), now);
  }

  Strings Fire(const std::string& timer_id, int64_t now) {
    v1::Event ev = make_event(st_, now);
    ev.mutable_timer_fired()->set_timer_id(timer_id);
    return Feed(std::move(ev), now);
  }

  Strings Cancel(const std::string& reason, int64_t now) {
    v1::Event ev = make_event(st_, now);
    ev.mutable_execution_cancelled()->set_reason(reason);
    return Feed(std::move(ev), now);
  }

  v1::Event CompletedEvent(const std::string& path, uint32_t attempt, const json& output,
                           int64_t now) const {
    v1::Event ev = make_event(st_, now);
    auto& e = *ev.mutable_step_completed();
    e.set_path(path);
    e.set_attempt(attempt);
    e.set_output_json(dump_canonical(output));
    return ev;
  }

  v1::Event FailedEvent(const std::string& path, uint32_t attempt, const std::string& code,
                        bool retriable, int64_t now) const {
    v1::Event ev = make_event(st_, now);
    auto& e = *ev.mutable_step_failed();
    e.set_path(path);
    e.set_attempt(attempt);
    e.mutable_error()->set_code(code);
    e.mutable_error()->set_message(code + " happened");
    e.mutable_error()->set_retriable(retriable);
    return ev;
  }

  // Feeds an input that must be rejected; returns the error code ("" when it
  // was accepted, which is then a test failure of the caller's expectation)
  // and checks the state was left untouched.
  std::string Reject(v1::Event ev, int64_t now) {
    const std::string before = StateBytes(st_);
    std::vector<Command> cmds;
    auto r = advance(*flow_, st_, std::move(ev), now, &cmds);
    if (r.ok()) {
      for (auto& e : r.value()) log_.push_back(e);
      batch_ = std::move(r.value());
      commands_ = std::move(cmds);
      return "";
    }
    EXPECT_EQ(StateBytes(st_), before) << "a rejected event changed the state";
    return r.status().code();
  }

  Strings Commands() const {
    Strings out;
    for (const auto& c : commands_) out.push_back(Describe(c));
    return out;
  }
  const std::vector<Command>& commands() const { return commands_; }

  // Replaces the state and log by `events` (a fork, a log with a Resumed
  // event appended, ...) folded, then settles at `now` as the engine does
  // when it activates an execution; returns the events decided.
  Strings Load(std::vector<v1::Event> events, int64_t now) {
    auto folded = fold(events);
    if (!folded.ok()) {
      ADD_FAILURE() << "fold failed: " << folded.status().to_string();
      return {"<error " + folded.status().code() + ">"};
    }
    st_ = std::move(folded.value());
    log_ = std::move(events);
    std::vector<Command> cmds;
    auto r = settle(*flow_, st_, now, &cmds);
    if (!r.ok()) {
      ADD_FAILURE() << "settle failed: " << r.status().to_string();
      return {"<error " + r.status().code() + ">"};
    }
    return Record(std::move(r.value()), std::move(cmds));
  }

  // Feeds any input event (seq filled in by advance()).
  Strings Feed(v1::Event ev, int64_t now) {
    std::vector<Command> cmds;
    auto r = advance(*flow_, st_, std::move(ev), now, &cmds);
    if (!r.ok()) {
      ADD_FAILURE() << "advance failed: " << r.status().to_string();
      return {"<error " + r.status().code() + ">"};
    }
    return Record(std::move(r.value()), std::move(cmds));
  }

 private:
  Strings Record(std::vector<v1::Event> batch, std::vector<Command> cmds) {
    batch_ = std::move(batch);
    commands_ = std::move(cmds);
    Strings out;
    for (const auto& e : batch_) {
      log_.push_back(e);
      out.push_back(Describe(e));
    }
    return out;
  }

  std::shared_ptr<const Flow> flow_;
  ExecutionState st_;
  std::vector<v1::Event> log_;
  std::vector<v1::Event> batch_;
  std::vector<Command> commands_;
};

// ---------------------------------------------------------------- generated flows

inline constexpr int kMaxRounds = 5000;
inline constexpr const char* kExecId = "exec-prop";

struct GenCtx {
  std::vector<std::string> visible;  // step ids a $ref may name here
  bool in_loop = false;
  int depth = 1;
};

class FlowGen {
 public:
  explicit FlowGen(uint32_t seed) : rng_(seed) {}

  json Flow() {
    GenCtx ctx;
    std::vector<std::string> root_ids;
    json steps = Chain(ctx, R(1, 5), &root_ids);
    json doc = {{"id", "gen"}, {"steps", std::move(steps)}};
    if (P(40)) {
      const std::string& pick = root_ids[static_cast<size_t>(R(0, Size(root_ids) - 1))];
      doc["output"] = {{"r", {{"$ref", pick}}}, {"n", {{"$ref", "input.n"}}}};
    }
    json config = json::object();
    config["on_error"] = P(50) ? "fail" : "continue";
    if (P(25)) config["timeout_ms"] = R(300, 3000);
    doc["config"] = std::move(config);
    return doc;
  }

  json Input() {
    json list = json::array();
    for (int i = R(0, 3); i > 0; --i) list.push_back({{"n", R(0, 10)}});
    return {{"a", "A"}, {"n", R(0, 10)}, {"s", "text"}, {"zero", 0}, {"list", std::move(list)}};
  }

 private:
  int R(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool P(int percent) { return R(1, 100) <= percent; }
  static int Size(const std::vector<std::string>& v) { return static_cast<int>(v.size()); }

  json Ref(const std::string& path) { return {{"$ref", path}}; }
  json Expr(const std::string& source) { return {{"$expr", source}}; }

  // A step id a $ref may name, or "" when none is visible.
  std::string Visible(const GenCtx& ctx) {
    if (ctx.visible.empty()) return "";
    return ctx.visible[static_cast<size_t>(R(0, Size(ctx.visible) - 1))];
  }

  // A sequential scope: n steps, each transitioning only forward, so the
  // chain is acyclic and every step is reachable from the first through
  // on_success/on_true to its successor.
  json Chain(const GenCtx& outer, int n, std::vector<std::string>* ids_out = nullptr) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back("s" + std::to_string(next_id_++));
    if (ids_out != nullptr) *ids_out = ids;
    json steps = json::array();
    GenCtx ctx = outer;
    for (int i = 0; i < n; ++i) {
      json step = Step(ids[static_cast<size_t>(i)], ctx);
      const bool last = i == n - 1;
      auto later = [&] { return ids[static_cast<size_t>(R(i + 1, n - 1))]; };
      if (step["type"] == "condition") {
        if (!last) {
          step["config"]["on_true"] = ids[static_cast<size_t>(i + 1)];
          if (P(50)) {
            step["config"]["on_false"] = later();
          } else if (P(50)) {
            step["on_success"] = later();
          }
        }
      } else if (!last) {
        step["on_success"] = ids[static_cast<size_t>(i + 1)];
      }
      if (!last && P(25)) step["on_failure"] = later();
      const bool waits = step["type"] == "wait_signal" || step["type"] == "approval";
      if (!last && waits && step["config"].contains("timeout_ms") && P(50)) {
        step["on_timeout"] = later();
      }
      steps.push_back(std::move(step));
      ctx.visible.push_back(ids[static_cast<size_t>(i)]);
    }
    return steps;
  }

  json Step(const std::string& id, const GenCtx& ctx) {
    const bool nest = ctx.depth < 3;
    const int roll = R(1, 100);
    if (roll <= 6) return Wait(id);
    if (nest && roll > 82) return Parallel(id, ctx);
    if (nest && roll > 64) return Loop(id, ctx);
    if (roll > (nest ? 52 : 80)) return Condition(id, ctx);
    if (roll > (nest ? 44 : 70)) {
      return {{"id", id}, {"type", "delay"}, {"config", {{"duration_ms", R(0, 300)}}}};
    }
    return Action(id, ctx);
  }

  json Action(const std::string& id, const GenCtx& ctx) {
    json params = json::object();
    const std::string vis = Visible(ctx);
    switch (R(0, 4)) {
      case 0: params["n"] = R(0, 10); break;
      case 1: params["n"] = Ref("input.n"); break;
      case 2: params["n"] = Expr("input.n * 2"); break;
      case 3: params["n"] = ctx.in_loop ? Ref("index") : Expr("len(input.list)"); break;
      default: params["n"] = vis.empty() ? json(7) : Ref(vis + ".n"); break;
    }
    switch (R(0, 4)) {
      case 0: params["x"] = "lit"; break;
      case 1: params["x"] = Ref("input.a"); break;
      case 2: params["x"] = ctx.in_loop ? Ref("item") : Ref("input.list"); break;
      case 3: params["x"] = vis.empty() ? json("none") : Ref(vis); break;
      default: params["x"] = json::array({1, Ref("input.n")}); break;
    }
    if (P(4)) params["bad"] = Expr("input.n / input.zero");
    json config = {{"tool_id", "t"}, {"action", "echo"}, {"parameters", std::move(params)}};
    if (P(30)) config["timeout_ms"] = R(20, 200);
    json step = {{"id", id}, {"type", "action"}, {"config", std::move(config)}};
    if (P(50)) {
      const int initial = R(1, 20) * 10;
      step["retry_config"] = {{"max_attempts", R(1, 3)},
                              {"backoff_type", P(50) ? "fixed" : "exponential"},
                              {"initial_delay_ms", initial},
                              {"max_delay_ms", initial * R(1, 4)}};
    }
    return step;
  }

  // A wait_signal step (names "go" and "data", which the driver also sends
  // unasked) or an approval over the driver's keys, sometimes with a timeout.
  json Wait(const std::string& id) {
    json step = {{"id", id}};
    json config = json::object();
    if (P(50)) {
      step["type"] = "wait_signal";
      config["name"] = P(50) ? "go" : "data";
    } else {
      static const char* kApprovers[] = {"key_a", "key_b", "role:admin", "role:editor"};
      static const char* kPolicies[] = {"any", "all", "majority"};
      json approvers = json::array();
      for (const char* a : kApprovers) {
        if (P(50)) approvers.push_back(a);
      }
      if (approvers.empty()) approvers.push_back("role:admin");
      step["type"] = "approval";
      config["approvers"] = std::move(approvers);
      config["policy"] = kPolicies[R(0, 2)];
    }
    if (P(50)) config["timeout_ms"] = R(50, 500);
    step["config"] = std::move(config);
    return step;
  }

  json Condition(const std::string& id, const GenCtx& ctx) {
    json cond;
    const int roll = R(1, 100);
    if (roll <= 40) {
      static const char* kOps[] = {"==", "!=", ">", "<", ">=", "<="};
      const std::string vis = Visible(ctx);
      json left = Ref("input.n");
      if (ctx.in_loop && P(40)) left = Ref("index");
      if (!vis.empty() && P(30)) left = Ref(vis + ".n");
      cond = {{"operator", kOps[R(0, 5)]}, {"left", std::move(left)}, {"right", R(0, 10)}};
    } else if (roll <= 96) {
      const std::string k = std::to_string(R(0, 10));
      switch (R(0, 3)) {
        case 0: cond = Expr("input.n > " + k); break;
        case 1: cond = Expr("input.n % 2 == 0"); break;
        case 2: cond = Expr(ctx.in_loop ? "index < " + k : "len(input.list) > 1"); break;
        default: cond = Expr("input.a == \"A\" && input.n <= " + k); break;
      }
    } else {
      cond = Expr("input.s * 2");  // a type error: the step fails
    }
    return {{"id", id}, {"type", "condition"}, {"config", {{"condition", std::move(cond)}}}};
  }

  json Loop(const std::string& id, const GenCtx& ctx) {
    json config = json::object();
    const int roll = R(1, 100);
    if (roll <= 55) {
      config["items"] = Ref("input.list");
    } else if (roll <= 85) {
      json items = json::array();
      for (int i = R(0, 3); i > 0; --i) items.push_back(R(0, 9));
      config["items"] = std::move(items);
    } else if (roll <= 95) {
      config["items"] = Expr("[input.n, 2]");
    } else {
      config["items"] = Ref("input.n");  // not an array: invalid_items
    }
    if (P(10)) config["max_iterations"] = 1;
    if (P(50)) {
      config["parallel"] = true;
      if (P(50)) config["max_concurrency"] = R(1, 2);
    }
    GenCtx inner = ctx;
    inner.in_loop = true;
    inner.depth = ctx.depth + 1;
    config["steps"] = Chain(inner, R(1, 3));
    return {{"id", id}, {"type", "loop"}, {"config", std::move(config)}};
  }

  json Parallel(const std::string& id, const GenCtx& ctx) {
    GenCtx inner = ctx;
    inner.depth = ctx.depth + 1;
    json steps = json::array();
    // Branches are disjoint chains: a transition never crosses into another
    // branch, so each branch head is a root of the scope.
    for (int b = R(1, 3); b > 0; --b) {
      for (auto& step : Chain(inner, R(1, 2))) steps.push_back(std::move(step));
    }
    const int roll = R(1, 100);
    const char* wait_for = roll <= 50 ? "all" : roll <= 80 ? "any" : "none";
    return {{"id", id},
            {"type", "parallel"},
            {"config", {{"wait_for", wait_for}, {"steps", std::move(steps)}}}};
  }

  std::mt19937 rng_;
  int next_id_ = 0;
};

// ---------------------------------------------------------------- driver

inline uint64_t Fnv1a(const std::string& s, uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

struct Snapshot {
  size_t log_size = 0;
  std::mt19937 rng;
  int64_t now = 0;
  std::vector<Command> commands;
};

struct DriverRun {
  std::vector<v1::Event> log;
  std::vector<Snapshot> snapshots;  // after each batch, in order
  ExecutionState st;
  std::vector<Command> commands;
  std::vector<std::string> invoked;  // "path#attempt" of every answered tool call
  std::string error;                 // why the run did not finish
};

class Driver {
 public:
  Driver(const Flow& flow, uint32_t seed) : flow_(flow), seed_(seed), rng_(seed ^ 0x9E3779B9u) {
    for (const auto& [id, loc] : flow.all_steps) {
      if (loc.step->type == StepType::kWaitSignal) sends_signals_ = true;
    }
  }

  void Restore(const Snapshot& s) {
    rng_ = s.rng;
    now_ = s.now;
  }

  bool Start(const json& input, DriverRun& run) {
    v1::Event ev = make_event(run.st, now_);
    auto& e = *ev.mutable_execution_started();
    e.set_execution_id(kExecId);
    e.set_tenant("t1");
    e.set_flow_id(flow_.id);
    e.set_flow_version(3);
    e.set_input_json(dump_canonical(input));
    e.set_timeout_ms(flow_.timeout_ms);
    return Advance(std::move(ev), run);
  }

  // Runs until the execution ends; false (with run.error) when it does not.
  bool Finish(DriverRun& run) {
    for (int round = 0; round < kMaxRounds; ++round) {
      if (is_terminal(run.st.status)) return true;
      if (!Round(run)) return false;
    }
    run.error = "no end after " + std::to_string(kMaxRounds) + " rounds";
    return false;
  }

 private:
  bool Round(DriverRun& run) {
    std::vector<const Command*> tools;
    std::vector<const Command*> timers;
    for (const auto& c : run.commands) {
      (c.kind == Command::Kind::kInvokeTool ? tools : timers).push_back(&c);
    }
    std::sort(timers.begin(), timers.end(), [](const Command* a, const Command* b) {
      return a->due_ms != b->due_ms ? a->due_ms < b->due_ms : a->timer_id < b->timer_id;
    });
    const std::vector<std::string> waits = input_waits(run.st);
    const bool idle = tools.empty() && timers.empty();
    if (idle && waits.empty()) {
      run.error = "stuck: not terminal and nothing in flight (" + run.st.display_status() + ")";
      return false;
    }
    const uint32_t roll = rng_() % 100;
    if (roll == 0) {
      v1::Event ev = make_event(run.st, ++now_);
      ev.mutable_execution_cancelled()->set_reason("random cancel");
      return Advance(std::move(ev), run);
    }
    // A signal nobody asked for (yet): buffered until a step waits for it.
    if (sends_signals_ && roll < 4) {
      const char* name = rng_() % 2 == 0 ? "go" : "data";
      if (can_accept_signal(run.st, name).is_ok()) {
        ++now_;
        return Advance(make_signal_event(run.st, name, json{{"stray", roll}}, "", now_), run);
      }
    }
    if (!waits.empty() && (idle || (roll >= 25 && roll < (tools.empty() ? 75 : 40)))) {
      return Deliver(waits[rng_() % waits.size()], run);
    }
    if (tools.empty() || (!timers.empty() && roll < 25)) {
      const Command& t = *timers.front();
      now_ = std::max(now_, t.due_ms);
      v1::Event ev = make_event(run.st, now_);
      ev.mutable_timer_fired()->set_timer_id(t.timer_id);
      return Advance(std::move(ev), run);
    }
    const Command& c = *tools[rng_() % tools.size()];
    now_ += 1 + static_cast<int64_t>(rng_() % 30);
    if (c.idempotency_key != run.st.execution_id + "/" + c.path + "/" + std::to_string(c.attempt)) {
      run.error = "bad idempotency key " + c.idempotency_key;
      return false;
    }
    run.invoked.push_back(c.path + "#" + std::to_string(c.attempt));
    v1::Event ev = make_event(run.st, now_);
    std::mt19937_64 answer(Fnv1a(c.idempotency_key, seed_));
    const uint64_t pick = answer() % 100;
    if (pick < 72) {
      auto& e = *ev.mutable_step_completed();
      e.set_path(c.path);
      e.set_attempt(c.attempt);
      e.set_output_json(dump_canonical(c.parameters));
    } else {
      auto& e = *ev.mutable_step_failed();
      e.set_path(c.path);
      e.set_attempt(c.attempt);
      e.mutable_error()->set_code(pick < 90 ? "unavailable" : "bad_request");
      e.mutable_error()->set_message("tool said no");
      e.mutable_error()->set_retriable(pick < 90);
    }
    return Advance(std::move(ev), run);
  }

  // A signal of the name the step waits for, or a decision of the first of
  // the driver's keys (from a random one on) that may still decide.
  bool Deliver(const std::string& path, DriverRun& run) {
    static const char* kKeys[][2] = {{"key_a", "viewer"}, {"key_b", "editor"}, {"key_c", "admin"}};
    now_ += 1 + static_cast<int64_t>(rng_() % 30);
    const StepState& s = run.st.steps.at(path);
    if (s.kind == "wait_signal") {
      const json data = {{"n", static_cast<int>(rng_() % 10)}};
      return Advance(make_signal_event(run.st, s.input.value("name", ""), data, "", now_), run);
    }
    const uint32_t first = rng_() % 3;
    const bool approve = rng_() % 100 < 65;
    for (uint32_t i = 0; i < 3; ++i) {
      const char* const* key = kKeys[(first + i) % 3];
      auto target = check_approval(flow_, run.st, path, key[0], key[1]);
      if (!target.ok()) continue;
      return Advance(make_approval_event(run.st, target.value(), key[0], key[1], approve, "", now_),
                     run);
    }
    run.error = "nobody may decide on " + path;
    return false;
  }

  bool Advance(v1::Event ev, DriverRun& run) {
    std::vector<Command> cmds;
    auto batch = advance(flow_, run.st, std::move(ev), now_, &cmds);
    if (!batch.ok()) {
      run.error = "advance: " + batch.status().to_string();
      return false;
    }
    for (auto& e : batch.value()) run.log.push_back(std::move(e));
    run.commands = std::move(cmds);
    run.snapshots.push_back(Snapshot{run.log.size(), rng_, now_, run.commands});
    return true;
  }

  const Flow& flow_;
  uint64_t seed_;
  std::mt19937 rng_;
  int64_t now_ = 1000;
  bool sends_signals_ = false;
};

// ---------------------------------------------------------------- the corpus

struct Case {
  uint32_t seed = 0;
  json doc;
  json input;
  std::shared_ptr<const Flow> flow;
  DriverRun run;
  std::string error;  // generation or run failure
};

inline std::string Bytes(const ExecutionState& st) {
  return to_json(st).dump();
}

inline std::vector<std::string> Serialized(const std::vector<v1::Event>& log) {
  std::vector<std::string> out;
  out.reserve(log.size());
  for (const auto& e : log) out.push_back(e.SerializeAsString());
  return out;
}

inline Case Generate(uint32_t seed) {
  Case c;
  c.seed = seed;
  FlowGen gen(seed);
  c.doc = gen.Flow();
  c.input = gen.Input();
  auto parsed = parse_flow(c.doc);
  if (!parsed.ok()) {
    c.error = "generated flow is invalid: " + parsed.status().to_string();
    for (const auto& p : parsed.status().details()) c.error += "\n  " + p.path + ": " + p.message;
    return c;
  }
  c.flow = parsed.value();
  Driver driver(*c.flow, seed);
  if (!driver.Start(c.input, c.run) || !driver.Finish(c.run)) c.error = c.run.error;
  return c;
}

}  // namespace yantra::test
