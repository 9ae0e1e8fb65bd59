// Membership, partition leadership and the segment chain (cluster/layout,
// node_lease, membership, leadership, segment_chain) against real etcd
// processes (tests/support/etcd_process.hpp): a shared single member, each
// test under its own prefix, and a member of its own for the test that
// pauses etcd.
//
// What each test would catch:
// - LayoutTest: keys that do not sort by epoch, records that round-trip
//   lossily, a parser that accepts (or throws on) a malformed value.
// - InitCluster: a second init that replaces the cluster or a conflicting
//   one that succeeds; bounds not checked.
// - Membership*: a node that never appears or never leaves (revoke and
//   expiry both), a registration not redone under a re-granted lease.
// - Leadership*: two leaders for a partition, a vacant one, preferred
//   placement not winning, epochs that do not grow.
// - LeaseLossBeforeExpiry: on_lost only after etcd answered (the watchdog
//   missing): with a keepalive request blocked in a paused etcd, the loss
//   would be reported after etcd could already have expired the key.
// - Fencing / SealRace: segment writes without the leader compare or
//   without the record's mod_revision compare.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_client.hpp"
#include "cluster/layout.hpp"
#include "cluster/leadership.hpp"
#include "cluster/membership.hpp"
#include "cluster/node_lease.hpp"
#include "cluster/segment_chain.hpp"
#include "tests/cluster/etcd_util.hpp"
#include "tests/support/etcd_process.hpp"

namespace yantra::cluster {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using test::EtcdCluster;

using etcd_test::eventually;
using etcd_test::make_client;

NodeRecord node_record(const std::string& id) {
  NodeRecord n;
  n.id = id;
  n.http = "127.0.0.1:8081";
  n.cluster = "127.0.0.1:9081";
  n.version = "test";
  n.started_ms = 1;
  return n;
}

LeaderRecord leader_record(const std::string& id) {
  return {id, "127.0.0.1:8081", "127.0.0.1:9081"};
}

// --- records, no etcd ---------------------------------------------------------------

TEST(LayoutTest, KeysSortByEpochAndParseBack) {
  Layout layout("yantra/");
  EXPECT_EQ(layout.prefix(), "/yantra");
  EXPECT_EQ(layout.meta(), "/yantra/meta");
  EXPECT_EQ(layout.node("n1"), "/yantra/nodes/n1");
  EXPECT_EQ(layout.node_admin("n1"), "/yantra/node-admin/n1");
  EXPECT_EQ(layout.leader(7), "/yantra/leader/7");
  EXPECT_EQ(layout.segment(7, 42), "/yantra/segments/7/00000000000000000042");
  EXPECT_EQ(layout.placement(3), "/yantra/placement/3");
  EXPECT_EQ(layout.controller(), "/yantra/controller");
  EXPECT_LT(layout.segment(1, 9), layout.segment(1, 10));  // byte order = epoch order
  EXPECT_EQ(layout.partition_of_leader("/yantra/leader/12"), 12u);
  EXPECT_FALSE(layout.partition_of_leader("/yantra/leader/012"));
  EXPECT_FALSE(layout.partition_of_leader("/yantra/leader/x"));
  EXPECT_EQ(layout.node_id_of("/yantra/nodes/n-1.a"), "n-1.a");
  EXPECT_FALSE(layout.node_id_of("/yantra/nodes/a/b"));
  EXPECT_FALSE(validate_node_id("").is_ok());
  EXPECT_FALSE(validate_node_id("a b").is_ok());
  EXPECT_TRUE(validate_node_id("node-1").is_ok());

  SegmentRecord seg{5, "n1", {"n1", "n2", "n3"}, 11, std::nullopt};
  auto back = parse_segment_record(to_json(seg));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(*back, seg);
  seg.sealed_end = 10;  // empty segment: first_lsn - 1
  EXPECT_EQ(*parse_segment_record(to_json(seg)), seg);
  NodeRecord n = node_record("n1");
  EXPECT_EQ(*parse_node_record(to_json(n)), n);
  n.writable = false;  // its store refuses writes
  EXPECT_EQ(*parse_node_record(to_json(n)), n);
  // A record of a node from before `writable` existed: writable.
  auto older = parse_node_record(R"({"id":"n2","http":"h","cluster":"c","version":"",)"
                                 R"("protocol":1,"started_ms":0})");
  ASSERT_TRUE(older.ok()) << older.status().to_string();
  EXPECT_TRUE(older->writable);
  auto bad = parse_node_record(R"({"id":"n2","http":"h","cluster":"c","version":"",)"
                               R"("protocol":1,"started_ms":0,"writable":"no"})",
                               "/k");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("writable"), std::string::npos);
  LeaderRecord l = leader_record("n1");
  EXPECT_EQ(*parse_leader_record(to_json(l)), l);
  ClusterMeta m{"abc", 64, 3, 2, kClusterProtocol};
  EXPECT_EQ(*parse_cluster_meta(to_json(m)), m);

