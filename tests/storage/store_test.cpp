// Store against a real RocksDB in a fresh directory per test: persistence,
// key-range isolation between executions and partitions (the length-prefixed
// id), the active-execution index, flow versioning under concurrency,
// forward compatibility with unknown column families, and corruption and
// open errors surfacing as Status codes rather than crashes.
#include "storage/store.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <thread>

#include "storage/internal/keys.hpp"
#include "tests/storage/test_support.hpp"

namespace yantra::storage {
namespace {

using testing::commit;
using testing::make_request;
using testing::make_summary;
using testing::open_store;
using testing::ScopedDir;

std::vector<uint64_t> seqs_of(const std::vector<v1::Event>& events) {
  std::vector<uint64_t> out;
  for (const auto& e : events) out.push_back(e.seq());
  return out;
}

std::vector<uint64_t> range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> out;
  for (uint64_t s = from; s <= to; ++s) out.push_back(s);
  return out;
}

TEST(StoreTest, OpenCreatesMissingDirectoriesAndReopenPersists) {
  ScopedDir dir;
  const std::string path = dir.sub("nested/deeper/db");
  {
    auto store = open_store(path);
    ASSERT_TRUE(store);
    EXPECT_NE(store->cf_events(), nullptr);
    EXPECT_NE(store->cf_executions(), nullptr);
    EXPECT_NE(store->cf_flows(), nullptr);
    EXPECT_FALSE(store->read_only());
    auto request = make_request(3, "exec-1", 1, 4);
    request.summary = make_summary("exec-1", "running", 3, 4);
    ASSERT_TRUE(commit(*store, std::move(request)));
    v1::FlowVersion flow;
    flow.set_tenant("acme");
    flow.set_flow_id("onboard");
    flow.set_definition_json("{}");
    ASSERT_TRUE(store->put_flow(flow).ok());
  }
  auto store = open_store(path);
  ASSERT_TRUE(store);
  auto events = store->read_events(3, "exec-1");
  ASSERT_TRUE(events.ok()) << events.status().to_string();
  EXPECT_EQ(seqs_of(*events), range(1, 4));
  EXPECT_EQ(events->at(0).step_started().path(), "exec-1");
  auto summary = store->get_summary("exec-1");
  ASSERT_TRUE(summary.ok());
  ASSERT_TRUE(summary->has_value());
  EXPECT_EQ((*summary)->status(), "running");
  auto active = store->active_executions(3);
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(*active, std::vector<std::string>{"exec-1"});
  auto flow = store->get_flow("acme", "onboard");
  ASSERT_TRUE(flow.ok());
  ASSERT_TRUE(flow->has_value());
  EXPECT_EQ((*flow)->version(), 1u);
}

TEST(StoreTest, ReadEventsHonoursSeqBounds) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(commit(*store, make_request(0, "e", 1, 10)));

  auto all = store->read_events(0, "e");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(seqs_of(*all), range(1, 10));
  for (const auto& event : *all) EXPECT_EQ(event.time_ms(), 1700000000000 + event.seq());

  EXPECT_EQ(seqs_of(*store->read_events(0, "e", 3, 5)), range(3, 5));
  EXPECT_EQ(seqs_of(*store->read_events(0, "e", 7)), range(7, 10));
  EXPECT_EQ(seqs_of(*store->read_events(0, "e", 1, 1)), range(1, 1));
  EXPECT_EQ(seqs_of(*store->read_events(0, "e", 10, UINT64_MAX)), range(10, 10));
  EXPECT_EQ(seqs_of(*store->read_events(0, "e", 0, 2)), range(1, 2));
  EXPECT_TRUE(store->read_events(0, "e", 11)->empty());
  EXPECT_TRUE(store->read_events(0, "e", 5, 4)->empty());
  EXPECT_TRUE(store->read_events(0, "missing")->empty());
}

TEST(StoreTest, ExecutionsWhoseIdsArePrefixesDoNotMix) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(commit(*store, make_request(1, "a", 1, 2)));
  ASSERT_TRUE(commit(*store, make_request(1, "ab", 1, 3)));
  ASSERT_TRUE(commit(*store, make_request(1, "abc", 1, 5)));
  // A long id sorts after "ab" too, and its length byte is above every seq
  // byte pattern of the short one.
  ASSERT_TRUE(commit(*store, make_request(1, std::string(255, 'a'), 1, 1)));

  auto check = [&](const std::string& id, uint64_t n) {
    auto events = store->read_events(1, id);
    ASSERT_TRUE(events.ok()) << events.status().to_string();
    EXPECT_EQ(seqs_of(*events), range(1, n)) << id;
    for (const auto& e : *events) EXPECT_EQ(e.step_started().path(), id);
  };
  check("a", 2);
  check("ab", 3);
  check("abc", 5);
  check(std::string(255, 'a'), 1);
  EXPECT_TRUE(store->read_events(1, "abcd")->empty());
}

