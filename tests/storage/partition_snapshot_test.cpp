// Partition snapshots (storage/partition_snapshot.hpp) against real RocksDB
// stores: the classifier places each row kind of docs/event-log-format.md
// (one case per kind, keys built by the real key builders); a store with
// several partitions written through apply_committed exports partition P,
// and an empty store that imports it holds exactly P's rows, byte for byte,
// and P's applied marker, nothing of another partition and nothing
// node-local or cluster-wide; the export is one consistent view while
// batches keep applying; an import interrupted halfway is recognisably
// incomplete and redone; damaged, reordered and foreign chunks are refused.
#include "storage/partition_snapshot.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "base/storage_errc.hpp"
#include "runtime/ids.hpp"
#include "storage/internal/keys.hpp"
#include "storage/partition_batch.hpp"
#include "tests/storage/test_support.hpp"
#include "yantra/v1/tenancy.pb.h"

namespace yantra::storage {
namespace {

using testing::make_request;
using testing::make_summary;
using testing::open_store;
using testing::raw;
using testing::ScopedDir;

constexpr uint32_t kPartitions = 4;

uint32_t part(std::string_view id) {
  return partition_of(id, kPartitions);
}
const PartitionOfId kPartOf = [](std::string_view id) { return part(id); };

// An execution id of partition p (ULIDs, as the engine draws them).
std::string id_in(uint32_t p, uint64_t salt) {
  for (uint64_t r = salt * 1000;; ++r) {
    std::string id = make_execution_id(1700000000000, r, r * 7 + 1);
    if (part(id) == p) return id;
  }
}

std::string be16(uint32_t p) {
  std::string s;
  keys::put_be16(s, static_cast<uint16_t>(p));
  return s;
}

// ---- the classifier: one case per row kind --------------------------------

struct KindCase {
  std::string name;
  SnapshotCf cf;
  std::string key;
  std::string value;
  RowScope scope;
  uint32_t partition;  // when scope is kPartition / kAppliedMarker
};

std::vector<KindCase> kind_cases() {
  const std::string id = id_in(3, 1);  // an execution of partition 3
  const std::string fork = id_in(1, 2);
  std::string k;
  std::vector<KindCase> out;
  keys::event_key(k, 3, id, 7);
  out.push_back({"event", SnapshotCf::kEvents, k, "e", RowScope::kPartition, 3});
  keys::event_key(k, 3, id, 7);
  out.push_back({"snapshot", SnapshotCf::kSnapshots, k, "s", RowScope::kPartition, 3});
  keys::summary_key(k, id);
  out.push_back({"summary", SnapshotCf::kExecutions, k, "x", RowScope::kPartition, 3});
  keys::active_key(k, 2, id);  // the marker's partition is the key's
  out.push_back({"active_marker", SnapshotCf::kExecutions, k, "", RowScope::kPartition, 2});
  keys::list_key(k, "acme", id);
  out.push_back({"listing", SnapshotCf::kExecutions, k, "flow", RowScope::kPartition, 3});
  // The key itself hashes elsewhere: only the value (the id) places the row.
  std::string idem = "key-0";
  for (int i = 1; part(idem) == 3; ++i) idem = "key-" + std::to_string(i);
  keys::idempotency_key(k, "acme", idem);
  out.push_back({"idempotency", SnapshotCf::kExecutions, k, id, RowScope::kPartition, 3});
  // A fork of `id` is in the fork's partition (its creation writes the row).
  keys::fork_key(k, id, fork);
  out.push_back({"fork", SnapshotCf::kExecutions, k, "", RowScope::kPartition, 1});
  keys::ended_key(k, 1700000001234, id);
  out.push_back({"retention", SnapshotCf::kExecutions, k, be16(3), RowScope::kPartition, 3});
  v1::QueuedRun run;
  run.set_execution_id(fork);
  run.set_tenant("acme");
  run.set_flow_id("limited");
  keys::queue_key(k, "acme", "limited", 9);
  out.push_back(
      {"queued_run", SnapshotCf::kExecutions, k, run.SerializeAsString(), RowScope::kPartition, 1});
  keys::applied_key(k, 3);
  out.push_back({"applied_marker", SnapshotCf::kExecutions, k, "\0\0\0\0\0\0\0\1",
                 RowScope::kAppliedMarker, 3});
  out.push_back({"flow_version", SnapshotCf::kFlows, std::string("acme\0f\0\0\0\0\1", 11), "v",
                 RowScope::kClusterWide, 0});
  keys::api_key_key(k, "hash");
  out.push_back({"api_key", SnapshotCf::kAuth, k, "v", RowScope::kClusterWide, 0});
  keys::tenant_key(k, "acme");
  out.push_back({"tenant", SnapshotCf::kAuth, k, "v", RowScope::kClusterWide, 0});
  keys::schedule_key(k, "acme", "f");
  out.push_back({"schedule", SnapshotCf::kAuth, k, "v", RowScope::kClusterWide, 0});
  out.push_back({"secret", SnapshotCf::kSecrets, std::string("sacme\0name", 10), "v",
                 RowScope::kClusterWide, 0});
  out.push_back({"node_audit_chain", SnapshotCf::kAudit, std::string("cacme\0\0\0\0\0\0\0\0\1", 14),
                 "v", RowScope::kNodeLocal, 0});
  out.push_back({"partition_audit_chain", SnapshotCf::kAudit,
                 "p" + be16(2) + std::string("acme\0\0\0\0\0\0\0\0\1", 13), "v",
                 RowScope::kPartition, 2});
  out.push_back({"audit_relay_counter", SnapshotCf::kAudit, "w" + be16(2) + "node-7", "v",
                 RowScope::kPartition, 2});
  keys::outbox_key(k, 1700000000500, id + "/12/0");
  out.push_back({"outbox", SnapshotCf::kOutbox, k, "v", RowScope::kPartition, 3});
  // An execution id holding '/': the id is what precedes the last two parts.
  const std::string slashed = "a/b/c";
  keys::outbox_key(k, 5, slashed + "/3/1");
  out.push_back(
      {"outbox_slashed_id", SnapshotCf::kOutbox, k, "v", RowScope::kPartition, part(slashed)});
  out.push_back({"segment_meta", SnapshotCf::kSegments, "m" + std::string(12, '\0'), "v",
                 RowScope::kNodeLocal, 0});
  out.push_back({"segment_batch", SnapshotCf::kSegments, "b" + std::string(20, '\0'), "v",
                 RowScope::kNodeLocal, 0});
  // Malformed: unknown kinds and rows too short for their kind.
  out.push_back(
      {"unknown_execution_row", SnapshotCf::kExecutions, "Zzz", "", RowScope::kMalformed, 0});
  out.push_back({"unknown_audit_row", SnapshotCf::kAudit, "Z", "", RowScope::kMalformed, 0});
  out.push_back({"short_event", SnapshotCf::kEvents, "\x01", "", RowScope::kMalformed, 0});
  out.push_back({"summary_without_id", SnapshotCf::kExecutions, "s", "", RowScope::kMalformed, 0});
  out.push_back(
      {"listing_without_nul", SnapshotCf::kExecutions, "lacme", "flow", RowScope::kMalformed, 0});
  out.push_back(
      {"fork_without_child", SnapshotCf::kExecutions, "f\x02id", "", RowScope::kMalformed, 0});
  out.push_back({"queued_run_unparsable", SnapshotCf::kExecutions, "qacme\0f\0", "\xff\xff",
                 RowScope::kMalformed, 0});
  out.push_back({"outbox_without_seq", SnapshotCf::kOutbox, "o" + std::string(8, '\0') + "id", "v",
                 RowScope::kMalformed, 0});
  return out;
}

// A failing case names its kind, not its bytes.
void PrintTo(const KindCase& c, std::ostream* os) {
  *os << c.name;
}

class ClassifyRow : public ::testing::TestWithParam<KindCase> {};

TEST_P(ClassifyRow, PlacesTheRowKind) {
  const KindCase& c = GetParam();
  const RowOwner owner = classify_row(c.cf, c.key, c.value, kPartOf);
  EXPECT_EQ(static_cast<int>(owner.scope), static_cast<int>(c.scope)) << owner.kind;
  if (c.scope == RowScope::kPartition || c.scope == RowScope::kAppliedMarker) {
    EXPECT_EQ(owner.partition, c.partition) << owner.kind;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryKind, ClassifyRow, ::testing::ValuesIn(kind_cases()),
                         [](const ::testing::TestParamInfo<KindCase>& info) {
                           return info.param.name;
                         });

// ---- round trips over real stores -----------------------------------------

std::string outbox_entry(const std::string& id) {
  v1::OutboxEntry entry;
  entry.set_id(id);
  entry.set_payload_json(R"({"n":1})");
  return entry.SerializeAsString();
}

// Batch `lsn` of partition p: every kind of row a partition's batch writes.
std::string batch_for(uint32_t p, uint64_t lsn) {
  std::vector<WriteRequest> requests;
  const std::string id = id_in(p, lsn * 10 + p);
  const std::string parent = id_in(p, lsn * 10 + p + 500);
  WriteRequest a = make_request(p, id, 1, 3, 40);
  a.summary = make_summary(id, "running", p, 3);
  a.created = true;
  a.idempotency_key =
      "idem-" + std::to_string(p) + "-" + std::to_string(lsn);  // keys are per partition
  a.parent_execution_id = parent;
  a.snapshot.emplace(2, "snapshot-bytes");
  a.outbox.push_back({1700000000500, id + "/1/0", outbox_entry(id + "/1/0")});
  a.audit.push_back({"p" + be16(p) + std::string("acme\0", 5) + std::to_string(lsn), "rec"});
  a.audit.push_back({"w" + be16(p) + "relay", std::to_string(lsn)});
  requests.push_back(std::move(a));
  if (lsn % 2 == 0) {  // an execution that ends: the retention entry
    const std::string done = id_in(p, lsn * 10 + p + 900);
    WriteRequest end = make_request(p, done, 1, 2);
    end.summary = make_summary(done, "completed", p, 2);
    end.summary->set_updated_ms(1700000009999 + static_cast<int64_t>(lsn));
    end.created = true;
    requests.push_back(std::move(end));
  }
  // A run queued behind its flow's limit.
  const std::string queued_id = id_in(p, lsn * 10 + p + 700);
  WriteRequest queued;
  queued.partition = p;
  queued.execution_id = queued_id;
  queued.summary = make_summary(queued_id, "queued", p, 0);
  queued.summary->set_flow_id("limited");
  v1::QueuedRun run;
  run.set_execution_id(queued_id);
  run.set_tenant("acme");
  run.set_flow_id("limited");
  run.set_queue_seq(lsn * 100 + p);
  queued.queued_run = run;
  requests.push_back(std::move(queued));
  auto bytes = encode(p, lsn, 1, requests);
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  return bytes.ok() ? std::move(bytes).value() : std::string();
}

void apply(Store& store, uint32_t p, uint64_t lsn) {
  Status st = apply_committed(store, p, lsn, batch_for(p, lsn));
  ASSERT_TRUE(st.is_ok()) << st.to_string();
}

// Rows that are not any partition's: cluster-wide and node-local ones.
void put_foreign_rows(Store& store) {
  const internal::Db& db = raw(store);
  rocksdb::WriteBatch b;
  ASSERT_TRUE(b.Put(db.flows, std::string("acme\0f\0\0\0\0\1", 11), "flow").ok());
  ASSERT_TRUE(b.Put(db.auth, "tacme", "tenant").ok());
  ASSERT_TRUE(b.Put(db.secrets, "dacme", "key").ok());
  ASSERT_TRUE(b.Put(db.audit, std::string("cacme\0\0\0\0\0\0\0\0\1", 14), "own").ok());
  ASSERT_TRUE(b.Put(db.segments, "m" + std::string(12, '\0'), "meta").ok());
  ASSERT_TRUE(db.rocks->Write(rocksdb::WriteOptions(), &b).ok());
}

using Rows = std::map<std::pair<int, std::string>, std::string>;

const std::vector<SnapshotCf> kAllCfs = {
    SnapshotCf::kEvents, SnapshotCf::kExecutions, SnapshotCf::kFlows,
    SnapshotCf::kAuth,   SnapshotCf::kSnapshots,  SnapshotCf::kSecrets,
    SnapshotCf::kAudit,  SnapshotCf::kOutbox,     SnapshotCf::kSegments};

rocksdb::ColumnFamilyHandle* cf_handle(const internal::Db& db, SnapshotCf cf) {
  switch (cf) {
    case SnapshotCf::kEvents: return db.events;
    case SnapshotCf::kExecutions: return db.executions;
    case SnapshotCf::kFlows: return db.flows;
    case SnapshotCf::kAuth: return db.auth;
    case SnapshotCf::kSnapshots: return db.snapshots;
    case SnapshotCf::kSecrets: return db.secrets;
    case SnapshotCf::kAudit: return db.audit;
    case SnapshotCf::kOutbox: return db.outbox;
    case SnapshotCf::kSegments: return db.segments;
  }
  return nullptr;
}

// Every row of the store; with `only`, just the rows classify_row gives to
// that partition (its applied marker included).
Rows rows_of(const Store& store, std::optional<uint32_t> only = std::nullopt) {
  const internal::Db& db = raw(store);
  Rows out;
  for (SnapshotCf cf : kAllCfs) {
    rocksdb::ReadOptions ro;
    ro.total_order_seek = true;
    std::unique_ptr<rocksdb::Iterator> it(db.rocks->NewIterator(ro, cf_handle(db, cf)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string key = it->key().ToString();
      const std::string value = it->value().ToString();
      if (only) {
        const RowOwner owner = classify_row(cf, key, value, kPartOf);
        const bool mine =
            (owner.scope == RowScope::kPartition || owner.scope == RowScope::kAppliedMarker) &&
            owner.partition == *only;
        if (!mine) continue;
      }
      out[{static_cast<int>(cf), key}] = value;
    }
    EXPECT_TRUE(it->status().ok());
  }
  return out;
}

// Exports p of `from` in chunks of at most `max_bytes` into `to`.
uint64_t transfer(const Store& from, Store& to, uint32_t p, size_t max_bytes,
                  size_t* chunks = nullptr) {
  auto exp = PartitionSnapshotExport::open(from, p, kPartOf);
  EXPECT_TRUE(exp.ok()) << exp.status().to_string();
  if (!exp.ok()) return 0;
  auto imp = PartitionSnapshotImport::begin(to, p, kPartOf);
  EXPECT_TRUE(imp.ok()) << imp.status().to_string();
  if (!imp.ok()) return 0;
  size_t n = 0;
  for (;;) {
    auto chunk = (*exp)->next_chunk(max_bytes);
    EXPECT_TRUE(chunk.ok()) << chunk.status().to_string();
    if (!chunk.ok() || !chunk->has_value()) break;
    ++n;
    Status st = (*imp)->add(**chunk);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
  }
  if (chunks != nullptr) *chunks = n;
  auto lsn = (*imp)->finish();
  EXPECT_TRUE(lsn.ok()) << lsn.status().to_string();
  return lsn.ok() ? *lsn : 0;
}

TEST(PartitionSnapshot, RoundTripCopiesExactlyThePartitionsRows) {
  ScopedDir dir;
  auto a = open_store(dir.sub("a"));
  auto b = open_store(dir.sub("b"));
  ASSERT_TRUE(a && b);
  for (uint32_t p = 0; p < kPartitions; ++p) {
    for (uint64_t lsn = 1; lsn <= 5 + p; ++lsn) apply(*a, p, lsn);
  }
  put_foreign_rows(*a);
  constexpr uint32_t kP = 2;
  // The oracle, independent of the classifier: a store that applied P's
  // batches and nothing else.
  auto only = open_store(dir.sub("only"));
  ASSERT_TRUE(only);
  for (uint64_t lsn = 1; lsn <= 5 + kP; ++lsn) apply(*only, kP, lsn);
  size_t chunks = 0;
  EXPECT_EQ(transfer(*a, *b, kP, 1024, &chunks), 5u + kP);
  EXPECT_GT(chunks, 3u);  // small chunks: the resume between chunks is exercised
  const Rows want = rows_of(*only);
  const Rows got = rows_of(*b);  // everything b holds
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want);
  for (const auto& [k, v] : want) {
    auto it = got.find(k);
    if (it == got.end()) {
      ADD_FAILURE() << "missing row cf " << k.first << " kind "
                    << classify_row(static_cast<SnapshotCf>(k.first), k.second, v, kPartOf).kind;
    } else {
      EXPECT_EQ(it->second, v);
    }
  }
  // Every kind of a partition's row made it (the test data has them all).
  std::map<std::string, int> kinds;
  for (const auto& [k, v] : got) {
    ++kinds[std::string(classify_row(static_cast<SnapshotCf>(k.first), k.second, v, kPartOf).kind)];
  }
  for (const char* kind :
       {"event", "snapshot", "summary", "active marker", "listing", "idempotency key", "fork",
        "retention entry", "queued run", "applied marker", "partition audit chain",
        "audit relay counter", "callback owed"}) {
    EXPECT_GT(kinds[kind], 0) << kind;
  }
  auto applied = applied_lsn(*b, kP);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(*applied, 5u + kP);
  // The importer continues from the snapshot's lsn like any replica.
  Status st = apply_committed(*b, kP, 5 + kP + 1, batch_for(kP, 5 + kP + 1));
  EXPECT_TRUE(st.is_ok()) << st.to_string();
}

TEST(PartitionSnapshot, ExportIsOneViewWhileBatchesApply) {
  ScopedDir dir;
  auto a = open_store(dir.sub("a"));
  auto b = open_store(dir.sub("b"));
  ASSERT_TRUE(a && b);
  for (uint64_t lsn = 1; lsn <= 4; ++lsn) apply(*a, 1, lsn);
  const Rows before = rows_of(*a) /* a holds only partition 1 */;
  auto exp = PartitionSnapshotExport::open(*a, 1, kPartOf);
  ASSERT_TRUE(exp.ok());
  EXPECT_EQ((*exp)->lsn(), 4u);
  auto imp = PartitionSnapshotImport::begin(*b, 1, kPartOf);
  ASSERT_TRUE(imp.ok());
  auto first = (*exp)->next_chunk(600);
  ASSERT_TRUE(first.ok() && first->has_value());
  ASSERT_TRUE((*imp)->add(**first).is_ok());
  // Batches applied after open() are not in the snapshot.
  for (uint64_t lsn = 5; lsn <= 7; ++lsn) apply(*a, 1, lsn);
  for (;;) {
    auto chunk = (*exp)->next_chunk(600);
    ASSERT_TRUE(chunk.ok());
    if (!chunk->has_value()) break;
    ASSERT_TRUE((*imp)->add(**chunk).is_ok());
  }
  auto lsn = (*imp)->finish();
  ASSERT_TRUE(lsn.ok());
  EXPECT_EQ(*lsn, 4u);
  EXPECT_TRUE(rows_of(*b) == before);
}

TEST(PartitionSnapshot, InterruptedImportIsIncompleteAndRedone) {
  ScopedDir dir;
  auto a = open_store(dir.sub("a"));
  ASSERT_TRUE(a);
  for (uint64_t lsn = 1; lsn <= 6; ++lsn) apply(*a, 0, lsn);
  {
    auto b = open_store(dir.sub("b"));
    ASSERT_TRUE(b);
    auto exp = PartitionSnapshotExport::open(*a, 0, kPartOf);
    ASSERT_TRUE(exp.ok());
    auto imp = PartitionSnapshotImport::begin(*b, 0, kPartOf);
    ASSERT_TRUE(imp.ok());
    auto chunk = (*exp)->next_chunk(800);
    ASSERT_TRUE(chunk.ok() && chunk->has_value());
    ASSERT_TRUE((*imp)->add(**chunk).is_ok());
    // finish() before the last chunk is refused.
    EXPECT_FALSE((*imp)->finish().ok());
    // ... and the node stops here (the store closes with the import half done).
  }
  auto b = open_store(dir.sub("b"));
  ASSERT_TRUE(b);
  EXPECT_FALSE(rows_of(*b, 0).empty());  // rows ...
  auto applied = applied_lsn(*b, 0);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(*applied, 0u);  // ... but no marker: incomplete
  // Leftovers that a full import would not write again must not survive:
  // a row of partition 0 that is not in the snapshot.
  const std::string stray = id_in(0, 999);
  std::string k;
  keys::summary_key(k, stray);
  ASSERT_TRUE(raw(*b).rocks->Put(rocksdb::WriteOptions(), raw(*b).executions, k, "stray").ok());
  EXPECT_EQ(transfer(*a, *b, 0, 800), 6u);
  EXPECT_TRUE(rows_of(*b) == rows_of(*a));
  // A store holding the partition (a marker) refuses a snapshot: the
  // marker never moves back, nor is a state mixed with another.
  auto again = PartitionSnapshotImport::begin(*b, 0, kPartOf);
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(again.status().is(Errc::kInvalidArgument)) << again.status().to_string();
}

TEST(PartitionSnapshot, RefusesDamagedReorderedAndForeignChunks) {
  ScopedDir dir;
  auto a = open_store(dir.sub("a"));
  auto b = open_store(dir.sub("b"));
  ASSERT_TRUE(a && b);
  for (uint32_t p = 0; p < 2; ++p) {
    for (uint64_t lsn = 1; lsn <= 3; ++lsn) apply(*a, p, lsn);
  }
  auto chunks_of = [&](uint32_t p) {
    std::vector<std::string> out;
    auto exp = PartitionSnapshotExport::open(*a, p, kPartOf);
    EXPECT_TRUE(exp.ok());
    for (;;) {
      auto c = (*exp)->next_chunk(700);
      EXPECT_TRUE(c.ok());
      if (!c.ok() || !c->has_value()) break;
      out.push_back(std::move(**c));
    }
    return out;
  };
  const std::vector<std::string> p0 = chunks_of(0);
  const std::vector<std::string> p1 = chunks_of(1);
  ASSERT_GE(p0.size(), 2u);
  auto imp = PartitionSnapshotImport::begin(*b, 0, kPartOf);
  ASSERT_TRUE(imp.ok());
  auto corrupt = [](const Status& st) { return st.is(StorageErrc::kCorrupt); };
  // Every single flipped byte is caught (CRC), and so is truncation.
  for (size_t i = 0; i < p0[0].size(); i += 7) {
    std::string bad = p0[0];
    bad[i] = static_cast<char>(bad[i] ^ 0x40);
    EXPECT_TRUE(corrupt((*imp)->add(bad))) << "byte " << i;
  }
  EXPECT_TRUE(corrupt((*imp)->add(std::string_view(p0[0]).substr(0, p0[0].size() - 1))));
  EXPECT_TRUE(corrupt((*imp)->add(p0[1])));  // out of order
  EXPECT_TRUE(corrupt((*imp)->add(p1[0])));  // another partition's
  // A well-formed chunk claiming partition 0 but carrying a row of 1.
  {
    auto info = inspect_chunk(p1[0]);
    ASSERT_TRUE(info.ok());
    std::string forged = p1[0].substr(0, p1[0].size() - 4);
    std::string p32;
    keys::put_be32(p32, 0);
    forged.replace(4, 4, p32);
    keys::put_be32(forged, crc32c(forged));
    auto forged_info = inspect_chunk(forged);
    ASSERT_TRUE(forged_info.ok());
    EXPECT_EQ(forged_info->partition, 0u);
    EXPECT_TRUE(corrupt((*imp)->add(forged)));
  }
  // Nothing was written by the refused chunks; the right ones still work.
  EXPECT_TRUE(rows_of(*b).empty());
  for (const std::string& c : p0) ASSERT_TRUE((*imp)->add(c).is_ok());
  EXPECT_TRUE(corrupt((*imp)->add(p0[0])));  // after the last
  auto lsn = (*imp)->finish();
  ASSERT_TRUE(lsn.ok());
  EXPECT_EQ(*lsn, 3u);
  EXPECT_TRUE(rows_of(*b) == rows_of(*a, 0));
}

TEST(PartitionSnapshot, ExportRefusesNothingAppliedAndMalformedRows) {
  ScopedDir dir;
  auto a = open_store(dir.sub("a"));
  ASSERT_TRUE(a);
  auto none = PartitionSnapshotExport::open(*a, 1, kPartOf);
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(none.status().is(Errc::kInvalidArgument)) << none.status().to_string();
  apply(*a, 1, 1);
  ASSERT_TRUE(raw(*a).rocks->Put(rocksdb::WriteOptions(), raw(*a).executions, "Zunknown", "").ok());
  auto exp = PartitionSnapshotExport::open(*a, 1, kPartOf);
  ASSERT_TRUE(exp.ok());
  Status failed;
  for (int i = 0; i < 1000; ++i) {
    auto c = (*exp)->next_chunk();
    if (!c.ok()) {
      failed = c.status();
      break;
    }
    if (!c->has_value()) break;
  }
  EXPECT_TRUE(failed.is(StorageErrc::kCorrupt)) << failed.to_string();
}

}  // namespace
}  // namespace yantra::storage
