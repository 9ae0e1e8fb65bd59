// PartitionBatch codec and apply (see partition_batch.hpp). Design notes:
//
// - decode() validates everything apply() relies on before anything is
//   written: a batch is applied whole or not at all, and a batch that would
//   be refused half-way (an invalid request among valid ones) is refused
//   whole by decode, never by the WriteBatch.
// - A CRC32C closes every batch (replication.proto, field crc32c): protobuf
//   parses a batch cut at a field boundary, or one with a flipped bit in a
//   payload, as a valid message; the CRC catches both before any parsing.
//   It is RocksDB's crc32c (hardware-accelerated where the CPU has it),
//   reached through its public file-checksum factory.
// - Unknown fields are tolerated (a newer writer may add fields an older
//   reader can ignore); a change an older reader must not ignore bumps
//   `format`, which every reader checks.
// - decode() moves the bytes out of the parsed message instead of copying
//   them (the payloads are most of a batch).
// - The applied marker is read and written by this file only. The check
//   "lsn == applied + 1" and the write are not atomic together: one applier
//   per partition (the header says so) makes them so, as LogWriter's single
//   thread does for the local log.
#include "storage/partition_batch.hpp"

#include <rocksdb/db.h>
#include <rocksdb/file_checksum.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <utility>

#include "base/storage_errc.hpp"
#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/request_rows.hpp"
#include "storage/store.hpp"
#include "yantra/v1/replication.pb.h"

namespace yantra::storage {

namespace {

Status corrupt_batch(const std::string& why) {
  return {StorageErrc::kCorrupt, "partition batch: " + why};
}

// The trailer: tag of field 15, wire type 5 (fixed32), then the CRC.
constexpr char kCrcTag = static_cast<char>((15 << 3) | 5);
constexpr size_t kCrcTrailerSize = 5;

}  // namespace

uint32_t crc32c(std::string_view data) {
  static const std::shared_ptr<rocksdb::FileChecksumGenFactory> factory =
      rocksdb::GetFileChecksumGenCrc32cFactory();
  std::unique_ptr<rocksdb::FileChecksumGenerator> generator =
      factory->CreateFileChecksumGenerator(rocksdb::FileChecksumGenContext());
  generator->Update(data.data(), data.size());
  generator->Finalize();
  const std::string checksum = generator->GetChecksum();  // 4 bytes, big-endian
  return keys::get_be32(checksum.data());
}

namespace {

void put_fixed32_le(std::string& out, uint32_t v) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>(v >> shift));
}

