// The etcd client (cluster/etcd_client.hpp) against real etcd processes
// (tests/support/etcd_process.hpp): a shared single member for the KV, txn
// and lease tests (each test under its own key prefix), and a member or a
// 3-member cluster of its own for the tests that pause or kill members.
//
// What each test would catch: a range_end computed by naive "+1" (the 0xff
// test), base64 or string handling that is not byte-exact, int64 fields
// parsed through double (the 2^53 lease test), a txn that loses the
// create-if-absent race or its typed answers, a watch that loses, repeats or
// reorders events across a reconnect (compared with etcd's own history), a
// compaction not reported, a deadline not honoured on a paused member, and
// a watch or client that leaves a thread behind or waits for etcd to stop.
#include <dirent.h>
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_client.hpp"
#include "tests/cluster/etcd_util.hpp"
#include "tests/support/etcd_process.hpp"
#include "tests/support/slowdown.hpp"

namespace yantra::cluster {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using test::EtcdCluster;
using Op = Compare::Op;
using testing::kSlowdown;

int64_t elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - since).count();
}

using etcd_test::eventually;
using etcd_test::make_client;

// The threads of this process right now.
size_t thread_count() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
  }
  return n;
}

// Collects what a watch delivers, for assertions from the test thread.
struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<WatchEvent> events;
  std::vector<WatchUpdate> ends;
  int64_t batches = 0;

  WatchCallback callback() {
    return [this](const WatchUpdate& u) {
      std::lock_guard lock(mu);
      ++batches;
      if (u.ended()) ends.push_back(u);
      events.insert(events.end(), u.events.begin(), u.events.end());
      cv.notify_all();
    };
  }
  bool wait_events(size_t n, milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return events.size() >= n; });
  }
  bool wait_end(milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return !ends.empty(); });
  }
  std::vector<WatchEvent> snapshot() {
    std::lock_guard lock(mu);
    return events;
  }
};

// --- the shared single member --------------------------------------------------

class EtcdClientTest : public etcd_test::SharedEtcdTest {
 protected:
  void SetUp() override {
    SharedEtcdTest::SetUp();
    // Every test writes under its own prefix of the shared member.
    prefix_ = test_prefix() + "/";
  }

  int64_t current_revision() {
    auto r = client_->range(RangeRequest::single(prefix_));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r->header.revision : 0;
  }

  std::string prefix_;
};

TEST(PrefixRangeEnd, LastByteIncrementedAndTrailingFfDropped) {
  EXPECT_EQ(prefix_range_end("a"), "b");
  EXPECT_EQ(prefix_range_end("/t/"), "/t0");
  EXPECT_EQ(prefix_range_end(std::string("a\xfe", 2)), std::string("a\xff", 2));
  EXPECT_EQ(prefix_range_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_range_end(std::string("a\xff\xff", 3)), "b");
  // Nothing left to increment: every key from the prefix on.
  EXPECT_EQ(prefix_range_end(std::string("\xff\xff", 2)), std::string(1, '\0'));
  EXPECT_EQ(prefix_range_end(""), std::string(1, '\0'));
}

TEST(SplitEndpoints, CommaSeparatedWithEmptyItemsSkipped) {
  EXPECT_EQ(split_endpoints("http://a:1,http://b:2"),
            (std::vector<std::string>{"http://a:1", "http://b:2"}));
  EXPECT_EQ(split_endpoints(",http://a:1,,"), (std::vector<std::string>{"http://a:1"}));
  EXPECT_TRUE(split_endpoints("").empty());
}

TEST(EtcdClientCreate, RefusesEndpointsThatAreNotHttpHostPort) {
  for (const std::string bad :
       {"https://127.0.0.1:2379", "127.0.0.1:2379", "http://127.0.0.1", "http://127.0.0.1:0",
        "http://127.0.0.1:99999", "http://:2379", "http://127.0.0.1:2379/v3", "http://[::1"}) {
    EtcdOptions o;
    o.endpoints = {bad};
    auto c = EtcdClient::create(o);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_TRUE(c.status().is(ClusterErrc::kInvalidEndpoint))
        << bad << ": " << c.status().to_string();
  }
  EXPECT_TRUE(EtcdClient::create({}).status().is(ClusterErrc::kInvalidEndpoint));
  EtcdOptions ok;
  ok.endpoints = {"http://127.0.0.1:2379/", "http://[::1]:2379", "http://localhost:2379"};
  EXPECT_TRUE(EtcdClient::create(ok).ok());
}

