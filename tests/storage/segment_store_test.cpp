// The replica side of the replicated log (storage/segment_store.hpp) on a
// real RocksDB: every refusal (sealed, gap, wrong epoch, conflicting bytes,
// below the first lsn, fenced by a newer epoch, read-only), idempotent
// re-appends, groups, seals that outlive a reopen, repair, truncation,
// trimming, the append-vs-seal race (after seal answers L, nothing above L
// is ever stored and nothing acknowledged is above L), and a simulated power
// loss (tests/support/fault_fs.hpp) that keeps every acknowledged append and
// seal. Ends with the figure the cluster's commit latency starts from:
// synced appends/s of 4 KiB batches, one at a time and in groups of 8.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/storage_errc.hpp"
#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/scan.hpp"
#include "storage/segment_store.hpp"
#include "storage/store.hpp"
#include "tests/storage/test_support.hpp"
#include "tests/support/fault_fs.hpp"

namespace yantra::storage {
namespace {

using testing::open_store;
using testing::ScopedDir;
using yantra::testing::FaultFs;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kP = 7;

// A batch's bytes, distinct per (partition, segment, lsn) and `salt`.
std::string batch(uint32_t partition, uint64_t segment, uint64_t lsn, size_t pad = 16,
                  char salt = 'x') {
  std::string s =
      std::to_string(partition) + "/" + std::to_string(segment) + "/" + std::to_string(lsn) + "/";
  s.append(pad, salt);
  return s;
}

std::vector<std::string> group(uint32_t partition, uint64_t segment, uint64_t first,
                               uint64_t count) {
  std::vector<std::string> out;
  for (uint64_t i = 0; i < count; ++i) out.push_back(batch(partition, segment, first + i));
  return out;
}

std::vector<uint64_t> lsns(const std::vector<SegmentBatch>& batches) {
  std::vector<uint64_t> out;
  for (const auto& b : batches) out.push_back(b.lsn);
  return out;
}

// Rows of the segments CF under `prefix` ("b" + ... for batches), read
// behind the store's back: what is really on disk.
size_t raw_rows(const Store& store, const std::string& prefix) {
  size_t n = 0;
  const auto& db = testing::raw(store);
  EXPECT_TRUE(internal::scan_prefix(db, db.segments, prefix,
                                    [&n](const rocksdb::Slice&, const rocksdb::Slice&) { ++n; })
                  .is_ok());
  return n;
}

std::string batch_prefix(uint32_t partition, uint64_t segment) {
  std::string p;
  keys::segment_batch_prefix(p, partition, segment);
  return p;
}

// One store for the whole suite (opening RocksDB costs a few fsyncs), and
// a partition pair of its own for each test, so tests never see each
// other's segments.
class SegmentStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedDir();
    store_ = open_store(dir_->path()).release();
  }
  static void TearDownTestSuite() {
    delete store_;
    store_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(store_, nullptr);
    static uint32_t next = 0;
    p_ = next;
    next += 4;
  }
  static void reopen() {
    delete store_;
    store_ = open_store(dir_->path()).release();
    ASSERT_NE(store_, nullptr);
  }
  static SegmentStore& seg() { return store_->segments(); }
  // Appends lsns first..last one at a time, each expected to succeed.
  static void fill(uint32_t partition, uint64_t segment, uint64_t first, uint64_t last) {
    for (uint64_t lsn = first; lsn <= last; ++lsn) {
      auto r = seg().append(partition, segment, lsn, batch(partition, segment, lsn), segment);
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      ASSERT_EQ(r->last_lsn, lsn);
    }
  }

  static inline ScopedDir* dir_ = nullptr;
  static inline Store* store_ = nullptr;
  uint32_t p_ = 0;  // this test's partitions: p_ .. p_ + 3
};

TEST_F(SegmentStoreTest, FirstAppendCreatesTheSegmentAtItsLsnAndReadReturnsBatchesInOrder) {
  auto r = seg().append(p_, 5, 10, batch(p_, 5, 10), 5);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->partition, p_);
  EXPECT_EQ(r->segment, 5u);
  EXPECT_EQ(r->first_lsn, 10u);
  EXPECT_EQ(r->last_lsn, 10u);
  EXPECT_FALSE(r->sealed);
  fill(p_, 5, 11, 14);
  auto info = seg().info(p_, 5);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->first_lsn, 10u);
  EXPECT_EQ(info->last_lsn, 14u);
  auto all = seg().read(p_, 5, 0, UINT64_MAX, SIZE_MAX);
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_EQ(lsns(*all), (std::vector<uint64_t>{10, 11, 12, 13, 14}));
  EXPECT_EQ(all->at(2).bytes, batch(p_, 5, 12));
  // The same segment id in another partition is another segment.
  EXPECT_TRUE(seg().info(p_ + 1, 5).status().is(Errc::kNotFound));
  EXPECT_TRUE(seg().read(p_ + 1, 5, 1, 10, SIZE_MAX).status().is(Errc::kNotFound));
  ASSERT_TRUE(seg().append(p_ + 1, 5, 1, "other", 5).ok());
  EXPECT_EQ(seg().read(p_, 5, 10, 10, SIZE_MAX)->at(0).bytes, batch(p_, 5, 10));
  auto list = seg().segments(p_);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->at(0), *info);
}

