// The callback dispatcher: delivers the rows of the durable outbox (the
// callbacks that committed events owe, see runtime/callbacks.hpp) to their
// receivers, and retries them until they are accepted or 24 h old.
//
// Why it is built this way:
// - Threads of its own (one coordinator, `workers` senders), never CAF
//   scheduler threads: a delivery is a blocking HTTP exchange of up to
//   attempt_timeout_ms, and a vault read is a RocksDB read.
// - The outbox, not memory, is the queue. The coordinator reads due rows
//   (oldest first) when woken by notify() (a batch with outbox rows just
//   committed: the fast path, a callback leaves within milliseconds of its
//   event) and every poll_ms anyway (retries that came due, rows left by a
//   previous process). Nothing is lost by a crash: a row leaves the outbox
//   only after a 2xx, or when it is dropped after max_age_ms.
// - Each message is in flight at most once: the ids handed to senders are
//   kept until their row was removed or rescheduled, and a scan and a
//   sender's store update exclude each other (scan_mu_), so a scan never
//   sees a row whose delivery just finished as "due and not in flight".
// - Delivery is at-least-once (a crash after the POST and before the row is
//   removed sends it again); X-Yantra-Delivery carries the message id so
//   receivers deduplicate.
// - HTTP goes through the engine's `http` tool (its connection pool and CA
//   settings); the dispatcher adds the headers and the signature.
//
// Lifecycle: constructed before the engine's actors exist (they call
// notify() from writer threads), start() once recovery has begun, stop()
// before the store closes. notify() is safe before start() and after stop().
#pragma once

#include <climits>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "actors/tools.hpp"
#include "runtime/execution.hpp"
#include "storage/outbox.hpp"

namespace yantra {
namespace storage {
class Vault;
struct WriteRequest;
}  // namespace storage

namespace detail {

struct CallbackOptions {
  size_t workers = 8;                       // deliveries in flight at once
  int64_t poll_ms = 500;                    // rescan for due retries this often
  int64_t attempt_timeout_ms = 10000;       // one POST, connect to last byte
  int64_t initial_backoff_ms = 1000;        // after the first failure; doubled per failure
  int64_t max_backoff_ms = 3600 * 1000;     // cap of the doubling
  int64_t max_age_ms = 24LL * 3600 * 1000;  // after first_ms: the last attempt, then drop
  // Whether this node delivers the rows of an execution (a cluster node:
  // those of the partitions it leads; the others stay in the outbox for
  // their leader, and for the next one after a failover). Null = all.
  std::function<bool(const std::string& execution_id)> delivers;
};

class CallbackDispatcher {
 public:
  // `vault` may be null (a {"$secret": ...} callback secret then fails its
  // attempt, to be retried); `http` is a Tool with action "request".
  CallbackDispatcher(storage::Store& store, storage::Vault* vault, std::shared_ptr<Tool> http,
                     CallbackOptions options);
  ~CallbackDispatcher();  // stop()
  CallbackDispatcher(const CallbackDispatcher&) = delete;
  CallbackDispatcher& operator=(const CallbackDispatcher&) = delete;

  void start();
  // A batch with outbox rows committed: scan now. Never blocks on I/O.
  void notify();
  // Joins every thread; deliveries in progress finish first (bounded by
  // attempt_timeout_ms). Rows not delivered stay in the outbox.
  void stop();

 private:
  void run_coordinator();
  void run_worker();
  // One attempt; returns "" when the receiver accepted it, else why not.
  std::string attempt(const v1::OutboxEntry& entry);
  int64_t record(const v1::OutboxEntry& entry, const std::string& error);

  storage::Store& store_;
  storage::Vault* vault_;
  std::shared_ptr<Tool> http_;
  const CallbackOptions options_;

  std::mutex scan_mu_;  // a scan vs a sender's remove/reschedule (see above)
  std::mutex mu_;       // everything below
  std::condition_variable coordinator_cv_;
  std::condition_variable worker_cv_;
  bool started_ = false;
  bool stopping_ = false;
  bool wake_ = false;
  int64_t next_retry_ms_ = INT64_MAX;      // earliest reschedule not yet scanned for
  std::deque<v1::OutboxEntry> queue_;      // due, waiting for a sender
  std::unordered_set<std::string> owned_;  // ids queued or being sent
  std::thread coordinator_;
  std::vector<std::thread> workers_;
};

// Adds to `req` one outbox row, due at `now_ms`, per callback that `batch`
// owes (runtime/callbacks.hpp), so they commit with the events. Returns at
// once for a flow without callbacks.
void add_outbox_rows(const Flow& flow, const ExecutionState& after,
                     const std::vector<v1::Event>& batch, int64_t now_ms,
                     storage::WriteRequest* req);

// The X-Yantra-Signature value: "sha256=" + hex HMAC-SHA256(secret,
// timestamp + "." + body).
std::string callback_signature(const std::string& secret, const std::string& timestamp,
                               const std::string& body);

}  // namespace detail
}  // namespace yantra