TEST_F(EtcdClientTest, PutGetAndEveryRangeOption) {
  auto p1 = client_->put({prefix_ + "a", "1"});
  ASSERT_TRUE(p1.ok()) << p1.status().to_string();
  const int64_t rev_a1 = p1->header.revision;
  ASSERT_TRUE(client_->put({prefix_ + "b", "2"}).ok());
  ASSERT_TRUE(client_->put({prefix_ + "c", "3"}).ok());
  // Neighbours that a prefix range must not include.
  ASSERT_TRUE(client_->put({prefix_.substr(0, prefix_.size() - 1), "parent"}).ok());
  ASSERT_TRUE(client_->put({prefix_.substr(0, prefix_.size() - 1) + "0", "after"}).ok());

  auto single = client_->range(RangeRequest::single(prefix_ + "b"));
  ASSERT_TRUE(single.ok()) << single.status().to_string();
  ASSERT_EQ(single->kvs.size(), 1u);
  EXPECT_EQ(single->kvs[0].key, prefix_ + "b");
  EXPECT_EQ(single->kvs[0].value, "2");
  EXPECT_EQ(single->kvs[0].version, 1);
  EXPECT_EQ(single->kvs[0].create_revision, single->kvs[0].mod_revision);
  EXPECT_EQ(single->count, 1);

  auto all = client_->range(RangeRequest::prefix(prefix_));
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->kvs.size(), 3u);
  EXPECT_EQ(all->kvs[0].key, prefix_ + "a");
  EXPECT_EQ(all->kvs[2].key, prefix_ + "c");
  EXPECT_FALSE(all->more);

  RangeRequest limited = RangeRequest::prefix(prefix_);
  limited.limit = 2;
  auto two = client_->range(limited);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->kvs.size(), 2u);
  EXPECT_TRUE(two->more);
  EXPECT_EQ(two->count, 3);

  RangeRequest keys = RangeRequest::prefix(prefix_);
  keys.keys_only = true;
  auto k = client_->range(keys);
  ASSERT_TRUE(k.ok());
  ASSERT_EQ(k->kvs.size(), 3u);
  EXPECT_EQ(k->kvs[1].key, prefix_ + "b");
  EXPECT_TRUE(k->kvs[1].value.empty());

  RangeRequest counting = RangeRequest::prefix(prefix_);
  counting.count_only = true;
  auto n = client_->range(counting);
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->kvs.empty());
  EXPECT_EQ(n->count, 3);

  // An older revision sees the older value.
  PutRequest again{prefix_ + "a", "1b"};
  again.prev_kv = true;
  auto p2 = client_->put(again);
  ASSERT_TRUE(p2.ok());
  ASSERT_TRUE(p2->prev_kv.has_value());
  EXPECT_EQ(p2->prev_kv->value, "1");
  RangeRequest old = RangeRequest::single(prefix_ + "a");
  old.revision = rev_a1;
  auto at = client_->range(old);
  ASSERT_TRUE(at.ok());
  ASSERT_EQ(at->kvs.size(), 1u);
  EXPECT_EQ(at->kvs[0].value, "1");
  auto now = client_->range(RangeRequest::single(prefix_ + "a"));
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->kvs[0].value, "1b");
  EXPECT_EQ(now->kvs[0].version, 2);

  // An absent key: an answer with no kvs (proto3 omits them), not an error.
  auto missing = client_->range(RangeRequest::single(prefix_ + "zz"));
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->kvs.empty());
  EXPECT_EQ(missing->count, 0);

  DeleteRequest del = DeleteRequest::prefix(prefix_);
  del.prev_kv = true;
  auto d = client_->delete_range(del);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->deleted, 3);
  EXPECT_EQ(d->prev_kvs.size(), 3u);
  auto left = client_->range(RangeRequest::prefix(prefix_.substr(0, prefix_.size() - 1)));
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->kvs.size(), 2u);  // the neighbours survived
  EXPECT_EQ(left->kvs[0].value, "parent");
  EXPECT_EQ(left->kvs[1].value, "after");
}

TEST_F(EtcdClientTest, PrefixEndingInFfSelectsExactlyItsKeys) {
  const std::string p = prefix_ + "\xff";
  const std::vector<std::string> inside = {p, p + std::string(1, '\0'), p + "zz", p + "\xff\x01"};
  for (const auto& k : inside) ASSERT_TRUE(client_->put({k, "in"}).ok());
  // Just outside on both sides: the byte before 0xff, and the first key
  // after the whole prefix (what the range end must stop at).
  ASSERT_TRUE(client_->put({prefix_ + "\xfe", "out"}).ok());
  ASSERT_TRUE(client_->put({prefix_range_end(p), "out"}).ok());

  auto r = client_->range(RangeRequest::prefix(p));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->kvs.size(), inside.size());
  for (size_t i = 0; i < inside.size(); ++i) {
    EXPECT_EQ(r->kvs[i].key, inside[i]);
    EXPECT_EQ(r->kvs[i].value, "in");
  }
  auto d = client_->delete_range(DeleteRequest::prefix(p));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->deleted, static_cast<int64_t>(inside.size()));
  auto rest = client_->range(RangeRequest::prefix(prefix_));
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->kvs.size(), 1u);  // prefix_ + 0xfe; the range end key is outside prefix_
}

