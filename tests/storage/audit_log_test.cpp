// AuditLog against a real RocksDB: concurrent appends form dense, separate,
// valid chains per tenant; a reopened log continues its chains; a record
// modified, removed or cut off through the raw database is reported at its
// seq; queries filter by time, action and cursor; reports count; and appends
// are cheap enough for the API's request rate. In a cluster (AuditChainer):
// chains per (tenant, partition) stamped by a leader and written through
// replicated batches are byte-identical on every replica, continue under a
// new leader, verify_all() finds a broken link in any one of them, and a
// relay's resent entries are recorded once.
#include "storage/audit_log.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <thread>

#include "storage/internal/keys.hpp"
#include "storage/partition_batch.hpp"
#include "tests/storage/test_support.hpp"

namespace yantra::storage {
namespace {

using testing::open_store;
using testing::raw;
using testing::ScopedDir;

std::unique_ptr<AuditLog> open_log(Store& store) {
  auto log = AuditLog::open(store);
  EXPECT_TRUE(log.ok()) << log.status().to_string();
  return log.ok() ? std::move(log).value() : nullptr;
}

AuditEntry entry(const std::string& tenant, const std::string& action, int64_t time_ms,
                 const std::string& outcome = "ok") {
  AuditEntry e;
  e.time_ms = time_ms;
  e.tenant = tenant;
  e.key_id = "key_1";
  e.role = "admin";
  e.action = action;
  e.resource = "flows/f";
  e.outcome = outcome;
  e.request_id = "req";
  return e;
}

std::vector<uint64_t> seqs(const std::vector<v1::AuditRecord>& records) {
  std::vector<uint64_t> out;
  for (const auto& r : records) out.push_back(r.seq());
  return out;
}

void expect_ok(const AuditLog& log, const std::string& tenant, uint64_t records) {
  auto report = log.verify(tenant);
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  EXPECT_TRUE(report->ok) << tenant << ": " << report->reason;
  EXPECT_EQ(report->records, records) << tenant;
  EXPECT_EQ(report->first_broken_seq, 0u);
}

TEST(AuditLogTest, ConcurrentAppendsFormDenseSeparateValidChains) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto log = open_log(*store);
  ASSERT_TRUE(log);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250;
  const std::vector<std::string> tenants = {"acme", "acme2", ""};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        log->append(entry(tenants[static_cast<size_t>(i) % tenants.size()],
                          "thread" + std::to_string(t), 1000 + i));
      }
    });
  }
  for (auto& th : threads) th.join();
  log->flush();
  EXPECT_TRUE(log->status().is_ok());

  uint64_t total = 0;
  for (const auto& tenant : tenants) {
    auto records = log->query(tenant, 0, 0, "", 0, 0);
    ASSERT_TRUE(records.ok());
    std::vector<uint64_t> expected;
    for (uint64_t s = 1; s <= records->size(); ++s) expected.push_back(s);
    EXPECT_EQ(seqs(*records), expected) << tenant;
    for (const auto& r : *records) EXPECT_EQ(r.tenant(), tenant);
    expect_ok(*log, tenant, records->size());
    total += records->size();
  }
  EXPECT_EQ(total, static_cast<uint64_t>(kThreads * kPerThread));
  // The no-tenant chain is stored as "-".
  std::string key;
  keys::audit_key(key, "-", 1);
  std::string value;
  EXPECT_TRUE(raw(*store).rocks->Get(rocksdb::ReadOptions(), raw(*store).audit, key, &value).ok());
}

TEST(AuditLogTest, HashesFollowTheDocumentedFormat) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto log = open_log(*store);
  ASSERT_TRUE(log);
  log->append(entry("acme", "flow.put", 5));
  log->append(entry("acme", "flow.delete", 6));
  log->flush();
  auto records = *log->query("acme", 0, 0, "", 0, 0);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].prev_hash(), std::string(32, '\0'));
  EXPECT_EQ(records[0].hash().size(), 32u);
  EXPECT_EQ(records[1].prev_hash(), records[0].hash());
  EXPECT_EQ(AuditLog::compute_hash(records[1]), records[1].hash());
  // Any field changes the hash.
  v1::AuditRecord changed = records[1];
  changed.set_detail("x");
  EXPECT_NE(AuditLog::compute_hash(changed), records[1].hash());
}

