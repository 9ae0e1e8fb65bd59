// A fault-injecting RocksDB file system for tests, in the spirit of LevelDB's
// ErrorEnv and RocksDB's FaultInjectionTestFS (which Debian's librocksdb-dev
// does not ship). It wraps a real file system (the OS's by default) and, on
// demand:
//
// - fails Sync/Fsync (of files and directories), Append or Rename with an
//   IOError, optionally only for paths ending in a suffix (".log": the WAL)
//   and only after N matching calls succeeded;
// - parks Sync calls on a latch the test releases, so a test can hold an
//   fsync "in flight" for as long as it likes;
// - simulates power loss: it tracks, per file written through it, how many
//   bytes a successful Sync covered and whether the file's directory entry
//   was made durable by a directory fsync. simulate_crash() cuts the power:
//   every later mutating call fails, each such file is truncated to its
//   synced size and files whose entry was never synced are deleted.
//
// The crash model, and what it leaves out: data is durable once a Sync or
// Fsync of its file returned ok; a created or renamed file exists after a
// crash only if its directory was fsynced afterwards. Deletions are durable
// at once (a deleted file never comes back), and files that existed before
// this object saw them are durable as they are. A file whose handle is still
// open at the crash is truncated again when RocksDB closes it, because
// closing a POSIX writable file trims its preallocated space back to the
// size written, which would re-extend it.
//
// The files must be on a local disk: the crash truncates them directly
// (RocksDB's POSIX file system does not implement FileSystem::Truncate).
//
// Thread-safety: every method may be called from any thread. I/O calls hold
// a shared lock for their whole duration and simulate_crash() takes it
// exclusively, so a crash never lands between a Sync and its bookkeeping:
// a Sync either completed (and its data survives) or fails.
//
// Lifecycle: the object must outlive every DB opened on it (hand it to
// StoreOptions::file_system). After simulate_crash(), close the DB and call
// reset() to use it again, or open the data with a fresh FaultFs.
#pragma once

#include <rocksdb/file_system.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

namespace yantra::testing {

class FaultFs : public rocksdb::FileSystemWrapper {
 public:
  enum class Op { kSync, kAppend, kRename };

  // Which calls of an Op fail: those on paths ending in `suffix` ("" = all),
  // after `after` of them succeeded, `times` in a row (default: all later).
  struct Rule {
    std::string suffix;
    uint64_t after = 0;
    uint64_t times = UINT64_MAX;
  };

  explicit FaultFs(std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default());
  ~FaultFs() override;

  const char* Name() const override { return "YantraFaultFs"; }

  // Injected errors. fail() replaces the rule of `op` (without one: every
  // call fails); heal() removes it.
  void fail(Op op);
  void fail(Op op, Rule rule);
  void heal(Op op);
  void heal();
  // Calls of `op` that matched the rule's suffix, and how many were failed.
  uint64_t matched(Op op) const;
  uint64_t failed(Op op) const;

  // The sync latch: from now on, Syncs of paths ending in `suffix` park
  // until release_syncs(). blocked() is how many are parked right now.
  void block_syncs(const std::string& suffix = "");
  void release_syncs();
  size_t blocked() const;
  // Polls until `n` Syncs are parked; false after `timeout`.
  bool wait_blocked(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  // Power loss, see above. Returns how many files lost bytes or vanished.
  size_t simulate_crash();
  bool crashed() const;
  // Power back on: forgets all tracking (files now on disk count as durable)
  // and lets I/O through again. Call only once no DB is open on it.
  void reset();

  // What this object believes is durable of `path` (tests of the tests).
  uint64_t synced_size(const std::string& path) const;

  // rocksdb::FileSystem, the calls that write or name files.
  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& options,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& target,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& fname, size_t size,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDir(const std::string& dirname, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDirIfMissing(const std::string& dirname,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteDir(const std::string& dirname, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override;

 private:
  friend class FaultWritableFile;
  friend class FaultDirectory;

  struct FileState {
    uint64_t size = 0;    // bytes written through us
    uint64_t synced = 0;  // bytes a successful Sync covered
    bool entry_durable = false;
  };
  struct Rules;

  // Ok, or the IOError `op` owes on `path` (counts the call).
  rocksdb::IOStatus check(Op op, const std::string& path);
  static rocksdb::IOStatus power_lost();
  // Parks while a block_syncs() matching `path` is in force.
  void maybe_block(const std::string& path);
  void track_new(const std::string& path, uint64_t size, uint64_t synced, bool entry_durable);
  void on_append(const std::string& path, uint64_t n, bool absolute);
  void on_truncate(const std::string& path, uint64_t size);
  void on_synced(const std::string& path, uint64_t size);
  uint64_t size_of(const std::string& path) const;
  void on_dir_synced(const std::string& dir);
  // After a crash: makes `path` on disk what the crash left of it.
  void reapply_loss(const std::string& path);

  // Shared by every I/O call, exclusive for simulate_crash().
  mutable std::shared_mutex io_mu_;
  bool crashed_ = false;  // written under io_mu_ exclusively

  mutable std::mutex state_mu_;
  std::map<std::string, FileState> files_;       // by normalised path
  std::map<std::string, FileState> lost_files_;  // durable state at the crash
  std::unique_ptr<Rules> rules_;

  mutable std::mutex block_mu_;
  mutable std::condition_variable block_cv_;
  bool blocking_ = false;
  std::string block_suffix_;
  size_t blocked_ = 0;
};

}  // namespace yantra::testing
