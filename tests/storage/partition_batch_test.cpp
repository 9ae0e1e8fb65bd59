// Replicated partition batches (storage/partition_batch.hpp) against a real
// RocksDB: the codec keeps every field of every WriteRequest; damaged,
// truncated, foreign and random bytes are refused as values (a bounded
// randomized loop, which the sanitizer builds run too); and the central
// property of the replicated log: the same requests written through
// LogWriter and through encode -> decode -> apply_committed leave identical
// column families (the applied-lsn marker aside). Then the applied position:
// it survives a reopen, replay is a no-op, a gap is refused, and a store
// that refuses writes refuses batches too.
#include "storage/partition_batch.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/storage_errc.hpp"
#include "storage/internal/keys.hpp"
#include "tests/storage/test_support.hpp"
#include "yantra/v1/replication.pb.h"

namespace yantra::storage {
namespace {

using testing::make_request;
using testing::make_summary;
using testing::open_store;
using testing::raw;
using testing::ScopedDir;
using testing::Waiter;

constexpr uint32_t kPartition = 5;

// Execution ids and keys are opaque bytes: a 0x00 and an invalid UTF-8
// byte must survive the codec (proto3 `string` fields would refuse them).
const std::string kBinaryId = std::string("ex\0\xff-b", 6);

std::string outbox_entry(const std::string& id, int64_t due_ms) {
  v1::OutboxEntry entry;
  entry.set_id(id);
  entry.set_next_ms(due_ms);
  entry.set_payload_json(R"({"n":1})");
  return entry.SerializeAsString();
}

// Requests that together use every field, in an order where later ones
// overwrite rows of earlier ones (the order of rows must be kept).
std::vector<WriteRequest> every_field_requests() {
  std::vector<WriteRequest> out;

  // A fork created from a queued run: every field set.
  WriteRequest a = make_request(kPartition, "exec-a", 1, 3, 40);
  a.summary = make_summary("exec-a", "running", kPartition, 3);
  a.summary->set_created_ms(1700000000001);
  a.summary->set_updated_ms(1700000000002);
  a.created = true;
  a.idempotency_key = std::string("idem\0\xfe", 6);
  a.parent_execution_id = "parent-x";
  a.snapshot.emplace(2, "snapshot-bytes-after-2");
  a.delete_key = "q-queued-row-of-exec-a";
  a.outbox.push_back({1700000000500, "exec-a/1/0", outbox_entry("exec-a/1/0", 1700000000500)});
  a.outbox.push_back({-5, "exec-a/2/0", outbox_entry("exec-a/2/0", -5)});  // key clamps to 0
  out.push_back(std::move(a));

  // Events only: no summary, nothing else. (The events' own text stays
  // UTF-8: make_request would put the id in a proto3 string.)
  WriteRequest binary = make_request(kPartition, kBinaryId, 1, 2);
  for (auto& [seq, bytes] : binary.events) bytes = testing::event_bytes(seq, "binary-id");
  out.push_back(std::move(binary));

  // exec-a ends: the active marker goes, the retention entry comes.
  WriteRequest end = make_request(kPartition, "exec-a", 4, 1);
  end.summary = make_summary("exec-a", "completed", kPartition, 4);
  end.summary->set_updated_ms(1700000009999);
  out.push_back(std::move(end));

  // A summary present but with every field default (presence matters).
  WriteRequest empty_summary = make_request(kPartition, "exec-c", 1, 1);
  empty_summary.summary = v1::ExecutionSummary();
  out.push_back(std::move(empty_summary));

  // No events at all, only a delete (a queued run cancelled with its row).
  WriteRequest only_delete;
  only_delete.partition = kPartition;
  only_delete.execution_id = "exec-d";
  only_delete.delete_key = "q-other-row";
  out.push_back(std::move(only_delete));

  // A run queued behind its flow's limit (since 0.7): its queue row, its
  // "queued" summary without an active marker, listing and idempotency rows.
  WriteRequest queued;
  queued.partition = kPartition;
  queued.execution_id = "exec-q";
  queued.summary = make_summary("exec-q", "queued", kPartition, 0);
  queued.summary->set_tenant("acme");
  queued.summary->set_flow_id("limited");
  queued.idempotency_key = "idem-q";
  v1::QueuedRun run;
  run.set_execution_id("exec-q");
  run.set_tenant("acme");
  run.set_flow_id("limited");
  run.set_input_json("{}");
  run.set_idempotency_key("idem-q");
  run.set_queue_seq(17);
  queued.queued_run = run;
  out.push_back(std::move(queued));
  return out;
}

void expect_same_request(const WriteRequest& want, const WriteRequest& got, size_t i) {
  SCOPED_TRACE("request " + std::to_string(i));
  EXPECT_EQ(got.partition, want.partition);
  EXPECT_EQ(got.execution_id, want.execution_id);
  EXPECT_EQ(got.events, want.events);
  ASSERT_EQ(got.summary.has_value(), want.summary.has_value());
  if (want.summary) {
    EXPECT_EQ(got.summary->SerializeAsString(), want.summary->SerializeAsString());
  }
  EXPECT_EQ(got.created, want.created);
  EXPECT_EQ(got.idempotency_key, want.idempotency_key);
  EXPECT_EQ(got.parent_execution_id, want.parent_execution_id);
  EXPECT_EQ(got.snapshot, want.snapshot);
  EXPECT_EQ(got.delete_key, want.delete_key);
  ASSERT_EQ(got.queued_run.has_value(), want.queued_run.has_value());
  if (want.queued_run) {
    EXPECT_EQ(got.queued_run->SerializeAsString(), want.queued_run->SerializeAsString());
  }
  ASSERT_EQ(got.outbox.size(), want.outbox.size());
  for (size_t r = 0; r < want.outbox.size(); ++r) {
    EXPECT_EQ(got.outbox[r].due_ms, want.outbox[r].due_ms);
    EXPECT_EQ(got.outbox[r].id, want.outbox[r].id);
    EXPECT_EQ(got.outbox[r].entry, want.outbox[r].entry);
  }
}

std::string encoded(uint32_t partition, uint64_t lsn, uint64_t epoch,
                    const std::vector<WriteRequest>& requests) {
  auto bytes = encode(partition, lsn, epoch, requests);
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  return bytes.ok() ? *bytes : std::string();
}

// `body` closed with a valid checksum trailer: for batches that pass the
// CRC but not the validation behind it.
std::string framed(std::string body) {
  const uint32_t crc = crc32c(body);
  body.push_back(static_cast<char>((15 << 3) | 5));
  for (int shift = 0; shift < 32; shift += 8) body.push_back(static_cast<char>(crc >> shift));
  return body;
}

std::string framed(const v1::PartitionBatch& message) {
  return framed(message.SerializeAsString());
}

// Every key and value of every column family; the applied markers ("a"
// rows of the executions CF) are left out when asked.
using Contents = std::map<std::string, std::map<std::string, std::string>>;

Contents contents(const Store& store, bool without_applied_markers) {
  const internal::Db& db = raw(store);
  const std::vector<std::pair<std::string, rocksdb::ColumnFamilyHandle*>> families = {
      {"events", db.events}, {"executions", db.executions}, {"flows", db.flows},
      {"auth", db.auth},     {"snapshots", db.snapshots},   {"secrets", db.secrets},
      {"audit", db.audit},   {"outbox", db.outbox}};
  Contents out;
  for (const auto& [name, cf] : families) {
    rocksdb::ReadOptions options;
    options.total_order_seek = true;  // every key, whatever the prefix extractor
    std::unique_ptr<rocksdb::Iterator> it(db.rocks->NewIterator(options, cf));
    auto& rows = out[name];
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string key = it->key().ToString();
      if (without_applied_markers && name == "executions" && key.size() == 3 && key[0] == 'a') {
        continue;
      }
      rows[key] = it->value().ToString();
    }
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  }
  return out;
}

// Writes `requests` through one LogWriter, in order, and waits for all.
void write_through_log_writer(Store& store, std::vector<WriteRequest> requests) {
  Waiter waiter;
  const uint64_t count = requests.size();
  {
    LogWriter writer(store, kPartition);
    for (auto& request : requests) {
      writer.append(std::move(request), [&waiter](const Status& s) {
        EXPECT_TRUE(s.is_ok()) << s.to_string();
        waiter.arrive();
      });
    }
    ASSERT_TRUE(waiter.wait(count));
  }
}

// Applies `requests` as consecutive batches of the given sizes, from lsn 1.
void write_through_batches(Store& store, const std::vector<WriteRequest>& requests,
                           const std::vector<size_t>& sizes) {
  size_t next = 0;
  uint64_t lsn = 0;
  for (size_t size : sizes) {
    std::vector<WriteRequest> part(requests.begin() + static_cast<std::ptrdiff_t>(next),
                                   requests.begin() + static_cast<std::ptrdiff_t>(next + size));
    next += size;
    ++lsn;
    const Status st = apply_committed(store, kPartition, lsn, encoded(kPartition, lsn, 7, part));
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
  ASSERT_EQ(next, requests.size());
  auto applied = applied_lsn(store, kPartition);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(*applied, lsn);
}

// Rows both stores hold before the requests (the queue rows the requests
// delete), written behind the stores' backs.
void seed_queue_rows(Store& store) {
  const internal::Db& db = raw(store);
  for (const char* key : {"q-queued-row-of-exec-a", "q-other-row", "q-kept-row"}) {
    ASSERT_TRUE(db.rocks->Put(rocksdb::WriteOptions(), db.executions, key, "queued").ok());
  }
}

// ---- codec ----

TEST(PartitionBatchCodec, RoundTripKeepsEveryField) {
  const std::vector<WriteRequest> requests = every_field_requests();
  const std::string bytes = encoded(kPartition, 42, 9, requests);
  auto batch = decode(bytes);
  ASSERT_TRUE(batch.ok()) << batch.status().to_string();
  EXPECT_EQ(batch->partition, kPartition);
  EXPECT_EQ(batch->lsn, 42u);
  EXPECT_EQ(batch->epoch, 9u);
  ASSERT_EQ(batch->requests.size(), requests.size());
  ASSERT_EQ(batch->summaries.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    expect_same_request(requests[i], batch->requests[i], i);
    // The writer's serialized summary travels as is.
    EXPECT_EQ(batch->summaries[i],
              requests[i].summary ? requests[i].summary->SerializeAsString() : std::string());
  }
  // The empty-but-present summary is still present.
  EXPECT_TRUE(batch->requests[3].summary.has_value());
  EXPECT_FALSE(batch->requests[1].summary.has_value());

  // An empty batch is a batch too (a leader's no-op at the start of its
  // epoch, say).
  auto empty = decode(encoded(kPartition, 1, 1, {}));
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_TRUE(empty->requests.empty());
}

TEST(PartitionBatchCodec, TheTrailerIsACrc32cOfTheBytesBeforeIt) {
  // The standard check value of CRC-32C (Castagnoli).
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  const std::string bytes = encoded(kPartition, 3, 2, every_field_requests());
  ASSERT_GT(bytes.size(), 5u);
  EXPECT_EQ(framed(bytes.substr(0, bytes.size() - 5)), bytes);
  // A plain protobuf parser reads the whole thing, trailer included.
  v1::PartitionBatch message;
  ASSERT_TRUE(message.ParseFromString(bytes));
  EXPECT_EQ(message.crc32c(), crc32c(std::string_view(bytes).substr(0, bytes.size() - 5)));
  // The lowest format that carries everything: the queued run needs 3.
  EXPECT_EQ(message.format(), kPartitionBatchFormatQueue);
  EXPECT_EQ(message.lsn(), 3u);
  std::vector<WriteRequest> plain = every_field_requests();
  plain.pop_back();  // the queued run
  ASSERT_TRUE(message.ParseFromString(encoded(kPartition, 3, 2, plain)));
  EXPECT_EQ(message.format(), kPartitionBatchFormat);
}

TEST(PartitionBatchCodec, EncodeRefusesWhatNoReplicaCouldApply) {
  auto refused = [](uint32_t partition, uint64_t lsn, std::vector<WriteRequest> requests) {
    auto bytes = encode(partition, lsn, 1, requests);
    EXPECT_FALSE(bytes.ok());
    if (!bytes.ok()) {
      EXPECT_TRUE(bytes.status().is(Errc::kInvalidArgument)) << bytes.status().to_string();
    }
  };
  refused(kPartition, 0, {});                                    // lsns start at 1
  refused(0x10000, 1, {});                                       // partition of 16 bits
  refused(kPartition, 1, {make_request(kPartition, "", 1, 1)});  // empty execution id
  refused(kPartition, 1, {make_request(kPartition, std::string(256, 'x'), 1, 1)});
  refused(kPartition, 1, {make_request(kPartition + 1, "exec", 1, 1)});  // another partition
  WriteRequest no_outbox_id = make_request(kPartition, "exec", 1, 1);
  no_outbox_id.outbox.push_back({1, "", "entry"});
  refused(kPartition, 1, {make_request(kPartition, "ok", 1, 1), no_outbox_id});
}

TEST(PartitionBatchCodec, DecodeRefusesEveryTruncationAndEveryBitFlip) {
  const std::string bytes = encoded(kPartition, 11, 4, every_field_requests());
  for (size_t size = 0; size < bytes.size(); ++size) {
    auto batch = decode(std::string_view(bytes).substr(0, size));
    ASSERT_FALSE(batch.ok()) << "cut to " << size << " bytes";
    EXPECT_TRUE(batch.status().is(StorageErrc::kCorrupt)) << batch.status().to_string();
  }
  for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    std::string flipped = bytes;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    auto batch = decode(flipped);
    ASSERT_FALSE(batch.ok()) << "bit " << bit;
    EXPECT_TRUE(batch.status().is(StorageErrc::kCorrupt)) << batch.status().to_string();
  }
  // Appended bytes are refused too (the trailer must end the batch).
  EXPECT_FALSE(decode(bytes + std::string(1, '\0')).ok());
  EXPECT_FALSE(decode(bytes + bytes).ok());
}

TEST(PartitionBatchCodec, DecodeRefusesWhatPassesTheChecksumButIsNotABatch) {
  v1::PartitionBatch good;
  std::vector<WriteRequest> requests = every_field_requests();
  requests.pop_back();  // the queued run (format 3, below): a format 1 batch
  ASSERT_TRUE(good.ParseFromString(encoded(kPartition, 5, 1, requests)));
  good.clear_crc32c();
  ASSERT_TRUE(decode(framed(good)).ok());  // the helper frames like encode

  auto corrupt = [](const std::string& bytes, const char* what) {
    auto batch = decode(bytes);
    ASSERT_FALSE(batch.ok()) << what;
    EXPECT_TRUE(batch.status().is(StorageErrc::kCorrupt)) << what;
  };
  corrupt(framed(std::string("\xff\xff\xff\xff", 4)), "not protobuf");
  corrupt(framed(std::string()), "format 0: an empty message");
  v1::PartitionBatch m = good;
  m.set_format(kPartitionBatchFormatQueue + 1);
  corrupt(framed(m), "a format from the future");
  // Audit rows (since 0.6) only in a format 2 batch: a writer that put them
  // in format 1 would have them dropped by older readers.
  m = good;
  v1::BatchAuditRow& row = *m.mutable_requests(0)->add_audit();
  row.set_key(std::string("p\0\x05", 3) + "acme" + std::string(1, 0) + std::string(8, '\1'));
  row.set_value("record");
  corrupt(framed(m), "audit rows in a format 1 batch");
  m.set_format(kPartitionBatchFormatAudit);
  ASSERT_TRUE(decode(framed(m)).ok());
  // A queued run (since 0.7) only in a format 3 batch, and it must parse.
  m = good;
  v1::QueuedRun run;
  run.set_execution_id(m.requests(0).execution_id());
  m.mutable_requests(0)->set_queued_run(run.SerializeAsString());
  corrupt(framed(m), "a queued run in a format 1 batch");
  m.set_format(kPartitionBatchFormatAudit);
  corrupt(framed(m), "a queued run in a format 2 batch");
  m.set_format(kPartitionBatchFormatQueue);
  m.mutable_requests(0)->set_queued_run("\xff\xff");
  corrupt(framed(m), "a queued run that does not parse");
  m = good;
  m.set_lsn(0);
  corrupt(framed(m), "lsn 0");
  m = good;
  m.set_partition(0x10000);
  corrupt(framed(m), "partition above 16 bits");
  m = good;
  m.mutable_requests(1)->set_partition(kPartition + 1);
  corrupt(framed(m), "a request of another partition");
  m = good;
  m.mutable_requests(0)->clear_execution_id();
  corrupt(framed(m), "an empty execution id");
  m = good;
  m.mutable_requests(0)->mutable_outbox(1)->clear_id();
  corrupt(framed(m), "an outbox row without id");
  m = good;
  m.mutable_requests(0)->set_summary("\xff\xff\xff");
  corrupt(framed(m), "a summary that does not parse");
}

// The fuzz-style loop: mutations of a real batch (bytes overwritten,
// inserted, erased, flipped) and random bytes, both as they are (the CRC
// must refuse them) and re-framed with a valid CRC (the parser and the
// validation behind it must refuse them or decode them into a batch that
// passes validation). Never a crash; under ASan/UBSan never a report.
TEST(PartitionBatchCodec, RandomizedMutationsAreValuesNeverCrashes) {
  const std::string bytes = encoded(kPartition, 11, 4, every_field_requests());
  const std::string body = bytes.substr(0, bytes.size() - 5);
  std::mt19937_64 rng(20261207);
  auto below = [&rng](size_t n) { return static_cast<size_t>(rng() % n); };
  int refused_by_crc = 0;
  int decoded_after_reframing = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string mutated = (round % 4 == 3) ? std::string() : body;
    const int edits = 1 + static_cast<int>(below(4));
    for (int e = 0; e < edits; ++e) {
      switch (round % 4) {
        case 0:  // overwrite a byte
          if (!mutated.empty()) mutated[below(mutated.size())] = static_cast<char>(rng());
          break;
        case 1:  // insert a few bytes
          mutated.insert(below(mutated.size() + 1),
                         std::string(1 + below(8), static_cast<char>(rng())));
          break;
        case 2:  // erase a few bytes
          if (!mutated.empty()) mutated.erase(below(mutated.size()), 1 + below(8));
          break;
        case 3:  // random bytes
          for (size_t n = below(64); n > 0; --n) mutated.push_back(static_cast<char>(rng()));
          break;
      }
    }
    if (mutated == body) continue;
    // As is (its old trailer, or none): the checksum refuses it.
    const std::string with_old_trailer = mutated + bytes.substr(body.size());
    auto as_is = decode(with_old_trailer);
    ASSERT_FALSE(as_is.ok()) << "round " << round;
    EXPECT_TRUE(as_is.status().is(StorageErrc::kCorrupt));
    ++refused_by_crc;
    // Re-framed: whatever decodes must be a batch that passes validation.
    auto reframed = decode(framed(mutated));
    if (reframed.ok()) {
      ++decoded_after_reframing;
      EXPECT_LE(reframed->partition, 0xFFFFu);
      EXPECT_GE(reframed->lsn, 1u);
      for (const WriteRequest& r : reframed->requests) {
        EXPECT_EQ(r.partition, reframed->partition);
        EXPECT_FALSE(r.execution_id.empty());
        EXPECT_LE(r.execution_id.size(), 255u);
      }
    } else {
      EXPECT_TRUE(reframed.status().is(StorageErrc::kCorrupt)) << reframed.status().to_string();
    }
  }
  EXPECT_GT(refused_by_crc, 1900);
  // Single-byte edits of payload bytes still parse: the validation path ran.
  EXPECT_GT(decoded_after_reframing, 0);
}

