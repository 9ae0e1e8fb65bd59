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
// - Every scan is bounded by iterate_upper_bound so RocksDB stops at the
//   prefix end instead of reading into the next execution's blocks. A scan
//   across executions of `events` (retention, export) must set
//   ReadOptions::total_order_seek, or prefix seek skips keys.
// - Flow writes are rare; a store-wide mutex around "read latest, write
//   latest+1" is simpler than a merge operator or a transaction and gives
//   concurrent puts distinct, dense versions.
// - Any failed write latches the store read-only: after an fsync error the
//   state of the WAL is unknown, and acknowledging later writes would lie.
// - API keys get a per-tenant index ("x" rows) written in the same batch as
//   the key, so listing and revoking by key id touch one tenant's rows only;
//   keys from before the index are indexed once at open. Key and tenant
//   writes read-modify-write, so they share one mutex (they are rare).
// - The run queue's seq is an atomic counter seeded at open from the rows
//   present: a seq freed by a dequeue may be reused after a restart, which is
//   harmless since only the order among rows present matters.
// - The callback outbox is a queue keyed by due time: rows are written at
//   the tail and deleted at the head, so its CF compacts files that are
//   mostly tombstones (CompactOnDeletionCollector), which keeps "scan from
//   the head" cheap after many deliveries.
// - A full disk (see disk_guard.hpp): RocksDB 7.8 as Debian builds it
//   aborts on the next use of any file writer that saw an error, so it must
//   never see ENOSPC on its WAL. Hence the floor (writes stop well before the
//   disk is full), our own info LOG (internal/info_log.hpp: it drops lines
//   instead of aborting), avoid_flush_during_recovery (a restart below the
//   floor writes no SSTs; the WAL is replayed into memory and kept), and,
//   if the disk is already full at open, a read-only open so that the node
//   still starts and serves reads. Should RocksDB still run out of space,
//   where it happened decides (WalErrorListener): a failed flush or
//   compaction is recovered by RocksDB itself once space is back, so it is
//   only "store_no_space"; a failed WAL write is not (the next append to
//   that WAL would abort the process, measured), so it latches the store
//   read-only and a restart, once space is freed, recovers.
#include "storage/store.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "base/metrics.hpp"
#include "storage/internal/info_log.hpp"
#include "storage/internal/keys.hpp"

namespace yantra::storage {

namespace {

constexpr const char* kCfEvents = "events";
constexpr const char* kCfExecutions = "executions";
constexpr const char* kCfFlows = "flows";
constexpr const char* kCfAuth = "auth";
constexpr const char* kCfSnapshots = "snapshots";
constexpr const char* kCfSecrets = "secrets";  // since 0.3, see vault.hpp
constexpr const char* kCfAudit = "audit";      // since 0.3, see audit_log.hpp
constexpr const char* kCfOutbox = "outbox";    // since 0.3, callback deliveries

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

Status storage_error(const rocksdb::Status& s) {
  return {"storage_error", s.ToString()};
}

Status invalid(std::string message) {
  return {"invalid_argument", std::move(message)};
}

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

// The record behind a point read, parsed; nullopt when absent, and
// "storage_corrupt" naming `what` when it does not parse.
template <typename Message>
Result<std::optional<Message>> parse_row(Result<std::optional<std::string>> raw,
                                         const std::string& what) {
  if (!raw.ok()) return raw.status();
  if (!raw.value().has_value()) return std::optional<Message>();
  Message message;
  if (!message.ParseFromString(*raw.value())) {
    return Status("storage_corrupt", what + " does not parse");
  }
  return std::optional<Message>(std::move(message));
}

Status invalid_tenant() {
  return invalid("tenant must be non-empty and contain no NUL");
}

// Writes `batch`; a failure goes through Store::write_failed.
Status write_batch(Store& store, rocksdb::WriteBatch& batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status s = store.db()->Write(wo, &batch);
  if (!s.ok()) return store.write_failed(s);
  return {};
}

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

}  // namespace

struct Store::Locks {
  std::mutex flow_mu;  // serialises put_flow
  std::mutex auth_mu;  // serialises API key and tenant writes (read-modify-write)
  mutable std::mutex cause_mu;
  std::string read_only_cause;  // first failure, guarded by cause_mu
};

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options) {
  if (options.path.empty()) return invalid("store path is empty");
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return Status("storage_error", "cannot create " + options.path + ": " + ec.message());
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

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.info_log = internal::InfoLog::open(options.path);
  db_options.listeners.push_back(std::make_shared<WalErrorListener>(&store->wal_failed_));
  // Recovery keeps the replayed WAL in memtables instead of flushing them to
  // L0 at open: a node restarted on a nearly full disk writes no SST.
  db_options.avoid_flush_during_recovery = true;
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
                                    kCfOutbox};
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

  rocksdb::Status s =
      rocksdb::DB::Open(db_options, options.path, descriptors, &store->handles_, &store->db_);
  if (s.IsNoSpace()) {
    // Not even the few KB an open writes (a MANIFEST, an OPTIONS file) fit:
    // serve what is stored, read-only, rather than not at all.
    s = rocksdb::DB::OpenForReadOnly(db_options, options.path, descriptors, &store->handles_,
                                     &store->db_);
    if (s.ok()) store->opened_read_only_.store(true);
  }
  if (!s.ok()) return storage_error(s);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == kCfEvents) store->cf_events_ = store->handles_[i];
    if (names[i] == kCfExecutions) store->cf_executions_ = store->handles_[i];
    if (names[i] == kCfFlows) store->cf_flows_ = store->handles_[i];
    if (names[i] == kCfAuth) store->cf_auth_ = store->handles_[i];
    if (names[i] == kCfSnapshots) store->cf_snapshots_ = store->handles_[i];
    if (names[i] == kCfSecrets) store->cf_secrets_ = store->handles_[i];
    if (names[i] == kCfAudit) store->cf_audit_ = store->handles_[i];
    if (names[i] == kCfOutbox) store->cf_outbox_ = store->handles_[i];
  }
  if (!store->opened_read_only_.load()) {
    if (Status st = store->backfill_api_key_index(); !st.is_ok()) return st;
  }
  if (Status st = store->init_queue_seq(); !st.is_ok()) return st;
  store->publish_writable(store->out_of_space());
  return store;
}

