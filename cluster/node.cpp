// ClusterNode (cluster/node.hpp): wiring, leadership transitions, placement
// by rendezvous hashing, peer connections, schedule slot claims.
#include "cluster/node.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "actors/engine.hpp"
#include "actors/internal/parts.hpp"
#include "base/errc.hpp"
#include "base/metrics.hpp"
#include "base/time.hpp"
#include "cluster/append_pipe.hpp"
#include "cluster/errc.hpp"
#include "cluster/etcd_client.hpp"
#include "cluster/follower.hpp"
#include "cluster/leadership.hpp"
#include "cluster/log_recovery.hpp"
#include "cluster/log_server.hpp"
#include "cluster/membership.hpp"
#include "cluster/node_lease.hpp"
#include "cluster/pki.hpp"
#include "cluster/replicated_log.hpp"
#include "cluster/transport.hpp"
#include "runtime/ids.hpp"
#include "storage/partition_batch.hpp"
#include "storage/store.hpp"

namespace yantra::cluster {
namespace {

// Rendezvous score of (partition, node): the highest live node is the
// partition's preferred leader and first replica choice.
uint64_t score(uint32_t partition, const std::string& node) {
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

std::optional<std::pair<std::string, uint16_t>> split_host_port(const std::string& hp) {
  const auto colon = hp.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  int port = 0;
  try {
    port = std::stoi(hp.substr(colon + 1));
  } catch (...) {
    return std::nullopt;
  }
  if (port <= 0 || port > 65535) return std::nullopt;
  return std::make_pair(hp.substr(0, colon), static_cast<uint16_t>(port));
}

std::string pad20(int64_t v) {
  std::string s = std::to_string(v);
  return std::string(s.size() < 20 ? 20 - s.size() : 0, '0') + s;
}

metrics::Counter& transitions(const char* kind) {
  return metrics::global().counter("yantra_cluster_leadership_changes_total",
                                   "Partitions this node started or stopped leading",
                                   {{"change", kind}});
}

metrics::Histogram& recovery_seconds() {
  static metrics::Histogram& h = metrics::global().histogram(
      "yantra_cluster_recovery_seconds",
      "From winning a partition's election to leading it (seal, copy, apply, open)",
      metrics::latency_seconds_buckets());
  return h;
}

// How long a new leader waits for R nodes before it opens a segment on fewer
// (never fewer than W).
constexpr std::chrono::milliseconds kReplicaGrace{2000};

}  // namespace

struct ClusterNode::Impl {
  ClusterNodeOptions options;
  Layout layout;
  ClusterMeta meta;
  std::unique_ptr<EtcdClient> etcd;
  std::string secret;
  Engine* engine = nullptr;
  storage::Store* store = nullptr;

  std::unique_ptr<Transport> transport;
  std::unique_ptr<LogServer> log_server;
  // The appends of every partition led here, per replica node
  // (cluster/append_pipe.hpp); other log requests go straight to log_rpc.
  std::unique_ptr<AppendPipes> pipes;
  std::unique_ptr<FollowerApplier> follower;
  // Guards `follower` against the destructor for the callers that outlive
  // the stripes: the log server's workers (on_committed) and partitions().
  // Without it a commit notice arriving during shutdown called a destroyed
  // follower (SIGSEGV in LogServer::serve on SIGTERM under load; seen in
  // cluster_fault_test's rolling restart).
  mutable std::shared_mutex follower_mu;
  std::unique_ptr<NodeLease> lease;
  std::unique_ptr<Membership> membership;
  // Guarded: log threads ask it (may_write) until their partitions are
  // released, which the destructor does after destroying it.
  mutable std::shared_mutex leadership_mu;
  std::unique_ptr<PartitionLeadership> leadership;

  std::atomic<bool> stopping{false};

  // Transition stripes: a partition's events run in order on one thread.
  struct Stripe {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> jobs;
    bool stop = false;
    std::thread thread;
  };
  std::vector<std::unique_ptr<Stripe>> stripes;

  // Partitions led here: epoch, and the log (owned by the engine; valid
  // while listed here).
  mutable std::mutex led_mu;
  std::map<uint32_t, int64_t> led;
  std::map<uint32_t, ReplicatedPartitionLog*> logs;

