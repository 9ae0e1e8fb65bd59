// ExecutionIndex: point reads of summaries and the index scans. Listing
// walks the tenant's "l" rows newest first (a reverse scan bounded by the
// cursor), reading each summary by id; its filters are applied per row, so a
// filtered page is bounded by rows looked at, not only by rows returned.
#include "storage/execution_index.hpp"

#include <algorithm>

#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/scan.hpp"

namespace yantra::storage {

using internal::invalid;

bool is_terminal_status(std::string_view status) {
  return status == "completed" || status == "failed" || status == "cancelled" ||
         status == "timed_out";
}

Result<std::optional<v1::ExecutionSummary>> ExecutionIndex::summary(
    std::string_view execution_id) const {
  if (!keys::valid_execution_id(execution_id)) return invalid("execution id must be 1..255 bytes");
  std::string key;
  keys::summary_key(key, execution_id);
  return internal::parse_row<v1::ExecutionSummary>(
      db_.get(db_.executions, key), "summary of execution " + std::string(execution_id));
}

Result<std::vector<std::string>> ExecutionIndex::active(uint32_t partition) const {
  if (!keys::valid_partition(partition)) return invalid("partition out of range");
  std::string prefix;
  keys::active_prefix(prefix, partition);
  return internal::key_suffixes(db_, db_.executions, prefix);
}

Result<ExecutionIndex::Page> ExecutionIndex::list(std::string_view tenant, std::string_view flow_id,
                                                  std::string_view status, size_t limit,
                                                  std::string_view before_id,
                                                  const IdFilter& keep_id) const {
  if (!keys::valid_flow_part(tenant)) return invalid("tenant must be non-empty and contain no NUL");
  internal::KeyRange range;
  keys::list_prefix(range.lower, tenant);
  const size_t prefix_size = range.lower.size();
  if (before_id.empty()) {
    range.upper = keys::prefix_successor(range.lower);
  } else {
    keys::list_key(range.upper, tenant, before_id);  // exclusive: strictly older ids
  }
  Page page;
  internal::BoundedIterator it(db_, db_.executions, std::move(range));
  // A filtered scan is bounded too, so one request never walks a huge index.
  size_t scanned = 0;
  const size_t max_scan = std::max<size_t>(limit * 50, 10000);
  std::string examined;  // the last id looked at: a cursor resumes strictly below it
  for (it.seek_to_last(); it.valid(); it.prev()) {
    std::string id = it.key_after(prefix_size);
    if (++scanned > max_scan && !examined.empty()) {
      page.next_cursor = examined;
      return page;
    }
    examined = id;
    if (keep_id && !keep_id(id)) continue;
    if (!flow_id.empty() && it.value() != rocksdb::Slice(flow_id.data(), flow_id.size())) {
      continue;
    }
    auto found = summary(id);
    if (!found.ok()) return found.status();
    if (!found.value()) continue;
    if (!status.empty() && found.value()->status() != status) continue;
    if (page.items.size() == limit) {
      page.next_cursor = page.items.back().execution_id();
      return page;
    }
    page.items.push_back(std::move(*found.value()));
  }
  if (Status st = it.status(); !st.is_ok()) return st;
  return page;
}

Result<std::vector<std::string>> ExecutionIndex::forks(std::string_view parent) const {
  if (!keys::valid_execution_id(parent)) return invalid("execution id must be 1..255 bytes");
  std::string prefix;
  keys::fork_prefix(prefix, parent);
  return internal::key_suffixes(db_, db_.executions, prefix);
}

Result<std::optional<std::string>> ExecutionIndex::find_idempotent(std::string_view tenant,
                                                                   std::string_view key) const {
  if (!keys::valid_flow_part(tenant)) return invalid("tenant must be non-empty and contain no NUL");
  std::string k;
  keys::idempotency_key(k, tenant, key);
  return db_.get(db_.executions, k);
}

Result<uint64_t> ExecutionIndex::count_from(std::string_view tenant,
                                            std::string_view from_id) const {
  if (!keys::valid_flow_part(tenant)) return invalid("tenant must be non-empty and contain no NUL");
  internal::KeyRange range;
  keys::list_key(range.lower, tenant, from_id);
  std::string prefix;
  keys::list_prefix(prefix, tenant);
  range.upper = keys::prefix_successor(prefix);
  uint64_t n = 0;
  Status st = internal::scan(db_, db_.executions, std::move(range),
                             [&n](const rocksdb::Slice&, const rocksdb::Slice&) { ++n; });
  if (!st.is_ok()) return st;
  return n;
}

}  // namespace yantra::storage