Store::~Store() {
  disk_guard_.reset();  // joins its thread, whose callback reads this store
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
  if (s.code() == "store_no_space") {
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
    return {"store_read_only",
            "store is read-only after a write error: " + locks_->read_only_cause};
  }
  if (opened_read_only_.load()) {
    return {"store_no_space", "the node is read-only: the disk under " + options_.path +
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
  latch_read_only(storage_error(s));
  return read_only_error();
}

void Store::note_written(uint64_t bytes) {
  if (disk_guard_ != nullptr) disk_guard_->note_written(bytes);
}

void Store::publish_writable(bool below_floor) const {
  static metrics::Gauge& writable = metrics::global().gauge(
      "yantra_storage_writable", "1 while the store accepts writes, 0 while it is read-only");
  writable.set(latched() || opened_read_only_.load() || below_floor ? 0 : 1);
}

Result<std::vector<v1::Event>> Store::read_events(uint32_t partition, std::string_view execution_id,
                                                  uint64_t from_seq, uint64_t to_seq) const {
  if (!keys::valid_partition(partition)) return invalid("partition out of range");
  if (!keys::valid_execution_id(execution_id)) return invalid("execution id must be 1..255 bytes");
  std::vector<v1::Event> events;
  if (from_seq > to_seq) return events;

  std::string start;
  keys::event_key(start, partition, execution_id, from_seq);
  // Smallest key above prefix|to_seq, still inside the prefix, so prefix
  // seek stays valid for the whole scan.
  std::string upper;
  keys::event_key(upper, partition, execution_id, to_seq);
  upper.push_back('\0');
  const size_t prefix_size = start.size() - 8;

  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_events_));
  for (it->Seek(start); it->Valid(); it->Next()) {
    rocksdb::Slice key = it->key();
    rocksdb::Slice value = it->value();
    const uint64_t seq =
        key.size() == prefix_size + 8 ? keys::get_be64(key.data() + prefix_size) : 0;
    v1::Event& event = events.emplace_back();
    if (key.size() != prefix_size + 8 ||
        !event.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return Status("storage_corrupt", "event " + std::string(execution_id) + "/" +
                                           std::to_string(seq) + " of partition " +
                                           std::to_string(partition) + " does not parse");
    }
  }
  if (!it->status().ok()) return storage_error(it->status());
  return events;
}

Result<std::optional<v1::ExecutionSummary>> Store::get_summary(
    std::string_view execution_id) const {
  if (!keys::valid_execution_id(execution_id)) return invalid("execution id must be 1..255 bytes");
  std::string key;
  keys::summary_key(key, execution_id);
  return parse_row<v1::ExecutionSummary>(get_value(cf_executions_, key),
                                         "summary of execution " + std::string(execution_id));
}

Result<std::optional<std::string>> Store::get_value(rocksdb::ColumnFamilyHandle* cf,
                                                    const std::string& key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return storage_error(s);
  return std::optional<std::string>(std::move(value));
}

Result<std::vector<std::string>> Store::active_executions(uint32_t partition) const {
  if (!keys::valid_partition(partition)) return invalid("partition out of range");
  std::string prefix;
  keys::active_prefix(prefix, partition);
  return key_suffixes(cf_executions_, prefix);
}