TEST(AuditLogTest, ReopenContinuesEveryChain) {
  ScopedDir dir;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    auto log = open_log(*store);
    ASSERT_TRUE(log);
    for (int i = 0; i < 5; ++i) log->append(entry("acme", "a", i + 1));
    for (int i = 0; i < 3; ++i) log->append(entry("beta", "a", i + 1));
    // No flush: the destructor writes what is queued.
  }
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto log = open_log(*store);
  ASSERT_TRUE(log);
  log->append(entry("acme", "b", 10));
  log->append(entry("beta", "b", 10));
  log->append(entry("gamma", "b", 10));
  log->flush();
  EXPECT_EQ(seqs(*log->query("acme", 0, 0, "b", 0, 0)), std::vector<uint64_t>{6});
  EXPECT_EQ(seqs(*log->query("beta", 0, 0, "b", 0, 0)), std::vector<uint64_t>{4});
  EXPECT_EQ(seqs(*log->query("gamma", 0, 0, "", 0, 0)), std::vector<uint64_t>{1});
  expect_ok(*log, "acme", 6);
  expect_ok(*log, "beta", 4);
  expect_ok(*log, "gamma", 1);
}

// Rewrites one stored record through the raw database, as an attacker with
// disk access would.
void tamper(Store& store, const std::string& chain, uint64_t seq,
            const std::function<void(v1::AuditRecord&)>& change) {
  std::string key;
  keys::audit_key(key, chain, seq);
  std::string value;
  ASSERT_TRUE(raw(store).rocks->Get(rocksdb::ReadOptions(), raw(store).audit, key, &value).ok());
  v1::AuditRecord record;
  ASSERT_TRUE(record.ParseFromString(value));
  change(record);
  ASSERT_TRUE(
      raw(store)
          .rocks->Put(rocksdb::WriteOptions(), raw(store).audit, key, record.SerializeAsString())
          .ok());
}

TEST(AuditLogTest, VerifyReportsAModifiedRecord) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto log = open_log(*store);
  ASSERT_TRUE(log);
  for (int i = 0; i < 10; ++i) log->append(entry("acme", "flow.put", i, "denied"));
  log->append(entry("beta", "flow.put", 1));
  log->flush();
  expect_ok(*log, "acme", 10);

  tamper(*store, "acme", 7, [](v1::AuditRecord& r) { r.set_outcome("ok"); });
  auto report = log->verify("acme");
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  EXPECT_EQ(report->first_broken_seq, 7u);
  EXPECT_NE(report->reason.find("modified"), std::string::npos) << report->reason;
  expect_ok(*log, "beta", 1);  // other chains are unaffected

  // Recomputing the record's own hash does not help: the next link breaks.
  tamper(*store, "acme", 7, [](v1::AuditRecord& r) { r.set_hash(AuditLog::compute_hash(r)); });
  report = log->verify("acme");
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  EXPECT_EQ(report->first_broken_seq, 8u);
  EXPECT_NE(report->reason.find("prev_hash"), std::string::npos) << report->reason;
}

