// The shared RocksDB database as storage's own files see it: the DB, one
// handle per column family and the Store whose read-only latch and
// durability mode every write obeys. Store builds one Db at open and hands it
// to each typed store (event_log.hpp, execution_index.hpp, ...), to the
// LogWriter, Vault, AuditLog and TriggerStore. Nothing outside storage/ and
// its tests includes this header: column-family handles are not part of any
// public interface, so a store's key layout can only be reached through the
// methods of the store that owns it (docs/event-log-format.md).
//
// A Db is immutable after open and lives as long as its Store; reading it
// from any thread is safe, and so is every RocksDB call made through it.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <optional>
#include <string>

#include "base/result.hpp"
#include "storage/store.hpp"

namespace yantra::storage::internal {

struct Db {
  rocksdb::DB* rocks = nullptr;
  rocksdb::ColumnFamilyHandle* events = nullptr;
  rocksdb::ColumnFamilyHandle* executions = nullptr;
  rocksdb::ColumnFamilyHandle* flows = nullptr;
  rocksdb::ColumnFamilyHandle* auth = nullptr;
  rocksdb::ColumnFamilyHandle* snapshots = nullptr;
  rocksdb::ColumnFamilyHandle* secrets = nullptr;
  rocksdb::ColumnFamilyHandle* audit = nullptr;
  rocksdb::ColumnFamilyHandle* outbox = nullptr;
  rocksdb::ColumnFamilyHandle* segments = nullptr;  // the replicated log (segment_store.hpp)
  Store* store = nullptr;  // the owner: read-only latch and durability mode

  // Whether writes fsync: true unless the store is Durability::kAsync.
  bool sync_writes() const { return store->sync_writes(); }
  // The value at `key`; nullopt when absent, "storage_error" on failure.
  Result<std::optional<std::string>> get(rocksdb::ColumnFamilyHandle* cf,
                                         const rocksdb::Slice& key) const;
  // Writes `batch`, synced when `sync`. A failure goes through
  // Store::write_failed: it latches the store read-only (after a failed
  // fsync the WAL's state is unknown) and is returned as "storage_error",
  // or, for lack of space outside the WAL, is "store_no_space" until space
  // is back. Callers check read_only() first.
  Status write(rocksdb::WriteBatch& batch, bool sync) const;
};

// The Db of an open store (storage's own files and tests only).
const Db& db_of(const Store& store);

Status storage_error(const rocksdb::Status& s);
Status invalid(std::string message);
// "storage_corrupt": `what` does not parse (a stored record or key).
Status corrupt(const std::string& what);

// The first refusal among WriteBatch calls (they fail only when the batch
// outgrows its size limit).
class BatchCheck {
 public:
  void operator()(rocksdb::Status s) {
    if (first_.ok()) first_ = std::move(s);
  }
  Status status() const { return first_.ok() ? Status() : storage_error(first_); }

 private:
  rocksdb::Status first_;
};

// The record behind a point read, parsed; nullopt when absent, and
// "storage_corrupt" naming `what` when it does not parse.
template <typename Message>
Result<std::optional<Message>> parse_row(Result<std::optional<std::string>> raw,
                                         const std::string& what) {
  if (!raw.ok()) return raw.status();
  if (!raw.value().has_value()) return std::optional<Message>();
  Message message;
  if (!message.ParseFromString(*raw.value())) return corrupt(what);
  return std::optional<Message>(std::move(message));
}

// Parses a scanned value into `message`; false when it does not parse.
template <typename Message>
bool parse_value(const rocksdb::Slice& value, Message& message) {
  return message.ParseFromArray(value.data(), static_cast<int>(value.size()));
}

}  // namespace yantra::storage::internal
