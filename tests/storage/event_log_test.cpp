// EventLog against a real RocksDB: reads honour their seq bounds, the
// length-prefixed id keeps executions whose ids are prefixes of each other
// ("ab", "abc") and partitions apart, ids are opaque bytes, the key layout
// is the documented one, snapshots are found at or below a seq, retention
// expires only executions that stayed ended, and a damaged event surfaces as
// "storage_corrupt" naming its seq.
#include "storage/event_log.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "storage/internal/keys.hpp"
#include "storage/internal/scan.hpp"
#include "tests/storage/test_support.hpp"

namespace yantra::storage {
namespace {

using testing::commit;
using testing::make_request;
using testing::make_summary;
using testing::open_store;
using testing::range;
using testing::raw;
using testing::ScopedDir;
using testing::seqs_of;

TEST(EventLogTest, ReadEventsHonoursSeqBounds) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(commit(*store, make_request(0, "e", 1, 10)));

  auto all = store->events().read(0, "e");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(seqs_of(*all), range(1, 10));
  for (const auto& event : *all) EXPECT_EQ(event.time_ms(), 1700000000000 + event.seq());

  EXPECT_EQ(seqs_of(*store->events().read(0, "e", 3, 5)), range(3, 5));
  EXPECT_EQ(seqs_of(*store->events().read(0, "e", 7)), range(7, 10));
  EXPECT_EQ(seqs_of(*store->events().read(0, "e", 1, 1)), range(1, 1));
  EXPECT_EQ(seqs_of(*store->events().read(0, "e", 10, UINT64_MAX)), range(10, 10));
  EXPECT_EQ(seqs_of(*store->events().read(0, "e", 0, 2)), range(1, 2));
  EXPECT_TRUE(store->events().read(0, "e", 11)->empty());
  EXPECT_TRUE(store->events().read(0, "e", 5, 4)->empty());
  EXPECT_TRUE(store->events().read(0, "missing")->empty());
}

TEST(EventLogTest, ExecutionsWhoseIdsArePrefixesDoNotMix) {
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
    auto events = store->events().read(1, id);
    ASSERT_TRUE(events.ok()) << events.status().to_string();
    EXPECT_EQ(seqs_of(*events), range(1, n)) << id;
    for (const auto& e : *events) EXPECT_EQ(e.step_started().path(), id);
  };
  check("a", 2);
  check("ab", 3);
  check("abc", 5);
  check(std::string(255, 'a'), 1);
  EXPECT_TRUE(store->events().read(1, "abcd")->empty());
}

TEST(EventLogTest, PartitionsDoNotMix) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  // 1 and 256 differ only in the high byte of the be16 partition.
  ASSERT_TRUE(commit(*store, make_request(1, "x", 1, 2)));
  ASSERT_TRUE(commit(*store, make_request(256, "x", 1, 3)));
  ASSERT_TRUE(commit(*store, make_request(65535, "x", 1, 4)));
  EXPECT_EQ(seqs_of(*store->events().read(1, "x")), range(1, 2));
  EXPECT_EQ(seqs_of(*store->events().read(256, "x")), range(1, 3));
  EXPECT_EQ(seqs_of(*store->events().read(65535, "x")), range(1, 4));
  EXPECT_TRUE(store->events().read(0, "x")->empty());
  EXPECT_TRUE(store->events().read(2, "x")->empty());
}

TEST(EventLogTest, ExecutionIdsAreOpaqueBytesUpTo255) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  const std::string binary("a\0\xff\x01z", 5);
  // The payload names a UTF-8 path: proto3 refuses to parse invalid UTF-8 in
  // string fields, which is the caller's concern, not the key layout's.
  auto request = make_request(7, "bin", 1, 2);
  request.execution_id = binary;
  ASSERT_TRUE(commit(*store, std::move(request)));
  EXPECT_EQ(seqs_of(*store->events().read(7, binary)), range(1, 2));
  EXPECT_TRUE(store->events().read(7, "a")->empty());

  EXPECT_EQ(store->events().read(7, std::string(256, 'a')).status().code(), "invalid_argument");
  EXPECT_EQ(store->events().read(7, "").status().code(), "invalid_argument");
  EXPECT_EQ(store->events().read(65536, "x").status().code(), "invalid_argument");
  EXPECT_EQ(store->executions().active(65536).status().code(), "invalid_argument");
  EXPECT_EQ(store->executions().summary("").status().code(), "invalid_argument");
}

// Pins the documented on-disk layout of event keys (store.hpp, keys.hpp).
TEST(EventLogTest, EventKeyLayoutIsPartitionLengthIdSeq) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(commit(*store, make_request(0x0102, "id", 0x0A0B, 1)));
  std::vector<std::string> keys_seen;
  const internal::Db& db = raw(*store);
  ASSERT_TRUE(internal::scan(db, db.events, {"", ""},
                             [&](const rocksdb::Slice& key, const rocksdb::Slice&) {
                               keys_seen.push_back(key.ToString());
                             },
                             {.mode = internal::SeekMode::kTotalOrder})
                  .is_ok());
  const std::string expected("\x01\x02\x02id\0\0\0\0\0\0\x0A\x0B", 13);
  EXPECT_EQ(keys_seen, std::vector<std::string>{expected});
}

v1::Snapshot snapshot_at(uint64_t seq) {
  v1::Snapshot snap;
  snap.set_seq(seq);
  snap.set_format(1);
  snap.set_state_json("{\"at\":" + std::to_string(seq) + "}");
  return snap;
}

