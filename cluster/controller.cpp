// The controller (controller.hpp): placement planning, the P/controller
// key, fenced placement writes.
//
// Planning is greedy and stable on purpose: a valid replica or leadership
// stays where it is unless balancing asks for a move, because every change
// costs the partition a new epoch (its leader hands over so the next
// segment opens on the new replica set). Balancing runs only when the set of
// eligible nodes changed (a node joined, came back, was drained or undrained,
// went down) or an operator asked (POST /admin/v1/rebalance), so an
// operator's move-leader or set-replicas stays until then.
#include "cluster/controller.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "base/metrics.hpp"
#include "base/thread_name.hpp"
#include "cluster/node_lease.hpp"

namespace yantra::cluster {
namespace {

metrics::Counter& placement_writes() {
  static metrics::Counter& c = metrics::global().counter(
      "yantra_cluster_placement_writes_total",
      "Partition placement records (P/placement/<p>) written by this node as controller");
  return c;
}

// Partitions per placement txn (etcd allows 128 operations per txn by
// default; each write also carries a compare).
constexpr size_t kWritesPerTxn = 48;

}  // namespace

uint64_t rendezvous_score(uint32_t partition, const std::string& node) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ull;
  };
  for (unsigned char c : node) mix(c);
  mix('/');
  for (int i = 0; i < 4; ++i) mix(static_cast<unsigned char>(partition >> (8 * i)));
  // fnv's low bits mix poorly for short inputs: finish with a multiply-xorshift.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

std::map<uint32_t, PlacementRecord> plan_placement(const PlanInput& in) {
  const size_t r = in.replication;
  std::map<std::string, size_t> rep_load;
  std::map<std::string, size_t> lead_load;
  for (const auto& n : in.eligible) {
    rep_load[n] = 0;
    lead_load[n] = 0;
  }
  auto has = [](const std::vector<std::string>& v, const std::string& n) {
    return std::find(v.begin(), v.end(), n) != v.end();
  };
  std::vector<std::vector<std::string>> reps(in.partitions);
  // 1. Valid replicas stay.
  for (uint32_t p = 0; p < in.partitions; ++p) {
    auto it = in.current.find(p);
    if (it == in.current.end()) continue;
    for (const auto& n : it->second.replicas) {
      if (reps[p].size() >= r || in.keep.count(n) == 0 || has(reps[p], n)) continue;
      reps[p].push_back(n);
      if (auto l = rep_load.find(n); l != rep_load.end()) ++l->second;
    }
  }
  // 2. Fill up from the least loaded eligible nodes.
  for (uint32_t p = 0; p < in.partitions; ++p) {
    while (reps[p].size() < r) {
      const std::string* best = nullptr;
      for (const auto& [n, load] : rep_load) {
        if (has(reps[p], n)) continue;
        if (best == nullptr || load < rep_load[*best] ||
            (load == rep_load[*best] && rendezvous_score(p, n) > rendezvous_score(p, *best))) {
          best = &n;
        }
      }
      if (best == nullptr) break;
      reps[p].push_back(*best);
      ++rep_load[*best];
    }
  }
  auto current_preferred = [&](uint32_t p) -> std::string {
    auto it = in.current.find(p);
    return it == in.current.end() ? std::string() : it->second.preferred;
  };
  // 3. Even out replica counts: move one replica at a time from the most
  // loaded node to the least loaded, preferring partitions it does not lead.
  if (in.balance) {
    for (size_t guard = 0; guard < static_cast<size_t>(in.partitions) * r + 1; ++guard) {
      if (rep_load.size() < 2) break;
      auto [lo, hi] =
          std::minmax_element(rep_load.begin(), rep_load.end(), [](const auto& a, const auto& b) {
            return a.second < b.second || (a.second == b.second && a.first < b.first);
          });
      if (hi->second <= lo->second + 1) break;
      std::optional<uint32_t> pick;
      for (uint32_t p = 0; p < in.partitions; ++p) {
        if (!has(reps[p], hi->first) || has(reps[p], lo->first)) continue;
        if (!pick || (current_preferred(*pick) == hi->first && current_preferred(p) != hi->first)) {
          pick = p;
        }
      }
      if (!pick) break;
      std::replace(reps[*pick].begin(), reps[*pick].end(), hi->first, lo->first);
      --hi->second;
      ++lo->second;
    }
  }
  // 4. Leaders: a valid preferred node stays; the others go to the eligible
  // replica leading the fewest.
  std::vector<std::string> pref(in.partitions);
  for (uint32_t p = 0; p < in.partitions; ++p) {
    const std::string cur = current_preferred(p);
    if (!cur.empty() && in.eligible.count(cur) != 0 && has(reps[p], cur)) {
      pref[p] = cur;
      ++lead_load[cur];
    }
  }
  for (uint32_t p = 0; p < in.partitions; ++p) {
    if (!pref[p].empty()) continue;
    const std::string* best = nullptr;
    for (const auto& n : reps[p]) {
      if (in.eligible.count(n) == 0) continue;
      if (best == nullptr || lead_load[n] < lead_load[*best] ||
          (lead_load[n] == lead_load[*best] &&
           rendezvous_score(p, n) > rendezvous_score(p, *best))) {
        best = &n;
      }
    }
    if (best != nullptr) {
      pref[p] = *best;
      ++lead_load[*best];
    }
  }
  // 5. Even out leaderships: the move between two replicas of one partition
  // with the largest difference in counts, while one differs by 2 or more.
  if (in.balance) {
    for (size_t guard = 0; guard < static_cast<size_t>(in.partitions) + 1; ++guard) {
      std::optional<uint32_t> best_p;
      std::string best_to;
      size_t best_gap = 1;
      for (uint32_t p = 0; p < in.partitions; ++p) {
        if (pref[p].empty()) continue;
        const size_t from = lead_load[pref[p]];
        for (const auto& n : reps[p]) {
          if (n == pref[p] || in.eligible.count(n) == 0) continue;
          const size_t to = lead_load[n];
          if (from > to + 1 && from - to > best_gap) {
            best_gap = from - to;
            best_p = p;
            best_to = n;
          }
        }
      }
      if (!best_p) break;
      --lead_load[pref[*best_p]];
      ++lead_load[best_to];
      pref[*best_p] = best_to;
    }
  }
  std::map<uint32_t, PlacementRecord> out;
  for (uint32_t p = 0; p < in.partitions; ++p) {
    if (reps[p].empty()) {
      // No node may hold it now: what exists stays as it is.
      if (auto it = in.current.find(p); it != in.current.end()) out[p] = it->second;
      continue;
    }
    PlacementRecord rec;
    rec.replicas = reps[p];
    if (!pref[p].empty()) {
      rec.preferred = pref[p];
    } else {
      const std::string cur = current_preferred(p);
      rec.preferred = has(reps[p], cur) ? cur : reps[p].front();
    }
    out[p] = std::move(rec);
  }
  return out;
}

