// CallbackDispatcher (see internal/callbacks.hpp for the why). Notes:
//
// - The coordinator keeps at most 2 x workers messages owned (queued or being
//   sent) and reads due rows only to fill that room: a receiver that is down
//   with a million rows owed costs a bounded scan per wake-up, not a copy of
//   the outbox in memory. The scan limit is owned + room, because owned rows
//   are still in the outbox (until their attempt is recorded) and come first
//   when they are the oldest due.
// - The coordinator sleeps until the earliest retry this process scheduled
//   (or one poll, whichever is first), so a 50 ms backoff is 50 ms, not a
//   poll interval; polling remains for rows other processes left.
// - A sender wakes the coordinator when it is done, so a backlog drains at
//   the senders' pace instead of one poll interval per batch of rows.
// - Retries back off exponentially from initial_backoff_ms (doubling, capped
//   at max_backoff_ms) with +-20% jitter, so receivers coming back after an
//   outage are not hit by every owed message in the same instant. The last
//   attempt is due exactly max_age_ms after first_ms; if it fails too, the
//   row is dropped with an error log and yantra_callbacks_dropped_total.
// - Nothing here can refuse a row for good before then (a vault secret that
//   is missing may be added, a receiver may come back), so every failure is
//   retried the same way.
// - A read-only store (after a write error) cannot record an attempt, so the
//   coordinator stops scanning rather than send the same rows again and again.
#include "actors/internal/callbacks.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <random>

#include <spdlog/spdlog.h>

#include "actors/errc.hpp"
#include "base/crypto.hpp"
#include "base/metrics.hpp"
#include "base/thread_name.hpp"
#include "base/time.hpp"
#include "runtime/callbacks.hpp"
#include "runtime/errc.hpp"
#include "storage/log_writer.hpp"
#include "storage/outbox.hpp"
#include "storage/vault.hpp"

namespace yantra::detail {

namespace {

struct Metrics {
  metrics::Counter& delivered;
  metrics::Counter& failed_attempts;
  metrics::Counter& dropped;
  metrics::Histogram& delay;
};

Metrics& callback_metrics() {
  static Metrics m{
      metrics::global().counter("yantra_callbacks_delivered_total",
                                "Callback deliveries a receiver accepted (2xx)"),
      metrics::global().counter("yantra_callbacks_failed_attempts_total",
                                "Callback delivery attempts that failed (non-2xx, connect "
                                "error, timeout, secret unavailable)"),
      metrics::global().counter("yantra_callbacks_dropped_total",
                                "Callbacks given up after retrying for their maximum age"),
      metrics::global().histogram(
          "yantra_callback_delay_seconds", "From an event to the accepted delivery of its callback",
          {0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,   1,
           2.5,   5,     10,    30,   60,    300,  900, 3600, 21600, 86400})};
  return m;
}

// The secret a row names, resolved now: "" = no signature. A vault secret is
// read at every attempt, so a rotated secret applies to the next one.
Result<std::string> resolve_secret(const v1::OutboxEntry& entry, storage::Vault* vault) {
  if (entry.secret_json().empty()) return std::string();
  const json secret = json::parse(entry.secret_json(), nullptr, /*allow_exceptions=*/false);
  if (secret.is_null()) return std::string();
  if (secret.is_string()) return secret.get<std::string>();
  const json* name =
      secret.is_object() && secret.contains("$secret") ? &secret["$secret"] : nullptr;
  if (name == nullptr || !name->is_string()) {
    return Status(ActorsErrc::kInvalidSecret,
                  "the callback secret is neither a string nor a $secret");
  }
  if (vault == nullptr) {
    return Status(ActorsErrc::kVaultUnavailable,
                  "the callback secret is a vault secret and this node has no master key");
  }
  auto value = vault->get(entry.tenant(), name->get<std::string>());
  if (!value.ok()) return value.status();
  if (!value.value().has_value()) {
    return Status(RuntimeErrc::kSecretNotFound,
                  "secret '" + name->get<std::string>() + "' is not set");
  }
  return std::move(*value.value());
}

int64_t with_jitter(int64_t delay_ms) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> factor(0.8, 1.2);
  return std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(delay_ms) * factor(rng)));
}

}  // namespace