  // Malformed values: refused with kInvalidRecord naming the field.
  const std::vector<std::pair<std::string, std::string>> bad_segments = {
      {"not json", ""},
      {"[1]", ""},
      {R"({"writer":"n1","replicas":["n1"],"first_lsn":1})", "epoch"},
      {R"({"epoch":"5","writer":"n1","replicas":["n1"],"first_lsn":1})", "epoch"},
      {R"({"epoch":5,"writer":"n1","replicas":[],"first_lsn":1})", "replicas"},
      {R"({"epoch":5,"writer":"n1","replicas":[7],"first_lsn":1})", "replicas"},
      {R"({"epoch":5,"writer":"n1","replicas":["n1"],"first_lsn":0})", "first_lsn"},
      {R"({"epoch":5,"writer":"n1","replicas":["n1"],"first_lsn":-1})", "first_lsn"},
      {R"({"epoch":5,"writer":"n1","replicas":["n1"],"first_lsn":10,"sealed_end":3})",
       "sealed_end"},
  };
  for (const auto& [value, field] : bad_segments) {
    auto r = parse_segment_record(value, "/k");
    ASSERT_FALSE(r.ok()) << value;
    EXPECT_TRUE(r.status().is(ClusterErrc::kInvalidRecord)) << r.status().to_string();
    EXPECT_NE(r.status().message().find("/k"), std::string::npos) << r.status().message();
    if (!field.empty()) {
      EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().message();
    }
  }
  EXPECT_FALSE(parse_cluster_meta(R"({"cluster_id":"a","partitions":64,"replication":3,)"
                                  R"("write_quorum":3,"protocol":1})")
                   .ok());  // write_quorum must be 2
  EXPECT_FALSE(parse_cluster_meta(R"({"cluster_id":"a","partitions":5000,"replication":3,)"
                                  R"("write_quorum":2,"protocol":1})")
                   .ok());
  EXPECT_FALSE(parse_node_record(R"({"id":"a b","http":"h","cluster":"c","version":"",)"
                                 R"("protocol":1,"started_ms":0})")
                   .ok());
  EXPECT_FALSE(parse_leader_record(R"({"node":"n1","http":"h"})").ok());
  // Unknown fields are ignored (a newer node's extras during an upgrade).
  EXPECT_TRUE(parse_leader_record(R"({"node":"n1","http":"h","cluster":"c","new":1})").ok());
}

// --- the shared etcd member -----------------------------------------------------------

class MembershipTest : public etcd_test::SharedEtcdTest {
 protected:
  void SetUp() override {
    SharedEtcdTest::SetUp();
    layout_ = Layout(test_prefix());
  }

  std::unique_ptr<NodeLease> lease(EtcdClient& client, int64_t ttl_s = 2) {
    NodeLeaseOptions o;
    o.ttl = std::chrono::seconds(ttl_s);
    auto l = NodeLease::start(client, o);
    EXPECT_TRUE(l.ok()) << l.status().to_string();
    return l.ok() ? std::move(l).value() : nullptr;
  }

  Layout layout_;
};

TEST_F(MembershipTest, InitClusterIsIdempotentAndRefusesOtherSettings) {
  auto missing = load_cluster(*client_, layout_);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().is(Errc::kNotFound)) << missing.status().to_string();

  auto first = init_cluster(*client_, layout_, 64, 3);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(first->partitions, 64u);
  EXPECT_EQ(first->replication, 3u);
  EXPECT_EQ(first->write_quorum, 2u);
  EXPECT_EQ(first->cluster_id.size(), 32u);

  auto again = init_cluster(*client_, layout_, 64, 3);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->cluster_id, first->cluster_id);  // the same cluster, not a new one

  auto other = init_cluster(*client_, layout_, 32, 3);
  ASSERT_FALSE(other.ok());
  EXPECT_TRUE(other.status().is(ClusterErrc::kClusterExists)) << other.status().to_string();
  EXPECT_NE(other.status().message().find("partitions=64 replication=3"), std::string::npos)
      << other.status().message();
  EXPECT_NE(other.status().message().find("partitions=32 replication=3"), std::string::npos)
      << other.status().message();
  EXPECT_TRUE(init_cluster(*client_, layout_, 64, 1).status().is(ClusterErrc::kClusterExists));

  auto loaded = load_cluster(*client_, layout_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(*loaded, *first);

  Layout fresh(layout_.prefix() + "-bounds");
  for (auto [p, r] :
       std::vector<std::pair<uint32_t, uint32_t>>{{0, 3}, {4097, 3}, {8, 0}, {8, 8}}) {
    auto bad = init_cluster(*client_, fresh, p, r);
    EXPECT_TRUE(bad.status().is(Errc::kInvalidArgument)) << p << "/" << r;
  }
  EXPECT_TRUE(init_cluster(*client_, fresh, 4096, 1).ok());
  EXPECT_EQ(load_cluster(*client_, fresh)->write_quorum, 1u);

  // A damaged meta record is refused with a clear error, not taken as a cluster.
  Layout damaged(layout_.prefix() + "-damaged");
  ASSERT_TRUE(client_->put({damaged.meta(), "{\"partitions\":64}", 0, false}).ok());
  EXPECT_TRUE(load_cluster(*client_, damaged).status().is(ClusterErrc::kInvalidRecord));
  EXPECT_TRUE(init_cluster(*client_, damaged, 64, 3).status().is(ClusterErrc::kInvalidRecord));
}

