// WalGuard: Yantra's own record of RocksDB's write-ahead log files, so that
// a missing or cut WAL is noticed at open instead of silently costing
// acknowledged writes. Used by store.cpp only.
//
// Why it exists (measured on RocksDB 7.8, see docs/operations.md): with
// track_and_verify_wals_in_manifest RocksDB checks only WALs that were
// closed and synced; the live WAL, which after a crash holds every write
// since the last memtable flush, is not tracked. Deleting it, or cutting it
// at a record boundary, opens cleanly with those writes gone, in every
// WALRecoveryMode.
//
// How: a FileSystem wrapper that RocksDB runs on sees every WAL
// (`<number>.log` in the DB directory) being created, synced and deleted,
// and keeps a small side file, `yantra-wal-guard`, listing each live WAL
// with a size of it known to be durable:
// - a WAL is listed (and the list synced) before RocksDB gets its handle,
//   so no byte is acknowledged from a WAL that is not listed;
// - it is unlisted (list synced) before RocksDB deletes it, so a crash in
//   between leaves an unlisted file, which is harmless;
// - the durable size grows with successful Syncs and is written out at
//   most once per second (and when the WAL is closed), on the syncing
//   thread: at most ~2 extra fsyncs a second, against thousands of group
//   commits. So a WAL cut below a size recorded a second or more ago is
//   caught; one cut within the last second's writes is not.
// At open, before RocksDB reads anything, check() reports every listed WAL
// that is missing or shorter than its durable size. A DB from before the
// guard (or whose side file was removed) has no list: it is adopted as
// found, which cannot catch damage already done.
//
// The side file is written through the wrapped file system, so test faults
// and simulated power loss apply to it as to RocksDB's files.
//
// Beside the guard, for the same purpose: SequenceCheck, a WalFilter that
// fails recovery on a gap in the WAL's sequence numbers (RocksDB's reader
// silently skips the rest of a 32 KiB block after a zeroed record header
// and carries on: a hole no recovery mode reports), DropLog, which keeps
// RocksDB's own lines about what a point-in-time recovery dropped, and
// preserve_wals(), which copies the WAL files aside before such a recovery
// deletes them.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/wal_filter.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace yantra::storage::internal {

class WalGuard : public rocksdb::FileSystemWrapper {
 public:
  static constexpr const char* kFileName = "yantra-wal-guard";
  // Space kept aside (an allocated, empty file) so that the list can still
  // be written when the disk fills up: without it, RocksDB's next memtable
  // switch could not list its new WAL, and the store would latch read-only
  // for what is a reversible state (storage/disk_guard.hpp). Given back at
  // the first write of the list that runs out of space, made again (at most
  // once a second) once writing the list works.
  static constexpr const char* kReserveName = "yantra-wal-guard.reserve";
  static constexpr long kReserveBytes = 1 << 20;

  // `dir` is the DB directory; `base` the file system under the guard.
  WalGuard(std::string dir, std::shared_ptr<rocksdb::FileSystem> base);

  const char* Name() const override { return "YantraWalGuard"; }

  // Reads the side file (or, if there is none, adopts the WALs present and
  // writes it) and adds one sentence per damage to `problems`: a listed WAL
  // missing or shorter than its durable size, or a side file that is not
  // one. An error = the file system failed (not damage).
  rocksdb::IOStatus check(std::vector<std::string>* problems);
  // Forgets the list and lists the WALs present as they are (durable size
  // 0), for an open that accepts the loss. Writes the side file.
  rocksdb::IOStatus adopt_present();

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;

  // Called by the WAL handles this guard hands out.
  // on_synced may write the side file; its error fails the Sync, except
  // running out of space (the size is then written at a later sync).
  rocksdb::IOStatus on_synced(uint64_t number, uint64_t size);
  void on_closed();

