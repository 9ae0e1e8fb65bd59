// The log server (cluster/log_server.hpp) over a real store, driven through
// its transport handler as a leader would drive it: LogRequest bytes in,
// LogReply bytes out, on its own workers. The transport itself is tested in
// transport_test.cpp; here what matters is what a replica answers and in
// which order it writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/log_server.hpp"
#include "storage/segment_store.hpp"
#include "storage/store.hpp"
#include "tests/test_util.hpp"
#include "yantra/v1/log_rpc.pb.h"

namespace yantra::cluster {
namespace {

using namespace std::chrono_literals;

class LogServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::Store::open(storage::StoreOptions(dir_.str()));
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    store_ = std::move(store.value());
    LogServer::Options o;
    o.workers = 2;
    o.max_read_bytes = 64;
    o.on_committed = [this](uint32_t p, uint64_t segment, uint64_t committed) {
      std::lock_guard lock(heard_mu_);
      heard_.push_back({p, segment, committed});
    };
    server_ = std::make_unique<LogServer>(store_->segments(), o);
  }

  // Sends one request through the handler and waits for the reply.
  Result<v1::LogReply> ask(const v1::LogRequest& req) {
    auto promise = std::make_shared<std::promise<Result<std::string>>>();
    auto future = promise->get_future();
    server_->handle("leader", req.SerializeAsString(),
                    [promise](Result<std::string> r) { promise->set_value(std::move(r)); });
    if (future.wait_for(10s) != std::future_status::ready) {
      return Status(Errc::kTimeout, "no reply");
    }
    auto bytes = future.get();
    if (!bytes.ok()) return bytes.status();
    v1::LogReply reply;
    if (!reply.ParseFromString(bytes.value())) return Status(Errc::kInternalError, "bad reply");
    return reply;
  }

  static v1::LogRequest append(uint32_t p, uint64_t segment, uint64_t first,
                               std::vector<std::string> batches, uint64_t epoch = 0) {
    v1::LogRequest req;
    auto* a = req.mutable_append();
    a->set_partition(p);
    a->set_segment(segment);
    a->set_writer_epoch(epoch == 0 ? segment : epoch);
    a->set_first_lsn(first);
    for (auto& b : batches) a->add_batches(std::move(b));
    return req;
  }

  static v1::LogRequest seal(uint32_t p, uint64_t segment, uint64_t epoch) {
    v1::LogRequest req;
    auto* s = req.mutable_seal();
    s->set_partition(p);
    s->set_segment(segment);
    s->set_sealing_epoch(epoch);
    return req;
  }

  std::vector<std::array<uint64_t, 3>> heard() {
    std::lock_guard lock(heard_mu_);
    return heard_;
  }

  testing::TempDir dir_;
  std::mutex heard_mu_;
  std::vector<std::array<uint64_t, 3>>
      heard_;  // (partition, segment, committed) per accepted append
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<LogServer> server_;
};

TEST_F(LogServerTest, AppendsSealsAndAnswersRefusalsWithWhatTheLeaderNeeds) {
  auto r = ask(append(3, 7, 1, {"b1", "b2"}));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r.value().code(), "");
  EXPECT_EQ(r.value().first_lsn(), 1u);
  EXPECT_EQ(r.value().last_lsn(), 2u);

  // A hole: the reply names the lsn to resend from.
  r = ask(append(3, 7, 5, {"b5"}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().code(), "segment_gap");
  EXPECT_EQ(r.value().expected_lsn(), 3u);

  // Another writer's epoch on this segment is refused.
  r = ask(append(3, 7, 3, {"b3"}, 8));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().code(), "segment_wrong_epoch");

  // A new leader seals: the final end comes back, and the old writer's next
  // append learns who sealed it.
  r = ask(seal(3, 7, 9));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().code(), "");
  EXPECT_TRUE(r.value().sealed());
  EXPECT_EQ(r.value().last_lsn(), 2u);
  r = ask(append(3, 7, 3, {"b3"}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().code(), "segment_sealed");
  EXPECT_TRUE(r.value().sealed());
  EXPECT_EQ(r.value().sealing_epoch(), 9u);
}

// An append without batches tells a replica the commit point: nothing is
// written, the follower hook hears it, and a sealed or missing segment
// answers as an append would.
TEST_F(LogServerTest, ACommitNoticeWritesNothingAndIsRefusedOnceSealed) {
  v1::LogRequest first = append(2, 5, 1, {"b1", "b2"});
  first.mutable_append()->set_committed_lsn(1);
  ASSERT_EQ(ask(first).value().code(), "");
  v1::LogRequest notice = append(2, 5, 3, {});
  notice.mutable_append()->set_committed_lsn(2);
  auto r = ask(notice);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().code(), "");
  EXPECT_EQ(r.value().last_lsn(), 2u);
  const auto h = heard();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0], (std::array<uint64_t, 3>{2, 5, 1}));
  EXPECT_EQ(h[1], (std::array<uint64_t, 3>{2, 5, 2}));
  // Not held here (a new segment nothing was written to yet): not_found,
  // but the commit point is heard, so the follower applies what earlier
  // segments committed.
  v1::LogRequest empty_segment = append(2, 6, 3, {});
  empty_segment.mutable_append()->set_committed_lsn(2);
  r = ask(empty_segment);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().code(), "not_found");
  ASSERT_EQ(heard().size(), 3u);
  EXPECT_EQ(heard()[2], (std::array<uint64_t, 3>{2, 6, 2}));
  // Another epoch's notice, and a notice after a seal, are refused.
  r = ask(append(2, 5, 3, {}, 9));
  EXPECT_EQ(r.value().code(), "segment_wrong_epoch");
  ASSERT_EQ(ask(seal(2, 5, 8)).value().code(), "");
  r = ask(notice);
  EXPECT_EQ(r.value().code(), "segment_sealed");
  EXPECT_EQ(r.value().sealing_epoch(), 8u);
  EXPECT_EQ(heard().size(), 3u);  // refused notices are not heard
}