// Records the live sets a Membership reports.
struct LiveLog {
  std::mutex mu;
  std::set<std::string> last;
  Membership::OnChange callback() {
    return [this](const Membership::LiveSet& live) {
      std::lock_guard lock(mu);
      last.clear();
      for (auto& [id, rec] : live) last.insert(id);
    };
  }
  std::set<std::string> get() {
    std::lock_guard lock(mu);
    return last;
  }
};

TEST_F(MembershipTest, NodesSeeEachOtherAndALeaverByRevoke) {
  auto client_b = make_client(etcd_->endpoints());
  auto lease_a = lease(*client_);
  // A long TTL, so that "gone at once" and "gone after the TTL" stay far
  // apart even on a loaded CI machine.
  auto lease_b = lease(*client_b, 8);
  LiveLog log_a;
  auto a = Membership::start(*client_, layout_, *lease_a, node_record("a"), log_a.callback());
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  auto b = Membership::start(*client_b, layout_, *lease_b, node_record("b"));
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  const std::set<std::string> both = {"a", "b"};
  ASSERT_TRUE(eventually([&] { return log_a.get() == both; }, milliseconds(3000)));
  ASSERT_TRUE(eventually([&] { return (*b)->live().size() == 2; }, milliseconds(3000)));
  EXPECT_EQ((*b)->live().at("a"), node_record("a"));

  // b stops cleanly: its record goes at once, not after the 8 s TTL.
  const auto stopped = Clock::now();
  b->reset();
  lease_b.reset();
  ASSERT_TRUE(
      eventually([&] { return log_a.get() == std::set<std::string>{"a"}; }, milliseconds(3000)));
  EXPECT_LT(Clock::now() - stopped, milliseconds(4000));
  EXPECT_FALSE((*a)->is_live("b"));
}

TEST_F(MembershipTest, AHungNodeLeavesAfterItsTtlAndALostLeaseIsReRegistered) {
  auto client_b = make_client(etcd_->endpoints());
  auto lease_a = lease(*client_);
  auto lease_b = lease(*client_b);
  auto a = Membership::start(*client_, layout_, *lease_a, node_record("a"));
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  auto b = Membership::start(*client_b, layout_, *lease_b, node_record("b"));
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  ASSERT_TRUE(eventually([&] { return (*a)->live().size() == 2; }, milliseconds(3000)));

  // b hangs: no keepalive any more, no revoke. etcd expires it after the TTL
  // counted from its last keepalive.
  lease_b->halt_for_testing();
  const auto renewed = lease_b->last_renewal_sent();
  ASSERT_TRUE(eventually([&] { return !(*a)->is_live("b"); }, milliseconds(8000)));
  const auto left_after = Clock::now() - renewed;
  EXPECT_GE(left_after, milliseconds(2000) - milliseconds(100)) << "left before its TTL";
  // etcd checks expiry every ~0.5 s; the rest is slack for a loaded machine.
  EXPECT_LE(left_after, milliseconds(6000));

  // a's lease is revoked behind its back: lost, a fresh lease, and the
  // record is put again under the new lease.
  std::atomic<int> lost{0}, granted{0};
  lease_a->subscribe([&](NodeLease::Event e, int64_t) {
    (e == NodeLease::Event::kLost ? lost : granted).fetch_add(1);
  });
  const int64_t old_id = lease_a->id();
  ASSERT_TRUE(client_->lease_revoke(old_id).is_ok());
  ASSERT_TRUE(eventually([&] { return granted.load() == 1; }, milliseconds(3000)));
  EXPECT_EQ(lost.load(), 1);
  EXPECT_NE(lease_a->id(), old_id);
  EXPECT_TRUE(lease_a->valid());
  ASSERT_TRUE(eventually(
      [&] {
        auto r = client_->range(RangeRequest::single(layout_.node("a")));
        return r.ok() && r->kvs.size() == 1 && r->kvs[0].lease == lease_a->id();
      },
      milliseconds(3000)));
  // Counted once the put returned, which may be just after the key is
  // visible to the range above.
  EXPECT_TRUE(eventually([&] { return (*a)->registrations() == 2; }, milliseconds(3000)))
      << (*a)->registrations();
  EXPECT_TRUE(eventually([&] { return (*a)->is_live("a"); }, milliseconds(3000)));
}