Controller::Controller(EtcdClient& etcd, const Layout& layout, NodeLease& lease, ClusterMeta meta,
                       ControllerOptions options, ReadView read_view)
    : etcd_(etcd),
      layout_(layout),
      lease_(lease),
      meta_(std::move(meta)),
      options_(std::move(options)),
      read_view_(std::move(read_view)) {
  thread_ = std::thread([this] {
    name_this_thread("y-controller");
    run();
  });
}

Controller::~Controller() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Controller::poke() {
  {
    std::lock_guard lock(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

std::string Controller::holder() const {
  std::lock_guard lock(mu_);
  return holder_;
}

void Controller::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, options_.tick, [this] { return stopping_ || poked_; });
    if (stopping_) break;
    poked_ = false;
    lock.unlock();
    tick();
    lock.lock();
  }
  active_ = false;
}

bool Controller::hold() {
  const std::string key = layout_.controller();
  auto set_holder = [this](std::string node) {
    std::lock_guard lock(mu_);
    holder_ = std::move(node);
  };
  RangeRequest rr;
  rr.key = key;
  auto got = etcd_.range(rr);
  if (!got.ok()) return false;  // etcd unreachable: our lease will tell
  const int64_t lease_id = lease_.id();
  if (!got->kvs.empty()) {
    const KeyValue& kv = got->kvs.front();
    auto rec = parse_controller_record(kv.value, key);
    set_holder(rec.ok() ? rec->node : std::string());
    if (rec.ok() && rec->node == options_.node_id) {
      if (kv.lease == lease_id && lease_.valid()) {
        key_revision_ = kv.create_revision;
        return true;
      }
      // Ours under an earlier lease (before a restart or a lost lease):
      // delete it so a controller is elected now instead of after its TTL.
      TxnRequest txn;
      txn.compare.push_back(
          Compare::create_revision_is(key, Compare::Op::kEqual, kv.create_revision));
      txn.success.push_back(DeleteRequest::single(key));
      (void)etcd_.txn(txn);
    }
    return false;
  }
  if (!lease_.valid() || lease_id == 0) return false;
  TxnRequest txn;
  txn.compare.push_back(Compare::create_revision_is(key, Compare::Op::kEqual, 0));
  ControllerRecord me{options_.node_id};
  txn.success.push_back(PutRequest{key, to_json(me), lease_id, false});
  auto r = etcd_.txn(txn);
  if (!r.ok() || !r->succeeded) return false;
  key_revision_ = r->header.revision;
  set_holder(options_.node_id);
  spdlog::info("cluster: node {} is the controller (revision {})", options_.node_id, key_revision_);
  return true;
}