// The rest of every key that starts with `prefix`, in key order (the ids of
// index rows such as active markers and fork links).
Result<std::vector<std::string>> Store::key_suffixes(rocksdb::ColumnFamilyHandle* cf,
                                                     const std::string& prefix) const {
  std::string upper = keys::prefix_successor(prefix);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    out.emplace_back(it->key().data() + prefix.size(), it->key().size() - prefix.size());
  }
  if (!it->status().ok()) return storage_error(it->status());
  return out;
}

Result<uint32_t> Store::put_flow(v1::FlowVersion flow) {
  if (!keys::valid_flow_part(flow.tenant()) || !keys::valid_flow_part(flow.flow_id())) {
    return invalid("tenant and flow id must be non-empty and contain no NUL byte");
  }
  std::lock_guard lock(locks_->flow_mu);
  if (read_only()) return read_only_error();

  std::string prefix;
  keys::flow_prefix(prefix, flow.tenant(), flow.flow_id());
  std::string upper = keys::prefix_successor(prefix);
  rocksdb::ReadOptions ro;
  rocksdb::Slice lower_slice(prefix);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  uint32_t latest = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_flows_));
    it->SeekToLast();
    if (it->Valid()) {
      rocksdb::Slice key = it->key();
      if (key.size() != prefix.size() + 4) {
        return Status("storage_corrupt",
                      "flow key of " + flow.tenant() + "/" + flow.flow_id() + " has a bad size");
      }
      latest = keys::get_be32(key.data() + prefix.size());
    } else if (!it->status().ok()) {
      return storage_error(it->status());
    }
  }
  if (latest == UINT32_MAX) return invalid("flow has too many versions");
  const uint32_t version = latest + 1;
  flow.set_version(version);

  std::string key;
  keys::flow_key(key, flow.tenant(), flow.flow_id(), version);
  std::string value;
  flow.SerializeToString(&value);
  rocksdb::WriteOptions wo;
  wo.sync = true;  // rare and user-visible: always durable, whatever the mode
  rocksdb::Status s = db_->Put(wo, cf_flows_, key, value);
  if (!s.ok()) return write_failed(s);
  return version;
}

Result<std::optional<v1::FlowVersion>> Store::get_flow(std::string_view tenant,
                                                       std::string_view flow_id,
                                                       uint32_t version) const {
  if (!keys::valid_flow_part(tenant) || !keys::valid_flow_part(flow_id)) {
    return invalid("tenant and flow id must be non-empty and contain no NUL byte");
  }
  std::string value;
  if (version != 0) {
    std::string key;
    keys::flow_key(key, tenant, flow_id, version);
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_flows_, key, &value);
    if (s.IsNotFound()) return std::optional<v1::FlowVersion>();
    if (!s.ok()) return storage_error(s);
  } else {
    std::string prefix;
    keys::flow_prefix(prefix, tenant, flow_id);
    std::string upper = keys::prefix_successor(prefix);
    rocksdb::ReadOptions ro;
    rocksdb::Slice lower_slice(prefix);
    rocksdb::Slice upper_slice(upper);
    ro.iterate_lower_bound = &lower_slice;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_flows_));
    it->SeekToLast();
    if (!it->Valid()) {
      if (!it->status().ok()) return storage_error(it->status());
      return std::optional<v1::FlowVersion>();
    }
    value = it->value().ToString();
  }
  v1::FlowVersion flow;
  if (!flow.ParseFromString(value)) {
    return Status("storage_corrupt",
                  "flow " + std::string(tenant) + "/" + std::string(flow_id) + " does not parse");
  }
  return std::optional<v1::FlowVersion>(std::move(flow));
}

Result<std::vector<v1::FlowVersion>> Store::list_flows(std::string_view tenant) const {
  if (!keys::valid_flow_part(tenant)) return invalid("tenant must be non-empty and contain no NUL");
  std::string prefix(tenant);
  prefix.push_back('\0');
  std::string upper = keys::prefix_successor(prefix);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::vector<v1::FlowVersion> flows;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_flows_));
  // Keys sort by flow id then version: the last key before the flow id
  // changes is its latest version.
  v1::FlowVersion current;
  bool have = false;
  auto flush = [&] {
    if (have && !current.deleted()) flows.push_back(std::move(current));
    have = false;
  };
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    v1::FlowVersion fv;
    if (!fv.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status("storage_corrupt",
                    "a flow of tenant " + std::string(tenant) + " does not parse");
    }
    if (have && fv.flow_id() != current.flow_id()) flush();
    current = std::move(fv);
    have = true;
  }
  if (!it->status().ok()) return storage_error(it->status());
  flush();
  return flows;
}