// ---- apply: the same state as LogWriter ----

TEST(PartitionBatchApply, SameColumnFamiliesAsLogWriter) {
  ScopedDir dir;
  auto local = open_store(dir.sub("local"));
  auto replica = open_store(dir.sub("replica"));
  ASSERT_TRUE(local && replica);
  seed_queue_rows(*local);
  seed_queue_rows(*replica);

  write_through_log_writer(*local, every_field_requests());
  write_through_batches(*replica, every_field_requests(), {2, 1, 2, 1});

  const Contents want = contents(*local, false);
  const Contents got = contents(*replica, true);
  EXPECT_EQ(got, want);
  // Not vacuous: every kind of row is there, and the deletes happened.
  EXPECT_EQ(want.at("events").size(), 3u + 1u + 2u + 1u);
  EXPECT_EQ(want.at("snapshots").size(), 1u);
  EXPECT_EQ(want.at("outbox").size(), 2u);
  EXPECT_EQ(want.at("executions").count("q-kept-row"), 1u);
  EXPECT_EQ(want.at("executions").count("q-other-row"), 0u);
  EXPECT_EQ(want.at("executions").count("q-queued-row-of-exec-a"), 0u);
  std::string queue_row;
  keys::queue_key(queue_row, "acme", "limited", 17);
  EXPECT_EQ(want.at("executions").count(queue_row), 1u);
  std::string active;
  keys::active_key(active, kPartition, "exec-q");
  EXPECT_EQ(want.at("executions").count(active), 0u);  // queued: not active
  // And only the marker differs.
  const Contents replica_all = contents(*replica, false);
  std::string marker;
  keys::applied_key(marker, kPartition);
  EXPECT_EQ(replica_all.at("executions").size(), want.at("executions").size() + 1);
  EXPECT_EQ(replica_all.at("executions").count(marker), 1u);
}

