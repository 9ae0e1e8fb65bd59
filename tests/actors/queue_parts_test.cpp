// The engine's run-queue and idempotent-start parts (actors/internal/
// queued_runs.hpp, idempotent_starts.hpp) over a real store, without actors:
// the partition is a function that records what it was handed.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "actors/internal/admission.hpp"
#include "actors/internal/idempotent_starts.hpp"
#include "actors/internal/queued_runs.hpp"
#include "storage/store.hpp"
#include "tests/test_util.hpp"

namespace yantra::detail {
namespace {

class QueueParts : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::Store::open(storage::StoreOptions(dir_.str()));
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    store_ = std::move(store.value());
    flow_ = std::make_shared<Flow>();
    flow_->id = "f";
    flow_->max_concurrent_executions = 1;
    open_parts();
  }

  // A fresh Admission and QueuedRuns over the same store: what a restart
  // builds.
  void open_parts() {
    queued_.reset();
    admission_ =
        std::make_unique<Admission>(store_->auth(), store_->executions(), store_->run_queue());
    queued_ = std::make_unique<QueuedRuns>(
        store_->run_queue(), *admission_, 4,
        [this](const std::string&, const std::string& id,
               uint32_t) -> Result<std::pair<uint32_t, std::shared_ptr<const Flow>>> {
          if (id != "f") return Status(Errc::kNotFound, "no flow " + id);
          return std::make_pair(uint32_t{1}, std::shared_ptr<const Flow>(flow_));
        },
        [this](StartCommand cmd) { dispatched_.push_back(std::move(cmd)); },
        [this](const ExecutionResult& r) { ended_.push_back(r); });
  }

  // Admits one run the way Engine::start does; queues it when told to.
  Admission::Verdict run(const std::string& id, const std::string& key = "") {
    auto verdict = admission_->admit("t", *flow_, 0);
    EXPECT_TRUE(verdict.ok()) << verdict.status().to_string();
    if (verdict.value() == Admission::Verdict::kQueue) {
      RunRequest r;
      r.tenant = "t";
      r.flow_id = "f";
      r.flow_version = 1;
      r.input = json{{"id", id}};
      r.idempotency_key = key;
      EXPECT_TRUE(queued_->enqueue(id, r).is_ok());
    }
    return verdict.value();
  }

  v1::ExecutionSummary summary(const std::string& id) {
    auto s = store_->executions().summary(id);
    EXPECT_TRUE(s.ok() && s.value().has_value()) << id;
    return *s.value();
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  std::shared_ptr<Flow> flow_;
  std::unique_ptr<Admission> admission_;
  std::unique_ptr<QueuedRuns> queued_;
  std::vector<StartCommand> dispatched_;
  std::vector<ExecutionResult> ended_;
};

TEST_F(QueueParts, QueuedRunsStartOldestFirstAsSlotsFree) {
  EXPECT_EQ(run("e0"), Admission::Verdict::kStart);
  EXPECT_EQ(run("e1"), Admission::Verdict::kQueue);
  EXPECT_EQ(run("e2"), Admission::Verdict::kQueue);
  queued_->drain("t", "f");
  EXPECT_TRUE(dispatched_.empty()) << "the only slot is taken";
  ASSERT_TRUE(admission_->finished("t", "f"));
  queued_->drain("t", "f");
  ASSERT_EQ(dispatched_.size(), 1u);
  EXPECT_EQ(dispatched_[0].execution_id, "e1");
  EXPECT_EQ(dispatched_[0].request.input, (json{{"id", "e1"}}));
  EXPECT_FALSE(dispatched_[0].delete_key.empty()) << "the row leaves with the first batch";
  // A second drain does not hand e1 out again: its row stays until its
  // first batch commits, and the cursor skips it.
  queued_->drain("t", "f");
  EXPECT_EQ(dispatched_.size(), 1u);
  ASSERT_TRUE(admission_->finished("t", "f"));
  queued_->drain("t", "f");
  ASSERT_EQ(dispatched_.size(), 2u);
  EXPECT_EQ(dispatched_[1].execution_id, "e2");
}

TEST_F(QueueParts, CancelRemovesAQueuedRunAndTellsItsWatchers) {
  run("e0");
  run("e1");
  run("e2");
  ASSERT_TRUE(queued_->cancel(summary("e1"), "not needed").is_ok());
  ASSERT_EQ(ended_.size(), 1u);
  EXPECT_EQ(ended_[0].execution_id, "e1");
  EXPECT_EQ(ended_[0].status, "cancelled");
  EXPECT_EQ(summary("e1").status(), "cancelled");
  ASSERT_TRUE(admission_->finished("t", "f"));
  queued_->drain("t", "f");
  ASSERT_EQ(dispatched_.size(), 1u);
  EXPECT_EQ(dispatched_[0].execution_id, "e2") << "the cancelled run never starts";
  // A run already leaving the queue cannot be cancelled as queued.
  Status leaving = queued_->cancel(summary("e2"), "too late");
  EXPECT_TRUE(leaving.is(Errc::kConflict)) << leaving.to_string();
}

TEST_F(QueueParts, RecoveryCountsTheQueueAndStartsWhatMayRun) {
  run("e0");
  run("e1");
  run("e2");
  // Restart: nothing runs any more (e0 is not counted), two rows wait.
  open_parts();
  queued_->recover();
  ASSERT_EQ(dispatched_.size(), 1u);
  EXPECT_EQ(dispatched_[0].execution_id, "e1");
  // The recovered limit holds: e2 waits for e1's slot.
  queued_->drain("t", "f");
  EXPECT_EQ(dispatched_.size(), 1u);
  // A new run queues behind the recovered ones.
  EXPECT_EQ(run("e3"), Admission::Verdict::kQueue);
}

TEST_F(QueueParts, IdempotentStartsJoinTheFirstAndThenFindItInTheStore) {
  IdempotentStarts idem(store_->executions());
  std::string existing;
  std::vector<std::string> answers;
  auto record = [&](const std::string& who) {
    return [&answers, who](Result<std::string> r) {
      answers.push_back(who + ":" + (r.ok() ? r.value() : r.status().code()));
    };
  };
  auto first = idem.claim("t", "k", record("repeat-a"), &existing);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first.value(), IdempotentStarts::Claim::kFirst);
  auto second = idem.claim("t", "k", record("repeat-b"), &existing);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second.value(), IdempotentStarts::Claim::kJoined);
  // Another tenant's same key is another key.
  auto other = idem.claim("u", "k", record("other"), &existing);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other.value(), IdempotentStarts::Claim::kFirst);
  // The first start stores its key row (here through the queue, which
  // writes it like ExecutionStarted's batch does) and answers.
  run("e0");
  EXPECT_EQ(run("e1", "k"), Admission::Verdict::kQueue);
  idem.finish("t", "k", record("first"), Result<std::string>("e1"));
  EXPECT_EQ(answers, (std::vector<std::string>{"first:e1", "repeat-b:e1"}));
  // From now on the store answers.
  auto later = idem.claim("t", "k", record("late"), &existing);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later.value(), IdempotentStarts::Claim::kExisting);
  EXPECT_EQ(existing, "e1");
  // A failed first start frees the key for the next attempt.
  idem.finish("u", "k", record("first-u"), Result<std::string>(Status(Errc::kUnavailable, "x")));
  auto retry = idem.claim("u", "k", record("retry"), &existing);
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry.value(), IdempotentStarts::Claim::kFirst);
}

}  // namespace
}  // namespace yantra::detail
