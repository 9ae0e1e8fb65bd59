// RunQueue: rows are keyed by flow, then seq, so one flow's queue is one
// prefix scan, oldest first. queued_flows() reads one row per flow: after a
// flow's first row it seeks past that flow's prefix.
#include "storage/run_queue.hpp"

#include <algorithm>

#include "base/storage_errc.hpp"
#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/scan.hpp"

namespace yantra::storage {

using internal::invalid;

namespace {

Status invalid_pair() {
  return invalid("tenant and flow id must be non-empty and contain no NUL byte");
}

}  // namespace

std::string RunQueue::row_key(const v1::QueuedRun& run) {
  std::string key;
  keys::queue_key(key, run.tenant(), run.flow_id(), run.queue_seq());
  return key;
}

Status RunQueue::init_seq() {
  uint64_t max_seq = 0;
  // Keys order by tenant and flow, not seq, so every row is looked at; the
  // queue holds only waiting runs, so this stays small.
  Status st = internal::scan_prefix(
      db_, db_.executions, "q", [&max_seq](const rocksdb::Slice& key, const rocksdb::Slice&) {
        if (key.size() < 1 + 8) return;
        max_seq = std::max(max_seq, keys::get_be64(key.data() + key.size() - 8));
      });
  if (!st.is_ok()) return st;
  next_seq_.store(max_seq + 1);
  return {};
}

Result<v1::QueuedRun> RunQueue::enqueue(v1::QueuedRun run, const v1::ExecutionSummary& summary) {
  if (!keys::valid_flow_part(run.tenant()) || !keys::valid_flow_part(run.flow_id())) {
    return invalid_pair();
  }
  if (!keys::valid_execution_id(run.execution_id())) {
    return invalid("execution id must be 1..255 bytes");
  }
  if (summary.execution_id() != run.execution_id() || summary.tenant() != run.tenant() ||
      summary.flow_id() != run.flow_id()) {
    return invalid("summary and queued run name different executions");
  }
  if (db_.store->read_only()) return db_.store->read_only_error();
  run.set_queue_seq(next_seq_.fetch_add(1));
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  std::string key = row_key(run);
  check(batch.Put(db_.executions, key, run.SerializeAsString()));
  keys::summary_key(key, run.execution_id());
  check(batch.Put(db_.executions, key, summary.SerializeAsString()));
  keys::list_key(key, run.tenant(), run.execution_id());
  check(batch.Put(db_.executions, key, run.flow_id()));
  if (!run.idempotency_key().empty()) {
    keys::idempotency_key(key, run.tenant(), run.idempotency_key());
    check(batch.Put(db_.executions, key, run.execution_id()));
  }
  if (Status st = check.status(); !st.is_ok()) return st;
  if (Status st = db_.write(batch, db_.sync_writes()); !st.is_ok()) return st;
  return run;
}

Result<std::vector<v1::QueuedRun>> RunQueue::runs(std::string_view tenant, std::string_view flow_id,
                                                  size_t limit) const {
  if (!keys::valid_flow_part(tenant) || !keys::valid_flow_part(flow_id)) return invalid_pair();
  std::string prefix;
  keys::queue_prefix(prefix, tenant, flow_id);
  std::vector<v1::QueuedRun> out;
  Status st =
      internal::scan_prefix(db_, db_.executions, std::move(prefix),
                            [&](const rocksdb::Slice&, const rocksdb::Slice& value) -> Status {
                              if (!internal::parse_value(value, out.emplace_back())) {
                                return internal::corrupt("a queued run of " + std::string(tenant) +
                                                         "/" + std::string(flow_id));
                              }
                              return {};
                            },
                            {.limit = limit});
  if (!st.is_ok()) return st;
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> RunQueue::queued_flows() const {
  std::vector<std::pair<std::string, std::string>> out;
  internal::BoundedIterator it(db_, db_.executions, internal::KeyRange::prefix("q"));
  // One seek per flow: after reading a flow's first row, jump past its prefix.
  std::string prefix;
  for (it.seek_to_first(); it.valid();) {
    std::string_view key = it.key().ToStringView().substr(1);
    const size_t tenant_end = key.find('\0');
    const size_t flow_end =
        tenant_end == std::string_view::npos ? tenant_end : key.find('\0', tenant_end + 1);
    if (flow_end == std::string_view::npos) {
      return Status(StorageErrc::kCorrupt, "a queue row has a malformed key");
    }
    std::string tenant(key.substr(0, tenant_end));
    std::string flow(key.substr(tenant_end + 1, flow_end - tenant_end - 1));
    keys::queue_prefix(prefix, tenant, flow);
    out.emplace_back(std::move(tenant), std::move(flow));
    it.seek(keys::prefix_successor(prefix));
  }
  if (Status st = it.status(); !st.is_ok()) return st;
  return out;
}

Status RunQueue::cancel(const v1::QueuedRun& run, const v1::ExecutionSummary& cancelled_summary) {
  if (!keys::valid_flow_part(run.tenant()) || !keys::valid_flow_part(run.flow_id())) {
    return invalid_pair();
  }
  if (!keys::valid_execution_id(run.execution_id()) ||
      cancelled_summary.execution_id() != run.execution_id()) {
    return invalid("summary and queued run name different executions");
  }
  if (db_.store->read_only()) return db_.store->read_only_error();
  const std::string key = row_key(run);
  auto present = db_.get(db_.executions, key);
  if (!present.ok()) return present.status();
  if (!present.value()) {
    return Status(Errc::kNotFound, "execution " + run.execution_id() + " is no longer queued");
  }
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  check(batch.Delete(db_.executions, key));
  std::string summary_key;
  keys::summary_key(summary_key, run.execution_id());
  check(batch.Put(db_.executions, summary_key, cancelled_summary.SerializeAsString()));
  if (Status st = check.status(); !st.is_ok()) return st;
  return db_.write(batch, db_.sync_writes());
}

}  // namespace yantra::storage
