// LogWriter against a real RocksDB: every request is acknowledged exactly
// once and only after it is readable, submission order is kept, batches
// really form under concurrency, halt() behaves like power loss, the
// destructor drains, and a failed write latches the store read-only.
#include "storage/log_writer.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <atomic>
#include <future>
#include <map>
#include <thread>

#include "base/storage_errc.hpp"
#include "tests/storage/test_support.hpp"

namespace yantra::storage {
namespace {

using testing::make_request;
using testing::make_summary;
using testing::open_store;
using testing::raw;
using testing::ScopedDir;
using testing::Waiter;

constexpr uint32_t kPartition = 9;

// `threads` threads each drive `executions` executions and append
// `requests` requests of two events round-robin over them.
struct Load {
  int threads;
  int executions;
  int requests;
};

std::string exec_id(int thread, int execution) {
  return "t" + std::to_string(thread) + "-e" + std::to_string(execution);
}

TEST(LogWriterTest, ConcurrentAppendsAreAcknowledgedOnceInOrderAndReadable) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  const Load load{8, 4, 300};
  const int total = load.threads * load.requests;

  std::vector<std::atomic<int>> calls(static_cast<size_t>(total));
  std::atomic<int> failures{0};
  // Callbacks all run on the writer thread, so these need no lock; the
  // Waiter's mutex publishes them to the test thread.
  std::map<std::string, std::vector<uint64_t>> acked_seqs;
  Waiter waiter;
  {
    LogWriter writer(*store, kPartition);
    std::vector<std::thread> threads;
    for (int t = 0; t < load.threads; ++t) {
      threads.emplace_back([&, t] {
        std::vector<uint64_t> next(static_cast<size_t>(load.executions), 1);
        for (int r = 0; r < load.requests; ++r) {
          const int e = r % load.executions;
          const std::string id = exec_id(t, e);
          const uint64_t seq = next[static_cast<size_t>(e)];
          next[static_cast<size_t>(e)] += 2;
          const size_t slot = static_cast<size_t>(t * load.requests + r);
          writer.append(make_request(kPartition, id, seq, 2, 100),
                        [&, slot, id, seq](const Status& s) {
                          if (!s) failures.fetch_add(1);
                          calls[slot].fetch_add(1);
                          acked_seqs[id].push_back(seq);
                          waiter.arrive();
                        });
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_TRUE(waiter.wait(static_cast<uint64_t>(total)));
    const WriterStats stats = writer.stats();
    EXPECT_EQ(stats.requests, static_cast<uint64_t>(total));
    EXPECT_EQ(stats.events, static_cast<uint64_t>(2 * total));
  }
  EXPECT_EQ(failures.load(), 0);
  for (size_t i = 0; i < calls.size(); ++i) ASSERT_EQ(calls[i].load(), 1) << "request " << i;
  EXPECT_EQ(waiter.count(), static_cast<uint64_t>(total));

  const uint64_t per_execution = 2 * static_cast<uint64_t>(load.requests / load.executions);
  for (int t = 0; t < load.threads; ++t) {
    for (int e = 0; e < load.executions; ++e) {
      const std::string id = exec_id(t, e);
      // Acknowledged in the order each thread submitted.
      const auto& acked = acked_seqs[id];
      EXPECT_TRUE(std::is_sorted(acked.begin(), acked.end())) << id;
      auto events = store->events().read(kPartition, id);
      ASSERT_TRUE(events.ok()) << events.status().to_string();
      ASSERT_EQ(events->size(), per_execution) << id;
      for (uint64_t i = 0; i < per_execution; ++i) {
        EXPECT_EQ(events->at(i).seq(), i + 1);
        EXPECT_EQ(events->at(i).step_started().path(), id);
      }
    }
  }
}

TEST(LogWriterTest, BatchesFormUnderConcurrency) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  const int threads = 8;
  const int per_thread = 2000;
  const uint64_t total = threads * per_thread;
  Waiter waiter;
  std::atomic<int> failures{0};
  LogWriter writer(*store, kPartition);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int r = 0; r < per_thread; ++r) {
        writer.append(make_request(kPartition, exec_id(t, 0), 2 * r + 1, 2, 150),
                      [&](const Status& s) {
                        if (!s) failures.fetch_add(1);
                        waiter.arrive();
                      });
      }
    });
  }
  for (auto& th : pool) th.join();
  ASSERT_TRUE(waiter.wait(total));
  const WriterStats stats = writer.stats();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(stats.requests, total);
  EXPECT_EQ(stats.events, 2 * total);
  EXPECT_LT(stats.batches, stats.requests);
  EXPECT_GT(stats.max_batch_requests, 1u);
  EXPECT_LE(stats.max_batch_requests, 4096u);
  EXPECT_GT(stats.sync_ns_total, 0u);
  for (int t = 0; t < threads; ++t) {
    EXPECT_EQ(store->events().read(kPartition, exec_id(t, 0))->size(),
              static_cast<size_t>(2 * per_thread));
  }
}

