// Membership (membership.hpp): a registration thread that keeps our record
// under the current lease, and a PrefixMirror of P/nodes/ turned into the
// live set. The lease callback only wakes the registration thread (no etcd
// call on the lease's threads).
#include "cluster/membership.hpp"

namespace yantra::cluster {

using std::chrono::milliseconds;

Membership::Membership(EtcdClient& etcd, const Layout& layout, NodeLease& lease, NodeRecord self,
                       OnChange on_change)
    : etcd_(etcd),
      layout_(layout),
      lease_(lease),
      self_(std::move(self)),
      on_change_(std::move(on_change)) {}

Result<std::unique_ptr<Membership>> Membership::start(EtcdClient& etcd, const Layout& layout,
                                                      NodeLease& lease, NodeRecord self,
                                                      OnChange on_change,
                                                      milliseconds sync_timeout) {
  if (Status s = validate_node_id(self.id); !s.is_ok()) return s;
  std::unique_ptr<Membership> m(
      new Membership(etcd, layout, lease, std::move(self), std::move(on_change)));
  const int64_t lease_id = lease.id();
  if (Status s = m->register_once(lease_id); !s.is_ok()) return s;
  m->subscription_ = lease.subscribe([p = m.get()](NodeLease::Event, int64_t) {
    p->cv_.notify_all();  // the registration thread compares lease ids
  });
  m->registrar_ = std::thread([p = m.get()] { p->registration_loop(); });
  m->mirror_ = std::make_unique<PrefixMirror>(
      etcd, layout.nodes(),
      [p = m.get()](const std::vector<PrefixMirror::Change>& c, int64_t) { p->on_changes(c); });
  if (!m->mirror_->wait_synced(sync_timeout))
    return Status(ClusterErrc::kTimeout, "no listing of " + layout.nodes() + " within " +
                                             std::to_string(sync_timeout.count()) + " ms");
  return m;
}

Membership::~Membership() {
  if (subscription_ != 0) lease_.unsubscribe(subscription_);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (registrar_.joinable()) registrar_.join();
  mirror_.reset();
  // Leave at once (best effort) when the record is still ours.
  int64_t lease_id = 0;
  {
    std::lock_guard lock(mu_);
    lease_id = registered_lease_;
  }
  if (lease_id != 0 && lease_.id() == lease_id) {
    TxnRequest txn;
    txn.compare.push_back(Compare::lease_is(layout_.node(self_.id), Compare::Op::kEqual, lease_id));
    txn.success.push_back(DeleteRequest::single(layout_.node(self_.id)));
    (void)etcd_.txn(txn);
  }
}

Status Membership::register_once(int64_t lease_id) {
  if (lease_id == 0) return Status(ClusterErrc::kLeaseNotFound, "no node lease at the moment");
  NodeRecord self;
  {
    std::lock_guard lock(mu_);  // set_writable() changes it
    self = self_;
  }
  PutRequest put;
  put.key = layout_.node(self.id);
  put.value = to_json(self);
  put.lease = lease_id;
  auto r = etcd_.put(put);
  if (!r.ok()) return r.status();
  std::lock_guard lock(mu_);
  registered_lease_ = lease_id;
  registrations_.fetch_add(1);
  return Status::ok();
}

void Membership::registration_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const int64_t current = lease_.id();
    if (current == 0 || current == registered_lease_) {
      // Woken by the lease callback; the timeout re-checks in case a wake-up
      // raced with the comparison above.
      cv_.wait_for(lock, milliseconds(500));
      continue;
    }
    lock.unlock();
    const Status s = register_once(current);
    lock.lock();
    if (!s.is_ok()) cv_.wait_for(lock, milliseconds(200), [&] { return stopping_; });
  }
}

void Membership::on_changes(const std::vector<PrefixMirror::Change>& changes) {
  LiveSet copy;
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    for (const auto& c : changes) {
      auto id = layout_.node_id_of(c.key);
      if (!id) continue;
      if (!c.after) {
        changed |= live_.erase(*id) > 0;
        continue;
      }
      auto record = parse_node_record(c.after->value, c.key);
      if (!record.ok() || record->id != *id) {
        malformed_.fetch_add(1);
        changed |= live_.erase(*id) > 0;
        continue;
      }
      auto it = live_.find(*id);
      if (it == live_.end() || !(it->second == *record)) {
        live_[*id] = *record;
        changed = true;
      }
    }
    if (changed) copy = live_;
  }
  if (changed && on_change_) on_change_(copy);
}

Membership::LiveSet Membership::live() const {
  std::lock_guard lock(mu_);
  return live_;
}

NodeRecord Membership::self() const {
  std::lock_guard lock(mu_);
  return self_;
}

void Membership::set_writable(bool writable) {
  {
    std::lock_guard lock(mu_);
    if (self_.writable == writable) return;
    self_.writable = writable;
    registered_lease_ = 0;  // the registration thread puts the record again
  }
  cv_.notify_all();
}

bool Membership::is_live(const std::string& node_id) const {
  std::lock_guard lock(mu_);
  return live_.count(node_id) != 0;
}

}  // namespace yantra::cluster