// One node's leadership: its lease, client and callbacks' log.
struct Node {
  struct Event {
    bool elected;
    uint32_t partition;
    int64_t epoch;
    Clock::time_point at;
  };
  // Declared first: the leadership's destructor still calls back into them.
  std::mutex mu;
  std::vector<Event> events;

  std::string id;
  std::unique_ptr<EtcdClient> client;
  std::unique_ptr<NodeLease> lease;
  std::unique_ptr<PartitionLeadership> leadership;

  std::vector<Event> log() {
    std::lock_guard lock(mu);
    return events;
  }
  size_t led() { return leadership ? leadership->led().size() : 0; }
};

std::unique_ptr<Node> start_node(const std::string& id, const std::vector<std::string>& endpoints,
                                 const Layout& layout, std::set<uint32_t> partitions,
                                 std::set<uint32_t> preferred,
                                 milliseconds request_timeout = milliseconds(1000),
                                 milliseconds standby = milliseconds(1000)) {
  auto n = std::make_unique<Node>();
  n->id = id;
  n->client = make_client(endpoints, request_timeout);
  NodeLeaseOptions lo;
  lo.ttl = std::chrono::seconds(2);
  auto lease = NodeLease::start(*n->client, lo);
  EXPECT_TRUE(lease.ok()) << lease.status().to_string();
  if (!lease.ok()) return nullptr;
  n->lease = std::move(lease).value();
  LeadershipOptions o;
  o.partitions = std::move(partitions);
  o.preferred = std::move(preferred);
  o.standby_delay = standby;
  o.resign_holdoff = milliseconds(2000);
  Node* raw = n.get();
  PartitionLeadership::Callbacks cb;
  cb.on_elected = [raw](uint32_t p, int64_t e) {
    std::lock_guard lock(raw->mu);
    raw->events.push_back({true, p, e, Clock::now()});
  };
  cb.on_lost = [raw](uint32_t p, int64_t e) {
    std::lock_guard lock(raw->mu);
    raw->events.push_back({false, p, e, Clock::now()});
  };
  auto l = PartitionLeadership::start(*n->client, layout, *n->lease, leader_record(id), o, cb);
  EXPECT_TRUE(l.ok()) << l.status().to_string();
  if (!l.ok()) return nullptr;
  n->leadership = std::move(l).value();
  return n;
}

std::set<uint32_t> range_set(uint32_t from, uint32_t to) {
  std::set<uint32_t> s;
  for (uint32_t p = from; p < to; ++p) s.insert(p);
  return s;
}

TEST_F(MembershipTest, EveryPartitionGetsExactlyOneLeaderAndPreferredNodesWin) {
  auto a = start_node("a", etcd_->endpoints(), layout_, range_set(0, 8), range_set(0, 4));
  auto b = start_node("b", etcd_->endpoints(), layout_, range_set(0, 8), range_set(4, 8));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(eventually([&] { return a->led() + b->led() == 8; }, milliseconds(5000)));
  // Past the standby delay: nobody took a partition twice.
  std::this_thread::sleep_for(milliseconds(1300));
  const auto led_a = a->leadership->led();
  const auto led_b = b->leadership->led();
  EXPECT_EQ(led_a.size() + led_b.size(), 8u);
  for (uint32_t p = 0; p < 8; ++p) {
    EXPECT_NE(led_a.count(p), led_b.count(p)) << "partition " << p;
    const std::string expected = p < 4 ? "a" : "b";
    for (Node* n : {a.get(), b.get()}) {
      auto l = n->leadership->leader_of(p);
      ASSERT_TRUE(l) << "partition " << p;
      EXPECT_EQ(l->node, expected) << "partition " << p << " as " << n->id << " sees it";
      EXPECT_EQ(l->epoch, (p < 4 ? led_a : led_b).at(p));
    }
    auto kv = client_->range(RangeRequest::single(layout_.leader(p)));
    ASSERT_TRUE(kv.ok() && kv->kvs.size() == 1);
    EXPECT_EQ(kv->kvs[0].lease, (p < 4 ? a : b)->lease->id());
  }
  EXPECT_TRUE(a->leadership->my_epoch(0));
  EXPECT_FALSE(a->leadership->my_epoch(4));
  EXPECT_TRUE(a->leadership->resign(4).is(ClusterErrc::kNotLeader));
}

