// WalGuard: see wal_guard.hpp. Implementation notes:
//
// - The side file is text ("yantra-wal-guard 1", then "<number> <bytes>"
//   per WAL) so an operator can read it; it is replaced atomically (tmp
//   file, sync, rename, directory sync), never edited in place.
// - A failure to write it is returned from the RocksDB call that needed it
//   (creating, deleting or syncing a WAL): the store then latches read-only
//   rather than write into a WAL it could not vouch for.
// - Each WAL handle counts the bytes appended through it; a Sync covers the
//   count read before it started.
#include "storage/internal/wal_guard.hpp"
#include "base/storage_errc.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <sstream>
#include <system_error>
#include <utility>

#include <rocksdb/write_batch.h>

namespace yantra::storage::internal {

namespace {

constexpr auto kPersistInterval = std::chrono::seconds(1);

std::string normalise(const std::string& path) {
  std::string s = std::filesystem::path(path).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

bool parse_wal_name(const std::string& name, uint64_t* number) {
  constexpr std::string_view kSuffix = ".log";
  if (name.size() <= kSuffix.size() || name.compare(name.size() - 4, 4, kSuffix) != 0) {
    return false;
  }
  const std::string digits = name.substr(0, name.size() - kSuffix.size());
  if (digits.empty() || digits.size() > 19 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  *number = std::stoull(digits);
  return true;
}

// A WAL handed to RocksDB: reports durable sizes to its guard.
class GuardedWal final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  GuardedWal(std::unique_ptr<rocksdb::FSWritableFile> file, uint64_t number, WalGuard& guard)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(file)), number_(number), guard_(guard) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->Append(data, options, dbg);
    if (s.ok()) size_.fetch_add(data.size());
    return s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->Append(data, options, info, dbg);
    if (s.ok()) size_.fetch_add(data.size());
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->PositionedAppend(data, offset, options, dbg);
    if (s.ok()) grow_to(offset + data.size());
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->PositionedAppend(data, offset, options, info, dbg);
    if (s.ok()) grow_to(offset + data.size());
    return s;
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->Truncate(size, options, dbg);
    if (s.ok()) size_.store(size);
    return s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    const uint64_t size = size_.load();
    rocksdb::IOStatus s = target()->Sync(options, dbg);
    if (s.ok()) s = guard_.on_synced(number_, size);
    return s;
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    const uint64_t size = size_.load();
    rocksdb::IOStatus s = target()->Fsync(options, dbg);
    if (s.ok()) s = guard_.on_synced(number_, size);
    return s;
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->Close(options, dbg);
    guard_.on_closed();
    return s;
  }

 private:
  void grow_to(uint64_t end) {
    uint64_t cur = size_.load();
    while (end > cur && !size_.compare_exchange_weak(cur, end)) {
    }
  }

  std::atomic<uint64_t> size_{0};
  uint64_t number_;
  WalGuard& guard_;
};

}  // namespace

WalGuard::WalGuard(std::string dir, std::shared_ptr<rocksdb::FileSystem> base)
    : rocksdb::FileSystemWrapper(std::move(base)), dir_(normalise(dir)) {}

bool WalGuard::wal_number(const std::string& fname, uint64_t* number) const {
  const std::filesystem::path p(normalise(fname));
  return normalise(p.parent_path().string()) == dir_ &&
         parse_wal_name(p.filename().string(), number);
}

std::string WalGuard::wal_path(uint64_t number) const {
  char name[32];
  std::snprintf(name, sizeof name, "%06llu.log", static_cast<unsigned long long>(number));
  return dir_ + "/" + name;
}