uint32_t get_fixed32_le(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

Result<std::string> encode(uint32_t partition, uint64_t lsn, uint64_t epoch,
                           const std::vector<WriteRequest>& requests) {
  if (!keys::valid_partition(partition)) {
    return internal::invalid("partition batch: partition " + std::to_string(partition) +
                             " is above 65535");
  }
  if (lsn == 0) return internal::invalid("partition batch: lsns start at 1");
  v1::PartitionBatch message;
  const bool has_audit = std::any_of(requests.begin(), requests.end(),
                                     [](const WriteRequest& r) { return !r.audit.empty(); });
  const bool has_queue = std::any_of(requests.begin(), requests.end(), [](const WriteRequest& r) {
    return r.queued_run.has_value();
  });
  // The lowest format that carries everything, so an older replica refuses
  // only batches it could not apply.
  message.set_format(has_queue   ? kPartitionBatchFormatQueue
                     : has_audit ? kPartitionBatchFormatAudit
                                 : kPartitionBatchFormat);
  message.set_partition(partition);
  message.set_lsn(lsn);
  message.set_epoch(epoch);
  message.mutable_requests()->Reserve(static_cast<int>(requests.size()));
  for (size_t i = 0; i < requests.size(); ++i) {
    const WriteRequest& request = requests[i];
    if (!internal::valid_request(request) || request.partition != partition) {
      return internal::invalid("partition batch: request " + std::to_string(i) +
                               " needs partition " + std::to_string(partition) +
                               ", an execution id of 1..255 bytes (or audit rows only), "
                               "outbox rows with ids and audit rows of its partition");
    }
    v1::BatchRequest& out = *message.add_requests();
    out.set_partition(request.partition);
    out.set_execution_id(request.execution_id);
    out.mutable_events()->Reserve(static_cast<int>(request.events.size()));
    for (const auto& [seq, bytes] : request.events) {
      v1::BatchEvent& event = *out.add_events();
      event.set_seq(seq);
      event.set_event(bytes);
    }
    if (request.summary) request.summary->SerializeToString(out.mutable_summary());
    out.set_created(request.created);
    out.set_idempotency_key(request.idempotency_key);
    out.set_parent_execution_id(request.parent_execution_id);
    if (request.snapshot) {
      out.mutable_snapshot()->set_seq(request.snapshot->first);
      out.mutable_snapshot()->set_snapshot(request.snapshot->second);
    }
    out.set_delete_key(request.delete_key);
    if (request.queued_run) request.queued_run->SerializeToString(out.mutable_queued_run());
    for (const OutboxRow& row : request.outbox) {
      v1::BatchOutboxRow& outbox = *out.add_outbox();
      outbox.set_due_ms(row.due_ms);
      outbox.set_id(row.id);
      outbox.set_entry(row.entry);
    }
    for (const AuditRow& row : request.audit) {
      v1::BatchAuditRow& audit = *out.add_audit();
      audit.set_key(row.key);
      audit.set_value(row.value);
    }
  }
  std::string bytes;
  if (!message.SerializeToString(&bytes) || bytes.size() > static_cast<size_t>(INT_MAX) - 5) {
    // Protobuf serializes and parses at most 2 GiB.
    return internal::invalid("partition batch: larger than a protobuf message can be (2 GiB)");
  }
  const uint32_t crc = crc32c(bytes);
  bytes.push_back(kCrcTag);
  put_fixed32_le(bytes, crc);
  return bytes;
}

Result<DecodedBatch> decode(std::string_view bytes) {
  if (bytes.size() < kCrcTrailerSize || bytes.size() > static_cast<size_t>(INT_MAX) ||
      bytes[bytes.size() - kCrcTrailerSize] != kCrcTag) {
    return corrupt_batch("no checksum at its end (cut short, or not a batch)");
  }
  const std::string_view body = bytes.substr(0, bytes.size() - kCrcTrailerSize);
  if (crc32c(body) != get_fixed32_le(bytes.data() + body.size() + 1)) {
    return corrupt_batch("checksum mismatch");
  }
  v1::PartitionBatch message;
  if (!message.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return corrupt_batch("does not parse");
  }
  if (message.format() != kPartitionBatchFormat && message.format() != kPartitionBatchFormatAudit &&
      message.format() != kPartitionBatchFormatQueue) {
    return corrupt_batch("format " + std::to_string(message.format()) + " (this version reads " +
                         std::to_string(kPartitionBatchFormat) + " to " +
                         std::to_string(kPartitionBatchFormatQueue) + ")");
  }
  if (message.lsn() == 0) return corrupt_batch("lsn 0 (lsns start at 1)");
  if (!keys::valid_partition(message.partition())) {
    return corrupt_batch("partition " + std::to_string(message.partition()) + " is above 65535");
  }
  DecodedBatch batch;
  batch.partition = message.partition();
  batch.lsn = message.lsn();
  batch.epoch = message.epoch();
  const int count = message.requests_size();
  batch.requests.reserve(static_cast<size_t>(count));
  batch.summaries.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    v1::BatchRequest& in = *message.mutable_requests(i);
    WriteRequest& request = batch.requests.emplace_back();
    request.partition = in.partition();
    request.execution_id = std::move(*in.mutable_execution_id());
    request.events.reserve(static_cast<size_t>(in.events_size()));
    for (v1::BatchEvent& event : *in.mutable_events()) {
      request.events.emplace_back(event.seq(), std::move(*event.mutable_event()));
    }
    std::string& summary_bytes = batch.summaries.emplace_back();
    if (in.has_summary()) {
      v1::ExecutionSummary summary;
      if (!summary.ParseFromString(in.summary())) {
        return corrupt_batch("the summary of request " + std::to_string(i) + " does not parse");
      }
      request.summary = std::move(summary);
      summary_bytes = std::move(*in.mutable_summary());
    }
    request.created = in.created();
    request.idempotency_key = std::move(*in.mutable_idempotency_key());
    request.parent_execution_id = std::move(*in.mutable_parent_execution_id());
    if (in.has_snapshot()) {
      request.snapshot.emplace(in.snapshot().seq(),
                               std::move(*in.mutable_snapshot()->mutable_snapshot()));
    }
    request.delete_key = std::move(*in.mutable_delete_key());
    request.outbox.reserve(static_cast<size_t>(in.outbox_size()));
    for (v1::BatchOutboxRow& row : *in.mutable_outbox()) {
      request.outbox.push_back(
          {row.due_ms(), std::move(*row.mutable_id()), std::move(*row.mutable_entry())});
    }
    if (in.has_queued_run()) {
      if (message.format() < kPartitionBatchFormatQueue) {
        return corrupt_batch("request " + std::to_string(i) + " has a queued run in a format " +
                             std::to_string(message.format()) + " batch");
      }
      v1::QueuedRun run;
      if (!run.ParseFromString(in.queued_run())) {
        return corrupt_batch("the queued run of request " + std::to_string(i) + " does not parse");
      }
      request.queued_run = std::move(run);
    }
    if (in.audit_size() > 0 && message.format() < kPartitionBatchFormatAudit) {
      return corrupt_batch("request " + std::to_string(i) + " has audit rows in a format " +
                           std::to_string(message.format()) + " batch");
    }
    request.audit.reserve(static_cast<size_t>(in.audit_size()));
    for (v1::BatchAuditRow& row : *in.mutable_audit()) {
      request.audit.push_back({std::move(*row.mutable_key()), std::move(*row.mutable_value())});
    }
    if (!internal::valid_request(request) || request.partition != batch.partition) {
      return corrupt_batch("request " + std::to_string(i) + " is not a valid write of partition " +
                           std::to_string(batch.partition));
    }
  }
  return batch;
}