TEST(LogWriterTest, MaxBatchRequestsBoundsOneBatch) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  Waiter waiter;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  {
    LogWriter writer(*store, kPartition, /*max_batch_requests=*/16);
    // The first callback parks the writer thread so the rest pile up.
    writer.append(make_request(kPartition, "e", 1, 1), [&](const Status&) {
      released.wait();
      waiter.arrive();
    });
    for (int i = 2; i <= 101; ++i) {
      writer.append(make_request(kPartition, "e", static_cast<uint64_t>(i), 1),
                    [&](const Status&) { waiter.arrive(); });
    }
    release.set_value();
    ASSERT_TRUE(waiter.wait(101));
    const WriterStats stats = writer.stats();
    EXPECT_EQ(stats.max_batch_requests, 16u);
    EXPECT_GE(stats.batches, 1u + 100u / 16u);
  }
  EXPECT_EQ(store->events().read(kPartition, "e")->size(), 101u);
}

TEST(LogWriterTest, HaltDropsQueuedAndLaterRequestsWithoutCallbacks) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  std::atomic<int> calls{0};
  std::promise<void> in_callback;
  std::promise<void> release;
  {
    LogWriter writer(*store, kPartition);
    writer.append(make_request(kPartition, "first", 1, 2), [&](const Status& s) {
      EXPECT_TRUE(s);
      calls.fetch_add(1);
      in_callback.set_value();
      release.get_future().wait();
    });
    in_callback.get_future().wait();
    // The writer thread is parked in the first callback: these only queue.
    for (int i = 0; i < 50; ++i) {
      writer.append(make_request(kPartition, "queued", 2 * i + 1, 2),
                    [&](const Status&) { calls.fetch_add(1); });
    }
    writer.halt();
    writer.append(make_request(kPartition, "late", 1, 2),
                  [&](const Status&) { calls.fetch_add(1); });
    release.set_value();
  }  // destructor must not resurrect anything either
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(store->events().read(kPartition, "first")->size(), 2u);
  EXPECT_TRUE(store->events().read(kPartition, "queued")->empty());
  EXPECT_TRUE(store->events().read(kPartition, "late")->empty());
}

TEST(LogWriterTest, DestructorCommitsEverythingQueued) {
  ScopedDir dir;
  std::atomic<int> ok{0};
  constexpr int kRequests = 2000;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    LogWriter writer(*store, kPartition);
    for (int i = 0; i < kRequests; ++i) {
      auto request = make_request(kPartition, "e" + std::to_string(i % 10), 2 * (i / 10) + 1, 2);
      writer.append(std::move(request), [&](const Status& s) {
        if (s) ok.fetch_add(1);
      });
    }
  }  // writer destroyed right away, then the store
  EXPECT_EQ(ok.load(), kRequests);
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  for (int e = 0; e < 10; ++e) {
    auto events = store->events().read(kPartition, "e" + std::to_string(e));
    ASSERT_TRUE(events.ok());
    EXPECT_EQ(events->size(), static_cast<size_t>(2 * kRequests / 10));
  }
}

