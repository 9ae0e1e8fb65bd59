// NodeLease (node_lease.hpp): two threads around one lease. Lock order:
// callback_mu_ before mu_, never the other way; the watchdog and the
// keepalive thread drop mu_ before declaring a loss, and no etcd call is made
// while either mutex is held, so a callback or a subscriber never waits for
// etcd.
#include "cluster/node_lease.hpp"

#include <algorithm>

#include "cluster/etcd_client.hpp"

namespace yantra::cluster {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

NodeLease::NodeLease(EtcdClient& etcd, NodeLeaseOptions options) : etcd_(etcd), options_(options) {}

Result<std::unique_ptr<NodeLease>> NodeLease::start(EtcdClient& etcd, NodeLeaseOptions options) {
  if (options.ttl.count() < 1)
    return Status(Errc::kInvalidArgument, "lease TTL must be at least 1 s");
  if (options.retry.count() < 1) options.retry = milliseconds(1);
  std::unique_ptr<NodeLease> lease(new NodeLease(etcd, options));
  const auto sent = Clock::now();
  auto grant = etcd.lease_grant(options.ttl.count());
  if (!grant.ok()) return grant.status();
  lease->granted_ttl_ms_.store(grant->ttl * 1000);
  lease->renewed_at_.store(sent.time_since_epoch().count());
  lease->valid_until_.store(
      (sent + milliseconds(grant->ttl * 1000) - lease->margin()).time_since_epoch().count());
  lease->id_.store(grant->id);
  lease->grants_.store(1);
  lease->keepalive_ = std::thread([l = lease.get()] { l->keepalive_loop(); });
  lease->watchdog_ = std::thread([l = lease.get()] { l->watchdog_loop(); });
  return lease;
}

NodeLease::~NodeLease() {
  const bool was_halted = halted_;
  stop_threads();
  if (was_halted) return;
  // Best effort: the keys go at once instead of after the TTL.
  std::vector<int64_t> ids;
  {
    std::lock_guard lock(mu_);
    ids = abandoned_;
  }
  if (const int64_t id = id_.load(); id != 0) ids.push_back(id);
  for (int64_t id : ids) (void)etcd_.lease_revoke(id);
}

std::chrono::milliseconds NodeLease::margin() const {
  return milliseconds(granted_ttl_ms_.load() / 10 + 100);
}

int64_t NodeLease::subscribe(Callback callback) {
  std::lock_guard lock(callback_mu_);
  const int64_t handle = next_handle_++;
  callbacks_.emplace(handle, std::move(callback));
  return handle;
}

void NodeLease::unsubscribe(int64_t handle) {
  std::lock_guard lock(callback_mu_);
  callbacks_.erase(handle);
}

void NodeLease::halt_for_testing() {
  halted_ = true;
  stop_threads();
}

void NodeLease::stop_threads() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (keepalive_.joinable()) keepalive_.join();
  if (watchdog_.joinable()) watchdog_.join();
}

bool NodeLease::sleep_until(Clock::time_point t) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, t, [&] { return stopping_ || lost_; });
  return !stopping_;
}

void NodeLease::declare_lost(int64_t id) {
  std::lock_guard callbacks(callback_mu_);
  {
    std::lock_guard lock(mu_);
    if (lost_ || id_.load() != id || id == 0) return;  // already declared
    lost_ = true;
    valid_until_.store(0);
    id_.store(0);
    abandoned_.push_back(id);
  }
  cv_.notify_all();
  for (auto& [handle, cb] : callbacks_) cb(Event::kLost, id);
}

void NodeLease::watchdog_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (lost_ || id_.load() == 0) {
      cv_.wait(lock, [&] { return stopping_ || (!lost_ && id_.load() != 0); });
      continue;
    }
    const auto until = valid_until();
    if (Clock::now() >= until) {
      const int64_t id = id_.load();
      lock.unlock();
      declare_lost(id);
      lock.lock();
      continue;
    }
    // Woken early by a renewal (which only moves `until` later) or stop.
    cv_.wait_until(lock, until);
  }
}

void NodeLease::keepalive_loop() {
  const auto ttl_of = [this] { return milliseconds(granted_ttl_ms_.load()); };
  Clock::time_point next = last_renewal_sent() + ttl_of() / 3;
  milliseconds backoff = options_.retry;
  while (true) {
    int64_t id = 0;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      id = lost_ ? 0 : id_.load();
    }
    if (id == 0) {
      // Lost: revoke what is left of the old lease (its keys must not linger
      // for a TTL after etcd comes back), then a fresh lease.
      std::vector<int64_t> old;
      {
        std::lock_guard lock(mu_);
        old = abandoned_;
      }
      for (int64_t o : old) {
        Status s = etcd_.lease_revoke(o);
        if (s.is_ok() || s.is(ClusterErrc::kLeaseNotFound)) {
          std::lock_guard lock(mu_);
          abandoned_.erase(std::remove(abandoned_.begin(), abandoned_.end(), o), abandoned_.end());
        }
      }
      const auto sent = Clock::now();
      auto grant = etcd_.lease_grant(options_.ttl.count());
      if (!grant.ok()) {
        if (!sleep_until(Clock::now() + backoff)) return;
        backoff = std::min(backoff * 2, milliseconds(1000));
        continue;
      }
      backoff = options_.retry;
      {
        std::lock_guard callbacks(callback_mu_);
        {
          std::lock_guard lock(mu_);
          if (stopping_) {
            abandoned_.push_back(grant->id);  // revoked by the destructor
            return;
          }
          granted_ttl_ms_.store(grant->ttl * 1000);
          renewed_at_.store(sent.time_since_epoch().count());
          valid_until_.store(
              (sent + milliseconds(grant->ttl * 1000) - margin()).time_since_epoch().count());
          id_.store(grant->id);
          grants_.fetch_add(1);
          lost_ = false;
        }
        cv_.notify_all();
        for (auto& [handle, cb] : callbacks_) cb(Event::kGranted, grant->id);
      }
      next = sent + ttl_of() / 3;
      continue;
    }

    if (!sleep_until(next)) return;
    {
      std::lock_guard lock(mu_);
      if (lost_) continue;
    }
    if (Clock::now() >= valid_until()) {
      declare_lost(id);
      continue;
    }
    const auto sent = Clock::now();
    auto kept = etcd_.lease_keepalive_once(id);
    if (kept.ok() && *kept > 0) {
      {
        std::lock_guard lock(mu_);
        // A loss declared while the request was in flight stands: the old
        // lease's keys may be gone already, and subscribers were told.
        if (!lost_ && id_.load() == id) {
          granted_ttl_ms_.store(*kept * 1000);
          const auto until = sent + milliseconds(*kept * 1000) - margin();
          if (until.time_since_epoch().count() > valid_until_.load())
            valid_until_.store(until.time_since_epoch().count());
          renewed_at_.store(sent.time_since_epoch().count());
        }
      }
      cv_.notify_all();
      next = sent + ttl_of() / 3;
    } else if (kept.ok() || kept.status().is(ClusterErrc::kLeaseNotFound)) {
      declare_lost(id);
    } else {
      next = Clock::now() + options_.retry;
    }
  }
}

}  // namespace yantra::cluster
