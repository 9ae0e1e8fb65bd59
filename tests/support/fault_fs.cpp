// FaultFs: see fault_fs.hpp for the crash model. Implementation notes:
//
// - Files are tracked by their lexically normalised path, so that
//   "dir/000004.log" from NewWritableFile and "dir" from NewDirectory agree
//   on which directory a file is in (RocksDB builds both from one dbname).
// - Sync bookkeeping: the size a Sync covers is read before the real sync
//   starts. Appends racing with it may be durable too, but counting them
//   would claim more than the sync promised.
// - The sync latch parks callers before they take the I/O lock, so a test
//   can cut the power while a Sync is parked; the Sync then fails, as an
//   fsync that never returned before the power went would.
#include "tests/support/fault_fs.hpp"

#include <algorithm>
#include <filesystem>
#include <utility>

namespace yantra::testing {

namespace {

std::string normalise(const std::string& path) {
  std::string s = std::filesystem::path(path).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string parent_of(const std::string& normalised) {
  return normalise(std::filesystem::path(normalised).parent_path().string());
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Truncates a local file. (RocksDB's POSIX file system does not implement
// FileSystem::Truncate, so the crash works on the local disk directly.)
void cut(const std::string& path, uint64_t size) {
  std::error_code ec;
  std::filesystem::resize_file(path, size, ec);
}

const char* op_name(FaultFs::Op op) {
  switch (op) {
    case FaultFs::Op::kSync: return "sync";
    case FaultFs::Op::kAppend: return "append";
    case FaultFs::Op::kRename: return "rename";
  }
  return "?";
}

}  // namespace

struct FaultFs::Rules {
  struct Entry {
    bool active = false;
    Rule rule;
    uint64_t matched = 0;
    uint64_t failed = 0;
  };
  Entry ops[3];
  Entry& operator[](Op op) { return ops[static_cast<int>(op)]; }
};

// A writable file whose appends and syncs FaultFs sees. Owns the real file.
class FaultWritableFile final : public rocksdb::FSWritableFileWrapper {
 public:
  FaultWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file, std::string path, FaultFs& fs)
      : rocksdb::FSWritableFileWrapper(file.get()),
        owned_(std::move(file)),
        path_(std::move(path)),
        fs_(fs) {}

  ~FaultWritableFile() override {
    // Destroying a POSIX file closes it, which may trim it back to the size
    // written: after a crash, put the crash's loss back.
    owned_.reset();
    std::shared_lock io(fs_.io_mu_);
    if (fs_.crashed_) fs_.reapply_loss(path_);
  }

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    std::shared_lock io(fs_.io_mu_);
    if (fs_.crashed_) return FaultFs::power_lost();
    if (auto s = fs_.check(FaultFs::Op::kAppend, path_); !s.ok()) return s;
    rocksdb::IOStatus s = target()->Append(data, options, dbg);
    if (s.ok()) fs_.on_append(path_, data.size(), /*absolute=*/false);
    return s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& /*verification_info*/,
                           rocksdb::IODebugContext* dbg) override {
    return Append(data, options, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    std::shared_lock io(fs_.io_mu_);
    if (fs_.crashed_) return FaultFs::power_lost();
    if (auto s = fs_.check(FaultFs::Op::kAppend, path_); !s.ok()) return s;
    rocksdb::IOStatus s = target()->PositionedAppend(data, offset, options, dbg);
    if (s.ok()) fs_.on_append(path_, offset + data.size(), /*absolute=*/true);
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& /*verification_info*/,
                                     rocksdb::IODebugContext* dbg) override {
    return PositionedAppend(data, offset, options, dbg);
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    std::shared_lock io(fs_.io_mu_);
    if (fs_.crashed_) return FaultFs::power_lost();
    rocksdb::IOStatus s = target()->Truncate(size, options, dbg);
    if (s.ok()) fs_.on_truncate(path_, size);
    return s;
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    std::shared_lock io(fs_.io_mu_);
    if (fs_.crashed_) return FaultFs::power_lost();
    return target()->Flush(options, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return sync(/*full=*/false, options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return sync(/*full=*/true, options, dbg);
  }
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    // Starts write-back only; durability still needs a Sync.
    std::shared_lock io(fs_.io_mu_);
    if (fs_.crashed_) return FaultFs::power_lost();
    return target()->RangeSync(offset, nbytes, options, dbg);
  }
  rocksdb::IOStatus Allocate(uint64_t offset, uint64_t len, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    std::shared_lock io(fs_.io_mu_);
    if (fs_.crashed_) return FaultFs::power_lost();
    return target()->Allocate(offset, len, options, dbg);
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    std::shared_lock io(fs_.io_mu_);
    // Closed even after a crash, to release the descriptor; then the loss
    // is put back (see the destructor).
    rocksdb::IOStatus s = target()->Close(options, dbg);
    if (!fs_.crashed_) return s;
    fs_.reapply_loss(path_);
    return FaultFs::power_lost();
  }

 private:
  rocksdb::IOStatus sync(bool full, const rocksdb::IOOptions& options,
                         rocksdb::IODebugContext* dbg) {
    fs_.maybe_block(path_);
    std::shared_lock io(fs_.io_mu_);
    if (fs_.crashed_) return FaultFs::power_lost();
    if (auto s = fs_.check(FaultFs::Op::kSync, path_); !s.ok()) return s;
    const uint64_t size = fs_.size_of(path_);
    rocksdb::IOStatus s = full ? target()->Fsync(options, dbg) : target()->Sync(options, dbg);
    if (s.ok()) fs_.on_synced(path_, size);
    return s;
  }

  std::unique_ptr<rocksdb::FSWritableFile> owned_;
  std::string path_;
  FaultFs& fs_;
};

// A directory whose fsyncs make the entries of files in it durable.
class FaultDirectory final : public rocksdb::FSDirectoryWrapper {
 public:
  FaultDirectory(std::unique_ptr<rocksdb::FSDirectory> dir, std::string path, FaultFs& fs)
      : rocksdb::FSDirectoryWrapper(std::move(dir)), path_(std::move(path)), fs_(fs) {}

  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return sync(options, dbg, nullptr);
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& options,
                                        rocksdb::IODebugContext* dbg,
                                        const rocksdb::DirFsyncOptions& dir_options) override {
    return sync(options, dbg, &dir_options);
  }

 private:
  rocksdb::IOStatus sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg,
                         const rocksdb::DirFsyncOptions* dir_options) {
    fs_.maybe_block(path_);
    std::shared_lock io(fs_.io_mu_);
    if (fs_.crashed_) return FaultFs::power_lost();
    if (auto s = fs_.check(FaultFs::Op::kSync, path_); !s.ok()) return s;
    rocksdb::IOStatus s = dir_options != nullptr ? rocksdb::FSDirectoryWrapper::FsyncWithDirOptions(
                                                       options, dbg, *dir_options)
                                                 : rocksdb::FSDirectoryWrapper::Fsync(options, dbg);
    // The I/O lock is held: no file can be created in between, so every
    // entry tracked in this directory now is covered by this fsync.
    if (s.ok()) fs_.on_dir_synced(path_);
    return s;
  }

  std::string path_;
  FaultFs& fs_;
};

FaultFs::FaultFs(std::shared_ptr<rocksdb::FileSystem> base)
    : rocksdb::FileSystemWrapper(base), rules_(std::make_unique<Rules>()) {}

FaultFs::~FaultFs() = default;

void FaultFs::fail(Op op) {
  fail(op, Rule());
}

void FaultFs::fail(Op op, Rule rule) {
  std::lock_guard lock(state_mu_);
  (*rules_)[op] = Rules::Entry{true, std::move(rule), 0, 0};
}

void FaultFs::heal(Op op) {
  std::lock_guard lock(state_mu_);
  (*rules_)[op].active = false;
}

void FaultFs::heal() {
  for (Op op : {Op::kSync, Op::kAppend, Op::kRename}) heal(op);
}

uint64_t FaultFs::matched(Op op) const {
  std::lock_guard lock(state_mu_);
  return rules_->ops[static_cast<int>(op)].matched;
}

uint64_t FaultFs::failed(Op op) const {
  std::lock_guard lock(state_mu_);
  return rules_->ops[static_cast<int>(op)].failed;
}

void FaultFs::block_syncs(const std::string& suffix) {
  std::lock_guard lock(block_mu_);
  blocking_ = true;
  block_suffix_ = suffix;
}

void FaultFs::release_syncs() {
  {
    std::lock_guard lock(block_mu_);
    blocking_ = false;
  }
  block_cv_.notify_all();
}

size_t FaultFs::blocked() const {
  std::lock_guard lock(block_mu_);
  return blocked_;
}

bool FaultFs::wait_blocked(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(block_mu_);
  return block_cv_.wait_for(lock, timeout, [&] { return blocked_ >= n; });
}

void FaultFs::maybe_block(const std::string& path) {
  std::unique_lock lock(block_mu_);
  if (!blocking_ || !ends_with(path, block_suffix_)) return;
  ++blocked_;
  block_cv_.notify_all();
  block_cv_.wait(lock, [&] { return !blocking_; });
  --blocked_;
}

rocksdb::IOStatus FaultFs::check(Op op, const std::string& path) {
  std::lock_guard lock(state_mu_);
  Rules::Entry& e = (*rules_)[op];
  if (!e.active || !ends_with(path, e.rule.suffix)) return rocksdb::IOStatus::OK();
  const uint64_t n = ++e.matched;
  if (n <= e.rule.after || n - e.rule.after > e.rule.times) return rocksdb::IOStatus::OK();
  ++e.failed;
  return rocksdb::IOStatus::IOError(std::string("injected ") + op_name(op) + " failure", path);
}

rocksdb::IOStatus FaultFs::power_lost() {
  return rocksdb::IOStatus::IOError("simulated power loss");
}

void FaultFs::track_new(const std::string& path, uint64_t size, uint64_t synced,
                        bool entry_durable) {
  std::lock_guard lock(state_mu_);
  files_[path] = FileState{size, synced, entry_durable};
}

void FaultFs::on_append(const std::string& path, uint64_t n, bool absolute) {
  std::lock_guard lock(state_mu_);
  FileState& f = files_[path];
  f.size = absolute ? std::max(f.size, n) : f.size + n;
}

void FaultFs::on_truncate(const std::string& path, uint64_t size) {
  std::lock_guard lock(state_mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return;
  it->second.size = size;
  it->second.synced = std::min(it->second.synced, size);
}

void FaultFs::on_synced(const std::string& path, uint64_t size) {
  std::lock_guard lock(state_mu_);
  auto it = files_.find(path);
  if (it != files_.end()) it->second.synced = std::max(it->second.synced, size);
}

uint64_t FaultFs::size_of(const std::string& path) const {
  std::lock_guard lock(state_mu_);
  auto it = files_.find(path);
  return it == files_.end() ? 0 : it->second.size;
}

void FaultFs::on_dir_synced(const std::string& dir) {
  std::lock_guard lock(state_mu_);
  for (auto& [path, f] : files_) {
    if (parent_of(path) == dir) f.entry_durable = true;
  }
}

uint64_t FaultFs::synced_size(const std::string& path) const {
  std::lock_guard lock(state_mu_);
  auto it = files_.find(normalise(path));
  return it == files_.end() ? 0 : it->second.synced;
}

size_t FaultFs::simulate_crash() {
  std::unique_lock io(io_mu_);
  if (crashed_) return 0;
  crashed_ = true;
  std::lock_guard lock(state_mu_);
  size_t touched = 0;
  for (const auto& [path, f] : files_) {
    lost_files_[path] = f;
    uint64_t on_disk = 0;
    if (!target()->GetFileSize(path, rocksdb::IOOptions(), &on_disk, nullptr).ok()) continue;
    if (!f.entry_durable) {
      target()->DeleteFile(path, rocksdb::IOOptions(), nullptr).PermitUncheckedError();
      ++touched;
    } else if (on_disk > f.synced) {
      cut(path, f.synced);
      ++touched;
    }
  }
  files_.clear();
  return touched;
}

void FaultFs::reapply_loss(const std::string& path) {
  std::lock_guard lock(state_mu_);
  auto it = lost_files_.find(path);
  if (it == lost_files_.end()) return;
  uint64_t on_disk = 0;
  if (!target()->GetFileSize(path, rocksdb::IOOptions(), &on_disk, nullptr).ok()) return;
  if (!it->second.entry_durable) {
    target()->DeleteFile(path, rocksdb::IOOptions(), nullptr).PermitUncheckedError();
  } else if (on_disk > it->second.synced) {
    cut(path, it->second.synced);
  }
}

bool FaultFs::crashed() const {
  std::shared_lock io(io_mu_);
  return crashed_;
}

void FaultFs::reset() {
  release_syncs();
  std::unique_lock io(io_mu_);
  crashed_ = false;
  std::lock_guard lock(state_mu_);
  files_.clear();
  lost_files_.clear();
  *rules_ = Rules();
}

rocksdb::IOStatus FaultFs::NewWritableFile(const std::string& fname,
                                           const rocksdb::FileOptions& options,
                                           std::unique_ptr<rocksdb::FSWritableFile>* result,
                                           rocksdb::IODebugContext* dbg) {
  std::shared_lock io(io_mu_);
  if (crashed_) return power_lost();
  const bool existed = target()->FileExists(fname, rocksdb::IOOptions(), nullptr).ok();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = target()->NewWritableFile(fname, options, &file, dbg);
  if (!s.ok()) return s;
  // The file is truncated (or created); an entry that existed stays.
  const std::string path = normalise(fname);
  track_new(path, 0, 0, existed);
  *result = std::make_unique<FaultWritableFile>(std::move(file), path, *this);
  return s;
}

rocksdb::IOStatus FaultFs::ReopenWritableFile(const std::string& fname,
                                              const rocksdb::FileOptions& options,
                                              std::unique_ptr<rocksdb::FSWritableFile>* result,
                                              rocksdb::IODebugContext* dbg) {
  std::shared_lock io(io_mu_);
  if (crashed_) return power_lost();
  uint64_t size = 0;
  const bool existed = target()->GetFileSize(fname, rocksdb::IOOptions(), &size, nullptr).ok();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = target()->ReopenWritableFile(fname, options, &file, dbg);
  if (!s.ok()) return s;
  const std::string path = normalise(fname);
  // What was there before is as durable as it was; we only see new bytes.
  track_new(path, size, size, existed);
  *result = std::make_unique<FaultWritableFile>(std::move(file), path, *this);
  return s;
}

rocksdb::IOStatus FaultFs::ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                             const rocksdb::FileOptions& options,
                                             std::unique_ptr<rocksdb::FSWritableFile>* result,
                                             rocksdb::IODebugContext* dbg) {
  std::shared_lock io(io_mu_);
  if (crashed_) return power_lost();
  if (auto s = check(Op::kRename, old_fname); !s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = target()->ReuseWritableFile(fname, old_fname, options, &file, dbg);
  if (!s.ok()) return s;
  const std::string path = normalise(fname);
  {
    std::lock_guard lock(state_mu_);
    files_.erase(normalise(old_fname));
  }
  track_new(path, 0, 0, /*entry_durable=*/false);
  *result = std::make_unique<FaultWritableFile>(std::move(file), path, *this);
  return s;
}

rocksdb::IOStatus FaultFs::NewRandomRWFile(const std::string& fname,
                                           const rocksdb::FileOptions& options,
                                           std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                           rocksdb::IODebugContext* dbg) {
  // Not tracked (our RocksDB configuration never writes through one); only
  // refused once the power is off.
  std::shared_lock io(io_mu_);
  if (crashed_) return power_lost();
  return target()->NewRandomRWFile(fname, options, result, dbg);
}

rocksdb::IOStatus FaultFs::NewDirectory(const std::string& name, const rocksdb::IOOptions& options,
                                        std::unique_ptr<rocksdb::FSDirectory>* result,
                                        rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  rocksdb::IOStatus s = target()->NewDirectory(name, options, &dir, dbg);
  if (!s.ok()) return s;
  *result = std::make_unique<FaultDirectory>(std::move(dir), normalise(name), *this);
  return s;
}

rocksdb::IOStatus FaultFs::DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                                      rocksdb::IODebugContext* dbg) {
  std::shared_lock io(io_mu_);
  if (crashed_) return power_lost();
  rocksdb::IOStatus s = target()->DeleteFile(fname, options, dbg);
  if (s.ok()) {
    std::lock_guard lock(state_mu_);
    files_.erase(normalise(fname));
  }
  return s;
}

rocksdb::IOStatus FaultFs::RenameFile(const std::string& src, const std::string& target_name,
                                      const rocksdb::IOOptions& options,
                                      rocksdb::IODebugContext* dbg) {
  std::shared_lock io(io_mu_);
  if (crashed_) return power_lost();
  if (auto s = check(Op::kRename, target_name); !s.ok()) return s;
  uint64_t size = 0;
  const bool existed = target()->GetFileSize(src, rocksdb::IOOptions(), &size, nullptr).ok();
  rocksdb::IOStatus s = target()->RenameFile(src, target_name, options, dbg);
  if (!s.ok()) return s;
  std::lock_guard lock(state_mu_);
  const std::string from = normalise(src);
  auto it = files_.find(from);
  FileState moved = it != files_.end() ? it->second : FileState{size, size, existed};
  if (it != files_.end()) files_.erase(it);
  // The new name is durable only once its directory is fsynced.
  moved.entry_durable = false;
  files_[normalise(target_name)] = moved;
  return s;
}

rocksdb::IOStatus FaultFs::LinkFile(const std::string& src, const std::string& target_name,
                                    const rocksdb::IOOptions& options,
                                    rocksdb::IODebugContext* dbg) {
  std::shared_lock io(io_mu_);
  if (crashed_) return power_lost();
  uint64_t size = 0;
  target()->GetFileSize(src, rocksdb::IOOptions(), &size, nullptr).PermitUncheckedError();
  rocksdb::IOStatus s = target()->LinkFile(src, target_name, options, dbg);
  if (s.ok()) track_new(normalise(target_name), size, size, /*entry_durable=*/false);
  return s;
}

rocksdb::IOStatus FaultFs::Truncate(const std::string& fname, size_t size,
                                    const rocksdb::IOOptions& options,
                                    rocksdb::IODebugContext* dbg) {
  std::shared_lock io(io_mu_);
  if (crashed_) return power_lost();
  rocksdb::IOStatus s = target()->Truncate(fname, size, options, dbg);
  if (s.ok()) on_truncate(normalise(fname), size);
  return s;
}

rocksdb::IOStatus FaultFs::CreateDir(const std::string& dirname, const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) {
  std::shared_lock io(io_mu_);
  if (crashed_) return power_lost();
  return target()->CreateDir(dirname, options, dbg);
}

rocksdb::IOStatus FaultFs::CreateDirIfMissing(const std::string& dirname,
                                              const rocksdb::IOOptions& options,
                                              rocksdb::IODebugContext* dbg) {
  std::shared_lock io(io_mu_);
  if (crashed_) return power_lost();
  return target()->CreateDirIfMissing(dirname, options, dbg);
}

rocksdb::IOStatus FaultFs::DeleteDir(const std::string& dirname, const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) {
  std::shared_lock io(io_mu_);
  if (crashed_) return power_lost();
  return target()->DeleteDir(dirname, options, dbg);
}

}  // namespace yantra::testing