Status apply(const DecodedBatch& batch, const Store& store, rocksdb::WriteBatch& write_batch) {
  const internal::Db& db = internal::db_of(store);
  internal::RowScratch scratch;
  for (size_t i = 0; i < batch.requests.size(); ++i) {
    const WriteRequest& request = batch.requests[i];
    // A batch built by hand may lack the writer's bytes: serialize then.
    const std::string* summary_bytes =
        request.summary && i < batch.summaries.size() ? &batch.summaries[i] : nullptr;
    rocksdb::Status s = internal::add_request(write_batch, db, request, scratch, summary_bytes);
    if (!s.ok()) return internal::storage_error(s);
  }
  return {};
}

bool valid_write_request(const WriteRequest& request) {
  return internal::valid_request(request);
}

Status apply_committed(Store& store, uint32_t partition, uint64_t lsn, std::string_view bytes,
                       bool sync) {
  const std::string one(bytes);
  return apply_committed(store, partition, lsn, std::span<const std::string>(&one, 1), sync);
}

Status apply_committed(Store& store, uint32_t partition, uint64_t first_lsn,
                       std::span<const std::string> batches, bool sync) {
  if (Status refused = store.read_only_error(); !refused.is_ok()) return refused;
  if (!keys::valid_partition(partition)) {
    return internal::invalid("partition " + std::to_string(partition) + " is above 65535");
  }
  if (batches.empty()) return {};
  // Every batch is checked before anything is written (or skipped as
  // applied): bytes that are not the batch they are handed over as are
  // storage_corrupt wherever the applied marker stands.
  std::vector<DecodedBatch> decoded;
  decoded.reserve(batches.size());
  for (size_t i = 0; i < batches.size(); ++i) {
    const uint64_t lsn = first_lsn + i;
    auto d = decode(batches[i]);
    if (!d.ok()) return d.status();
    if (d->partition != partition || d->lsn != lsn) {
      return corrupt_batch("holds partition " + std::to_string(d->partition) + " lsn " +
                           std::to_string(d->lsn) + ", handed over as partition " +
                           std::to_string(partition) + " lsn " + std::to_string(lsn));
    }
    decoded.push_back(std::move(d.value()));
  }
  auto applied = applied_lsn(store, partition);
  if (!applied.ok()) return applied.status();
  const uint64_t last = first_lsn + batches.size() - 1;
  if (last <= *applied) return {};  // already in the state: replay is a no-op
  if (first_lsn > *applied + 1) {
    return {StorageErrc::kLogGap,
            "partition " + std::to_string(partition) + ": batch " + std::to_string(first_lsn) +
                " does not follow the last applied, " + std::to_string(*applied)};
  }

  const internal::Db& db = internal::db_of(store);
  rocksdb::WriteBatch write_batch;
  for (uint64_t lsn = *applied + 1; lsn <= last; ++lsn) {
    if (Status st = apply(decoded[lsn - first_lsn], store, write_batch); !st.is_ok()) return st;
  }
  std::string key;
  std::string value;
  keys::applied_key(key, partition);
  keys::put_be64(value, last);
  if (rocksdb::Status s = write_batch.Put(db.executions, key, value); !s.ok()) {
    return internal::storage_error(s);
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = sync && store.sync_writes();
  rocksdb::Status s = db.rocks->Write(write_options, &write_batch);
  if (!s.ok()) {
    // As LogWriter answers a failed batch: like every later write
    // ("store_read_only" naming the cause, or "store_no_space").
    Status failed = store.write_failed(s);
    Status now = store.write_status();
    return now.is_ok() ? failed : now;
  }
  store.note_written(write_batch.GetDataSize());
  return {};
}

Result<uint64_t> applied_lsn(const Store& store, uint32_t partition) {
  if (!keys::valid_partition(partition)) {
    return internal::invalid("partition " + std::to_string(partition) + " is above 65535");
  }
  const internal::Db& db = internal::db_of(store);
  std::string key;
  keys::applied_key(key, partition);
  auto raw = db.get(db.executions, key);
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) return uint64_t{0};
  const std::string& value = **raw;
  if (value.size() != keys::kAppliedValueSize) {
    return internal::corrupt("the applied lsn of partition " + std::to_string(partition));
  }
  return keys::get_be64(value.data());
}

}  // namespace yantra::storage
