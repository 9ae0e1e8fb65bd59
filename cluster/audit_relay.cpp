// AuditRelay (see audit_relay.hpp). Design notes:
//
// - One batch in flight per partition: the leader's high-water mark check
//   (storage::AuditChainer) relies on a sender's entries of one partition
//   arriving in counter order; a resend always starts at the oldest entry
//   not yet acknowledged, so it is a prefix-overlap of what may have been
//   committed, never a hole.
// - A queue's entries stay queued until their batch is acknowledged; a
//   failure (no leader known, a timeout, "partition_not_led" from a node
//   that just lost the partition) retries after `retry` with the same
//   counters, to whoever leads then.
// - The thread also runs the batches other nodes relay to us (serve()):
//   Engine::append_audit may read the store (a chain's head, the first time
//   a leadership touches it), which must not happen on a transport thread.
// - Wire format of a batch (only between nodes of this version; the
//   transport's hello refuses other protocol versions): be16 partition ·
//   be64 first counter · be32 length · sender · be32 count · count ×
//   (be32 length · a serialized yantra.v1.AuditRecord with the entry's
//   fields; seq and hashes unset). Untrusted: decode() checks every length.
#include "cluster/audit_relay.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <random>

#include "actors/engine.hpp"
#include "base/encoding.hpp"
#include "base/errc.hpp"
#include "base/metrics.hpp"
#include "base/thread_name.hpp"
#include "cluster/node.hpp"
#include "runtime/ids.hpp"
#include "yantra/v1/tenancy.pb.h"

namespace yantra::cluster {
namespace {

void put_be(std::string& out, uint64_t v, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>(v >> shift));
  }
}

bool get_be(std::string_view& in, int bytes, uint64_t& v) {
  if (in.size() < static_cast<size_t>(bytes)) return false;
  v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  in.remove_prefix(static_cast<size_t>(bytes));
  return true;
}

bool get_bytes(std::string_view& in, std::string_view& out) {
  uint64_t n = 0;
  if (!get_be(in, 4, n) || in.size() < n) return false;
  out = in.substr(0, n);
  in.remove_prefix(n);
  return true;
}

metrics::Counter& dropped() {
  static metrics::Counter& c = metrics::global().counter(
      "yantra_audit_dropped_total",
      "audit records dropped because the relay's queue was full (no leader for a long time)");
  return c;
}

std::string incarnation() {
  std::random_device rd;
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>(rd()));
  return hex_encode(bytes);
}

}  // namespace

uint32_t AuditRelay::home_partition(const std::string& tenant, uint32_t partitions) {
  return partition_of_key(tenant, "", partitions);
}

std::string AuditRelay::encode(uint32_t partition, const std::string& sender, uint64_t first,
                               const std::vector<AuditEntry>& entries) {
  std::string out;
  put_be(out, partition, 2);
  put_be(out, first, 8);
  put_be(out, sender.size(), 4);
  out += sender;
  put_be(out, entries.size(), 4);
  v1::AuditRecord r;
  std::string bytes;
  for (const AuditEntry& e : entries) {
    r.Clear();
    r.set_time_ms(e.time_ms);
    r.set_tenant(e.tenant);
    r.set_key_id(e.key_id);
    r.set_role(e.role);
    r.set_action(e.action);
    r.set_resource(e.resource);
    r.set_outcome(e.outcome);
    r.set_request_id(e.request_id);
    r.set_detail(e.detail);
    r.SerializeToString(&bytes);
    put_be(out, bytes.size(), 4);
    out += bytes;
  }
  return out;
}

Result<AuditRelay::Decoded> AuditRelay::decode(std::string_view in) {
  const Status bad(Errc::kInvalidArgument, "a relayed audit batch that does not parse");
  Decoded d;
  uint64_t v = 0;
  if (!get_be(in, 2, v)) return bad;
  d.partition = static_cast<uint32_t>(v);
  if (!get_be(in, 8, d.first)) return bad;
  std::string_view sender;
  if (!get_bytes(in, sender) || sender.empty()) return bad;
  d.sender = std::string(sender);
  uint64_t count = 0;
  if (!get_be(in, 4, count) || count > in.size() / 4) return bad;
  v1::AuditRecord r;
  d.entries.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view bytes;
    if (!get_bytes(in, bytes) || !r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return bad;
    }
    AuditEntry& e = d.entries.emplace_back();
    e.time_ms = r.time_ms();
    e.tenant = r.tenant();
    e.key_id = r.key_id();
    e.role = r.role();
    e.action = r.action();
    e.resource = r.resource();
    e.outcome = r.outcome();
    e.request_id = r.request_id();
    e.detail = r.detail();
  }
  if (!in.empty() || d.entries.empty()) return bad;
  return d;
}

AuditRelay::AuditRelay(Engine& engine, uint32_t partitions, std::string node_id, Routes routes,
                       AuditRelayOptions options)
    : engine_(engine),
      partitions_(std::max<uint32_t>(1, partitions)),
      sender_(std::move(node_id) + "/" + incarnation()),
      routes_(std::move(routes)),
      options_(options),
      queues_(partitions_) {
  thread_ = std::thread([this] {
    name_this_thread("y-audit-relay");
    run();
  });
}

std::unique_ptr<AuditRelay> AuditRelay::over(Engine& engine, ClusterNode& node,
                                             AuditRelayOptions options) {
  Routes routes;
  routes.leader_of = [&node](uint32_t p) { return node.leader_of(p); };
  routes.send = [&node](const std::string& to, std::string payload,
                        std::chrono::milliseconds timeout,
                        std::function<void(Result<std::string>)> done) {
    node.request(to, "audit", std::move(payload), timeout, std::move(done));
  };
  return std::make_unique<AuditRelay>(engine, node.meta().partitions, node.node_id(),
                                      std::move(routes), options);
}

