// The engine's run-queue and idempotent-start parts (actors/internal/
// queued_runs.hpp, idempotent_starts.hpp) over a real store, without actors:
// the partition is a function that records what it was handed, and the
// queue's writes go through a LogWriter per partition, as the engine's do.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/errc.hpp"
#include "actors/internal/admission.hpp"
#include "actors/internal/idempotent_starts.hpp"
#include "actors/internal/queued_runs.hpp"
#include "runtime/ids.hpp"
#include "storage/log_writer.hpp"
#include "storage/run_queue.hpp"
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
    for (uint32_t p = 0; p < kPartitions; ++p) {
      writers_.push_back(std::make_unique<storage::LogWriter>(*store_, p));
    }
    open_parts();
  }
  void TearDown() override {
    queued_.reset();
    writers_.clear();
  }

  static constexpr uint32_t kPartitions = 4;

  // A fresh Admission and QueuedRuns over the same store: what a restart
  // builds.
  void open_parts() {
    queued_.reset();
    admission_ = std::make_unique<Admission>(store_->auth(), store_->executions());
    queued_ = std::make_unique<QueuedRuns>(
        store_->run_queue(), *admission_, kPartitions,
        [this](const std::string&, const std::string& id,
               uint32_t) -> Result<std::pair<uint32_t, std::shared_ptr<const Flow>>> {
          if (id != "f") return Status(Errc::kNotFound, "no flow " + id);
          return std::make_pair(uint32_t{1}, std::shared_ptr<const Flow>(flow_));
        },
        [this](StartCommand cmd) { dispatched_.push_back(std::move(cmd)); },
        [this](const ExecutionResult& r) { ended_.push_back(r); },
        [this](storage::WriteRequest request, QueuedRuns::DoneFn done) -> Status {
          appended_.push_back(request);
          if (!refusal_.is_ok()) return refusal_;
          if (hold_) {  // decided later by the test (a write in flight)
            held_.emplace_back(std::move(request), std::move(done));
            return Status::ok();
          }
          writers_[request.partition]->append(std::move(request), std::move(done));
          return Status::ok();
        });
  }

  // QueuedRuns' asynchronous calls, waited for.
  Status enqueue(const std::string& id, const RunRequest& r) {
    std::promise<Status> done;
    queued_->enqueue(id, r, [&done](const Status& s) { done.set_value(s); });
    return done.get_future().get();
  }
  Status cancel(const v1::ExecutionSummary& s, const std::string& reason) {
    std::promise<Status> done;
    queued_->cancel(s, reason, [&done](const Status& st) { done.set_value(st); });
    return done.get_future().get();
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
      EXPECT_TRUE(enqueue(id, r).is_ok());
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
  std::vector<std::unique_ptr<storage::LogWriter>> writers_;
  std::vector<storage::WriteRequest> appended_;  // every write the queue made
  Status refusal_;                               // the log's answer when not ok
  bool hold_ = false;
  std::vector<std::pair<storage::WriteRequest, QueuedRuns::DoneFn>> held_;
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
  ASSERT_TRUE(cancel(summary("e1"), "not needed").is_ok());
  ASSERT_EQ(ended_.size(), 1u);
  EXPECT_EQ(ended_[0].execution_id, "e1");
  EXPECT_EQ(ended_[0].status, "cancelled");
  EXPECT_EQ(summary("e1").status(), "cancelled");
  ASSERT_TRUE(admission_->finished("t", "f"));
  queued_->drain("t", "f");
  ASSERT_EQ(dispatched_.size(), 1u);
  EXPECT_EQ(dispatched_[0].execution_id, "e2") << "the cancelled run never starts";
  // A run already leaving the queue cannot be cancelled as queued.
  Status leaving = cancel(summary("e2"), "too late");
  EXPECT_TRUE(leaving.is(Errc::kConflict)) << leaving.to_string();
}

TEST_F(QueueParts, QueueRowsAreWrittenThroughThePartitionLog) {
  run("e0");
  EXPECT_EQ(run("e1", "k1"), Admission::Verdict::kQueue);
  ASSERT_EQ(appended_.size(), 1u);
  const storage::WriteRequest w = appended_[0];
  EXPECT_EQ(w.partition, partition_of("e1", kPartitions));
  ASSERT_TRUE(w.queued_run.has_value());
  EXPECT_EQ(w.queued_run->execution_id(), "e1");
  EXPECT_EQ(w.idempotency_key, "k1");
  ASSERT_TRUE(w.summary.has_value());
  EXPECT_EQ(w.summary->status(), "queued");
  EXPECT_EQ(summary("e1").status(), "queued");  // applied by the partition's writer
  ASSERT_TRUE(cancel(summary("e1"), "no").is_ok());
  ASSERT_EQ(appended_.size(), 2u);
  EXPECT_EQ(appended_[1].delete_key, storage::RunQueue::row_key(*w.queued_run));
  EXPECT_EQ(appended_[1].summary->status(), "cancelled");
}

TEST_F(QueueParts, AWriteTheLogRefusesIsNotQueuedAndGivesItsCountBack) {
  run("e0");
  refusal_ = Status(ActorsErrc::kPartitionNotLed, "partition moved");
  auto verdict = admission_->admit("t", *flow_, 0);
  ASSERT_TRUE(verdict.ok());
  ASSERT_EQ(verdict.value(), Admission::Verdict::kQueue);
  EXPECT_EQ(admission_->usage("t").queued, 1);
  RunRequest r;
  r.tenant = "t";
  r.flow_id = "f";
  Status s = enqueue("e1", r);
  EXPECT_TRUE(s.is(ActorsErrc::kPartitionNotLed)) << s.to_string();
  EXPECT_EQ(admission_->usage("t").queued, 0);
  EXPECT_FALSE(store_->executions().summary("e1").value().has_value());
}

