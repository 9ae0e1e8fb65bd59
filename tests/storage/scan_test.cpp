// The scan helper (storage/internal/scan.hpp) against a real RocksDB: a
// prefix scan returns exactly the keys with that prefix (never a key of the
// next prefix, whatever bytes follow, and never one of a neighbouring
// execution "ab" vs "abc"), limits and reverse order, a callback's error
// stops the scan, seeks stay inside the range, and an iterator that fails
// (a damaged SST file) surfaces as a Status instead of looking like the end
// of the range, through the helper and through a typed store.
#include "storage/internal/scan.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/metadata.h>

#include <fstream>
#include <string>
#include <vector>

#include "base/storage_errc.hpp"
#include "storage/internal/keys.hpp"
#include "tests/storage/test_support.hpp"

namespace yantra::storage {
namespace {

using internal::BoundedIterator;
using internal::KeyRange;
using internal::ScanOptions;
using internal::SeekMode;
using testing::commit;
using testing::make_flow;
using testing::make_request;
using testing::open_store;
using testing::raw;
using testing::ScopedDir;

// Keys of the flows column family (no prefix extractor), in order.
void put_keys(const Store& store, const std::vector<std::string>& keys) {
  const internal::Db& db = raw(store);
  for (const auto& k : keys) {
    ASSERT_TRUE(db.rocks->Put(rocksdb::WriteOptions(), db.flows, k, "v:" + k).ok());
  }
}

std::vector<std::string> prefix_keys(const Store& store, const std::string& prefix,
                                     const ScanOptions& options = {}) {
  const internal::Db& db = raw(store);
  std::vector<std::string> out;
  Status st = internal::scan_prefix(
      db, db.flows, prefix,
      [&](const rocksdb::Slice& key, const rocksdb::Slice& value) {
        EXPECT_EQ(value.ToString(), "v:" + key.ToString());
        out.push_back(key.ToString());
      },
      options);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return out;
}

std::string bytes(const char* s, size_t n) {
  return std::string(s, n);
}

TEST(ScanTest, PrefixScanReturnsExactlyTheKeysWithThePrefix) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  put_keys(*store, {"a", "ab", bytes("ab\0", 3), "ab\x01x", "ab\xff", "ab\xff\xff", "abc", "abd",
                    "ac", "b", "\xff", "\xff\xff"});
  EXPECT_EQ(prefix_keys(*store, "ab"),
            (std::vector<std::string>{"ab", bytes("ab\0", 3), "ab\x01x", "abc", "abd", "ab\xff",
                                      "ab\xff\xff"}));
  // The successor of a prefix ending in 0xFF drops that byte ("ab\xff" ->
  // "ac"), so the bound stays exact.
  EXPECT_EQ(prefix_keys(*store, "ab\xff"), (std::vector<std::string>{"ab\xff", "ab\xff\xff"}));
  EXPECT_EQ(prefix_keys(*store, "abc"), std::vector<std::string>{"abc"});
  EXPECT_EQ(prefix_keys(*store, bytes("ab\0", 3)), std::vector<std::string>{bytes("ab\0", 3)});
  // All 0xFF: no successor, so no upper bound, and still only those keys.
  EXPECT_EQ(prefix_keys(*store, "\xff"), (std::vector<std::string>{"\xff", "\xff\xff"}));
  EXPECT_EQ(prefix_keys(*store, "").size(), 12u);
  EXPECT_TRUE(prefix_keys(*store, "zz").empty());
  EXPECT_TRUE(prefix_keys(*store, "aa").empty());
}

// Event keys of execution "ab" are a prefix scan of the events column family
// in prefix-seek mode: the events of "abc", of "a", and of "ab" in the next
// partition are never returned, though "abc" sorts right after "ab".
TEST(ScanTest, AnExecutionsScanNeverReturnsANeighbouringExecution) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(commit(*store, make_request(1, "ab", 1, 3)));
  ASSERT_TRUE(commit(*store, make_request(1, "abc", 1, 4)));
  ASSERT_TRUE(commit(*store, make_request(1, "a", 1, 2)));
  ASSERT_TRUE(commit(*store, make_request(2, "ab", 1, 5)));
  const internal::Db& db = raw(*store);
  for (SeekMode mode : {SeekMode::kSamePrefix, SeekMode::kTotalOrder}) {
    for (bool reverse : {false, true}) {
      std::string prefix;
      keys::append_event_prefix(prefix, 1, "ab");
      std::vector<uint64_t> seqs;
      Status st =
          internal::scan_prefix(db, db.events, prefix,
                                [&](const rocksdb::Slice& key, const rocksdb::Slice&) {
                                  ASSERT_EQ(key.size(), prefix.size() + 8);
                                  ASSERT_TRUE(key.starts_with(prefix));
                                  seqs.push_back(keys::get_be64(key.data() + prefix.size()));
                                },
                                {.reverse = reverse, .mode = mode});
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      const std::vector<uint64_t> expected =
          reverse ? std::vector<uint64_t>{3, 2, 1} : std::vector<uint64_t>{1, 2, 3};
      EXPECT_EQ(seqs, expected);
    }
  }
}