void Controller::tick() {
  if (!hold()) {
    if (active_.exchange(false)) {
      spdlog::info("cluster: node {} is no longer the controller", options_.node_id);
    }
    down_since_.clear();
    last_eligible_.clear();
    last_rebalance_ = -1;
    return;
  }
  const View view = read_view_();
  if (!active_.exchange(true)) {
    // A new controller balances only on later changes: the placement it
    // inherits was balanced for today's nodes (or set by an operator).
    std::set<std::string> eligible;
    for (const auto& [id, rec] : view.live) {
      auto a = view.admin.find(id);
      if ((a == view.admin.end() || a->second == NodeAdminState::kActive) && rec.writable) {
        eligible.insert(id);
      }
    }
    last_eligible_ = eligible;
    last_rebalance_ = view.rebalance_revision;
  }
  plan_and_write(view);
}

void Controller::plan_and_write(const View& view) {
  const auto now = std::chrono::steady_clock::now();
  std::set<std::string> known;
  for (const auto& [id, rec] : view.live) known.insert(id);
  for (const auto& [id, state] : view.admin) known.insert(id);
  for (const auto& [p, entry] : view.placement) {
    for (const auto& n : entry.first.replicas) known.insert(n);
  }
  for (auto it = down_since_.begin(); it != down_since_.end();) {
    it = (known.count(it->first) == 0 || view.live.count(it->first) != 0) ? down_since_.erase(it)
                                                                          : std::next(it);
  }
  PlanInput in;
  in.partitions = meta_.partitions;
  in.replication = meta_.replication;
  for (const auto& n : known) {
    auto a = view.admin.find(n);
    const NodeAdminState state = a == view.admin.end() ? NodeAdminState::kActive : a->second;
    if (state != NodeAdminState::kActive) continue;
    if (auto live = view.live.find(n); live != view.live.end()) {
      // A node whose store refuses writes keeps its replicas (it catches
      // up once it has room) but leads nothing meanwhile.
      if (live->second.writable) in.eligible.insert(n);
      in.keep.insert(n);
      continue;
    }
    auto since = down_since_.emplace(n, now).first->second;
    if (now - since < options_.down_grace) in.keep.insert(n);
  }
  for (const auto& [p, entry] : view.placement) in.current[p] = entry.first;
  in.balance = in.eligible != last_eligible_ || view.rebalance_revision != last_rebalance_;
  if (in.eligible.empty()) return;  // nobody to place on (etcd view at startup)
  const auto plan = plan_placement(in);

  std::vector<uint32_t> changed;
  for (const auto& [p, rec] : plan) {
    auto it = view.placement.find(p);
    if (it == view.placement.end() || !(it->second.first == rec)) changed.push_back(p);
  }
  bool all_written = true;
  for (size_t start = 0; start < changed.size(); start += kWritesPerTxn) {
    TxnRequest txn;
    txn.compare.push_back(
        Compare::create_revision_is(layout_.controller(), Compare::Op::kEqual, key_revision_));
    const size_t end = std::min(changed.size(), start + kWritesPerTxn);
    for (size_t i = start; i < end; ++i) {
      const uint32_t p = changed[i];
      const std::string key = layout_.placement(p);
      auto it = view.placement.find(p);
      txn.compare.push_back(
          it == view.placement.end()
              ? Compare::create_revision_is(key, Compare::Op::kEqual, 0)
              : Compare::mod_revision_is(key, Compare::Op::kEqual, it->second.second));
      txn.success.push_back(PutRequest{key, to_json(plan.at(p)), 0, false});
    }
    auto r = etcd_.txn(txn);
    if (!r.ok() || !r->succeeded) {
      // Another writer (an operator, a newer controller) or a stale view:
      // the next tick plans again from the mirror.
      all_written = false;
      spdlog::debug("cluster: placement write not applied: {}",
                    r.ok() ? "compare failed" : r.status().to_string());
      break;
    }
    for (size_t i = start; i < end; ++i) {
      const auto& rec = plan.at(changed[i]);
      std::string reps;
      for (const auto& n : rec.replicas) reps += (reps.empty() ? "" : ",") + n;
      spdlog::info("cluster: placement of partition {}: replicas [{}], preferred {}{}", changed[i],
                   reps, rec.preferred, in.balance ? " (balanced)" : "");
    }
    writes_ += static_cast<int64_t>(end - start);
    placement_writes().inc(end - start);
  }
  if (all_written) {
    last_eligible_ = in.eligible;
    last_rebalance_ = view.rebalance_revision;
  }
}

}  // namespace yantra::cluster