void add_outbox_rows(const Flow& flow, const ExecutionState& after,
                     const std::vector<v1::Event>& batch, int64_t now_ms,
                     storage::WriteRequest* req) {
  if (flow.callbacks.empty()) return;
  for (CallbackMessage& m : callback_messages(flow, after, batch)) {
    v1::OutboxEntry entry;
    entry.set_id(m.id);
    entry.set_tenant(after.tenant);
    entry.set_execution_id(after.execution_id);
    entry.set_url(m.url);
    entry.set_secret_json(dump_canonical(m.secret));
    entry.set_payload_json(dump_canonical(m.payload));
    entry.set_first_ms(now_ms);
    entry.set_next_ms(now_ms);
    entry.set_type(m.type);
    entry.set_event_ms(m.event_ms);
    req->outbox.push_back(storage::OutboxRow{now_ms, std::move(m.id), entry.SerializeAsString()});
  }
}

std::string callback_signature(const std::string& secret, const std::string& timestamp,
                               const std::string& body) {
  return "sha256=" + crypto::hmac_sha256_hex(secret, timestamp + "." + body);
}

CallbackDispatcher::CallbackDispatcher(storage::Store& store, storage::Vault* vault,
                                       std::shared_ptr<Tool> http, CallbackOptions options)
    : store_(store), vault_(vault), http_(std::move(http)), options_(options) {}

CallbackDispatcher::~CallbackDispatcher() {
  stop();
}

void CallbackDispatcher::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  wake_ = true;  // rows a previous process left are due at once
  coordinator_ = std::thread([this] {
    name_this_thread("y-callbacks");
    run_coordinator();
  });
  for (size_t i = 0; i < std::max<size_t>(1, options_.workers); ++i) {
    workers_.emplace_back([this] {
      name_this_thread("y-callback");
      run_worker();
    });
  }
}

void CallbackDispatcher::notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  coordinator_cv_.notify_one();
}

void CallbackDispatcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  coordinator_cv_.notify_all();
  worker_cv_.notify_all();
  if (coordinator_.joinable()) coordinator_.join();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  workers_.clear();
}

void CallbackDispatcher::run_coordinator() {
  const size_t capacity = 2 * std::max<size_t>(1, options_.workers);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    // Until the earliest retry this process scheduled, at most one poll.
    const int64_t wait_ms = std::clamp<int64_t>(next_retry_ms_ - now_ms(), 0, options_.poll_ms);
    coordinator_cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                             [this] { return stopping_ || wake_; });
    if (stopping_) break;
    wake_ = false;
    if (next_retry_ms_ <= now_ms()) next_retry_ms_ = INT64_MAX;  // due: this scan takes it
    if (owned_.size() >= capacity || store_.read_only()) continue;
    const size_t limit = capacity;  // owned + room == capacity
    lock.unlock();
    std::unique_lock<std::mutex> scan(scan_mu_);
    auto due = options_.delivers ? store_.outbox().due(now_ms(), limit,
                                                       [this](const v1::OutboxEntry& e) {
                                                         return options_.delivers(e.execution_id());
                                                       })
                                 : store_.outbox().due(now_ms(), limit);
    lock.lock();
    if (!due.ok()) {
      spdlog::error("callbacks: reading the outbox failed: {}", due.status().to_string());
      continue;
    }
    size_t handed = 0;
    for (auto& entry : due.value()) {
      if (owned_.size() >= capacity) break;
      if (!owned_.insert(entry.id()).second) continue;
      queue_.push_back(std::move(entry));
      ++handed;
    }
    scan.unlock();
    if (handed > 0) worker_cv_.notify_all();
  }
}