  // Every node seen live (segment replicas may name a down one).
  mutable std::mutex known_mu;
  std::set<std::string> known;

  std::mutex maint_mu;
  std::condition_variable maint_cv;
  std::thread connector;
  std::thread balancer;

  void enqueue(uint32_t partition, std::function<void()> job) {
    Stripe& s = *stripes[partition % stripes.size()];
    {
      std::lock_guard lock(s.mu);
      if (s.stop) return;
      s.jobs.push_back(std::move(job));
    }
    s.cv.notify_one();
  }

  static void run_stripe(Stripe& s) {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(s.mu);
        s.cv.wait(lock, [&] { return s.stop || !s.jobs.empty(); });
        if (s.jobs.empty()) return;
        job = std::move(s.jobs.front());
        s.jobs.pop_front();
      }
      job();
    }
  }

  // The log rpc: our own log server directly, others over the transport.
  void log_rpc(const std::string& node, std::string payload,
               std::function<void(Result<std::string>)> done) {
    if (node == options.node_id) {
      log_server->handle(node, std::move(payload), std::move(done));
      return;
    }
    if (!transport) {
      done(Status(Errc::kUnavailable, "no transport"));
      return;
    }
    auto shared_done = std::make_shared<std::function<void(Result<std::string>)>>(std::move(done));
    Status sent =
        transport->request(PeerHandle{node}, "log", std::move(payload), options.rpc_timeout,
                           [shared_done](Result<std::string> r) { (*shared_done)(r); });
    if (!sent.is_ok()) (*shared_done)(sent);
  }

  Result<std::string> log_call(const std::string& node, std::string payload,
                               std::chrono::milliseconds timeout) {
    auto promise = std::make_shared<std::promise<Result<std::string>>>();
    auto future = promise->get_future();
    log_rpc(node, std::move(payload),
            [promise](Result<std::string> r) { promise->set_value(std::move(r)); });
    if (future.wait_for(timeout + std::chrono::milliseconds(500)) != std::future_status::ready) {
      return Status(Errc::kTimeout, "log call to " + node + " timed out");
    }
    return future.get();
  }

  LogCall call_fn() {
    return [this](const std::string& node, std::string payload, std::chrono::milliseconds t) {
      return log_call(node, std::move(payload), t);
    };
  }

  // This node first, then live nodes by rendezvous rank, then known ones.
  std::vector<std::string> choose_replicas(uint32_t partition) {
    std::vector<std::string> out{options.node_id};
    auto ranked = [partition](std::vector<std::string> v) {
      std::sort(v.begin(), v.end(), [partition](const std::string& a, const std::string& b) {
        return score(partition, a) > score(partition, b);
      });
      return v;
    };
    std::vector<std::string> live;
    for (const auto& [id, rec] : membership->live()) {
      if (id != options.node_id) live.push_back(id);
    }
    for (const auto& id : ranked(live)) {
      if (out.size() >= meta.replication) break;
      out.push_back(id);
    }
    if (out.size() < meta.replication) {
      std::vector<std::string> others;
      {
        std::lock_guard lock(known_mu);
        for (const auto& id : known) {
          if (std::find(out.begin(), out.end(), id) == out.end()) others.push_back(id);
        }
      }
      for (const auto& id : ranked(others)) {
        if (out.size() >= meta.replication) break;
        out.push_back(id);
      }
    }
    return out;
  }

  std::optional<std::string> preferred_of(uint32_t partition,
                                          const Membership::LiveSet& live) const {
    std::optional<std::string> best;
    uint64_t best_score = 0;
    for (const auto& [id, rec] : live) {
      const uint64_t s = score(partition, id);
      if (!best || s > best_score) {
        best = id;
        best_score = s;
      }
    }
    return best;
  }

  bool still_leads(uint32_t partition, int64_t epoch) const {
    std::shared_lock lock(leadership_mu);
    if (!leadership) return false;
    auto mine = leadership->my_epoch(partition);
    return mine && *mine == epoch;
  }

  void resign(uint32_t partition) {
    std::shared_lock lock(leadership_mu);
    if (leadership) (void)leadership->resign(partition);
  }