Result<std::vector<v1::FlowVersion>> Store::flow_versions(std::string_view tenant,
                                                          std::string_view flow_id) const {
  if (!keys::valid_flow_part(tenant) || !keys::valid_flow_part(flow_id)) {
    return invalid("tenant and flow id must be non-empty and contain no NUL byte");
  }
  std::string prefix;
  keys::flow_prefix(prefix, tenant, flow_id);
  std::string upper = keys::prefix_successor(prefix);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::vector<v1::FlowVersion> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_flows_));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    v1::FlowVersion& fv = out.emplace_back();
    if (!fv.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status("storage_corrupt", "flow " + std::string(flow_id) + " does not parse");
    }
  }
  if (!it->status().ok()) return storage_error(it->status());
  return out;
}

Result<Store::ExecutionPage> Store::list_executions(std::string_view tenant,
                                                    std::string_view flow_id,
                                                    std::string_view status, size_t limit,
                                                    std::string_view before_id) const {
  if (!keys::valid_flow_part(tenant)) return invalid("tenant must be non-empty and contain no NUL");
  std::string prefix;
  keys::list_prefix(prefix, tenant);
  std::string upper;
  if (before_id.empty()) {
    upper = keys::prefix_successor(prefix);
  } else {
    keys::list_key(upper, tenant, before_id);  // exclusive: strictly older ids
  }
  rocksdb::ReadOptions ro;
  rocksdb::Slice lower_slice(prefix);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  ExecutionPage page;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_executions_));
  // A filtered scan is bounded too, so one request never walks a huge index.
  size_t scanned = 0;
  const size_t max_scan = std::max<size_t>(limit * 50, 10000);
  std::string examined;  // the last id looked at: a cursor resumes strictly below it
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    std::string id(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    if (++scanned > max_scan && !examined.empty()) {
      page.next_cursor = examined;
      return page;
    }
    examined = id;
    if (!flow_id.empty() && it->value() != rocksdb::Slice(flow_id.data(), flow_id.size())) {
      continue;
    }
    auto summary = get_summary(id);
    if (!summary.ok()) return summary.status();
    if (!summary.value()) continue;
    if (!status.empty() && summary.value()->status() != status) continue;
    if (page.items.size() == limit) {
      page.next_cursor = page.items.back().execution_id();
      return page;
    }
    page.items.push_back(std::move(*summary.value()));
  }
  if (!it->status().ok()) return storage_error(it->status());
  return page;
}

Result<std::optional<v1::Snapshot>> Store::latest_snapshot(uint32_t partition,
                                                           std::string_view execution_id,
                                                           uint64_t max_seq) const {
  if (!keys::valid_partition(partition)) return invalid("partition out of range");
  if (!keys::valid_execution_id(execution_id)) return invalid("execution id must be 1..255 bytes");
  std::string lower;
  keys::event_key(lower, partition, execution_id, 0);
  std::string target;
  keys::event_key(target, partition, execution_id, max_seq);
  rocksdb::ReadOptions ro;
  rocksdb::Slice lower_slice(lower);
  ro.iterate_lower_bound = &lower_slice;
  ro.total_order_seek = true;  // SeekForPrev across the prefix boundary
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_snapshots_));
  it->SeekForPrev(target);
  if (!it->Valid()) {
    if (!it->status().ok()) return storage_error(it->status());
    return std::optional<v1::Snapshot>();
  }
  if (it->key().size() != target.size() ||
      std::memcmp(it->key().data(), target.data(), target.size() - 8) != 0) {
    return std::optional<v1::Snapshot>();
  }
  v1::Snapshot snap;
  if (!snap.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
    return Status("storage_corrupt",
                  "a snapshot of " + std::string(execution_id) + " does not parse");
  }
  return std::optional<v1::Snapshot>(std::move(snap));
}

Result<size_t> Store::expire_finished(int64_t ended_before_ms, size_t limit) {
  if (read_only()) return read_only_error();
  std::string lower = "e";
  std::string upper;
  keys::ended_key(upper, static_cast<uint64_t>(std::max<int64_t>(ended_before_ms, 0)), "");
  rocksdb::ReadOptions ro;
  rocksdb::Slice lower_slice(lower);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  rocksdb::WriteBatch batch;
  size_t n = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_executions_));
  for (it->SeekToFirst(); it->Valid() && n < limit; it->Next()) {
    rocksdb::Slice key = it->key();
    if (key.size() <= 9 || it->value().size() != 2) continue;
    std::string id(key.data() + 9, key.size() - 9);
    const uint32_t partition = (static_cast<unsigned char>(it->value()[0]) << 8) |
                               static_cast<unsigned char>(it->value()[1]);
    ++n;
    // An entry is stale when the execution ran again after it ended (a retry
    // appends Resumed): it is live now, or it ended again later and has a
    // newer entry. Only the entry goes; the history stays.
    auto summary = get_summary(id);
    if (!summary.ok()) return summary.status();
    const uint64_t ended_ms = keys::get_be64(key.data() + 1);
    if (!summary.value().has_value() || !is_terminal_status(summary.value()->status()) ||
        static_cast<uint64_t>(summary.value()->updated_ms()) != ended_ms) {
      rocksdb::Status s = batch.Delete(cf_executions_, key);
      if (!s.ok()) return storage_error(s);
      continue;
    }
    std::string begin;
    keys::event_key(begin, partition, id, 0);
    std::string end;
    keys::event_key(end, partition, id, UINT64_MAX);
    end.push_back('\0');
    rocksdb::Status s1 = batch.DeleteRange(cf_events_, begin, end);
    rocksdb::Status s2 = batch.DeleteRange(cf_snapshots_, begin, end);
    rocksdb::Status s3 = batch.Delete(cf_executions_, key);
    if (!s1.ok() || !s2.ok() || !s3.ok()) return storage_error(!s1.ok() ? s1 : !s2.ok() ? s2 : s3);
  }
  if (!it->status().ok()) return storage_error(it->status());
  if (n == 0) return n;
  rocksdb::WriteOptions wo;
  wo.sync = options_.durability == Durability::kSync;
  rocksdb::Status s = db_->Write(wo, &batch);
  if (!s.ok()) return write_failed(s);
  return n;
}

