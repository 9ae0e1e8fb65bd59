// Store: the RocksDB side of the node. Design notes:
//
// - One DB, one column family per kind of record, so each can be tuned (and
//   later compacted or dropped) on its own. Open also opens every column
//   family already present: RocksDB refuses to open a DB without all of them,
//   and an older binary must still start on a database a newer one touched.
// - `events` is only ever read as "one execution, a seq range". Its prefix
//   extractor yields exactly partition|len|id, so the SST bloom filters are
//   per execution and a scan touches only files that hold that execution;
//   whole-key filters would be useless there (events are never point-read).
//   `executions` is point-read by id ("s" keys), so it gets whole-key blooms.
// - Every scan is bounded on both sides (internal/scan.hpp, the one place
//   that creates iterators) so RocksDB stops at the prefix end instead of
//   reading into the next execution's blocks. A scan across executions of
//   `events` (retention, export) must use SeekMode::kTotalOrder, or prefix
//   seek skips keys.
// - Any failed write latches the store read-only: after an fsync error the
//   state of the WAL is unknown, and acknowledging later writes would lie.
// - Each kind of record has its typed store (event_log.cpp, ...), built over
//   one internal::Db view of the handles once the DB is open; this file only
//   opens, closes and latches.
// - The callback outbox is a queue keyed by due time: rows are written at
//   the tail and deleted at the head, so its CF compacts files that are
//   mostly tombstones (CompactOnDeletionCollector), which keeps "scan from
//   the head" cheap after many deliveries.
// - `segments` (this node's copy of the replicated partition logs, since
//   0.5) is written in lsn order and deleted by ranges (truncation, trims),
//   and point-read for its metadata rows: plain options, whole-key blooms.
//   What it stores and refuses is segment_store.cpp's.
// - A damaged write-ahead log must never cost acknowledged writes silently
//   (what RocksDB 7.8 does with each kind of damage was measured; see
//   docs/operations.md). Open runs RocksDB with kTolerateCorruptedTailRecords
//   (a torn last record is a power cut and recovers quietly; a bad record
//   before the tail fails the open), track_and_verify_wals_in_manifest
//   (closed WALs missing or cut), paranoid_checks (without it corruption is
//   skipped, not reported), and our WalGuard (the live WAL missing or cut)
//   and SequenceCheck (holes RocksDB's reader skips silently). Any of them
//   makes open fail with "storage_corrupt", unless accept_data_loss: then
//   the WALs are copied aside and RocksDB's point-in-time recovery keeps the
//   longest consistent prefix, reporting what it dropped.
// - A full disk (see disk_guard.hpp): RocksDB 7.8 as Debian builds it
//   aborts on the next use of any file writer that saw an error, so it must
//   never see ENOSPC on its WAL. Hence the floor (writes stop well before the
//   disk is full), our own info LOG (internal/info_log.hpp: it drops lines
//   instead of aborting), and, if the disk is already full at open, a
//   read-only open so that the node still starts and serves reads. Should
//   RocksDB still run out of space, where it happened decides
//   (WalErrorListener): a failed flush or compaction is recovered by RocksDB
//   itself once space is back, so it is only "store_no_space"; a failed WAL
//   write is not (the next append to that WAL would abort the process,
//   measured), so it latches the store read-only and a restart, once space
//   is freed, recovers.
#include "storage/store.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/table_properties_collectors.h>

#include <algorithm>
#include <filesystem>
#include <mutex>

#include "base/metrics.hpp"
#include "base/storage_errc.hpp"
#include "storage/auth_store.hpp"
#include "storage/event_log.hpp"
#include "storage/execution_index.hpp"
#include "storage/flow_store.hpp"
#include "storage/internal/db.hpp"
#include "storage/internal/info_log.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/wal_guard.hpp"
#include "storage/outbox.hpp"
#include "storage/run_queue.hpp"
#include "storage/segment_store.hpp"

namespace yantra::storage {

namespace {

constexpr const char* kCfEvents = "events";
constexpr const char* kCfExecutions = "executions";
constexpr const char* kCfFlows = "flows";
constexpr const char* kCfAuth = "auth";
constexpr const char* kCfSnapshots = "snapshots";
constexpr const char* kCfSecrets = "secrets";    // since 0.3, see vault.hpp
constexpr const char* kCfAudit = "audit";        // since 0.3, see audit_log.hpp
constexpr const char* kCfOutbox = "outbox";      // since 0.3, callback deliveries
constexpr const char* kCfSegments = "segments";  // since 0.5, the replicated log

// The per-execution prefix of an event key (see keys.hpp). Its name is stored
// in SST files: rename it only if the prefix changes, since RocksDB then
// ignores the old files' prefix blooms.
class ExecutionPrefix final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "yantra.ExecutionPrefix.v1"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return {key.data(), keys::event_prefix_size(key.data(), key.size())};
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return keys::event_prefix_size(key.data(), key.size()) != 0;
  }
};