  std::optional<LeaderInfo> leader_info(uint32_t partition) const {
    std::shared_lock lock(leadership_mu);
    if (!leadership) return std::nullopt;
    return leadership->leader_of(partition);
  }

  void become_leader(uint32_t partition, int64_t epoch) {
    const auto started = std::chrono::steady_clock::now();
    if (store->read_only()) {
      // A store refusing writes (disk under its floor, or latched after a
      // write error) cannot apply what it would commit: every write of the
      // partition would be refused here while the other replicas could
      // take them. Hand it over (campaigns held off for a while).
      spdlog::warn("partition {} epoch {}: not leading: {}", partition, epoch,
                   store->write_status().to_string());
      resign(partition);
      return;
    }
    follower->pause(partition);
    Result<RecoveredLog> recovered = Status(Errc::kUnavailable, "not tried");
    int attempts = 0;
    while (!stopping && still_leads(partition, epoch)) {
      // A segment needs at least W nodes to commit on (a down one may be
      // among them); with fewer known, wait for more to join.
      std::vector<std::string> replicas = choose_replicas(partition);
      // With fewer than R, give joining nodes a moment (a cluster starting
      // node by node), so the segment need not be replaced right away.
      const bool grace = std::chrono::steady_clock::now() - started < kReplicaGrace;
      if (replicas.size() < meta.write_quorum || (replicas.size() < meta.replication && grace)) {
        recovered = Status(Errc::kUnavailable, "only " + std::to_string(replicas.size()) +
                                                   " nodes known, a write quorum needs " +
                                                   std::to_string(meta.write_quorum));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      RecoveryOptions ro;
      ro.partition = partition;
      ro.epoch = epoch;
      ro.self = options.node_id;
      ro.write_quorum = meta.write_quorum;
      ro.replicas = std::move(replicas);
      ro.rpc_timeout = options.rpc_timeout;
      recovered = recover_partition(*etcd, layout, *store, call_fn(), ro);
      if (recovered.ok()) break;
      ++attempts;
      if (recovered.status().is(ClusterErrc::kFenced)) break;
      if (attempts == 1 || attempts % 20 == 0) {
        spdlog::warn("partition {} epoch {}: recovery failed (attempt {}): {}", partition, epoch,
                     attempts, recovered.status().to_string());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (!recovered.ok() || stopping || !still_leads(partition, epoch)) {
      if (!recovered.ok()) {
        spdlog::warn("partition {} epoch {}: not leading: {}", partition, epoch,
                     recovered.status().to_string());
      }
      follower->resume(partition);
      return;
    }
    ReplicatedLogOptions lo;
    lo.partition = partition;
    lo.epoch = epoch;
    lo.replicas = recovered->replicas;
    lo.write_quorum = meta.write_quorum;
    lo.first_lsn = recovered->first_lsn;
    lo.may_write = [this, partition, epoch] {
      return lease->valid() && still_leads(partition, epoch);
    };
    lo.on_deposed = [this, partition, epoch](const Status&) {
      enqueue(partition, [this, partition, epoch] { step_down(partition, epoch, true); });
    };
    auto log =
        ReplicatedPartitionLog::create(*store, lo,
                                       [this](const std::string& node, std::string payload,
                                              std::function<void(Result<std::string>)> done) {
                                         pipes->send(node, std::move(payload), std::move(done));
                                       });
    if (!log.ok()) {
      spdlog::error("partition {}: {}", partition, log.status().to_string());
      follower->resume(partition);
      return;
    }
    ReplicatedPartitionLog* raw = log.value().get();
    {
      std::lock_guard lock(led_mu);
      led[partition] = epoch;
      logs[partition] = raw;
    }
    Status handed = engine->lead_partition(partition, std::move(log.value()));
    if (!handed.is_ok()) {
      spdlog::error("partition {}: the engine refused to lead it: {}", partition,
                    handed.to_string());
      {
        std::lock_guard lock(led_mu);
        led.erase(partition);
        logs.erase(partition);
      }
      follower->resume(partition);
      resign(partition);
      return;
    }
    transitions("elected").inc();
    recovery_seconds().observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    spdlog::info("partition {}: leading at epoch {} from lsn {} (sealed {}, copied {}, applied {})",
                 partition, epoch, recovered->first_lsn, recovered->sealed_segment,
                 recovered->copied_batches, recovered->applied_batches);
  }

  void step_down(uint32_t partition, int64_t epoch, bool resign_after) {
    bool was_leading = false;
    {
      std::lock_guard lock(led_mu);
      auto it = led.find(partition);
      if (it != led.end() && it->second == epoch) {
        was_leading = true;
        led.erase(it);
        logs.erase(partition);
      }
    }
    if (!was_leading) return;
    engine->release_partition(partition);
    follower->resume(partition);
    transitions("lost").inc();
    spdlog::info("partition {}: no longer leading (epoch {})", partition, epoch);
    if (resign_after && still_leads(partition, epoch)) resign(partition);
  }

  void connect_loop() {
    while (!stopping) {
      for (const auto& [id, rec] : membership->live()) {
        if (stopping) break;
        {
          std::lock_guard lock(known_mu);
          known.insert(id);
        }
        if (id == options.node_id || transport->peer_stats(id)) continue;
        auto hp = split_host_port(rec.cluster);
        if (!hp) continue;
        auto peer = transport->connect(hp->first, hp->second, id);
        if (!peer.ok()) {
          spdlog::debug("cluster: connect to {} at {} failed: {}", id, rec.cluster,
                        peer.status().to_string());
        } else {
          spdlog::info("cluster: connected to node {} at {}", id, rec.cluster);
        }
      }
      std::unique_lock lock(maint_mu);
      maint_cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping.load(); });
    }
  }

  // Spreads leaderships: prefer the top-ranked live node; a node above its
  // share resigns partitions whose preferred node is alive and elsewhere.
  void balance_loop() {
    while (!stopping) {
      {
        std::unique_lock lock(maint_mu);
        maint_cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping.load(); });
      }
      if (stopping) break;
      const auto live = membership->live();
      if (live.empty()) continue;
      std::map<uint32_t, int64_t> mine;
      // A node whose store refuses writes (full disk, write error) leads
      // nothing: it would refuse every write of its partitions, which the
      // other replicas can take (cluster_disk_full_test).
      const bool writable = !store->read_only();
      {
        std::shared_lock lead_lock(leadership_mu);
        if (!leadership) break;
        for (uint32_t p = 0; p < meta.partitions; ++p) {
          auto pref = preferred_of(p, live);
          leadership->set_preferred(p, writable && pref && *pref == options.node_id);
        }
        mine = leadership->led();
      }
      if (!writable) {
        for (const auto& [p, epoch] : mine) {
          if (stopping) break;
          spdlog::warn("partition {}: handing leadership over: {}", p,
                       store->write_status().to_string());
          resign(p);
        }
        continue;
      }
      // A segment opened while fewer nodes were known has fewer replicas
      // than it could: hand the partition over, so the next epoch opens a
      // full one (a segment's replica set is fixed for its epoch).
      const size_t want = std::min<size_t>(meta.replication, live.size());
      std::vector<uint32_t> short_of_replicas;
      {
        std::lock_guard lock(led_mu);
        for (const auto& [p, log] : logs) {
          if (log->replication().replicas.size() < want) short_of_replicas.push_back(p);
        }
      }
      for (size_t k = 0; k < short_of_replicas.size() && k < 8; ++k) {
        spdlog::info(
            "partition {}: its segment has fewer replicas than the {} live nodes allow; "
            "handing it over for a new epoch",
            short_of_replicas[k], want);
        resign(short_of_replicas[k]);
      }
      if (!short_of_replicas.empty()) continue;
      const size_t share = (meta.partitions + live.size() - 1) / live.size();
      if (mine.size() <= share) continue;
      size_t excess = std::min<size_t>(mine.size() - share, 8);
      for (const auto& [p, epoch] : mine) {
        if (excess == 0 || stopping) break;
        auto pref = preferred_of(p, live);
        if (!pref || *pref == options.node_id) continue;
        {
          // Only partitions fully handed to the engine (not mid-recovery).
          std::lock_guard lock(led_mu);
          if (led.count(p) == 0) continue;
        }
        spdlog::info("partition {}: handing leadership to its preferred node {}", p, *pref);
        resign(p);
        --excess;
      }
    }
  }
};