TEST_F(EtcdClientTest, BinaryKeysAndValuesRoundTripExactly) {
  std::string every;
  for (int b = 0; b < 256; ++b) every.push_back(static_cast<char>(b));
  const std::string key = prefix_ + every;
  const std::string value = every + every + std::string("\0\0", 2);
  ASSERT_TRUE(client_->put({key, value}).ok());
  ASSERT_TRUE(client_->put({prefix_ + "empty", ""}).ok());
  auto r = client_->range(RangeRequest::prefix(prefix_));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(r->kvs[0].key, key);  // 0x00 sorts before "empty"
  EXPECT_EQ(r->kvs[0].value, value);
  EXPECT_EQ(r->kvs[1].key, prefix_ + "empty");
  EXPECT_EQ(r->kvs[1].value, "");
}

TEST_F(EtcdClientTest, CreateIfAbsentElectsExactlyOneLeaderWithGrowingEpochs) {
  const std::string key = prefix_ + "leader";
  constexpr int kRounds = 20;
  std::barrier sync(2);
  std::atomic<int> wins[2] = {0, 0};
  std::vector<int64_t> epochs(kRounds, 0);
  std::vector<int> winners(kRounds, -1);
  std::atomic<bool> failed{false};
  auto contender = [&](int me) {
    const std::string name = "node-" + std::to_string(me);
    for (int round = 0; round < kRounds; ++round) {
      sync.arrive_and_wait();
      TxnRequest t;
      t.compare.push_back(Compare::create_revision_is(key, Op::kEqual, 0));
      t.success.emplace_back(PutRequest{key, name});
      t.failure.emplace_back(RangeRequest::single(key));
      auto r = client_->txn(t);  // one client, two threads: it is thread-safe
      // No ASSERT here: a thread that returned early would strand the other
      // at the barrier.
      if (!r.ok()) {
        failed = true;
      } else if (r->succeeded) {
        ++wins[me];
        winners[round] = me;
        if (r->responses.size() != 1 || !std::holds_alternative<PutResponse>(r->responses[0]))
          failed = true;
        epochs[round] = r->header.revision;  // the key's create_revision
      } else {
        // The loser learns who leads.
        const RangeResponse* range =
            r->responses.size() == 1 ? std::get_if<RangeResponse>(&r->responses[0]) : nullptr;
        if (range == nullptr || range->kvs.size() != 1 || range->kvs[0].value == name)
          failed = true;
      }
      sync.arrive_and_wait();
      // The winner steps down so the next round elects again.
      if (winners[round] == me) {
        auto d = client_->delete_range(DeleteRequest::single(key));
        if (!d.ok() || d->deleted != 1) failed = true;
      }
      sync.arrive_and_wait();
    }
  };
  std::thread a(contender, 0), b(contender, 1);
  a.join();
  b.join();
  ASSERT_FALSE(failed);
  EXPECT_EQ(wins[0] + wins[1], kRounds);  // exactly one winner per round
  for (int round = 0; round < kRounds; ++round) {
    EXPECT_NE(winners[round], -1) << round;
    if (round > 0) {
      EXPECT_GT(epochs[round], epochs[round - 1]) << "the epoch only grows";
    }
  }
}

