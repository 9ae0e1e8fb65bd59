// The replicated partition log (cluster/replicated_log.hpp) and its recovery
// (cluster/log_recovery.hpp) over three real stores and log servers in one
// process; the "network" is a function that hands each LogRequest to the
// named node's log server, and can take a node down. What is checked is
// docs/replicated-log.md's invariants, each by a test that breaks it:
// commit needs a write quorum (no callback before), a sealed replica
// deposes the writer (nothing commits after), followers hear the commit
// point, a replica that was down catches up, and recovery by a new epoch
// keeps every committed batch, records the sealed end in etcd and opens the
// next segment after it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_client.hpp"
#include "cluster/layout.hpp"
#include "cluster/log_recovery.hpp"
#include "cluster/log_server.hpp"
#include "cluster/replicated_log.hpp"
#include "cluster/segment_chain.hpp"
#include "storage/event_log.hpp"
#include "storage/partition_batch.hpp"
#include "storage/segment_store.hpp"
#include "storage/store.hpp"
#include "tests/cluster/etcd_util.hpp"
#include "tests/storage/test_support.hpp"
#include "tests/test_util.hpp"

namespace yantra::cluster {
namespace {

using namespace std::chrono_literals;
using etcd_test::eventually;

constexpr uint32_t kPartition = 3;

// Three replicas "a", "b", "c": a store and a log server each.
class Replicas {
 public:
  Replicas() {
    for (const char* id : {"a", "b", "c"}) {
      Node& n = nodes_[id];
      n.dir = std::make_unique<test::TempDir>();
      auto store = storage::Store::open(storage::StoreOptions(n.dir->str()));
      EXPECT_TRUE(store.ok()) << store.status().to_string();
      n.store = std::move(store.value());
      LogServer::Options o;
      o.workers = 1;
      std::string node = id;
      o.on_committed = [this, node](uint32_t, uint64_t, uint64_t committed) {
        std::lock_guard lock(mu_);
        heard_[node] = std::max(heard_[node], committed);
      };
      n.server = std::make_unique<LogServer>(n.store->segments(), o);
    }
  }
  // The servers' workers call on_committed, which uses the members below:
  // stop them first (TSan saw heard_ destroyed under a running worker).
  ~Replicas() {
    for (auto& [id, n] : nodes_) n.server.reset();
  }

  LogRpc rpc() {
    return [this](const std::string& node, std::string payload,
                  std::function<void(Result<std::string>)> done) {
      {
        std::lock_guard lock(mu_);
        if (down_.count(node) != 0) {
          // Answer from another thread, as a transport would.
          std::thread([done] { done(Status(Errc::kUnavailable, "node is down")); }).detach();
          return;
        }
      }
      nodes_.at(node).server->handle("leader", std::move(payload), std::move(done));
    };
  }

  LogCall call() {
    LogRpc r = rpc();
    return [r](const std::string& node, std::string payload, std::chrono::milliseconds t) {
      auto promise = std::make_shared<std::promise<Result<std::string>>>();
      auto future = promise->get_future();
      r(node, std::move(payload),
        [promise](Result<std::string> res) { promise->set_value(std::move(res)); });
      if (future.wait_for(t) != std::future_status::ready) {
        return Result<std::string>(Status(Errc::kTimeout, "timeout"));
      }
      return future.get();
    };
  }

  void set_down(const std::string& node, bool down) {
    std::lock_guard lock(mu_);
    if (down) {
      down_.insert(node);
    } else {
      down_.erase(node);
    }
  }

  uint64_t heard(const std::string& node) {
    std::lock_guard lock(mu_);
    return heard_[node];
  }

  storage::Store& store(const std::string& node) { return *nodes_.at(node).store; }

  // The batches a node holds of a segment.
  std::vector<storage::SegmentBatch> held(const std::string& node, uint64_t segment) {
    auto r = store(node).segments().read(kPartition, segment, 1, UINT64_MAX, 1u << 30);
    return r.ok() ? r.value() : std::vector<storage::SegmentBatch>{};
  }