using internal::invalid;
using internal::storage_error;

// Tells the store that a write of the WAL itself failed (RocksDB reports it
// as a background error of the write path before Write() returns). Lives as
// long as the DB, which Store closes before its members go.
class WalErrorListener final : public rocksdb::EventListener {
 public:
  explicit WalErrorListener(std::atomic<bool>* wal_failed) : wal_failed_(wal_failed) {}
  const char* Name() const override { return "yantra.WalErrorListener"; }
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status*) override {
    if (reason == rocksdb::BackgroundErrorReason::kWriteCallback ||
        reason == rocksdb::BackgroundErrorReason::kMemTable) {
      wal_failed_->store(true);
    }
  }

 private:
  std::atomic<bool>* wal_failed_;
};

rocksdb::BlockBasedTableOptions table_options(const std::shared_ptr<rocksdb::Cache>& cache,
                                              bool whole_key_filtering) {
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache;
  // 10 bits/key: ~1% false positives for about 1.25 bytes per key.
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  t.whole_key_filtering = whole_key_filtering;
  // Keep index and filter blocks in the cache, accounted for, and pinned for
  // L0 where recent (hot) events live.
  t.cache_index_and_filter_blocks = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  return t;
}

}  // namespace

struct Store::Locks {
  mutable std::mutex cause_mu;
  std::string read_only_cause;  // first failure, guarded by cause_mu
};

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options) {
  if (options.path.empty()) return invalid("store path is empty");
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return Status(StorageErrc::kError, "cannot create " + options.path + ": " + ec.message());
  }

  std::unique_ptr<Store> store(new Store());
  store->options_ = options;
  store->locks_ = std::make_unique<Locks>();
  if (options.min_free_disk_bytes > 0) {
    DiskGuard::Options guard;
    guard.path = options.path;
    guard.min_free_bytes = options.min_free_disk_bytes;
    guard.interval = options.disk_sample_interval;
    guard.probe = options.disk_probe;
    Store* raw = store.get();  // the guard dies first, in ~Store
    guard.on_change = [raw](bool below) { raw->publish_writable(below); };
    store->disk_guard_ = DiskGuard::start(std::move(guard));
  }

  auto recovery = std::make_shared<internal::WalRecovery>();
  recovery->guard = std::make_shared<internal::WalGuard>(
      options.path, options.file_system ? options.file_system : rocksdb::FileSystem::Default());
  recovery->env = rocksdb::NewCompositeEnv(recovery->guard);

  rocksdb::DBOptions db_options;
  db_options.env = recovery->env.get();
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.info_log = internal::InfoLog::open(options.path);
  db_options.listeners.push_back(std::make_shared<WalErrorListener>(&store->wal_failed_));
  // Recovery strictness, see the design notes above. Recovered memtables are
  // flushed at open (avoid_flush_during_recovery off), so a WAL is replayed
  // once and then deleted. Measured against the disk-full design, which had
  // it on so that a restart on a nearly full disk writes no SST: on, an
  // open that accepted data loss keeps the damaged WAL, and the next
  // ordinary open refuses it again (storage_fault_test's
  // CorruptRecordBeforeTheTailRefusesToOpen and fault_wal_damage_test fail);
  // off, every disk-full test passes too, because an open that finds no
  // room to flush fails with NoSpace and falls back to the read-only open
  // below (storage_disk_guard_test's ARestartWithNoRoomToFlushTheWal...).
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db_options.track_and_verify_wals_in_manifest = true;
  db_options.paranoid_checks = true;
  db_options.avoid_flush_during_recovery = false;
  db_options.wal_filter = &recovery->sequence_check;
  // Background flushes and compactions share the node's 2 cores with the
  // engine; more threads would only contend.
  db_options.IncreaseParallelism(2);

  auto cache = rocksdb::NewLRUCache(64 << 20);

  rocksdb::ColumnFamilyOptions events_options;
  events_options.prefix_extractor = std::make_shared<ExecutionPrefix>();
  events_options.table_factory.reset(
      rocksdb::NewBlockBasedTableFactory(table_options(cache, /*whole_key_filtering=*/false)));
  // Skips memtable reads of executions that are not in it (most, at scale).
  events_options.memtable_prefix_bloom_size_ratio = 0.02;
  events_options.level_compaction_dynamic_level_bytes = true;

  rocksdb::ColumnFamilyOptions executions_options;
  executions_options.table_factory.reset(
      rocksdb::NewBlockBasedTableFactory(table_options(cache, /*whole_key_filtering=*/true)));
  executions_options.level_compaction_dynamic_level_bytes = true;

  rocksdb::ColumnFamilyOptions plain_options;
  plain_options.table_factory.reset(
      rocksdb::NewBlockBasedTableFactory(table_options(cache, /*whole_key_filtering=*/true)));

  // A queue: a file whose window of 128 entries holds 64 deletions is
  // compacted soon, so scans from the head do not wade through tombstones.
  rocksdb::ColumnFamilyOptions outbox_options = plain_options;
  outbox_options.table_properties_collector_factories.emplace_back(
      rocksdb::NewCompactOnDeletionCollectorFactory(128, 64));

  std::vector<std::string> names = {rocksdb::kDefaultColumnFamilyName,
                                    kCfEvents,
                                    kCfExecutions,
                                    kCfFlows,
                                    kCfAuth,
                                    kCfSnapshots,
                                    kCfSecrets,
                                    kCfAudit,
                                    kCfOutbox,
                                    kCfSegments};
  std::vector<std::string> existing;
  // Fails on a fresh directory (no CURRENT file): then only our own column
  // families exist. On a broken DB, Open below reports the real problem.
  if (rocksdb::DB::ListColumnFamilies(db_options, options.path, &existing).ok()) {
    for (auto& name : existing) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.reserve(names.size());
  for (const auto& name : names) {
    if (name == kCfEvents || name == kCfSnapshots) {
      descriptors.emplace_back(name, events_options);
    } else if (name == kCfExecutions) {
      descriptors.emplace_back(name, executions_options);
    } else if (name == kCfOutbox) {
      descriptors.emplace_back(name, outbox_options);
    } else {
      descriptors.emplace_back(name, plain_options);
    }
  }

  static metrics::Counter& recovered_with_loss = metrics::global().counter(
      "yantra_storage_recovered_with_data_loss",
      "1 once the store was opened with accept_data_loss over a damaged write-ahead log");
  store->recovery_ = recovery;
  std::vector<std::string> damage;
  // Not even the few KB an open writes (the guard's list, a MANIFEST, an
  // OPTIONS file) fit: serve what is stored, read-only, rather than not at
  // all (the alternative is a node that cannot start until someone frees
  // space by hand).
  bool no_space = false;
  if (rocksdb::IOStatus s = recovery->guard->check(&damage); !s.ok()) {
    if (!s.IsNoSpace()) return storage_error(s);
    no_space = true;
  }
  if (damage.empty() && !no_space) {
    rocksdb::Status s =
        rocksdb::DB::Open(db_options, options.path, descriptors, &store->handles_, &store->db_);
    if (s.IsNoSpace()) {
      no_space = true;
    } else if (!s.ok() && !s.IsCorruption()) {
      return storage_error(s);
    } else if (!s.ok()) {
      damage = recovery->sequence_check.gaps();
      damage.push_back("RocksDB: " + s.ToString());
    }
  }
  if (no_space && damage.empty()) {
    // The read-only open replays the WALs into memory only (it writes
    // nothing), through the same strict checks as the open that failed.
    recovery->sequence_check.reset();
    store->handles_.clear();
    store->db_ = nullptr;
    rocksdb::Status s = rocksdb::DB::OpenForReadOnly(db_options, options.path, descriptors,
                                                     &store->handles_, &store->db_);
    if (s.IsCorruption()) {
      damage = recovery->sequence_check.gaps();
      damage.push_back("RocksDB: " + s.ToString());
    } else if (!s.ok()) {
      return storage_error(s);
    } else {
      store->opened_read_only_.store(true);
    }
  }
  if (!damage.empty()) {
    std::string found;
    for (const auto& d : damage) found += (found.empty() ? "" : "; ") + d;
    if (!options.accept_data_loss) {
      return Status(StorageErrc::kCorrupt,
                    "the data in " + options.path + " is damaged: " + found +
                        ". Refusing to open rather than lose acknowledged writes silently; "
                        "accept_data_loss recovers to the last consistent point instead");
    }
    Status st =
        internal::open_accepting_loss(*recovery, db_options, options.path, descriptors, damage,
                                      &store->handles_, &store->db_, &store->data_loss_);
    if (!st.is_ok()) return st;
    recovered_with_loss.inc();
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == kCfEvents) store->cf_events_ = store->handles_[i];
    if (names[i] == kCfExecutions) store->cf_executions_ = store->handles_[i];
    if (names[i] == kCfFlows) store->cf_flows_ = store->handles_[i];
    if (names[i] == kCfAuth) store->cf_auth_ = store->handles_[i];
    if (names[i] == kCfSnapshots) store->cf_snapshots_ = store->handles_[i];
    if (names[i] == kCfSecrets) store->cf_secrets_ = store->handles_[i];
    if (names[i] == kCfAudit) store->cf_audit_ = store->handles_[i];
    if (names[i] == kCfOutbox) store->cf_outbox_ = store->handles_[i];
    if (names[i] == kCfSegments) store->cf_segments_ = store->handles_[i];
  }
  if (Status st = store->open_stores(); !st.is_ok()) return st;
  store->publish_writable(store->out_of_space());
  return store;
}

