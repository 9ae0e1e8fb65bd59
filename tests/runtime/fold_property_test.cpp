// Property tests of the event log over generated workflows.
//
// Design: FlowGen (a seeded std::mt19937) builds random but valid flows:
// chains of action/condition/delay/loop/parallel steps, containers nested up
// to depth 3, random retry policies and deadlines, forward-only transitions
// (on_success, on_failure, on_true, on_false) and parameters made of
// literals, $ref/$expr over the input, loop variables and earlier or
// enclosing steps. Driver plays the engine without actors: it feeds the
// ExecutionStarted input through advance(), then, round by round, either
// answers one in-flight tool call or fires the earliest pending timer (the
// clock jumps to its due time); the choice comes from the driver's own RNG.
// A tool's answer is a pure function of (seed, idempotency key): success with
// output = parameters, or a retriable / non-retriable failure, so a re-issued
// call gets the same answer, as with a real idempotent tool. Every batch and
// the driver's state after it (RNG, clock, commands) are recorded.
//
// The corpus (kFlows flows) is generated and run once per suite; each test
// checks one property over all of it:
//   - folding the whole log twice gives byte-identical to_json() and equals
//     the live state the driver ended with;
//   - every prefix of the log folds, the same way twice, and seq is dense;
//   - the same seed gives the same flow and a byte-identical log;
//   - a crash at a batch boundary: fold the prefix, settle() re-issues the
//     very commands (same idempotency keys) the live run had in flight, no
//     attempt that ended before the cut is invoked again or accepted twice,
//     and continuing the driver reproduces the uncrashed log and output;
//   - the corpus really exercises every event kind and every ending.
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

