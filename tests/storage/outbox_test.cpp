// The callback outbox in the store: rows commit in the same WriteBatch as the
// events that owe them (so a power cut loses both or neither), are read back
// oldest due first, move under a new key when rescheduled, and survive a
// reopen; a database from before the outbox opens and gains the CF.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <string>
#include <vector>

#include "base/storage_errc.hpp"
#include "tests/storage/test_support.hpp"

namespace yantra::storage {
namespace {

using testing::commit;
using testing::make_request;
using testing::open_store;
using testing::ScopedDir;

v1::OutboxEntry entry(const std::string& id, int64_t due_ms) {
  v1::OutboxEntry e;
  e.set_id(id);
  e.set_tenant("acme");
  e.set_execution_id(id.substr(0, id.find('/')));
  e.set_url("http://127.0.0.1:9/hook");
  e.set_secret_json("null");
  e.set_payload_json(R"({"id":")" + id + R"("})");
  e.set_first_ms(due_ms);
  e.set_next_ms(due_ms);
  e.set_type("step.completed");
  e.set_event_ms(due_ms);
  return e;
}

OutboxRow row(const std::string& id, int64_t due_ms) {
  return OutboxRow{due_ms, id, entry(id, due_ms).SerializeAsString()};
}

std::vector<std::string> ids(const Result<std::vector<v1::OutboxEntry>>& due) {
  EXPECT_TRUE(due.ok()) << due.status().to_string();
  std::vector<std::string> out;
  if (!due.ok()) return out;
  for (const auto& e : due.value()) out.push_back(e.id() + "@" + std::to_string(e.next_ms()));
  return out;
}

TEST(OutboxTest, RowsCommitWithTheirEventsAndComeBackOldestDueFirst) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto request = make_request(0, "e1", 1, 2);
  request.outbox = {row("e1/2/0", 200), row("e1/1/0", 100), row("e1/1/1", 100)};
  ASSERT_TRUE(commit(*store, std::move(request)).is_ok());
  EXPECT_EQ(store->events().read(0, "e1")->size(), 2u);
  EXPECT_EQ(*store->outbox().count(), 3u);
  EXPECT_EQ(ids(store->outbox().due(99, 10)), std::vector<std::string>{});
  EXPECT_EQ(ids(store->outbox().due(100, 10)),
            (std::vector<std::string>{"e1/1/0@100", "e1/1/1@100"}));
  EXPECT_EQ(ids(store->outbox().due(1000, 10)),
            (std::vector<std::string>{"e1/1/0@100", "e1/1/1@100", "e1/2/0@200"}));
  EXPECT_EQ(ids(store->outbox().due(1000, 1)), std::vector<std::string>{"e1/1/0@100"});
  auto full = store->outbox().due(1000, 10);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->at(2).payload_json(), R"({"id":"e1/2/0"})");
  EXPECT_EQ(full->at(2).tenant(), "acme");
}

TEST(OutboxTest, RescheduleMovesTheRowAndRemoveDeletesIt) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto request = make_request(0, "e1", 1, 1);
  request.outbox = {row("e1/1/0", 100), row("e1/1/1", 100)};
  ASSERT_TRUE(commit(*store, std::move(request)).is_ok());

  auto due = store->outbox().due(100, 10);
  ASSERT_TRUE(due.ok());
  v1::OutboxEntry failed = due->at(0);
  failed.set_attempt(1);
  failed.set_last_error("http_500");
  ASSERT_TRUE(store->outbox().reschedule(failed, 1100).is_ok());
  EXPECT_EQ(*store->outbox().count(), 2u);  // moved, not copied
  EXPECT_EQ(ids(store->outbox().due(1000, 10)), std::vector<std::string>{"e1/1/1@100"});
  auto later = store->outbox().due(1100, 10);
  EXPECT_EQ(ids(later), (std::vector<std::string>{"e1/1/1@100", "e1/1/0@1100"}));
  EXPECT_EQ(later->at(1).attempt(), 1u);
  EXPECT_EQ(later->at(1).last_error(), "http_500");

  ASSERT_TRUE(store->outbox().remove(later->at(0)).is_ok());
  ASSERT_TRUE(store->outbox().remove(later->at(1)).is_ok());
  ASSERT_TRUE(store->outbox().remove(later->at(1)).is_ok());  // absent is fine
  EXPECT_EQ(*store->outbox().count(), 0u);
  EXPECT_EQ(store->outbox().remove(v1::OutboxEntry()).code(), "invalid_argument");
}

TEST(OutboxTest, RowsSurviveAReopen) {
  ScopedDir dir;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    auto request = make_request(1, "e2", 1, 1);
    request.outbox = {row("e2/1/0", 50)};
    ASSERT_TRUE(commit(*store, std::move(request)).is_ok());
  }
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(ids(store->outbox().due(50, 10)), std::vector<std::string>{"e2/1/0@50"});
}

TEST(OutboxTest, APowerCutLosesTheEventsAndTheirRowsTogether) {
  ScopedDir dir;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    LogWriter writer(*store, 0);
    writer.halt();
    auto request = make_request(0, "e3", 1, 1);
    request.outbox = {row("e3/1/0", 10)};
    writer.append(std::move(request), [](const Status&) { FAIL() << "acknowledged after halt"; });
  }
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->events().read(0, "e3")->empty());
  EXPECT_EQ(*store->outbox().count(), 0u);
}

TEST(OutboxTest, ARequestWithAnUnnamedRowIsRefusedWhole) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto request = make_request(0, "e4", 1, 1);
  request.outbox = {row("e4/1/0", 10), row("", 10)};
  EXPECT_EQ(commit(*store, std::move(request)).code(), "invalid_argument");
  EXPECT_TRUE(store->events().read(0, "e4")->empty());
  EXPECT_EQ(*store->outbox().count(), 0u);
}

TEST(OutboxTest, AReadOnlyStoreWritesNoRows) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto request = make_request(0, "e5", 1, 1);
  request.outbox = {row("e5/1/0", 10)};
  ASSERT_TRUE(commit(*store, std::move(request)).is_ok());
  store->latch_read_only(Status(StorageErrc::kError, "disk on fire"));
  auto more = make_request(0, "e5", 2, 1);
  more.outbox = {row("e5/2/0", 10)};
  EXPECT_EQ(commit(*store, std::move(more)).code(), "store_read_only");
  auto due = store->outbox().due(10, 10);
  ASSERT_TRUE(due.ok());
  EXPECT_EQ(store->outbox().reschedule(due->at(0), 20).code(), "store_read_only");
  EXPECT_EQ(store->outbox().remove(due->at(0)).code(), "store_read_only");
  EXPECT_EQ(ids(store->outbox().due(10, 10)), std::vector<std::string>{"e5/1/0@10"});
}

TEST(OutboxTest, ADatabaseFromBeforeTheOutboxOpensAndGainsIt) {
  ScopedDir dir;
  {
    // As a 0.2 node left it: no outbox column family.
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"events", {}}, {"executions", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir.path(), cfs, &handles, &db).ok());
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
    delete db;
  }
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->outbox().count(), 0u);
  auto request = make_request(0, "e6", 1, 1);
  request.outbox = {row("e6/1/0", 10)};
  ASSERT_TRUE(commit(*store, std::move(request)).is_ok());
  EXPECT_EQ(*store->outbox().count(), 1u);
}

}  // namespace
}  // namespace yantra::storage
