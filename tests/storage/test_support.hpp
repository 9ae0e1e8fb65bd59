// Helpers shared by the storage suites: every test gets a fresh directory
// (removed afterwards) so tests never see each other's RocksDB files, a
// small waiter for LogWriter callbacks, which run on the writer thread, and
// raw() for the tests that read or damage rows behind a store's back.
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
#include <vector>

#include "storage/auth_store.hpp"
#include "storage/event_log.hpp"
#include "storage/execution_index.hpp"
#include "storage/flow_store.hpp"
#include "storage/internal/db.hpp"
#include "storage/log_writer.hpp"
#include "storage/outbox.hpp"
#include "storage/run_queue.hpp"
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

// The DB and column-family handles of an open store (internal/db.hpp).
inline const internal::Db& raw(const Store& store) {
  return internal::db_of(store);
}

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

// A flow version as a caller hands it to FlowStore::put (which ignores the
// version it carries).
inline v1::FlowVersion make_flow(const std::string& tenant, const std::string& id,
                                 const std::string& body) {
  v1::FlowVersion f;
  f.set_tenant(tenant);
  f.set_flow_id(id);
  f.set_definition_json(body);
  f.set_version(99);  // ignored by put
  return f;
}

inline std::vector<uint64_t> seqs_of(const std::vector<v1::Event>& events) {
  std::vector<uint64_t> out;
  for (const auto& e : events) out.push_back(e.seq());
  return out;
}

// from..to inclusive.
inline std::vector<uint64_t> range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> out;
  for (uint64_t s = from; s <= to; ++s) out.push_back(s);
  return out;
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
