// The node's durable store: one RocksDB database with a column family per
// kind of record (see docs/event-log-format.md):
//   events      partition(be16) | len(u8) | execution_id | seq(be64) -> Event
//   executions  "s" | execution_id                          -> ExecutionSummary
//               "r" | partition(be16) | execution_id        -> "" (active marker)
//               "l" | tenant | 0x00 | execution_id          -> flow_id (listing)
//               "i" | tenant | 0x00 | idempotency key       -> execution_id
//               "f" | len(u8) | parent_id | fork_id         -> "" (forks)
//               "e" | ended_ms(be64) | execution_id         -> partition (retention queue)
//               "q" | tenant | 0x00 | flow_id | 0x00 | queue_seq(be64) -> QueuedRun
//               "a" | partition(be16)                       -> lsn(be64) (applied marker)
//   flows       tenant | 0x00 | flow_id | 0x00 | version(be32) -> FlowVersion
//   snapshots   partition(be16) | len(u8) | execution_id | seq(be64) -> Snapshot
//   auth        "k" | sha256(secret)                        -> ApiKey
//               "x" | tenant | 0x00 | key_id                -> sha256(secret) (key index)
//               "t" | tenant                                -> Tenant
//               "h" | hook_id                               -> tenant | 0x00 | flow_id
//               "H" | tenant | 0x00 | flow_id               -> hook_id (trigger_store.hpp)
//               "S" | tenant | 0x00 | flow_id               -> schedule position
//   secrets     "d" | tenant                                -> TenantDataKey (vault.hpp)
//               "s" | tenant | 0x00 | name                  -> SecretRecord
//   audit       "c" | tenant or "-" | 0x00 | seq(be64)      -> AuditRecord (audit_log.hpp)
//   outbox      "o" | due_ms(be64) | message_id             -> OutboxEntry (callbacks)
//   segments    "m" | partition(be32) | segment(be64)       -> segment metadata
//               "b" | partition(be32) | segment(be64) | lsn(be64) -> batch (segment_store.hpp)
// Execution ids are opaque bytes of length 1..255; in event keys they are
// length-prefixed so that one execution's prefix never covers another's ("ab"
// vs "abc"). Tenant and flow ids are non-empty and may not contain 0x00.
// Partitions fit 16 bits. Invalid ids or partitions get "invalid_argument".
// Column families a later version added are opened too (and left alone), so
// an older binary still opens a newer database.
//
// Store owns the database: it opens it (options, column families), holds the
// column-family handles (internal to storage/, see internal/db.hpp) and the
// read-only latch, and owns one narrow typed store per kind of record:
//   events()      EventLog        events, snapshots, retention (event_log.hpp)
//   executions()  ExecutionIndex  summaries, active markers, listing,
//                                 idempotency keys, forks (execution_index.hpp)
//   flows()       FlowStore       flow versions (flow_store.hpp)
//   auth()        AuthStore       API keys and tenants (auth_store.hpp)
//   run_queue()   RunQueue        runs waiting for a slot (run_queue.hpp)
//   outbox()      Outbox          callback deliveries owed (outbox.hpp)
//   segments()    SegmentStore    this replica's copy of the replicated
//                                 partition logs (segment_store.hpp)
// Vault, AuditLog and TriggerStore are built over a Store by their users.
// Reads are direct and thread-safe. Writes of execution events go through a
// LogWriter (group commit, see log_writer.hpp) or, in a cluster, through
// apply_committed() of a replicated batch (partition_batch.hpp), which also
// writes the "a" marker: the last batch of the partition this store holds.
// The other writes are rare and
// go straight to the DB, each store saying which it syncs. Store knows
// nothing of actors or HTTP.
//
// Lifecycle: open() once per process; the Store must outlive every LogWriter
// built on it. An I/O error on write latches the store read-only: later
// writes fail with "store_read_only" instead of pretending to succeed.
// Separately, and reversibly, a free-space floor (StoreOptions::
// min_free_disk_bytes, disk_guard.hpp) refuses writes with "store_no_space"
// while the data dir's disk is below it: read_only() covers both. A disk
// already full at open gives a store opened read-only (reads work; a
// restart once space is back writes again).
// open() refuses a store whose write-ahead log is damaged or missing
// ("storage_corrupt") unless StoreOptions::accept_data_loss says otherwise.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/storage_errc.hpp"
#include "storage/disk_guard.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class FileSystem;
class Status;
}  // namespace rocksdb

namespace yantra::storage {

class Store;
class EventLog;
class ExecutionIndex;
class FlowStore;
class AuthStore;
class RunQueue;
class Outbox;
class SegmentStore;

namespace internal {
struct Db;
const Db& db_of(const Store& store);
struct WalRecovery;
}  // namespace internal

enum class Durability { kSync, kAsync };

struct StoreOptions {
  // Not an aggregate, so that adding a field does not warn at every
  // `StoreOptions{path, durability}`.
  StoreOptions(std::string p = {}, Durability d = Durability::kSync)  // NOLINT: implicit
      : path(std::move(p)), durability(d) {}