void write_snapshot(Store& store, uint32_t partition, const std::string& id, uint64_t seq) {
  auto request = make_request(partition, id, seq, 1);
  request.snapshot = std::make_pair(seq, snapshot_at(seq).SerializeAsString());
  ASSERT_TRUE(commit(store, std::move(request)));
}

// The newest snapshot at or below a seq, never one of a neighbouring
// execution ("ab" vs "abc", or the same id in the next partition), even
// when that neighbour's snapshot is the nearer key.
TEST(EventLogTest, LatestSnapshotIsTheNewestAtOrBelowMaxSeqOfThatExecution) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  const EventLog& log = store->events();
  EXPECT_FALSE(log.latest_snapshot(1, "ab", UINT64_MAX)->has_value());
  write_snapshot(*store, 1, "ab", 10);
  write_snapshot(*store, 1, "ab", 20);
  write_snapshot(*store, 1, "abc", 15);
  write_snapshot(*store, 2, "ab", 5);
  write_snapshot(*store, 1, "a", 30);

  auto seq_of = [&](uint32_t partition, const std::string& id, uint64_t max_seq) -> int64_t {
    auto snap = log.latest_snapshot(partition, id, max_seq);
    EXPECT_TRUE(snap.ok()) << snap.status().to_string();
    if (!snap.ok() || !snap->has_value()) return -1;
    EXPECT_EQ((*snap)->state_json(), snapshot_at((*snap)->seq()).state_json());
    return static_cast<int64_t>((*snap)->seq());
  };
  EXPECT_EQ(seq_of(1, "ab", UINT64_MAX), 20);
  EXPECT_EQ(seq_of(1, "ab", 20), 20);
  EXPECT_EQ(seq_of(1, "ab", 19), 10);
  EXPECT_EQ(seq_of(1, "ab", 10), 10);
  EXPECT_EQ(seq_of(1, "ab", 9), -1);
  EXPECT_EQ(seq_of(1, "abc", UINT64_MAX), 15);
  EXPECT_EQ(seq_of(1, "abc", 14), -1);
  EXPECT_EQ(seq_of(2, "ab", UINT64_MAX), 5);
  EXPECT_EQ(seq_of(1, "a", 29), -1);
  EXPECT_EQ(seq_of(1, "b", UINT64_MAX), -1);
  EXPECT_EQ(log.latest_snapshot(65536, "ab", 1).status().code(), "invalid_argument");

  std::string key;
  keys::event_key(key, 1, "ab", 25);
  ASSERT_TRUE(
      raw(*store).rocks->Put(rocksdb::WriteOptions(), raw(*store).snapshots, key, "\xff").ok());
  EXPECT_EQ(log.latest_snapshot(1, "ab", UINT64_MAX).status().code(), "storage_corrupt");
  EXPECT_EQ(seq_of(1, "ab", 24), 20);
}

// Retention goes by the queue of ended executions ("e" | ended_ms | id). An
// execution that ended and was then retried (Resumed: running again) keeps
// that entry; it must not expire the live history, and once the run ends
// again only its new end counts.
TEST(EventLogTest, RetentionSkipsExecutionsThatRanAgainAfterTheyEnded) {
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

  auto n = store->events().expire_finished(2000, 100);
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  EXPECT_TRUE(store->events().read(2, "done")->empty());
  EXPECT_EQ(seqs_of(*store->events().read(2, "again")), range(1, 2));
  EXPECT_EQ(seqs_of(*store->events().read(2, "twice")), range(1, 3));
  EXPECT_EQ((*store->executions().summary("done"))->status(), "completed");

  // The stale entries are gone: the running one is never expired, the one
  // that failed again expires by its second end.
  ASSERT_TRUE(store->events().expire_finished(4000, 100).ok());
  EXPECT_EQ(seqs_of(*store->events().read(2, "twice")), range(1, 3));
  ASSERT_TRUE(store->events().expire_finished(6000, 100).ok());
  EXPECT_TRUE(store->events().read(2, "twice")->empty());
  EXPECT_EQ(seqs_of(*store->events().read(2, "again")), range(1, 2));
  write("again", "completed", 3, 7000);
  ASSERT_TRUE(store->events().expire_finished(6500, 100).ok());
  EXPECT_EQ(seqs_of(*store->events().read(2, "again")), range(1, 3));
  ASSERT_TRUE(store->events().expire_finished(7001, 100).ok());
  EXPECT_TRUE(store->events().read(2, "again")->empty());
}

TEST(EventLogTest, CorruptEventIsReportedWithItsSeq) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(commit(*store, make_request(2, "e", 1, 6)));
  std::string key;
  keys::event_key(key, 2, "e", 7);
  // 0xFF... is an unterminated varint tag: no Event parses from it.
  ASSERT_TRUE(raw(*store)
                  .rocks->Put(rocksdb::WriteOptions(), raw(*store).events, key, "\xff\xff\xff\xff")
                  .ok());
  auto events = store->events().read(2, "e");
  ASSERT_FALSE(events.ok());
  EXPECT_EQ(events.status().code(), "storage_corrupt");
  EXPECT_NE(events.status().message().find("/7"), std::string::npos) << events.status().message();
  // Ranges that stop before the bad record still read.
  EXPECT_EQ(seqs_of(*store->events().read(2, "e", 1, 6)), range(1, 6));

  std::string summary_key;
  keys::summary_key(summary_key, "e");
  ASSERT_TRUE(
      raw(*store)
          .rocks->Put(rocksdb::WriteOptions(), raw(*store).executions, summary_key, "\xff\xff")
          .ok());
  EXPECT_EQ(store->executions().summary("e").status().code(), "storage_corrupt");
}

}  // namespace
}  // namespace yantra::storage
