// SegmentStore: see segment_store.hpp for what it guarantees. Design notes:
//
// - Every change of a segment writes its metadata row in the same WriteBatch
//   as its batches (or their deletion), so the row always says exactly what
//   is held; a check ("sealed?", "next lsn?") is one point read of it.
// - Check-then-write is made atomic by the partition's mutex, held across
//   the RocksDB write and its sync: a seal that takes the mutex after an
//   append's write sees that append's last_lsn, and an append that takes it
//   after a seal sees the seal. RocksDB still groups the syncs of writers of
//   different partitions into one (its write group), so the mutex costs
//   nothing across partitions.
// - The read-only check is done under the mutex, before the idempotent
//   early answers (a re-append of held bytes, a second seal): while the
//   store is read-only nothing is acknowledged, since what a failed write
//   left in the WAL is unknown.
// - Metadata is a fixed 34-byte record rather than a protobuf: it is read on
//   every append, and its fields are all integers. Layout (an on-disk
//   format, docs/replicated-log.md): version(u8 = 1) | flags(u8: 1 sealed,
//   2 truncated, 4 trimmed) | sealing_epoch(be64) | first_lsn(be64) |
//   last_lsn(be64) | truncated_end(be64). The partition and segment id are
//   those of the key.
// - Trimming and truncation delete with one range tombstone per segment,
//   not one per batch: constant cost whatever the segment's size, and the
//   metadata row keeps the segment fenced after its batches are gone.
#include "storage/segment_store.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>

#include "base/storage_errc.hpp"
#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/scan.hpp"