ClusterNode::ClusterNode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ClusterNode::~ClusterNode() {
  Impl& m = *impl_;
  m.stopping = true;
  m.maint_cv.notify_all();
  if (m.connector.joinable()) m.connector.join();
  if (m.balancer.joinable()) m.balancer.join();
  // Leadership first: deletes our keys (immediate failover) and reports
  // every partition lost, which the stripes turn into releases.
  {
    std::unique_lock lock(m.leadership_mu);
    m.leadership.reset();
  }
  for (auto& s : m.stripes) {
    {
      std::lock_guard lock(s->mu);
      s->stop = true;
    }
    s->cv.notify_all();
    if (s->thread.joinable()) s->thread.join();
  }
  // Whatever is still led (a stripe stopped before its release ran).
  std::map<uint32_t, int64_t> left;
  {
    std::lock_guard lock(m.led_mu);
    left = m.led;
    m.led.clear();
    m.logs.clear();
  }
  for (const auto& [p, epoch] : left) m.engine->release_partition(p);
  m.membership.reset();
  {
    // Taken out under the lock, destroyed outside it (its destructor joins
    // the applier thread, which may wait on a log rpc).
    std::unique_ptr<FollowerApplier> follower;
    {
      std::unique_lock lock(m.follower_mu);
      follower = std::move(m.follower);
    }
  }
  m.pipes.reset();      // the logs that used them are gone
  m.transport.reset();  // no more log requests arrive
  m.log_server.reset();
  m.lease.reset();
}

