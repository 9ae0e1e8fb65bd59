// Db: the reads and writes every typed store shares (see db.hpp).
#include "storage/internal/db.hpp"
#include "base/storage_errc.hpp"

namespace yantra::storage::internal {

Result<std::optional<std::string>> Db::get(rocksdb::ColumnFamilyHandle* cf,
                                           const rocksdb::Slice& key) const {
  std::string value;
  rocksdb::Status s = rocks->Get(rocksdb::ReadOptions(), cf, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return storage_error(s);
  return std::optional<std::string>(std::move(value));
}

Status Db::write(rocksdb::WriteBatch& batch, bool sync) const {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status s = rocks->Write(wo, &batch);
  if (!s.ok()) return store->write_failed(s);
  store->note_written(batch.GetDataSize());
  return {};
}

Status storage_error(const rocksdb::Status& s) {
  return {StorageErrc::kError, s.ToString()};
}

Status invalid(std::string message) {
  return {Errc::kInvalidArgument, std::move(message)};
}

Status corrupt(const std::string& what) {
  return {StorageErrc::kCorrupt, what + " does not parse"};
}

}  // namespace yantra::storage::internal
