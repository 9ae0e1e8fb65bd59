// RocksDB's info LOG, written by us rather than by RocksDB's own logger.
//
// Why: RocksDB writes its LOG through a WritableFileWriter, and in 7.8 a
// writer that has seen an error asserts on its next use; Debian's build keeps
// assertions, so the first ENOSPC on the LOG (which RocksDB writes in its
// constructor, before anything can check the disk) turned every start on a
// full disk, and every error message logged after a full disk, into SIGABRT.
// This logger writes each line with one write(2) and drops it on any error:
// diagnostics are worth less than the process.
//
// File: <data dir>/LOG as before, the previous one kept as LOG.old (at open,
// and whenever LOG passes kMaxBytes, so the pair stays bounded).
// Thread-safe: RocksDB logs from its background threads.
#pragma once

#include <rocksdb/env.h>

#include <atomic>
#include <cstdarg>
#include <memory>
#include <mutex>
#include <string>

namespace yantra::storage::internal {

class InfoLog final : public rocksdb::Logger {
 public:
  static constexpr uint64_t kMaxBytes = 32ull << 20;

  // Never fails: a LOG that cannot be opened drops every line.
  static std::shared_ptr<InfoLog> open(const std::string& dir);
  ~InfoLog() override;

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;
  size_t GetLogFileSize() const override { return size_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  explicit InfoLog(std::string dir) : dir_(std::move(dir)) {}
  void rotate();  // LOG -> LOG.old, a fresh LOG; mu_ held

  std::string dir_;
  std::mutex mu_;  // guards fd_ against rotation
  int fd_ = -1;
  std::atomic<uint64_t> size_{0};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace yantra::storage::internal
