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
// Execution ids are opaque bytes of length 1..255; in event keys they are
// length-prefixed so that one execution's prefix never covers another's ("ab"
// vs "abc"). Tenant and flow ids are non-empty and may not contain 0x00.
// Partitions fit 16 bits. Invalid ids or partitions get "invalid_argument".
// Column families a later version added are opened too (and left alone), so
// an older binary still opens a newer database.
// Reads are direct and thread-safe. Writes of execution events go through a
// LogWriter (group commit, see log_writer.hpp); flow writes are rare and go
// straight to the DB. Store knows nothing of actors or HTTP.
//
// Lifecycle: open() once per process; the Store must outlive every LogWriter
// built on it. An I/O error on write latches the store read-only: later
// writes fail with "store_read_only" instead of pretending to succeed.
// Separately, and reversibly, a free-space floor (StoreOptions::
// min_free_disk_bytes, disk_guard.hpp) refuses writes with "store_no_space"
// while the data dir's disk is below it: read_only() covers both.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "storage/disk_guard.hpp"
#include "yantra/v1/events.pb.h"
#include "yantra/v1/outbox.pb.h"
#include "yantra/v1/tenancy.pb.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Status;
}  // namespace rocksdb

namespace yantra::storage {

enum class Durability { kSync, kAsync };

struct StoreOptions {
  std::string path;
  Durability durability = Durability::kSync;
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

  // Events seq in [from_seq, to_seq] of one execution, in order.
  Result<std::vector<v1::Event>> read_events(uint32_t partition, std::string_view execution_id,
                                             uint64_t from_seq = 1,
                                             uint64_t to_seq = UINT64_MAX) const;

  Result<std::optional<v1::ExecutionSummary>> get_summary(std::string_view execution_id) const;

  // Ids of executions of `partition` that have not reached a terminal status.
  Result<std::vector<std::string>> active_executions(uint32_t partition) const;

  // Stores `flow` as version latest+1 of (tenant, flow_id) and returns that
  // version (flow.version is ignored). Serialised per store, so concurrent
  // puts of the same flow get distinct versions.
  Result<uint32_t> put_flow(v1::FlowVersion flow);
  // version 0 = latest. nullopt when absent.
  Result<std::optional<v1::FlowVersion>> get_flow(std::string_view tenant, std::string_view flow_id,
                                                  uint32_t version = 0) const;

  // Flows of a tenant at their latest version, tombstones (deleted) skipped,
  // ordered by flow id.
  Result<std::vector<v1::FlowVersion>> list_flows(std::string_view tenant) const;
  // Every stored version of one flow, oldest first (tombstones included).
  Result<std::vector<v1::FlowVersion>> flow_versions(std::string_view tenant,
                                                     std::string_view flow_id) const;

  // Executions of a tenant, newest first, optionally only one flow and/or one
  // status, starting strictly below `before_id` (a cursor; "" = newest).
  struct ExecutionPage {
    std::vector<v1::ExecutionSummary> items;
    std::string next_cursor;  // "" when there is nothing more
  };
  Result<ExecutionPage> list_executions(std::string_view tenant, std::string_view flow_id,
                                        std::string_view status, size_t limit,
                                        std::string_view before_id) const;

  // The newest snapshot of an execution taken at or below `max_seq`.
  Result<std::optional<v1::Snapshot>> latest_snapshot(uint32_t partition,
                                                      std::string_view execution_id,
                                                      uint64_t max_seq) const;

  // Retention: deletes the events and snapshots of executions that ended
  // before `ended_before_ms` (at most `limit` executions per call; their
  // summaries stay). Returns how many entries of the retention queue were
  // consumed. Runs beside the log writers: it touches only finished
  // executions, in batches of its own. An execution that ran again after it
  // ended (a retry) is skipped by its old entry: expired only by the end its
  // summary records, never while it runs.
  Result<size_t> expire_finished(int64_t ended_before_ms, size_t limit);

  // Ids of the executions forked from `parent`, oldest first.
  Result<std::vector<std::string>> list_forks(std::string_view parent) const;

  // The execution an idempotency key started, if any.
  Result<std::optional<std::string>> find_idempotent(std::string_view tenant,
                                                     std::string_view key) const;

  // API keys, by the SHA-256 (hex) of their secret, plus a per-tenant index
  // by key id written in the same batch. key.tenant() must be a valid tenant
  // id and key.key_id() non-empty. Writes of this block (keys and tenants)
  // are synced unless the store is Durability::kAsync, and serialised with
  // each other so a revoke never races a put of the same key.
  Status put_api_key(std::string_view hash, const v1::ApiKey& key);
  Result<std::optional<v1::ApiKey>> find_api_key(std::string_view hash) const;
  // Keys of the tenant that are not revoked.
  Result<size_t> count_api_keys(std::string_view tenant) const;
  // Every key of the tenant (revoked ones included), ordered by key id.
  Result<std::vector<v1::ApiKey>> list_api_keys(std::string_view tenant) const;
  // (hash, key) of one key of `tenant`; nullopt when that tenant has no such
  // key id, even if another tenant has.
  Result<std::optional<std::pair<std::string, v1::ApiKey>>> find_api_key_by_id(
      std::string_view tenant, std::string_view key_id) const;
  // Marks the key revoked and returns its hash (to evict caches). "not_found"
  // when the key is not one of `tenant`'s. Revoking twice is fine.
  Result<std::string> revoke_api_key(std::string_view tenant, std::string_view key_id);