std::vector<uint64_t> WalGuard::present_wals() const {
  std::vector<std::string> children;
  std::vector<uint64_t> out;
  if (!target()->GetChildren(dir_, rocksdb::IOOptions(), &children, nullptr).ok()) return out;
  for (const auto& child : children) {
    uint64_t n = 0;
    if (parse_wal_name(child, &n)) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

rocksdb::IOStatus WalGuard::check(std::vector<std::string>* problems) {
  std::lock_guard lock(mu_);
  const std::string file = dir_ + "/" + kFileName;
  if (target()->FileExists(file, rocksdb::IOOptions(), nullptr).IsNotFound()) {
    wals_.clear();
    for (uint64_t n : present_wals()) wals_[n] = 0;
    return persist_locked();
  }
  std::string text;
  if (rocksdb::IOStatus s = rocksdb::ReadFileToString(target(), file, &text); !s.ok()) return s;
  std::istringstream in(text);
  std::string magic;
  int version = 0;
  in >> magic >> version;
  if (magic != kFileName || version != 1) {
    problems->push_back(file + " is not a WAL list this version understands");
    return rocksdb::IOStatus::OK();
  }
  wals_.clear();
  uint64_t number = 0;
  uint64_t durable = 0;
  while (in >> number >> durable) wals_[number] = durable;
  if (!in.eof()) {
    problems->push_back(file + " is damaged (a line is not '<number> <bytes>')");
    return rocksdb::IOStatus::OK();
  }
  for (const auto& [n, bytes] : wals_) {
    const std::string path = wal_path(n);
    if (target()->FileExists(path, rocksdb::IOOptions(), nullptr).IsNotFound()) {
      problems->push_back(
          "write-ahead log " + path + " is missing" +
          (bytes > 0 ? " (" + std::to_string(bytes) + " bytes of it were durable)" : ""));
      continue;
    }
    uint64_t size = 0;
    if (rocksdb::IOStatus s = target()->GetFileSize(path, rocksdb::IOOptions(), &size, nullptr);
        !s.ok()) {
      return s;
    }
    if (size < bytes) {
      problems->push_back("write-ahead log " + path + " was cut: it is " + std::to_string(size) +
                          " bytes, but " + std::to_string(bytes) + " bytes of it were durable");
    }
  }
  return rocksdb::IOStatus::OK();
}

rocksdb::IOStatus WalGuard::adopt_present() {
  std::lock_guard lock(mu_);
  wals_.clear();
  for (uint64_t n : present_wals()) wals_[n] = 0;
  return persist_locked();
}

rocksdb::IOStatus WalGuard::persist_locked() {
  rocksdb::IOStatus s = write_list_locked();
  if (s.IsNoSpace() && ::unlink(reserve_path().c_str()) == 0) {
    // The disk is full: give back the reserve (this run's or a previous
    // one's) and try once more, so that a new WAL can still be listed and
    // RocksDB's memtable switch succeed.
    reserve_present_ = false;
    s = write_list_locked();
  }
  if (s.ok() && !reserve_present_ &&
      std::chrono::steady_clock::now() - last_reserve_try_ >= kPersistInterval) {
    last_reserve_try_ = std::chrono::steady_clock::now();
    reserve_present_ = make_reserve();
  }
  return s;
}

std::string WalGuard::reserve_path() const {
  return dir_ + "/" + kReserveName;
}

bool WalGuard::make_reserve() const {
  // Plain POSIX, not the wrapped file system: the reserve holds no data, so
  // neither test faults nor simulated power loss need to see it.
  const std::string path = reserve_path();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const bool ok = ::posix_fallocate(fd, 0, kReserveBytes) == 0;
  ::close(fd);
  if (!ok) ::unlink(path.c_str());
  return ok;
}

rocksdb::IOStatus WalGuard::write_list_locked() {
  std::string text = std::string(kFileName) + " 1\n";
  for (const auto& [n, bytes] : wals_)
    text += std::to_string(n) + " " + std::to_string(bytes) + "\n";
  const std::string file = dir_ + "/" + kFileName;
  const std::string tmp = file + ".tmp";
  rocksdb::IOOptions io;
  std::unique_ptr<rocksdb::FSWritableFile> out;
  rocksdb::IOStatus s = target()->NewWritableFile(tmp, rocksdb::FileOptions(), &out, nullptr);
  if (s.ok()) s = out->Append(text, io, nullptr);
  if (s.ok()) s = out->Sync(io, nullptr);
  if (out) {
    rocksdb::IOStatus c = out->Close(io, nullptr);
    if (s.ok()) s = c;
  }
  if (s.ok()) s = target()->RenameFile(tmp, file, io, nullptr);
  std::unique_ptr<rocksdb::FSDirectory> dir;
  if (s.ok()) s = target()->NewDirectory(dir_, io, &dir, nullptr);
  if (s.ok()) s = dir->Fsync(io, nullptr);
  if (dir) dir->Close(io, nullptr).PermitUncheckedError();
  if (s.ok()) {
    dirty_ = false;
    last_persist_ = std::chrono::steady_clock::now();
  }
  return s;
}

rocksdb::IOStatus WalGuard::NewWritableFile(const std::string& fname,
                                            const rocksdb::FileOptions& options,
                                            std::unique_ptr<rocksdb::FSWritableFile>* result,
                                            rocksdb::IODebugContext* dbg) {
  uint64_t number = 0;
  if (!wal_number(fname, &number)) return target()->NewWritableFile(fname, options, result, dbg);
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = target()->NewWritableFile(fname, options, &file, dbg);
  if (!s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    wals_[number] = 0;
    s = persist_locked();
    if (!s.ok()) wals_.erase(number);
  }
  if (!s.ok()) {
    // Nothing was written to it: take it back so no one writes unlisted.
    file->Close(rocksdb::IOOptions(), nullptr).PermitUncheckedError();
    file.reset();
    target()->DeleteFile(fname, rocksdb::IOOptions(), nullptr).PermitUncheckedError();
    return s;
  }
  *result = std::make_unique<GuardedWal>(std::move(file), number, *this);
  return s;
}

rocksdb::IOStatus WalGuard::ReuseWritableFile(const std::string& fname,
                                              const std::string& old_fname,
                                              const rocksdb::FileOptions& options,
                                              std::unique_ptr<rocksdb::FSWritableFile>* result,
                                              rocksdb::IODebugContext* dbg) {
  // WAL recycling (recycle_log_file_num) is off in Yantra; were it on, the
  // recycled file is a new WAL under a new name.
  uint64_t number = 0;
  uint64_t old_number = 0;
  const bool is_wal = wal_number(fname, &number);
  if (wal_number(old_fname, &old_number)) {
    std::lock_guard lock(mu_);
    if (wals_.erase(old_number) > 0) {
      if (rocksdb::IOStatus s = persist_locked(); !s.ok()) return s;
    }
  }
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = target()->ReuseWritableFile(fname, old_fname, options, &file, dbg);
  if (!s.ok() || !is_wal) {
    *result = std::move(file);
    return s;
  }
  {
    std::lock_guard lock(mu_);
    wals_[number] = 0;
    s = persist_locked();
  }
  if (!s.ok()) return s;
  *result = std::make_unique<GuardedWal>(std::move(file), number, *this);
  return s;
}

rocksdb::IOStatus WalGuard::DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) {
  uint64_t number = 0;
  if (wal_number(fname, &number)) {
    std::lock_guard lock(mu_);
    auto it = wals_.find(number);
    if (it != wals_.end()) {
      const uint64_t durable = it->second;
      wals_.erase(it);
      if (rocksdb::IOStatus s = persist_locked(); !s.ok()) {
        wals_[number] = durable;  // still listed, so still not deleted
        return s;
      }
    }
  }
  return target()->DeleteFile(fname, options, dbg);
}

rocksdb::IOStatus WalGuard::RenameFile(const std::string& src, const std::string& target_name,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) {
  uint64_t from = 0;
  uint64_t to = 0;
  const bool from_wal = wal_number(src, &from);
  const bool to_wal = wal_number(target_name, &to);
  if (!from_wal && !to_wal) return target()->RenameFile(src, target_name, options, dbg);
  std::lock_guard lock(mu_);
  uint64_t durable = 0;
  if (from_wal) {
    auto it = wals_.find(from);
    if (it != wals_.end()) {
      durable = it->second;
      wals_.erase(it);
      if (rocksdb::IOStatus s = persist_locked(); !s.ok()) {
        wals_[from] = durable;
        return s;
      }
    }
  }
  rocksdb::IOStatus s = target()->RenameFile(src, target_name, options, dbg);
  if (s.ok() && to_wal) {
    wals_[to] = durable;
    s = persist_locked();
  }
  return s;
}

rocksdb::IOStatus WalGuard::on_synced(uint64_t number, uint64_t size) {
  std::lock_guard lock(mu_);
  auto it = wals_.find(number);
  if (it == wals_.end() || size <= it->second) return rocksdb::IOStatus::OK();
  it->second = size;
  dirty_ = true;
  if (std::chrono::steady_clock::now() - last_persist_ < kPersistInterval) {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus s = persist_locked();
  // Out of space for the side file: the WAL's own bytes are durable (its
  // sync succeeded), and the list still names this WAL with an older, lower
  // durable size, which can only make the cut check less strict, never
  // raise a false alarm. Failing the sync would make RocksDB treat its WAL
  // as broken and latch the store for what is a reversible state (a full
  // disk, storage/disk_guard.hpp); the size is written at a later sync.
  if (s.IsNoSpace()) return rocksdb::IOStatus::OK();
  return s;
}

void WalGuard::on_closed() {
  std::lock_guard lock(mu_);
  // Best effort: a close has no caller waiting on durability, and the
  // sizes written a second ago still guard the WAL.
  if (dirty_) persist_locked().PermitUncheckedError();
}

rocksdb::WalFilter::WalProcessingOption SequenceCheck::LogRecordFound(
    unsigned long long /*log_number*/, const std::string& log_file_name,
    const rocksdb::WriteBatch& batch, rocksdb::WriteBatch* /*new_batch*/, bool* /*batch_changed*/) {
  const std::string& rep = batch.Data();
  if (rep.size() < 12) return WalProcessingOption::kCorruptedRecord;
  uint64_t seq = 0;
  for (int i = 7; i >= 0; --i)
    seq = (seq << 8) | static_cast<unsigned char>(rep[static_cast<size_t>(i)]);
  std::lock_guard lock(mu_);
  if (next_ != 0 && seq > next_) {
    gaps_.push_back("write-ahead log " + log_file_name + " lacks the records of sequence numbers " +
                    std::to_string(next_) + ".." + std::to_string(seq - 1));
    return WalProcessingOption::kCorruptedRecord;
  }
  next_ = std::max(next_, seq + batch.Count());
  return WalProcessingOption::kContinueProcessing;
}

void SequenceCheck::reset() {
  std::lock_guard lock(mu_);
  next_ = 0;
  gaps_.clear();
}

std::vector<std::string> SequenceCheck::gaps() const {
  std::lock_guard lock(mu_);
  return gaps_;
}

DropLog::DropLog(std::shared_ptr<rocksdb::Logger> inner)
    : rocksdb::Logger(inner->GetInfoLogLevel()), inner_(std::move(inner)) {}

void DropLog::Logv(const char* format, va_list ap) {
  Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
}

void DropLog::Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  char line[1024];
  std::vsnprintf(line, sizeof line, format, copy);
  va_end(copy);
  const std::string_view text(line);
  if (text.find("dropping") != std::string_view::npos ||
      text.find("Point in time recovered") != std::string_view::npos) {
    std::lock_guard lock(mu_);
    if (lines_.size() < 100) lines_.emplace_back(text);
  }
  inner_->Logv(level, format, ap);
}

std::vector<std::string> DropLog::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

bool preserve_wals(const std::string& dir, std::string* where, std::string* error) {
  namespace fs = std::filesystem;
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(stamp, sizeof stamp, "wal-%Y%m%dT%H%M%SZ", &utc);
  fs::path target = fs::path(dir) / "lost+found" / stamp;
  std::error_code ec;
  for (int i = 1; fs::exists(target, ec); ++i) {
    target = fs::path(dir) / "lost+found" / (std::string(stamp) + "-" + std::to_string(i));
  }
  fs::create_directories(target, ec);
  if (!ec) {
    fs::permissions(fs::path(dir) / "lost+found", fs::perms::owner_all, fs::perm_options::replace,
                    ec);
  }
  if (!ec) fs::permissions(target, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) {
    *error = "cannot create " + target.string() + ": " + ec.message();
    return false;
  }
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    uint64_t n = 0;
    const std::string name = entry.path().filename().string();
    if (!parse_wal_name(name, &n) && name != WalGuard::kFileName) continue;
    fs::copy_file(entry.path(), target / name, ec);
    if (ec) {
      *error = "cannot copy " + entry.path().string() + ": " + ec.message();
      return false;
    }
  }
  if (ec) {
    *error = "cannot list " + dir + ": " + ec.message();
    return false;
  }
  *where = target.string();
  return true;
}