TEST_F(SegmentStoreTest, ReAppendingHeldBytesIsAnIdempotentOk) {
  fill(p_, 3, 1, 4);
  auto again = seg().append(p_, 3, 2, batch(p_, 3, 2), 3);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->last_lsn, 4u);
  // A group retried after a lost answer: its held prefix is accepted again,
  // its new tail is appended.
  auto retry = seg().append(p_, 3, 3, group(p_, 3, 3, 4), 3);
  ASSERT_TRUE(retry.ok()) << retry.status().to_string();
  EXPECT_EQ(retry->last_lsn, 6u);
  EXPECT_EQ(lsns(*seg().read(p_, 3, 1, 100, SIZE_MAX)), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(raw_rows(*store_, batch_prefix(p_, 3)), 6u);
}

TEST_F(SegmentStoreTest, DifferentBytesAtAHeldLsnAreAConflictAndChangeNothing) {
  fill(p_, 3, 5, 8);
  auto r = seg().append(p_, 3, 6, "forged", 3);
  EXPECT_TRUE(r.status().is(Errc::kConflict)) << r.status().to_string();
  // Below the first lsn held: not this copy's prefix.
  r = seg().append(p_, 3, 4, batch(p_, 3, 4), 3);
  EXPECT_TRUE(r.status().is(Errc::kConflict)) << r.status().to_string();
  // A group whose held prefix differs writes none of its new tail.
  std::vector<std::string> g = group(p_, 3, 7, 4);
  g[1] = "forged";
  r = seg().append(p_, 3, 7, g, 3);
  EXPECT_TRUE(r.status().is(Errc::kConflict)) << r.status().to_string();
  EXPECT_EQ(seg().info(p_, 3)->last_lsn, 8u);
  EXPECT_EQ(seg().read(p_, 3, 6, 6, SIZE_MAX)->at(0).bytes, batch(p_, 3, 6));
  EXPECT_EQ(raw_rows(*store_, batch_prefix(p_, 3)), 4u);
}

TEST_F(SegmentStoreTest, AGapIsRefusedNamingTheLsnToResendFrom) {
  fill(p_, 3, 1, 3);
  auto r = seg().append(p_, 3, 6, batch(p_, 3, 6), 3);
  ASSERT_TRUE(r.status().is(StorageErrc::kSegmentGap)) << r.status().to_string();
  EXPECT_EQ(SegmentStore::expected_lsn(r.status()), 4u);
  EXPECT_EQ(SegmentStore::sealing_epoch(r.status()), std::nullopt);
  EXPECT_EQ(seg().info(p_, 3)->last_lsn, 3u);
  // The writer resends from the expected lsn, in one group.
  auto resent = seg().append(p_, 3, 4, group(p_, 3, 4, 3), 3);
  ASSERT_TRUE(resent.ok()) << resent.status().to_string();
  EXPECT_EQ(resent->last_lsn, 6u);
  EXPECT_EQ(SegmentStore::expected_lsn(Status(Errc::kConflict, "x")), std::nullopt);
}

TEST_F(SegmentStoreTest, OnlyTheSegmentsOwnEpochAppendsAndNoOlderEpochSeals) {
  auto r = seg().append(p_, 9, 1, "a", 8);
  EXPECT_TRUE(r.status().is(StorageErrc::kSegmentWrongEpoch)) << r.status().to_string();
  r = seg().append(p_, 9, 1, "a", 10);
  EXPECT_TRUE(r.status().is(StorageErrc::kSegmentWrongEpoch)) << r.status().to_string();
  EXPECT_TRUE(seg().info(p_, 9).status().is(Errc::kNotFound));
  ASSERT_TRUE(seg().append(p_, 9, 1, "a", 9).ok());
  r = seg().seal(p_, 9, 8);
  EXPECT_TRUE(r.status().is(StorageErrc::kSegmentWrongEpoch)) << r.status().to_string();
  EXPECT_FALSE(seg().info(p_, 9)->sealed);
}

TEST_F(SegmentStoreTest, ASealAnswersTheLastLsnAndRefusesEveryLaterAppend) {
  fill(p_, 4, 1, 5);
  auto sealed = seg().seal(p_, 4, 6);
  ASSERT_TRUE(sealed.ok()) << sealed.status().to_string();
  EXPECT_TRUE(sealed->sealed);
  EXPECT_EQ(sealed->sealing_epoch, 6u);
  EXPECT_EQ(sealed->first_lsn, 1u);
  EXPECT_EQ(sealed->last_lsn, 5u);
  for (uint64_t lsn : {6u, 5u, 3u, 9u}) {  // next, held (even identical), gap
    auto r = seg().append(p_, 4, lsn, batch(p_, 4, lsn), 4);
    ASSERT_TRUE(r.status().is(StorageErrc::kSegmentSealed))
        << lsn << ": " << r.status().to_string();
    EXPECT_NE(r.status().message().find("epoch 6"), std::string::npos) << r.status().message();
    EXPECT_EQ(SegmentStore::sealing_epoch(r.status()), 6u);
  }
  EXPECT_TRUE(
      seg().append(p_, 4, 6, group(p_, 4, 6, 3), 4).status().is(StorageErrc::kSegmentSealed));
  // Sealing again (a second recovering leader, or a retry) answers the same.
  auto twice = seg().seal(p_, 4, 7);
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(*twice, *sealed);
  EXPECT_EQ(seg().info(p_, 4)->last_lsn, 5u);
  EXPECT_EQ(raw_rows(*store_, batch_prefix(p_, 4)), 5u);
}