TEST_F(MembershipTest, EpochsGrowAcrossReElections) {
  auto a = start_node("a", etcd_->endpoints(), layout_, {0, 1}, {0, 1}, milliseconds(1000),
                      milliseconds(300));
  ASSERT_TRUE(a);
  ASSERT_TRUE(eventually([&] { return a->led() == 2; }, milliseconds(3000)));
  auto b = start_node("b", etcd_->endpoints(), layout_, {0, 1}, {}, milliseconds(1000),
                      milliseconds(300));
  ASSERT_TRUE(b);
  // Ping-pong partition 0 by resigning (each resigner holds off 2 s).
  Node* holder = a.get();
  Node* other = b.get();
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(holder->leadership->resign(0).is_ok());
    EXPECT_FALSE(holder->leadership->my_epoch(0));
    ASSERT_TRUE(
        eventually([&] { return other->leadership->my_epoch(0).has_value(); }, milliseconds(4000)))
        << "round " << round;
    std::swap(holder, other);
  }
  // Partition 1: a hangs (keepalives stop, no revoke); b takes over after
  // the key expires.
  const int64_t epoch1 = *a->leadership->my_epoch(1);
  a->lease->halt_for_testing();
  const auto halted = Clock::now();
  const auto renewed = a->lease->last_renewal_sent();
  ASSERT_TRUE(
      eventually([&] { return b->leadership->my_epoch(1).has_value(); }, milliseconds(6000)));
  // The figure docs/cluster.md's timings are checked against.
  std::printf(
      "hung leader -> new leader (TTL 2 s, standby 300 ms): %lld ms after the hang, "
      "%lld ms after its last keepalive\n",
      static_cast<long long>(
          std::chrono::duration_cast<milliseconds>(Clock::now() - halted).count()),
      static_cast<long long>(
          std::chrono::duration_cast<milliseconds>(Clock::now() - renewed).count()));
  EXPECT_GT(*b->leadership->my_epoch(1), epoch1);

  // Every election of a partition, across both nodes, has a larger epoch.
  for (uint32_t p : {0u, 1u}) {
    std::vector<std::pair<Clock::time_point, int64_t>> elected;
    for (Node* n : {a.get(), b.get()}) {
      for (const auto& e : n->log()) {
        if (e.elected && e.partition == p) elected.emplace_back(e.at, e.epoch);
      }
    }
    std::sort(elected.begin(), elected.end());
    ASSERT_EQ(elected.size(), p == 0 ? 4u : 2u) << "partition " << p;
    for (size_t i = 1; i < elected.size(); ++i)
      EXPECT_GT(elected[i].second, elected[i - 1].second) << "partition " << p << " #" << i;
  }
}

