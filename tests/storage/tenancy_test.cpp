// Multi-tenancy rows of the Store against a real RocksDB: tenants, the
// per-tenant API key index (isolation between tenants, revocation, the
// backfill for keys from before the index), the durable run queue, and the
// atomicity of a run's start with the removal of its queue row.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <set>
#include <thread>

#include "base/storage_errc.hpp"
#include "storage/internal/keys.hpp"
#include "tests/storage/test_support.hpp"

namespace yantra::storage {
namespace {

using testing::commit;
using testing::make_request;
using testing::make_summary;
using testing::open_store;
using testing::raw;
using testing::ScopedDir;

v1::Tenant tenant(const std::string& id, const std::string& status = "active") {
  v1::Tenant t;
  t.set_id(id);
  t.set_name("Tenant " + id);
  t.set_status(status);
  t.mutable_limits()->set_requests_per_second(10);
  t.mutable_limits()->set_max_executions_per_month(1000);
  t.set_created_ms(1);
  t.set_updated_ms(2);
  return t;
}

v1::ApiKey api_key(const std::string& tenant, const std::string& key_id,
                   const std::string& role = "editor") {
  v1::ApiKey k;
  k.set_tenant(tenant);
  k.set_key_id(key_id);
  k.set_role(role);
  k.set_name(key_id);
  return k;
}

std::vector<std::string> key_ids(const std::vector<v1::ApiKey>& keys) {
  std::vector<std::string> out;
  for (const auto& k : keys) out.push_back(k.key_id());
  return out;
}

TEST(TenantStoreTest, PutGetListDeleteTenants) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->auth().put_tenant(tenant("zeta")));
  ASSERT_TRUE(store->auth().put_tenant(tenant("acme")));
  ASSERT_TRUE(store->auth().put_tenant(tenant("beta", "suspended")));
  ASSERT_TRUE(store->auth().put_tenant(tenant("acme", "suspended")));  // upsert

  auto acme = store->auth().get_tenant("acme");
  ASSERT_TRUE(acme.ok()) << acme.status().to_string();
  ASSERT_TRUE(acme->has_value());
  EXPECT_EQ((*acme)->status(), "suspended");
  EXPECT_EQ((*acme)->limits().max_executions_per_month(), 1000u);
  EXPECT_FALSE(store->auth().get_tenant("nobody")->has_value());

  auto all = store->auth().list_tenants();
  ASSERT_TRUE(all.ok());
  std::vector<std::string> ids;
  for (const auto& t : *all) ids.push_back(t.id());
  EXPECT_EQ(ids, (std::vector<std::string>{"acme", "beta", "zeta"}));

  EXPECT_EQ(store->auth().put_tenant(tenant("")).code(), "invalid_argument");
  EXPECT_EQ(store->auth().put_tenant(tenant(std::string("a\0b", 3))).code(), "invalid_argument");
  EXPECT_EQ(store->auth().delete_tenant("nobody").code(), "not_found");
}

v1::ToolRegistration registration(const std::string& tenant, const std::string& kind,
                                  const std::string& id, const std::string& def = "{}") {
  v1::ToolRegistration r;
  r.set_tenant(tenant);
  r.set_kind(kind);
  r.set_id(id);
  r.set_definition_json(def);
  r.set_updated_ms(5);
  return r;
}

