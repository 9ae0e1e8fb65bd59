// Which nodes are alive: every node keeps P/nodes/<id> (its NodeRecord)
// under its NodeLease, and every node mirrors P/nodes/ (PrefixMirror), so a
// node that stops, dies or hangs leaves everyone's live set once its lease
// is revoked or expires (docs/cluster.md, "Membership and leadership").
//
// Registration: start() puts the record under the current lease and waits
// for the first listing. After the lease is lost and re-granted (a new lease
// id), the registration thread puts the record again under the new lease,
// retrying every 200 ms until it succeeds or the lease changes again. The
// destructor stops both threads and deletes the record if it is still under
// our lease (the NodeLease's revoke would remove it too).
//
// Threads: live() and is_live() from any thread. `on_change` receives the
// whole live set each time it changes, on the mirror's threads, one call at a
// time; the rules of PrefixMirror's callback apply. Records that do not parse
// are left out of the live set (counted in malformed()). The EtcdClient and
// the NodeLease must outlive the Membership.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/result.hpp"
#include "cluster/layout.hpp"
#include "cluster/node_lease.hpp"
#include "cluster/prefix_mirror.hpp"

namespace yantra::cluster {

class Membership {
 public:
  using LiveSet = std::map<std::string, NodeRecord>;
  using OnChange = std::function<void(const LiveSet& live)>;

  // kInvalidArgument for a bad node id; etcd's error when the first put fails
  // or the first listing does not arrive within `sync_timeout`.
  static Result<std::unique_ptr<Membership>> start(
      EtcdClient& etcd, const Layout& layout, NodeLease& lease, NodeRecord self,
      OnChange on_change = {},
      std::chrono::milliseconds sync_timeout = std::chrono::milliseconds(5000));
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  LiveSet live() const;
  bool is_live(const std::string& node_id) const;
  // Republishes this node's record with `writable` (NodeRecord) when it
  // changed; the registration thread does the put.
  void set_writable(bool writable);
  NodeRecord self() const;
  int64_t malformed() const { return malformed_.load(); }
  // Puts of our record so far (1 after start(), +1 per re-grant).
  int64_t registrations() const { return registrations_.load(); }
  // Listings of P/nodes/ so far (1 after start(), +1 per compacted watch).
  int64_t listings() const { return mirror_ ? mirror_->listings() : 0; }

 private:
  Membership(EtcdClient& etcd, const Layout& layout, NodeLease& lease, NodeRecord self,
             OnChange on_change);
  Status register_once(int64_t lease_id);
  void registration_loop();
  void on_changes(const std::vector<PrefixMirror::Change>& changes);

  EtcdClient& etcd_;
  const Layout layout_;
  NodeLease& lease_;
  NodeRecord self_;  // guarded by mu_ (set_writable)
  const OnChange on_change_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  LiveSet live_;
  int64_t registered_lease_ = 0;  // the lease our record was last put under
  bool stopping_ = false;

  std::atomic<int64_t> malformed_{0};
  std::atomic<int64_t> registrations_{0};
  int64_t subscription_ = 0;
  std::thread registrar_;
  std::unique_ptr<PrefixMirror> mirror_;
};

}  // namespace yantra::cluster