// Many executions over many requests, batched at random, against LogWriter
// fed from several threads (whose batches form however they form).
TEST(PartitionBatchApply, SameColumnFamiliesAsLogWriterUnderARandomWorkload) {
  std::mt19937_64 rng(7);
  std::vector<WriteRequest> requests;
  std::map<std::string, uint64_t> next_seq;
  for (int i = 0; i < 300; ++i) {
    const std::string id = "exec-" + std::to_string(rng() % 40);
    const bool first = next_seq.find(id) == next_seq.end();
    uint64_t& seq = next_seq.try_emplace(id, 1).first->second;
    const int count = static_cast<int>(rng() % 4);
    WriteRequest r = make_request(kPartition, id, seq, count, rng() % 200);
    seq += static_cast<uint64_t>(count);
    if (first || rng() % 3 == 0) {
      const bool ends = !first && rng() % 5 == 0;
      r.summary = make_summary(id, ends ? "failed" : "running", kPartition, seq - 1);
      r.summary->set_updated_ms(static_cast<int64_t>(1700000000000 + i));
      r.created = first;
      if (first && rng() % 2 == 0) r.idempotency_key = "k-" + id;
    }
    if (rng() % 7 == 0) r.snapshot.emplace(seq - 1, "snap-" + std::to_string(i));
    if (rng() % 5 == 0) {
      const std::string oid = id + "/" + std::to_string(seq) + "/0";
      r.outbox.push_back({static_cast<int64_t>(rng() % 100000), oid, outbox_entry(oid, 0)});
    }
    requests.push_back(std::move(r));
  }
  std::vector<size_t> sizes;
  for (size_t left = requests.size(); left > 0;) {
    const size_t n = std::min<size_t>(left, 1 + rng() % 30);
    sizes.push_back(n);
    left -= n;
  }

  ScopedDir dir;
  auto local = open_store(dir.sub("local"));
  auto replica = open_store(dir.sub("replica"), Durability::kAsync);  // durability changes no row
  ASSERT_TRUE(local && replica);
  write_through_log_writer(*local, requests);
  write_through_batches(*replica, requests, sizes);
  EXPECT_EQ(contents(*replica, true), contents(*local, false));
}