TEST(StoreTest, PartitionsDoNotMix) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  // 1 and 256 differ only in the high byte of the be16 partition.
  ASSERT_TRUE(commit(*store, make_request(1, "x", 1, 2)));
  ASSERT_TRUE(commit(*store, make_request(256, "x", 1, 3)));
  ASSERT_TRUE(commit(*store, make_request(65535, "x", 1, 4)));
  EXPECT_EQ(seqs_of(*store->read_events(1, "x")), range(1, 2));
  EXPECT_EQ(seqs_of(*store->read_events(256, "x")), range(1, 3));
  EXPECT_EQ(seqs_of(*store->read_events(65535, "x")), range(1, 4));
  EXPECT_TRUE(store->read_events(0, "x")->empty());
  EXPECT_TRUE(store->read_events(2, "x")->empty());
}

TEST(StoreTest, ExecutionIdsAreOpaqueBytesUpTo255) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  const std::string binary("a\0\xff\x01z", 5);
  // The payload names a UTF-8 path: proto3 refuses to parse invalid UTF-8 in
  // string fields, which is the caller's concern, not the key layout's.
  auto request = make_request(7, "bin", 1, 2);
  request.execution_id = binary;
  ASSERT_TRUE(commit(*store, std::move(request)));
  EXPECT_EQ(seqs_of(*store->read_events(7, binary)), range(1, 2));
  EXPECT_TRUE(store->read_events(7, "a")->empty());

  EXPECT_EQ(store->read_events(7, std::string(256, 'a')).status().code(), "invalid_argument");
  EXPECT_EQ(store->read_events(7, "").status().code(), "invalid_argument");
  EXPECT_EQ(store->read_events(65536, "x").status().code(), "invalid_argument");
  EXPECT_EQ(store->active_executions(65536).status().code(), "invalid_argument");
  EXPECT_EQ(store->get_summary("").status().code(), "invalid_argument");
}

// Pins the documented on-disk layout of event keys (store.hpp, keys.hpp).
TEST(StoreTest, EventKeyLayoutIsPartitionLengthIdSeq) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(commit(*store, make_request(0x0102, "id", 0x0A0B, 1)));
  std::unique_ptr<rocksdb::Iterator> it(
      store->db()->NewIterator(rocksdb::ReadOptions(), store->cf_events()));
  it->SeekToFirst();
  ASSERT_TRUE(it->Valid());
  const std::string expected("\x01\x02\x02id\0\0\0\0\0\0\x0A\x0B", 13);
  EXPECT_EQ(it->key().ToString(), expected);
  it->Next();
  EXPECT_FALSE(it->Valid());
}

