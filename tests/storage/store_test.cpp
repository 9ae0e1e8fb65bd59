// Store against a real RocksDB in a fresh directory per test: open creates
// the directories and every column family and reopens with the data,
// forward compatibility with column families of a later version, open
// errors as Status codes rather than crashes, and the read-only latch that
// every typed store obeys. Each typed store has its own suite
// (event_log_test.cpp, execution_index_test.cpp, flow_store_test.cpp, ...).
#include "storage/store.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <fstream>

#include "base/storage_errc.hpp"
#include "tests/storage/test_support.hpp"

namespace yantra::storage {
namespace {

using testing::commit;
using testing::make_flow;
using testing::make_request;
using testing::make_summary;
using testing::open_store;
using testing::range;
using testing::raw;
using testing::ScopedDir;
using testing::seqs_of;

TEST(StoreTest, OpenCreatesMissingDirectoriesAndReopenPersists) {
  ScopedDir dir;
  const std::string path = dir.sub("nested/deeper/db");
  {
    auto store = open_store(path);
    ASSERT_TRUE(store);
    const internal::Db& db = raw(*store);
    EXPECT_NE(db.rocks, nullptr);
    for (auto* cf : {db.events, db.executions, db.flows, db.auth, db.snapshots, db.secrets,
                     db.audit, db.outbox}) {
      EXPECT_NE(cf, nullptr);
    }
    EXPECT_EQ(db.store, store.get());
    EXPECT_FALSE(store->read_only());
    auto request = make_request(3, "exec-1", 1, 4);
    request.summary = make_summary("exec-1", "running", 3, 4);
    ASSERT_TRUE(commit(*store, std::move(request)));
    v1::FlowVersion flow;
    flow.set_tenant("acme");
    flow.set_flow_id("onboard");
    flow.set_definition_json("{}");
    ASSERT_TRUE(store->flows().put(flow).ok());
  }
  auto store = open_store(path);
  ASSERT_TRUE(store);
  auto events = store->events().read(3, "exec-1");
  ASSERT_TRUE(events.ok()) << events.status().to_string();
  EXPECT_EQ(seqs_of(*events), range(1, 4));
  EXPECT_EQ(events->at(0).step_started().path(), "exec-1");
  auto summary = store->executions().summary("exec-1");
  ASSERT_TRUE(summary.ok());
  ASSERT_TRUE(summary->has_value());
  EXPECT_EQ((*summary)->status(), "running");
  auto active = store->executions().active(3);
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(*active, std::vector<std::string>{"exec-1"});
  auto flow = store->flows().get("acme", "onboard");
  ASSERT_TRUE(flow.ok());
  ASSERT_TRUE(flow->has_value());
  EXPECT_EQ((*flow)->version(), 1u);
}

TEST(StoreTest, ReopensDatabaseWithColumnFamilyFromAFutureVersion) {
  ScopedDir dir;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    ASSERT_TRUE(commit(*store, make_request(0, "e", 1, 2)));
    rocksdb::ColumnFamilyHandle* future = nullptr;
    ASSERT_TRUE(
        raw(*store)
            .rocks->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "snapshots_v9", &future)
            .ok());
    ASSERT_TRUE(raw(*store).rocks->Put(rocksdb::WriteOptions(), future, "k", "v").ok());
    ASSERT_TRUE(raw(*store).rocks->DestroyColumnFamilyHandle(future).ok());
  }
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    EXPECT_EQ(seqs_of(*store->events().read(0, "e")), range(1, 2));
    ASSERT_TRUE(commit(*store, make_request(0, "e", 3, 1)));
  }
  // The unknown family survived both opens with its data.
  std::vector<std::string> families;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.path(), &families).ok());
  EXPECT_NE(std::find(families.begin(), families.end(), "snapshots_v9"), families.end());
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(seqs_of(*store->events().read(0, "e")), range(1, 3));
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
  store->latch_read_only(Status(StorageErrc::kError, "disk on fire"));
  store->latch_read_only(Status(StorageErrc::kError, "second cause is not kept"));
  EXPECT_TRUE(store->read_only());
  auto v = store->flows().put(make_flow("acme", "f", "x"));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), "store_read_only");
  EXPECT_NE(v.status().message().find("disk on fire"), std::string::npos);
  EXPECT_EQ(v.status().message().find("second cause"), std::string::npos);
  // Reads keep working.
  EXPECT_FALSE(store->flows().get("acme", "f")->has_value());
}

// The latch is the Store's, and every typed store's writes obey it: after
// the first failed write nothing is acknowledged, whichever store writes.
TEST(StoreTest, EveryTypedStoreRefusesWritesOnceLatched) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  v1::Tenant tenant;
  tenant.set_id("acme");
  ASSERT_TRUE(store->auth().put_tenant(tenant).is_ok());
  v1::ApiKey key;
  key.set_tenant("acme");
  key.set_key_id("k1");
  ASSERT_TRUE(store->auth().put_api_key("hash-1", key).is_ok());
  v1::QueuedRun run;
  run.set_execution_id("q1");
  run.set_tenant("acme");
  run.set_flow_id("flow");  // as make_summary's
  auto queued = store->run_queue().enqueue(run, make_summary("q1", "queued", 0, 0));
  ASSERT_TRUE(queued.ok()) << queued.status().to_string();
  v1::OutboxEntry entry;
  entry.set_id("m1");
  entry.set_next_ms(5);

  store->latch_read_only(Status(StorageErrc::kError, "disk on fire"));
  auto refused = [](const Status& s) { return s.code() == "store_read_only"; };
  EXPECT_TRUE(refused(store->flows().put(make_flow("acme", "f", "x")).status()));
  EXPECT_TRUE(refused(store->auth().put_tenant(tenant)));
  EXPECT_TRUE(refused(store->auth().delete_tenant("acme")));
  EXPECT_TRUE(refused(store->auth().put_api_key("hash-2", key)));
  EXPECT_TRUE(refused(store->auth().revoke_api_key("acme", "k1").status()));
  EXPECT_TRUE(
      refused(store->run_queue().enqueue(run, make_summary("q1", "queued", 0, 0)).status()));
  EXPECT_TRUE(refused(store->run_queue().cancel(*queued, make_summary("q1", "cancelled", 0, 0))));
  EXPECT_TRUE(refused(store->outbox().reschedule(entry, 10)));
  EXPECT_TRUE(refused(store->outbox().remove(entry)));
  EXPECT_TRUE(refused(store->events().expire_finished(INT64_MAX, 10).status()));
  EXPECT_TRUE(refused(commit(*store, make_request(0, "e", 1, 1))));
  // Nothing changed, and reads keep working.
  EXPECT_TRUE((*store->auth().get_tenant("acme")).has_value());
  EXPECT_FALSE((*store->auth().find_api_key("hash-1"))->revoked());
  EXPECT_EQ(store->run_queue().runs("acme", "flow", 10)->size(), 1u);
}

}  // namespace
}  // namespace yantra::storage