// A replica's share of several leaders' appends in one write: each append
// is answered exactly as alone (accepted, sealed, gap, a held retry), a
// refused one holds no other back, and two appends of one segment in a
// group are written in order.
TEST_F(SegmentStoreTest, AGroupAnswersEachAppendAsAloneAndWritesTheAcceptedOnes) {
  fill(p_, 5, 1, 3);
  fill(p_ + 2, 4, 1, 2);
  ASSERT_TRUE(seg().seal(p_ + 2, 4, 6).ok());
  fill(p_ + 3, 2, 1, 1);
  const auto next = group(p_, 5, 4, 2);       // 4, 5: new
  const auto fresh = group(p_ + 1, 7, 1, 1);  // a segment not held yet
  const auto late = group(p_ + 2, 4, 3, 1);   // after the seal
  const auto gap = group(p_ + 3, 2, 4, 1);    // holds 1 only
  const auto overlap = group(p_, 5, 5, 2);    // 5 (held by the first) and 6
  const std::vector<SegmentStore::GroupAppend> appends = {
      {p_, 5, 4, next, 5},    {p_ + 1, 7, 1, fresh, 7}, {p_ + 2, 4, 3, late, 4},
      {p_ + 3, 2, 4, gap, 2}, {p_, 5, 5, overlap, 5},   {p_ + 1, 7, 1, fresh, 8},
  };
  auto out = seg().append_group(appends);
  ASSERT_EQ(out.size(), appends.size());
  ASSERT_TRUE(out[0].ok()) << out[0].status().to_string();
  EXPECT_EQ(out[0]->last_lsn, 5u);
  ASSERT_TRUE(out[1].ok()) << out[1].status().to_string();
  EXPECT_EQ(out[1]->first_lsn, 1u);
  EXPECT_EQ(out[1]->last_lsn, 1u);
  EXPECT_TRUE(out[2].status().is(StorageErrc::kSegmentSealed)) << out[2].status().to_string();
  EXPECT_EQ(SegmentStore::sealing_epoch(out[2].status()), 6u);
  EXPECT_TRUE(out[3].status().is(StorageErrc::kSegmentGap)) << out[3].status().to_string();
  EXPECT_EQ(SegmentStore::expected_lsn(out[3].status()), 2u);
  ASSERT_TRUE(out[4].ok()) << out[4].status().to_string();
  EXPECT_EQ(out[4]->last_lsn, 6u);
  EXPECT_TRUE(out[5].status().is(StorageErrc::kSegmentWrongEpoch)) << out[5].status().to_string();
  // On disk: exactly what was accepted.
  auto held = seg().read(p_, 5, 1, UINT64_MAX, SIZE_MAX);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(lsns(*held), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(held->at(5).bytes, batch(p_, 5, 6));
  EXPECT_EQ(seg().info(p_ + 1, 7)->last_lsn, 1u);
  EXPECT_EQ(raw_rows(*store_, batch_prefix(p_ + 2, 4)), 2u);
  EXPECT_EQ(seg().info(p_ + 3, 2)->last_lsn, 1u);
  // Re-sending the whole group (a leader that lost the reply) changes
  // nothing and answers the accepted ones as held.
  auto again = seg().append_group(appends);
  ASSERT_TRUE(again[0].ok());
  EXPECT_EQ(again[0]->last_lsn, 6u);
  EXPECT_TRUE(again[2].status().is(StorageErrc::kSegmentSealed));
  EXPECT_EQ(raw_rows(*store_, batch_prefix(p_, 5)), 6u);
  EXPECT_TRUE(seg().append_group({}).empty());
}

TEST_F(SegmentStoreTest, SealingAnUnknownSegmentRefusesItsLateFirstAppend) {
  auto sealed = seg().seal(p_, 4, 6);
  ASSERT_TRUE(sealed.ok()) << sealed.status().to_string();
  EXPECT_TRUE(sealed->empty());
  EXPECT_EQ(sealed->first_lsn, 0u);
  auto r = seg().append(p_, 4, 1, "late", 4);
  EXPECT_TRUE(r.status().is(StorageErrc::kSegmentSealed)) << r.status().to_string();
  EXPECT_TRUE(seg().read(p_, 4, 1, 10, SIZE_MAX)->empty());
  EXPECT_EQ(raw_rows(*store_, batch_prefix(p_, 4)), 0u);
}

TEST_F(SegmentStoreTest, ANewerEpochHereFencesTheFirstAppendOfAnOlderSegment) {
  fill(p_, 10, 1, 2);
  // Epoch 8 never reached this replica before epoch 10 did: it is deposed.
  auto r = seg().append(p_, 8, 1, "stale", 8);
  ASSERT_TRUE(r.status().is(StorageErrc::kSegmentSealed)) << r.status().to_string();
  EXPECT_EQ(SegmentStore::sealing_epoch(r.status()), 10u);
  // So is epoch 11 once epoch 12 sealed a segment here.
  ASSERT_TRUE(seg().seal(p_, 10, 12).ok());
  r = seg().append(p_, 11, 3, "stale", 11);
  ASSERT_TRUE(r.status().is(StorageErrc::kSegmentSealed)) << r.status().to_string();
  EXPECT_EQ(SegmentStore::sealing_epoch(r.status()), 12u);
  EXPECT_TRUE(seg().info(p_, 11).status().is(Errc::kNotFound));
  // Epoch 12 itself opens its segment; other partitions are not fenced.
  EXPECT_TRUE(seg().append(p_, 12, 3, "new", 12).ok());
  EXPECT_TRUE(seg().append(p_ + 1, 8, 1, "elsewhere", 8).ok());
}

TEST_F(SegmentStoreTest, ASealSurvivesAReopenAndStillRefusesTheOldWriter) {
  fill(p_, 4, 1, 3);
  ASSERT_TRUE(seg().seal(p_, 4, 5).ok());
  ASSERT_TRUE(seg().seal(p_, 6, 7).ok());  // sealed while unknown
  fill(p_, 7, 4, 4);
  reopen();
  auto info = seg().info(p_, 4);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->sealed);
  EXPECT_EQ(info->sealing_epoch, 5u);
  EXPECT_EQ(info->last_lsn, 3u);
  EXPECT_TRUE(seg().append(p_, 4, 4, batch(p_, 4, 4), 4).status().is(StorageErrc::kSegmentSealed));
  EXPECT_TRUE(seg().append(p_, 6, 1, "late", 6).status().is(StorageErrc::kSegmentSealed));
  EXPECT_EQ(lsns(*seg().read(p_, 4, 1, 3, SIZE_MAX)), (std::vector<uint64_t>{1, 2, 3}));
  // The open segment goes on where it was.
  EXPECT_TRUE(seg().append(p_, 7, 5, batch(p_, 7, 5), 7).ok());
  auto list = seg().segments(p_);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ(list->at(0).segment, 4u);
  EXPECT_EQ(list->at(1).segment, 6u);
  EXPECT_EQ(list->at(2).segment, 7u);
  EXPECT_FALSE(list->at(2).sealed);
}