// Tool registrations: per tenant and kind, ordered by id, upserted, never
// listed across tenants or kinds (a tenant named like another's prefix
// included), and refused with a bad tenant, kind or id.
TEST(TenantStoreTest, ToolRegistrationsAreKeptPerTenantAndKind) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto& auth = store->auth();
  ASSERT_TRUE(auth.put_tool_registration(registration("acme", "mcp", "zeta")));
  ASSERT_TRUE(auth.put_tool_registration(registration("acme", "mcp", "alpha", R"({"v":1})")));
  ASSERT_TRUE(auth.put_tool_registration(registration("acme", "worker", "w1")));
  ASSERT_TRUE(auth.put_tool_registration(registration("acme2", "mcp", "other")));
  ASSERT_TRUE(auth.put_tool_registration(registration("acme", "mcp", "alpha", R"({"v":2})")));

  auto mcp = auth.list_tool_registrations("acme", "mcp");
  ASSERT_TRUE(mcp.ok()) << mcp.status().to_string();
  ASSERT_EQ(mcp->size(), 2u);
  EXPECT_EQ((*mcp)[0].id(), "alpha");
  EXPECT_EQ((*mcp)[0].definition_json(), R"({"v":2})");
  EXPECT_EQ((*mcp)[1].id(), "zeta");
  EXPECT_EQ(auth.list_tool_registrations("acme", "worker")->size(), 1u);
  EXPECT_EQ(auth.all_tool_registrations("mcp")->size(), 3u);
  EXPECT_EQ(auth.all_tool_registrations("")->size(), 4u);

  ASSERT_TRUE(auth.get_tool_registration("acme", "worker", "w1")->has_value());
  EXPECT_FALSE(auth.get_tool_registration("acme", "mcp", "w1")->has_value());
  ASSERT_TRUE(auth.delete_tool_registration("acme", "worker", "w1"));
  EXPECT_FALSE(auth.get_tool_registration("acme", "worker", "w1")->has_value());
  EXPECT_EQ(auth.delete_tool_registration("acme", "worker", "w1").code(), "not_found");

  EXPECT_EQ(auth.put_tool_registration(registration("", "mcp", "x")).code(), "invalid_argument");
  EXPECT_EQ(auth.put_tool_registration(registration("acme", "MCP", "x")).code(),
            "invalid_argument");
  EXPECT_EQ(auth.put_tool_registration(registration("acme", "mcp", "")).code(), "invalid_argument");
  EXPECT_EQ(auth.put_tool_registration(registration("acme", "mcp", std::string("a\0b", 3))).code(),
            "invalid_argument");
}

TEST(TenantStoreTest, ApiKeysAreIndexedPerTenantAndNeverCrossTenants) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->auth().put_api_key("hash-b", api_key("acme", "key_b")));
  ASSERT_TRUE(store->auth().put_api_key("hash-a", api_key("acme", "key_a", "owner")));
  ASSERT_TRUE(store->auth().put_api_key("hash-o", api_key("other", "key_o")));
  // "acme" is a prefix of "acme2": the 0x00 separator keeps them apart.
  ASSERT_TRUE(store->auth().put_api_key("hash-2", api_key("acme2", "key_a")));

  auto acme = store->auth().list_api_keys("acme");
  ASSERT_TRUE(acme.ok()) << acme.status().to_string();
  EXPECT_EQ(key_ids(*acme), (std::vector<std::string>{"key_a", "key_b"}));
  EXPECT_EQ(key_ids(*store->auth().list_api_keys("acme2")), std::vector<std::string>{"key_a"});
  EXPECT_EQ(*store->auth().count_api_keys("acme"), 2u);

  auto found = store->auth().find_api_key_by_id("acme", "key_a");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->first, "hash-a");
  EXPECT_EQ((*found)->second.role(), "owner");
  // Another tenant's key id is simply absent.
  EXPECT_FALSE(store->auth().find_api_key_by_id("acme", "key_o")->has_value());
  EXPECT_FALSE(store->auth().find_api_key_by_id("other", "key_a")->has_value());

  auto wrong = store->auth().revoke_api_key("other", "key_a");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), "not_found");
  EXPECT_FALSE((*store->auth().find_api_key("hash-a"))->revoked());

  auto revoked = store->auth().revoke_api_key("acme", "key_a");
  ASSERT_TRUE(revoked.ok()) << revoked.status().to_string();
  EXPECT_EQ(*revoked, "hash-a");
  EXPECT_TRUE((*store->auth().find_api_key("hash-a"))->revoked());
  EXPECT_EQ(*store->auth().count_api_keys("acme"), 1u);
  // Revoked keys stay listed.
  EXPECT_EQ(store->auth().list_api_keys("acme")->size(), 2u);
  EXPECT_TRUE(store->auth().revoke_api_key("acme", "key_a").ok());  // twice is fine

  EXPECT_EQ(store->auth().put_api_key("h", api_key("", "k")).code(), "invalid_argument");
  EXPECT_EQ(store->auth().put_api_key("h", api_key("acme", "")).code(), "invalid_argument");
}