TEST_F(EtcdClientTest, TxnComparesEveryTargetAndAnswersTypedOps) {
  const std::string k = prefix_ + "k";
  ASSERT_TRUE(client_->put({k, "x"}).ok());
  auto p = client_->put({k, "y"});
  ASSERT_TRUE(p.ok());
  const int64_t mod = p->header.revision;
  auto lease = client_->lease_grant(60);
  ASSERT_TRUE(lease.ok()) << lease.status().to_string();
  ASSERT_TRUE(client_->put({prefix_ + "leased", "v", lease->id}).ok());

  auto holds = [&](Compare c) {
    TxnRequest t;
    t.compare.push_back(std::move(c));
    auto r = client_->txn(t);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() && r->succeeded;
  };
  EXPECT_TRUE(holds(Compare::value_is(k, Op::kEqual, "y")));
  EXPECT_FALSE(holds(Compare::value_is(k, Op::kEqual, "x")));
  EXPECT_TRUE(holds(Compare::value_is(k, Op::kNotEqual, "x")));
  EXPECT_TRUE(holds(Compare::value_is(k, Op::kGreater, "x")));
  EXPECT_FALSE(holds(Compare::value_is(k, Op::kLess, "x")));
  EXPECT_TRUE(holds(Compare::version_is(k, Op::kEqual, 2)));
  EXPECT_TRUE(holds(Compare::version_is(k, Op::kGreater, 1)));
  EXPECT_FALSE(holds(Compare::version_is(k, Op::kLess, 2)));
  EXPECT_TRUE(holds(Compare::mod_revision_is(k, Op::kEqual, mod)));
  EXPECT_FALSE(holds(Compare::mod_revision_is(k, Op::kNotEqual, mod)));
  EXPECT_TRUE(holds(Compare::create_revision_is(k, Op::kLess, mod)));
  EXPECT_FALSE(holds(Compare::create_revision_is(k, Op::kEqual, 0)));
  EXPECT_TRUE(holds(Compare::create_revision_is(prefix_ + "absent", Op::kEqual, 0)));
  EXPECT_TRUE(holds(Compare::lease_is(prefix_ + "leased", Op::kEqual, lease->id)));
  EXPECT_FALSE(holds(Compare::lease_is(prefix_ + "leased", Op::kNotEqual, lease->id)));
  EXPECT_TRUE(holds(Compare::lease_is(k, Op::kEqual, 0)));

  // Several compares, all must hold; each branch answers its own ops, typed.
  TxnRequest t;
  t.compare.push_back(Compare::value_is(k, Op::kEqual, "y"));
  t.compare.push_back(Compare::version_is(k, Op::kEqual, 99));
  t.success.emplace_back(PutRequest{k, "never"});
  PutRequest put{prefix_ + "f", "failure-ran"};
  t.failure.emplace_back(put);
  t.failure.emplace_back(RangeRequest::single(k));
  t.failure.emplace_back(DeleteRequest::single(prefix_ + "leased"));
  auto r = client_->txn(t);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(r->succeeded);
  ASSERT_EQ(r->responses.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<PutResponse>(r->responses[0]));
  ASSERT_TRUE(std::holds_alternative<RangeResponse>(r->responses[1]));
  ASSERT_EQ(std::get<RangeResponse>(r->responses[1]).kvs.size(), 1u);
  EXPECT_EQ(std::get<RangeResponse>(r->responses[1]).kvs[0].value, "y");
  ASSERT_TRUE(std::holds_alternative<DeleteResponse>(r->responses[2]));
  EXPECT_EQ(std::get<DeleteResponse>(r->responses[2]).deleted, 1);
  auto f = client_->range(RangeRequest::single(prefix_ + "f"));
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->kvs.size(), 1u);
  EXPECT_EQ(f->kvs[0].value, "failure-ran");
  EXPECT_EQ(client_->range(RangeRequest::single(k))->kvs[0].value, "y");
  EXPECT_TRUE(client_->lease_revoke(lease->id).is_ok());
}

TEST_F(EtcdClientTest, LeaseExpiryDeletesTheKeyAndTheWatcherSeesADelete) {
  auto lease = client_->lease_grant(1);  // the minimum with a 500 ms election timeout
  ASSERT_TRUE(lease.ok()) << lease.status().to_string();
  auto p = client_->put({prefix_ + "member", "alive", lease->id});
  ASSERT_TRUE(p.ok()) << p.status().to_string();

  Recorder rec;
  WatchOptions w;
  w.key = prefix_;
  w.range_end = prefix_range_end(prefix_);
  w.start_revision = p->header.revision;
  w.prev_kv = true;
  auto watch = client_->watch(w, rec.callback());
  ASSERT_TRUE(rec.wait_events(2, milliseconds(10000))) << "no DELETE after the lease's TTL";
  const auto events = rec.snapshot();
  EXPECT_EQ(events[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(events[0].kv.lease, lease->id);
  EXPECT_EQ(events[1].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[1].kv.key, prefix_ + "member");
  ASSERT_TRUE(events[1].prev_kv.has_value());
  EXPECT_EQ(events[1].prev_kv->lease, lease->id);  // what tells an expiry apart
  EXPECT_EQ(events[1].prev_kv->value, "alive");

  auto gone = client_->range(RangeRequest::single(prefix_ + "member"));
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->kvs.empty());
  EXPECT_TRUE(client_->lease_keepalive_once(lease->id).status().is(ClusterErrc::kLeaseNotFound));
  EXPECT_TRUE(client_->lease_time_to_live(lease->id).status().is(ClusterErrc::kLeaseNotFound));
  // A put with the dead lease is refused with the same code.
  EXPECT_TRUE(client_->put({prefix_ + "member", "late", lease->id})
                  .status()
                  .is(ClusterErrc::kLeaseNotFound));
}

TEST_F(EtcdClientTest, KeepaliveExtendsTheLeaseAndRevokeEndsIt) {
  auto lease = client_->lease_grant(2);
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->ttl, 2);
  ASSERT_TRUE(client_->put({prefix_ + "k", "v", lease->id}).ok());
  // Twice the TTL, kept alive every 500 ms: the key must survive.
  const auto until = Clock::now() + milliseconds(4000);
  while (Clock::now() < until) {
    auto ttl = client_->lease_keepalive_once(lease->id);
    ASSERT_TRUE(ttl.ok()) << ttl.status().to_string();
    EXPECT_EQ(*ttl, 2);
    std::this_thread::sleep_for(milliseconds(500));
  }
  auto r = client_->range(RangeRequest::single(prefix_ + "k"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u) << "the key expired although kept alive";
  auto info = client_->lease_time_to_live(lease->id, true);
  ASSERT_TRUE(info.ok()) << info.status().to_string();
  EXPECT_EQ(info->id, lease->id);
  EXPECT_EQ(info->granted_ttl, 2);
  EXPECT_GT(info->ttl, 0);
  ASSERT_EQ(info->keys.size(), 1u);
  EXPECT_EQ(info->keys[0], prefix_ + "k");

  ASSERT_TRUE(client_->lease_revoke(lease->id).is_ok());
  auto after = client_->range(RangeRequest::single(prefix_ + "k"));
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->kvs.empty());
  EXPECT_TRUE(client_->lease_keepalive_once(lease->id).status().is(ClusterErrc::kLeaseNotFound));
  EXPECT_TRUE(client_->lease_revoke(lease->id).is(ClusterErrc::kLeaseNotFound));
}