TEST_F(SegmentStoreTest, BadArgumentsAreRefusedBeforeAnythingIsWritten) {
  EXPECT_TRUE(seg().append(70000, 1, 1, "a", 1).status().is(Errc::kInvalidArgument));
  EXPECT_TRUE(seg().append(p_, 0, 1, "a", 0).status().is(Errc::kInvalidArgument));
  EXPECT_TRUE(seg().append(p_, 1, 0, "a", 1).status().is(Errc::kInvalidArgument));
  EXPECT_TRUE(
      seg().append(p_, 1, 1, std::vector<std::string>{}, 1).status().is(Errc::kInvalidArgument));
  EXPECT_TRUE(
      seg().append(p_, 1, UINT64_MAX, group(p_, 1, 1, 2), 1).status().is(Errc::kInvalidArgument));
  EXPECT_TRUE(seg().seal(p_, 0, 1).status().is(Errc::kInvalidArgument));
  EXPECT_TRUE(seg().segments(70000).status().is(Errc::kInvalidArgument));
  EXPECT_TRUE(seg().segments(p_)->empty());
}

TEST_F(SegmentStoreTest, ReadClipsToTheRangeAndStopsAtMaxBytesButAlwaysAdvances) {
  fill(p_, 2, 3, 12);
  EXPECT_EQ(lsns(*seg().read(p_, 2, 5, 7, SIZE_MAX)), (std::vector<uint64_t>{5, 6, 7}));
  EXPECT_EQ(lsns(*seg().read(p_, 2, 1, 4, SIZE_MAX)), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(lsns(*seg().read(p_, 2, 11, 99, SIZE_MAX)), (std::vector<uint64_t>{11, 12}));
  EXPECT_TRUE(seg().read(p_, 2, 13, 99, SIZE_MAX)->empty());
  EXPECT_TRUE(seg().read(p_, 2, 7, 5, SIZE_MAX)->empty());
  const size_t one = batch(p_, 2, 3).size();  // every batch here has this size
  EXPECT_EQ(lsns(*seg().read(p_, 2, 3, 12, 3 * one)), (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_EQ(lsns(*seg().read(p_, 2, 3, 12, 3 * one + 1)), (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_EQ(lsns(*seg().read(p_, 2, 6, 12, 1)), (std::vector<uint64_t>{6}));
  EXPECT_EQ(lsns(*seg().read(p_, 2, 6, 12, 0)), (std::vector<uint64_t>{6}));
}

TEST_F(SegmentStoreTest, TruncateAfterRemovesTheUnacknowledgedTailOfASealedSegment) {
  fill(p_, 3, 4, 12);
  auto open = seg().truncate_after(p_, 3, 8);
  EXPECT_TRUE(open.status().is(Errc::kConflict)) << open.status().to_string();
  EXPECT_TRUE(seg().truncate_after(p_, 99, 8).status().is(Errc::kNotFound));
  ASSERT_TRUE(seg().seal(p_, 3, 4).ok());
  auto cut = seg().truncate_after(p_, 3, 8);
  ASSERT_TRUE(cut.ok()) << cut.status().to_string();
  EXPECT_EQ(cut->first_lsn, 4u);
  EXPECT_EQ(cut->last_lsn, 8u);
  EXPECT_TRUE(cut->truncated);
  EXPECT_EQ(cut->truncated_end, 8u);
  EXPECT_EQ(lsns(*seg().read(p_, 3, 1, 99, SIZE_MAX)), (std::vector<uint64_t>{4, 5, 6, 7, 8}));
  EXPECT_EQ(raw_rows(*store_, batch_prefix(p_, 3)), 5u);
  // A later call with a higher end removes nothing and keeps the lower end.
  auto again = seg().truncate_after(p_, 3, 10);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *cut);
  // The seal still answers the truncated end.
  EXPECT_EQ(seg().seal(p_, 3, 5)->last_lsn, 8u);
  reopen();
  EXPECT_EQ(*seg().info(p_, 3), *cut);
  // Below the first lsn: nothing is left.
  auto empty = seg().truncate_after(p_, 3, 2);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(empty->first_lsn, 0u);
  EXPECT_EQ(empty->truncated_end, 2u);
  EXPECT_TRUE(seg().read(p_, 3, 1, 99, SIZE_MAX)->empty());
  EXPECT_EQ(raw_rows(*store_, batch_prefix(p_, 3)), 0u);
}

TEST_F(SegmentStoreTest, RepairCopiesBatchesIntoASealedSegmentForItsRecoveringEpochOnly) {
  fill(p_, 3, 1, 2);
  // Open: the recovering leader must seal first.
  EXPECT_TRUE(seg().repair(p_, 3, 3, group(p_, 3, 3, 2), 5).status().is(Errc::kConflict));
  EXPECT_TRUE(seg().repair(p_, 9, 1, group(p_, 9, 1, 2), 10).status().is(Errc::kConflict));
  ASSERT_TRUE(seg().seal(p_, 3, 5).ok());
  // The same prefix rules as append.
  auto gap = seg().repair(p_, 3, 4, group(p_, 3, 4, 1), 5);
  ASSERT_TRUE(gap.status().is(StorageErrc::kSegmentGap)) << gap.status().to_string();
  EXPECT_EQ(SegmentStore::expected_lsn(gap.status()), 3u);
  EXPECT_TRUE(
      seg().repair(p_, 3, 2, std::vector<std::string>{"forged"}, 5).status().is(Errc::kConflict));
  auto copied = seg().repair(p_, 3, 2, group(p_, 3, 2, 4), 5);
  ASSERT_TRUE(copied.ok()) << copied.status().to_string();
  EXPECT_EQ(copied->last_lsn, 5u);
  EXPECT_TRUE(copied->sealed);
  EXPECT_EQ(copied->sealing_epoch, 5u);
  // An older recovering epoch than the sealing one is itself deposed.
  auto stale = seg().repair(p_, 3, 6, group(p_, 3, 6, 1), 4);
  EXPECT_TRUE(stale.status().is(StorageErrc::kSegmentSealed)) << stale.status().to_string();
  // A newer one may repair; the old writer still may not append.
  EXPECT_TRUE(seg().repair(p_, 3, 6, group(p_, 3, 6, 1), 8).ok());
  EXPECT_TRUE(seg().append(p_, 3, 7, batch(p_, 3, 7), 3).status().is(StorageErrc::kSegmentSealed));
  // A replica that was sealed while it held nothing receives the whole
  // segment; never beyond the recorded end once truncated.
  ASSERT_TRUE(seg().seal(p_ + 1, 3, 5).ok());
  ASSERT_TRUE(seg().repair(p_ + 1, 3, 1, group(p_ + 1, 3, 1, 3), 5).ok());
  ASSERT_TRUE(seg().truncate_after(p_ + 1, 3, 4).ok());
  EXPECT_TRUE(seg().repair(p_ + 1, 3, 4, group(p_ + 1, 3, 4, 1), 5).ok());
  EXPECT_TRUE(seg().repair(p_ + 1, 3, 5, group(p_ + 1, 3, 5, 1), 5).status().is(Errc::kConflict));
  EXPECT_EQ(lsns(*seg().read(p_ + 1, 3, 1, 9, SIZE_MAX)), (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST_F(SegmentStoreTest, TrimDeletesCoveredSealedSegmentsAndKeepsTheirFence) {
  fill(p_, 1, 1, 5);
  ASSERT_TRUE(seg().seal(p_, 1, 2).ok());
  fill(p_, 2, 6, 9);
  ASSERT_TRUE(seg().seal(p_, 2, 3).ok());
  ASSERT_TRUE(seg().seal(p_, 3, 4).ok());  // sealed empty
  fill(p_, 4, 10, 12);                     // open
  fill(p_ + 1, 1, 1, 3);
  ASSERT_TRUE(seg().seal(p_ + 1, 1, 2).ok());

  EXPECT_TRUE(seg().trim(p_, 4).status().is(Errc::kConflict));
  EXPECT_TRUE(seg().trim(p_, 99).status().is(Errc::kNotFound));
  auto one = seg().trim(p_, 1);
  ASSERT_TRUE(one.ok()) << one.status().to_string();
  EXPECT_TRUE(one->trimmed);
  EXPECT_EQ(one->last_lsn, 5u);  // what it held, for the record
  EXPECT_TRUE(seg().trim(p_, 1).ok());
  EXPECT_EQ(raw_rows(*store_, batch_prefix(p_, 1)), 0u);
  EXPECT_TRUE(seg().read(p_, 1, 1, 5, SIZE_MAX).status().is(StorageErrc::kSegmentTrimmed));
  EXPECT_TRUE(seg().append(p_, 1, 6, "late", 1).status().is(StorageErrc::kSegmentSealed));
  EXPECT_TRUE(seg()
                  .repair(p_, 1, 5, std::vector<std::string>{batch(p_, 1, 5)}, 2)
                  .status()
                  .is(StorageErrc::kSegmentTrimmed));

  // A snapshot covers lsn 8: segment 2 holds lsn 9, so only the empty
  // segment 3 goes (it has nothing a snapshot must cover).
  auto below = seg().trim_below(p_, 9);
  ASSERT_TRUE(below.ok()) << below.status().to_string();
  ASSERT_EQ(below->size(), 1u);
  EXPECT_EQ(below->at(0).segment, 3u);
  EXPECT_EQ(raw_rows(*store_, batch_prefix(p_, 2)), 4u);
  // Up to lsn 9: segment 2 goes too; the open segment 4 stays, and
  // partition p_+1 is untouched.
  below = seg().trim_below(p_, 10);
  ASSERT_TRUE(below.ok()) << below.status().to_string();
  ASSERT_EQ(below->size(), 1u);
  EXPECT_EQ(below->at(0).segment, 2u);
  EXPECT_EQ(raw_rows(*store_, batch_prefix(p_, 2)), 0u);
  EXPECT_EQ(raw_rows(*store_, batch_prefix(p_, 4)), 3u);
  EXPECT_EQ(raw_rows(*store_, batch_prefix(p_ + 1, 1)), 3u);
  EXPECT_TRUE(seg().trim_below(p_, 100)->empty()) << "the open segment is never trimmed";
  reopen();
  auto list = seg().segments(p_);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 4u);
  EXPECT_TRUE(list->at(0).trimmed && list->at(1).trimmed && list->at(2).trimmed);
  EXPECT_FALSE(list->at(3).trimmed);
  EXPECT_TRUE(seg().append(p_, 2, 10, "late", 2).status().is(StorageErrc::kSegmentSealed));
}

// Its own store: the latch cannot be undone.
TEST(SegmentReadOnlyTest, AReadOnlyStoreAcknowledgesNothingNotEvenARetry) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  SegmentStore& seg = store->segments();
  ASSERT_TRUE(seg.append(kP, 1, 1, batch(kP, 1, 1), 1).ok());
  ASSERT_TRUE(seg.append(kP, 1, 2, batch(kP, 1, 2), 1).ok());
  store->latch_read_only();
  EXPECT_TRUE(seg.append(kP, 1, 2, batch(kP, 1, 2), 1).status().is(StorageErrc::kReadOnly));
  EXPECT_TRUE(seg.append(kP, 1, 3, batch(kP, 1, 3), 1).status().is(StorageErrc::kReadOnly));
  EXPECT_TRUE(seg.seal(kP, 1, 2).status().is(StorageErrc::kReadOnly));
  EXPECT_TRUE(seg.truncate_after(kP, 1, 1).status().is(StorageErrc::kReadOnly));
  EXPECT_TRUE(seg.trim_below(kP, 10).status().is(StorageErrc::kReadOnly));
  EXPECT_EQ(lsns(*seg.read(kP, 1, 1, 9, SIZE_MAX)), (std::vector<uint64_t>{1, 2}));
}

// One thread appends continuously (the writer's ordered channel), another
// seals at a random moment (the new leader). After seal answered L: nothing
// above L is stored, every append acknowledged at all is <= L, and L is at
// least the highest append acknowledged before the seal was sent.
TEST(SegmentRaceTest, AfterSealAnswersLNothingAboveLIsStoredOrAcknowledged) {
  ScopedDir dir;
  // Async: the race is about the mutex, not the fsync; this keeps hundreds
  // of rounds well inside a second (under sanitizers too).
  auto store = open_store(dir.path(), Durability::kAsync);
  ASSERT_TRUE(store);
  SegmentStore& seg = store->segments();
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  const auto deadline = Clock::now() + std::chrono::milliseconds(1500);
  int rounds = 0;
  uint64_t sealed_mid_append = 0;
  // At least 20 rounds however slow the machine (a sanitizer build), at
  // most 300, and no more once the time is up.
  for (uint64_t segment = 1; segment <= 300 && (segment <= 20 || Clock::now() < deadline);
       ++segment, ++rounds) {
    std::atomic<uint64_t> acked{0};  // highest lsn acknowledged
    std::atomic<bool> refused{false};
    std::atomic<bool> seal_returned{false};
    Status unexpected;
    std::thread writer([&] {
      for (uint64_t lsn = 1;; ++lsn) {
        // An append sent after the seal answered must be refused: if it is
        // not, the loop stops here rather than run forever.
        const bool after_seal = seal_returned.load();
        auto r = seg.append(kP, segment, lsn, batch(kP, segment, lsn), segment);
        if (!r.ok()) {
          if (!r.status().is(StorageErrc::kSegmentSealed)) unexpected = r.status();
          refused.store(true);
          return;
        }
        acked.store(lsn);
        if (after_seal) return;
      }
    });
    const uint64_t wait_for = std::uniform_int_distribution<uint64_t>(0, 8)(rng);
    while (acked.load() < wait_for && !refused.load()) std::this_thread::yield();
    const uint64_t acked_before = acked.load();
    auto sealed = seg.seal(kP, segment, segment + 1);
    seal_returned.store(true);
    writer.join();
    ASSERT_TRUE(sealed.ok()) << sealed.status().to_string();
    ASSERT_TRUE(unexpected.is_ok()) << unexpected.to_string();
    ASSERT_TRUE(refused.load()) << "seed " << seed << ": an append after the seal was accepted";
    const uint64_t L = sealed->last_lsn;
    ASSERT_GE(L, acked_before) << "seed " << seed << ": the seal lost an acknowledged append";
    ASSERT_EQ(acked.load(), L) << "seed " << seed << ": an append above L was acknowledged, "
                               << "or one at or below L was stored unacknowledged";
    auto info = seg.info(kP, segment);
    ASSERT_TRUE(info.ok());
    ASSERT_EQ(info->last_lsn, L);
    ASSERT_EQ(raw_rows(*store, batch_prefix(kP, segment)), L) << "seed " << seed;
    if (L > acked_before) ++sealed_mid_append;
  }
  std::cout << rounds << " rounds, " << sealed_mid_append
            << " with appends acknowledged between the seal's send and its answer (seed " << seed
            << ")\n";
}

// A power loss at a random point while writers append (one per partition,
// each moving to its next segment when sealed) and a new leader seals: every
// append and seal acknowledged before the crash is there after it, a seal's
// last_lsn is exactly what it answered, and the deposed writers stay refused.
TEST(SegmentPowerLossTest, EveryAcknowledgedAppendAndSealSurvives) {
  constexpr uint32_t kPartitions = 2;
  constexpr int kRounds = 3;
  const unsigned seed = std::random_device{}();
  std::cout << "seed " << seed << "\n";
  std::mt19937 rng(seed);
  for (int round = 0; round < kRounds; ++round) {
    ScopedDir dir;
    auto fs = std::make_shared<FaultFs>();
    std::mutex mu;
    std::map<std::pair<uint32_t, uint64_t>, uint64_t> acked;  // (p, segment) -> last acked lsn
    std::map<std::pair<uint32_t, uint64_t>, uint64_t> seals;  // (p, segment) -> answered last
    std::atomic<uint64_t> acks{0};
    std::atomic<bool> stop{false};
    const uint64_t crash_after = std::uniform_int_distribution<uint64_t>(20, 100)(rng);
    {
      StoreOptions options{dir.path(), Durability::kSync};
      options.file_system = fs;
      auto opened = Store::open(options);
      ASSERT_TRUE(opened.ok()) << opened.status().to_string();
      std::unique_ptr<Store> store = std::move(opened).value();
      SegmentStore& seg = store->segments();
      std::array<std::atomic<uint64_t>, kPartitions> epoch_of{};
      std::array<std::atomic<uint64_t>, kPartitions> acked_in_epoch{};
      std::vector<std::thread> threads;
      for (uint32_t p = 0; p < kPartitions; ++p) {
        epoch_of[p].store(1);
        threads.emplace_back([&, p] {
          uint64_t epoch = 1;
          uint64_t lsn = 1;
          while (!stop.load()) {
            // Groups of 1..3, as a pipelining writer sends them.
            const uint64_t n = 1 + lsn % 3;
            auto r = seg.append(p, epoch, lsn, group(p, epoch, lsn, n), epoch);
            if (r.ok()) {
              {
                std::lock_guard lock(mu);
                acked[{p, epoch}] = lsn + n - 1;
              }
              lsn += n;
              acked_in_epoch[p].fetch_add(n);
              acks.fetch_add(n);
            } else if (r.status().is(StorageErrc::kSegmentSealed)) {
              ++epoch;  // deposed: the next leader's segment goes on from here
              acked_in_epoch[p].store(0);
              epoch_of[p].store(epoch);
            } else {
              return;  // the power is gone
            }
          }
        });
      }
      threads.emplace_back([&] {
        std::mt19937 local(seed + static_cast<unsigned>(round));
        while (!stop.load()) {
          const uint32_t p = local() % kPartitions;
          const uint64_t epoch = epoch_of[p].load();
          const uint64_t after = 1 + local() % 12;
          while (!stop.load() && acked_in_epoch[p].load() < after && epoch_of[p].load() == epoch) {
            std::this_thread::yield();
          }
          auto r = seg.seal(p, epoch, epoch + 1);
          if (!r.ok()) return;
          std::lock_guard lock(mu);
          seals[{p, epoch}] = r->last_lsn;
        }
      });
      const auto give_up = Clock::now() + std::chrono::seconds(30);
      while (acks.load() < crash_after && Clock::now() < give_up) std::this_thread::yield();
      EXPECT_GE(acks.load(), crash_after) << "the writers stopped before the crash";
      fs->simulate_crash();
      stop.store(true);
      for (auto& t : threads) t.join();
    }
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    SegmentStore& seg = store->segments();
    size_t durable_unacked = 0;
    for (const auto& [key, last] : acked) {
      const auto [p, segment] = key;
      auto info = seg.info(p, segment);
      ASSERT_TRUE(info.ok()) << "seed " << seed << ": segment lost: " << info.status().to_string();
      ASSERT_GE(info->last_lsn, last) << "seed " << seed << ": acknowledged appends lost";
      auto batches = seg.read(p, segment, 0, last, SIZE_MAX);
      ASSERT_TRUE(batches.ok());
      ASSERT_FALSE(batches->empty());
      for (const auto& b : *batches) ASSERT_EQ(b.bytes, batch(p, segment, b.lsn));
      ASSERT_EQ(batches->back().lsn, last);
      durable_unacked += info->last_lsn - last;
    }
    for (const auto& [key, last] : seals) {
      const auto [p, segment] = key;
      auto info = seg.info(p, segment);
      ASSERT_TRUE(info.ok()) << "seed " << seed << ": sealed segment lost";
      ASSERT_TRUE(info->sealed) << "seed " << seed << ": an acknowledged seal was lost";
      ASSERT_EQ(info->last_lsn, last) << "seed " << seed;
      auto late = seg.append(p, segment, last + 1, batch(p, segment, last + 1), segment);
      ASSERT_TRUE(late.status().is(StorageErrc::kSegmentSealed)) << late.status().to_string();
    }
    std::cout << "round " << round << ": crash after " << acks.load() << " acked appends, "
              << seals.size() << " seals, " << durable_unacked
              << " batches durable but not acknowledged\n";
  }
}

// Each mutating call is durable when it returns, not only once a later
// synced write carries it: the power goes right after each answer.
TEST(SegmentPowerLossTest, SealRepairTruncateAndTrimAreDurableWhenTheyReturn) {
  ScopedDir dir;
  auto fs = std::make_shared<FaultFs>();
  // Opens the data on the fault-injecting file system, runs `check` (what
  // the previous step's op must have left) and `op`, and cuts the power
  // right after op returned.
  auto step = [&](auto check, auto op) {
    {
      StoreOptions options{dir.path(), Durability::kSync};
      options.file_system = fs;
      auto opened = Store::open(options);
      ASSERT_TRUE(opened.ok()) << opened.status().to_string();
      check(*opened.value());
      op(opened.value()->segments());
      fs->simulate_crash();
    }
    fs->reset();
  };
  auto nothing = [](const Store&) {};
  step(nothing, [](SegmentStore& seg) {
    for (uint64_t lsn = 1; lsn <= 5; ++lsn) {
      ASSERT_TRUE(seg.append(kP, 1, lsn, batch(kP, 1, lsn), 1).ok());
    }
    ASSERT_TRUE(seg.seal(kP, 1, 2).ok());
  });
  step(
      [](const Store& store) {
        EXPECT_TRUE(store.segments().info(kP, 1)->sealed) << "the seal was lost";
        EXPECT_EQ(store.segments().info(kP, 1)->last_lsn, 5u);
      },
      [](SegmentStore& seg) {
        ASSERT_TRUE(seg.seal(kP, 2, 3).ok());
        ASSERT_TRUE(seg.repair(kP, 2, 6, group(kP, 2, 6, 3), 3).ok());
      });
  step(
      [](const Store& store) {
        EXPECT_EQ(store.segments().info(kP, 2)->last_lsn, 8u) << "the repair was lost";
      },
      [](SegmentStore& seg) { ASSERT_TRUE(seg.truncate_after(kP, 1, 3).ok()); });
  step(
      [](const Store& store) {
        EXPECT_EQ(store.segments().info(kP, 1)->last_lsn, 3u) << "the truncated tail came back";
        EXPECT_EQ(raw_rows(store, batch_prefix(kP, 1)), 3u);
      },
      [](SegmentStore& seg) { ASSERT_TRUE(seg.trim(kP, 1).ok()); });
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->segments().info(kP, 1)->trimmed) << "the trim was lost";
  EXPECT_EQ(raw_rows(*store, batch_prefix(kP, 1)), 0u);
}

// The number the cluster's commit latency starts from: synced appends/s of
// 4 KiB batches on this disk, one per call and in groups of 8 (one
// WriteBatch, one fsync). Bounded in time; prints, asserts only progress.
TEST(SegmentBenchTest, SyncedAppendsPerSecondOf4KiBBatches) {
  ScopedDir dir;
  auto store = open_store(dir.path(), Durability::kSync);
  ASSERT_TRUE(store);
  SegmentStore& seg = store->segments();
  const std::string payload(4096, 'b');
  const auto budget = std::chrono::milliseconds(500);
  auto measure = [&](uint64_t segment, size_t group_size) {
    const std::vector<std::string> g(group_size, payload);
    uint64_t lsn = 1;
    const auto start = Clock::now();
    auto now = start;
    while ((now = Clock::now()) - start < budget && lsn < 2000) {
      auto r = seg.append(kP, segment, lsn, g, segment);
      EXPECT_TRUE(r.ok()) << r.status().to_string();
      if (!r.ok()) break;
      lsn += group_size;
    }
    const double seconds = std::chrono::duration<double>(now - start).count();
    return std::pair{static_cast<double>(lsn - 1) / seconds, static_cast<double>(lsn - 1)};
  };
  const auto [single, n1] = measure(1, 1);
  const auto [grouped, n8] = measure(2, 8);
  std::cout << "segment appends, 4 KiB, sync: " << static_cast<uint64_t>(single)
            << " appends/s one at a time (" << n1 << " appends), " << static_cast<uint64_t>(grouped)
            << " appends/s in groups of 8 (" << n8 << " appends)\n";
  EXPECT_GT(n1, 0);
  EXPECT_GT(n8, 0);
}

}  // namespace
}  // namespace yantra::storage
