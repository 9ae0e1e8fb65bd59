// LogWriter: group commit on a dedicated thread. Design notes:
//
// - Why a thread of its own and not the callers' threads (LevelDB lets the
//   first queued writer do the work): callers are CAF scheduler threads, and
//   an fsync there would stall every actor of that worker. The price is one
//   wake-up per batch, which the batch amortises.
// - The writer takes the whole queue at once by swapping two vectors under the
//   lock, so appenders hold the mutex only for a push_back and both buffers
//   keep their capacity: steady state allocates nothing per request here.
// - A taken queue longer than max_batch_requests is committed in several
//   batches. Requests behind it would wait for those in any order (requests
//   commit in submission order), so bounding the batch costs no latency; it
//   only bounds the size of one WriteBatch and one fsync.
// - Summary and active marker go in the same WriteBatch as the events: the
//   index can never disagree with the log after a crash. So does a request's
//   delete_key (a queued run's queue row), and its outbox rows (the
//   callbacks its events owe), for the same reason. Which rows a request
//   adds is internal::add_request (internal/request_rows.hpp), the one
//   function the apply of a replicated batch (partition_batch.hpp) shares.
// - Callbacks run after the batch is durable and before the next batch is
//   taken, in submission order; stats are updated before them so a caller
//   that saw its callback also sees its batch counted.
// - A failed write latches the store read-only (see store.hpp) and every
//   request from then on fails, including other writers' on the same store.
//   Below the free-space floor (disk_guard.hpp) every batch is refused
//   with "store_no_space" instead, and nothing of it is acknowledged; the
//   refusal ends when space is back.
// - halt() models power loss: nothing queued or in flight is acknowledged,
//   whether or not the DB write itself happened.
#include "storage/log_writer.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "base/metrics.hpp"
#include "base/storage_errc.hpp"
#include "base/thread_name.hpp"
#include "storage/internal/db.hpp"
#include "storage/internal/request_rows.hpp"

namespace yantra::storage {

namespace {

// A burst can grow the writer's buffers; past this many slots they are
// released once drained rather than pinned for the process lifetime.
constexpr size_t kMaxRetainedSlots = 1 << 16;

}  // namespace

LogWriter::LogWriter(Store& store, uint32_t partition, size_t max_batch_requests)
    : store_(store), partition_(partition), max_batch_(std::max<size_t>(1, max_batch_requests)) {
  thread_ = std::thread([this] {
    name_this_thread("y-log-" + std::to_string(partition_));
    run();
  });
}

LogWriter::~LogWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void LogWriter::append(WriteRequest request, Callback done) {
  {
    std::lock_guard lock(mu_);
    if (halted_) return;  // power is off: the request silently vanishes
    queue_.emplace_back(std::move(request), std::move(done));
  }
  // Cheap when the writer is busy writing (no waiter, no syscall); that is
  // exactly when requests pile up into the next batch.
  cv_.notify_one();
}

void LogWriter::halt() {
  std::vector<std::pair<WriteRequest, Callback>> dropped;
  {
    std::lock_guard lock(mu_);
    halted_ = true;
    dropped.swap(queue_);
  }
  cv_.notify_one();
  // `dropped` is destroyed here, outside the lock, without calling anything.
}

WriterStats LogWriter::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void LogWriter::run() {
  const internal::Db& db = internal::db_of(store_);
  rocksdb::WriteOptions write_options;
  write_options.sync = store_.options().durability == Durability::kSync;
  rocksdb::WriteBatch batch;
  internal::RowScratch scratch;  // reused for every key and summary of every batch
  std::vector<std::pair<WriteRequest, Callback>> work;
  std::vector<char> valid;  // per request of the current batch

  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return !queue_.empty() || stopping_ || halted_; });
      if (halted_ || queue_.empty()) return;  // halted, or stopping and drained
      work.swap(queue_);
    }

    for (size_t begin = 0; begin < work.size(); begin += max_batch_) {
      const size_t end = std::min(work.size(), begin + max_batch_);
      valid.assign(end - begin, 1);
      uint64_t event_count = 0;
      Status result = store_.read_only_error();
      uint64_t write_ns = 0;

      if (result.is_ok()) {
        batch.Clear();
        // WriteBatch only refuses a record when the batch outgrows its size
        // limit; the first refusal fails the whole batch.
        rocksdb::Status put_status;
        for (size_t i = begin; i < end && put_status.ok(); ++i) {
          const WriteRequest& request = work[i].first;
          if (!internal::valid_request(request)) {
            valid[i - begin] = 0;
            continue;
          }
          put_status = internal::add_request(batch, db, request, scratch);
          event_count += request.events.size();
        }
        if (put_status.ok() && batch.Count() > 0) {
          const auto start = std::chrono::steady_clock::now();
          put_status = db.rocks->Write(write_options, &batch);
          write_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::steady_clock::now() - start)
                                               .count());
          static metrics::Histogram& batch_events = metrics::global().histogram(
              "yantra_log_writer_batch_events", "Events per group commit", metrics::size_buckets());
          static metrics::Histogram& sync_seconds = metrics::global().histogram(
              "yantra_log_writer_sync_seconds", "Duration of one group commit (write + sync)",
              metrics::latency_seconds_buckets());
          batch_events.observe(static_cast<double>(event_count));
          sync_seconds.observe(static_cast<double>(write_ns) / 1e9);
        }
        if (!put_status.ok()) {
          // This batch is answered like every later one: "store_read_only"
          // naming the cause, or "store_no_space" below the floor.
          store_.write_failed(put_status);
          result = store_.write_status();
        } else if (batch.Count() > 0) {
          store_.note_written(batch.GetDataSize());
        }
      }

      {
        std::lock_guard lock(mu_);
        if (halted_) return;  // power loss while writing: acknowledge nothing
        ++stats_.batches;
        stats_.requests += end - begin;
        stats_.events += event_count;
        stats_.sync_ns_total += write_ns;
        stats_.max_batch_requests = std::max<uint64_t>(stats_.max_batch_requests, end - begin);
      }

      for (size_t i = begin; i < end; ++i) {
        Callback& done = work[i].second;
        if (!done) continue;
        if (valid[i - begin]) {
          done(result);
        } else {
          done(Status(Errc::kInvalidArgument,
                      "write request needs a partition below 65536, an execution id of "
                      "1..255 bytes and outbox rows with ids"));
        }
      }
    }

    work.clear();
    if (work.capacity() > kMaxRetainedSlots) work.shrink_to_fit();
  }
}

}  // namespace yantra::storage