TEST(AuditLogTest, VerifyReportsDeletedRecords) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto log = open_log(*store);
  ASSERT_TRUE(log);
  for (int i = 0; i < 10; ++i) log->append(entry("acme", "a", i));
  log->flush();

  std::string key;
  keys::audit_key(key, "acme", 4);
  ASSERT_TRUE(raw(*store).rocks->Delete(rocksdb::WriteOptions(), raw(*store).audit, key).ok());
  auto report = log->verify("acme");
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  EXPECT_EQ(report->first_broken_seq, 4u);
  EXPECT_NE(report->reason.find("missing"), std::string::npos) << report->reason;

  ScopedDir dir2;
  auto store2 = open_store(dir2.path());
  ASSERT_TRUE(store2);
  auto log2 = open_log(*store2);
  ASSERT_TRUE(log2);
  for (int i = 0; i < 3; ++i) log2->append(entry("acme", "a", i));
  log2->flush();
  // A deleted tail is noticed while this process knows the head.
  keys::audit_key(key, "acme", 3);
  ASSERT_TRUE(raw(*store2).rocks->Delete(rocksdb::WriteOptions(), raw(*store2).audit, key).ok());
  report = log2->verify("acme");
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  EXPECT_EQ(report->first_broken_seq, 3u);
}

TEST(AuditLogTest, QueryFiltersByTimeActionAndCursor) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto log = open_log(*store);
  ASSERT_TRUE(log);
  log->append(entry("acme", "flow.put", 100));       // 1
  log->append(entry("acme", "flow.delete", 200));    // 2
  log->append(entry("acme", "execution.run", 300));  // 3
  log->append(entry("acme", "flowx.other", 400));    // 4
  log->append(entry("acme", "flow.put", 500));       // 5
  log->append(entry("other", "flow.put", 300));      // other chain
  log->flush();

  EXPECT_EQ(seqs(*log->query("acme", 0, 0, "", 0, 0)), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(seqs(*log->query("acme", 200, 500, "", 0, 0)), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(seqs(*log->query("acme", 0, 0, "flow.", 0, 0)), (std::vector<uint64_t>{1, 2, 5}));
  EXPECT_EQ(seqs(*log->query("acme", 0, 0, "flow.put", 0, 0)), (std::vector<uint64_t>{1, 5}));
  EXPECT_TRUE(log->query("acme", 0, 0, "flow", 0, 0)->empty());  // exact unless it ends in '.'
  // Paging with the cursor.
  auto page1 = *log->query("acme", 0, 0, "", 2, 0);
  EXPECT_EQ(seqs(page1), (std::vector<uint64_t>{1, 2}));
  auto page2 = *log->query("acme", 0, 0, "", 2, page1.back().seq());
  EXPECT_EQ(seqs(page2), (std::vector<uint64_t>{3, 4}));
  auto page3 = *log->query("acme", 0, 0, "", 2, page2.back().seq());
  EXPECT_EQ(seqs(page3), (std::vector<uint64_t>{5}));
  EXPECT_TRUE(log->query("acme", 0, 0, "", 2, 5)->empty());
  EXPECT_TRUE(log->query("nobody", 0, 0, "", 0, 0)->empty());
}

TEST(AuditLogTest, ReportCountsByActionAndOutcome) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto log = open_log(*store);
  ASSERT_TRUE(log);
  log->append(entry("acme", "flow.put", 10, "ok"));
  log->append(entry("acme", "flow.put", 20, "ok"));
  log->append(entry("acme", "flow.put", 30, "denied"));
  log->append(entry("acme", "auth.login", 40, "ok"));
  log->append(entry("acme", "flow.put", 99, "ok"));  // outside [0, 50)
  log->append(entry("other", "flow.put", 10, "ok"));
  log->flush();
  auto counts = log->report("acme", 0, 50);
  ASSERT_TRUE(counts.ok());
  AuditLog::Counts expected = {
      {{"flow.put", "ok"}, 2u}, {{"flow.put", "denied"}, 1u}, {{"auth.login", "ok"}, 1u}};
  EXPECT_EQ(*counts, expected);
  auto all_time = log->report("acme", 0, 0);
  ASSERT_TRUE(all_time.ok());
  EXPECT_EQ(all_time->at({"flow.put", "ok"}), 3u);
}