TEST_F(EtcdClientTest, LeaseIdsAbove2Pow53StayExact) {
  // Both are odd and above 2^53, where a double cannot hold them.
  for (const int64_t id : {(int64_t{1} << 53) + 1, int64_t{0x7ffffffffffffff1}}) {
    auto lease = client_->lease_grant(60, id);
    ASSERT_TRUE(lease.ok()) << lease.status().to_string();
    EXPECT_EQ(lease->id, id);
    const std::string key = prefix_ + std::to_string(id);
    ASSERT_TRUE(client_->put({key, "v", id}).ok());
    auto r = client_->range(RangeRequest::single(key));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->kvs.size(), 1u);
    EXPECT_EQ(r->kvs[0].lease, id);
    auto ttl = client_->lease_time_to_live(id);
    ASSERT_TRUE(ttl.ok()) << ttl.status().to_string();
    EXPECT_EQ(ttl->id, id);
    EXPECT_TRUE(client_->lease_keepalive_once(id).ok());
    TxnRequest t;
    t.compare.push_back(Compare::lease_is(key, Op::kEqual, id));
    auto txn = client_->txn(t);
    ASSERT_TRUE(txn.ok());
    EXPECT_TRUE(txn->succeeded);
    EXPECT_TRUE(client_->lease_revoke(id).is_ok());
  }
}

TEST_F(EtcdClientTest, CompactedStartRevisionIsReportedAndRelistResumes) {
  const std::string k = prefix_ + "k";
  auto first = client_->put({k, "1"});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(client_->put({k, "2"}).ok());
  auto last = client_->put({k, "3"});
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(client_->compact(last->header.revision).is_ok());

  // Reading below the compaction is an error with its own code.
  RangeRequest old = RangeRequest::single(k);
  old.revision = first->header.revision;
  EXPECT_TRUE(client_->range(old).status().is(ClusterErrc::kCompacted));

  Recorder rec;
  WatchOptions w;
  w.key = k;
  w.start_revision = first->header.revision;
  auto watch = client_->watch(w, rec.callback());
  ASSERT_TRUE(rec.wait_end(milliseconds(5000))) << "compaction not reported";
  {
    std::lock_guard lock(rec.mu);
    ASSERT_EQ(rec.ends.size(), 1u);
    EXPECT_TRUE(rec.ends[0].compacted);
    EXPECT_EQ(rec.ends[0].compact_revision, last->header.revision);
    EXPECT_TRUE(rec.events.empty());
  }
  EXPECT_TRUE(eventually([&] { return watch->ended(); }, milliseconds(1000)));

  // The caller's answer: re-list, then watch from the listing's revision + 1.
  auto listing = client_->range(RangeRequest::single(k));
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->kvs[0].value, "3");
  Recorder again;
  w.start_revision = listing->header.revision + 1;
  auto resumed = client_->watch(w, again.callback());
  ASSERT_TRUE(resumed->wait_connected(milliseconds(5000)));
  ASSERT_TRUE(client_->put({k, "4"}).ok());
  ASSERT_TRUE(again.wait_events(1, milliseconds(5000)));
  EXPECT_EQ(again.snapshot()[0].kv.value, "4");
  EXPECT_FALSE(resumed->ended());
}