Result<std::unique_ptr<ClusterNode>> ClusterNode::connect(ClusterNodeOptions options) {
  if (Status s = validate_node_id(options.node_id); !s.is_ok()) return s;
  if (options.etcd.empty()) return Status(Errc::kInvalidArgument, "no etcd endpoint");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->layout = Layout(options.prefix);
  EtcdOptions eo;
  eo.endpoints = options.etcd;
  auto etcd = EtcdClient::create(eo);
  if (!etcd.ok()) return etcd.status();
  impl->etcd = std::move(etcd.value());
  auto meta = load_cluster(*impl->etcd, impl->layout);
  if (!meta.ok()) return meta.status();
  impl->meta = meta.value();
  auto secret = read_cluster_secret(options.cluster_key_file);
  if (!secret.ok()) return secret.status();
  impl->secret = std::move(secret.value());
  return std::unique_ptr<ClusterNode>(new ClusterNode(std::move(impl)));
}

const ClusterMeta& ClusterNode::meta() const {
  return impl_->meta;
}
const std::string& ClusterNode::node_id() const {
  return impl_->options.node_id;
}
const Layout& ClusterNode::layout() const {
  return impl_->layout;
}
EtcdClient& ClusterNode::etcd() {
  return *impl_->etcd;
}
Transport* ClusterNode::transport() {
  return impl_->transport.get();
}