void CallbackDispatcher::run_worker() {
  for (;;) {
    v1::OutboxEntry entry;
    {
      std::unique_lock<std::mutex> lock(mu_);
      worker_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      entry = std::move(queue_.front());
      queue_.pop_front();
    }
    const std::string error = attempt(entry);
    {
      std::lock_guard<std::mutex> scan(scan_mu_);
      const int64_t next = record(entry, error);
      std::lock_guard<std::mutex> lock(mu_);
      owned_.erase(entry.id());
      next_retry_ms_ = std::min(next_retry_ms_, next);
      wake_ = true;  // room for more, and a backlog may be waiting
    }
    coordinator_cv_.notify_one();
  }
}

std::string CallbackDispatcher::attempt(const v1::OutboxEntry& entry) {
  auto secret = resolve_secret(entry, vault_);
  if (!secret.ok()) return secret.status().to_string();
  const std::string timestamp = std::to_string(now_ms() / 1000);
  json headers = {{"Content-Type", "application/json"},
                  {"X-Yantra-Event", entry.type()},
                  {"X-Yantra-Delivery", entry.id()},
                  {"X-Yantra-Timestamp", timestamp}};
  if (!secret.value().empty()) {
    headers["X-Yantra-Signature"] =
        callback_signature(secret.value(), timestamp, entry.payload_json());
  }
  ToolCall call;
  call.execution_id = entry.execution_id();
  call.path = "callbacks";
  call.action = "request";
  call.idempotency_key = entry.id();
  call.timeout_ms = options_.attempt_timeout_ms;
  call.parameters = {{"method", "POST"},
                     {"url", entry.url()},
                     {"headers", std::move(headers)},
                     {"body", entry.payload_json()},
                     {"timeout_ms", options_.attempt_timeout_ms}};
  ToolResult r = http_->invoke(call);
  if (!r.ok) return r.code + ": " + r.message;
  const int status = r.output.is_object() ? r.output.value("status", 0) : 0;
  if (status < 200 || status > 299) return "http_" + std::to_string(status) + ": not a 2xx";
  return "";
}

// Under scan_mu_: removes or reschedules the row of one attempt. Returns
// when the row is due again (INT64_MAX when it is gone).
int64_t CallbackDispatcher::record(const v1::OutboxEntry& entry, const std::string& error) {
  Metrics& m = callback_metrics();
  const int64_t now = now_ms();
  if (error.empty()) {
    m.delivered.inc();
    m.delay.observe(static_cast<double>(std::max<int64_t>(0, now - entry.event_ms())) / 1000.0);
    Status s = store_.outbox().remove(entry);
    if (!s.is_ok()) spdlog::error("callbacks: removing {}: {}", entry.id(), s.to_string());
    return INT64_MAX;
  }
  m.failed_attempts.inc();
  const uint32_t attempts = entry.attempt() + 1;
  const int64_t last_due = entry.first_ms() + options_.max_age_ms;
  if (now >= last_due) {
    m.dropped.inc();
    spdlog::error("callbacks: dropping {} ({} to {}) after {} attempts over {} ms: {}", entry.id(),
                  entry.type(), entry.url(), attempts, now - entry.first_ms(), error);
    Status s = store_.outbox().remove(entry);
    if (!s.is_ok()) spdlog::error("callbacks: removing {}: {}", entry.id(), s.to_string());
    return INT64_MAX;
  }
  const int64_t delay = with_jitter(
      callback_retry_delay_ms(attempts, options_.initial_backoff_ms, options_.max_backoff_ms));
  const int64_t next = std::min(now + delay, last_due);
  spdlog::warn("callbacks: {} to {} failed (attempt {}), next in {} ms: {}", entry.id(),
               entry.url(), attempts, next - now, error);
  v1::OutboxEntry retried = entry;
  retried.set_attempt(attempts);
  retried.set_last_error(error.substr(0, 500));
  Status s = store_.outbox().reschedule(retried, next);
  if (!s.is_ok()) spdlog::error("callbacks: rescheduling {}: {}", entry.id(), s.to_string());
  return next;
}

}  // namespace yantra::detail