TEST_F(MembershipTest, FencedSegmentWritesOfADeposedLeader) {
  auto a = start_node("a", etcd_->endpoints(), layout_, {0, 1}, {0, 1}, milliseconds(1000),
                      milliseconds(200));
  ASSERT_TRUE(a);
  ASSERT_TRUE(eventually([&] { return a->led() == 2; }, milliseconds(3000)));
  auto b = start_node("b", etcd_->endpoints(), layout_, {0, 1}, {}, milliseconds(1000),
                      milliseconds(200));
  ASSERT_TRUE(b);
  const int64_t e1 = *a->leadership->my_epoch(0);
  const int64_t e1_p1 = *a->leadership->my_epoch(1);
  const SegmentRecord first{e1, "a", {"a", "b"}, 1, std::nullopt};
  ASSERT_TRUE(open_segment(*a->client, layout_, 0, first).is_ok());
  ASSERT_TRUE(open_segment(*a->client, layout_, 0, first).is_ok());  // a retry: same record
  SegmentRecord other = first;
  other.replicas = {"a"};
  EXPECT_TRUE(open_segment(*a->client, layout_, 0, other).is(ClusterErrc::kSegmentConflict));

  ASSERT_TRUE(a->leadership->resign(0).is_ok());
  ASSERT_TRUE(a->leadership->resign(1).is_ok());
  ASSERT_TRUE(eventually(
      [&] { return b->leadership->my_epoch(0).has_value() && b->leadership->my_epoch(1); },
      milliseconds(3000)));
  const int64_t e2 = *b->leadership->my_epoch(0);
  ASSERT_GT(e2, e1);

  // Partition 1: a was deposed before it opened its segment.
  Status s1 = open_segment(*a->client, layout_, 1, {e1_p1, "a", {"a"}, 1, std::nullopt});
  EXPECT_TRUE(s1.is(ClusterErrc::kFenced)) << s1.to_string();
  const int64_t e2_p1 = *b->leadership->my_epoch(1);
  EXPECT_TRUE(open_segment(*b->client, layout_, 1, {e2_p1, "b", {"b"}, 1, std::nullopt}).is_ok());

  // The deposed leader: every write refused with leader_fenced.
  Status s = seal_segment(*a->client, layout_, 0, e1, 7, e1);
  EXPECT_TRUE(s.is(ClusterErrc::kFenced)) << s.to_string();
  s = open_segment(*a->client, layout_, 0, first);
  EXPECT_TRUE(s.is(ClusterErrc::kFenced)) << s.to_string();
  // The new one: cannot open on top of an open segment, seals it, opens its own.
  const SegmentRecord second{e2, "b", {"b", "a"}, 8, std::nullopt};
  s = open_segment(*b->client, layout_, 0, second);
  EXPECT_TRUE(s.is(ClusterErrc::kSegmentConflict)) << s.to_string();
  ASSERT_TRUE(seal_segment(*b->client, layout_, 0, e1, 7, e2).is_ok());
  SegmentRecord gap = second;
  gap.first_lsn = 9;
  EXPECT_TRUE(open_segment(*b->client, layout_, 0, gap).is(Errc::kInvalidArgument));
  ASSERT_TRUE(open_segment(*b->client, layout_, 0, second).is_ok());
  // Still fenced once the chain moved on (the old epoch's seal of the new
  // segment, and a new segment of the old epoch).
  EXPECT_TRUE(seal_segment(*a->client, layout_, 0, e2, 9, e1).is(ClusterErrc::kFenced));

  auto chain = segments(*client_, layout_, 0);
  ASSERT_TRUE(chain.ok()) << chain.status().to_string();
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_EQ((*chain)[0].record.epoch, e1);
  EXPECT_EQ((*chain)[0].record.sealed_end, std::optional<uint64_t>(7));
  EXPECT_EQ((*chain)[1].record, second);
}

// Trimming the chain: only sealed records at or below the point, oldest
// first, never the newest; fenced by the leader key; a record changed since
// it was read is a conflict.
TEST_F(MembershipTest, TrimmingTheChainIsFencedAndKeepsTheNewestRecord) {
  auto a =
      start_node("a", etcd_->endpoints(), layout_, {0}, {0}, milliseconds(1000), milliseconds(200));
  ASSERT_TRUE(a);
  ASSERT_TRUE(eventually([&] { return a->led() == 1; }, milliseconds(3000)));
  const int64_t e1 = *a->leadership->my_epoch(0);
  ASSERT_TRUE(open_segment(*a->client, layout_, 0, {e1, "a", {"a"}, 1, std::nullopt}).is_ok());
  ASSERT_TRUE(seal_segment(*a->client, layout_, 0, e1, 7, e1).is_ok());
  // Another epoch of the same leader (re-elected) on top.
  ASSERT_TRUE(a->leadership->resign(0).is_ok());
  ASSERT_TRUE(eventually([&] { return a->leadership->my_epoch(0).value_or(e1) != e1; },
                         milliseconds(3000)));
  const int64_t e2 = *a->leadership->my_epoch(0);
  ASSERT_TRUE(open_segment(*a->client, layout_, 0, {e2, "a", {"a"}, 8, std::nullopt}).is_ok());
  ASSERT_TRUE(seal_segment(*a->client, layout_, 0, e2, 12, e2).is_ok());

  auto chain = segments(*client_, layout_, 0);
  ASSERT_TRUE(chain.ok() && chain->size() == 2);
  // Below the first sealed end: nothing; the newest record is never dropped.
  EXPECT_TRUE(trimmable(*chain, 6).empty());
  EXPECT_EQ(trimmable(*chain, 100).size(), 1u);
  // A stale epoch is fenced and drops nothing.
  auto fenced = trim_chain(*a->client, layout_, 0, *chain, 7, e1);
  EXPECT_TRUE(fenced.status().is(ClusterErrc::kFenced)) << fenced.status().to_string();
  // A record changed since the chain was read: a conflict.
  std::vector<SegmentEntry> stale = *chain;
  stale[0].mod_revision -= 1;
  auto conflict = trim_chain(*a->client, layout_, 0, stale, 7, e2);
  EXPECT_TRUE(conflict.status().is(ClusterErrc::kSegmentConflict)) << conflict.status().to_string();
  ASSERT_EQ(segments(*client_, layout_, 0)->size(), 2u);
  // The leader drops the first record; the chain now starts at 8.
  auto dropped = trim_chain(*a->client, layout_, 0, *chain, 100, e2);
  ASSERT_TRUE(dropped.ok()) << dropped.status().to_string();
  ASSERT_EQ(dropped->size(), 1u);
  EXPECT_EQ((*dropped)[0].record.epoch, e1);
  auto after = segments(*client_, layout_, 0);
  ASSERT_TRUE(after.ok() && after->size() == 1);
  EXPECT_EQ((*after)[0].record.first_lsn, 8u);
  // The next segment still opens on top of the kept one.
  ASSERT_TRUE(a->leadership->resign(0).is_ok());
  ASSERT_TRUE(eventually([&] { return a->leadership->my_epoch(0).value_or(e2) != e2; },
                         milliseconds(3000)));
  const int64_t e3 = *a->leadership->my_epoch(0);
  EXPECT_TRUE(open_segment(*a->client, layout_, 0, {e3, "a", {"a"}, 13, std::nullopt}).is_ok());
}