Status ClusterNode::start(Engine& engine, std::function<void(Transport&)> services) {
  Impl& m = *impl_;
  if (engine.partition_count() != m.meta.partitions) {
    return Status(Errc::kInvalidArgument,
                  "the engine has " + std::to_string(engine.partition_count()) +
                      " partitions, the cluster " + std::to_string(m.meta.partitions));
  }
  m.engine = &engine;
  m.store = detail::parts_of(engine).store;
  auto listen = split_host_port(m.options.cluster_listen);
  if (!listen) {
    return Status(Errc::kInvalidArgument,
                  "--cluster-listen must be HOST:PORT, not '" + m.options.cluster_listen + "'");
  }
  auto tls =
      issue_node_credentials(m.secret, m.options.node_id, m.options.data_dir + "/cluster-tls");
  if (!tls.ok()) return tls.status();
  TransportOptions to;
  to.node_id = m.options.node_id;
  to.cluster_id = m.meta.cluster_id;
  to.secret = m.secret;
  to.tls = tls.value();
  auto transport = Transport::create(to);
  if (!transport.ok()) return transport.status();
  m.transport = std::move(transport.value());

  // This node as a replica, and its follower.
  m.follower = std::make_unique<FollowerApplier>(
      *m.store, [&m](uint32_t p, uint64_t from, uint64_t to) -> Result<std::vector<std::string>> {
        auto chain = segments(*m.etcd, m.layout, p);
        if (!chain.ok()) return chain.status();
        return read_committed(*m.store, m.call_fn(), chain.value(), p, from, to, 1u << 20,
                              m.options.rpc_timeout);
      });
  LogServer::Options lso;
  // Synced appends of different partitions run on different workers at
  // once, and RocksDB commits concurrent writers with one WAL sync (its
  // write group): more workers, fewer fsyncs per batch.
  lso.workers = 8;
  lso.on_committed = [&m](uint32_t p, uint64_t segment, uint64_t committed) {
    std::shared_lock lock(m.follower_mu);
    if (m.follower) m.follower->on_committed(p, segment, committed);
  };
  m.log_server = std::make_unique<LogServer>(m.store->segments(), lso);
  m.pipes = std::make_unique<AppendPipes>(
      [&m](const std::string& node, std::string payload, AppendPipes::Done done) {
        m.log_rpc(node, std::move(payload), std::move(done));
      });
  m.transport->handle("log", [&m](const std::string& from, std::string payload, Reply reply) {
    m.log_server->handle(from, std::move(payload), std::move(reply));
  });
  if (services) services(*m.transport);
  auto port = m.transport->listen(listen->first, listen->second);
  if (!port.ok()) return port.status();

  NodeLeaseOptions lo;
  lo.ttl = m.options.lease_ttl;
  auto lease = NodeLease::start(*m.etcd, lo);
  if (!lease.ok()) return lease.status();
  m.lease = std::move(lease.value());

  NodeRecord self;
  self.id = m.options.node_id;
  self.http = m.options.http_address;
  self.cluster = listen->first + ":" + std::to_string(port.value());
  self.version = m.options.version;
  self.started_ms = now_ms();
  auto membership = Membership::start(*m.etcd, m.layout, *m.lease, self);
  if (!membership.ok()) return membership.status();
  m.membership = std::move(membership.value());

  for (size_t i = 0; i < std::max<size_t>(1, m.options.transition_threads); ++i) {
    auto s = std::make_unique<Impl::Stripe>();
    Impl::Stripe* raw = s.get();
    s->thread = std::thread([raw] { Impl::run_stripe(*raw); });
    m.stripes.push_back(std::move(s));
  }
  m.connector = std::thread([&m] { m.connect_loop(); });

  LeadershipOptions lso2;
  const auto live = m.membership->live();
  for (uint32_t p = 0; p < m.meta.partitions; ++p) {
    lso2.partitions.insert(p);
    auto pref = m.preferred_of(p, live);
    if (pref && *pref == m.options.node_id) lso2.preferred.insert(p);
  }
  // A store refusing writes (full disk, write error) would refuse every
  // write of a partition led here (cluster_disk_full_test).
  lso2.may_campaign = [&m] { return !m.store->read_only(); };
  LeaderRecord me;
  me.node = self.id;
  me.http = self.http;
  me.cluster = self.cluster;
  PartitionLeadership::Callbacks cb;
  cb.on_elected = [&m](uint32_t p, int64_t epoch) {
    m.enqueue(p, [&m, p, epoch] { m.become_leader(p, epoch); });
  };
  cb.on_lost = [&m](uint32_t p, int64_t epoch) {
    m.enqueue(p, [&m, p, epoch] { m.step_down(p, epoch, false); });
  };
  auto leadership = PartitionLeadership::start(*m.etcd, m.layout, *m.lease, me, lso2, cb);
  if (!leadership.ok()) return leadership.status();
  {
    std::unique_lock lock(m.leadership_mu);
    m.leadership = std::move(leadership.value());
  }
  m.balancer = std::thread([&m] { m.balance_loop(); });
  spdlog::info(
      "cluster: node {} joined cluster {} ({} partitions, replication {}), transport on {}",
      self.id, m.meta.cluster_id, m.meta.partitions, m.meta.replication, self.cluster);
  return {};
}

std::optional<std::string> ClusterNode::leader_of(uint32_t partition) const {
  {
    std::lock_guard lock(impl_->led_mu);
    if (impl_->led.count(partition) != 0) return std::string();
  }
  auto info = impl_->leader_info(partition);
  if (!info || info->node.empty()) return std::nullopt;
  // Our key, but the partition is not handed to the engine yet: recovering.
  if (info->node == impl_->options.node_id) return std::nullopt;
  return info->node;
}

