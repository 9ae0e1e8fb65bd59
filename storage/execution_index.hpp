// ExecutionIndex: what is known about executions without reading their
// logs, in the `executions` column family (docs/event-log-format.md):
//   "s" | execution_id                    -> ExecutionSummary
//   "r" | partition(be16) | execution_id  -> "" (active: not yet terminal)
//   "l" | tenant | 0x00 | execution_id    -> flow_id (listing; ULIDs sort
//                                            by creation, so reverse = newest)
//   "i" | tenant | 0x00 | idempotency key -> execution_id
//   "f" | len(u8) | parent_id | fork_id   -> "" (forks of an execution)
// The same column family holds the retention queue ("e", event_log.hpp) and
// the run queue ("q", run_queue.hpp).
//
// Writes: none here. The rows are written by a LogWriter in the batch of the
// events they describe (so the index never disagrees with the log after a
// crash), and for queued runs by RunQueue; both sync unless the store is
// Durability::kAsync.
//
// Thread-safety: every method may be called from any thread. Owned by Store
// (store.executions()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "storage/store.hpp"
#include "yantra/v1/events.pb.h"

namespace yantra::storage {

// completed, failed, cancelled, timed_out: an execution that can no longer
// change (except by an explicit retry).
bool is_terminal_status(std::string_view status);

class ExecutionIndex {
 public:
  ExecutionIndex(const ExecutionIndex&) = delete;
  ExecutionIndex& operator=(const ExecutionIndex&) = delete;

  // "invalid_argument" for an id not of 1..255 bytes, "storage_corrupt" when
  // the row does not parse.
  Result<std::optional<v1::ExecutionSummary>> summary(std::string_view execution_id) const;

  // Ids of executions of `partition` that have not reached a terminal status.
  Result<std::vector<std::string>> active(uint32_t partition) const;

  // Executions of a tenant, newest first, optionally only one flow and/or one
  // status, starting strictly below `before_id` (a cursor; "" = newest). A
  // filtered page stops after looking at max(50 * limit, 10000) rows and
  // returns a cursor, so one request never walks a huge index.
  // `keep_id`, when given, is one more filter, on the id alone and checked
  // before the summary is read (a cluster node lists only the partitions it
  // was asked for); a row it drops still counts as looked at.
  struct Page {
    std::vector<v1::ExecutionSummary> items;
    std::string next_cursor;  // "" when there is nothing more
  };
  using IdFilter = std::function<bool(std::string_view execution_id)>;
  Result<Page> list(std::string_view tenant, std::string_view flow_id, std::string_view status,
                    size_t limit, std::string_view before_id,
                    const IdFilter& keep_id = nullptr) const;

  // Ids of the executions forked from `parent`, oldest first.
  Result<std::vector<std::string>> forks(std::string_view parent) const;

  // The execution an idempotency key started, if any.
  Result<std::optional<std::string>> find_idempotent(std::string_view tenant,
                                                     std::string_view key) const;

  // Listing rows of `tenant` whose execution id is >= from_id. Ids are ULIDs
  // (time-ordered), so from_id = the smallest ULID of a month counts the
  // executions created since the month began (quotas).
  Result<uint64_t> count_from(std::string_view tenant, std::string_view from_id) const;

 private:
  friend class Store;
  explicit ExecutionIndex(const internal::Db& db) : db_(db) {}
  const internal::Db& db_;
};

}  // namespace yantra::storage