TEST_F(MembershipTest, RacingSealsExactlyOneWins) {
  constexpr uint32_t kRounds = 20;
  auto a =
      start_node("a", etcd_->endpoints(), layout_, range_set(0, kRounds), range_set(0, kRounds));
  ASSERT_TRUE(a);
  ASSERT_TRUE(eventually([&] { return a->led() == kRounds; }, milliseconds(5000)));
  auto client2 = make_client(etcd_->endpoints());
  for (uint32_t p = 0; p < kRounds; ++p) {
    const int64_t epoch = *a->leadership->my_epoch(p);
    ASSERT_TRUE(open_segment(*a->client, layout_, p, {epoch, "a", {"a"}, 1, std::nullopt}).is_ok());
    std::barrier sync(2);
    Status results[2];
    std::thread racers[2];
    EtcdClient* clients[2] = {a->client.get(), client2.get()};
    for (int i = 0; i < 2; ++i) {
      racers[i] = std::thread([&, i] {
        sync.arrive_and_wait();
        results[i] = seal_segment(*clients[i], layout_, p, epoch, 10 + i, epoch);
      });
    }
    for (auto& t : racers) t.join();
    const int wins = int(results[0].is_ok()) + int(results[1].is_ok());
    ASSERT_EQ(wins, 1) << "round " << p << ": " << results[0].to_string() << " / "
                       << results[1].to_string();
    const int loser = results[0].is_ok() ? 1 : 0;
    EXPECT_TRUE(results[loser].is(ClusterErrc::kSegmentConflict)) << results[loser].to_string();
    auto chain = segments(*client_, layout_, p);
    ASSERT_TRUE(chain.ok() && chain->size() == 1);
    EXPECT_EQ((*chain)[0].record.sealed_end, std::optional<uint64_t>(10 + (1 - loser)));
  }
}

// --- a 3-member cluster: a watch that resumes past a compaction ---------------------

TEST(CompactionTest, AMirrorWhoseWatchMissedCompactedEventsListsAgain) {
  EtcdCluster etcd(3);
  std::string error;
  ASSERT_TRUE(etcd.start(&error)) << error;
  Layout layout("/yantra");
  // a's client prefers member 0, where its watch therefore runs; b's and
  // c's never use member 0.
  auto client_a = make_client(etcd.endpoints(), milliseconds(300));
  auto client_bc = make_client({etcd.endpoint(1), etcd.endpoint(2)});
  NodeLeaseOptions lo;
  lo.ttl = std::chrono::seconds(3);
  auto lease_a = NodeLease::start(*client_a, lo);
  auto lease_b = NodeLease::start(*client_bc, lo);
  auto lease_c = NodeLease::start(*client_bc, lo);
  ASSERT_TRUE(lease_a.ok() && lease_b.ok() && lease_c.ok());
  LiveLog log_a;
  auto a = Membership::start(*client_a, layout, **lease_a, node_record("a"), log_a.callback());
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  auto b = Membership::start(*client_bc, layout, **lease_b, node_record("b"));
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  ASSERT_TRUE(eventually(
      [&] {
        return log_a.get() == std::set<std::string>{"a", "b"};
      },
      milliseconds(5000)));
  ASSERT_EQ((*a)->listings(), 1);

  // Member 0 hangs: a's watch hears nothing while b leaves, c joins and the
  // history is compacted. Then member 0 dies: the watch resumes on another
  // member from a compacted revision and the mirror must list again.
  ASSERT_TRUE(etcd.pause(0));
  b->reset();
  lease_b->reset();
  auto c = Membership::start(*client_bc, layout, **lease_c, node_record("c"));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  ASSERT_TRUE(eventually(
      [&] {
        auto r = client_bc->range(RangeRequest::single(layout.meta()));
        return r.ok() && client_bc->compact(r->header.revision).is_ok();
      },
      milliseconds(5000)));
  EXPECT_EQ(log_a.get(), (std::set<std::string>{"a", "b"}));  // nothing heard yet
  ASSERT_TRUE(etcd.kill9(0));
  ASSERT_TRUE(eventually(
      [&] {
        return log_a.get() == std::set<std::string>{"a", "c"};
      },
      milliseconds(8000)))
      << "live set stayed stale after the compaction";
  EXPECT_EQ((*a)->listings(), 2);
}