TEST(StoreTest, SummaryUpsertMaintainsActiveMarker) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_FALSE(store->get_summary("e1")->has_value());
  EXPECT_TRUE(store->active_executions(4)->empty());

  auto write_summary = [&](const std::string& id, uint32_t partition, const std::string& status,
                           uint64_t seq) {
    auto request = make_request(partition, id, seq, 1);
    request.summary = make_summary(id, status, partition, seq);
    ASSERT_TRUE(commit(*store, std::move(request)));
  };
  write_summary("e1", 4, "running", 1);
  write_summary("e2", 4, "waiting", 1);
  write_summary("e3", 5, "running", 1);  // other partition
  EXPECT_EQ(*store->active_executions(4), (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(*store->active_executions(5), std::vector<std::string>{"e3"});
  EXPECT_TRUE(store->active_executions(6)->empty());

  write_summary("e1", 4, "waiting", 2);  // non-terminal to non-terminal: still active
  EXPECT_EQ(*store->active_executions(4), (std::vector<std::string>{"e1", "e2"}));
  auto summary = store->get_summary("e1");
  ASSERT_TRUE(summary.ok() && summary->has_value());
  EXPECT_EQ((*summary)->status(), "waiting");
  EXPECT_EQ((*summary)->last_seq(), 2u);

  write_summary("e1", 4, "completed", 3);
  EXPECT_EQ(*store->active_executions(4), std::vector<std::string>{"e2"});
  EXPECT_EQ((*store->get_summary("e1"))->status(), "completed");
  write_summary("e2", 4, "timed_out", 2);
  EXPECT_TRUE(store->active_executions(4)->empty());
  EXPECT_EQ(*store->active_executions(5), std::vector<std::string>{"e3"});
  // The log itself is untouched by the index.
  EXPECT_EQ(seqs_of(*store->read_events(4, "e1")), range(1, 3));
}

// Retention goes by the queue of ended executions ("e" | ended_ms | id). An
// execution that ended and was then retried (Resumed: running again) keeps
// that entry; it must not expire the live history, and once the run ends
// again only its new end counts.
TEST(StoreTest, RetentionSkipsExecutionsThatRanAgainAfterTheyEnded) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto write = [&](const std::string& id, const std::string& status, uint64_t seq,
                   int64_t updated_ms) {
    auto request = make_request(2, id, seq, 1);
    request.summary = make_summary(id, status, 2, seq);
    request.summary->set_updated_ms(updated_ms);
    ASSERT_TRUE(commit(*store, std::move(request)));
  };
  write("done", "completed", 1, 1000);
  write("again", "failed", 1, 1000);
  write("again", "running", 2, 1100);  // retried
  write("twice", "failed", 1, 1000);
  write("twice", "running", 2, 1100);  // retried, and failed again later
  write("twice", "failed", 3, 5000);

  auto n = store->expire_finished(2000, 100);
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  EXPECT_TRUE(store->read_events(2, "done")->empty());
  EXPECT_EQ(seqs_of(*store->read_events(2, "again")), range(1, 2));
  EXPECT_EQ(seqs_of(*store->read_events(2, "twice")), range(1, 3));
  EXPECT_EQ((*store->get_summary("done"))->status(), "completed");

  // The stale entries are gone: the running one is never expired, the one
  // that failed again expires by its second end.
  ASSERT_TRUE(store->expire_finished(4000, 100).ok());
  EXPECT_EQ(seqs_of(*store->read_events(2, "twice")), range(1, 3));
  ASSERT_TRUE(store->expire_finished(6000, 100).ok());
  EXPECT_TRUE(store->read_events(2, "twice")->empty());
  EXPECT_EQ(seqs_of(*store->read_events(2, "again")), range(1, 2));
  write("again", "completed", 3, 7000);
  ASSERT_TRUE(store->expire_finished(6500, 100).ok());
  EXPECT_EQ(seqs_of(*store->read_events(2, "again")), range(1, 3));
  ASSERT_TRUE(store->expire_finished(7001, 100).ok());
  EXPECT_TRUE(store->read_events(2, "again")->empty());
}

TEST(StoreTest, TerminalStatuses) {
  for (const char* s : {"completed", "failed", "cancelled", "timed_out"}) {
    EXPECT_TRUE(is_terminal_status(s)) << s;
  }
  for (const char* s : {"running", "waiting", "", "COMPLETED", "completed "}) {
    EXPECT_FALSE(is_terminal_status(s)) << s;
  }
}

v1::FlowVersion flow(const std::string& tenant, const std::string& id, const std::string& body) {
  v1::FlowVersion f;
  f.set_tenant(tenant);
  f.set_flow_id(id);
  f.set_definition_json(body);
  f.set_version(99);  // ignored by put_flow
  return f;
}

TEST(StoreTest, PutFlowIncrementsVersionsAndGetFlowFindsThem) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_FALSE(store->get_flow("acme", "f")->has_value());
  EXPECT_EQ(*store->put_flow(flow("acme", "f", "v1")), 1u);
  EXPECT_EQ(*store->put_flow(flow("acme", "f", "v2")), 2u);
  EXPECT_EQ(*store->put_flow(flow("acme", "f", "v3")), 3u);
  // Neighbours that share a byte prefix with (acme, f) have their own series.
  EXPECT_EQ(*store->put_flow(flow("acme", "fa", "other")), 1u);
  EXPECT_EQ(*store->put_flow(flow("acmex", "f", "other")), 1u);
  EXPECT_EQ(*store->put_flow(flow("acme", "e", "other")), 1u);

  auto latest = store->get_flow("acme", "f");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->version(), 3u);
  EXPECT_EQ((*latest)->definition_json(), "v3");
  auto second = store->get_flow("acme", "f", 2);
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->version(), 2u);
  EXPECT_EQ((*second)->definition_json(), "v2");
  EXPECT_FALSE(store->get_flow("acme", "f", 4)->has_value());
  EXPECT_FALSE(store->get_flow("acme", "g")->has_value());
  EXPECT_FALSE(store->get_flow("other", "f")->has_value());
  EXPECT_EQ((*store->get_flow("acme", "fa"))->definition_json(), "other");

  EXPECT_EQ(store->put_flow(flow(std::string("ac\0me", 5), "f", "x")).status().code(),
            "invalid_argument");
  EXPECT_EQ(store->put_flow(flow("acme", "", "x")).status().code(), "invalid_argument");
  EXPECT_EQ(store->get_flow("acme", std::string("f\0", 2)).status().code(), "invalid_argument");
}

