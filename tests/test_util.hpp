// Helpers shared by the engine-level suites: unique temporary data dirs that
// clean up after themselves, and a blocking tool that records every call it
// receives (idempotency keys, concurrency) for at-least-once / never-twice
// assertions.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "actors/tools.hpp"

namespace yantra::testing {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("yantra-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Tool "rec": action "work" sleeps `ms` (blocking its tool thread, as a real
// HTTP call would) and returns {"v": <v>, "key": <idempotency key>}; action
// "fail" fails retriably. Every call's key is recorded, optionally appended
// to a file (one line per call, flushed) so another process can read it.
class RecordingTool final : public Tool {
 public:
  explicit RecordingTool(size_t concurrency = 32, std::string log_file = "")
      : concurrency_(concurrency), log_file_(std::move(log_file)) {}

  ToolSpec spec() const override { return ToolSpec{"rec", {"work", "fail"}}; }
  size_t max_concurrency() const override { return concurrency_; }

  ToolResult invoke(const ToolCall& call) override {
    const int now = ++current_;
    int prev = max_seen_.load();
    while (now > prev && !max_seen_.compare_exchange_weak(prev, now)) {
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      keys_.push_back(call.idempotency_key);
      if (!log_file_.empty()) {
        std::ofstream out(log_file_, std::ios::app);
        out << call.idempotency_key << '\n';
      }
    }
    const int64_t ms = call.parameters.value("ms", int64_t{0});
    if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    --current_;
    if (call.action == "fail") return ToolResult::failure("rec_fail", "asked to fail", true);
    return ToolResult::success(
        json{{"v", call.parameters.value("v", json(nullptr))}, {"key", call.idempotency_key}});
  }

  std::vector<std::string> keys() const {
    std::lock_guard<std::mutex> lock(mu_);
    return keys_;
  }
  int max_concurrent() const { return max_seen_.load(); }

 private:
  size_t concurrency_;
  std::string log_file_;
  mutable std::mutex mu_;
  std::vector<std::string> keys_;
  std::atomic<int> current_{0};
  std::atomic<int> max_seen_{0};
};

inline std::vector<std::string> read_lines(const std::string& file) {
  std::vector<std::string> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace yantra::testing