// ---- the applied position ----

class AppliedLsnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = open_store(dir_.path());
    ASSERT_TRUE(store_);
    requests_ = every_field_requests();
    for (uint64_t lsn = 1; lsn <= 3; ++lsn) {
      // Batch n holds request n-1 (batch 3 ends exec-a).
      batches_.push_back(encoded(kPartition, lsn, 2, {requests_[lsn - 1]}));
    }
  }

  uint64_t applied() {
    auto lsn = applied_lsn(*store_, kPartition);
    EXPECT_TRUE(lsn.ok()) << lsn.status().to_string();
    return lsn.ok() ? *lsn : ~uint64_t{0};
  }

  ScopedDir dir_;
  std::unique_ptr<Store> store_;
  std::vector<WriteRequest> requests_;
  std::vector<std::string> batches_;  // batches_[i] is lsn i + 1
};

TEST_F(AppliedLsnTest, StartsAtZeroAdvancesAndSurvivesReopen) {
  EXPECT_EQ(applied(), 0u);
  EXPECT_EQ(*applied_lsn(*store_, kPartition + 1), 0u);
  ASSERT_TRUE(apply_committed(*store_, kPartition, 1, batches_[0]).is_ok());
  EXPECT_EQ(applied(), 1u);
  ASSERT_TRUE(apply_committed(*store_, kPartition, 2, batches_[1]).is_ok());
  EXPECT_EQ(applied(), 2u);
  EXPECT_EQ(*applied_lsn(*store_, kPartition + 1), 0u);  // per partition

  // The marker's on-disk format: executions "a" | be16 -> be64.
  std::string key;
  keys::applied_key(key, kPartition);
  EXPECT_EQ(key, std::string("a\x00\x05", 3));
  auto value = raw(*store_).get(raw(*store_).executions, key);
  ASSERT_TRUE(value.ok() && value->has_value());
  EXPECT_EQ(**value, std::string("\0\0\0\0\0\0\0\x02", 8));

  store_.reset();
  store_ = open_store(dir_.path());
  ASSERT_TRUE(store_);
  EXPECT_EQ(applied(), 2u);
  ASSERT_TRUE(apply_committed(*store_, kPartition, 3, batches_[2]).is_ok());
  EXPECT_EQ(applied(), 3u);
}