Result<std::vector<std::string>> Store::list_forks(std::string_view parent) const {
  if (!keys::valid_execution_id(parent)) return invalid("execution id must be 1..255 bytes");
  std::string prefix;
  keys::fork_prefix(prefix, parent);
  return key_suffixes(cf_executions_, prefix);
}

Result<std::optional<std::string>> Store::find_idempotent(std::string_view tenant,
                                                          std::string_view key) const {
  if (!keys::valid_flow_part(tenant)) return invalid("tenant must be non-empty and contain no NUL");
  std::string k;
  keys::idempotency_key(k, tenant, key);
  return get_value(cf_executions_, k);
}

Status Store::put_api_key(std::string_view hash, const v1::ApiKey& key) {
  if (!keys::valid_flow_part(key.tenant())) return invalid_tenant();
  if (key.key_id().empty()) return invalid("API key id is empty");
  if (hash.empty()) return invalid("API key hash is empty");
  std::lock_guard lock(locks_->auth_mu);
  if (read_only()) return read_only_error();
  std::string k;
  keys::api_key_key(k, hash);
  // Re-keying a hash to another tenant or id must not leave the old index
  // row pointing at it.
  auto previous = parse_row<v1::ApiKey>(get_value(cf_auth_, k), "an API key");
  if (!previous.ok()) return previous.status();
  rocksdb::WriteBatch batch;
  BatchCheck check;
  std::string index;
  if (previous.value() &&
      (previous.value()->tenant() != key.tenant() || previous.value()->key_id() != key.key_id())) {
    keys::api_key_index_key(index, previous.value()->tenant(), previous.value()->key_id());
    check(batch.Delete(cf_auth_, index));
  }
  check(batch.Put(cf_auth_, k, key.SerializeAsString()));
  keys::api_key_index_key(index, key.tenant(), key.key_id());
  check(batch.Put(cf_auth_, index, rocksdb::Slice(hash.data(), hash.size())));
  if (Status st = check.status(); !st.is_ok()) return st;
  return write_batch(*this, batch, sync_writes());
}

Result<std::optional<v1::ApiKey>> Store::find_api_key(std::string_view hash) const {
  std::string k;
  keys::api_key_key(k, hash);
  return parse_row<v1::ApiKey>(get_value(cf_auth_, k), "an API key");
}

Result<size_t> Store::count_api_keys(std::string_view tenant) const {
  auto all = list_api_keys(tenant);
  if (!all.ok()) return all.status();
  return static_cast<size_t>(
      std::count_if(all->begin(), all->end(), [](const v1::ApiKey& k) { return !k.revoked(); }));
}

Result<std::vector<v1::ApiKey>> Store::list_api_keys(std::string_view tenant) const {
  if (!keys::valid_flow_part(tenant)) return invalid_tenant();
  std::string prefix;
  keys::api_key_index_prefix(prefix, tenant);
  std::string upper = keys::prefix_successor(prefix);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::vector<v1::ApiKey> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_auth_));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto key = find_api_key(it->value().ToStringView());
    if (!key.ok()) return key.status();
    // An index row whose key is gone or moved is stale: skip it rather than
    // show another tenant's key.
    if (!key.value() || key.value()->tenant() != tenant) continue;
    out.push_back(std::move(*key.value()));
  }
  if (!it->status().ok()) return storage_error(it->status());
  return out;
}

Result<std::optional<std::pair<std::string, v1::ApiKey>>> Store::find_api_key_by_id(
    std::string_view tenant, std::string_view key_id) const {
  using Found = std::optional<std::pair<std::string, v1::ApiKey>>;
  if (!keys::valid_flow_part(tenant)) return invalid_tenant();
  if (key_id.empty()) return Found();
  std::string index;
  keys::api_key_index_key(index, tenant, key_id);
  auto hash = get_value(cf_auth_, index);
  if (!hash.ok()) return hash.status();
  if (!hash.value()) return Found();
  auto key = find_api_key(*hash.value());
  if (!key.ok()) return key.status();
  if (!key.value() || key.value()->tenant() != tenant || key.value()->key_id() != key_id) {
    return Found();
  }
  return Found(std::make_pair(std::move(*hash.value()), std::move(*key.value())));
}

