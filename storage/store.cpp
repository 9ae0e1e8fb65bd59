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
#include "storage/store.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "storage/internal/keys.hpp"

namespace yantra::storage {

namespace {

constexpr const char* kCfEvents = "events";
constexpr const char* kCfExecutions = "executions";
constexpr const char* kCfFlows = "flows";
constexpr const char* kCfAuth = "auth";
constexpr const char* kCfSnapshots = "snapshots";

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

}  // namespace

struct Store::Locks {
  std::mutex flow_mu;  // serialises put_flow
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

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
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

  std::vector<std::string> names = {
      rocksdb::kDefaultColumnFamilyName, kCfEvents, kCfExecutions, kCfFlows, kCfAuth, kCfSnapshots};
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
    } else {
      descriptors.emplace_back(name, plain_options);
    }
  }

  std::unique_ptr<Store> store(new Store());
  store->options_ = options;
  store->locks_ = std::make_unique<Locks>();
  rocksdb::Status s =
      rocksdb::DB::Open(db_options, options.path, descriptors, &store->handles_, &store->db_);
  if (!s.ok()) return storage_error(s);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == kCfEvents) store->cf_events_ = store->handles_[i];
    if (names[i] == kCfExecutions) store->cf_executions_ = store->handles_[i];
    if (names[i] == kCfFlows) store->cf_flows_ = store->handles_[i];
    if (names[i] == kCfAuth) store->cf_auth_ = store->handles_[i];
    if (names[i] == kCfSnapshots) store->cf_snapshots_ = store->handles_[i];
  }
  return store;
}

Store::~Store() {
  if (db_ == nullptr) return;
  for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
  // Close() waits for background work; its error has nowhere to go, and all
  // acknowledged writes are already in the (synced) WAL.
  db_->Close().PermitUncheckedError();
  delete db_;
}

Status Store::read_only_error() const {
  if (!read_only()) return Status::ok();
  std::lock_guard lock(locks_->cause_mu);
  return {"store_read_only", "store is read-only after a write error: " + locks_->read_only_cause};
}

void Store::latch_read_only(const Status& cause) {
  {
    std::lock_guard lock(locks_->cause_mu);
    if (locks_->read_only_cause.empty()) locks_->read_only_cause = cause.to_string();
  }
  read_only_.store(true);
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
  if (!s.ok()) {
    Status error = storage_error(s);
    latch_read_only(error);
    return error;
  }
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
  if (!s.ok()) {
    Status error = storage_error(s);
    latch_read_only(error);
    return error;
  }
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
  if (read_only()) return read_only_error();
  std::string k;
  keys::api_key_key(k, hash);
  std::string value;
  key.SerializeToString(&value);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = db_->Put(wo, cf_auth_, k, value);
  if (!s.ok()) {
    Status error = storage_error(s);
    latch_read_only(error);
    return error;
  }
  return {};
}

Result<std::optional<v1::ApiKey>> Store::find_api_key(std::string_view hash) const {
  std::string k;
  keys::api_key_key(k, hash);
  return parse_row<v1::ApiKey>(get_value(cf_auth_, k), "an API key");
}

Result<size_t> Store::count_api_keys(std::string_view tenant) const {
  rocksdb::ReadOptions ro;
  std::string lower = "k";
  std::string upper = "l";
  rocksdb::Slice lower_slice(lower);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  size_t n = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_auth_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    v1::ApiKey key;
    if (key.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) &&
        key.tenant() == tenant && !key.revoked()) {
      ++n;
    }
  }
  if (!it->status().ok()) return storage_error(it->status());
  return n;
}

bool is_terminal_status(std::string_view status) {
  return status == "completed" || status == "failed" || status == "cancelled" ||
         status == "timed_out";
}

}  // namespace yantra::storage