// Many appends from two threads all land, densely chained. The rate is
// printed for information only: speed is measured by benchmarks, not by
// tests that a slow CI machine could fail.
TEST(AuditLogTest, ManyConcurrentAppendsAllLandInOneValidChain) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto log = open_log(*store);
  ASSERT_TRUE(log);
  constexpr int kThreads = 2;
  constexpr int kPerThread = 50000;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        log->append(entry(t == 0 ? "acme" : "beta", "execution.run", 1000 + i));
      }
    });
  }
  for (auto& th : threads) th.join();
  const double append_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log->flush();
  const double total_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = kThreads * kPerThread / total_s;
  std::printf("audit: %d appends in %.3f s (appending %.3f s): %.0f/s durable\n",
              kThreads * kPerThread, total_s, append_s, rate);
  expect_ok(*log, "acme", kPerThread);
  expect_ok(*log, "beta", kPerThread);
}

// ---- partition chains (cluster)

// A partition's leader and its replicas: every batch the leader's chainer
// stamps is encoded, then applied to each store as a committed batch.
struct ReplicatedChains {
  std::vector<std::unique_ptr<Store>> stores;
  std::map<uint32_t, uint64_t> lsn;  // last lsn per partition
  std::map<uint32_t, std::unique_ptr<AuditChainer>> chainers;

  AuditChainer& chainer(uint32_t p, size_t leader = 0) {
    auto& c = chainers[p];
    if (!c) c = std::make_unique<AuditChainer>(*stores[leader], p);
    return *c;
  }
  // Stamps and commits; the number of rows written.
  size_t record(uint32_t p, std::vector<AuditEntry> entries, const std::string& sender = "",
                uint64_t first_counter = 0) {
    auto rows = chainer(p).stamp(std::move(entries), sender, first_counter);
    EXPECT_TRUE(rows.ok()) << rows.status().to_string();
    if (!rows.ok() || rows->empty()) return 0;
    const size_t n = rows->size();
    WriteRequest request;
    request.partition = p;
    request.audit = std::move(rows.value());
    const uint64_t next = ++lsn[p];
    auto bytes = encode(p, next, 1, {request});
    EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
    for (auto& store : stores) {
      Status st = apply_committed(*store, p, next, *bytes);
      EXPECT_TRUE(st.is_ok()) << st.to_string();
    }
    return n;
  }
};

std::map<std::string, std::string> audit_rows(const Store& store) {
  std::map<std::string, std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(
      raw(store).rocks->NewIterator(rocksdb::ReadOptions(), raw(store).audit));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    out.emplace(it->key().ToString(), it->value().ToString());
  }
  return out;
}

void tamper_partition(Store& store, uint32_t p, const std::string& chain, uint64_t seq,
                      const std::function<void(v1::AuditRecord&)>& change) {
  std::string key;
  keys::partition_audit_key(key, p, chain, seq);
  std::string value;
  ASSERT_TRUE(raw(store).rocks->Get(rocksdb::ReadOptions(), raw(store).audit, key, &value).ok());
  v1::AuditRecord record;
  ASSERT_TRUE(record.ParseFromString(value));
  change(record);
  ASSERT_TRUE(
      raw(store)
          .rocks->Put(rocksdb::WriteOptions(), raw(store).audit, key, record.SerializeAsString())
          .ok());
}

