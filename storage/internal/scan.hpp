// Range scans: the one place in storage/ that creates RocksDB iterators
// (`grep -n NewIterator storage/` finds only scan.cpp). Design notes:
//
// - Every scan is bounded on both sides (iterate_lower_bound and
//   iterate_upper_bound), so RocksDB stops at the end of the range instead of
//   reading into the next execution's or tenant's blocks, and a reverse scan
//   (SeekToLast, Prev) stays inside the range too. KeyRange::prefix() bounds
//   a prefix by its successor (keys.hpp), so a scan of tenant "ab" never
//   returns a row of tenant "abc": the key layouts end each variable-length
//   id with 0x00 or prefix it with its length, which makes the prefix exact.
// - An iterator that stops on an I/O error or a checksum failure looks like
//   the end of its range. scan()/scan_prefix() check its status after the
//   loop and return it as "storage_error"; a hand-written loop over a
//   BoundedIterator (for scans that re-seek, or stop on a condition of their
//   own) must return status() itself before using what it read.
// - `events` and `snapshots` have a prefix extractor (one execution, see
//   store.cpp). A scan inside one execution uses SeekMode::kSamePrefix (the
//   per-execution bloom filters apply); a scan across executions of those
//   column families must use kTotalOrder, or prefix seek skips keys.
//
// A BoundedIterator pins the memtables and files it reads for its lifetime:
// keep it in a local and never across a blocking call. Not thread-safe (one
// per scan); the Db it reads may be shared.
#pragma once

#include <rocksdb/db.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "storage/internal/db.hpp"

namespace yantra::storage::internal {

// Keys k with lower <= k < upper; an empty upper means no upper bound.
struct KeyRange {
  std::string lower;
  std::string upper;
  // Every key that starts with `prefix` (all keys for "").
  static KeyRange prefix(std::string prefix);
};

enum class SeekMode {
  kDefault,     // column families without a prefix extractor
  kSamePrefix,  // events/snapshots: the range lies inside one execution (forward only)
  kTotalOrder,  // events/snapshots: the range spans executions, or seeks backwards
};

class BoundedIterator {
 public:
  // Not positioned yet: call seek_to_first(), seek_to_last() or seek().
  // `snapshot` (optional) pins the view the iterator reads: a partition
  // snapshot's export (partition_snapshot.hpp) reads every column family at
  // one point, one bounded iterator per chunk.
  BoundedIterator(const Db& db, rocksdb::ColumnFamilyHandle* cf, KeyRange range,
                  SeekMode mode = SeekMode::kDefault, const rocksdb::Snapshot* snapshot = nullptr);
  ~BoundedIterator();
  // The ReadOptions point into this object: it cannot move.
  BoundedIterator(const BoundedIterator&) = delete;
  BoundedIterator& operator=(const BoundedIterator&) = delete;

  void seek_to_first();
  void seek_to_last();
  // The first key >= target (and inside the range).
  void seek(const rocksdb::Slice& target);
  // The last key <= target (and inside the range).
  void seek_for_prev(const rocksdb::Slice& target);
  void next();
  void prev();

  bool valid() const;
  rocksdb::Slice key() const;
  rocksdb::Slice value() const;
  // The key without the range's first `n` bytes (an id after its prefix).
  std::string key_after(size_t n) const;

  // Ok while the iterator is healthy; "storage_error" once it failed (it is
  // then no longer valid(), like at the end of the range).
  Status status() const;

  const KeyRange& range() const { return range_; }

 private:
  KeyRange range_;
  rocksdb::Slice lower_;
  rocksdb::Slice upper_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

struct ScanOptions {
  size_t limit = SIZE_MAX;  // at most this many keys
  bool reverse = false;     // from the last key of the range down
  SeekMode mode = SeekMode::kDefault;
};

// Calls fn(key, value) for each key of `range` in order (or reverse order),
// at most options.limit times. fn returns void, or a Status: a failed one
// stops the scan and is returned. An iterator failure is returned as
// "storage_error"; ok otherwise.
template <typename Fn>
Status scan(const Db& db, rocksdb::ColumnFamilyHandle* cf, KeyRange range, Fn&& fn,
            const ScanOptions& options = {}) {
  // Prefix seek only goes forward: a reverse scan seeks in total order.
  const SeekMode mode = options.reverse && options.mode == SeekMode::kSamePrefix
                            ? SeekMode::kTotalOrder
                            : options.mode;
  BoundedIterator it(db, cf, std::move(range), mode);
  if (options.reverse) {
    it.seek_to_last();
  } else {
    it.seek_to_first();
  }
  // Never steps past the last key it hands out: a reverse scan for the
  // newest row (limit 1) costs one seek and no Prev().
  for (size_t n = 0; n < options.limit && it.valid();) {
    if constexpr (std::is_void_v<std::invoke_result_t<Fn&, rocksdb::Slice, rocksdb::Slice>>) {
      fn(it.key(), it.value());
    } else {
      if (Status st = fn(it.key(), it.value()); !st.is_ok()) return st;
    }
    if (++n == options.limit) break;
    if (options.reverse) {
      it.prev();
    } else {
      it.next();
    }
  }
  return it.status();
}

// scan() over every key that starts with `prefix`.
template <typename Fn>
Status scan_prefix(const Db& db, rocksdb::ColumnFamilyHandle* cf, std::string prefix, Fn&& fn,
                   const ScanOptions& options = {}) {
  return scan(db, cf, KeyRange::prefix(std::move(prefix)), std::forward<Fn>(fn), options);
}

// The rest of every key that starts with `prefix`, in key order (the ids of
// index rows such as active markers and fork links).
Result<std::vector<std::string>> key_suffixes(const Db& db, rocksdb::ColumnFamilyHandle* cf,
                                              const std::string& prefix);

}  // namespace yantra::storage::internal