Result<std::string> Store::revoke_api_key(std::string_view tenant, std::string_view key_id) {
  if (!keys::valid_flow_part(tenant)) return invalid_tenant();
  std::lock_guard lock(locks_->auth_mu);
  if (read_only()) return read_only_error();
  auto found = find_api_key_by_id(tenant, key_id);
  if (!found.ok()) return found.status();
  if (!found.value()) {
    return Status("not_found",
                  "tenant " + std::string(tenant) + " has no API key " + std::string(key_id));
  }
  auto& [hash, key] = *found.value();
  key.set_revoked(true);
  std::string k;
  keys::api_key_key(k, hash);
  rocksdb::WriteBatch batch;
  BatchCheck check;
  check(batch.Put(cf_auth_, k, key.SerializeAsString()));
  if (Status st = check.status(); !st.is_ok()) return st;
  if (Status st = write_batch(*this, batch, sync_writes()); !st.is_ok()) return st;
  return std::move(hash);
}

Status Store::backfill_api_key_index() {
  std::string lower = "k";
  std::string upper = keys::prefix_successor(lower);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  rocksdb::WriteBatch batch;
  BatchCheck check;
  std::string index;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_auth_));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    v1::ApiKey key;
    // Unparseable or unindexable keys stay as they are: find_api_key still
    // reports them; they just do not show up in listings.
    if (!key.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) ||
        !keys::valid_flow_part(key.tenant()) || key.key_id().empty()) {
      continue;
    }
    keys::api_key_index_key(index, key.tenant(), key.key_id());
    auto existing = get_value(cf_auth_, index);
    if (!existing.ok()) return existing.status();
    if (existing.value()) continue;
    rocksdb::Slice hash(it->key().data() + 1, it->key().size() - 1);
    check(batch.Put(cf_auth_, index, hash));
  }
  if (!it->status().ok()) return storage_error(it->status());
  if (Status st = check.status(); !st.is_ok()) return st;
  if (batch.Count() == 0) return {};
  return write_batch(*this, batch, /*sync=*/true);
}

Status Store::put_tenant(const v1::Tenant& tenant) {
  if (!keys::valid_flow_part(tenant.id())) return invalid_tenant();
  std::lock_guard lock(locks_->auth_mu);
  if (read_only()) return read_only_error();
  std::string k;
  keys::tenant_key(k, tenant.id());
  rocksdb::WriteBatch batch;
  BatchCheck check;
  check(batch.Put(cf_auth_, k, tenant.SerializeAsString()));
  if (Status st = check.status(); !st.is_ok()) return st;
  return write_batch(*this, batch, sync_writes());
}

Result<std::optional<v1::Tenant>> Store::get_tenant(std::string_view id) const {
  if (!keys::valid_flow_part(id)) return invalid_tenant();
  std::string k;
  keys::tenant_key(k, id);
  return parse_row<v1::Tenant>(get_value(cf_auth_, k), "tenant " + std::string(id));
}

Result<std::vector<v1::Tenant>> Store::list_tenants() const {
  std::string prefix = "t";
  std::string upper = keys::prefix_successor(prefix);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::vector<v1::Tenant> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_auth_));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    v1::Tenant& tenant = out.emplace_back();
    if (!tenant.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status("storage_corrupt",
                    "tenant " + it->key().ToString().substr(1) + " does not parse");
    }
  }
  if (!it->status().ok()) return storage_error(it->status());
  return out;
}

Status Store::delete_tenant(std::string_view id) {
  if (!keys::valid_flow_part(id)) return invalid_tenant();
  std::lock_guard lock(locks_->auth_mu);
  if (read_only()) return read_only_error();
  auto existing = get_tenant(id);
  if (!existing.ok()) return existing.status();
  if (!existing.value()) return Status("not_found", "no tenant " + std::string(id));
  rocksdb::WriteBatch batch;
  BatchCheck check;
  std::string k;
  keys::tenant_key(k, id);
  check(batch.Delete(cf_auth_, k));
  // Index rows stay, so the revoked keys remain listable (an audit trail).
  std::string prefix;
  keys::api_key_index_prefix(prefix, id);
  auto key_ids = key_suffixes(cf_auth_, prefix);
  if (!key_ids.ok()) return key_ids.status();
  for (const auto& key_id : *key_ids) {
    auto found = find_api_key_by_id(id, key_id);
    if (!found.ok()) return found.status();
    if (!found.value() || found.value()->second.revoked()) continue;
    found.value()->second.set_revoked(true);
    keys::api_key_key(k, found.value()->first);
    check(batch.Put(cf_auth_, k, found.value()->second.SerializeAsString()));
  }
  if (Status st = check.status(); !st.is_ok()) return st;
  return write_batch(*this, batch, sync_writes());
}

