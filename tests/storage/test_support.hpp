// Helpers shared by the storage suites: every test gets a fresh directory
// (removed afterwards) so tests never see each other's RocksDB files, and a
// small waiter for LogWriter callbacks, which run on the writer thread.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>

#include "storage/log_writer.hpp"
#include "storage/store.hpp"

namespace yantra::storage::testing {

class ScopedDir {
 public:
  ScopedDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "db";
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("yantra_storage_" + std::to_string(::getpid()) + "_" +
             std::to_string(counter.fetch_add(1)) + "_" + name);
    std::filesystem::remove_all(path_);
  }
  ~ScopedDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScopedDir(const ScopedDir&) = delete;
  ScopedDir& operator=(const ScopedDir&) = delete;

  std::string path() const { return path_.string(); }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::unique_ptr<Store> open_store(const std::string& path,
                                         Durability durability = Durability::kSync) {
  auto store = Store::open({path, durability});
  EXPECT_TRUE(store.ok()) << store.status().to_string();
  return store.ok() ? std::move(store).value() : nullptr;
}

// Counts callbacks; wait() returns once `n` arrived (or a generous timeout).
class Waiter {
 public:
  void arrive() {
    std::lock_guard lock(mu_);
    ++count_;
    cv_.notify_all();
  }
  bool wait(uint64_t n, std::chrono::seconds timeout = std::chrono::seconds(120)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return count_ >= n; });
  }
  uint64_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t count_ = 0;
};

inline std::string event_bytes(uint64_t seq, const std::string& path, size_t pad = 0) {
  v1::Event event;
  event.set_seq(seq);
  event.set_time_ms(1700000000000 + static_cast<int64_t>(seq));
  auto* started = event.mutable_step_started();
  started->set_path(path);
  started->set_input_json(std::string(pad, 'x'));
  return event.SerializeAsString();
}

inline WriteRequest make_request(uint32_t partition, const std::string& id, uint64_t first_seq,
                                 int count, size_t pad = 0) {
  WriteRequest request;
  request.partition = partition;
  request.execution_id = id;
  for (int i = 0; i < count; ++i) {
    uint64_t seq = first_seq + static_cast<uint64_t>(i);
    request.events.emplace_back(seq, event_bytes(seq, id, pad));
  }
  return request;
}

inline v1::ExecutionSummary make_summary(const std::string& id, const std::string& status,
                                         uint32_t partition, uint64_t last_seq) {
  v1::ExecutionSummary summary;
  summary.set_execution_id(id);
  summary.set_tenant("acme");
  summary.set_flow_id("flow");
  summary.set_flow_version(1);
  summary.set_status(status);
  summary.set_partition(partition);
  summary.set_last_seq(last_seq);
  return summary;
}

// Appends through a short-lived writer and waits for the result.
inline Status commit(Store& store, WriteRequest request) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status result;
  {
    LogWriter writer(store, request.partition);
    writer.append(std::move(request), [&](const Status& s) {
      std::lock_guard lock(mu);
      result = s;
      done = true;
      cv.notify_all();
    });
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
  }  // joins the writer before the state its callback used goes away
  return result;
}

}  // namespace yantra::storage::testing