namespace yantra::storage {

using internal::invalid;

namespace {

constexpr uint8_t kMetaVersion = 1;
constexpr uint8_t kFlagSealed = 1;
constexpr uint8_t kFlagTruncated = 2;
constexpr uint8_t kFlagTrimmed = 4;
constexpr size_t kMetaSize = 2 + 4 * 8;

constexpr const char* kExpectedLsn = "/expected_lsn";
constexpr const char* kSealingEpoch = "/sealing_epoch";

std::string encode(const SegmentInfo& s) {
  std::string out;
  out.reserve(kMetaSize);
  out.push_back(static_cast<char>(kMetaVersion));
  out.push_back(static_cast<char>((s.sealed ? kFlagSealed : 0) |
                                  (s.truncated ? kFlagTruncated : 0) |
                                  (s.trimmed ? kFlagTrimmed : 0)));
  keys::put_be64(out, s.sealing_epoch);
  keys::put_be64(out, s.first_lsn);
  keys::put_be64(out, s.last_lsn);
  keys::put_be64(out, s.truncated_end);
  return out;
}

// Fills `s` from a metadata key (partition, segment) and value.
bool decode(const rocksdb::Slice& key, const rocksdb::Slice& value, SegmentInfo& s) {
  if (key.size() != keys::kSegmentPrefixSize || value.size() != kMetaSize) return false;
  const auto version = static_cast<uint8_t>(value[0]);
  const auto flags = static_cast<uint8_t>(value[1]);
  if (version != kMetaVersion || (flags & ~(kFlagSealed | kFlagTruncated | kFlagTrimmed)) != 0) {
    return false;
  }
  s.partition = keys::get_be32(key.data() + 1);
  s.segment = keys::get_be64(key.data() + 5);
  s.sealed = (flags & kFlagSealed) != 0;
  s.truncated = (flags & kFlagTruncated) != 0;
  s.trimmed = (flags & kFlagTrimmed) != 0;
  s.sealing_epoch = keys::get_be64(value.data() + 2);
  s.first_lsn = keys::get_be64(value.data() + 10);
  s.last_lsn = keys::get_be64(value.data() + 18);
  s.truncated_end = keys::get_be64(value.data() + 26);
  // A held range is first <= last, both set or both 0.
  return (s.first_lsn == 0) == (s.last_lsn == 0) && s.first_lsn <= s.last_lsn;
}

std::string name(uint32_t partition, uint64_t segment) {
  return "segment " + std::to_string(segment) + " of partition " + std::to_string(partition);
}

Status check_ids(uint32_t partition, uint64_t segment) {
  if (!keys::valid_partition(partition)) return invalid("partition must be 0..65535");
  if (segment == 0) return invalid("segment id (the writer's epoch) must be > 0");
  return {};
}

Status sealed_refusal(const SegmentInfo& s, const std::string& why) {
  return Status(
      StorageErrc::kSegmentSealed,
      name(s.partition, s.segment) + " is sealed by epoch " + std::to_string(s.sealing_epoch) + why,
      {{kSealingEpoch, std::to_string(s.sealing_epoch)}});
}

Status trimmed_refusal(const SegmentInfo& s) {
  return Status(StorageErrc::kSegmentTrimmed,
                name(s.partition, s.segment) + " was trimmed: a snapshot covers its batches");
}

Status not_held(uint32_t partition, uint64_t segment) {
  return Status(Errc::kNotFound, name(partition, segment) + " is not held by this replica");
}

std::optional<uint64_t> detail_number(const Status& status, std::string_view path) {
  for (const auto& p : status.details()) {
    if (p.path != path) continue;
    uint64_t v = 0;
    const char* end = p.message.data() + p.message.size();
    auto [ptr, ec] = std::from_chars(p.message.data(), end, v);
    if (ec == std::errc() && ptr == end) return v;
  }
  return std::nullopt;
}

// The first batch key after `lsn` of a segment (the end of a range ending
// at lsn): the segment's prefix end when lsn is the largest.
std::string batch_key_after(uint32_t partition, uint64_t segment, uint64_t lsn) {
  std::string key;
  if (lsn == std::numeric_limits<uint64_t>::max()) {
    keys::segment_batch_prefix(key, partition, segment);
    return keys::prefix_successor(std::move(key));
  }
  keys::segment_batch_key(key, partition, segment, lsn + 1);
  return key;
}

// Adds the deletion of the segment's batches after `lsn` (all of them for
// lsn 0) to `batch`: one range tombstone.
void delete_batches_after(rocksdb::WriteBatch& batch, internal::BatchCheck& check,
                          rocksdb::ColumnFamilyHandle* cf, uint32_t partition, uint64_t segment,
                          uint64_t lsn) {
  std::string from = batch_key_after(partition, segment, lsn);
  std::string to;
  keys::segment_batch_prefix(to, partition, segment);
  to = keys::prefix_successor(std::move(to));
  check(batch.DeleteRange(cf, from, to));
}

void put_meta(rocksdb::WriteBatch& batch, internal::BatchCheck& check,
              rocksdb::ColumnFamilyHandle* cf, const SegmentInfo& s) {
  std::string key;
  keys::segment_meta_key(key, s.partition, s.segment);
  check(batch.Put(cf, key, encode(s)));
}

}  // namespace

std::optional<uint64_t> SegmentStore::expected_lsn(const Status& refusal) {
  if (!refusal.is(StorageErrc::kSegmentGap)) return std::nullopt;
  return detail_number(refusal, kExpectedLsn);
}

std::optional<uint64_t> SegmentStore::sealing_epoch(const Status& refusal) {
  if (!refusal.is(StorageErrc::kSegmentSealed)) return std::nullopt;
  return detail_number(refusal, kSealingEpoch);
}

Result<std::optional<SegmentInfo>> SegmentStore::load(uint32_t partition, uint64_t segment) const {
  std::string key;
  keys::segment_meta_key(key, partition, segment);
  auto raw = db_.get(db_.segments, key);
  if (!raw.ok()) return raw.status();
  if (!raw.value().has_value()) return std::optional<SegmentInfo>();
  SegmentInfo info;
  if (!decode(key, *raw.value(), info)) {
    return internal::corrupt("the metadata of " + name(partition, segment));
  }
  return std::optional<SegmentInfo>(info);
}

Result<SegmentInfo> SegmentStore::append(uint32_t partition, uint64_t segment, uint64_t lsn,
                                         std::string_view bytes, uint64_t writer_epoch) {
  const std::string one(bytes);
  return write_batches(Mode::kAppend, partition, segment, lsn, std::span(&one, 1), writer_epoch);
}

Result<SegmentInfo> SegmentStore::append(uint32_t partition, uint64_t segment, uint64_t first_lsn,
                                         std::span<const std::string> batches,
                                         uint64_t writer_epoch) {
  return write_batches(Mode::kAppend, partition, segment, first_lsn, batches, writer_epoch);
}

Result<SegmentInfo> SegmentStore::repair(uint32_t partition, uint64_t segment, uint64_t first_lsn,
                                         std::span<const std::string> batches,
                                         uint64_t recovery_epoch) {
  return write_batches(Mode::kRepair, partition, segment, first_lsn, batches, recovery_epoch);
}

Result<SegmentInfo> SegmentStore::write_batches(Mode mode, uint32_t partition, uint64_t segment,
                                                uint64_t first_lsn,
                                                std::span<const std::string> batches,
                                                uint64_t epoch) {
  std::lock_guard lock(mutex_of(partition));
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  bool adds = false;
  auto after =
      prepare_locked(mode, partition, segment, first_lsn, batches, epoch, batch, check, adds);
  if (!after.ok() || !adds) return after;
  if (Status st = check.status(); !st.is_ok()) return st;
  if (Status st = db_.write(batch, db_.sync_writes()); !st.is_ok()) return st;
  return after;
}

std::vector<Result<SegmentInfo>> SegmentStore::append_group(std::span<const GroupAppend> appends) {
  std::vector<Result<SegmentInfo>> out;
  out.reserve(appends.size());
  // Every stripe the group touches, locked in ascending order (a single
  // append locks one stripe, so no cycle is possible).
  std::vector<size_t> stripes;
  for (const auto& a : appends) stripes.push_back(a.partition % mutexes_.size());
  std::sort(stripes.begin(), stripes.end());
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(stripes.size());
  for (size_t s : stripes) locks.emplace_back(mutexes_[s]);

  rocksdb::WriteBatch batch;
  std::optional<internal::BatchCheck> check(std::in_place);
  std::vector<size_t> pending;                         // appends whose rows are in `batch`
  std::vector<std::pair<uint32_t, uint64_t>> written;  // their (partition, segment)
  auto write = [&] {
    if (pending.empty()) return;
    Status st = check->status();
    if (st.is_ok()) st = db_.write(batch, db_.sync_writes());
    if (!st.is_ok()) {
      for (size_t i : pending) out[i] = st;
    }
    batch.Clear();
    check.emplace();
    pending.clear();
    written.clear();
  };
  for (size_t i = 0; i < appends.size(); ++i) {
    const GroupAppend& a = appends[i];
    // A second append of a segment must see the first one's rows: write
    // what is pending first (its checks read the metadata row from disk).
    const std::pair<uint32_t, uint64_t> id{a.partition, a.segment};
    if (std::find(written.begin(), written.end(), id) != written.end()) write();
    bool adds = false;
    out.push_back(prepare_locked(Mode::kAppend, a.partition, a.segment, a.first_lsn, a.batches,
                                 a.writer_epoch, batch, *check, adds));
    if (out.back().ok() && adds) {
      pending.push_back(i);
      written.push_back(id);
    }
  }
  write();
  return out;
}

Result<SegmentInfo> SegmentStore::prepare_locked(Mode mode, uint32_t partition, uint64_t segment,
                                                 uint64_t first_lsn,
                                                 std::span<const std::string> batches,
                                                 uint64_t epoch, rocksdb::WriteBatch& batch,
                                                 internal::BatchCheck& check, bool& adds) {
  adds = false;
  if (Status st = check_ids(partition, segment); !st.is_ok()) return st;
  if (first_lsn == 0) return invalid("lsns start at 1");
  if (batches.empty()) return invalid("no batch to append");
  if (first_lsn > std::numeric_limits<uint64_t>::max() - (batches.size() - 1)) {
    return invalid("the batches' lsns overflow 64 bits");
  }
  const uint64_t last_new = first_lsn + (batches.size() - 1);
  if (mode == Mode::kAppend && epoch != segment) {
    return Status(StorageErrc::kSegmentWrongEpoch,
                  "epoch " + std::to_string(epoch) + " may not append to " +
                      name(partition, segment) +
                      ": only the epoch that opened a segment writes it");
  }

  if (db_.store->read_only()) return db_.store->read_only_error();
  auto loaded = load(partition, segment);
  if (!loaded.ok()) return loaded.status();
  SegmentInfo info;
  if (loaded->has_value()) {
    info = **loaded;
  } else if (mode == Mode::kRepair) {
    return Status(Errc::kConflict, name(partition, segment) +
                                       " is not held by this replica: seal it before repairing it");
  } else {
    // A segment this replica never heard of: its writer is deposed if a
    // newer epoch already wrote or sealed a segment of this partition here.
    // A scan, but of metadata rows only, and once per segment.
    auto all = segments(partition);
    if (!all.ok()) return all.status();
    uint64_t newer = 0;
    for (const SegmentInfo& s : *all) newer = std::max({newer, s.segment, s.sealing_epoch});
    if (newer > segment) {
      return Status(StorageErrc::kSegmentSealed,
                    name(partition, segment) + " is fenced: epoch " + std::to_string(newer) +
                        " already wrote or sealed this partition here",
                    {{kSealingEpoch, std::to_string(newer)}});
    }
    info.partition = partition;
    info.segment = segment;
  }

  if (mode == Mode::kAppend && info.sealed) {
    return sealed_refusal(info, info.trimmed ? " (and trimmed)" : "");
  }
  if (mode == Mode::kRepair) {
    if (!info.sealed) {
      return Status(Errc::kConflict,
                    name(partition, segment) + " is open: seal it before repairing it");
    }
    if (info.sealing_epoch > epoch) {
      return sealed_refusal(info, ", newer than the repairing epoch " + std::to_string(epoch));
    }
    if (info.trimmed) return trimmed_refusal(info);
    if (info.truncated && last_new > info.truncated_end) {
      return Status(Errc::kConflict, "lsn " + std::to_string(last_new) + " is beyond the end " +
                                         std::to_string(info.truncated_end) + " recorded for " +
                                         name(partition, segment));
    }
  }

  // The prefix rule: no hole before the group, and what the group shares
  // with what is held must be the same bytes.
  uint64_t new_from = first_lsn;
  if (!info.empty()) {
    if (first_lsn > info.last_lsn + 1) {
      return Status(StorageErrc::kSegmentGap,
                    name(partition, segment) + " holds lsns up to " +
                        std::to_string(info.last_lsn) + ": expected lsn " +
                        std::to_string(info.last_lsn + 1) + ", got " + std::to_string(first_lsn),
                    {{kExpectedLsn, std::to_string(info.last_lsn + 1)}});
    }
    if (first_lsn < info.first_lsn) {
      return Status(Errc::kConflict,
                    "lsn " + std::to_string(first_lsn) + " is below the first lsn " +
                        std::to_string(info.first_lsn) + " of " + name(partition, segment));
    }
    if (first_lsn <= info.last_lsn) {
      const uint64_t held_to = std::min(last_new, info.last_lsn);
      std::string lower;
      keys::segment_batch_key(lower, partition, segment, first_lsn);
      uint64_t expect = first_lsn;
      Status st = internal::scan(
          db_, db_.segments,
          internal::KeyRange{std::move(lower), batch_key_after(partition, segment, held_to)},
          [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Status {
            const uint64_t lsn = key.size() == keys::kSegmentBatchKeySize
                                     ? keys::get_be64(key.data() + keys::kSegmentPrefixSize)
                                     : 0;
            if (lsn != expect) {
              return Status(StorageErrc::kCorrupt,
                            name(partition, segment) + " misses lsn " + std::to_string(expect));
            }
            if (value != rocksdb::Slice(batches[lsn - first_lsn])) {
              return Status(Errc::kConflict, "lsn " + std::to_string(lsn) + " of " +
                                                 name(partition, segment) +
                                                 " is held with other bytes");
            }
            ++expect;
            return {};
          });
      if (!st.is_ok()) return st;
      if (expect != held_to + 1) {
        return Status(StorageErrc::kCorrupt,
                      name(partition, segment) + " misses lsn " + std::to_string(expect));
      }
      new_from = held_to + 1;
    }
  }
  if (new_from > last_new) return info;  // all held already: a retry

  std::string key;
  for (uint64_t lsn = new_from; lsn <= last_new; ++lsn) {
    keys::segment_batch_key(key, partition, segment, lsn);
    check(batch.Put(db_.segments, key, batches[lsn - first_lsn]));
    if (lsn == last_new) break;  // lsn + 1 could overflow
  }
  SegmentInfo after = info;
  if (after.empty()) after.first_lsn = first_lsn;
  after.last_lsn = last_new;
  put_meta(batch, check, db_.segments, after);
  adds = true;
  return after;
}

Result<SegmentInfo> SegmentStore::seal(uint32_t partition, uint64_t segment,
                                       uint64_t sealing_epoch) {
  if (Status st = check_ids(partition, segment); !st.is_ok()) return st;
  if (sealing_epoch < segment) {
    return Status(StorageErrc::kSegmentWrongEpoch, "epoch " + std::to_string(sealing_epoch) +
                                                       " may not seal " + name(partition, segment) +
                                                       ": it is older than the segment's writer");
  }
  std::lock_guard lock(mutex_of(partition));
  if (db_.store->read_only()) return db_.store->read_only_error();
  auto loaded = load(partition, segment);
  if (!loaded.ok()) return loaded.status();
  if (loaded->has_value() && (*loaded)->sealed) return **loaded;
  SegmentInfo info;
  if (loaded->has_value()) {
    info = **loaded;
  } else {
    info.partition = partition;
    info.segment = segment;
  }
  info.sealed = true;
  info.sealing_epoch = sealing_epoch;
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  put_meta(batch, check, db_.segments, info);
  if (Status st = check.status(); !st.is_ok()) return st;
  if (Status st = db_.write(batch, db_.sync_writes()); !st.is_ok()) return st;
  return info;
}

Result<std::vector<SegmentBatch>> SegmentStore::read(uint32_t partition, uint64_t segment,
                                                     uint64_t from_lsn, uint64_t to_lsn,
                                                     size_t max_bytes) const {
  if (Status st = check_ids(partition, segment); !st.is_ok()) return st;
  auto loaded = load(partition, segment);
  if (!loaded.ok()) return loaded.status();
  if (!loaded->has_value()) return not_held(partition, segment);
  const SegmentInfo& info = **loaded;
  if (info.trimmed) return trimmed_refusal(info);
  std::vector<SegmentBatch> out;
  const uint64_t from = std::max(from_lsn, info.first_lsn);
  const uint64_t to = std::min(to_lsn, info.last_lsn);
  if (info.empty() || from > to) return out;

  std::string lower;
  keys::segment_batch_key(lower, partition, segment, from);
  internal::BoundedIterator it(
      db_, db_.segments,
      internal::KeyRange{std::move(lower), batch_key_after(partition, segment, to)});
  uint64_t expect = from;
  size_t total = 0;
  for (it.seek_to_first(); it.valid(); it.next()) {
    const rocksdb::Slice key = it.key();
    const uint64_t lsn = key.size() == keys::kSegmentBatchKeySize
                             ? keys::get_be64(key.data() + keys::kSegmentPrefixSize)
                             : 0;
    if (lsn != expect) {
      return Status(StorageErrc::kCorrupt,
                    name(partition, segment) + " misses lsn " + std::to_string(expect));
    }
    const size_t size = it.value().size();
    if (!out.empty() && (size > max_bytes || total > max_bytes - size)) break;
    total += size;
    out.push_back(SegmentBatch{lsn, it.value().ToString()});
    if (lsn == to) break;
    ++expect;
  }
  if (Status st = it.status(); !st.is_ok()) return st;
  return out;
}

Result<SegmentInfo> SegmentStore::load_sealed(uint32_t partition, uint64_t segment,
                                              const std::string& why_sealed) const {
  if (db_.store->read_only()) return db_.store->read_only_error();
  auto loaded = load(partition, segment);
  if (!loaded.ok()) return loaded.status();
  if (!loaded->has_value()) return not_held(partition, segment);
  if (!(*loaded)->sealed) {
    return Status(Errc::kConflict, name(partition, segment) + " is open: " + why_sealed);
  }
  return **loaded;
}

Result<SegmentInfo> SegmentStore::truncate_after(uint32_t partition, uint64_t segment,
                                                 uint64_t end) {
  if (Status st = check_ids(partition, segment); !st.is_ok()) return st;
  std::lock_guard lock(mutex_of(partition));
  auto sealed = load_sealed(partition, segment, "seal it before truncating it");
  if (!sealed.ok()) return sealed.status();
  SegmentInfo info = std::move(sealed.value());
  // Trimmed: nothing is held any more, so nothing is beyond the end.
  if (info.trimmed) return info;
  if (info.truncated && info.truncated_end <= end) return info;
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  if (!info.empty() && info.last_lsn > end) {
    delete_batches_after(batch, check, db_.segments, partition, segment, end);
    if (end < info.first_lsn) {
      info.first_lsn = 0;
      info.last_lsn = 0;
    } else {
      info.last_lsn = end;
    }
  }
  info.truncated = true;
  info.truncated_end = end;
  put_meta(batch, check, db_.segments, info);
  if (Status st = check.status(); !st.is_ok()) return st;
  if (Status st = db_.write(batch, db_.sync_writes()); !st.is_ok()) return st;
  return info;
}

Result<SegmentInfo> SegmentStore::trim(uint32_t partition, uint64_t segment) {
  if (Status st = check_ids(partition, segment); !st.is_ok()) return st;
  std::lock_guard lock(mutex_of(partition));
  auto sealed = load_sealed(partition, segment, "only a sealed segment can be trimmed");
  if (!sealed.ok()) return sealed.status();
  SegmentInfo info = std::move(sealed.value());
  if (info.trimmed) return info;
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  delete_batches_after(batch, check, db_.segments, partition, segment, 0);
  info.trimmed = true;
  put_meta(batch, check, db_.segments, info);
  if (Status st = check.status(); !st.is_ok()) return st;
  if (Status st = db_.write(batch, db_.sync_writes()); !st.is_ok()) return st;
  return info;
}

Result<std::vector<SegmentInfo>> SegmentStore::trim_below(uint32_t partition, uint64_t lsn) {
  if (!keys::valid_partition(partition)) return invalid("partition must be 0..65535");
  std::lock_guard lock(mutex_of(partition));
  if (db_.store->read_only()) return db_.store->read_only_error();
  auto all = segments(partition);
  if (!all.ok()) return all.status();
  std::vector<SegmentInfo> trimmed;
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  for (SegmentInfo info : *all) {
    if (!info.sealed || info.trimmed || info.last_lsn >= lsn) continue;
    delete_batches_after(batch, check, db_.segments, partition, info.segment, 0);
    info.trimmed = true;
    put_meta(batch, check, db_.segments, info);
    trimmed.push_back(info);
  }
  if (trimmed.empty()) return trimmed;
  if (Status st = check.status(); !st.is_ok()) return st;
  if (Status st = db_.write(batch, db_.sync_writes()); !st.is_ok()) return st;
  return trimmed;
}

Result<std::vector<SegmentInfo>> SegmentStore::segments(uint32_t partition) const {
  if (!keys::valid_partition(partition)) return invalid("partition must be 0..65535");
  std::string prefix;
  keys::segment_meta_prefix(prefix, partition);
  std::vector<SegmentInfo> out;
  Status st =
      internal::scan_prefix(db_, db_.segments, std::move(prefix),
                            [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Status {
                              if (!decode(key, value, out.emplace_back())) {
                                return internal::corrupt("a segment metadata row of partition " +
                                                         std::to_string(partition));
                              }
                              return {};
                            });
  if (!st.is_ok()) return st;
  return out;
}

Result<SegmentInfo> SegmentStore::info(uint32_t partition, uint64_t segment) const {
  if (Status st = check_ids(partition, segment); !st.is_ok()) return st;
  auto loaded = load(partition, segment);
  if (!loaded.ok()) return loaded.status();
  if (!loaded->has_value()) return not_held(partition, segment);
  return **loaded;
}

}  // namespace yantra::storage