TEST(AuditChainsTest, ReplicatedPartitionChainsAreIdenticalAndContinueUnderANewLeader) {
  ScopedDir a, b, c;
  ReplicatedChains cluster;
  for (ScopedDir* d : {&a, &b, &c}) {
    cluster.stores.push_back(open_store(d->path()));
    ASSERT_TRUE(cluster.stores.back());
  }
  for (int round = 0; round < 5; ++round) {
    for (uint32_t p : {0u, 3u, 7u}) {
      cluster.record(p, {entry("acme", "flow.create", 100 + round),
                         entry("beta", "execution.run", 100 + round),
                         entry("acme", "execution.run", 101 + round)});
    }
  }
  // Failover: the leader of partition 3 is now store 1, with a fresh
  // chainer reading the heads from its own copy.
  cluster.chainers.erase(3);
  cluster.chainer(3, 1);
  cluster.record(3, {entry("acme", "key.create", 200)});

  for (auto& store : cluster.stores) {
    auto log = open_log(*store);
    ASSERT_TRUE(log);
    auto chains = log->chains("acme");
    ASSERT_TRUE(chains.ok());
    EXPECT_EQ(chains.value(), (std::vector<AuditChainPartition>{0u, 3u, 7u}));
    auto report = log->verify_all("acme");
    ASSERT_TRUE(report.ok());
    EXPECT_TRUE(report->ok) << report->reason;
    EXPECT_EQ(report->chains, 3u);
    EXPECT_EQ(report->records, 3u * 10u + 1u);
    auto records = log->query("acme", 0, 0, "", 0, 0, 3u);
    ASSERT_TRUE(records.ok());
    ASSERT_EQ(records->size(), 11u);
    EXPECT_EQ(records->back().seq(), 11u);
    EXPECT_EQ(records->back().action(), "key.create");
    auto counts = log->report("beta", 0, 0);
    ASSERT_TRUE(counts.ok());
    EXPECT_EQ((counts.value()[{"execution.run", "ok"}]), 15u);
    // The node's own chain is untouched by the partitions' records.
    EXPECT_TRUE(log->query("acme", 0, 0, "", 0, 0)->empty());
  }
  EXPECT_EQ(audit_rows(*cluster.stores[0]), audit_rows(*cluster.stores[1]));
  EXPECT_EQ(audit_rows(*cluster.stores[0]), audit_rows(*cluster.stores[2]));
}

TEST(AuditChainsTest, VerifyAllFindsABrokenLinkInAnyOneChain) {
  // For each chain of the tenant in turn (the node's own, partitions 2 and
  // 9), a store whose only damage is in that chain: verify_all fails there.
  for (int broken = 0; broken < 3; ++broken) {
    ScopedDir dir;
    ReplicatedChains cluster;
    cluster.stores.push_back(open_store(dir.path()));
    ASSERT_TRUE(cluster.stores.back());
    Store& store = *cluster.stores.back();
    {
      auto log = open_log(store);
      ASSERT_TRUE(log);
      for (int i = 0; i < 4; ++i) log->append(entry("acme", "legacy", i));
      log->flush();
    }
    for (int i = 0; i < 4; ++i) {
      cluster.record(2, {entry("acme", "p2", i)});
      cluster.record(9, {entry("acme", "p9", i), entry("beta", "p9", i)});
    }
    auto log = open_log(store);
    ASSERT_TRUE(log);
    auto before = log->verify_all("acme");
    ASSERT_TRUE(before.ok());
    ASSERT_TRUE(before->ok) << before->reason;
    EXPECT_EQ(before->chains, 3u);
    EXPECT_EQ(before->records, 12u);

    auto change = [](v1::AuditRecord& r) { r.set_detail("rewritten"); };
    AuditChainPartition where;
    if (broken == 0) {
      tamper(store, "acme", 3, change);
    } else {
      where = broken == 1 ? 2u : 9u;
      tamper_partition(store, *where, "acme", 3, change);
    }
    auto report = log->verify_all("acme");
    ASSERT_TRUE(report.ok());
    EXPECT_FALSE(report->ok) << "chain " << broken;
    EXPECT_EQ(report->first_broken_seq, 3u);
    EXPECT_EQ(report->broken_partition, where);
    EXPECT_NE(report->reason.find("modified"), std::string::npos) << report->reason;
    auto other = log->verify_all("beta");  // other tenants' chains unaffected
    ASSERT_TRUE(other.ok());
    EXPECT_TRUE(other->ok) << other->reason;
  }
}

