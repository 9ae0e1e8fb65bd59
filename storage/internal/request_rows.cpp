// add_request: the rows of one WriteRequest (see request_rows.hpp). Moved
// here unchanged from LogWriter::run, which now calls it, as does apply()
// of a replicated batch; the order of the rows in the batch is part of what
// must not change (a Put and a Delete of the same key in one batch: the
// later wins).
#include "storage/internal/request_rows.hpp"

#include <algorithm>
#include <cstdint>

#include "storage/execution_index.hpp"
#include "storage/internal/keys.hpp"

namespace yantra::storage::internal {

namespace {

// "p" or "w", then the request's partition (be16), then at least one byte.
bool valid_audit_row(const AuditRow& row, uint32_t partition) {
  return row.key.size() > keys::kPartitionAuditHeader && (row.key[0] == 'p' || row.key[0] == 'w') &&
         keys::get_be16(row.key.data() + 1) == partition;
}

// Audit rows only: no execution is named and nothing of one is written.
bool audit_only(const WriteRequest& request) {
  return request.execution_id.empty() && !request.audit.empty() && request.events.empty() &&
         !request.summary && !request.created && request.idempotency_key.empty() &&
         request.parent_execution_id.empty() && !request.snapshot && request.delete_key.empty() &&
         request.outbox.empty() && !request.queued_run;
}

// A queued run names the request's execution, a tenant and flow that fit
// the queue's key, and comes with its "queued" summary.
bool valid_queued_run(const WriteRequest& request) {
  if (!request.queued_run) return true;
  const v1::QueuedRun& run = *request.queued_run;
  return run.execution_id() == request.execution_id && keys::valid_flow_part(run.tenant()) &&
         keys::valid_flow_part(run.flow_id()) && request.summary &&
         request.summary->execution_id() == run.execution_id() &&
         request.summary->tenant() == run.tenant() && request.summary->flow_id() == run.flow_id();
}

}  // namespace

bool valid_request(const WriteRequest& request) {
  return keys::valid_partition(request.partition) && valid_queued_run(request) &&
         (keys::valid_execution_id(request.execution_id) || audit_only(request)) &&
         std::none_of(request.outbox.begin(), request.outbox.end(),
                      [](const OutboxRow& row) { return row.id.empty(); }) &&
         std::all_of(request.audit.begin(), request.audit.end(),
                     [&](const AuditRow& row) { return valid_audit_row(row, request.partition); });
}

rocksdb::Status add_request(rocksdb::WriteBatch& batch, const Db& db, const WriteRequest& request,
                            RowScratch& scratch, const std::string* summary_bytes) {
  // Every row is offered even after a refusal; the caller writes nothing of
  // a batch that refused one, so only the first refusal matters.
  rocksdb::Status first;
  auto check = [&first](rocksdb::Status s) {
    if (first.ok()) first = std::move(s);
  };
  std::string& key = scratch.key;
  for (const auto& [seq, value] : request.events) {
    keys::event_key(key, request.partition, request.execution_id, seq);
    check(batch.Put(db.events, key, value));
  }
  if (!request.delete_key.empty()) {
    check(batch.Delete(db.executions, request.delete_key));
  }
  for (const OutboxRow& row : request.outbox) {
    keys::outbox_key(key, static_cast<uint64_t>(std::max<int64_t>(0, row.due_ms)), row.id);
    check(batch.Put(db.outbox, key, row.entry));
  }
  for (const AuditRow& row : request.audit) {
    check(batch.Put(db.audit, row.key, row.value));
  }
  if (request.snapshot) {
    keys::event_key(key, request.partition, request.execution_id, request.snapshot->first);
    check(batch.Put(db.snapshots, key, request.snapshot->second));
  }
  if (request.summary) {
    const v1::ExecutionSummary& summary = *request.summary;
    if (summary_bytes == nullptr) {
      summary.SerializeToString(&scratch.summary);
      summary_bytes = &scratch.summary;
    }
    keys::summary_key(key, request.execution_id);
    check(batch.Put(db.executions, key, *summary_bytes));
    keys::active_key(key, request.partition, request.execution_id);
    if (request.queued_run) {
      // Waiting, not active: recovery finds it through its queue row.
      keys::queue_key(key, request.queued_run->tenant(), request.queued_run->flow_id(),
                      request.queued_run->queue_seq());
      check(batch.Put(db.executions, key, request.queued_run->SerializeAsString()));
    } else if (is_terminal_status(summary.status())) {
      check(batch.Delete(db.executions, key));
      // Queue for retention, in the order executions end.
      scratch.value.clear();
      keys::put_be16(scratch.value, static_cast<uint16_t>(request.partition));
      keys::ended_key(key, static_cast<uint64_t>(summary.updated_ms()), request.execution_id);
      check(batch.Put(db.executions, key, scratch.value));
    } else {
      check(batch.Put(db.executions, key, rocksdb::Slice()));
    }
    if (request.created || request.queued_run) {
      const std::string& tenant = summary.tenant();
      keys::list_key(key, tenant, request.execution_id);
      check(batch.Put(db.executions, key, summary.flow_id()));
      if (!request.idempotency_key.empty()) {
        keys::idempotency_key(key, tenant, request.idempotency_key);
        check(batch.Put(db.executions, key, request.execution_id));
      }
      if (!request.parent_execution_id.empty()) {
        keys::fork_key(key, request.parent_execution_id, request.execution_id);
        check(batch.Put(db.executions, key, rocksdb::Slice()));
      }
    }
  }
  return first;
}

}  // namespace yantra::storage::internal