TEST_F(AppliedLsnTest, ReplayingAnAppliedBatchIsANoOp) {
  ASSERT_TRUE(apply_committed(*store_, kPartition, 1, batches_[0]).is_ok());
  ASSERT_TRUE(apply_committed(*store_, kPartition, 2, batches_[1]).is_ok());
  // Remove a row batch 1 wrote, behind the store's back: a replay that
  // wrote again would bring it back.
  const internal::Db& db = raw(*store_);
  std::string key;
  keys::event_key(key, kPartition, "exec-a", 1);
  ASSERT_TRUE(db.get(db.events, key)->has_value());
  ASSERT_TRUE(db.rocks->Delete(rocksdb::WriteOptions(), db.events, key).ok());
  const Contents before = contents(*store_, false);

  EXPECT_TRUE(apply_committed(*store_, kPartition, 1, batches_[0]).is_ok());
  EXPECT_TRUE(apply_committed(*store_, kPartition, 2, batches_[1]).is_ok());
  EXPECT_EQ(applied(), 2u);
  EXPECT_EQ(contents(*store_, false), before);
}

TEST_F(AppliedLsnTest, AGapIsRefusedAndWritesNothing) {
  const Contents empty = contents(*store_, false);
  Status st = apply_committed(*store_, kPartition, 2, batches_[1]);
  EXPECT_TRUE(st.is(StorageErrc::kLogGap)) << st.to_string();
  EXPECT_EQ(st.code(), "log_gap");
  EXPECT_EQ(applied(), 0u);
  EXPECT_EQ(contents(*store_, false), empty);

  ASSERT_TRUE(apply_committed(*store_, kPartition, 1, batches_[0]).is_ok());
  const Contents after_one = contents(*store_, false);
  st = apply_committed(*store_, kPartition, 3, batches_[2]);
  EXPECT_TRUE(st.is(StorageErrc::kLogGap)) << st.to_string();
  EXPECT_EQ(applied(), 1u);
  EXPECT_EQ(contents(*store_, false), after_one);
  // Once the missing batch is there, the refused one applies.
  ASSERT_TRUE(apply_committed(*store_, kPartition, 2, batches_[1]).is_ok());
  ASSERT_TRUE(apply_committed(*store_, kPartition, 3, batches_[2]).is_ok());
  EXPECT_EQ(applied(), 3u);
}