 private:
  struct Node {
    std::unique_ptr<test::TempDir> dir;
    std::unique_ptr<storage::Store> store;
    std::unique_ptr<LogServer> server;
  };
  std::map<std::string, Node> nodes_;
  std::mutex mu_;
  std::set<std::string> down_;
  std::map<std::string, uint64_t> heard_;
};

// Waits for a batch of callbacks.
class Waiter {
 public:
  storage::PartitionLog::Callback callback() {
    return [this](const Status& s) {
      std::lock_guard lock(mu_);
      results_.push_back(s);
      cv_.notify_all();
    };
  }
  bool wait_for(size_t n, std::chrono::milliseconds t) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, t, [&] { return results_.size() >= n; });
  }
  std::vector<Status> results() {
    std::lock_guard lock(mu_);
    return results_;
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return results_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Status> results_;
};

ReplicatedLogOptions options(int64_t epoch, uint64_t first_lsn = 1, uint32_t w = 2) {
  ReplicatedLogOptions o;
  o.partition = kPartition;
  o.epoch = epoch;
  o.replicas = {"a", "b", "c"};
  o.write_quorum = w;
  o.first_lsn = first_lsn;
  o.retry = 20ms;
  return o;
}

// Declare the Waiter before the log: a log destroyed early (a failed ASSERT
// returns from the test) fails its pending callbacks into the Waiter, which
// must still exist (a SegFault under load otherwise).
// `cut`, when given and true, cuts the leader off: every send fails (as a
// transport would answer, on another thread).
std::unique_ptr<ReplicatedPartitionLog> make_log(Replicas& r, const std::string& leader,
                                                 ReplicatedLogOptions o,
                                                 std::shared_ptr<std::atomic<bool>> cut = nullptr) {
  LogRpc rpc = r.rpc();
  if (cut) {
    rpc = [rpc, cut](const std::string& node, std::string payload,
                     std::function<void(Result<std::string>)> done) {
      if (cut->load()) {
        std::thread([done] { done(Status(Errc::kUnavailable, "the leader is cut off")); }).detach();
        return;
      }
      rpc(node, std::move(payload), std::move(done));
    };
  }
  auto log = ReplicatedPartitionLog::create(r.store(leader), std::move(o), rpc);
  EXPECT_TRUE(log.ok()) << log.status().to_string();
  return log.ok() ? std::move(log.value()) : nullptr;
}

std::string exec_id(int i) {
  return "exec-" + std::to_string(i);
}

TEST(ReplicatedLog, CommitsOnAQuorumAppliesAndTellsFollowers) {
  Replicas r;
  Waiter w;
  auto log = make_log(r, "a", options(5));
  ASSERT_NE(log, nullptr);
  constexpr int kRequests = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kRequests; i += 4) {
        log->append(storage::testing::make_request(kPartition, exec_id(i), 1, 3), w.callback());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(w.wait_for(kRequests, 20s));
  for (const auto& s : w.results()) EXPECT_TRUE(s.is_ok()) << s.to_string();
  const auto rep = log->replication();
  EXPECT_GE(rep.committed_lsn, 1u);
  EXPECT_LE(rep.committed_lsn, static_cast<uint64_t>(kRequests));  // batched
  EXPECT_EQ(rep.committed_lsn + 1, rep.next_lsn);
  // The leader's state holds every execution's events, and its marker says
  // which batches made it.
  auto applied = storage::applied_lsn(r.store("a"), kPartition);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(applied.value(), rep.committed_lsn);
  for (int i = 0; i < kRequests; ++i) {
    auto events = r.store("a").events().read(kPartition, exec_id(i));
    ASSERT_TRUE(events.ok());
    EXPECT_EQ(events.value().size(), 3u) << exec_id(i);
  }
  // Every replica ends up with the same batches, and hears the commit point.
  ASSERT_TRUE(eventually(
      [&] {
        return r.held("a", 5).size() == rep.committed_lsn &&
               r.held("b", 5).size() == rep.committed_lsn &&
               r.held("c", 5).size() == rep.committed_lsn;
      },
      5s));
  EXPECT_EQ(r.held("a", 5), r.held("b", 5));
  EXPECT_EQ(r.held("a", 5), r.held("c", 5));
  EXPECT_TRUE(eventually(
      [&] { return r.heard("b") == rep.committed_lsn && r.heard("c") == rep.committed_lsn; }, 5s));
}

TEST(ReplicatedLog, NothingIsAnsweredBeforeAWriteQuorumHoldsIt) {
  Replicas r;
  r.set_down("b", true);
  r.set_down("c", true);
  Waiter w;
  auto log = make_log(r, "a", options(5));
  log->append(storage::testing::make_request(kPartition, exec_id(1), 1, 2), w.callback());
  // Only the leader's own copy: W = 2 is not reached, so no answer and no
  // state, though the leader's segment copy holds the batch.
  EXPECT_FALSE(w.wait_for(1, 300ms));
  EXPECT_EQ(r.held("a", 5).size(), 1u);
  EXPECT_EQ(storage::applied_lsn(r.store("a"), kPartition).value(), 0u);
  EXPECT_TRUE(r.store("a").events().read(kPartition, exec_id(1)).value().empty());
  r.set_down("c", false);  // a second copy: committed
  ASSERT_TRUE(w.wait_for(1, 5s));
  EXPECT_TRUE(w.results()[0].is_ok());
  EXPECT_EQ(storage::applied_lsn(r.store("a"), kPartition).value(), 1u);
  // b comes back and is caught up from the leader.
  r.set_down("b", false);
  EXPECT_TRUE(eventually([&] { return r.held("b", 5).size() == 1; }, 5s));
}

TEST(ReplicatedLog, AReplicaFarBehindIsCaughtUpFromTheLeadersCopy) {
  Replicas r;
  auto o = options(5);
  o.max_retained_bytes = 1;  // nothing stays in memory once applied
  r.set_down("c", true);
  Waiter w;
  auto log = make_log(r, "a", o);
  for (int i = 0; i < 30; ++i) {
    log->append(storage::testing::make_request(kPartition, exec_id(i), 1, 1), w.callback());
    ASSERT_TRUE(w.wait_for(static_cast<size_t>(i + 1), 5s));  // one batch each
  }
  r.set_down("c", false);
  log->append(storage::testing::make_request(kPartition, exec_id(99), 1, 1), w.callback());
  ASSERT_TRUE(eventually([&] { return r.held("c", 5).size() == 31; }, 10s));
  EXPECT_EQ(r.held("a", 5), r.held("c", 5));
}

TEST(ReplicatedLog, ASealedReplicaDeposesTheWriterAndNothingCommitsAfter) {
  Replicas r;
  std::atomic<int> deposed{0};
  auto o = options(5);
  o.on_deposed = [&](const Status&) { ++deposed; };
  Waiter w;
  auto log = make_log(r, "a", o);
  log->append(storage::testing::make_request(kPartition, exec_id(1), 1, 1), w.callback());
  ASSERT_TRUE(w.wait_for(1, 5s));
  // A newer epoch (7) seals segment 5 on b and c, as its recovery would.
  ASSERT_TRUE(r.store("b").segments().seal(kPartition, 5, 7).ok());
  ASSERT_TRUE(r.store("c").segments().seal(kPartition, 5, 7).ok());
  log->append(storage::testing::make_request(kPartition, exec_id(2), 1, 1), w.callback());
  ASSERT_TRUE(w.wait_for(2, 5s));
  const Status refused = w.results()[1];
  EXPECT_EQ(refused.code(), "not_partition_leader") << refused.to_string();
  EXPECT_TRUE(eventually([&] { return deposed.load() == 1; }, 2s));
  EXPECT_EQ(log->replication().committed_lsn, 1u);
  EXPECT_TRUE(r.store("a").events().read(kPartition, exec_id(2)).value().empty());
  // Later appends fail at once.
  log->append(storage::testing::make_request(kPartition, exec_id(3), 1, 1), w.callback());
  ASSERT_TRUE(w.wait_for(3, 2s));
  EXPECT_FALSE(w.results()[2].is_ok());
}

TEST(ReplicatedLog, ALapsedLeaseStopsTheWriter) {
  Replicas r;
  std::atomic<bool> lease_valid{true};
  auto o = options(5);
  o.may_write = [&] { return lease_valid.load(); };
  Waiter w;
  auto log = make_log(r, "a", o);
  log->append(storage::testing::make_request(kPartition, exec_id(1), 1, 1), w.callback());
  ASSERT_TRUE(w.wait_for(1, 5s));
  lease_valid = false;
  log->append(storage::testing::make_request(kPartition, exec_id(2), 1, 1), w.callback());
  ASSERT_TRUE(w.wait_for(2, 5s));
  EXPECT_EQ(w.results()[1].code(), "not_partition_leader");
  // The second batch was never sent: no replica holds more than the first
  // (which a write quorum holds; the third may not have it yet).
  size_t holding = 0;
  for (const char* n : {"a", "b", "c"}) {
    EXPECT_LE(r.held(n, 5).size(), 1u) << n;
    holding += r.held(n, 5).size();
  }
  EXPECT_GE(holding, 2u);
}

class RecoveryTest : public etcd_test::SharedEtcdTest {};

// A leader key for `node` (a plain put: the test plays the elections);
// returns its create_revision, the epoch.
int64_t elect(EtcdClient& etcd, const Layout& layout, const std::string& node) {
  (void)etcd.delete_range(DeleteRequest::single(layout.leader(kPartition)));
  LeaderRecord rec;
  rec.node = node;
  auto put = etcd.put(PutRequest{layout.leader(kPartition), to_json(rec), 0, false});
  EXPECT_TRUE(put.ok());
  auto got = etcd.range(RangeRequest::single(layout.leader(kPartition)));
  EXPECT_TRUE(got.ok() && got->kvs.size() == 1);
  return got->kvs[0].create_revision;
}

TEST_F(RecoveryTest, ANewEpochKeepsEveryCommittedBatchAndOpensAfterIt) {
  Replicas r;
  Layout layout(test_prefix());
  // Epoch 1: leader a, segment e1 recorded in etcd, 10 committed batches.
  const int64_t e1 = elect(*client_, layout, "a");
  SegmentRecord seg;
  seg.epoch = e1;
  seg.writer = "a";
  seg.replicas = {"a", "b", "c"};
  seg.first_lsn = 1;
  ASSERT_TRUE(open_segment(*client_, layout, kPartition, seg).is_ok());
  Waiter w;
  auto a_cut = std::make_shared<std::atomic<bool>>(false);
  auto old_log = make_log(r, "a", options(e1), a_cut);
  for (int i = 0; i < 10; ++i) {
    old_log->append(storage::testing::make_request(kPartition, exec_id(i), 1, 2), w.callback());
  }
  ASSERT_TRUE(w.wait_for(10, 10s));
  const uint64_t committed = old_log->replication().committed_lsn;
  ASSERT_TRUE(eventually([&] { return r.held("c", e1).size() == committed; }, 5s));
  // c misses the rest; one more batch reaches a and b (committed), then one
  // reaches only a (never committed).
  r.set_down("c", true);
  old_log->append(storage::testing::make_request(kPartition, exec_id(20), 1, 1), w.callback());
  ASSERT_TRUE(w.wait_for(11, 5s));
  const uint64_t acked_end = old_log->replication().committed_lsn;
  ASSERT_EQ(acked_end, committed + 1);
  ASSERT_TRUE(eventually([&] { return r.held("b", e1).size() == acked_end; }, 5s));
  r.set_down("b", true);
  old_log->append(storage::testing::make_request(kPartition, exec_id(21), 1, 1), w.callback());
  ASSERT_TRUE(eventually([&] { return r.held("a", e1).size() == acked_end + 1; }, 5s));
  // a is cut off before b is back: its retries must not carry the last
  // batch to b (which would commit it, legitimately, on a and b).
  a_cut->store(true);
  r.set_down("b", false);
  r.set_down("c", false);
  r.set_down("a", true);  // the old leader is gone: the new one sees b and c

  // Epoch 2: b recovers.
  const int64_t e2 = elect(*client_, layout, "b");
  RecoveryOptions ro;
  ro.partition = kPartition;
  ro.epoch = e2;
  ro.self = "b";
  ro.write_quorum = 2;
  ro.replicas = {"b", "c", "a"};
  ro.rpc_timeout = 500ms;
  auto rec = recover_partition(*client_, layout, r.store("b"), r.call(), ro);
  ASSERT_TRUE(rec.ok()) << rec.status().to_string();
  // Every acknowledged batch survives; the unacknowledged one on a is not
  // seen (a was not among the sealed), which is allowed.
  EXPECT_EQ(rec->end, acked_end);
  EXPECT_EQ(rec->first_lsn, acked_end + 1);
  EXPECT_EQ(rec->copied_batches, 1u);  // c received the batch it missed
  EXPECT_EQ(r.held("c", e1).size(), acked_end);
  EXPECT_EQ(storage::applied_lsn(r.store("b"), kPartition).value(), acked_end);
  for (int i : {0, 9, 20}) {
    EXPECT_FALSE(r.store("b").events().read(kPartition, exec_id(i)).value().empty()) << i;
  }
  EXPECT_TRUE(r.store("b").events().read(kPartition, exec_id(21)).value().empty());
  // etcd: e1 sealed at the end, e2 open after it.
  auto chain = segments(*client_, layout, kPartition);
  ASSERT_TRUE(chain.ok());
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_EQ(chain->at(0).record.sealed_end, std::optional<uint64_t>(acked_end));
  EXPECT_EQ(chain->at(1).record.epoch, e2);
  EXPECT_EQ(chain->at(1).record.first_lsn, acked_end + 1);
  EXPECT_FALSE(chain->at(1).record.sealed_end.has_value());

  // The old writer comes back: sealed replicas refuse it, it commits nothing.
  r.set_down("a", false);
  a_cut->store(false);
  old_log->append(storage::testing::make_request(kPartition, exec_id(22), 1, 1), w.callback());
  ASSERT_TRUE(w.wait_for(13, 5s));
  for (size_t i = 11; i < 13; ++i) EXPECT_FALSE(w.results()[i].is_ok()) << i;
  EXPECT_EQ(old_log->replication().committed_lsn, acked_end);
  old_log.reset();

  // The new leader writes from there; a (restarted as a follower) gets the
  // new segment and can read the sealed one's committed batches.
  Waiter w2;
  auto new_log = make_log(r, "b", options(e2, rec->first_lsn));
  new_log->append(storage::testing::make_request(kPartition, exec_id(30), 1, 1), w2.callback());
  ASSERT_TRUE(w2.wait_for(1, 5s));
  EXPECT_TRUE(w2.results()[0].is_ok());
  EXPECT_EQ(new_log->replication().committed_lsn, acked_end + 1);
  auto committed_batches =
      read_committed(r.store("a"), r.call(), chain.value(), kPartition, 1, acked_end, 1u << 30, 1s);
  ASSERT_TRUE(committed_batches.ok()) << committed_batches.status().to_string();
  EXPECT_EQ(committed_batches->size(), acked_end);
  // Beyond a sealed end is never read as committed.
  EXPECT_FALSE(read_committed(r.store("a"), r.call(), chain.value(), kPartition, acked_end + 1,
                              acked_end + 1, 1u << 20, 1s)
                   .ok());

  // A second recovery by a stale epoch is fenced.
  ro.epoch = e1;
  EXPECT_FALSE(recover_partition(*client_, layout, r.store("c"), r.call(), ro).ok());
}

}  // namespace
}  // namespace yantra::cluster