TEST_F(EtcdClientTest, WatchFromNowSeesOnlyLaterEventsWithTypes) {
  ASSERT_TRUE(client_->put({prefix_ + "before", "x"}).ok());
  Recorder rec;
  WatchOptions w;
  w.key = prefix_;
  w.range_end = prefix_range_end(prefix_);
  w.prev_kv = true;
  auto watch = client_->watch(w, rec.callback());
  ASSERT_TRUE(watch->wait_connected(milliseconds(5000)));
  EXPECT_EQ(watch->current_endpoint(), etcd_->endpoint(0));
  ASSERT_TRUE(client_->put({prefix_ + "a", "1"}).ok());
  ASSERT_TRUE(client_->put({prefix_ + "a", "2"}).ok());
  ASSERT_TRUE(client_->delete_range(DeleteRequest::single(prefix_ + "a")).ok());
  ASSERT_TRUE(rec.wait_events(3, milliseconds(5000)));
  const auto ev = rec.snapshot();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(ev[0].kv.value, "1");
  EXPECT_FALSE(ev[0].prev_kv.has_value());
  EXPECT_EQ(ev[1].type, WatchEvent::Type::kPut);
  ASSERT_TRUE(ev[1].prev_kv.has_value());
  EXPECT_EQ(ev[1].prev_kv->value, "1");
  EXPECT_EQ(ev[2].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(ev[2].kv.key, prefix_ + "a");
  EXPECT_LT(ev[0].kv.mod_revision, ev[1].kv.mod_revision);
  EXPECT_LT(ev[1].kv.mod_revision, ev[2].kv.mod_revision);
  EXPECT_EQ(watch->reconnects(), 0);
}

TEST_F(EtcdClientTest, HealthAndStatus) {
  auto h = client_->health();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_TRUE(h[0].healthy) << h[0].error;
  EXPECT_EQ(h[0].endpoint, etcd_->endpoint(0));
  auto s = client_->status(etcd_->endpoint(0));
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_NE(s->header.member_id, 0u);
  EXPECT_EQ(s->leader, s->header.member_id);  // a single member leads itself
  EXPECT_GT(s->db_size, 0);
  EXPECT_EQ(s->version.rfind("3.", 0), 0u) << s->version;
  EXPECT_GT(s->raft_term, 0u);
}

TEST_F(EtcdClientTest, RefusalsHaveTypedCodes) {
  // A revision in the future is etcd's refusal, not a transport problem.
  RangeRequest future = RangeRequest::single(prefix_ + "k");
  future.revision = current_revision() + 1000000;
  auto r = client_->range(future);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is(ClusterErrc::kRejected)) << r.status().to_string();
  // An empty key is refused by etcd ("key is not provided").
  auto p = client_->put({"", "v"});
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(p.status().is(ClusterErrc::kRejected)) << p.status().to_string();
  EXPECT_TRUE(client_->lease_revoke(12345).is(ClusterErrc::kLeaseNotFound));
}

TEST(EtcdClientUnreachable, NoEndpointListeningIsUnavailableAtOnce) {
  const uint16_t a = test::free_loopback_port(), b = test::free_loopback_port();
  auto client = make_client(
      {"http://127.0.0.1:" + std::to_string(a), "http://127.0.0.1:" + std::to_string(b)});
  ASSERT_NE(client, nullptr);
  const auto t0 = Clock::now();
  auto r = client->range(RangeRequest::single("k"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is(ClusterErrc::kUnavailable)) << r.status().to_string();
  // A refused write was sent nowhere: kUnavailable, not "outcome unknown".
  EXPECT_TRUE(client->put({"k", "v"}).status().is(ClusterErrc::kUnavailable));
  EXPECT_LT(elapsed_ms(t0), 500 * kSlowdown) << "refused connections must not wait";
  auto h = client->health();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_FALSE(h[0].healthy);
  EXPECT_FALSE(h[0].error.empty());
}

// --- members of their own ----------------------------------------------------

TEST(EtcdClientPaused, DeadlineHonouredWhileEtcdIsStoppedAndCallsWorkAfterSigcont) {
  EtcdCluster etcd(1);
  std::string error;
  ASSERT_TRUE(etcd.start(&error)) << error;
  constexpr int64_t kTimeoutMs = 300;
  auto client = make_client(etcd.endpoints(), milliseconds(kTimeoutMs));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->put({"k", "v"}).ok());  // leaves a pooled keep-alive connection

  Recorder rec;
  WatchOptions w;
  w.key = "k";
  auto watch = client->watch(w, rec.callback());
  ASSERT_TRUE(watch->wait_connected(milliseconds(5000)));

  ASSERT_TRUE(etcd.pause(0));
  const int64_t slack = 700 * kSlowdown;
  auto t0 = Clock::now();
  auto r = client->range(RangeRequest::single("k"));
  int64_t took = elapsed_ms(t0);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is(ClusterErrc::kTimeout)) << r.status().to_string();
  EXPECT_GE(took, kTimeoutMs - 20);
  EXPECT_LT(took, kTimeoutMs + slack);

  t0 = Clock::now();
  auto p = client->put({"k", "w"});
  took = elapsed_ms(t0);
  EXPECT_TRUE(p.status().is(ClusterErrc::kTimeout)) << p.status().to_string();
  EXPECT_LT(took, kTimeoutMs + slack);

  t0 = Clock::now();
  EXPECT_TRUE(client->lease_keepalive_once(1).status().is(ClusterErrc::kTimeout));
  auto h = client->health();
  EXPECT_FALSE(h[0].healthy);
  EXPECT_LT(elapsed_ms(t0), 2 * kTimeoutMs + slack);

  // Stopping a watch never waits for etcd.
  t0 = Clock::now();
  watch.reset();
  EXPECT_LT(elapsed_ms(t0), 200 * kSlowdown);

  ASSERT_TRUE(etcd.resume(0));
  EXPECT_TRUE(eventually([&] { return client->range(RangeRequest::single("k")).ok(); },
                         milliseconds(10000)));
  EXPECT_TRUE(client->put({"k", "after"}).ok());
}