TEST_F(AppliedLsnTest, ConsecutiveBatchesApplyInOneCallAsOneByOne) {
  ScopedDir other_dir;
  auto one_by_one = open_store(other_dir.path());
  ASSERT_TRUE(one_by_one);
  for (uint64_t lsn = 1; lsn <= 3; ++lsn) {
    ASSERT_TRUE(apply_committed(*one_by_one, kPartition, lsn, batches_[lsn - 1]).is_ok());
  }
  // Batch 1 alone, then 1..3 at once: the applied prefix is skipped.
  ASSERT_TRUE(apply_committed(*store_, kPartition, 1, batches_[0]).is_ok());
  ASSERT_TRUE(
      apply_committed(*store_, kPartition, 1, std::span<const std::string>(batches_)).is_ok());
  EXPECT_EQ(applied(), 3u);
  EXPECT_EQ(contents(*store_, false), contents(*one_by_one, false));
  // All applied already: a no-op.
  EXPECT_TRUE(
      apply_committed(*store_, kPartition, 2, std::span<const std::string>(batches_).subspan(1))
          .is_ok());
  EXPECT_EQ(applied(), 3u);
}

TEST_F(AppliedLsnTest, ARangeWithABadBatchOrAGapWritesNothing) {
  const Contents empty = contents(*store_, false);
  std::vector<std::string> damaged = batches_;
  damaged[2] = damaged[2].substr(0, damaged[2].size() / 2);
  EXPECT_TRUE(apply_committed(*store_, kPartition, 1, std::span<const std::string>(damaged))
                  .is(StorageErrc::kCorrupt));
  std::vector<std::string> misnumbered = {batches_[0], batches_[2]};
  EXPECT_TRUE(apply_committed(*store_, kPartition, 1, std::span<const std::string>(misnumbered))
                  .is(StorageErrc::kCorrupt));
  EXPECT_TRUE(
      apply_committed(*store_, kPartition, 2, std::span<const std::string>(batches_).subspan(1))
          .is(StorageErrc::kLogGap));
  EXPECT_EQ(applied(), 0u);
  EXPECT_EQ(contents(*store_, false), empty);
}

