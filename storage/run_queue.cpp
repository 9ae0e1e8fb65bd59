// RunQueue: rows are keyed by flow, then seq, so one flow's queue is one
// prefix scan, oldest first. queued_flows() reads one row per flow: after a
// flow's first row it seeks past that flow's prefix.
#include "storage/run_queue.hpp"

#include <algorithm>

#include "base/storage_errc.hpp"
#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/request_rows.hpp"
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
  // Only ever raised: a seq handed out since the scan must stay unique.
  uint64_t next = next_seq_.load();
  while (next < max_seq + 1 && !next_seq_.compare_exchange_weak(next, max_seq + 1)) {
  }
  return {};
}

Result<WriteRequest> RunQueue::prepare_enqueue(v1::QueuedRun run,
                                               const v1::ExecutionSummary& summary,
                                               uint32_t partition) {
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
  // The counter only grows; RunQueue never compares a seq with the
  // counter, only rows with each other.
  run.set_queue_seq(next_seq_.fetch_add(1));
  WriteRequest request;
  request.partition = partition;
  request.execution_id = run.execution_id();
  request.summary = summary;
  request.idempotency_key = run.idempotency_key();
  request.queued_run = std::move(run);
  return request;
}

Result<v1::QueuedRun> RunQueue::enqueue(v1::QueuedRun run, const v1::ExecutionSummary& summary) {
  auto request = prepare_enqueue(std::move(run), summary, summary.partition());
  if (!request.ok()) return request.status();
  if (Status st = write(request.value()); !st.is_ok()) return st;
  return std::move(*request.value().queued_run);
}

Status RunQueue::write(const WriteRequest& request) const {
  if (db_.store->read_only()) return db_.store->read_only_error();
  rocksdb::WriteBatch batch;
  internal::RowScratch scratch;
  rocksdb::Status rows = internal::add_request(batch, db_, request, scratch, nullptr);
  if (!rows.ok()) return internal::storage_error(rows);
  return db_.write(batch, db_.sync_writes());
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

Result<WriteRequest> RunQueue::prepare_cancel(const v1::QueuedRun& run,
                                              const v1::ExecutionSummary& cancelled_summary,
                                              uint32_t partition) const {
  if (!keys::valid_flow_part(run.tenant()) || !keys::valid_flow_part(run.flow_id())) {
    return invalid_pair();
  }
  if (!keys::valid_execution_id(run.execution_id()) ||
      cancelled_summary.execution_id() != run.execution_id()) {
    return invalid("summary and queued run name different executions");
  }
  WriteRequest request;
  request.partition = partition;
  request.execution_id = run.execution_id();
  request.summary = cancelled_summary;
  request.delete_key = row_key(run);
  return request;
}

Status RunQueue::cancel(const v1::QueuedRun& run, const v1::ExecutionSummary& cancelled_summary) {
  auto request = prepare_cancel(run, cancelled_summary, cancelled_summary.partition());
  if (!request.ok()) return request.status();
  if (db_.store->read_only()) return db_.store->read_only_error();
  auto present = db_.get(db_.executions, request.value().delete_key);
  if (!present.ok()) return present.status();
  if (!present.value()) {
    return Status(Errc::kNotFound, "execution " + run.execution_id() + " is no longer queued");
  }
  return write(request.value());
}

}  // namespace yantra::storage