TEST(EtcdClientThreads, StoppedWatchAndClientLeaveNoThreadBehind) {
  EtcdCluster etcd(1);
  std::string error;
  ASSERT_TRUE(etcd.start(&error)) << error;
  const size_t before = thread_count();
  {
    auto client = make_client(etcd.endpoints());
    ASSERT_NE(client, nullptr);
    Recorder rec;
    WatchOptions w;
    w.key = "k";
    auto connected = client->watch(w, rec.callback());
    ASSERT_TRUE(connected->wait_connected(milliseconds(5000)));
    // One that never connects (nobody listens): stuck between attempts.
    EtcdOptions o;
    o.endpoints = {"http://127.0.0.1:" + std::to_string(test::free_loopback_port())};
    auto lonely_client = EtcdClient::create(o);
    ASSERT_TRUE(lonely_client.ok());
    auto lonely = (*lonely_client)->watch(w, rec.callback());
    EXPECT_FALSE(lonely->wait_connected(milliseconds(300)));
    EXPECT_GT(lonely->reconnects(), 0);
    EXPECT_EQ(thread_count(), before + 2);  // one thread per watch, none per client

    const auto t0 = Clock::now();
    connected.reset();
    lonely.reset();
    EXPECT_LT(elapsed_ms(t0), 200 * kSlowdown) << "a watch must stop at once";
    EXPECT_EQ(thread_count(), before);
  }
  EXPECT_EQ(thread_count(), before);
}

TEST(EtcdClientFailover, CallsKeepWorkingWhenAMemberIsKilled) {
  EtcdCluster etcd(3);
  std::string error;
  ASSERT_TRUE(etcd.start(&error)) << error;
  auto client = make_client(etcd.endpoints());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->put({"k", "before"}).ok());
  auto health = client->health();
  for (const auto& h : health) EXPECT_TRUE(h.healthy) << h.endpoint << ": " << h.error;

  // The first endpoint, where the client's pooled connection is, dies.
  ASSERT_TRUE(etcd.kill9(0));
  // Reads move on at once; a write whose connection is refused was sent
  // nowhere, so it moves on too. (If the dead member led, the others elect
  // a new leader within about a second: the write is retried until then.)
  auto r = client->range(RangeRequest::single("k"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->kvs[0].value, "before");
  Status last;
  EXPECT_TRUE(eventually(
      [&] {
        auto p = client->put({"k", "after"});
        last = p.status();
        return p.ok();
      },
      milliseconds(10000)))
      << last.to_string();
  auto a = client->range(RangeRequest::single("k"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->kvs[0].value, "after");
  health = client->health();
  EXPECT_FALSE(health[0].healthy);
  EXPECT_TRUE(health[1].healthy) << health[1].error;

  // A paused follower costs a read one deadline, then another member
  // answers. (Member 0 back first: a linearizable read needs a quorum; a
  // follower, because pausing the leader stops every member's reads until
  // an election.)
  ASSERT_TRUE(etcd.restart(0, &error)) << error;
  size_t follower = etcd.size(), other = etcd.size();
  for (size_t i = 0; i < etcd.size(); ++i) {
    auto s = client->status(etcd.endpoint(i));
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    if (s->leader != s->header.member_id && follower == etcd.size()) {
      follower = i;
    } else {
      other = i;
    }
  }
  ASSERT_LT(follower, etcd.size());
  ASSERT_LT(other, etcd.size());
  auto quick = make_client({etcd.endpoint(follower), etcd.endpoint(other)}, milliseconds(300));
  ASSERT_TRUE(etcd.pause(follower));
  const auto t0 = Clock::now();
  auto via_other = quick->range(RangeRequest::single("k"));
  const int64_t took = elapsed_ms(t0);
  EXPECT_TRUE(via_other.ok()) << via_other.status().to_string();
  EXPECT_GE(took, 300 - 20) << "the paused member answered?";
  EXPECT_LT(took, 300 + 700 * kSlowdown);
  // The paused member is no longer tried first.
  const auto t1 = Clock::now();
  EXPECT_TRUE(quick->range(RangeRequest::single("k")).ok());
  EXPECT_LT(elapsed_ms(t1), 200 * kSlowdown);
  ASSERT_TRUE(etcd.resume(follower));
}

TEST(EtcdClientFailover, WatchDeliversEveryEventOnceInOrderAcrossAKilledMember) {
  EtcdCluster etcd(3);
  std::string error;
  ASSERT_TRUE(etcd.start(&error)) << error;
  auto client = make_client(etcd.endpoints());
  ASSERT_NE(client, nullptr);
  const std::string prefix = "/w/";
  auto start = client->range(RangeRequest::single(prefix));
  ASSERT_TRUE(start.ok());
  const int64_t from = start->header.revision + 1;

  Recorder rec;
  WatchOptions w;
  w.key = prefix;
  w.range_end = prefix_range_end(prefix);
  w.start_revision = from;
  w.prev_kv = true;
  auto watch = client->watch(w, rec.callback());
  ASSERT_TRUE(watch->wait_connected(milliseconds(5000)));

  // Writes go on until etcd has taken each; a write retried after an
  // unknown outcome may land twice: the oracle below is etcd's own history.
  auto put_until_ok = [&](const std::string& key, const std::string& value) {
    Status last;
    const bool ok = eventually(
        [&] {
          auto p = client->put({key, value});
          last = p.status();
          return p.ok();
        },
        milliseconds(15000));
    EXPECT_TRUE(ok) << key << ": " << last.to_string();
  };
  for (int i = 0; i < 10; ++i) put_until_ok(prefix + "a" + std::to_string(i), std::to_string(i));
  ASSERT_TRUE(rec.wait_events(10, milliseconds(5000)));

  const size_t victim = etcd.index_of(watch->current_endpoint());
  ASSERT_LT(victim, etcd.size()) << watch->current_endpoint();
  ASSERT_TRUE(etcd.kill9(victim));
  for (int i = 0; i < 20; ++i) put_until_ok(prefix + "b" + std::to_string(i), std::to_string(i));
  auto end = client->range(RangeRequest::prefix(prefix));
  ASSERT_TRUE(end.ok());
  const int64_t last_revision = end->header.revision;

  // etcd's history of the prefix, read afterwards by a fresh watch on a
  // healthy member.
  Recorder truth;
  auto reference = client->watch(w, truth.callback());
  ASSERT_TRUE(eventually(
      [&] {
        auto ev = truth.snapshot();
        return !ev.empty() && ev.back().kv.mod_revision >= last_revision;
      },
      milliseconds(10000)));
  const auto expected = truth.snapshot();
  ASSERT_GE(expected.size(), 30u);

  ASSERT_TRUE(eventually(
      [&] {
        auto ev = rec.snapshot();
        return ev.size() >= expected.size();
      },
      milliseconds(15000)))
      << "the watch did not catch up after its member died (reconnects: " << watch->reconnects()
      << ")";
  std::this_thread::sleep_for(milliseconds(200));  // would reveal late duplicates
  const auto got = rec.snapshot();
  EXPECT_GE(watch->reconnects(), 1);
  EXPECT_NE(watch->current_endpoint(), etcd.endpoint(victim));
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].kv.key, expected[i].kv.key) << i;
    EXPECT_EQ(got[i].kv.value, expected[i].kv.value) << i;
    EXPECT_EQ(got[i].kv.mod_revision, expected[i].kv.mod_revision) << i;
    if (i > 0) {
      EXPECT_LT(got[i - 1].kv.mod_revision, got[i].kv.mod_revision) << i;
    }
  }
  // Every key written is there.
  std::set<std::string> keys;
  for (const auto& e : got) keys.insert(e.kv.key);
  EXPECT_EQ(keys.size(), 30u);
}