AuditRelay::~AuditRelay() {
  stop();
}

void AuditRelay::stop() {
  std::deque<Incoming> refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Batches in flight complete on other threads and call settle(): wait.
  std::unique_lock<std::mutex> lock(mu_);
  settled_cv_.wait(lock, [this] {
    return std::none_of(queues_.begin(), queues_.end(), [](const Queue& q) { return q.in_flight; });
  });
  if (pending_ > 0) spdlog::warn("audit relay: {} records not sent at shutdown", pending_);
  for (Queue& q : queues_) q.entries.clear();
  pending_ = 0;
  refused.swap(incoming_);
  lock.unlock();
  for (auto& in : refused) in.reply(Status(Errc::kUnavailable, "the node is stopping"));
}

void AuditRelay::append(AuditEntry entry) {
  const uint32_t p = home_partition(entry.tenant, partitions_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    if (pending_ >= options_.max_pending) {
      dropped().inc();
      return;
    }
    queues_[p].entries.push_back(std::move(entry));
    ++pending_;
  }
  cv_.notify_all();
}

bool AuditRelay::flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  // The counter after each queue's last entry now: reached when the front
  // moved past it.
  std::vector<uint64_t> target(queues_.size());
  for (size_t p = 0; p < queues_.size(); ++p) {
    target[p] = queues_[p].front_counter + queues_[p].entries.size();
  }
  return settled_cv_.wait_for(lock, timeout, [&] {
    for (size_t p = 0; p < queues_.size(); ++p) {
      if (queues_[p].front_counter < target[p]) return false;
    }
    return true;
  });
}

void AuditRelay::serve(std::string payload, std::function<void(Result<std::string>)> reply) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      incoming_.push_back({std::move(payload), std::move(reply)});
      cv_.notify_all();
      return;
    }
  }
  reply(Status(Errc::kUnavailable, "the node is stopping"));
}

void AuditRelay::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (!incoming_.empty()) {
      Incoming in = std::move(incoming_.front());
      incoming_.pop_front();
      lock.unlock();
      auto batch = decode(in.payload);
      if (!batch.ok()) {
        in.reply(batch.status());
      } else if (batch->partition >= partitions_) {
        in.reply(Status(Errc::kInvalidArgument,
                        "a relayed audit batch for partition " + std::to_string(batch->partition)));
      } else {
        auto reply = std::move(in.reply);
        engine_.append_audit(batch->partition, std::move(batch->entries), batch->sender,
                             batch->first, [reply](Status st) {
                               if (st.is_ok()) return reply(std::string());
                               reply(std::move(st));
                             });
      }
      lock.lock();
      continue;
    }
    // Every queue with entries, nothing in flight and no pending retry.
    const auto now = std::chrono::steady_clock::now();
    auto next_retry = std::chrono::steady_clock::time_point::max();
    std::vector<std::pair<uint32_t, std::vector<AuditEntry>>> ready;
    std::vector<uint64_t> firsts;
    for (uint32_t p = 0; p < partitions_; ++p) {
      Queue& q = queues_[p];
      if (q.entries.empty() || q.in_flight) continue;
      if (q.retry_at > now) {
        next_retry = std::min(next_retry, q.retry_at);
        continue;
      }
      const size_t n = std::min(q.entries.size(), options_.max_batch);
      std::vector<AuditEntry> batch(q.entries.begin(),
                                    q.entries.begin() + static_cast<std::ptrdiff_t>(n));
      q.in_flight = true;
      ready.emplace_back(p, std::move(batch));
      firsts.push_back(q.front_counter);
    }
    if (ready.empty()) {
      if (next_retry == std::chrono::steady_clock::time_point::max()) {
        cv_.wait(lock);
      } else {
        cv_.wait_until(lock, next_retry);
      }
      continue;
    }
    lock.unlock();
    for (size_t i = 0; i < ready.size(); ++i) {
      dispatch(ready[i].first, std::move(ready[i].second), firsts[i]);
    }
    lock.lock();
  }
}

void AuditRelay::dispatch(uint32_t p, std::vector<AuditEntry> batch, uint64_t first) {
  const size_t n = batch.size();
  std::optional<std::string> leader = routes_.leader_of(p);
  if (!leader) {
    return settle(p, n,
                  Status(Errc::kUnavailable, "partition " + std::to_string(p) + " has no leader"));
  }
  if (leader->empty()) {
    engine_.append_audit(p, std::move(batch), sender_, first,
                         [this, p, n](Status st) { settle(p, n, st); });
    return;
  }
  routes_.send(*leader, encode(p, sender_, first, batch), options_.rpc_timeout,
               [this, p, n](Result<std::string> r) { settle(p, n, r.status()); });
}

void AuditRelay::settle(uint32_t p, size_t count, const Status& st) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Queue& q = queues_[p];
    q.in_flight = false;
    if (st.is_ok()) {
      for (size_t i = 0; i < count && !q.entries.empty(); ++i) q.entries.pop_front();
      q.front_counter += count;
      pending_ -= std::min(pending_, count);
    } else {
      q.retry_at = std::chrono::steady_clock::now() + options_.retry;
      spdlog::debug("audit relay: partition {} batch of {} not recorded yet ({}); retrying", p,
                    count, st.to_string());
    }
  }
  cv_.notify_all();
  settled_cv_.notify_all();
}

}  // namespace yantra::cluster