Store::Store() = default;

Status Store::open_stores() {
  db_view_ = std::make_unique<internal::Db>();
  internal::Db& db = *db_view_;
  db.rocks = db_;
  db.events = cf_events_;
  db.executions = cf_executions_;
  db.flows = cf_flows_;
  db.auth = cf_auth_;
  db.snapshots = cf_snapshots_;
  db.secrets = cf_secrets_;
  db.audit = cf_audit_;
  db.outbox = cf_outbox_;
  db.segments = cf_segments_;
  db.store = this;
  executions_.reset(new ExecutionIndex(db));
  events_.reset(new EventLog(db, *executions_));
  flows_.reset(new FlowStore(db));
  auth_.reset(new AuthStore(db));
  run_queue_.reset(new RunQueue(db));
  outbox_.reset(new Outbox(db));
  segments_.reset(new SegmentStore(db));
  // A store opened read-only (disk full) cannot backfill; the next open
  // with space does.
  if (!opened_read_only_.load()) {
    if (Status st = auth_->backfill_api_key_index(); !st.is_ok()) return st;
  }
  return run_queue_->init_seq();
}

Store::~Store() {
  disk_guard_.reset();  // joins its thread, whose callback reads this store
  // The typed stores hold no iterators or snapshots: nothing of theirs
  // outlives a call, so they may go before or after the handles.
  if (db_ == nullptr) return;
  for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
  // Close() waits for background work; its error has nowhere to go, and all
  // acknowledged writes are already in the (synced) WAL.
  db_->Close().PermitUncheckedError();
  delete db_;
}