std::optional<std::string> ClusterNode::any_leader() const {
  {
    std::lock_guard lock(impl_->led_mu);
    if (!impl_->led.empty()) return std::string();
  }
  for (uint32_t p = 0; p < impl_->meta.partitions; ++p) {
    auto info = impl_->leader_info(p);
    if (info && !info->node.empty() && info->node != impl_->options.node_id) return info->node;
  }
  return std::nullopt;
}

void ClusterNode::request(const std::string& node, const std::string& service, std::string payload,
                          std::chrono::milliseconds timeout,
                          std::function<void(Result<std::string>)> done) {
  if (!impl_->transport) {
    done(Status(Errc::kUnavailable, "the cluster transport is not started"));
    return;
  }
  auto shared_done = std::make_shared<std::function<void(Result<std::string>)>>(std::move(done));
  Status sent =
      impl_->transport->request(PeerHandle{node}, service, std::move(payload), timeout,
                                [shared_done](Result<std::string> r) { (*shared_done)(r); });
  if (!sent.is_ok()) (*shared_done)(sent);
}

bool ClusterNode::claim_schedule_slot(const std::string& tenant, const std::string& flow_id,
                                      int64_t slot_ms) {
  Impl& m = *impl_;
  const uint32_t p = partition_of_key(tenant, flow_id, m.meta.partitions);
  std::optional<int64_t> epoch;
  {
    std::shared_lock lock(m.leadership_mu);
    if (!m.leadership) return false;
    epoch = m.leadership->my_epoch(p);
  }
  if (!epoch) return false;
  const std::string key = m.layout.prefix() + "/slots/" + tenant + "/" + flow_id;
  const std::string value = pad20(slot_ms);
  // Moves the flow's slot marker forward, fenced by our leader key: fires
  // once per slot cluster-wide, and never from a deposed leader.
  for (int attempt = 0; attempt < 2; ++attempt) {
    TxnRequest txn;
    txn.compare.push_back(
        Compare::create_revision_is(m.layout.leader(p), Compare::Op::kEqual, *epoch));
    if (attempt == 0) {
      txn.compare.push_back(Compare::value_is(key, Compare::Op::kLess, value));
      txn.compare.push_back(Compare::create_revision_is(key, Compare::Op::kNotEqual, 0));
    } else {
      txn.compare.push_back(Compare::create_revision_is(key, Compare::Op::kEqual, 0));
    }
    txn.success.push_back(PutRequest{key, value, 0, false});
    auto r = m.etcd->txn(txn);
    if (!r.ok()) {
      spdlog::warn("schedule slot {} of {}/{}: {}", slot_ms, tenant, flow_id,
                   r.status().to_string());
      return false;
    }
    if (r->succeeded) return true;
  }
  return false;
}

std::vector<PartitionView> ClusterNode::partitions() const {
  std::vector<PartitionView> out;
  const Impl& m = *impl_;
  for (uint32_t p = 0; p < m.meta.partitions; ++p) {
    PartitionView v;
    v.partition = p;
    {
      if (auto info = m.leader_info(p); info && !info->node.empty()) {
        v.leader = info->node;
        v.epoch = info->epoch;
      }
    }
    {
      std::lock_guard lock(m.led_mu);
      auto it = m.logs.find(p);
      if (it != m.logs.end()) {
        v.led_here = true;
        const auto rep = it->second->replication();
        v.committed_lsn = rep.committed_lsn;
        for (const auto& r : rep.replicas) v.replicas.push_back(r.node);
      }
    }
    std::shared_lock follower_lock(m.follower_mu);
    if (m.follower) {
      v.applied_lsn = m.follower->applied(p);
      if (!v.led_here) v.committed_lsn = m.follower->heard(p);
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::map<std::string, NodeRecord> ClusterNode::live_nodes() const {
  if (!impl_->membership) return {};
  return impl_->membership->live();
}

bool ClusterNode::can_write() const {
  const Impl& m = *impl_;
  return m.lease && m.lease->valid() && m.membership != nullptr;
}

}  // namespace yantra::cluster