TEST_F(LogServerTest, ReadsAreBoundedAndRepairAndTruncateFollowTheStore) {
  ASSERT_EQ(ask(append(1, 4, 1, {std::string(40, 'a'), std::string(40, 'b'), "c"})).value().code(),
            "");
  v1::LogRequest read;
  read.mutable_read()->set_partition(1);
  read.mutable_read()->set_segment(4);
  read.mutable_read()->set_from_lsn(1);
  read.mutable_read()->set_to_lsn(3);
  read.mutable_read()->set_max_bytes(1 << 20);  // more than the server allows (64)
  auto r = ask(read);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().code(), "");
  EXPECT_EQ(r.value().from_lsn(), 1u);
  ASSERT_EQ(r.value().batches_size(), 1) << "the server's bound on reply bytes holds";
  EXPECT_EQ(r.value().batches(0), std::string(40, 'a'));
  EXPECT_EQ(r.value().last_lsn(), 3u);

  // Recovery: seal, copy a batch beyond this replica's end, truncate.
  ASSERT_EQ(ask(seal(1, 4, 6)).value().code(), "");
  v1::LogRequest repair;
  auto* rp = repair.mutable_repair();
  rp->set_partition(1);
  rp->set_segment(4);
  rp->set_recovery_epoch(6);
  rp->set_first_lsn(4);
  rp->add_batches("d");
  r = ask(repair);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().code(), "") << r.value().message();
  EXPECT_EQ(r.value().last_lsn(), 4u);
  v1::LogRequest truncate;
  truncate.mutable_truncate()->set_partition(1);
  truncate.mutable_truncate()->set_segment(4);
  truncate.mutable_truncate()->set_end(2);
  r = ask(truncate);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().last_lsn(), 2u);
  v1::LogRequest info;
  info.mutable_info()->set_partition(1);
  info.mutable_info()->set_segment(4);
  r = ask(info);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value().sealed());
  EXPECT_EQ(r.value().last_lsn(), 2u);
  info.mutable_info()->set_segment(5);
  EXPECT_EQ(ask(info).value().code(), "not_found");
}

// A trim seals a copy that never heard the seal, deletes its batches and
// says so; the trimmed copy still fences its old writer; trimming again is
// fine.
TEST_F(LogServerTest, ATrimSealsAndDeletesTheSegmentsBatches) {
  ASSERT_EQ(ask(append(6, 3, 1, {"b1", "b2", "b3"})).value().code(), "");
  v1::LogRequest trim;
  trim.mutable_trim()->set_partition(6);
  trim.mutable_trim()->set_segment(3);
  trim.mutable_trim()->set_sealing_epoch(9);
  auto r = ask(trim);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().code(), "") << r.value().message();
  EXPECT_TRUE(r.value().trimmed());
  EXPECT_TRUE(r.value().sealed());
  auto held = store_->segments().info(6, 3);
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(held.value().trimmed);
  v1::LogRequest read;
  read.mutable_read()->set_partition(6);
  read.mutable_read()->set_segment(3);
  read.mutable_read()->set_from_lsn(1);
  read.mutable_read()->set_to_lsn(3);
  EXPECT_EQ(ask(read).value().code(), "segment_trimmed");
  EXPECT_EQ(ask(append(6, 3, 4, {"b4"})).value().code(), "segment_sealed");
  r = ask(trim);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value().trimmed());
}

TEST_F(LogServerTest, AppendsOfOnePartitionAreWrittenInArrivalOrder) {
  // A leader pipelines: 200 single-batch appends sent without waiting. The
  // workers must write them in the order they arrived, or a later lsn
  // would meet a gap.
  constexpr int kBatches = 200;
  std::vector<std::future<Result<std::string>>> replies;
  for (int i = 1; i <= kBatches; ++i) {
    auto promise = std::make_shared<std::promise<Result<std::string>>>();
    replies.push_back(promise->get_future());
    server_->handle("leader", append(2, 11, i, {"batch" + std::to_string(i)}).SerializeAsString(),
                    [promise](Result<std::string> r) { promise->set_value(std::move(r)); });
  }
  for (int i = 0; i < kBatches; ++i) {
    ASSERT_EQ(replies[i].wait_for(30s), std::future_status::ready);
    auto bytes = replies[i].get();
    ASSERT_TRUE(bytes.ok());
    v1::LogReply reply;
    ASSERT_TRUE(reply.ParseFromString(bytes.value()));
    ASSERT_EQ(reply.code(), "") << "append " << i + 1 << ": " << reply.message();
  }
  auto info = store_->segments().info(2, 11);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info.value().last_lsn, static_cast<uint64_t>(kBatches));
}