std::string Store::queue_row_key(const v1::QueuedRun& run) {
  std::string key;
  keys::queue_key(key, run.tenant(), run.flow_id(), run.queue_seq());
  return key;
}

Status Store::init_queue_seq() {
  std::string lower = "q";
  std::string upper = keys::prefix_successor(lower);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  uint64_t max_seq = 0;
  // Keys order by tenant and flow, not seq, so every row is looked at; the
  // queue holds only waiting runs, so this stays small.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_executions_));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    rocksdb::Slice key = it->key();
    if (key.size() < 1 + 8) continue;
    max_seq = std::max(max_seq, keys::get_be64(key.data() + key.size() - 8));
  }
  if (!it->status().ok()) return storage_error(it->status());
  next_queue_seq_.store(max_seq + 1);
  return {};
}

Result<v1::QueuedRun> Store::enqueue_run(v1::QueuedRun run, const v1::ExecutionSummary& summary) {
  if (!keys::valid_flow_part(run.tenant()) || !keys::valid_flow_part(run.flow_id())) {
    return invalid("tenant and flow id must be non-empty and contain no NUL byte");
  }
  if (!keys::valid_execution_id(run.execution_id())) {
    return invalid("execution id must be 1..255 bytes");
  }
  if (summary.execution_id() != run.execution_id() || summary.tenant() != run.tenant() ||
      summary.flow_id() != run.flow_id()) {
    return invalid("summary and queued run name different executions");
  }
  if (read_only()) return read_only_error();
  run.set_queue_seq(next_queue_seq_.fetch_add(1));
  rocksdb::WriteBatch batch;
  BatchCheck check;
  std::string key = queue_row_key(run);
  check(batch.Put(cf_executions_, key, run.SerializeAsString()));
  keys::summary_key(key, run.execution_id());
  check(batch.Put(cf_executions_, key, summary.SerializeAsString()));
  keys::list_key(key, run.tenant(), run.execution_id());
  check(batch.Put(cf_executions_, key, run.flow_id()));
  if (!run.idempotency_key().empty()) {
    keys::idempotency_key(key, run.tenant(), run.idempotency_key());
    check(batch.Put(cf_executions_, key, run.execution_id()));
  }
  if (Status st = check.status(); !st.is_ok()) return st;
  if (Status st = write_batch(*this, batch, sync_writes()); !st.is_ok()) return st;
  return run;
}

Result<std::vector<v1::QueuedRun>> Store::queued_runs(std::string_view tenant,
                                                      std::string_view flow_id,
                                                      size_t limit) const {
  if (!keys::valid_flow_part(tenant) || !keys::valid_flow_part(flow_id)) {
    return invalid("tenant and flow id must be non-empty and contain no NUL byte");
  }
  std::string prefix;
  keys::queue_prefix(prefix, tenant, flow_id);
  std::string upper = keys::prefix_successor(prefix);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::vector<v1::QueuedRun> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_executions_));
  for (it->Seek(prefix); it->Valid() && out.size() < limit; it->Next()) {
    v1::QueuedRun& run = out.emplace_back();
    if (!run.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status("storage_corrupt", "a queued run of " + std::string(tenant) + "/" +
                                           std::string(flow_id) + " does not parse");
    }
  }
  if (!it->status().ok()) return storage_error(it->status());
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> Store::queued_flows() const {
  std::string lower = "q";
  std::string upper = keys::prefix_successor(lower);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_executions_));
  // One seek per flow: after reading a flow's first row, jump past its prefix.
  std::string prefix;
  for (it->Seek(lower); it->Valid();) {
    std::string_view key = it->key().ToStringView().substr(1);
    const size_t tenant_end = key.find('\0');
    const size_t flow_end =
        tenant_end == std::string_view::npos ? tenant_end : key.find('\0', tenant_end + 1);
    if (flow_end == std::string_view::npos) {
      return Status("storage_corrupt", "a queue row has a malformed key");
    }
    std::string tenant(key.substr(0, tenant_end));
    std::string flow(key.substr(tenant_end + 1, flow_end - tenant_end - 1));
    keys::queue_prefix(prefix, tenant, flow);
    out.emplace_back(std::move(tenant), std::move(flow));
    it->Seek(keys::prefix_successor(prefix));
  }
  if (!it->status().ok()) return storage_error(it->status());
  return out;
}

