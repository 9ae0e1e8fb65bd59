// EventLog: the history of every execution and the snapshots that shorten
// its replay, plus retention of the history of executions that ended long
// ago. The log is the truth of an execution (docs/event-log-format.md):
//   events     partition(be16) | len(u8) | execution_id | seq(be64) -> Event
//   snapshots  partition(be16) | len(u8) | execution_id | seq(be64) -> Snapshot
//   executions "e" | ended_ms(be64) | execution_id -> partition(be16)
//              (the retention queue, in the order executions ended)
// The id is length-prefixed, so one execution's key range never covers
// another's ("ab" vs "abc"); each execution is one prefix of the events
// column family's prefix extractor (per-execution bloom filters).
//
// Writes: events, snapshots and retention entries are written only by a
// LogWriter (log_writer.hpp), in the group-commit batch of the events they
// belong to, synced unless the store is Durability::kAsync. EventLog itself
// writes only in expire_finished() (one batch of deletions, synced unless
// kAsync).
//
// Thread-safety: every method may be called from any thread; reads see
// every batch committed before they start. Owned by Store (store.events()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "storage/store.hpp"
#include "yantra/v1/events.pb.h"

namespace yantra::storage {

class EventLog {
 public:
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Events seq in [from_seq, to_seq] of one execution, in order.
  // "invalid_argument" for a partition above 0xFFFF or an id not of 1..255
  // bytes; "storage_corrupt" naming the seq of an event that does not parse.
  Result<std::vector<v1::Event>> read(uint32_t partition, std::string_view execution_id,
                                      uint64_t from_seq = 1, uint64_t to_seq = UINT64_MAX) const;

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

 private:
  friend class Store;
  EventLog(const internal::Db& db, const ExecutionIndex& index) : db_(db), index_(index) {}
  const internal::Db& db_;
  const ExecutionIndex& index_;  // the summaries retention checks
};

}  // namespace yantra::storage
