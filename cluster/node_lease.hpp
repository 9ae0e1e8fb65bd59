// The node's etcd lease: what makes its node key and its partition leader
// keys disappear when it dies, hangs or is cut off from etcd.
//
// Lease accounting (docs/cluster.md): etcd counts a lease from when it
// *received* the last keepalive, which is after we sent it; so a lease we
// renewed by a keepalive sent at time S is certainly alive in etcd until
// S + TTL by etcd's clock. We count it valid until
//     S + granted TTL - margin,    margin = TTL / 10 + 100 ms
// on the steady clock, where S is the send time of the last keepalive that
// succeeded (or of the grant). The margin covers the clock rate difference
// between this machine and etcd's (and scheduling delays). A leader stops
// acting as one once valid() is false, which is therefore before etcd can
// have deleted its leader key and let another node take over.
//
// Lifecycle: start() grants the first lease (synchronously, so the caller
// has its id), then two threads run:
// - the keepalive thread sends a keepalive every TTL/3 (every 200 ms after a
//   failed one) and, once the lease is lost, revokes the old lease (best
//   effort, retried until etcd confirms) and grants a fresh one, with backoff;
// - the watchdog thread sleeps until valid_until and declares the lease lost
//   the moment it passes, even while the keepalive thread is blocked in a
//   request to an etcd that does not answer.
// A lease is lost when validity runs out or a keepalive answers "lease not
// found"; it is never renewed after that (its keys may already be gone).
// Subscribers hear kLost once per lease, then kGranted with the new lease id
// (a new identity: put your leased keys again under it). The destructor
// stops both threads (waiting at most for one etcd request in flight) and
// revokes the lease, so the node's keys vanish at once.
//
// Threads: valid(), valid_until(), id() are lock-free atomics, callable from
// any thread (a CAF actor included). subscribe()/unsubscribe() from any
// thread except inside a callback. Callbacks run on one of the two lease
// threads, one at a time, in order (kLost before the next kGranted); keep
// them short, never block on etcd inside them, never destroy the NodeLease
// from one. After unsubscribe() returns, that callback is not running and
// will not run again. The EtcdClient must outlive the NodeLease.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/result.hpp"

namespace yantra::cluster {

class EtcdClient;

struct NodeLeaseOptions {
  // The TTL asked of etcd (whole seconds; etcd may grant more: at least
  // 1.5 x its election timeout). Failover of a dead node's partitions takes
  // up to this long plus the standby delay (leadership.hpp).
  std::chrono::seconds ttl{3};
  // Backoff between failed grants (doubling up to 1 s) and after a failed
  // keepalive.
  std::chrono::milliseconds retry{200};
};

class NodeLease {
 public:
  enum class Event { kLost, kGranted };
  using Callback = std::function<void(Event event, int64_t lease_id)>;
  using Clock = std::chrono::steady_clock;

  // Grants the first lease; the error of the grant when etcd refuses or
  // cannot be reached.
  static Result<std::unique_ptr<NodeLease>> start(EtcdClient& etcd, NodeLeaseOptions options = {});
  ~NodeLease();
  NodeLease(const NodeLease&) = delete;
  NodeLease& operator=(const NodeLease&) = delete;

  // The current lease, 0 between a loss and the next grant.
  int64_t id() const { return id_.load(std::memory_order_acquire); }
  // True while the current lease is certainly alive in etcd (see above).
  bool valid() const { return Clock::now() < valid_until(); }
  Clock::time_point valid_until() const {
    return Clock::time_point(Clock::duration(valid_until_.load(std::memory_order_acquire)));
  }
  // The TTL etcd granted (seconds) and the margin taken off it.
  std::chrono::milliseconds granted_ttl() const {
    return std::chrono::milliseconds(granted_ttl_ms_.load(std::memory_order_acquire));
  }
  std::chrono::milliseconds margin() const;
  // Send time of the keepalive (or grant) that set valid_until.
  Clock::time_point last_renewal_sent() const {
    return Clock::time_point(Clock::duration(renewed_at_.load(std::memory_order_acquire)));
  }
  // Leases granted so far (1 after start()).
  int64_t grants() const { return grants_.load(std::memory_order_acquire); }

  int64_t subscribe(Callback callback);
  void unsubscribe(int64_t handle);

  // Test hook, a hung process: stops both threads without revoking and
  // without another callback; the lease then expires in etcd by itself.
  void halt_for_testing();

 private:
  NodeLease(EtcdClient& etcd, NodeLeaseOptions options);
  void keepalive_loop();
  void watchdog_loop();
  // Declares lease `id` lost (once), then tells subscribers.
  void declare_lost(int64_t id);
  void stop_threads();
  bool sleep_until(Clock::time_point t);  // false when stopping

  EtcdClient& etcd_;
  const NodeLeaseOptions options_;

  std::atomic<int64_t> id_{0};
  std::atomic<Clock::rep> valid_until_{0};
  std::atomic<Clock::rep> renewed_at_{0};
  std::atomic<int64_t> granted_ttl_ms_{0};
  std::atomic<int64_t> grants_{0};

  // Callbacks: held while one runs and while the lease state changes in a way
  // subscribers must hear about, so events come out in order.
  std::mutex callback_mu_;
  std::map<int64_t, Callback> callbacks_;
  int64_t next_handle_ = 1;

  std::mutex mu_;  // guards what follows
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> halted_{false};  // halt_for_testing(): no revoke
  bool lost_ = false;                // the current lease (id_) was declared lost
  std::vector<int64_t> abandoned_;   // lost leases not yet confirmed revoked

  std::thread keepalive_;
  std::thread watchdog_;
};

}  // namespace yantra::cluster