TEST(ScanTest, LimitAndReverseOrder) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  put_keys(*store, {"o9", "p0", "p1", "p2", "p3", "p4", "q0"});
  EXPECT_EQ(prefix_keys(*store, "p", {.limit = 2}), (std::vector<std::string>{"p0", "p1"}));
  EXPECT_EQ(prefix_keys(*store, "p", {.reverse = true}),
            (std::vector<std::string>{"p4", "p3", "p2", "p1", "p0"}));
  EXPECT_EQ(prefix_keys(*store, "p", {.limit = 2, .reverse = true}),
            (std::vector<std::string>{"p4", "p3"}));
  EXPECT_EQ(prefix_keys(*store, "p", {.limit = 1, .reverse = true}),
            std::vector<std::string>{"p4"});
  EXPECT_TRUE(prefix_keys(*store, "p", {.limit = 0}).empty());
  EXPECT_EQ(prefix_keys(*store, "p", {.limit = 99}).size(), 5u);

  // An explicit range [p1, p4): both ends hold in both directions.
  const internal::Db& db = raw(*store);
  for (bool reverse : {false, true}) {
    std::vector<std::string> seen;
    ASSERT_TRUE(internal::scan(db, db.flows, KeyRange{"p1", "p4"},
                               [&](const rocksdb::Slice& key, const rocksdb::Slice&) {
                                 seen.push_back(key.ToString());
                               },
                               {.reverse = reverse})
                    .is_ok());
    const std::vector<std::string> expected = reverse ? std::vector<std::string>{"p3", "p2", "p1"}
                                                      : std::vector<std::string>{"p1", "p2", "p3"};
    EXPECT_EQ(seen, expected);
  }
}

TEST(ScanTest, ACallbacksErrorStopsTheScanAndIsReturned) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  put_keys(*store, {"p0", "p1", "p2", "p3"});
  const internal::Db& db = raw(*store);
  int calls = 0;
  Status st = internal::scan_prefix(db, db.flows, "p",
                                    [&](const rocksdb::Slice& key, const rocksdb::Slice&) {
                                      ++calls;
                                      if (key == "p1")
                                        return Status(StorageErrc::kCorrupt, "p1 is bad");
                                      return Status::ok();
                                    });
  EXPECT_EQ(st.code(), "storage_corrupt");
  EXPECT_EQ(st.message(), "p1 is bad");
  EXPECT_EQ(calls, 2);
}

TEST(ScanTest, BoundedIteratorSeeksStayInsideTheRange) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  put_keys(*store, {"a", "p0", "p1", "p2", "q"});
  const internal::Db& db = raw(*store);
  BoundedIterator it(db, db.flows, KeyRange::prefix("p"));
  it.seek("a");  // below the range: lands on its first key
  ASSERT_TRUE(it.valid());
  EXPECT_EQ(it.key().ToString(), "p0");
  EXPECT_EQ(it.key_after(1), "0");
  it.seek("p15");
  ASSERT_TRUE(it.valid());
  EXPECT_EQ(it.key().ToString(), "p2");
  it.next();
  EXPECT_FALSE(it.valid());  // "q" is outside
  it.seek_for_prev("z");
  ASSERT_TRUE(it.valid());
  EXPECT_EQ(it.key().ToString(), "p2");
  it.seek_to_first();
  it.prev();
  EXPECT_FALSE(it.valid());  // "a" is outside
  it.seek_to_last();
  ASSERT_TRUE(it.valid());
  EXPECT_EQ(it.key().ToString(), "p2");
  EXPECT_EQ(it.value().ToString(), "v:p2");
  EXPECT_TRUE(it.status().is_ok());
}

// A checksum failure in an SST file stops a RocksDB iterator exactly like the
// end of its range. The helper must report it, and so must a typed store that
// scans through it, instead of answering "no flows".
TEST(ScanTest, AnIteratorErrorSurfacesAsAStatus) {
  ScopedDir dir;
  std::string sst;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(store->flows()
                      .put(make_flow("acme", "f" + std::to_string(i), std::string(100, 'x')))
                      .ok());
    }
    const internal::Db& db = raw(*store);
    ASSERT_TRUE(db.rocks->Flush(rocksdb::FlushOptions(), db.flows).ok());
    std::vector<rocksdb::LiveFileMetaData> files;
    db.rocks->GetLiveFilesMetaData(&files);
    for (const auto& f : files) {
      if (f.column_family_name == "flows") sst = f.db_path + f.name;
    }
  }
  ASSERT_FALSE(sst.empty());
  {
    // The first data block starts at offset 0; its checksum no longer matches.
    std::fstream file(sst, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(file.is_open()) << sst;
    file.seekp(8);
    file.write("\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a", 8);
    ASSERT_TRUE(file.good());
  }
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  const internal::Db& db = raw(*store);
  for (bool reverse : {false, true}) {
    int calls = 0;
    Status st = internal::scan_prefix(
        db, db.flows, "", [&](const rocksdb::Slice&, const rocksdb::Slice&) { ++calls; },
        {.reverse = reverse});
    EXPECT_EQ(st.code(), "storage_error") << st.to_string();
    EXPECT_NE(st.message().find("Corruption"), std::string::npos) << st.message();
    EXPECT_EQ(calls, 0);
  }
  BoundedIterator it(db, db.flows, KeyRange::prefix("acme"));
  it.seek_to_first();
  EXPECT_FALSE(it.valid());
  EXPECT_EQ(it.status().code(), "storage_error");

  EXPECT_EQ(store->flows().list("acme").status().code(), "storage_error");
  EXPECT_EQ(store->flows().list_all().status().code(), "storage_error");
  EXPECT_EQ(store->flows().versions("acme", "f1").status().code(), "storage_error");
  EXPECT_EQ(store->flows().get("acme", "f1").status().code(), "storage_error");
  EXPECT_EQ(store->flows().put(make_flow("acme", "f1", "y")).status().code(), "storage_error");
}

}  // namespace
}  // namespace yantra::storage
