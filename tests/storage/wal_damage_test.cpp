// Issue 10, "a damaged write-ahead log": the store is written with synced
// (acknowledged) appends and closed, which leaves them in the WAL only
// (RocksDB 7.8 does not flush at close while the WAL is on); then the newest
// WAL is damaged on disk and the store reopened.
// - A torn last record (what a power cut leaves) opens quietly with every
//   acknowledged record.
// - A bad record before the tail, a zeroed record header (which RocksDB's
//   reader skips silently, with the rest of its block), a missing WAL and a
//   WAL cut below what was durable all refuse to open with
//   "storage_corrupt", naming the directory and the damage.
// - accept_data_loss opens them anyway, to a dense prefix of what was
//   written, keeps copies of the WAL files, says what was dropped and
//   counts yantra_storage_recovered_with_data_loss; if that open fails, the
//   damage stays on record.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "base/metrics.hpp"
#include "storage/event_log.hpp"
#include "storage/internal/db.hpp"
#include "storage/log_writer.hpp"
#include "storage/store.hpp"
#include "tests/storage/test_support.hpp"
#include "tests/support/fault_fs.hpp"
#include "tests/support/wal_file.hpp"

namespace yantra::storage {
namespace {

namespace fs = std::filesystem;
using testing::make_request;
using testing::ScopedDir;

constexpr uint32_t kPartition = 5;
constexpr const char* kExecution = "wal";
constexpr int kAcked = 200;

uint64_t losses_counted() {
  return metrics::global().counter("yantra_storage_recovered_with_data_loss", "").value();
}

// Appends kAcked requests of one event each (seq 1..kAcked), each waited
// for, so each is its own synced WAL record; then, if `torn_tail`, one more
// record written without sync (never acknowledged). Closes the store.
void write_acked(const std::string& path, bool torn_tail = false) {
  auto store = testing::open_store(path);
  ASSERT_TRUE(store);
  {
    LogWriter writer(*store, kPartition);
    for (int i = 1; i <= kAcked; ++i) {
      std::promise<Status> done;
      writer.append(make_request(kPartition, kExecution, static_cast<uint64_t>(i), 1, 200),
                    [&done](const Status& s) { done.set_value(s); });
      ASSERT_TRUE(done.get_future().get());
    }
  }
  if (torn_tail) {
    rocksdb::WriteOptions unsynced;
    unsynced.sync = false;
    ASSERT_TRUE(
        internal::db_of(*store)
            .rocks->Put(unsynced, internal::db_of(*store).flows, "unacked", std::string(600, 'u'))
            .ok());
  }
}

using yantra::testing::wal::newest_wal;
using yantra::testing::wal::read_file;
using yantra::testing::wal::Record;
using yantra::testing::wal::records_of;
using yantra::testing::wal::write_file;

// Events of the test execution present after reopening: must be 1..n.
size_t dense_events(Store& store) {
  auto events = store.events().read(kPartition, kExecution);
  EXPECT_TRUE(events.ok()) << events.status().to_string();
  if (!events.ok()) return 0;
  for (size_t i = 0; i < events->size(); ++i) {
    EXPECT_EQ(events->at(i).seq(), i + 1) << "hole at " << i;
  }
  return events->size();
}

Result<std::unique_ptr<Store>> reopen(const std::string& path, bool accept_data_loss = false) {
  StoreOptions options{path};
  options.accept_data_loss = accept_data_loss;
  return Store::open(options);
}

void expect_refused(const Result<std::unique_ptr<Store>>& opened, const std::string& path,
                    const std::string& damage) {
  ASSERT_FALSE(opened.ok()) << "a damaged store opened";
  const Status& s = opened.status();
  EXPECT_EQ(s.code(), "storage_corrupt") << s.to_string();
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(damage), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("accept_data_loss"), std::string::npos) << s.message();
}

// Opens with accept_data_loss and checks what every such open must do.
std::unique_ptr<Store> accept_loss(const std::string& path, const std::string& damage) {
  const uint64_t counted = losses_counted();
  auto opened = reopen(path, /*accept_data_loss=*/true);
  EXPECT_TRUE(opened.ok()) << opened.status().to_string();
  if (!opened.ok()) return nullptr;
  auto store = std::move(opened).value();
  EXPECT_EQ(losses_counted(), counted + 1);
  std::string report;
  for (const auto& line : store->data_loss()) report += line + "\n";
  EXPECT_NE(report.find(damage), std::string::npos) << report;
  EXPECT_NE(report.find("lost+found"), std::string::npos) << report;
  EXPECT_TRUE(fs::exists(fs::path(path) / "lost+found")) << report;
  return store;
}

TEST(WalDamageTest, TornLastRecordRecoversQuietlyWithEveryAcknowledgedRecord) {
  ScopedDir dir;
  write_acked(dir.path(), /*torn_tail=*/true);
  const std::string wal = newest_wal(dir.path());
  const auto records = records_of(read_file(wal));
  ASSERT_GE(records.size(), static_cast<size_t>(kAcked));
  const Record& last = records.back();
  fs::resize_file(wal, last.offset + 7 + last.length / 2);

  const uint64_t counted = losses_counted();
  auto opened = reopen(dir.path());
  ASSERT_TRUE(opened.ok()) << opened.status().to_string();
  auto store = std::move(opened).value();
  EXPECT_EQ(dense_events(*store), static_cast<size_t>(kAcked));
  std::string value;
  EXPECT_TRUE(
      internal::db_of(*store)
          .rocks->Get(rocksdb::ReadOptions(), internal::db_of(*store).flows, "unacked", &value)
          .IsNotFound());
  EXPECT_TRUE(store->data_loss().empty());
  EXPECT_EQ(losses_counted(), counted);
  EXPECT_FALSE(fs::exists(fs::path(dir.path()) / "lost+found"));
}

TEST(WalDamageTest, CorruptRecordBeforeTheTailRefusesToOpen) {
  ScopedDir dir;
  write_acked(dir.path());
  const std::string wal = newest_wal(dir.path());
  std::string data = read_file(wal);
  const auto records = records_of(data);
  const Record& victim = records[records.size() / 3];
  data[victim.offset + 7 + victim.length / 2] ^= 0x5a;
  write_file(wal, data);

  expect_refused(reopen(dir.path()), dir.path(), "checksum mismatch");
  // Refusing changed nothing: it refuses again, and the WAL is as it was.
  expect_refused(reopen(dir.path()), dir.path(), "checksum mismatch");
  EXPECT_EQ(read_file(wal), data);

  {
    auto store = accept_loss(dir.path(), "checksum mismatch");
    ASSERT_TRUE(store);
    const size_t kept = dense_events(*store);
    EXPECT_GT(kept, 0u);
    EXPECT_LT(kept, static_cast<size_t>(kAcked));
    // The WAL as found was kept for the operator.
    bool copied = false;
    for (const auto& entry :
         fs::recursive_directory_iterator(fs::path(dir.path()) / "lost+found")) {
      if (entry.path().filename() == fs::path(wal).filename()) {
        copied = read_file(entry.path().string()) == data;
      }
    }
    EXPECT_TRUE(copied);
  }
  // Recovered and flushed: the next ordinary open is clean.
  auto again = reopen(dir.path());
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_TRUE(again.value()->data_loss().empty());
  EXPECT_GT(dense_events(*again.value()), 0u);
}

// RocksDB's log reader treats a record header of zeros as preallocated
// space and skips the rest of its 32 KiB block without a word, in every
// recovery mode (measured): the records there vanish and replay goes on
// with the next block. The sequence check turns that hole into a refusal.
TEST(WalDamageTest, ZeroedRecordHeaderIsAHoleNotATail) {
  ScopedDir dir;
  {
    auto store = testing::open_store(dir.path());
    ASSERT_TRUE(store);
    rocksdb::WriteOptions synced;
    synced.sync = true;
    // 512-byte WAL records (7 header + 24 batch + 481 value): each block
    // holds 64 whole records, so every block starts with a whole record.
    for (int i = 0; i < 300; ++i) {
      char key[16];
      std::snprintf(key, sizeof key, "k%06d", i);
      ASSERT_TRUE(internal::db_of(*store)
                      .rocks->Put(synced, internal::db_of(*store).flows, key, std::string(481, 'v'))
                      .ok());
    }
  }
  const std::string wal = newest_wal(dir.path());
  std::string data = read_file(wal);
  const auto records = records_of(data);
  // A whole record inside the first block, past its start.
  auto victim = std::find_if(records.begin(), records.end(), [](const Record& r) {
    return r.type == 1 && r.offset > 4096 && r.offset + 7 + r.length < 32768;
  });
  ASSERT_NE(victim, records.end());
  auto next_block = std::find_if(records.begin(), records.end(),
                                 [](const Record& r) { return r.offset == 32768; });
  ASSERT_NE(next_block, records.end()) << "record sizes no longer align with blocks";
  ASSERT_EQ(next_block->type, 1);
  std::fill(data.begin() + static_cast<std::ptrdiff_t>(victim->offset),
            data.begin() + static_cast<std::ptrdiff_t>(victim->offset + 7), '\0');
  write_file(wal, data);

  expect_refused(reopen(dir.path()), dir.path(), "lacks the records of sequence numbers");
  auto store = accept_loss(dir.path(), "lacks the records of sequence numbers");
  ASSERT_TRUE(store);
  // Point-in-time: the records before the hole, none after it.
  int present = 0;
  bool after_hole = false;
  for (int i = 0; i < 300; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "k%06d", i);
    std::string value;
    const bool found =
        internal::db_of(*store)
            .rocks->Get(rocksdb::ReadOptions(), internal::db_of(*store).flows, key, &value)
            .ok();
    if (found) {
      ++present;
      EXPECT_FALSE(after_hole) << key << " is present after the hole";
    } else {
      after_hole = true;
    }
  }
  EXPECT_GT(present, 0);
  EXPECT_LT(present, 300);
}

