// Outbox: callback deliveries owed (since 0.3), in the `outbox` column
// family (docs/event-log-format.md):
//   "o" | due_ms(be64) | message_id -> OutboxEntry
// A queue keyed by due time: "what is due now" is one scan from the head.
// Rows are written by a LogWriter in the batch of the events they report
// (WriteRequest::outbox), so a callback is owed exactly when its event is in
// the log; the dispatcher then reads, reschedules and removes them here.
//
// Writes: reschedule() and remove() are not synced: delivery is
// at-least-once, so a row that reappears after a power loss is only sent
// again (receivers deduplicate by message id). The column family compacts
// files that are mostly tombstones (store.cpp), which keeps the head cheap
// to reach after many deliveries.
//
// Thread-safety: every method may be called from any thread. Owned by Store
// (store.outbox()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "base/result.hpp"
#include "storage/store.hpp"
#include "yantra/v1/outbox.pb.h"

namespace yantra::storage {

class Outbox {
 public:
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Rows due at or before `now_ms`, oldest due first, at most `limit`. Each
  // entry's next_ms and id are those of its key, so it can be passed back.
  // `keep` (optional) skips rows without counting them against `limit`: a
  // cluster node delivers only the rows of partitions it leads.
  Result<std::vector<v1::OutboxEntry>> due(
      int64_t now_ms, size_t limit,
      const std::function<bool(const v1::OutboxEntry&)>& keep = nullptr) const;
  // Moves `entry` (found by its id and next_ms) to `next_ms`, storing the
  // entry as given otherwise (attempt, last_error): delete + put, one batch.
  Status reschedule(const v1::OutboxEntry& entry, int64_t next_ms);
  // Deletes the row of `entry` (id and next_ms); absent is fine.
  Status remove(const v1::OutboxEntry& entry);
  // Rows present, due or not.
  Result<uint64_t> count() const;

 private:
  friend class Store;
  explicit Outbox(const internal::Db& db) : db_(db) {}
  const internal::Db& db_;
};

}  // namespace yantra::storage