 private:
  // The WAL number of `fname` if it names a WAL in this guard's directory.
  bool wal_number(const std::string& fname, uint64_t* number) const;
  std::string wal_path(uint64_t number) const;
  // Writes the list (write_list_locked) and keeps the reserve: see
  // kReserveName. mu_ held.
  rocksdb::IOStatus persist_locked();
  // Writes the list (tmp file, sync, rename, directory sync). mu_ held.
  rocksdb::IOStatus write_list_locked();
  std::string reserve_path() const;
  bool make_reserve() const;  // false: no room for it (or no directory)
  std::vector<uint64_t> present_wals() const;

  std::string dir_;
  std::mutex mu_;
  std::map<uint64_t, uint64_t> wals_;  // number -> durable size, guarded by mu_
  bool dirty_ = false;                 // durable sizes not yet written
  std::chrono::steady_clock::time_point last_persist_{};
  bool reserve_present_ = false;  // guarded by mu_
  std::chrono::steady_clock::time_point last_reserve_try_{};
};

// Fails recovery when a WAL record's sequence number is above the one the
// previous record ends at: records between them were lost. (Below it is an
// overlap, e.g. a write that failed after reaching the file; nothing lost.)
// Every write Yantra makes goes through the WAL, so sequence numbers in it
// are dense.
class SequenceCheck final : public rocksdb::WalFilter {
 public:
  const char* Name() const override { return "YantraSequenceCheck"; }
  WalProcessingOption LogRecordFound(unsigned long long log_number,
                                     const std::string& log_file_name,
                                     const rocksdb::WriteBatch& batch,
                                     rocksdb::WriteBatch* new_batch, bool* batch_changed) override;
  // One sentence per gap found.
  std::vector<std::string> gaps() const;
  void reset();

 private:
  mutable std::mutex mu_;
  uint64_t next_ = 0;  // 0 = no record seen yet
  std::vector<std::string> gaps_;
};

// A RocksDB info log that forwards to `inner` and keeps the lines in which
// recovery says it dropped data ("dropping N bytes", "Point in time
// recovered to ..."), at most 100 of them.
class DropLog final : public rocksdb::Logger {
 public:
  explicit DropLog(std::shared_ptr<rocksdb::Logger> inner);
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override;
  void Flush() override { inner_->Flush(); }
  size_t GetLogFileSize() const override { return inner_->GetLogFileSize(); }
  std::vector<std::string> lines() const;

 private:
  rocksdb::Status CloseImpl() override { return inner_->Close(); }
  std::shared_ptr<rocksdb::Logger> inner_;
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// Copies the WAL files and the guard's side file of `dir` into a new
// owner-only directory `dir`/lost+found/wal-<UTC time>/ and returns its
// path, or why it could not.
bool preserve_wals(const std::string& dir, std::string* where, std::string* error);

// What a Store keeps alive for as long as its DB: the Env over the guard,
// and what recovery was given.
struct WalRecovery {
  std::shared_ptr<WalGuard> guard;
  std::unique_ptr<rocksdb::Env> env;
  SequenceCheck sequence_check;
  std::shared_ptr<DropLog> drop_log;  // set for an open that accepts loss
};

// Opens the DB at `path` after a strict open found `damage` (one sentence
// each): copies the WAL files aside (preserve_wals), opens with RocksDB's
// point-in-time recovery, which keeps the longest consistent prefix, and
// then lists the WALs present in the guard. WAL tracking is off for this open, which
// clears the MANIFEST's list; the next strict open starts a new one. Fills
// `handles` and `db`, and `report` with the damage, what RocksDB says it
// dropped and where the copies are; or says why even this failed
// ("storage_corrupt").
Status open_accepting_loss(WalRecovery& recovery, rocksdb::DBOptions options,
                           const std::string& path,
                           const std::vector<rocksdb::ColumnFamilyDescriptor>& column_families,
                           const std::vector<std::string>& damage,
                           std::vector<rocksdb::ColumnFamilyHandle*>* handles, rocksdb::DB** db,
                           std::vector<std::string>* report);

}  // namespace yantra::storage::internal
