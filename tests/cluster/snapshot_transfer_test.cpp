// Partition snapshots between replicas (LogSnapshot of cluster/log_server.hpp,
// install_snapshot of cluster/snapshot_transfer.hpp) over real stores, with a
// function as the network: a new store installs a partition from a serving
// one and holds the same rows and applied lsn; replies lost on the way are
// asked for again and answered with the same chunk; a store that holds the
// partition refuses; a server without a store, too many sessions at once and
// out-of-order chunks are refused; idle sessions are dropped. And the
// follower (cluster/follower.hpp): a replica whose next batch was trimmed
// from the log installs a snapshot (dropping its older state, trying the
// next replica when one fails, backing off when all do) and follows the log
// from there; one whose batches are still in the log never does.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/errc.hpp"
#include "base/metrics.hpp"
#include "cluster/follower.hpp"
#include "cluster/log_server.hpp"
#include "cluster/snapshot_transfer.hpp"
#include "runtime/ids.hpp"
#include "storage/partition_batch.hpp"
#include "storage/partition_snapshot.hpp"
#include "storage/store.hpp"
#include "tests/test_util.hpp"
#include "yantra/v1/events.pb.h"
#include "yantra/v1/log_rpc.pb.h"

namespace yantra::cluster {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kPartitions = 4;
const storage::PartitionOfId kPartOf = [](std::string_view id) {
  return partition_of(id, kPartitions);
};

std::string id_in(uint32_t p, uint64_t salt) {
  for (uint64_t r = salt * 1000;; ++r) {
    std::string id = make_execution_id(1700000000000, r, r * 3 + 1);
    if (partition_of(id, kPartitions) == p) return id;
  }
}

// Batch `lsn` of p: one new execution with a few padded events.
std::string batch(uint32_t p, uint64_t lsn) {
  storage::WriteRequest r;
  r.partition = p;
  r.execution_id = id_in(p, lsn);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    v1::Event e;
    e.set_seq(seq);
    e.mutable_step_started()->set_input_json(std::string(200, 'x'));
    r.events.emplace_back(seq, e.SerializeAsString());
  }
  v1::ExecutionSummary s;
  s.set_execution_id(r.execution_id);
  s.set_tenant("acme");
  s.set_flow_id("f");
  s.set_status("running");
  r.summary = s;
  r.created = true;
  auto bytes = storage::encode(p, lsn, 1, {r});
  EXPECT_TRUE(bytes.ok());
  return bytes.ok() ? bytes.value() : std::string();
}

std::unique_ptr<storage::Store> open(const std::string& path) {
  auto s = storage::Store::open(storage::StoreOptions(path));
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.ok() ? std::move(s).value() : nullptr;
}

// The partition's whole state as one chunk: equal bytes, equal state.
std::string state_of(const storage::Store& store, uint32_t p) {
  auto exp = storage::PartitionSnapshotExport::open(store, p, kPartOf);
  EXPECT_TRUE(exp.ok()) << exp.status().to_string();
  if (!exp.ok()) return {};
  auto chunk = (*exp)->next_chunk(SIZE_MAX);
  EXPECT_TRUE(chunk.ok() && chunk->has_value());
  return chunk.ok() && chunk->has_value() ? **chunk : std::string();
}

class SnapshotTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = open(dir_.str() + "/source");
    target_ = open(dir_.str() + "/target");
    ASSERT_TRUE(source_ && target_);
    for (uint32_t p = 0; p < kPartitions; ++p) {
      for (uint64_t lsn = 1; lsn <= 12; ++lsn) {
        ASSERT_TRUE(storage::apply_committed(*source_, p, lsn, batch(p, lsn)).is_ok());
      }
    }
    LogServer::Options o;
    o.workers = 2;
    o.max_read_bytes = 2048;  // also the chunk bound: many chunks
    o.snapshot_store = source_.get();
    o.partition_of = kPartOf;
    o.max_snapshot_sessions = 2;
    o.snapshot_idle_timeout = 300ms;
    server_ = std::make_unique<LogServer>(source_->segments(), o);
  }

  // The network: the server's handler, waited for. Every `drop_every`-th
  // reply is lost after the server served it (the caller sees a timeout).
  LogCall call(int drop_every = 0) {
    return [this, drop_every](const std::string&, std::string payload,
                              std::chrono::milliseconds timeout) -> Result<std::string> {
      ++calls_;
      auto promise = std::make_shared<std::promise<Result<std::string>>>();
      auto future = promise->get_future();
      server_->handle("new-replica", std::move(payload),
                      [promise](Result<std::string> r) { promise->set_value(std::move(r)); });
      if (future.wait_for(timeout) != std::future_status::ready) {
        return Status(Errc::kTimeout, "no reply");
      }
      auto r = future.get();
      if (drop_every > 0 && calls_ % drop_every == 0) return Status(Errc::kTimeout, "lost");
      return r;
    };
  }

  v1::LogReply ask(uint32_t p, uint64_t session, uint32_t index) {
    v1::LogRequest req;
    req.mutable_snapshot()->set_partition(p);
    req.mutable_snapshot()->set_session(session);
    req.mutable_snapshot()->set_index(index);
    auto raw = call()("source", req.SerializeAsString(), 10s);
    v1::LogReply reply;
    EXPECT_TRUE(raw.ok() && reply.ParseFromString(raw.value()));
    return reply;
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Store> source_;
  std::unique_ptr<storage::Store> target_;
  std::unique_ptr<LogServer> server_;
  int calls_ = 0;
};

