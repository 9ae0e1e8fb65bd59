// BoundedIterator: see scan.hpp for why every scan is bounded on both sides
// and why its status is checked after the loop.
#include "storage/internal/scan.hpp"

#include "storage/internal/keys.hpp"

namespace yantra::storage::internal {

KeyRange KeyRange::prefix(std::string prefix) {
  std::string upper = keys::prefix_successor(prefix);
  return KeyRange{std::move(prefix), std::move(upper)};
}

BoundedIterator::BoundedIterator(const Db& db, rocksdb::ColumnFamilyHandle* cf, KeyRange range,
                                 SeekMode mode, const rocksdb::Snapshot* snapshot)
    : range_(std::move(range)), lower_(range_.lower), upper_(range_.upper) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  if (!range_.lower.empty()) ro.iterate_lower_bound = &lower_;
  if (!range_.upper.empty()) ro.iterate_upper_bound = &upper_;
  ro.prefix_same_as_start = mode == SeekMode::kSamePrefix;
  ro.total_order_seek = mode == SeekMode::kTotalOrder;
  it_.reset(db.rocks->NewIterator(ro, cf));
}

BoundedIterator::~BoundedIterator() = default;

void BoundedIterator::seek_to_first() {
  if (range_.lower.empty()) {
    it_->SeekToFirst();
  } else {
    it_->Seek(lower_);
  }
}

void BoundedIterator::seek_to_last() {
  it_->SeekToLast();  // RocksDB starts below iterate_upper_bound
}

void BoundedIterator::seek(const rocksdb::Slice& target) {
  it_->Seek(target);
}

void BoundedIterator::seek_for_prev(const rocksdb::Slice& target) {
  it_->SeekForPrev(target);
}

void BoundedIterator::next() {
  it_->Next();
}

void BoundedIterator::prev() {
  it_->Prev();
}

bool BoundedIterator::valid() const {
  return it_->Valid();
}

rocksdb::Slice BoundedIterator::key() const {
  return it_->key();
}

rocksdb::Slice BoundedIterator::value() const {
  return it_->value();
}

std::string BoundedIterator::key_after(size_t n) const {
  rocksdb::Slice k = it_->key();
  return n < k.size() ? std::string(k.data() + n, k.size() - n) : std::string();
}

Status BoundedIterator::status() const {
  rocksdb::Status s = it_->status();
  return s.ok() ? Status() : storage_error(s);
}

Result<std::vector<std::string>> key_suffixes(const Db& db, rocksdb::ColumnFamilyHandle* cf,
                                              const std::string& prefix) {
  std::vector<std::string> out;
  Status st = scan_prefix(db, cf, prefix, [&](const rocksdb::Slice& key, const rocksdb::Slice&) {
    out.emplace_back(key.data() + prefix.size(), key.size() - prefix.size());
  });
  if (!st.is_ok()) return st;
  return out;
}

}  // namespace yantra::storage::internal