namespace yantra {
namespace {

constexpr int kFlows = 400;
constexpr int kMaxRounds = 5000;
constexpr const char* kExecId = "exec-prop";

// ---------------------------------------------------------------- flow generator

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
      steps.push_back(std::move(step));
      ctx.visible.push_back(ids[static_cast<size_t>(i)]);
    }
    return steps;
  }

  json Step(const std::string& id, const GenCtx& ctx) {
    const bool nest = ctx.depth < 3;
    const int roll = R(1, 100);
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

uint64_t Fnv1a(const std::string& s, uint64_t h = 1469598103934665603ULL) {
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
  Driver(const Flow& flow, uint32_t seed) : flow_(flow), seed_(seed), rng_(seed ^ 0x9E3779B9u) {}

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
    if (tools.empty() && timers.empty()) {
      run.error = "stuck: not terminal and nothing in flight (" + run.st.display_status() + ")";
      return false;
    }
    const uint32_t roll = rng_() % 100;
    if (roll == 0) {
      v1::Event ev = make_event(run.st, ++now_);
      ev.mutable_execution_cancelled()->set_reason("random cancel");
      return Advance(std::move(ev), run);
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
    if (c.idempotency_key !=
        std::string(kExecId) + "/" + c.path + "/" + std::to_string(c.attempt)) {
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

std::string Bytes(const ExecutionState& st) {
  return to_json(st).dump();
}

std::vector<std::string> Serialized(const std::vector<v1::Event>& log) {
  std::vector<std::string> out;
  out.reserve(log.size());
  for (const auto& e : log) out.push_back(e.SerializeAsString());
  return out;
}

Case Generate(uint32_t seed) {
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

class FoldProperty : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    corpus_ = new std::vector<Case>();
    for (int i = 0; i < kFlows; ++i) corpus_->push_back(Generate(static_cast<uint32_t>(i + 1)));
  }
  static void TearDownTestSuite() {
    delete corpus_;
    corpus_ = nullptr;
  }
  static const std::vector<Case>& corpus() { return *corpus_; }

  static std::string Trace(const Case& c) {
    return "seed " + std::to_string(c.seed) + " flow " + c.doc.dump() + " input " + c.input.dump();
  }

 private:
  static std::vector<Case>* corpus_;
};

std::vector<Case>* FoldProperty::corpus_ = nullptr;

TEST_F(FoldProperty, GeneratedFlowsAreValidAndEveryExecutionEnds) {
  ASSERT_EQ(corpus().size(), static_cast<size_t>(kFlows));
  int failures = 0;
  for (const Case& c : corpus()) {
    EXPECT_EQ(c.error, "") << Trace(c);
    if (!c.error.empty() && ++failures >= 3) break;
    if (!c.error.empty()) continue;
    EXPECT_TRUE(is_terminal(c.run.st.status)) << Trace(c);
    EXPECT_EQ(c.run.log.front().body_case(), v1::Event::kExecutionStarted);
    const v1::Event& last = c.run.log.back();
    EXPECT_TRUE(last.has_execution_completed() || last.has_execution_failed() ||
                last.has_execution_cancelled() || last.has_execution_timed_out())
        << Trace(c);
    EXPECT_TRUE(c.run.commands.empty()) << Trace(c);
  }
}

TEST_F(FoldProperty, FoldingTheLogTwiceIsByteIdenticalAndMatchesTheLiveState) {
  for (const Case& c : corpus()) {
    if (!c.error.empty()) continue;
    SCOPED_TRACE(Trace(c));
    auto a = fold(c.run.log);
    auto b = fold(c.run.log);
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    const std::string live = Bytes(c.run.st);
    ASSERT_EQ(Bytes(a.value()), Bytes(b.value()));
    ASSERT_EQ(Bytes(a.value()), live);
    EXPECT_EQ(a.value().display_status(), c.run.st.display_status());
  }
}

TEST_F(FoldProperty, EveryPrefixFoldsTheSameWayTwiceWithDenseSeq) {
  size_t prefixes = 0;
  for (const Case& c : corpus()) {
    if (!c.error.empty()) continue;
    SCOPED_TRACE(Trace(c));
    const auto& log = c.run.log;
    ExecutionState incremental;
    for (size_t n = 1; n <= log.size(); ++n) {
      ASSERT_EQ(log[n - 1].seq(), n);
      ASSERT_TRUE(apply(incremental, log[n - 1]).is_ok()) << "event " << n;
      std::vector<v1::Event> prefix(log.begin(), log.begin() + static_cast<ptrdiff_t>(n));
      auto folded = fold(prefix);
      ASSERT_TRUE(folded.ok()) << "prefix " << n << ": " << folded.status().to_string();
      ASSERT_EQ(Bytes(folded.value()), Bytes(incremental)) << "prefix " << n;
      ASSERT_EQ(folded.value().last_seq, n);
      ++prefixes;
    }
  }
  EXPECT_GT(prefixes, static_cast<size_t>(kFlows) * 10);
}

TEST_F(FoldProperty, SameSeedGivesTheSameFlowAndAByteIdenticalLog) {
  for (const Case& c : corpus()) {
    if (!c.error.empty()) continue;
    SCOPED_TRACE(Trace(c));
    Case again = Generate(c.seed);
    ASSERT_EQ(again.error, "");
    ASSERT_EQ(again.doc.dump(), c.doc.dump());
    ASSERT_EQ(again.input.dump(), c.input.dump());
    ASSERT_EQ(Serialized(again.run.log), Serialized(c.run.log));
    ASSERT_EQ(Bytes(again.run.st), Bytes(c.run.st));
  }
}

TEST_F(FoldProperty, CrashAtABatchBoundaryRecoversWithTheSameKeysAndOutput) {
  int reissued_calls = 0;
  int rejected_duplicates = 0;
  for (const Case& c : corpus()) {
    if (!c.error.empty()) continue;
    SCOPED_TRACE(Trace(c));
    const auto& snaps = c.run.snapshots;
    ASSERT_FALSE(snaps.empty());
    std::mt19937 pick(c.seed * 31u + 7u);
    const Snapshot& cut = snaps[pick() % snaps.size()];
    const std::vector<v1::Event> prefix(c.run.log.begin(),
                                        c.run.log.begin() + static_cast<ptrdiff_t>(cut.log_size));

    // Attempts that ended before the cut.
    std::set<std::string> ended;
    for (const auto& e : prefix) {
      if (e.has_step_completed()) {
        ended.insert(e.step_completed().path() + "#" +
                     std::to_string(e.step_completed().attempt()));
      } else if (e.has_step_failed()) {
        ended.insert(e.step_failed().path() + "#" + std::to_string(e.step_failed().attempt()));
      }
    }

    DriverRun recovered;
    auto folded = fold(prefix);
    ASSERT_TRUE(folded.ok()) << folded.status().to_string();
    recovered.st = std::move(folded.value());
    recovered.log = prefix;
    auto rest = settle(*c.flow, recovered.st, cut.now, &recovered.commands);
    ASSERT_TRUE(rest.ok()) << rest.status().to_string();
    EXPECT_TRUE(rest.value().empty()) << "a persisted batch ends settled";
    // The recovered state asks for exactly what was in flight before the crash.
    ASSERT_EQ(recovered.commands, cut.commands);
    for (const Command& cmd : recovered.commands) {
      if (cmd.kind != Command::Kind::kInvokeTool) continue;
      ++reissued_calls;
      const std::string id = cmd.path + "#" + std::to_string(cmd.attempt);
      EXPECT_EQ(ended.count(id), 0u) << id << " ended before the cut";
      EXPECT_EQ(cmd.idempotency_key,
                std::string(kExecId) + "/" + cmd.path + "/" + std::to_string(cmd.attempt));
    }
    // A result delivered again for an attempt that already ended is refused.
    int checked = 0;
    for (const auto& e : prefix) {
      if (!e.has_step_completed() || checked >= 3) continue;
      ExecutionState copy = recovered.st;
      v1::Event dup = make_event(copy, cut.now);
      *dup.mutable_step_completed() = e.step_completed();
      EXPECT_EQ(apply(copy, dup).code(), "invalid_event") << e.step_completed().path();
      ++checked;
      ++rejected_duplicates;
    }

    Driver driver(*c.flow, c.seed);
    driver.Restore(cut);
    ASSERT_TRUE(driver.Finish(recovered)) << recovered.error;
    for (const std::string& id : recovered.invoked) {
      EXPECT_EQ(ended.count(id), 0u) << id << " was invoked again after recovery";
    }
    EXPECT_EQ(recovered.st.output.dump(), c.run.st.output.dump());
    EXPECT_EQ(recovered.st.status, c.run.st.status);
    ASSERT_EQ(Serialized(recovered.log), Serialized(c.run.log));
    EXPECT_EQ(Bytes(recovered.st), Bytes(c.run.st));
  }
  EXPECT_GT(reissued_calls, 20);
  EXPECT_GT(rejected_duplicates, 100);
}

// The properties above are only as strong as the corpus: check it reaches
// every event kind, every ending and the interesting paths.
TEST_F(FoldProperty, CorpusExercisesEveryEventKindAndEnding) {
  std::map<std::string, int> seen;
  for (const Case& c : corpus()) {
    if (!c.error.empty()) continue;
    seen[std::string("status:") + to_string(c.run.st.status)]++;
    for (const auto& e : c.run.log) {
      switch (e.body_case()) {
        case v1::Event::kStepStarted:
          seen["started:" + e.step_started().kind()]++;
          if (e.step_started().attempt() > 1) seen["started:retry"]++;
          if (e.step_started().frame_detached()) seen["started:detached"]++;
          break;
        case v1::Event::kStepFailed: seen["failed:" + e.step_failed().error().code()]++; break;
        case v1::Event::kTimerFired: {
          const std::string& id = e.timer_fired().timer_id();
          seen[id == "#timeout" ? "timer:workflow" : "timer:step"]++;
          break;
        }
        case v1::Event::kStepCompleted: seen["completed"]++; break;
        case v1::Event::kRetryScheduled: seen["retry_scheduled"]++; break;
        case v1::Event::kBranchTaken: seen["branch_taken"]++; break;
        case v1::Event::kFrameEnded:
          seen[e.frame_ended().failed() ? "frame:failed" : "frame:ok"]++;
          break;
        default: break;
      }
    }
    for (const auto& [id, f] : c.run.st.frames) {
      if (f.status == FrameStatus::kAbandoned) seen["frame:abandoned"]++;
    }
    for (const auto& [path, s] : c.run.st.steps) {
      if (s.error.is_object() && s.error.value("code", "") == "timeout") seen["deadline"]++;
    }
  }
  for (const char* key : {"status:completed",
                          "status:failed",
                          "status:cancelled",
                          "status:timed_out",
                          "started:action",
                          "started:condition",
                          "started:loop",
                          "started:parallel",
                          "started:delay",
                          "started:retry",
                          "started:detached",
                          "failed:unavailable",
                          "failed:bad_request",
                          "failed:iteration_failed",
                          "failed:branch_failed",
                          "failed:invalid_items",
                          "failed:too_many_iterations",
                          "failed:expression_error",
                          "failed:invalid_parameters",
                          "timer:workflow",
                          "timer:step",
                          "completed",
                          "retry_scheduled",
                          "branch_taken",
                          "frame:ok",
                          "frame:failed",
                          "frame:abandoned",
                          "deadline"}) {
    EXPECT_GT(seen[key], 0) << key;
  }
}

}  // namespace
}  // namespace yantra