TEST_F(SnapshotTransferTest, ANewStoreInstallsThePartitionFromAReplica) {
  auto installed = install_snapshot(*target_, call(), "source", 2, kPartOf);
  ASSERT_TRUE(installed.ok()) << installed.status().to_string();
  EXPECT_EQ(installed->lsn, 12u);
  EXPECT_GT(installed->chunks, 3u);
  auto applied = storage::applied_lsn(*target_, 2);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(*applied, 12u);
  EXPECT_EQ(state_of(*target_, 2), state_of(*source_, 2));
  // Nothing of another partition came along.
  for (uint32_t p : {0u, 1u, 3u}) EXPECT_EQ(storage::applied_lsn(*target_, p).value(), 0u);
  // It follows the log from there like any replica.
  EXPECT_TRUE(storage::apply_committed(*target_, 2, 13, batch(2, 13)).is_ok());
  // A store that holds the partition refuses another snapshot of it.
  auto again = install_snapshot(*target_, call(), "source", 2, kPartOf);
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(again.status().is(Errc::kInvalidArgument)) << again.status().to_string();
}

TEST_F(SnapshotTransferTest, LostRepliesAreAskedForAgain) {
  auto installed = install_snapshot(*target_, call(/*drop_every=*/3), "source", 1, kPartOf);
  ASSERT_TRUE(installed.ok()) << installed.status().to_string();
  EXPECT_EQ(state_of(*target_, 1), state_of(*source_, 1));
}

TEST_F(SnapshotTransferTest, RefusalsAndSessions) {
  // Out of order, and a session that does not exist.
  v1::LogReply first = ask(0, 0, 0);
  ASSERT_EQ(first.code(), "");
  const uint64_t session = first.snapshot_session();
  EXPECT_NE(ask(0, session, 2).code(), "");
  EXPECT_EQ(ask(0, session + 100, 1).code(), "not_found");
  // Asking again for the last chunk answers the same bytes.
  EXPECT_EQ(ask(0, session, 0).snapshot_chunk(), first.snapshot_chunk());
  // A second session fits, a third does not (a pinned snapshot each).
  ASSERT_EQ(ask(1, 0, 0).code(), "");
  EXPECT_EQ(ask(3, 0, 0).code(), "unavailable");
  // Idle sessions are dropped, which frees their places.
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(ask(3, 0, 0).code(), "");
  EXPECT_EQ(ask(0, session, 1).code(), "not_found");
  // A partition with nothing applied has no snapshot.
  auto empty = install_snapshot(*source_, call(), "source", 2, kPartOf);  // holds 2: refused
  EXPECT_FALSE(empty.ok());
}

TEST_F(SnapshotTransferTest, AServerWithoutAStoreRefuses) {
  LogServer::Options o;
  server_ = std::make_unique<LogServer>(source_->segments(), o);
  auto installed = install_snapshot(*target_, call(), "source", 2, kPartOf);
  ASSERT_FALSE(installed.ok());
  EXPECT_NE(installed.status().message().find("unavailable"), std::string::npos)
      << installed.status().to_string();
}

uint64_t counter(const std::string& name, uint32_t p) {
  return metrics::global().counter(name, "", {{"partition", std::to_string(p)}}).value();
}