  std::string path;
  Durability durability = Durability::kSync;
  // A damaged or missing write-ahead log makes open() fail with
  // "storage_corrupt" (a torn last record, which a power cut leaves, does
  // not). With this set, open() instead keeps copies of the WAL files under
  // <path>/lost+found/, recovers to the last consistent point, dropping
  // what follows the damage, and says what it dropped in data_loss(). See
  // "Damaged write-ahead log" in storage/README.md.
  bool accept_data_loss = false;
  // Tests only: the file system RocksDB runs on (a fault-injecting one,
  // tests/support/fault_fs.hpp); null = the operating system's.
  std::shared_ptr<rocksdb::FileSystem> file_system;
  // Free-space floor of the data dir (disk_guard.hpp): below it every write
  // is refused with "store_no_space" until space is back. 0 = no floor.
  uint64_t min_free_disk_bytes = 0;
  std::chrono::milliseconds disk_sample_interval{250};
  DiskGuard::Probe disk_probe = nullptr;  // null = statvfs of `path` (tests inject one)
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const StoreOptions& options() const { return options_; }

  // What open() found damaged and dropped when accept_data_loss let it
  // open anyway, one line each (also counted by the metric
  // yantra_storage_recovered_with_data_loss). Empty when nothing was lost.
  const std::vector<std::string>& data_loss() const { return data_loss_; }

  // The typed stores; they live as long as the Store.
  EventLog& events() { return *events_; }
  const EventLog& events() const { return *events_; }
  ExecutionIndex& executions() { return *executions_; }
  const ExecutionIndex& executions() const { return *executions_; }
  FlowStore& flows() { return *flows_; }
  const FlowStore& flows() const { return *flows_; }
  AuthStore& auth() { return *auth_; }
  const AuthStore& auth() const { return *auth_; }
  RunQueue& run_queue() { return *run_queue_; }
  const RunQueue& run_queue() const { return *run_queue_; }
  Outbox& outbox() { return *outbox_; }
  const Outbox& outbox() const { return *outbox_; }
  SegmentStore& segments() { return *segments_; }
  const SegmentStore& segments() const { return *segments_; }

  // True while writes are refused: for good once a write failed (latched()),
  // or while the disk is below the free-space floor (out_of_space()).
  bool read_only() const;
  bool latched() const { return read_only_.load(); }
  bool out_of_space() const {
    return opened_read_only_.load() || (disk_guard_ != nullptr && disk_guard_->below_floor());
  }
  // The error writes get: "store_read_only" naming the first cause once
  // latched, else "store_no_space" below the floor; ok while writable.
  // Counted in yantra_storage_write_refusals_total: for writers only.
  Status read_only_error() const;
  // The same, not counted: for readiness probes and dashboards.
  Status write_status() const;
  // The free-space gate; null without a floor.
  const DiskGuard* disk_guard() const { return disk_guard_.get(); }
  // What every writer of this store does with a failed RocksDB write (and
  // returns to its caller): running out of space in a flush or compaction
  // marks the disk as below the floor and answers "store_no_space"
  // (reversible: RocksDB recovers by itself once space is back); any other
  // error, a WAL write that ran out of space included, latches the store
  // read-only and is returned as "storage_error" (later writes get
  // "store_read_only", until restart).
  Status write_failed(const rocksdb::Status& s);
  // Writers report the bytes they wrote, so that the free-space floor also
  // holds between two samples (DiskGuard::note_written).
  void note_written(uint64_t bytes);

  // Whether writes fsync: true unless the store is Durability::kAsync.
  bool sync_writes() const { return options_.durability == Durability::kSync; }
  void latch_read_only() { latch_read_only(Status(StorageErrc::kError, "latched by request")); }
  // Keeps the first cause, for read_only_error().
  void latch_read_only(const Status& cause);

 private:
  friend const internal::Db& internal::db_of(const Store& store);
  Store();
  // Builds the Db view and the typed stores over the open database.
  Status open_stores();
  StoreOptions options_;
  // The Env over the WAL guard, and what recovery was handed: outlives db_.
  std::shared_ptr<internal::WalRecovery> recovery_;
  std::vector<std::string> data_loss_;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* cf_events_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_executions_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_flows_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_auth_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_snapshots_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_secrets_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_audit_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_outbox_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_segments_ = nullptr;
  std::atomic<bool> read_only_{false};
  // The disk was full at open: RocksDB could not open for writing, so the
  // store was opened read-only (reads work; a restart with space writes).
  std::atomic<bool> opened_read_only_{false};
  // Set by RocksDB (a listener) when a write of the WAL itself failed.
  std::atomic<bool> wal_failed_{false};
  std::shared_ptr<DiskGuard> disk_guard_;  // reset first in ~Store
  // Sets yantra_storage_writable from the latch and the guard's state
  // (passed in: the guard's callback runs before disk_guard_ is set).
  void publish_writable(bool below_floor) const;
  struct Locks;  // the read-only cause
  std::unique_ptr<Locks> locks_;
  std::unique_ptr<internal::Db> db_view_;  // the handles above, for storage's own files
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<ExecutionIndex> executions_;
  std::unique_ptr<FlowStore> flows_;
  std::unique_ptr<AuthStore> auth_;
  std::unique_ptr<RunQueue> run_queue_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<SegmentStore> segments_;
};

}  // namespace yantra::storage