// With Grpc-Metadata-hasleader, a member that has lost its leader ends the
// watch stream instead of keeping it open and silent: the watch notices and
// moves on. Without the header this watch would wait forever.
TEST(EtcdClientFailover, WatchOnAMemberThatLostItsLeaderMovesOn) {
  EtcdCluster etcd(3);
  std::string error;
  ASSERT_TRUE(etcd.start(&error)) << error;
  auto client = make_client(etcd.endpoints(), milliseconds(500));
  ASSERT_NE(client, nullptr);
  Recorder rec;
  WatchOptions w;
  w.key = "k";
  auto watch = client->watch(w, rec.callback());
  ASSERT_TRUE(watch->wait_connected(milliseconds(5000)));
  const size_t alone = etcd.index_of(watch->current_endpoint());
  ASSERT_LT(alone, etcd.size());
  // The two others hang: the watch's member keeps its sockets but has no
  // quorum, so no leader.
  for (size_t i = 0; i < etcd.size(); ++i) {
    if (i != alone) {
      ASSERT_TRUE(etcd.pause(i));
    }
  }
  EXPECT_TRUE(eventually([&] { return watch->reconnects() >= 1; }, milliseconds(15000)))
      << "the stream of a member without a leader stayed open";
  for (size_t i = 0; i < etcd.size(); ++i) {
    if (i != alone) {
      ASSERT_TRUE(etcd.resume(i));
    }
  }
  // Back to a quorum: the watch connects again and delivers.
  Status last;
  ASSERT_TRUE(eventually(
      [&] {
        auto p = client->put({"k", "v"});
        last = p.status();
        return p.ok();
      },
      milliseconds(15000)))
      << last.to_string();
  EXPECT_TRUE(rec.wait_events(1, milliseconds(10000)));
}

}  // namespace
}  // namespace yantra::cluster