TEST_F(QueueParts, ACancelInFlightIsSkippedByDrainsAndCannotBeRepeated) {
  run("e0");
  run("e1");
  run("e2");
  hold_ = true;
  std::promise<Status> first;
  queued_->cancel(summary("e1"), "no", [&first](const Status& s) { first.set_value(s); });
  ASSERT_EQ(held_.size(), 1u) << "the cancel is in the log";
  // Meanwhile a slot frees: the drain passes over e1 and starts e2.
  ASSERT_TRUE(admission_->finished("t", "f"));
  queued_->drain("t", "f");
  ASSERT_EQ(dispatched_.size(), 1u);
  EXPECT_EQ(dispatched_[0].execution_id, "e2");
  // A second cancel of e1 while the first is undecided: conflict.
  Status again = cancel(summary("e1"), "again");
  EXPECT_TRUE(again.is(Errc::kConflict)) << again.to_string();
  // The log commits the first: e1 ended cancelled, its watchers heard.
  hold_ = false;
  auto [request, done] = std::move(held_[0]);
  held_.clear();
  writers_[request.partition]->append(std::move(request), std::move(done));
  ASSERT_TRUE(first.get_future().get().is_ok());
  EXPECT_EQ(summary("e1").status(), "cancelled");
  ASSERT_EQ(ended_.size(), 1u);
  EXPECT_EQ(ended_[0].execution_id, "e1");
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

TEST_F(QueueParts, ANewLeaderNumbersItsRowsAfterThoseAnotherLeaderWrote) {
  run("e0");
  run("e1");
  // Rows another leader wrote with higher numbers reach this store (as a
  // replicated batch would apply them), behind the counter's back.
  v1::QueuedRun far;
  far.set_execution_id("e9");
  far.set_tenant("t");
  far.set_flow_id("f");
  far.set_queue_seq(1000);
  v1::ExecutionSummary far_summary;
  far_summary.set_execution_id("e9");
  far_summary.set_tenant("t");
  far_summary.set_flow_id("f");
  far_summary.set_status("queued");
  storage::WriteRequest w;
  w.partition = partition_of("e9", kPartitions);
  w.execution_id = "e9";
  w.summary = far_summary;
  w.queued_run = far;
  std::promise<Status> written;
  writers_[w.partition]->append(std::move(w),
                                [&written](const Status& s) { written.set_value(s); });
  ASSERT_TRUE(written.get_future().get().is_ok());
  // Leading e9's partition now: its rows are counted and the counter jumps.
  queued_->recover(partition_of("e9", kPartitions));
  EXPECT_EQ(run("e2"), Admission::Verdict::kQueue);
  auto runs = store_->run_queue().runs("t", "f", 10);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 3u);
  EXPECT_EQ(runs->back().execution_id(), "e2") << "queued after e9, not before it";
  EXPECT_GT(runs->back().queue_seq(), 1000u);
}

TEST_F(QueueParts, ANodeAdmitsItsShareOfATenantsConcurrencyLimit) {
  double share = 0.25;  // a cluster node leading 2 of 8 partitions
  Admission shared(store_->auth(), store_->executions(), [&share] { return share; });
  v1::Tenant tenant;
  tenant.set_id("t2");
  tenant.set_status("active");
  tenant.mutable_limits()->set_max_concurrent_executions(10);
  ASSERT_TRUE(shared.put_tenant(tenant).is_ok());
  Flow plain;
  plain.id = "p";
  // ceil(10 x 0.25) = 3 here; the other nodes admit the rest.
  for (int i = 0; i < 3; ++i) {
    auto v = shared.admit("t2", plain, 0);
    ASSERT_TRUE(v.ok()) << i << ": " << v.status().to_string();
  }
  auto over = shared.admit("t2", plain, 0);
  ASSERT_FALSE(over.ok());
  EXPECT_TRUE(over.status().is(Errc::kRateLimited)) << over.status().to_string();
  EXPECT_NE(over.status().message().find("this node's share 3"), std::string::npos)
      << over.status().message();
  // Leading more partitions (a failover) admits more.
  share = 0.5;
  EXPECT_TRUE(shared.admit("t2", plain, 0).ok());
  EXPECT_TRUE(shared.admit("t2", plain, 0).ok());
  EXPECT_FALSE(shared.admit("t2", plain, 0).ok());
  // A single node (no share) admits the whole limit.
  Admission whole(store_->auth(), store_->executions());
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(whole.admit("t2", plain, 0).ok()) << i;
  EXPECT_FALSE(whole.admit("t2", plain, 0).ok());
}

TEST_F(QueueParts, ANodeAdmitsItsShareOfWhatIsLeftOfATenantsMonthlyQuota) {
  Admission shared(store_->auth(), store_->executions(), [] { return 0.25; });
  v1::Tenant tenant;
  tenant.set_id("t3");
  tenant.set_status("active");
  tenant.mutable_limits()->set_max_executions_per_month(10);
  ASSERT_TRUE(shared.put_tenant(tenant).is_ok());
  Flow plain;
  plain.id = "p";
  const int64_t now = 1700000000000;
  for (int i = 0; i < 3; ++i) {  // ceil(10 x 0.25); nothing used yet this month
    auto v = shared.admit("t3", plain, now);
    ASSERT_TRUE(v.ok()) << i << ": " << v.status().to_string();
    shared.finished("t3", "p");
  }
  auto over = shared.admit("t3", plain, now);
  ASSERT_FALSE(over.ok());
  EXPECT_TRUE(over.status().is(Errc::kQuotaExceeded)) << over.status().to_string();
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