Status Store::cancel_queued(const v1::QueuedRun& run,
                            const v1::ExecutionSummary& cancelled_summary) {
  if (!keys::valid_flow_part(run.tenant()) || !keys::valid_flow_part(run.flow_id())) {
    return invalid("tenant and flow id must be non-empty and contain no NUL byte");
  }
  if (!keys::valid_execution_id(run.execution_id()) ||
      cancelled_summary.execution_id() != run.execution_id()) {
    return invalid("summary and queued run name different executions");
  }
  if (read_only()) return read_only_error();
  const std::string key = queue_row_key(run);
  auto present = get_value(cf_executions_, key);
  if (!present.ok()) return present.status();
  if (!present.value()) {
    return Status("not_found", "execution " + run.execution_id() + " is no longer queued");
  }
  rocksdb::WriteBatch batch;
  BatchCheck check;
  check(batch.Delete(cf_executions_, key));
  std::string summary_key;
  keys::summary_key(summary_key, run.execution_id());
  check(batch.Put(cf_executions_, summary_key, cancelled_summary.SerializeAsString()));
  if (Status st = check.status(); !st.is_ok()) return st;
  return write_batch(*this, batch, sync_writes());
}

Result<uint64_t> Store::count_executions_from(std::string_view tenant,
                                              std::string_view from_id) const {
  if (!keys::valid_flow_part(tenant)) return invalid_tenant();
  std::string prefix;
  keys::list_prefix(prefix, tenant);
  std::string lower;
  keys::list_key(lower, tenant, from_id);
  std::string upper = keys::prefix_successor(prefix);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  uint64_t n = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_executions_));
  for (it->Seek(lower); it->Valid(); it->Next()) ++n;
  if (!it->status().ok()) return storage_error(it->status());
  return n;
}

Result<std::vector<v1::OutboxEntry>> Store::due_outbox(int64_t now_ms, size_t limit) const {
  std::vector<v1::OutboxEntry> out;
  if (limit == 0 || now_ms < 0) return out;
  const std::string lower = "o";
  std::string upper;
  keys::outbox_key(upper, static_cast<uint64_t>(now_ms) + 1, "");
  rocksdb::ReadOptions ro;
  rocksdb::Slice lower_slice(lower);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_outbox_));
  for (it->Seek(lower); it->Valid() && out.size() < limit; it->Next()) {
    rocksdb::Slice key = it->key();
    v1::OutboxEntry& entry = out.emplace_back();
    if (key.size() <= keys::kOutboxKeyHeader ||
        !entry.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status("storage_corrupt", "an outbox row does not parse");
    }
    // The key is what locates the row: keep next_ms equal to it, so that
    // passing the entry back always finds this row.
    entry.set_next_ms(static_cast<int64_t>(keys::get_be64(key.data() + 1)));
    entry.set_id(
        std::string(key.data() + keys::kOutboxKeyHeader, key.size() - keys::kOutboxKeyHeader));
  }
  if (!it->status().ok()) return storage_error(it->status());
  return out;
}

Status Store::reschedule_outbox(const v1::OutboxEntry& entry, int64_t next_ms) {
  if (entry.id().empty() || entry.next_ms() < 0 || next_ms < 0) {
    return invalid("outbox entry needs an id and non-negative due times");
  }
  if (read_only()) return read_only_error();
  v1::OutboxEntry moved = entry;
  moved.set_next_ms(next_ms);
  rocksdb::WriteBatch batch;
  BatchCheck check;
  std::string key;
  keys::outbox_key(key, static_cast<uint64_t>(entry.next_ms()), entry.id());
  check(batch.Delete(cf_outbox_, key));
  keys::outbox_key(key, static_cast<uint64_t>(next_ms), entry.id());
  check(batch.Put(cf_outbox_, key, moved.SerializeAsString()));
  if (Status st = check.status(); !st.is_ok()) return st;
  return write_batch(*this, batch, /*sync=*/false);
}

Status Store::remove_outbox(const v1::OutboxEntry& entry) {
  if (entry.id().empty() || entry.next_ms() < 0) {
    return invalid("outbox entry needs an id and a non-negative due time");
  }
  if (read_only()) return read_only_error();
  rocksdb::WriteBatch batch;
  BatchCheck check;
  std::string key;
  keys::outbox_key(key, static_cast<uint64_t>(entry.next_ms()), entry.id());
  check(batch.Delete(cf_outbox_, key));
  if (Status st = check.status(); !st.is_ok()) return st;
  return write_batch(*this, batch, /*sync=*/false);
}

Result<uint64_t> Store::count_outbox() const {
  const std::string lower = "o";
  const std::string upper = keys::prefix_successor(lower);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  uint64_t n = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_outbox_));
  for (it->Seek(lower); it->Valid(); it->Next()) ++n;
  if (!it->status().ok()) return storage_error(it->status());
  return n;
}

bool is_terminal_status(std::string_view status) {
  return status == "completed" || status == "failed" || status == "cancelled" ||
         status == "timed_out";
}

}  // namespace yantra::storage