// A group (what one node's leaders have for this replica at once): every
// request answered in order as if alone — appends of several partitions
// written together, a refusal, a commit notice, a seal, a garbage entry —
// and the follower hook hears each accepted commit point. The appends are
// written before the group's other requests are served.
TEST_F(LogServerTest, AGroupAnswersEveryRequestInOrderAsIfAlone) {
  ASSERT_EQ(ask(append(4, 3, 1, {"a1"})).value().code(), "");
  ASSERT_EQ(ask(append(6, 2, 1, {"c1", "c2"})).value().code(), "");
  heard_.clear();
  v1::LogRequest a = append(1, 3, 1, {"x1", "x2"});
  a.mutable_append()->set_committed_lsn(1);
  v1::LogRequest b = append(4, 3, 2, {"a2"});
  b.mutable_append()->set_committed_lsn(2);
  v1::LogRequest gap = append(6, 2, 9, {"c9"});
  v1::LogRequest notice = append(6, 2, 3, {});
  notice.mutable_append()->set_committed_lsn(2);
  v1::LogRequest group;
  for (const auto* r : {&a, &b, &gap, &notice}) {
    group.mutable_group()->add_requests(r->SerializeAsString());
  }
  group.mutable_group()->add_requests("\xff\xff not a request");
  group.mutable_group()->add_requests(seal(4, 3, 5).SerializeAsString());
  auto r = ask(group);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r.value().replies_size(), 6);
  std::vector<v1::LogReply> replies(6);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(replies[i].ParseFromString(r.value().replies(i)));
  EXPECT_EQ(replies[0].code(), "");
  EXPECT_EQ(replies[0].last_lsn(), 2u);
  EXPECT_EQ(replies[1].code(), "");
  EXPECT_EQ(replies[1].last_lsn(), 2u);
  EXPECT_EQ(replies[2].code(), "segment_gap");
  EXPECT_EQ(replies[2].expected_lsn(), 3u);
  EXPECT_EQ(replies[3].code(), "");  // the notice
  EXPECT_EQ(replies[3].last_lsn(), 2u);
  EXPECT_EQ(replies[4].code(), "invalid_argument");
  // The seal came after the append in the group, so it holds lsn 2.
  EXPECT_EQ(replies[5].code(), "");
  EXPECT_TRUE(replies[5].sealed());
  EXPECT_EQ(replies[5].last_lsn(), 2u);
  EXPECT_EQ(store_->segments().info(1, 3)->last_lsn, 2u);
  EXPECT_EQ(store_->segments().info(6, 2)->last_lsn, 2u);
  auto h = heard();
  std::sort(h.begin(), h.end());
  EXPECT_EQ(h, (std::vector<std::array<uint64_t, 3>>{{1, 3, 1}, {4, 3, 2}, {6, 2, 2}}));
  // A group inside a group is refused for that entry only.
  v1::LogRequest outer;
  outer.mutable_group()->add_requests(group.SerializeAsString());
  outer.mutable_group()->add_requests(append(1, 3, 3, {"x3"}).SerializeAsString());
  r = ask(outer);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.value().replies_size(), 2);
  v1::LogReply inner, third;
  ASSERT_TRUE(inner.ParseFromString(r.value().replies(0)));
  ASSERT_TRUE(third.ParseFromString(r.value().replies(1)));
  EXPECT_EQ(inner.code(), "invalid_argument");
  EXPECT_EQ(third.code(), "");
  EXPECT_EQ(third.last_lsn(), 3u);
}

TEST_F(LogServerTest, GarbageIsRefusedAndAStoppingServerAnswersEveryRequest) {
  auto promise = std::make_shared<std::promise<Result<std::string>>>();
  auto future = promise->get_future();
  server_->handle("x", "\xff\xff\xff not a request",
                  [promise](Result<std::string> r) { promise->set_value(std::move(r)); });
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  auto r = future.get();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is(Errc::kInvalidArgument)) << r.status().to_string();

  // Requests queued behind a stop are answered (unavailable), never lost.
  std::vector<std::future<Result<std::string>>> replies;
  for (int i = 1; i <= 50; ++i) {
    auto p = std::make_shared<std::promise<Result<std::string>>>();
    replies.push_back(p->get_future());
    server_->handle("leader", append(5, 2, i, {"b"}).SerializeAsString(),
                    [p](Result<std::string> res) { p->set_value(std::move(res)); });
  }
  server_.reset();
  for (auto& f : replies) {
    ASSERT_EQ(f.wait_for(0s), std::future_status::ready) << "a request was dropped unanswered";
  }
}

}  // namespace
}  // namespace yantra::cluster