TEST_F(AppliedLsnTest, ForeignDamagedAndMisnumberedBatchesAreRefused) {
  auto corrupt = [&](uint32_t partition, uint64_t lsn, const std::string& bytes) {
    const Status st = apply_committed(*store_, partition, lsn, bytes);
    EXPECT_TRUE(st.is(StorageErrc::kCorrupt)) << st.to_string();
  };
  corrupt(kPartition, 2, batches_[0]);      // batch 1 handed over as 2
  corrupt(kPartition + 1, 1, batches_[0]);  // another partition's batch
  corrupt(kPartition, 1, batches_[0].substr(0, batches_[0].size() / 2));
  corrupt(kPartition, 1, "not a batch at all");
  EXPECT_EQ(applied(), 0u);
  EXPECT_TRUE(apply_committed(*store_, 0x10000, 1, batches_[0]).is(Errc::kInvalidArgument));
  EXPECT_TRUE(applied_lsn(*store_, 0x10000).status().is(Errc::kInvalidArgument));

  // A damaged marker is reported, not read as some position.
  const internal::Db& db = raw(*store_);
  std::string key;
  keys::applied_key(key, kPartition);
  ASSERT_TRUE(db.rocks->Put(rocksdb::WriteOptions(), db.executions, key, "xyz").ok());
  EXPECT_TRUE(applied_lsn(*store_, kPartition).status().is(StorageErrc::kCorrupt));
  EXPECT_TRUE(apply_committed(*store_, kPartition, 1, batches_[0]).is(StorageErrc::kCorrupt));
}

