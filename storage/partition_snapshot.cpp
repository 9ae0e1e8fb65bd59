// Partition snapshots (see partition_snapshot.hpp for what travels and why).
// The classifier is one table: a row kind per (column family, first key
// byte), with where its partition is found. Export and import walk the same
// ranges (stages()), so a row kind an export hands out is one an import
// accepts and a drop deletes.
#include "storage/partition_snapshot.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <array>
#include <utility>
#include <vector>

#include "base/storage_errc.hpp"
#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/scan.hpp"
#include "storage/partition_batch.hpp"
#include "storage/store.hpp"
#include "yantra/v1/tenancy.pb.h"

namespace yantra::storage {

namespace {

// Where a row kind's partition is.
enum class Locate {
  kNone,             // not a partition's row
  kBe16At0,          // partition(be16) opens the key (events, snapshots)
  kBe16At1,          // tag · partition(be16) ("r", "a", audit "p"/"w")
  kIdAfterTag,       // tag · execution_id ("s")
  kIdAfterNul,       // tag · tenant · 0x00 · execution_id ("l")
  kIdInValue,        // the value is the execution id ("i")
  kForkChild,        // "f" · len(u8) · parent · fork_id: the fork's partition
  kIdAfterBe64,      // tag · be64 · execution_id ("e")
  kQueuedRunValue,   // the value is a QueuedRun ("q")
  kOutboxMessageId,  // "o" · due(be64) · "<execution>/<seq>/<index>"
};

struct Rule {
  SnapshotCf cf;
  char tag;  // the key's first byte; 0 = any (the whole column family)
  std::string_view kind;
  RowScope scope;
  Locate locate;
};

// Every row kind of docs/event-log-format.md.
constexpr std::array kRules = {
    Rule{SnapshotCf::kEvents, 0, "event", RowScope::kPartition, Locate::kBe16At0},
    Rule{SnapshotCf::kSnapshots, 0, "snapshot", RowScope::kPartition, Locate::kBe16At0},
    Rule{SnapshotCf::kExecutions, 's', "summary", RowScope::kPartition, Locate::kIdAfterTag},
    Rule{SnapshotCf::kExecutions, 'r', "active marker", RowScope::kPartition, Locate::kBe16At1},
    Rule{SnapshotCf::kExecutions, 'l', "listing", RowScope::kPartition, Locate::kIdAfterNul},
    Rule{SnapshotCf::kExecutions, 'i', "idempotency key", RowScope::kPartition, Locate::kIdInValue},
    Rule{SnapshotCf::kExecutions, 'f', "fork", RowScope::kPartition, Locate::kForkChild},
    Rule{SnapshotCf::kExecutions, 'e', "retention entry", RowScope::kPartition,
         Locate::kIdAfterBe64},
    Rule{SnapshotCf::kExecutions, 'q', "queued run", RowScope::kPartition, Locate::kQueuedRunValue},
    Rule{SnapshotCf::kExecutions, 'a', "applied marker", RowScope::kAppliedMarker,
         Locate::kBe16At1},
    Rule{SnapshotCf::kFlows, 0, "flow version", RowScope::kClusterWide, Locate::kNone},
    Rule{SnapshotCf::kAuth, 0, "auth", RowScope::kClusterWide, Locate::kNone},
    Rule{SnapshotCf::kSecrets, 0, "secret", RowScope::kClusterWide, Locate::kNone},
    Rule{SnapshotCf::kAudit, 'c', "node audit chain", RowScope::kNodeLocal, Locate::kNone},
    Rule{SnapshotCf::kAudit, 'p', "partition audit chain", RowScope::kPartition, Locate::kBe16At1},
    Rule{SnapshotCf::kAudit, 'w', "audit relay counter", RowScope::kPartition, Locate::kBe16At1},
    Rule{SnapshotCf::kOutbox, 'o', "callback owed", RowScope::kPartition, Locate::kOutboxMessageId},
    Rule{SnapshotCf::kSegments, 0, "log segment", RowScope::kNodeLocal, Locate::kNone},
};

RowOwner malformed(std::string_view kind) {
  return RowOwner{RowScope::kMalformed, 0, kind};
}

// The partition of an execution id, or nullopt for an id no request could
// have (empty or too long).
std::optional<uint32_t> id_partition(std::string_view id, const PartitionOfId& partition_of) {
  if (!keys::valid_execution_id(id)) return std::nullopt;
  return partition_of(id);
}

std::optional<uint32_t> locate(Locate how, std::string_view key, std::string_view value,
                               const PartitionOfId& partition_of) {
  switch (how) {
    case Locate::kNone: return std::nullopt;
    case Locate::kBe16At0:
      if (key.size() < 2) return std::nullopt;
      return keys::get_be16(key.data());
    case Locate::kBe16At1:
      if (key.size() < 3) return std::nullopt;
      return keys::get_be16(key.data() + 1);
    case Locate::kIdAfterTag: return id_partition(key.substr(1), partition_of);
    case Locate::kIdAfterNul: {
      const size_t nul = key.find('\0', 1);
      if (nul == std::string_view::npos) return std::nullopt;
      return id_partition(key.substr(nul + 1), partition_of);
    }
    case Locate::kIdInValue: return id_partition(value, partition_of);
    case Locate::kForkChild: {
      if (key.size() < 2) return std::nullopt;
      const size_t child = 2 + static_cast<unsigned char>(key[1]);
      if (child >= key.size()) return std::nullopt;
      return id_partition(key.substr(child), partition_of);
    }
    case Locate::kIdAfterBe64:
      if (key.size() < 9) return std::nullopt;
      return id_partition(key.substr(9), partition_of);
    case Locate::kQueuedRunValue: {
      v1::QueuedRun run;
      if (!run.ParseFromArray(value.data(), static_cast<int>(value.size()))) return std::nullopt;
      return id_partition(run.execution_id(), partition_of);
    }
    case Locate::kOutboxMessageId: {
      // "<execution>/<seq>/<index>": the id is what precedes the last two
      // parts, so an id holding '/' is still found whole.
      if (key.size() < 9) return std::nullopt;
      const std::string_view message = key.substr(9);
      const size_t index_slash = message.rfind('/');
      if (index_slash == std::string_view::npos || index_slash == 0) return std::nullopt;
      const size_t seq_slash = message.rfind('/', index_slash - 1);
      if (seq_slash == std::string_view::npos) return std::nullopt;
      return id_partition(message.substr(0, seq_slash), partition_of);
    }
  }
  return std::nullopt;
}

rocksdb::ColumnFamilyHandle* handle(const internal::Db& db, SnapshotCf cf) {
  switch (cf) {
    case SnapshotCf::kEvents: return db.events;
    case SnapshotCf::kExecutions: return db.executions;
    case SnapshotCf::kFlows: return db.flows;
    case SnapshotCf::kAuth: return db.auth;
    case SnapshotCf::kSnapshots: return db.snapshots;
    case SnapshotCf::kSecrets: return db.secrets;
    case SnapshotCf::kAudit: return db.audit;
    case SnapshotCf::kOutbox: return db.outbox;
    case SnapshotCf::kSegments: return db.segments;
  }
  return nullptr;
}

// The ranges that can hold rows of P, in export order. The bulk (events,
// snapshots, the partition audit chains) is read by prefix; the executions
// and outbox column families are read whole and filtered by classify_row,
// since their rows are keyed by tenant, time or id, not by partition.
struct Stage {
  SnapshotCf cf;
  internal::KeyRange range;
  internal::SeekMode mode;
};

std::vector<Stage> stages(uint32_t partition) {
  std::string p16;
  keys::put_be16(p16, static_cast<uint16_t>(partition));
  using internal::KeyRange;
  using internal::SeekMode;
  std::vector<Stage> out;
  out.push_back({SnapshotCf::kEvents, KeyRange::prefix(p16), SeekMode::kTotalOrder});
  out.push_back({SnapshotCf::kSnapshots, KeyRange::prefix(p16), SeekMode::kTotalOrder});
  out.push_back({SnapshotCf::kExecutions, KeyRange{}, SeekMode::kDefault});
  out.push_back({SnapshotCf::kAudit, KeyRange::prefix("p" + p16), SeekMode::kDefault});
  out.push_back({SnapshotCf::kAudit, KeyRange::prefix("w" + p16), SeekMode::kDefault});
  out.push_back({SnapshotCf::kOutbox, KeyRange{}, SeekMode::kDefault});
  return out;
}

// Whether a scanned row is P's; a malformed row is an error.
Result<bool> owned_by(SnapshotCf cf, const rocksdb::Slice& key, const rocksdb::Slice& value,
                      uint32_t partition, const PartitionOfId& partition_of) {
  const RowOwner owner = classify_row(cf, std::string_view(key.data(), key.size()),
                                      std::string_view(value.data(), value.size()), partition_of);
  if (owner.scope == RowScope::kMalformed) {
    return internal::corrupt("a row of kind '" + std::string(owner.kind) + "' (column family " +
                             std::to_string(static_cast<int>(cf)) + ")");
  }
  return owner.scope == RowScope::kPartition && owner.partition == partition;
}

constexpr std::string_view kMagic = "YSN";
constexpr uint8_t kChunkFormat = 1;
// magic(3) format(1) partition(4) lsn(8) index(4) last(1) rows(4)
constexpr size_t kHeaderSize = 25;
constexpr size_t kTrailerSize = 4;

struct ChunkRow {
  SnapshotCf cf;
  std::string_view key;
  std::string_view value;
};

Status bad_chunk(const std::string& why) {
  return {StorageErrc::kCorrupt, "snapshot chunk: " + why};
}

bool known_cf(uint8_t cf) {
  return cf >= static_cast<uint8_t>(SnapshotCf::kEvents) &&
         cf <= static_cast<uint8_t>(SnapshotCf::kSegments);
}

Result<SnapshotChunkInfo> parse_chunk(std::string_view chunk, std::vector<ChunkRow>* rows) {
  if (chunk.size() < kHeaderSize + kTrailerSize) return bad_chunk("too short");
  const std::string_view body = chunk.substr(0, chunk.size() - kTrailerSize);
  if (crc32c(body) != keys::get_be32(chunk.data() + body.size())) {
    return bad_chunk("checksum mismatch");
  }
  if (body.substr(0, 3) != kMagic) return bad_chunk("not a snapshot chunk");
  if (static_cast<uint8_t>(body[3]) != kChunkFormat) {
    return bad_chunk("format " + std::to_string(static_cast<uint8_t>(body[3])) + " unknown");
  }
  SnapshotChunkInfo info;
  info.partition = keys::get_be32(body.data() + 4);
  info.lsn = keys::get_be64(body.data() + 8);
  info.index = keys::get_be32(body.data() + 16);
  const auto last = static_cast<uint8_t>(body[20]);
  if (last > 1) return bad_chunk("bad last flag");
  info.last = last == 1;
  info.rows = keys::get_be32(body.data() + 21);
  if (!keys::valid_partition(info.partition) || info.lsn == 0) {
    return bad_chunk("bad partition or lsn");
  }
  size_t at = kHeaderSize;
  auto take = [&](std::string_view& out) {
    if (body.size() - at < 4) return false;
    const uint32_t n = keys::get_be32(body.data() + at);
    at += 4;
    if (body.size() - at < n) return false;
    out = body.substr(at, n);
    at += n;
    return true;
  };
  for (uint32_t i = 0; i < info.rows; ++i) {
    if (at >= body.size()) return bad_chunk("truncated row " + std::to_string(i));
    const auto cf = static_cast<uint8_t>(body[at++]);
    if (!known_cf(cf)) return bad_chunk("unknown column family " + std::to_string(cf));
    ChunkRow row{static_cast<SnapshotCf>(cf), {}, {}};
    if (!take(row.key) || !take(row.value)) {
      return bad_chunk("truncated row " + std::to_string(i));
    }
    if (rows != nullptr) rows->push_back(row);
  }
  if (at != body.size()) return bad_chunk("bytes after the last row");
  return info;
}

}  // namespace

RowOwner classify_row(SnapshotCf cf, std::string_view key, std::string_view value,
                      const PartitionOfId& partition_of) {
  for (const Rule& rule : kRules) {
    if (rule.cf != cf) continue;
    if (rule.tag != 0 && (key.empty() || key[0] != rule.tag)) continue;
    if (rule.scope != RowScope::kPartition && rule.scope != RowScope::kAppliedMarker) {
      return RowOwner{rule.scope, 0, rule.kind};
    }
    const std::optional<uint32_t> p = locate(rule.locate, key, value, partition_of);
    if (!p) return malformed(rule.kind);
    return RowOwner{rule.scope, *p, rule.kind};
  }
  return malformed("unknown");
}

Result<SnapshotChunkInfo> inspect_chunk(std::string_view chunk) {
  return parse_chunk(chunk, nullptr);
}

// ---- export -----------------------------------------------------------------

PartitionSnapshotExport::PartitionSnapshotExport(const Store& store, uint32_t partition,
                                                 PartitionOfId partition_of)
    : store_(store), partition_(partition), partition_of_(std::move(partition_of)) {}

PartitionSnapshotExport::~PartitionSnapshotExport() {
  if (snapshot_ != nullptr) internal::db_of(store_).rocks->ReleaseSnapshot(snapshot_);
}

Result<std::unique_ptr<PartitionSnapshotExport>> PartitionSnapshotExport::open(
    const Store& store, uint32_t partition, PartitionOfId partition_of) {
  if (!keys::valid_partition(partition)) {
    return internal::invalid("partition " + std::to_string(partition) + " is above 65535");
  }
  std::unique_ptr<PartitionSnapshotExport> out(
      new PartitionSnapshotExport(store, partition, std::move(partition_of)));
  const internal::Db& db = internal::db_of(store);
  out->snapshot_ = db.rocks->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = out->snapshot_;
  std::string key;
  keys::applied_key(key, partition);
  std::string value;
  rocksdb::Status s = db.rocks->Get(ro, db.executions, key, &value);
  if (s.IsNotFound()) {
    return internal::invalid("partition " + std::to_string(partition) +
                             " has no applied batch here: nothing to snapshot");
  }
  if (!s.ok()) return internal::storage_error(s);
  if (value.size() != keys::kAppliedValueSize) {
    return internal::corrupt("the applied lsn of partition " + std::to_string(partition));
  }
  out->lsn_ = keys::get_be64(value.data());
  if (out->lsn_ == 0) {
    return internal::invalid("partition " + std::to_string(partition) + " has applied nothing");
  }
  return out;
}

Result<std::optional<std::string>> PartitionSnapshotExport::next_chunk(size_t max_bytes) {
  if (done_) return std::optional<std::string>();
  std::string chunk(kMagic);
  chunk.push_back(static_cast<char>(kChunkFormat));
  keys::put_be32(chunk, partition_);
  keys::put_be64(chunk, lsn_);
  keys::put_be32(chunk, index_);
  chunk.push_back(0);        // last: set below
  keys::put_be32(chunk, 0);  // rows: set below
  uint32_t rows = 0;
  bool full = false;
  const internal::Db& db = internal::db_of(store_);
  const std::vector<Stage> all = stages(partition_);
  while (!full && stage_ < all.size()) {
    const Stage& stage = all[stage_];
    internal::BoundedIterator it(db, handle(db, stage.cf), stage.range, stage.mode, snapshot_);
    if (resume_) {
      it.seek(resume_after_);
      if (it.valid() && it.key() == rocksdb::Slice(resume_after_)) it.next();
    } else {
      it.seek_to_first();
    }
    for (; it.valid(); it.next()) {
      auto mine = owned_by(stage.cf, it.key(), it.value(), partition_, partition_of_);
      if (!mine.ok()) return mine.status();
      if (!*mine) continue;
      const size_t row_size = 1 + 4 + it.key().size() + 4 + it.value().size();
      if (rows > 0 && chunk.size() + row_size + kTrailerSize > max_bytes) {
        full = true;
        break;
      }
      chunk.push_back(static_cast<char>(stage.cf));
      keys::put_be32(chunk, static_cast<uint32_t>(it.key().size()));
      chunk.append(it.key().data(), it.key().size());
      keys::put_be32(chunk, static_cast<uint32_t>(it.value().size()));
      chunk.append(it.value().data(), it.value().size());
      ++rows;
      resume_after_.assign(it.key().data(), it.key().size());
      resume_ = true;
    }
    if (Status st = it.status(); !st.is_ok()) return st;
    if (!full) {
      ++stage_;
      resume_ = false;
      resume_after_.clear();
    }
  }
  const bool last = stage_ >= all.size();
  chunk[20] = static_cast<char>(last ? 1 : 0);
  std::string count;
  keys::put_be32(count, rows);
  chunk.replace(21, 4, count);
  keys::put_be32(chunk, crc32c(chunk));
  done_ = last;
  ++index_;
  rows_ += rows;
  bytes_ += chunk.size();
  return std::optional<std::string>(std::move(chunk));
}

// ---- import -----------------------------------------------------------------

Status drop_partition(Store& store, uint32_t partition, const PartitionOfId& partition_of) {
  if (!keys::valid_partition(partition)) {
    return internal::invalid("partition " + std::to_string(partition) + " is above 65535");
  }
  if (store.read_only()) return store.read_only_error();
  const internal::Db& db = internal::db_of(store);
  {
    // The marker goes first and durably: from then on the rows left are
    // "rows without a marker", which the next import deletes.
    rocksdb::WriteBatch batch;
    std::string key;
    keys::applied_key(key, partition);
    if (rocksdb::Status s = batch.Delete(db.executions, key); !s.ok()) {
      return internal::storage_error(s);
    }
    if (Status st = db.write(batch, true); !st.is_ok()) return st;
  }
  constexpr size_t kDeletesPerBatch = 4096;
  for (const Stage& stage : stages(partition)) {
    rocksdb::WriteBatch batch;
    size_t pending = 0;
    internal::BoundedIterator it(db, handle(db, stage.cf), stage.range, stage.mode);
    for (it.seek_to_first(); it.valid(); it.next()) {
      const RowOwner owner =
          classify_row(stage.cf, std::string_view(it.key().data(), it.key().size()),
                       std::string_view(it.value().data(), it.value().size()), partition_of);
      // Malformed rows are left alone: they are no partition's for sure.
      if (owner.scope != RowScope::kPartition || owner.partition != partition) continue;
      if (rocksdb::Status s = batch.Delete(handle(db, stage.cf), it.key()); !s.ok()) {
        return internal::storage_error(s);
      }
      if (++pending == kDeletesPerBatch) {
        if (Status st = db.write(batch, false); !st.is_ok()) return st;
        batch.Clear();
        pending = 0;
      }
    }
    if (Status st = it.status(); !st.is_ok()) return st;
    if (pending > 0) {
      if (Status st = db.write(batch, false); !st.is_ok()) return st;
    }
  }
  return {};
}

PartitionSnapshotImport::PartitionSnapshotImport(Store& store, uint32_t partition,
                                                 PartitionOfId partition_of)
    : store_(store), partition_(partition), partition_of_(std::move(partition_of)) {}

Result<std::unique_ptr<PartitionSnapshotImport>> PartitionSnapshotImport::begin(
    Store& store, uint32_t partition, PartitionOfId partition_of) {
  auto applied = applied_lsn(store, partition);
  if (!applied.ok()) return applied.status();
  if (*applied != 0) {
    // A snapshot never moves the marker backwards, nor mixes with a state
    // that has one: this replica catches up from the log instead.
    return internal::invalid("partition " + std::to_string(partition) +
                             " already holds applied lsn " + std::to_string(*applied));
  }
  if (Status st = drop_partition(store, partition, partition_of); !st.is_ok()) return st;
  return std::unique_ptr<PartitionSnapshotImport>(
      new PartitionSnapshotImport(store, partition, std::move(partition_of)));
}

Status PartitionSnapshotImport::add(std::string_view chunk) {
  if (last_seen_) return bad_chunk("after the last chunk");
  std::vector<ChunkRow> rows;
  auto info = parse_chunk(chunk, &rows);
  if (!info.ok()) return info.status();
  if (info->partition != partition_) {
    return bad_chunk("of partition " + std::to_string(info->partition) + ", importing " +
                     std::to_string(partition_));
  }
  if (info->index != next_index_) {
    return bad_chunk("index " + std::to_string(info->index) + ", expected " +
                     std::to_string(next_index_));
  }
  if (next_index_ == 0) {
    lsn_ = info->lsn;
  } else if (info->lsn != lsn_) {
    return bad_chunk("lsn " + std::to_string(info->lsn) + " in a snapshot at " +
                     std::to_string(lsn_));
  }
  if (store_.read_only()) return store_.read_only_error();
  const internal::Db& db = internal::db_of(store_);
  rocksdb::WriteBatch batch;
  for (const ChunkRow& row : rows) {
    const RowOwner owner = classify_row(row.cf, row.key, row.value, partition_of_);
    if (owner.scope != RowScope::kPartition || owner.partition != partition_) {
      return bad_chunk("holds a row of kind '" + std::string(owner.kind) +
                       "' that is not partition " + std::to_string(partition_) + "'s");
    }
    if (rocksdb::Status s = batch.Put(handle(db, row.cf), row.key, row.value); !s.ok()) {
      return internal::storage_error(s);
    }
  }
  if (Status st = db.write(batch, false); !st.is_ok()) return st;
  ++next_index_;
  last_seen_ = info->last;
  return {};
}

Result<uint64_t> PartitionSnapshotImport::finish() {
  if (!last_seen_ || finished_) {
    return internal::invalid("snapshot of partition " + std::to_string(partition_) +
                             (finished_ ? " already finished" : ": the last chunk is missing"));
  }
  auto applied = applied_lsn(store_, partition_);
  if (!applied.ok()) return applied.status();
  if (*applied != 0) {
    return internal::invalid("partition " + std::to_string(partition_) +
                             " was applied to during the import");
  }
  if (store_.read_only()) return store_.read_only_error();
  const internal::Db& db = internal::db_of(store_);
  rocksdb::WriteBatch batch;
  std::string key;
  std::string value;
  keys::applied_key(key, partition_);
  keys::put_be64(value, lsn_);
  if (rocksdb::Status s = batch.Put(db.executions, key, value); !s.ok()) {
    return internal::storage_error(s);
  }
  // Synced whatever the store's durability: it also makes every chunk's
  // unsynced batch before it durable (one write-ahead log, in order).
  if (Status st = db.write(batch, true); !st.is_ok()) return st;
  finished_ = true;
  return lsn_;
}

}  // namespace yantra::storage