TEST(TenantStoreTest, RekeyingAHashMovesItsIndexRow) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->auth().put_api_key("hash", api_key("acme", "old_id")));
  ASSERT_TRUE(store->auth().put_api_key("hash", api_key("beta", "new_id")));
  EXPECT_TRUE(store->auth().list_api_keys("acme")->empty());
  EXPECT_EQ(key_ids(*store->auth().list_api_keys("beta")), std::vector<std::string>{"new_id"});
  EXPECT_FALSE(store->auth().find_api_key_by_id("acme", "old_id")->has_value());
}

TEST(TenantStoreTest, DeleteTenantRevokesAllItsKeysAtOnce) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->auth().put_tenant(tenant("acme")));
  ASSERT_TRUE(store->auth().put_tenant(tenant("other")));
  ASSERT_TRUE(store->auth().put_api_key("h1", api_key("acme", "k1")));
  ASSERT_TRUE(store->auth().put_api_key("h2", api_key("acme", "k2")));
  ASSERT_TRUE(store->auth().put_api_key("h3", api_key("other", "k3")));

  ASSERT_TRUE(store->auth().delete_tenant("acme"));
  EXPECT_FALSE(store->auth().get_tenant("acme")->has_value());
  EXPECT_TRUE((*store->auth().find_api_key("h1"))->revoked());
  EXPECT_TRUE((*store->auth().find_api_key("h2"))->revoked());
  EXPECT_FALSE((*store->auth().find_api_key("h3"))->revoked());
  EXPECT_EQ(*store->auth().count_api_keys("acme"), 0u);
  EXPECT_EQ(*store->auth().count_api_keys("other"), 1u);
  EXPECT_EQ(store->auth().delete_tenant("acme").code(), "not_found");
}

TEST(TenantStoreTest, KeysFromBeforeTheIndexAreIndexedAtOpen) {
  ScopedDir dir;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    // As a 0.2 node wrote it: the key row alone.
    std::string k;
    keys::api_key_key(k, "legacy-hash");
    ASSERT_TRUE(raw(*store)
                    .rocks
                    ->Put(rocksdb::WriteOptions(), raw(*store).auth, k,
                          api_key("default", "key_legacy", "owner").SerializeAsString())
                    .ok());
    EXPECT_EQ(*store->auth().count_api_keys("default"), 0u);  // not indexed yet
  }
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->auth().count_api_keys("default"), 1u);
  auto found = store->auth().find_api_key_by_id("default", "key_legacy");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->first, "legacy-hash");
}

TEST(TenantStoreTest, ReadOnlyStoreRefusesAuthWrites) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->auth().put_tenant(tenant("acme")));
  store->latch_read_only(Status(StorageErrc::kError, "disk on fire"));
  EXPECT_EQ(store->auth().put_tenant(tenant("beta")).code(), "store_read_only");
  EXPECT_EQ(store->auth().put_api_key("h", api_key("acme", "k")).code(), "store_read_only");
  EXPECT_EQ(store->auth().delete_tenant("acme").code(), "store_read_only");
  EXPECT_TRUE(store->auth().get_tenant("acme")->has_value());
}

// --- the durable run queue ---

v1::QueuedRun queued(const std::string& id, const std::string& flow = "flow",
                     const std::string& idem = "") {
  v1::QueuedRun run;
  run.set_execution_id(id);
  run.set_tenant("acme");
  run.set_flow_id(flow);
  run.set_flow_version(3);
  run.set_input_json("{\"n\":1}");
  run.set_idempotency_key(idem);
  run.set_enqueued_ms(1000);
  return run;
}

v1::ExecutionSummary queued_summary(const v1::QueuedRun& run) {
  v1::ExecutionSummary s = make_summary(run.execution_id(), "queued", 0, 0);
  s.set_flow_id(run.flow_id());
  s.set_tenant(run.tenant());
  return s;
}