TEST_F(AppliedLsnTest, AReadOnlyStoreRefusesWithItsOwnStatus) {
  ASSERT_TRUE(apply_committed(*store_, kPartition, 1, batches_[0]).is_ok());
  const Contents before = contents(*store_, false);
  store_->latch_read_only(Status(StorageErrc::kError, "fsync failed (test)"));
  const Status st = apply_committed(*store_, kPartition, 2, batches_[1]);
  EXPECT_TRUE(st.is(StorageErrc::kReadOnly)) << st.to_string();
  EXPECT_EQ(st.to_string(), store_->write_status().to_string());
  EXPECT_EQ(applied(), 1u);
  EXPECT_EQ(contents(*store_, false), before);
}

TEST(PartitionBatchApply, BelowTheFreeSpaceFloorBatchesAreRefusedUntilSpaceIsBack) {
  ScopedDir dir;
  std::atomic<uint64_t> free_bytes{uint64_t{1} << 30};
  StoreOptions options{dir.path(), Durability::kSync};
  options.min_free_disk_bytes = uint64_t{100} << 20;
  options.disk_sample_interval = std::chrono::milliseconds(2);
  options.disk_probe = [&free_bytes]() -> Result<uint64_t> { return free_bytes.load(); };
  auto opened = Store::open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().to_string();
  std::unique_ptr<Store> store = std::move(opened).value();
  const std::string batch = encoded(kPartition, 1, 1, every_field_requests());

  auto poll = [](auto pred) {
    for (int i = 0; i < 5000 && !pred(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return pred();
  };
  free_bytes = uint64_t{50} << 20;
  ASSERT_TRUE(poll([&] { return store->read_only(); }));
  Status st = apply_committed(*store, kPartition, 1, batch);
  EXPECT_TRUE(st.is(StorageErrc::kNoSpace)) << st.to_string();
  EXPECT_EQ(*applied_lsn(*store, kPartition), 0u);

  free_bytes = uint64_t{1} << 30;
  ASSERT_TRUE(poll([&] { return !store->read_only(); }));
  st = apply_committed(*store, kPartition, 1, batch);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(*applied_lsn(*store, kPartition), 1u);
}

}  // namespace
}  // namespace yantra::storage