bool Store::read_only() const {
  return latched() || out_of_space();
}

Status Store::read_only_error() const {
  if (!read_only()) return Status::ok();
  static metrics::Counter& latched_refusals = metrics::global().counter(
      "yantra_storage_write_refusals_total", "Writes refused while the store is read-only",
      {{"reason", "read_only"}});
  static metrics::Counter& space_refusals = metrics::global().counter(
      "yantra_storage_write_refusals_total", "Writes refused while the store is read-only",
      {{"reason", "no_space"}});
  Status s = write_status();
  if (s.is(StorageErrc::kNoSpace)) {
    space_refusals.inc();
  } else if (!s.is_ok()) {
    latched_refusals.inc();
  }
  return s;
}

Status Store::write_status() const {
  if (!read_only()) return Status::ok();
  if (latched()) {
    std::lock_guard lock(locks_->cause_mu);
    return {StorageErrc::kReadOnly,
            "store is read-only after a write error: " + locks_->read_only_cause};
  }
  if (opened_read_only_.load()) {
    return {StorageErrc::kNoSpace, "the node is read-only: the disk under " + options_.path +
                                       " was full when it started; free space, then restart it"};
  }
  return disk_guard_->refusal();
}

void Store::latch_read_only(const Status& cause) {
  {
    std::lock_guard lock(locks_->cause_mu);
    if (locks_->read_only_cause.empty()) locks_->read_only_cause = cause.to_string();
  }
  read_only_.store(true);
  publish_writable(out_of_space());
}

Status Store::write_failed(const rocksdb::Status& s) {
  if (s.IsNoSpace() && disk_guard_ != nullptr && !wal_failed_.load()) {
    disk_guard_->note_no_space();
    return read_only_error();
  }
  Status error = storage_error(s);
  latch_read_only(error);
  return error;
}

void Store::note_written(uint64_t bytes) {
  if (disk_guard_ != nullptr) disk_guard_->note_written(bytes);
}

void Store::publish_writable(bool below_floor) const {
  static metrics::Gauge& writable = metrics::global().gauge(
      "yantra_storage_writable", "1 while the store accepts writes, 0 while it is read-only");
  writable.set(latched() || opened_read_only_.load() || below_floor ? 0 : 1);
}

namespace internal {

const Db& db_of(const Store& store) {
  return *store.db_view_;
}

}  // namespace internal

}  // namespace yantra::storage
