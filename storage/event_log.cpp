// EventLog: reads of one execution's history and the retention sweep. The
// writes of events and snapshots are the LogWriter's (log_writer.cpp).
//
// - read() is on the activation path: one bounded scan per execution, in
//   prefix-seek mode so the per-execution bloom filters skip the files that
//   hold none of its events; the upper bound is the smallest key above
//   prefix|to_seq, still inside the prefix, so prefix seek stays valid for
//   the whole scan.
// - latest_snapshot() seeks backwards from prefix|max_seq: one seek, in
//   total order (SeekForPrev across the prefix boundary is not prefix seek).
// - expire_finished() deletes each expired execution's events and snapshots
//   with two DeleteRange tombstones instead of one tombstone per event.
#include "storage/event_log.hpp"

#include <algorithm>
#include <string>

#include "base/storage_errc.hpp"
#include "storage/execution_index.hpp"
#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/scan.hpp"

namespace yantra::storage {

using internal::invalid;

Result<std::vector<v1::Event>> EventLog::read(uint32_t partition, std::string_view execution_id,
                                              uint64_t from_seq, uint64_t to_seq) const {
  if (!keys::valid_partition(partition)) return invalid("partition out of range");
  if (!keys::valid_execution_id(execution_id)) return invalid("execution id must be 1..255 bytes");
  std::vector<v1::Event> events;
  if (from_seq > to_seq) return events;

  internal::KeyRange range;
  keys::event_key(range.lower, partition, execution_id, from_seq);
  keys::event_key(range.upper, partition, execution_id, to_seq);
  range.upper.push_back('\0');
  const size_t prefix_size = range.lower.size() - 8;

  Status st = internal::scan(
      db_, db_.events, std::move(range),
      [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Status {
        const uint64_t seq =
            key.size() == prefix_size + 8 ? keys::get_be64(key.data() + prefix_size) : 0;
        v1::Event& event = events.emplace_back();
        if (key.size() != prefix_size + 8 || !internal::parse_value(value, event)) {
          return Status(StorageErrc::kCorrupt, "event " + std::string(execution_id) + "/" +
                                                   std::to_string(seq) + " of partition " +
                                                   std::to_string(partition) + " does not parse");
        }
        return {};
      },
      {.mode = internal::SeekMode::kSamePrefix});
  if (!st.is_ok()) return st;
  return events;
}

Result<std::optional<v1::Snapshot>> EventLog::latest_snapshot(uint32_t partition,
                                                              std::string_view execution_id,
                                                              uint64_t max_seq) const {
  if (!keys::valid_partition(partition)) return invalid("partition out of range");
  if (!keys::valid_execution_id(execution_id)) return invalid("execution id must be 1..255 bytes");
  // Keys of this execution with seq <= max_seq: the last one is the answer.
  internal::KeyRange range;
  keys::event_key(range.lower, partition, execution_id, 0);
  keys::event_key(range.upper, partition, execution_id, max_seq);
  range.upper.push_back('\0');
  const size_t key_size = range.lower.size();
  std::optional<v1::Snapshot> found;
  Status st =
      internal::scan(db_, db_.snapshots, std::move(range),
                     [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Status {
                       if (key.size() != key_size)
                         return {};  // not a snapshot key of this execution
                       v1::Snapshot& snap = found.emplace();
                       if (!internal::parse_value(value, snap)) {
                         return internal::corrupt("a snapshot of " + std::string(execution_id));
                       }
                       return {};
                     },
                     {.limit = 1, .reverse = true, .mode = internal::SeekMode::kTotalOrder});
  if (!st.is_ok()) return st;
  return found;
}

Result<size_t> EventLog::expire_finished(int64_t ended_before_ms, size_t limit) {
  if (db_.store->read_only()) return db_.store->read_only_error();
  internal::KeyRange range{"e", ""};
  keys::ended_key(range.upper, static_cast<uint64_t>(std::max<int64_t>(ended_before_ms, 0)), "");
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  size_t n = 0;
  internal::BoundedIterator it(db_, db_.executions, std::move(range));
  for (it.seek_to_first(); it.valid() && n < limit; it.next()) {
    rocksdb::Slice key = it.key();
    if (key.size() <= 9 || it.value().size() != 2) continue;
    std::string id(key.data() + 9, key.size() - 9);
    const uint32_t partition = (static_cast<unsigned char>(it.value()[0]) << 8) |
                               static_cast<unsigned char>(it.value()[1]);
    ++n;
    // An entry is stale when the execution ran again after it ended (a retry
    // appends Resumed): it is live now, or it ended again later and has a
    // newer entry. Only the entry goes; the history stays.
    auto summary = index_.summary(id);
    if (!summary.ok()) return summary.status();
    const uint64_t ended_ms = keys::get_be64(key.data() + 1);
    if (!summary.value().has_value() || !is_terminal_status(summary.value()->status()) ||
        static_cast<uint64_t>(summary.value()->updated_ms()) != ended_ms) {
      check(batch.Delete(db_.executions, key));
      if (Status st = check.status(); !st.is_ok()) return st;
      continue;
    }
    std::string begin;
    keys::event_key(begin, partition, id, 0);
    std::string end;
    keys::event_key(end, partition, id, UINT64_MAX);
    end.push_back('\0');
    check(batch.DeleteRange(db_.events, begin, end));
    check(batch.DeleteRange(db_.snapshots, begin, end));
    check(batch.Delete(db_.executions, key));
    if (Status st = check.status(); !st.is_ok()) return st;
  }
  if (Status st = it.status(); !st.is_ok()) return st;
  if (n == 0) return n;
  if (Status st = db_.write(batch, db_.sync_writes()); !st.is_ok()) return st;
  return n;
}

}  // namespace yantra::storage