TEST(WalDamageTest, DeletedWalRefusesToOpen) {
  ScopedDir dir;
  write_acked(dir.path());
  const std::string wal = newest_wal(dir.path());
  ASSERT_GT(fs::file_size(wal), 0u);
  fs::remove(wal);

  expect_refused(reopen(dir.path()), dir.path(), "is missing");
  auto store = accept_loss(dir.path(), "is missing");
  ASSERT_TRUE(store);
  EXPECT_EQ(dense_events(*store), 0u);
}

// A WAL cut at a record boundary looks exactly like a clean end to RocksDB
// (measured: every recovery mode opens with the records after the cut
// gone). The WAL guard knows how much of it was durable.
TEST(WalDamageTest, WalCutBelowItsDurableSizeRefusesToOpen) {
  ScopedDir dir;
  write_acked(dir.path());
  const std::string wal = newest_wal(dir.path());
  const auto records = records_of(read_file(wal));
  fs::resize_file(wal, records[records.size() / 2].offset);

  expect_refused(reopen(dir.path()), dir.path(), "was cut");
  auto store = accept_loss(dir.path(), "was cut");
  ASSERT_TRUE(store);
  const size_t kept = dense_events(*store);
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, static_cast<size_t>(kAcked));
}

// An open that accepts the loss but then fails (here: the disk refuses the
// rename of CURRENT) must leave the damage on record: the next ordinary open
// still refuses instead of finding an adopted, "clean" WAL list.
TEST(WalDamageTest, AFailedAcceptingOpenKeepsTheDamageOnRecord) {
  ScopedDir dir;
  write_acked(dir.path());
  fs::remove(newest_wal(dir.path()));
  auto faults = std::make_shared<yantra::testing::FaultFs>();
  faults->fail(yantra::testing::FaultFs::Op::kRename, {"CURRENT"});
  StoreOptions options{dir.path()};
  options.accept_data_loss = true;
  options.file_system = faults;
  auto failed = Store::open(options);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), "storage_error") << failed.status().to_string();
  EXPECT_GE(faults->failed(yantra::testing::FaultFs::Op::kRename), 1u);
  expect_refused(reopen(dir.path()), dir.path(), "is missing");
}

TEST(WalDamageTest, AcceptDataLossOnAnIntactStoreChangesNothing) {
  ScopedDir dir;
  write_acked(dir.path());
  const uint64_t counted = losses_counted();
  auto opened = reopen(dir.path(), /*accept_data_loss=*/true);
  ASSERT_TRUE(opened.ok()) << opened.status().to_string();
  EXPECT_EQ(dense_events(*opened.value()), static_cast<size_t>(kAcked));
  EXPECT_TRUE(opened.value()->data_loss().empty());
  EXPECT_EQ(losses_counted(), counted);
  EXPECT_FALSE(fs::exists(fs::path(dir.path()) / "lost+found"));
}

}  // namespace
}  // namespace yantra::storage