bool wait_applied(const storage::Store& store, uint32_t p, uint64_t lsn) {
  for (int i = 0; i < 500; ++i) {
    auto a = storage::applied_lsn(store, p);
    if (a.ok() && a.value() >= lsn) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// A follower of `target_` whose log starts at `first_live` and holds
// batches first_live.. of every partition (read_older).
class FollowerSnapshotTest : public SnapshotTransferTest {
 protected:
  std::unique_ptr<FollowerApplier> follower(uint64_t first_live, std::vector<std::string> replicas,
                                            std::chrono::milliseconds backoff = 200ms) {
    FollowerApplier::Snapshots s;
    s.partition_of = kPartOf;
    s.backoff_min = backoff;
    s.backoff_max = backoff * 4;
    s.locate = [first_live, replicas](uint32_t) -> Result<FollowerApplier::SnapshotSource> {
      return FollowerApplier::SnapshotSource{first_live, replicas};
    };
    s.install = [this](uint32_t p, const std::string& node) -> Result<FollowerApplier::Installed> {
      {
        std::lock_guard lock(mu_);
        asked_.push_back(node);
      }
      if (node != "source") return Status(Errc::kUnavailable, node + " is down");
      auto r = install_snapshot(*target_, call(), node, p, kPartOf);
      if (!r.ok()) return r.status();
      return FollowerApplier::Installed{r->lsn, r->bytes};
    };
    return std::make_unique<FollowerApplier>(
        *target_,
        [this, first_live](uint32_t p, uint64_t from,
                           uint64_t to) -> Result<std::vector<std::string>> {
          std::lock_guard lock(mu_);
          older_from_.push_back(from);
          if (from < first_live) return Status(Errc::kNotFound, "trimmed");
          std::vector<std::string> out;
          for (uint64_t lsn = from; lsn <= to; ++lsn) out.push_back(batch(p, lsn));
          return out;
        },
        std::move(s));
  }

  std::mutex mu_;
  std::vector<std::string> asked_;
  std::vector<uint64_t> older_from_;
};

TEST_F(FollowerSnapshotTest, AReplicaBehindTheTrimmedLogInstallsASnapshotAndFollows) {
  // The target applied 1..3 of partition 2, then the log was trimmed to 10..
  for (uint64_t lsn = 1; lsn <= 3; ++lsn) {
    ASSERT_TRUE(storage::apply_committed(*target_, 2, lsn, batch(2, lsn)).is_ok());
  }
  const uint64_t transfers = counter("yantra_cluster_snapshot_transfers_total", 2);
  const uint64_t bytes = counter("yantra_cluster_snapshot_transfer_bytes_total", 2);
  auto f = follower(10, {"down-node", "source"});
  f->on_committed(2, 7, 14);
  ASSERT_TRUE(wait_applied(*target_, 2, 14));
  {
    std::lock_guard lock(mu_);
    // The first replica failed, the next one served; the log was read only
    // from the snapshot's lsn + 1 on.
    EXPECT_EQ(asked_, (std::vector<std::string>{"down-node", "source"}));
    EXPECT_EQ(older_from_, (std::vector<uint64_t>{13}));
  }
  EXPECT_EQ(counter("yantra_cluster_snapshot_transfers_total", 2), transfers + 1);
  EXPECT_GT(counter("yantra_cluster_snapshot_transfer_bytes_total", 2), bytes + 2048);
  // Its state is the source's after the same batches.
  for (uint64_t lsn = 13; lsn <= 14; ++lsn) {
    ASSERT_TRUE(storage::apply_committed(*source_, 2, lsn, batch(2, lsn)).is_ok());
  }
  EXPECT_EQ(state_of(*target_, 2), state_of(*source_, 2));
}

TEST_F(FollowerSnapshotTest, AReplicaWhoseBatchesAreInTheLogReadsThem) {
  ASSERT_TRUE(storage::apply_committed(*target_, 1, 1, batch(1, 1)).is_ok());
  auto f = follower(1, {"source"});
  f->on_committed(1, 7, 12);
  ASSERT_TRUE(wait_applied(*target_, 1, 12));
  std::lock_guard lock(mu_);
  EXPECT_TRUE(asked_.empty());
  EXPECT_EQ(older_from_, (std::vector<uint64_t>{2}));
}

TEST_F(FollowerSnapshotTest, WhenEveryReplicaFailsItBacksOff) {
  auto f = follower(10, {"down-a", "down-b"}, 400ms);
  f->on_committed(3, 7, 14);
  std::this_thread::sleep_for(1300ms);
  {
    std::lock_guard lock(mu_);
    // Rounds at 0, 0.4 s and 1.2 s (the pause doubles), each trying both.
    EXPECT_GE(asked_.size(), 4u);
    EXPECT_LE(asked_.size(), 6u);
    EXPECT_TRUE(older_from_.empty());
  }
  EXPECT_EQ(storage::applied_lsn(*target_, 3).value(), 0u);
}

}  // namespace
}  // namespace yantra::cluster