Result<v1::QueuedRun> enqueue(Store& store, const v1::QueuedRun& run) {
  return store.run_queue().enqueue(run, queued_summary(run));
}

std::vector<std::string> ids_of(const std::vector<v1::QueuedRun>& runs) {
  std::vector<std::string> out;
  for (const auto& r : runs) out.push_back(r.execution_id());
  return out;
}

TEST(RunQueueTest, EnqueueWritesQueueSummaryListingAndIdempotencyRows) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto run = enqueue(*store, queued("01A", "flow", "idem-1"));
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  EXPECT_GE(run->queue_seq(), 1u);

  auto summary = store->executions().summary("01A");
  ASSERT_TRUE(summary->has_value());
  EXPECT_EQ((*summary)->status(), "queued");
  EXPECT_EQ(**store->executions().find_idempotent("acme", "idem-1"), "01A");
  auto page = store->executions().list("acme", "flow", "", 10, "");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].execution_id(), "01A");
  // Not an active execution: it has no events to recover.
  EXPECT_TRUE(store->executions().active(0)->empty());

  auto runs = store->run_queue().runs("acme", "flow", 10);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ(runs->at(0).input_json(), "{\"n\":1}");
  EXPECT_EQ(runs->at(0).queue_seq(), run->queue_seq());

  v1::QueuedRun mismatched = queued("01B");
  v1::ExecutionSummary other = queued_summary(queued("01C"));
  EXPECT_EQ(store->run_queue().enqueue(mismatched, other).status().code(), "invalid_argument");
}

TEST(RunQueueTest, QueuesAreOrderedPerFlowAndSeqsSurviveReopen) {
  ScopedDir dir;
  uint64_t last = 0;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    for (const char* id : {"r1", "r2", "r3"}) ASSERT_TRUE(enqueue(*store, queued(id, "a")).ok());
    ASSERT_TRUE(enqueue(*store, queued("s1", "b")).ok());
    // "a" is a prefix of "ab": its queue must not include ab's runs.
    auto ab = enqueue(*store, queued("t1", "ab"));
    ASSERT_TRUE(ab.ok());
    last = ab->queue_seq();
    EXPECT_EQ(ids_of(*store->run_queue().runs("acme", "a", 10)),
              (std::vector<std::string>{"r1", "r2", "r3"}));
    EXPECT_EQ(ids_of(*store->run_queue().runs("acme", "a", 2)),
              (std::vector<std::string>{"r1", "r2"}));
  }
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto next = enqueue(*store, queued("r4", "a"));
  ASSERT_TRUE(next.ok());
  EXPECT_GT(next->queue_seq(), last);
  EXPECT_EQ(ids_of(*store->run_queue().runs("acme", "a", 10)),
            (std::vector<std::string>{"r1", "r2", "r3", "r4"}));
  auto flows = store->run_queue().queued_flows();
  ASSERT_TRUE(flows.ok());
  using Flow = std::pair<std::string, std::string>;
  EXPECT_EQ(*flows, (std::vector<Flow>{{"acme", "a"}, {"acme", "ab"}, {"acme", "b"}}));
}

TEST(RunQueueTest, ConcurrentEnqueuesGetDistinctSeqs) {
  ScopedDir dir;
  auto store = open_store(dir.path(), Durability::kAsync);
  ASSERT_TRUE(store);
  constexpr int kThreads = 4;
  constexpr int kRuns = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRuns; ++i) {
        EXPECT_TRUE(
            enqueue(*store, queued("t" + std::to_string(t) + "-" + std::to_string(i))).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  auto runs = store->run_queue().runs("acme", "flow", 1000);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), static_cast<size_t>(kThreads * kRuns));
  std::set<uint64_t> seqs;
  for (const auto& r : *runs) seqs.insert(r.queue_seq());
  EXPECT_EQ(seqs.size(), runs->size());
}