TEST(StoreTest, ConcurrentPutFlowYieldsDistinctDenseVersions) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  constexpr int kThreads = 4;
  constexpr int kPuts = 25;
  std::vector<std::vector<uint32_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        auto v = store->put_flow(flow("acme", "hot", std::to_string(t)));
        if (v.ok()) got[t].push_back(*v);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint32_t> all;
  for (const auto& g : got) {
    EXPECT_EQ(g.size(), static_cast<size_t>(kPuts));
    EXPECT_TRUE(std::is_sorted(g.begin(), g.end()));
    all.insert(g.begin(), g.end());
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kPuts));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint32_t>(kThreads * kPuts));
  EXPECT_EQ((*store->get_flow("acme", "hot"))->version(), static_cast<uint32_t>(kThreads * kPuts));
}

TEST(StoreTest, ReopensDatabaseWithColumnFamilyFromAFutureVersion) {
  ScopedDir dir;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    ASSERT_TRUE(commit(*store, make_request(0, "e", 1, 2)));
    rocksdb::ColumnFamilyHandle* future = nullptr;
    ASSERT_TRUE(store->db()
                    ->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "snapshots_v9", &future)
                    .ok());
    ASSERT_TRUE(store->db()->Put(rocksdb::WriteOptions(), future, "k", "v").ok());
    ASSERT_TRUE(store->db()->DestroyColumnFamilyHandle(future).ok());
  }
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    EXPECT_EQ(seqs_of(*store->read_events(0, "e")), range(1, 2));
    ASSERT_TRUE(commit(*store, make_request(0, "e", 3, 1)));
  }
  // The unknown family survived both opens with its data.
  std::vector<std::string> families;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.path(), &families).ok());
  EXPECT_NE(std::find(families.begin(), families.end(), "snapshots_v9"), families.end());
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(seqs_of(*store->read_events(0, "e")), range(1, 3));
}

TEST(StoreTest, CorruptEventIsReportedWithItsSeq) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(commit(*store, make_request(2, "e", 1, 6)));
  std::string key;
  keys::event_key(key, 2, "e", 7);
  // 0xFF... is an unterminated varint tag: no Event parses from it.
  ASSERT_TRUE(
      store->db()->Put(rocksdb::WriteOptions(), store->cf_events(), key, "\xff\xff\xff\xff").ok());
  auto events = store->read_events(2, "e");
  ASSERT_FALSE(events.ok());
  EXPECT_EQ(events.status().code(), "storage_corrupt");
  EXPECT_NE(events.status().message().find("/7"), std::string::npos) << events.status().message();
  // Ranges that stop before the bad record still read.
  EXPECT_EQ(seqs_of(*store->read_events(2, "e", 1, 6)), range(1, 6));

  std::string summary_key;
  keys::summary_key(summary_key, "e");
  ASSERT_TRUE(store->db()
                  ->Put(rocksdb::WriteOptions(), store->cf_executions(), summary_key, "\xff\xff")
                  .ok());
  EXPECT_EQ(store->get_summary("e").status().code(), "storage_corrupt");
}

TEST(StoreTest, OpenErrorsAreStorageErrors) {
  ScopedDir dir;
  auto first = open_store(dir.path());
  ASSERT_TRUE(first);
  // RocksDB's LOCK file: a second open of a live DB fails.
  auto second = Store::open({dir.path(), Durability::kSync});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), "storage_error");
  EXPECT_FALSE(second.status().message().empty());

  // A regular file where the directory should be.
  const std::string file = dir.sub("plain-file");
  { std::ofstream(file) << "not a db"; }
  auto third = Store::open({file, Durability::kSync});
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), "storage_error");

  EXPECT_EQ(Store::open({"", Durability::kSync}).status().code(), "invalid_argument");
}

TEST(StoreTest, ReadOnlyStoreRefusesFlowWrites) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->read_only_error().is_ok());
  store->latch_read_only(Status("storage_error", "disk on fire"));
  store->latch_read_only(Status("storage_error", "second cause is not kept"));
  EXPECT_TRUE(store->read_only());
  auto v = store->put_flow(flow("acme", "f", "x"));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), "store_read_only");
  EXPECT_NE(v.status().message().find("disk on fire"), std::string::npos);
  EXPECT_EQ(v.status().message().find("second cause"), std::string::npos);
  // Reads keep working.
  EXPECT_FALSE(store->get_flow("acme", "f")->has_value());
}

}  // namespace
}  // namespace yantra::storage