// --- a member of its own: paused past the lease TTL ---------------------------------

TEST(LeaseLossTest, OnLostFiresBeforeEtcdCanExpireTheKey) {
  EtcdCluster etcd(1);
  std::string error;
  ASSERT_TRUE(etcd.start(&error)) << error;
  Layout layout("/yantra");
  // a's etcd requests may block 1.5 s: a keepalive sent into the paused etcd
  // returns only after the lease (2 s TTL) could have expired, so only the
  // watchdog can report the loss in time.
  auto a = start_node("a", etcd.endpoints(), layout, {0}, {}, milliseconds(1500));
  ASSERT_TRUE(a);
  ASSERT_TRUE(eventually([&] { return a->led() == 1; }, milliseconds(3000)));
  const int64_t epoch_a = *a->leadership->my_epoch(0);
  auto b = start_node("b", etcd.endpoints(), layout, {0}, {0});
  ASSERT_TRUE(b);
  Clock::time_point deleted_seen{};
  std::mutex mu;
  auto watcher = make_client(etcd.endpoints());
  WatchOptions wo;
  wo.key = layout.leader(0);
  auto watch = watcher->watch(wo, [&](const WatchUpdate& u) {
    for (const auto& e : u.events) {
      std::lock_guard lock(mu);
      if (e.type == WatchEvent::Type::kDelete && deleted_seen == Clock::time_point{})
        deleted_seen = Clock::now();
    }
  });
  ASSERT_TRUE(watch->wait_connected(milliseconds(3000)));

  ASSERT_TRUE(etcd.pause(0));
  const auto paused = Clock::now();
  ASSERT_TRUE(eventually(
      [&] {
        for (const auto& e : a->log())
          if (!e.elected) return true;
        return false;
      },
      milliseconds(4000)));
  const auto renewed = a->lease->last_renewal_sent();
  const auto ttl = a->lease->granted_ttl();
  Clock::time_point lost_at{};
  for (const auto& e : a->log()) {
    if (!e.elected) {
      EXPECT_EQ(e.partition, 0u);
      EXPECT_EQ(e.epoch, epoch_a);
      lost_at = e.at;
    }
  }
  EXPECT_FALSE(a->leadership->my_epoch(0));
  EXPECT_FALSE(a->lease->valid());
  // etcd received the last keepalive after `renewed`: the key cannot expire
  // before renewed + TTL. The loss was reported before that.
  const auto ms = [&](Clock::time_point t) {
    return std::chrono::duration_cast<milliseconds>(t - paused).count();
  };
  EXPECT_LT(lost_at, renewed + ttl)
      << "on_lost at " << ms(lost_at) << " ms after the pause; etcd could expire the key from "
      << ms(renewed + ttl) << " ms";
  EXPECT_GT(lost_at, paused);
  std::this_thread::sleep_for(ttl + milliseconds(500) - (Clock::now() - paused));
  const auto resumed = Clock::now();
  ASSERT_TRUE(etcd.resume(0));
  EXPECT_LT(lost_at, resumed);

  ASSERT_TRUE(
      eventually([&] { return b->leadership->my_epoch(0).has_value(); }, milliseconds(6000)));
  EXPECT_GT(*b->leadership->my_epoch(0), epoch_a);
  {
    std::lock_guard lock(mu);
    ASSERT_NE(deleted_seen, Clock::time_point{});
    EXPECT_LT(lost_at, deleted_seen) << ms(lost_at) << " vs " << ms(deleted_seen);
  }
  // a came back with a fresh lease and did not take the partition back
  // (b is preferred and leads it).
  ASSERT_TRUE(eventually([&] { return a->lease->valid(); }, milliseconds(3000)));
  EXPECT_EQ(a->led(), 0u);
  EXPECT_GE(a->lease->grants(), 2);
}

}  // namespace
}  // namespace yantra::cluster
