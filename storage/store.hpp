// The node's durable store: one RocksDB database with a column family per
// kind of record (see docs/event-log-format.md):
//   events      partition(be16) | len(u8) | execution_id | seq(be64) -> Event
//   executions  "s" | execution_id                          -> ExecutionSummary
//               "r" | partition(be16) | execution_id        -> "" (active marker)
//               "l" | tenant | 0x00 | execution_id          -> flow_id (listing)
//               "i" | tenant | 0x00 | idempotency key       -> execution_id
//               "f" | len(u8) | parent_id | fork_id        -> "" (forks)
//   flows       tenant | 0x00 | flow_id | 0x00 | version(be32) -> FlowVersion
//               "e" | ended_ms(be64) | execution_id         -> partition (retention queue)
//   snapshots   partition(be16) | len(u8) | execution_id | seq(be64) -> Snapshot
//   auth        "k" | sha256(secret)                        -> ApiKey
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
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/result.hpp"
#include "yantra/v1/events.pb.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace yantra::storage {

enum class Durability { kSync, kAsync };

struct StoreOptions {
  std::string path;
  Durability durability = Durability::kSync;
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

  // API keys, by the SHA-256 (hex) of their secret. Writes are synced.
  Status put_api_key(std::string_view hash, const v1::ApiKey& key);
  Result<std::optional<v1::ApiKey>> find_api_key(std::string_view hash) const;
  Result<size_t> count_api_keys(std::string_view tenant) const;

  // True once a write failed; every later write fails.
  bool read_only() const { return read_only_.load(); }
  // The error later writes get: "store_read_only" naming the first cause;
  // ok while the store is writable.
  Status read_only_error() const;

  // For LogWriter and tests in storage/ only.
  rocksdb::DB* db() const { return db_; }
  rocksdb::ColumnFamilyHandle* cf_events() const { return cf_events_; }
  rocksdb::ColumnFamilyHandle* cf_executions() const { return cf_executions_; }
  rocksdb::ColumnFamilyHandle* cf_flows() const { return cf_flows_; }
  rocksdb::ColumnFamilyHandle* cf_auth() const { return cf_auth_; }
  rocksdb::ColumnFamilyHandle* cf_snapshots() const { return cf_snapshots_; }
  void latch_read_only() { latch_read_only(Status("storage_error", "latched by request")); }
  // Keeps the first cause, for read_only_error().
  void latch_read_only(const Status& cause);

 private:
  Store() = default;
  Result<std::vector<std::string>> key_suffixes(rocksdb::ColumnFamilyHandle* cf,
                                                const std::string& prefix) const;
  Result<std::optional<std::string>> get_value(rocksdb::ColumnFamilyHandle* cf,
                                               const std::string& key) const;
  StoreOptions options_;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* cf_events_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_executions_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_flows_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_auth_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_snapshots_ = nullptr;
  std::atomic<bool> read_only_{false};
  struct Locks;  // flow-write mutex and the read-only cause
  std::unique_ptr<Locks> locks_;
};

bool is_terminal_status(std::string_view status);

}  // namespace yantra::storage
