// InfoLog: see internal/info_log.hpp. The line format follows RocksDB's own
// ("2024/01/31-12:00:00.123456 <thread> message"), so tools and habits that
// read a RocksDB LOG keep working.
#include "storage/internal/info_log.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <vector>

namespace yantra::storage::internal {

std::shared_ptr<InfoLog> InfoLog::open(const std::string& dir) {
  std::shared_ptr<InfoLog> log(new InfoLog(dir));
  std::lock_guard lock(log->mu_);
  log->rotate();
  return log;
}

InfoLog::~InfoLog() {
  if (fd_ >= 0) ::close(fd_);
}

void InfoLog::rotate() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  const std::filesystem::path path = std::filesystem::path(dir_) / "LOG";
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    std::filesystem::rename(path, std::filesystem::path(dir_) / "LOG.old", ec);
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  size_.store(0, std::memory_order_relaxed);
}

void InfoLog::Logv(const char* format, va_list ap) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t secs = system_clock::to_time_t(now);
  const auto micros = duration_cast<microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  ::localtime_r(&secs, &tm);
  char buf[1024];
  int n =
      std::snprintf(buf, sizeof buf, "%04d/%02d/%02d-%02d:%02d:%02d.%06lld %ld ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    static_cast<long long>(micros), static_cast<long>(::syscall(SYS_gettid)));
  if (n < 0) return;
  std::string line(buf, static_cast<size_t>(n));
  va_list copy;
  va_copy(copy, ap);
  const int body = std::vsnprintf(buf, sizeof buf, format, copy);
  va_end(copy);
  if (body < 0) return;
  if (static_cast<size_t>(body) < sizeof buf) {
    line.append(buf, static_cast<size_t>(body));
  } else {
    std::vector<char> big(static_cast<size_t>(body) + 1);
    std::vsnprintf(big.data(), big.size(), format, ap);
    line.append(big.data(), static_cast<size_t>(body));
  }
  if (line.back() != '\n') line.push_back('\n');

  std::lock_guard lock(mu_);
  if (size_.load(std::memory_order_relaxed) + line.size() > kMaxBytes) rotate();
  // One write(2) per line: lines of concurrent threads never interleave, and
  // a failure (ENOSPC, EIO) loses exactly this line.
  const ssize_t w = fd_ >= 0 ? ::write(fd_, line.data(), line.size()) : -1;
  if (w == static_cast<ssize_t>(line.size())) {
    size_.fetch_add(line.size(), std::memory_order_relaxed);
  } else {
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace yantra::storage::internal
