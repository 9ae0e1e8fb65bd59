// Outbox: "what is due" is one scan from "o" up to "o" | now+1, stopped
// after `limit` rows; a delivery moves its row (delete + put in one batch)
// or deletes it. The key, not the stored entry, says where a row is: due()
// copies the key's due time and id into each entry it returns.
#include "storage/outbox.hpp"

#include <string>

#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/scan.hpp"

namespace yantra::storage {

using internal::invalid;

Result<std::vector<v1::OutboxEntry>> Outbox::due(
    int64_t now_ms, size_t limit, const std::function<bool(const v1::OutboxEntry&)>& keep) const {
  std::vector<v1::OutboxEntry> out;
  if (limit == 0 || now_ms < 0) return out;
  internal::KeyRange range{"o", ""};
  keys::outbox_key(range.upper, static_cast<uint64_t>(now_ms) + 1, "");
  // With a filter the scan has no key limit: it stops at `limit` kept rows.
  bool full = false;
  Status st = internal::scan(
      db_, db_.outbox, std::move(range),
      [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Status {
        v1::OutboxEntry& entry = out.emplace_back();
        if (key.size() <= keys::kOutboxKeyHeader || !internal::parse_value(value, entry)) {
          return internal::corrupt("an outbox row");
        }
        // The key is what locates the row: keep next_ms equal to it, so that
        // passing the entry back always finds this row.
        entry.set_next_ms(static_cast<int64_t>(keys::get_be64(key.data() + 1)));
        entry.set_id(
            std::string(key.data() + keys::kOutboxKeyHeader, key.size() - keys::kOutboxKeyHeader));
        if (keep && !keep(entry)) out.pop_back();
        if (keep && out.size() == limit) {
          full = true;  // stops the scan; not an error
          return Status(Errc::kInternalError, "outbox scan stopped at its limit");
        }
        return {};
      },
      {.limit = keep ? SIZE_MAX : limit});
  if (!st.is_ok() && !full) return st;
  return out;
}

Status Outbox::reschedule(const v1::OutboxEntry& entry, int64_t next_ms) {
  if (entry.id().empty() || entry.next_ms() < 0 || next_ms < 0) {
    return invalid("outbox entry needs an id and non-negative due times");
  }
  if (db_.store->read_only()) return db_.store->read_only_error();
  v1::OutboxEntry moved = entry;
  moved.set_next_ms(next_ms);
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  std::string key;
  keys::outbox_key(key, static_cast<uint64_t>(entry.next_ms()), entry.id());
  check(batch.Delete(db_.outbox, key));
  keys::outbox_key(key, static_cast<uint64_t>(next_ms), entry.id());
  check(batch.Put(db_.outbox, key, moved.SerializeAsString()));
  if (Status st = check.status(); !st.is_ok()) return st;
  return db_.write(batch, /*sync=*/false);
}

Status Outbox::remove(const v1::OutboxEntry& entry) {
  if (entry.id().empty() || entry.next_ms() < 0) {
    return invalid("outbox entry needs an id and a non-negative due time");
  }
  if (db_.store->read_only()) return db_.store->read_only_error();
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  std::string key;
  keys::outbox_key(key, static_cast<uint64_t>(entry.next_ms()), entry.id());
  check(batch.Delete(db_.outbox, key));
  if (Status st = check.status(); !st.is_ok()) return st;
  return db_.write(batch, /*sync=*/false);
}

Result<uint64_t> Outbox::count() const {
  uint64_t n = 0;
  Status st = internal::scan_prefix(db_, db_.outbox, "o",
                                    [&n](const rocksdb::Slice&, const rocksdb::Slice&) { ++n; });
  if (!st.is_ok()) return st;
  return n;
}

}  // namespace yantra::storage
