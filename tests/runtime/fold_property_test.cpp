// Property tests of the event log over generated workflows.
//
// Design: FlowGen (a seeded std::mt19937) builds random but valid flows:
// chains of action/condition/delay/wait_signal/approval/loop/parallel steps,
// containers nested up to depth 3, random retry policies and deadlines, forward-only transitions
// (on_success, on_failure, on_true, on_false) and parameters made of
// literals, $ref/$expr over the input, loop variables and earlier or
// enclosing steps (FlowGen and Driver live in driver.hpp, shared with the
// time machine tests). Driver plays the engine without actors: it feeds the
// ExecutionStarted input through advance(), then, round by round, either
// answers one in-flight tool call, fires the earliest pending timer (the
// clock jumps to its due time), delivers a signal or an approval decision to
// a waiting step, or sends a signal nobody waits for yet; the choice comes
// from the driver's own RNG.
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
#include "tests/runtime/driver.hpp"

namespace yantra {
namespace {

constexpr int kFlows = 400;

using namespace test;  // NOLINT: the shared generator and driver

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
        case v1::Event::kStepCompleted:
          seen["completed"]++;
          if (e.step_completed().signal_seq() != 0) seen["signal_consumed"]++;
          break;
        case v1::Event::kSignalReceived: seen["signal"]++; break;
        case v1::Event::kApprovalRecorded: seen["approval"]++; break;
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
      if (s.error.is_object() && s.error.value("code", "") == "timeout") {
        seen[s.kind == "action" ? "deadline" : "wait_timeout"]++;
      }
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
                          "started:wait_signal",
                          "started:approval",
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
                          "failed:rejected",
                          "timer:workflow",
                          "timer:step",
                          "completed",
                          "retry_scheduled",
                          "branch_taken",
                          "frame:ok",
                          "frame:failed",
                          "frame:abandoned",
                          "deadline",
                          "signal",
                          "signal_consumed",
                          "approval",
                          "wait_timeout"}) {
    EXPECT_GT(seen[key], 0) << key;
  }
}

}  // namespace
}  // namespace yantra