TEST(AuditChainsTest, VerifyAllFindsARemovedLinkAndARelinkedChain) {
  ScopedDir dir;
  ReplicatedChains cluster;
  cluster.stores.push_back(open_store(dir.path()));
  ASSERT_TRUE(cluster.stores.back());
  Store& store = *cluster.stores.back();
  for (int i = 0; i < 6; ++i) cluster.record(5, {entry("acme", "a", i)});
  std::string key;
  keys::partition_audit_key(key, 5, "acme", 4);
  ASSERT_TRUE(raw(store).rocks->Delete(rocksdb::WriteOptions(), raw(store).audit, key).ok());
  auto log = open_log(store);
  ASSERT_TRUE(log);
  auto report = log->verify_all("acme");
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  EXPECT_EQ(report->first_broken_seq, 4u);
  EXPECT_EQ(report->broken_partition, AuditChainPartition(5u));
  EXPECT_NE(report->reason.find("missing"), std::string::npos) << report->reason;
}

TEST(AuditChainsTest, AResentRelayBatchIsRecordedOnce) {
  ScopedDir a, b;
  ReplicatedChains cluster;
  cluster.stores.push_back(open_store(a.path()));
  cluster.stores.push_back(open_store(b.path()));
  ASSERT_TRUE(cluster.stores[0] && cluster.stores[1]);
  auto five = [](int from) {
    std::vector<AuditEntry> out;
    for (int i = 0; i < 5; ++i) out.push_back(entry("acme", "n" + std::to_string(from + i), 1));
    return out;
  };
  EXPECT_EQ(cluster.record(1, five(1), "node-a/1", 1), 6u);  // 5 records + the mark
  EXPECT_EQ(cluster.record(1, five(1), "node-a/1", 1), 0u);  // the same batch again
  // Overlapping (counters 4..8): 6..8 are new.
  EXPECT_EQ(cluster.record(1, five(4), "node-a/1", 4), 4u);
  // Another sender's counters are its own.
  EXPECT_EQ(cluster.record(1, five(1), "node-b/1", 1), 6u);
  // A new leader reads the marks from its own copy.
  cluster.chainers.erase(1);
  cluster.chainer(1, 1);
  EXPECT_EQ(cluster.record(1, five(4), "node-a/1", 4), 0u);
  EXPECT_EQ(cluster.record(1, five(9), "node-a/1", 9), 6u);
  auto log = open_log(*cluster.stores[1]);
  ASSERT_TRUE(log);
  auto report = log->verify_all("acme");
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->reason;
  EXPECT_EQ(report->records, 8u + 5u + 5u);
  EXPECT_EQ(audit_rows(*cluster.stores[0]), audit_rows(*cluster.stores[1]));
}

TEST(AuditChainsTest, AuditRowsOfAnotherPartitionOrTheNodesChainAreRefused) {
  WriteRequest request;
  request.partition = 4;
  std::string key;
  keys::partition_audit_key(key, 5, "acme", 1);  // partition 5's chain
  request.audit.push_back({key, "x"});
  EXPECT_FALSE(encode(4, 1, 1, {request}).ok());
  keys::audit_key(key, "acme", 1);  // the node's own chain
  request.audit = {{key, "x"}};
  EXPECT_FALSE(encode(4, 1, 1, {request}).ok());
  keys::partition_audit_key(key, 4, "acme", 1);
  request.audit = {{key, "x"}};
  auto ok = encode(4, 1, 1, {request});
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  auto decoded = decode(*ok);
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  ASSERT_EQ(decoded->requests.size(), 1u);
  EXPECT_EQ(decoded->requests[0].audit.size(), 1u);
  // An audit-only request may not carry anything of an execution.
  request.events.emplace_back(1, "e");
  EXPECT_FALSE(encode(4, 1, 1, {request}).ok());
}

TEST(AuditChainsTest, APoisonedChainerRefusesToStamp) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  AuditChainer chainer(*store, 0);
  ASSERT_TRUE(chainer.stamp({entry("acme", "a", 1)}).ok());
  chainer.poison();
  auto refused = chainer.stamp({entry("acme", "a", 2)});
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), "unavailable");
}

}  // namespace
}  // namespace yantra::storage