TEST(LogWriterTest, AsyncDurabilityCommitsAndSurvivesCleanReopen) {
  ScopedDir dir;
  Waiter waiter;
  std::atomic<int> failures{0};
  {
    auto store = open_store(dir.path(), Durability::kAsync);
    ASSERT_TRUE(store);
    EXPECT_EQ(store->options().durability, Durability::kAsync);
    LogWriter writer(*store, kPartition);
    for (int i = 0; i < 500; ++i) {
      auto request = make_request(kPartition, "async", 2 * i + 1, 2);
      request.summary =
          make_summary("async", i == 499 ? "completed" : "running", kPartition, 2 * i + 2);
      writer.append(std::move(request), [&](const Status& s) {
        if (!s) failures.fetch_add(1);
        waiter.arrive();
      });
    }
    ASSERT_TRUE(waiter.wait(500));
    EXPECT_EQ(store->events().read(kPartition, "async")->size(), 1000u);
  }
  EXPECT_EQ(failures.load(), 0);
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->events().read(kPartition, "async")->size(), 1000u);
  EXPECT_EQ((*store->executions().summary("async"))->status(), "completed");
  EXPECT_TRUE(store->executions().active(kPartition)->empty());
}

TEST(LogWriterTest, InvalidRequestFailsAloneInItsBatch) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  Waiter waiter;
  std::vector<std::string> codes(3);
  {
    LogWriter writer(*store, kPartition);
    writer.append(make_request(kPartition, "good", 1, 1), [&](const Status& s) {
      codes[0] = s.code();
      waiter.arrive();
    });
    writer.append(make_request(kPartition, std::string(256, 'x'), 1, 1), [&](const Status& s) {
      codes[1] = s.code();
      waiter.arrive();
    });
    writer.append(make_request(70000, "big-partition", 1, 1), [&](const Status& s) {
      codes[2] = s.code();
      waiter.arrive();
    });
    ASSERT_TRUE(waiter.wait(3));
  }
  EXPECT_EQ(codes, (std::vector<std::string>{"", "invalid_argument", "invalid_argument"}));
  EXPECT_EQ(store->events().read(kPartition, "good")->size(), 1u);
  EXPECT_FALSE(store->read_only());
}

TEST(LogWriterTest, LatchedStoreFailsEveryAppend) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  Waiter waiter;
  std::vector<Status> results;
  {
    LogWriter writer(*store, kPartition);
    store->latch_read_only(Status(StorageErrc::kError, "simulated fsync failure"));
    for (int i = 0; i < 20; ++i) {
      writer.append(make_request(kPartition, "e", static_cast<uint64_t>(i + 1), 1),
                    [&](const Status& s) {
                      results.push_back(s);
                      waiter.arrive();
                    });
    }
    ASSERT_TRUE(waiter.wait(20));
  }
  ASSERT_EQ(results.size(), 20u);
  for (const auto& s : results) {
    EXPECT_EQ(s.code(), "store_read_only");
    EXPECT_NE(s.message().find("simulated fsync failure"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(store->events().read(kPartition, "e")->empty());
}

// A real failed DB::Write: the events column family is dropped underneath the
// writer, so RocksDB rejects the batch. The writer must latch the store and
// fail this and every later request, also on other writers of the store.
TEST(LogWriterTest, FailedWriteLatchesStoreReadOnly) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  Waiter waiter;
  std::vector<Status> results;
  auto record = [&](const Status& s) {
    results.push_back(s);
    waiter.arrive();
  };
  {
    LogWriter writer(*store, kPartition);
    writer.append(make_request(kPartition, "before", 1, 1), record);
    ASSERT_TRUE(waiter.wait(1));
    ASSERT_TRUE(results[0]);

    ASSERT_TRUE(raw(*store).rocks->DropColumnFamily(raw(*store).events).ok());
    writer.append(make_request(kPartition, "during", 1, 1), record);
    ASSERT_TRUE(waiter.wait(2));
    EXPECT_TRUE(store->read_only());
    // Even a request that touches only the executions CF now fails.
    WriteRequest summary_only;
    summary_only.partition = kPartition;
    summary_only.execution_id = "after";
    summary_only.summary = make_summary("after", "running", kPartition, 0);
    writer.append(std::move(summary_only), record);
    ASSERT_TRUE(waiter.wait(3));
  }
  ASSERT_EQ(results.size(), 3u);
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(results[i].code(), "store_read_only") << i;
    // The original RocksDB error is kept in the message.
    EXPECT_NE(results[i].message().find("storage_error"), std::string::npos)
        << results[i].message();
  }
  EXPECT_FALSE(store->executions().summary("after")->has_value());
  Status other = testing::commit(*store, make_request(kPartition + 1, "x", 1, 1));
  EXPECT_EQ(other.code(), "store_read_only");
}

}  // namespace
}  // namespace yantra::storage