TEST(RunQueueTest, CancelRemovesTheRowOnceAndWritesTheSummary) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto run = enqueue(*store, queued("c1"));
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(enqueue(*store, queued("c2")).ok());
  v1::ExecutionSummary cancelled = queued_summary(*run);
  cancelled.set_status("cancelled");
  ASSERT_TRUE(store->run_queue().cancel(*run, cancelled));
  EXPECT_EQ((*store->executions().summary("c1"))->status(), "cancelled");
  EXPECT_EQ(ids_of(*store->run_queue().runs("acme", "flow", 10)), std::vector<std::string>{"c2"});
  EXPECT_EQ(store->run_queue().cancel(*run, cancelled).code(), "not_found");
}

TEST(RunQueueTest, StartingARunRemovesItsQueueRowInTheSameBatch) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto run = enqueue(*store, queued("q1"));
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(RunQueue::row_key(*run).front(), 'q');

  auto request = make_request(0, "q1", 1, 2);
  request.summary = make_summary("q1", "running", 0, 2);
  request.delete_key = RunQueue::row_key(*run);

  // One WriteBatch: watch RocksDB's sequence numbers. The events, summary,
  // active marker and the queue-row delete all get consecutive sequence
  // numbers from one Write, so no crash point separates them.
  const rocksdb::SequenceNumber before = raw(*store).rocks->GetLatestSequenceNumber();
  ASSERT_TRUE(commit(*store, std::move(request)));
  const rocksdb::SequenceNumber after = raw(*store).rocks->GetLatestSequenceNumber();
  std::unique_ptr<rocksdb::TransactionLogIterator> wal;
  ASSERT_TRUE(raw(*store).rocks->GetUpdatesSince(before + 1, &wal).ok());
  ASSERT_TRUE(wal->Valid());
  rocksdb::BatchResult batch = wal->GetBatch();
  EXPECT_EQ(batch.sequence, before + 1);
  // 2 events + summary + active marker + the queue delete.
  EXPECT_EQ(batch.writeBatchPtr->Count(), 5u);
  EXPECT_EQ(after, before + 5);

  EXPECT_TRUE(store->run_queue().runs("acme", "flow", 10)->empty());
  EXPECT_TRUE(store->run_queue().queued_flows()->empty());
  EXPECT_EQ(store->events().read(0, "q1")->size(), 2u);
  v1::ExecutionSummary cancelled = queued_summary(*run);
  cancelled.set_status("cancelled");
  EXPECT_EQ(store->run_queue().cancel(*run, cancelled).code(), "not_found");
  EXPECT_EQ((*store->executions().summary("q1"))->status(), "running");
}

TEST(RunQueueTest, APowerCutBeforeTheStartKeepsTheRunQueued) {
  ScopedDir dir;
  v1::QueuedRun run;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    auto r = enqueue(*store, queued("p1"));
    ASSERT_TRUE(r.ok());
    run = *r;
    LogWriter writer(*store, 0);
    writer.halt();  // power is off before the start is written
    auto request = make_request(0, "p1", 1, 1);
    request.delete_key = RunQueue::row_key(run);
    writer.append(std::move(request), [](const Status&) { FAIL() << "acknowledged after halt"; });
  }
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(ids_of(*store->run_queue().runs("acme", "flow", 10)), std::vector<std::string>{"p1"});
  EXPECT_TRUE(store->events().read(0, "p1")->empty());
}

TEST(RunQueueTest, CountExecutionsFromCountsListingRowsAtOrAboveAnId) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  for (const char* id : {"01A", "01B", "02A", "02B", "03A"}) {
    ASSERT_TRUE(enqueue(*store, queued(id)).ok());
  }
  v1::QueuedRun other = queued("02C");
  other.set_tenant("acme2");
  ASSERT_TRUE(enqueue(*store, other).ok());
  EXPECT_EQ(*store->executions().count_from("acme", ""), 5u);
  EXPECT_EQ(*store->executions().count_from("acme", "02"), 3u);
  EXPECT_EQ(*store->executions().count_from("acme", "02B"), 2u);
  EXPECT_EQ(*store->executions().count_from("acme", "04"), 0u);
  EXPECT_EQ(*store->executions().count_from("acme2", "0"), 1u);
}

}  // namespace
}  // namespace yantra::storage