Status open_accepting_loss(WalRecovery& recovery, rocksdb::DBOptions options,
                           const std::string& path,
                           const std::vector<rocksdb::ColumnFamilyDescriptor>& column_families,
                           const std::vector<std::string>& damage,
                           std::vector<rocksdb::ColumnFamilyHandle*>* handles, rocksdb::DB** db,
                           std::vector<std::string>* report) {
  std::string copies;
  std::string error;
  if (!preserve_wals(path, &copies, &error)) {
    return Status(StorageErrc::kCorrupt, "the data in " + path +
                                             " is damaged, and its write-ahead log could not be "
                                             "copied aside before recovery: " +
                                             error);
  }
  // The store's own info LOG (internal/info_log.hpp) when it set one.
  std::shared_ptr<rocksdb::Logger> info_log = options.info_log;
  if (!info_log) {
    rocksdb::CreateLoggerFromOptions(path, options, &info_log).PermitUncheckedError();
  }
  if (info_log) {
    recovery.drop_log = std::make_shared<DropLog>(info_log);
    options.info_log = recovery.drop_log;
  }
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  options.track_and_verify_wals_in_manifest = false;
  // A fresh check: the strict open's replay saw the same records.
  recovery.sequence_check.reset();
  options.wal_filter = &recovery.sequence_check;
  handles->clear();
  rocksdb::Status s = rocksdb::DB::Open(options, path, column_families, handles, db);
  if (!s.ok() && !s.IsCorruption()) {
    return Status(StorageErrc::kError, "recovering " + path + " failed: " + s.ToString());
  }
  if (!s.ok()) {
    return Status(StorageErrc::kCorrupt, "the data in " + path +
                                             " is damaged beyond the write-ahead log: even "
                                             "point-in-time recovery fails (" +
                                             s.ToString() +
                                             "); restore it from a backup. Copies of its WAL files "
                                             "are in " +
                                             copies);
  }
  // Only now that the loss is taken: had this open failed, the next one
  // must still see the damage the list records.
  if (rocksdb::IOStatus a = recovery.guard->adopt_present(); !a.ok()) {
    for (auto* handle : *handles) (*db)->DestroyColumnFamilyHandle(handle);
    handles->clear();
    delete *db;
    *db = nullptr;
    return Status(StorageErrc::kError,
                  "cannot write the WAL list in " + path + ": " + a.ToString());
  }
  report->assign(damage.begin(), damage.end());
  if (recovery.drop_log) {
    for (auto& line : recovery.drop_log->lines()) report->push_back("RocksDB: " + line);
  }
  report->push_back("copies of the write-ahead log files as found are in " + copies);
  return Status::ok();
}

}  // namespace yantra::storage::internal