  // Tenants (since 0.3), in the auth CF. put_tenant upserts by id.
  Status put_tenant(const v1::Tenant& tenant);
  Result<std::optional<v1::Tenant>> get_tenant(std::string_view id) const;
  // Ordered by id.
  Result<std::vector<v1::Tenant>> list_tenants() const;
  // Removes the tenant row and revokes every key of the tenant, one batch.
  // Its flows, executions, secrets and audit chain stay (they are history).
  // "not_found" when there is no such tenant.
  Status delete_tenant(std::string_view id);

  // Durable run queue (since 0.3): runs accepted while their flow is at its
  // concurrency limit. The caller serialises the dequeue and cancel of one
  // flow's queue (a single admission point per flow); the store only keeps
  // every step atomic. Writes are synced unless the store is kAsync.
  //
  // Assigns run.queue_seq (store-wide, increasing) and writes, in one batch,
  // the queue row, `summary` (status "queued", as given), the listing row and
  // the idempotency row when run.idempotency_key is set. No active marker:
  // a queued run has no events yet; recovery finds it via queued_flows().
  // summary must name the same execution, tenant and flow as run.
  Result<v1::QueuedRun> enqueue_run(v1::QueuedRun run, const v1::ExecutionSummary& summary);
  // One flow's queued runs, oldest first.
  Result<std::vector<v1::QueuedRun>> queued_runs(std::string_view tenant, std::string_view flow_id,
                                                 size_t limit) const;
  // Distinct (tenant, flow_id) with at least one queued run, in key order.
  Result<std::vector<std::pair<std::string, std::string>>> queued_flows() const;
  // Removes a run from its queue and writes `cancelled_summary`, one batch.
  // "not_found" when the queue row is gone (the run already started).
  Status cancel_queued(const v1::QueuedRun& run, const v1::ExecutionSummary& cancelled_summary);
  // The executions-CF key of a run's queue row: put it in
  // WriteRequest::delete_key so that the run's ExecutionStarted and the
  // removal of its queue row commit together.
  static std::string queue_row_key(const v1::QueuedRun& run);

  // Listing rows of `tenant` whose execution id is >= from_id. Ids are ULIDs
  // (time-ordered), so from_id = the smallest ULID of a month counts the
  // executions created since the month began (quotas).
  Result<uint64_t> count_executions_from(std::string_view tenant, std::string_view from_id) const;

  // Callback outbox (since 0.3). Rows are written by the LogWriter in the
  // batch of the events they report (WriteRequest::outbox); the dispatcher
  // then reads, reschedules and removes them here. Its writes are not
  // synced: delivery is at-least-once, so a row that reappears after a power
  // loss is only sent again (receivers deduplicate by message id).
  //
  // Rows due at or before `now_ms`, oldest due first, at most `limit`. Each
  // entry's next_ms is the due time of its key, so it can be passed back.
  Result<std::vector<v1::OutboxEntry>> due_outbox(int64_t now_ms, size_t limit) const;
  // Moves `entry` (found by its id and next_ms) to `next_ms`, storing the
  // entry as given otherwise (attempt, last_error): delete + put, one batch.
  Status reschedule_outbox(const v1::OutboxEntry& entry, int64_t next_ms);
  // Deletes the row of `entry` (id and next_ms); absent is fine.
  Status remove_outbox(const v1::OutboxEntry& entry);
  Result<uint64_t> count_outbox() const;

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
  // read-only ("store_read_only", until restart).
  Status write_failed(const rocksdb::Status& s);
  // Writers report the bytes they wrote, so that the free-space floor also
  // holds between two samples (DiskGuard::note_written).
  void note_written(uint64_t bytes);

  // For LogWriter and tests in storage/ only.
  rocksdb::DB* db() const { return db_; }
  rocksdb::ColumnFamilyHandle* cf_events() const { return cf_events_; }
  rocksdb::ColumnFamilyHandle* cf_executions() const { return cf_executions_; }
  rocksdb::ColumnFamilyHandle* cf_flows() const { return cf_flows_; }
  rocksdb::ColumnFamilyHandle* cf_auth() const { return cf_auth_; }
  rocksdb::ColumnFamilyHandle* cf_snapshots() const { return cf_snapshots_; }
  rocksdb::ColumnFamilyHandle* cf_secrets() const { return cf_secrets_; }
  rocksdb::ColumnFamilyHandle* cf_audit() const { return cf_audit_; }
  rocksdb::ColumnFamilyHandle* cf_outbox() const { return cf_outbox_; }
  // Whether writes fsync: true unless the store is Durability::kAsync.
  bool sync_writes() const { return options_.durability == Durability::kSync; }
  void latch_read_only() { latch_read_only(Status("storage_error", "latched by request")); }
  // Keeps the first cause, for read_only_error().
  void latch_read_only(const Status& cause);

 private:
  Store() = default;
  Result<std::vector<std::string>> key_suffixes(rocksdb::ColumnFamilyHandle* cf,
                                                const std::string& prefix) const;
  Result<std::optional<std::string>> get_value(rocksdb::ColumnFamilyHandle* cf,
                                               const std::string& key) const;
  // Adds the key-id index rows that keys written before 0.3 lack.
  Status backfill_api_key_index();
  // Initialises next_queue_seq_ from the queue rows present.
  Status init_queue_seq();
  StoreOptions options_;
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
  std::atomic<uint64_t> next_queue_seq_{1};
  struct Locks;  // flow- and auth-write mutexes and the read-only cause
  std::unique_ptr<Locks> locks_;
};

bool is_terminal_status(std::string_view status);

}  // namespace yantra::storage
