// ClusterNode (cluster/node.hpp): wiring, leadership transitions, following
// the controller's placement, peer connections, schedule slot claims, the
// operators' commands and picture (reports of every node, etcd's status).
#include "cluster/node.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "actors/engine.hpp"
#include "actors/internal/parts.hpp"
#include "base/errc.hpp"
#include "base/host_port.hpp"
#include "base/metrics.hpp"
#include "base/thread_name.hpp"
#include "base/time.hpp"
#include "cluster/append_pipe.hpp"
#include "cluster/controller.hpp"
#include "cluster/errc.hpp"
#include "cluster/etcd_client.hpp"
#include "cluster/follower.hpp"
#include "cluster/leadership.hpp"
#include "cluster/log_recovery.hpp"
#include "cluster/log_server.hpp"
#include "cluster/log_trim.hpp"
#include "cluster/membership.hpp"
#include "cluster/node_lease.hpp"
#include "cluster/node_metrics.hpp"
#include "cluster/pki.hpp"
#include "cluster/prefix_mirror.hpp"
#include "cluster/replicated_log.hpp"
#include "cluster/snapshot_transfer.hpp"
#include "cluster/transport.hpp"
#include "runtime/ids.hpp"
#include "storage/partition_batch.hpp"
#include "storage/segment_store.hpp"
#include "storage/store.hpp"
#include "yantra/v1/log_rpc.pb.h"
#include "yantra/v1/node_status.pb.h"

namespace yantra::cluster {
namespace {

uint64_t score(uint32_t partition, const std::string& node) {
  return rendezvous_score(partition, node);
}

// HOST:PORT as peers parse it (base/host_port.hpp): an IPv6 host bracketed.
std::string host_port(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
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

// Requests for this node's report ("status" service) waiting for the report
// worker; more are refused. Each wake answers all that wait with one report.
constexpr size_t kMaxPendingReports = 64;
// How long a request waits for the link to a live node that is not
// connected (a node that just joined is linked within ~0.2-0.5 s).
constexpr std::chrono::milliseconds kMaxLinkWait{2000};

// This process's CPU time (getrusage: no file to read) and resident set
// (/proc/self/statm's second field, in pages): both cheap enough to read on
// every report.
void process_load(NodeLoad& load) {
  struct rusage ru {};
  if (::getrusage(RUSAGE_SELF, &ru) == 0) {
    load.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                       static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0;
  uint64_t resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    load.rss_bytes = resident_pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  }
}

std::string to_wire(const NodeReport& r) {
  v1::NodeReport pb;
  pb.set_node(r.node);
  pb.set_version(r.version);
  pb.set_at_ms(r.at_ms);
  auto* load = pb.mutable_load();
  load->set_active_executions(r.load.active_executions);
  load->set_executions_started(r.load.executions_started);
  load->set_executions_finished(r.load.executions_finished);
  load->set_cpu_seconds(r.load.cpu_seconds);
  load->set_rss_bytes(r.load.rss_bytes);
  for (const auto& p : r.partitions) {
    auto* q = pb.add_partitions();
    q->set_partition(p.partition);
    q->set_leads(p.leads);
    q->set_applied_lsn(p.applied_lsn);
    q->set_durable_lsn(p.durable_lsn);
    q->set_segment(p.segment);
    q->set_committed_lsn(p.committed_lsn);
    for (const auto& n : p.segment_replicas) q->add_segment_replicas(n);
  }
  std::string out;
  pb.SerializeToString(&out);
  return out;
}

Result<NodeReport> from_wire(const std::string& from, const std::string& bytes) {
  v1::NodeReport pb;
  if (!pb.ParseFromString(bytes)) {
    return Status(ClusterErrc::kProtocolError, from + " answered a report that does not parse");
  }
  NodeReport r;
  r.node = pb.node();
  r.version = pb.version();
  r.at_ms = pb.at_ms();
  r.load.active_executions = pb.load().active_executions();
  r.load.executions_started = pb.load().executions_started();
  r.load.executions_finished = pb.load().executions_finished();
  r.load.cpu_seconds = pb.load().cpu_seconds();
  r.load.rss_bytes = pb.load().rss_bytes();
  for (const auto& q : pb.partitions()) {
    ReplicaPosition p;
    p.partition = q.partition();
    p.leads = q.leads();
    p.applied_lsn = q.applied_lsn();
    p.durable_lsn = q.durable_lsn();
    p.segment = q.segment();
    p.committed_lsn = q.committed_lsn();
    p.segment_replicas.assign(q.segment_replicas().begin(), q.segment_replicas().end());
    r.partitions.push_back(std::move(p));
  }
  return r;
}

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
  std::thread trimmer;

  // Trimming: one round at a time (the loop, trim_now), and each led
  // partition's positions of the previous round (log_trim.hpp).
  std::mutex trim_mu;
  std::map<uint32_t, TrimPositions> trim_previous;

  // Requests to a live node this one is not connected to yet (it just
  // joined, or the link is being re-made): the connector sends them once
  // the link is up, or fails them with the original error at their
  // deadline (at most kMaxLinkWait), instead of failing at once.
  struct Waiting {
    std::string node;
    std::string service;
    std::string payload;
    std::chrono::steady_clock::time_point deadline;
    std::chrono::steady_clock::time_point timeout_at;
    std::function<void(Result<std::string>)> done;
    Status why;
  };
  std::mutex waiting_mu;
  std::vector<Waiting> waiting;

  // Sends the waiting requests whose peer is connected now; fails those
  // past their deadline (or all, when stopping).
  void retry_waiting() {
    std::vector<Waiting> now;
    {
      std::lock_guard lock(waiting_mu);
      now.swap(waiting);
    }
    const auto t = std::chrono::steady_clock::now();
    std::vector<Waiting> keep;
    for (auto& w : now) {
      const auto stats = transport->peer_stats(w.node);
      if (!stopping && stats && stats->connected) {
        const auto left =
            std::max(std::chrono::milliseconds(1),
                     std::chrono::duration_cast<std::chrono::milliseconds>(w.timeout_at - t));
        auto shared_done =
            std::make_shared<std::function<void(Result<std::string>)>>(std::move(w.done));
        Status sent = transport->request(
            PeerHandle{w.node}, w.service, std::move(w.payload), left,
            [shared_done](Result<std::string> r) { (*shared_done)(std::move(r)); });
        if (!sent.is_ok()) (*shared_done)(sent);
      } else if (stopping || t >= w.deadline) {
        w.done(w.why);
      } else {
        keep.push_back(std::move(w));
      }
    }
    if (keep.empty()) return;
    std::lock_guard lock(waiting_mu);
    for (auto& w : keep) waiting.push_back(std::move(w));
  }
  bool any_waiting() {
    std::lock_guard lock(waiting_mu);
    return !waiting.empty();
  }

  // The controller's records as etcd's watches last said (placement,
  // operators' node states, rebalance requests), parsed; and the
  // controller candidate of this node.
  std::unique_ptr<PrefixMirror> placement_mirror;
  std::unique_ptr<PrefixMirror> admin_mirror;
  std::unique_ptr<PrefixMirror> rebalance_mirror;
  mutable std::mutex records_mu;
  std::map<uint32_t, std::pair<PlacementRecord, int64_t>> placement;
  std::map<std::string, NodeAdminState> admin;
  int64_t rebalance_revision = 0;
  std::unique_ptr<Controller> controller;
  std::atomic<Controller*> controller_ptr{nullptr};
  // When this node first saw each known node not live (node states).
  mutable std::mutex down_mu;
  mutable std::map<std::string, std::chrono::steady_clock::time_point> down_since;

  // The "status" service: its handler runs on a CAF thread, and a report
  // reads the store, so requests wait here for the report thread.
  std::mutex report_mu;
  std::condition_variable report_cv;
  std::vector<Reply> report_waiting;
  bool report_stop = false;
  std::thread report_thread;

  void queue_report(Reply reply) {
    {
      std::lock_guard lock(report_mu);
      if (!report_stop && report_waiting.size() < kMaxPendingReports) {
        report_waiting.push_back(std::move(reply));
        report_cv.notify_one();
        return;
      }
    }
    reply(Status(Errc::kUnavailable, "this node is stopping or has too many report requests"));
  }

  void report_loop(const ClusterNode& node) {
    std::unique_lock lock(report_mu);
    for (;;) {
      report_cv.wait(lock, [this] { return report_stop || !report_waiting.empty(); });
      if (report_stop) break;
      std::vector<Reply> replies = std::move(report_waiting);
      report_waiting.clear();
      lock.unlock();
      // One report answers every request that waited for it.
      Result<std::string> answer = Status(Errc::kUnavailable, "no report");
      if (auto r = node.report(); r.ok()) {
        answer = to_wire(r.value());
      } else {
        answer = r.status();
      }
      for (auto& reply : replies) reply(answer);
      lock.lock();
    }
    for (auto& reply : report_waiting) reply(Status(Errc::kUnavailable, "this node is stopping"));
    report_waiting.clear();
  }

  void stop_reports() {
    {
      std::lock_guard lock(report_mu);
      report_stop = true;
    }
    report_cv.notify_all();
    if (report_thread.joinable()) report_thread.join();
  }

  void records_changed() {
    if (Controller* c = controller_ptr.load()) c->poke();
    maint_cv.notify_all();
  }

  void load_placement() {
    std::map<uint32_t, std::pair<PlacementRecord, int64_t>> parsed;
    for (const auto& [key, kv] : placement_mirror->snapshot()) {
      auto p = layout.partition_of_placement(key);
      if (!p || *p >= meta.partitions) continue;
      auto rec = parse_placement_record(kv.value, key);
      if (!rec.ok()) {
        spdlog::warn("cluster: {}", rec.status().to_string());
        continue;
      }
      parsed[*p] = {std::move(rec.value()), kv.mod_revision};
    }
    std::lock_guard lock(records_mu);
    placement = std::move(parsed);
  }

  void load_admin() {
    std::map<std::string, NodeAdminState> parsed;
    for (const auto& [key, kv] : admin_mirror->snapshot()) {
      auto id = layout.node_id_of_admin(key);
      if (!id) continue;
      auto st = parse_node_admin_record(kv.value, key);
      if (!st.ok()) {
        spdlog::warn("cluster: {}", st.status().to_string());
        continue;
      }
      parsed[*id] = st.value();
    }
    std::lock_guard lock(records_mu);
    admin = std::move(parsed);
  }

  void load_rebalance() {
    int64_t rev = 0;
    for (const auto& [key, kv] : rebalance_mirror->snapshot()) {
      if (key == layout.rebalance()) rev = kv.mod_revision;
    }
    std::lock_guard lock(records_mu);
    rebalance_revision = rev;
  }

  std::optional<PlacementRecord> placement_of(uint32_t partition) const {
    std::lock_guard lock(records_mu);
    auto it = placement.find(partition);
    if (it == placement.end()) return std::nullopt;
    return it->second.first;
  }

  NodeAdminState admin_of(const std::string& id) const {
    std::lock_guard lock(records_mu);
    auto it = admin.find(id);
    return it == admin.end() ? NodeAdminState::kActive : it->second;
  }

  Controller::View controller_view() const {
    Controller::View v;
    v.live = membership->live();
    std::lock_guard lock(records_mu);
    v.admin = admin;
    v.placement = placement;
    v.rebalance_revision = rebalance_revision;
    return v;
  }

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

  // The follower's way past a trimmed log: the chain in etcd says where the
  // log starts now (its oldest record) and who holds the partition (the
  // newest segment's replicas, the writer last: it is busy appending).
  FollowerApplier::Snapshots snapshot_hooks() {
    FollowerApplier::Snapshots s;
    s.partition_of = [n = meta.partitions](std::string_view id) { return partition_of(id, n); };
    s.locate = [this](uint32_t p) -> Result<FollowerApplier::SnapshotSource> {
      auto chain = segments(*etcd, layout, p);
      if (!chain.ok()) return chain.status();
      if (chain->empty()) return Status(Errc::kNotFound, "no segment recorded");
      FollowerApplier::SnapshotSource out;
      out.first_live = chain->front().record.first_lsn;
      const SegmentRecord& newest = chain->back().record;
      for (const auto& r : newest.replicas) {
        if (r != options.node_id && r != newest.writer) out.replicas.push_back(r);
      }
      if (newest.writer != options.node_id) out.replicas.push_back(newest.writer);
      return out;
    };
    s.install = [this](uint32_t p, const std::string& node) -> Result<FollowerApplier::Installed> {
      SnapshotTransferOptions o;
      o.timeout = options.rpc_timeout;
      auto r = install_snapshot(
          *store, call_fn(), node, p,
          [n = meta.partitions](std::string_view id) { return partition_of(id, n); }, o);
      if (!r.ok()) return r.status();
      return FollowerApplier::Installed{r->lsn, r->bytes};
    };
    return s;
  }

  // One round of trimming (docs/cluster.md, "Trimming"): for each partition
  // led here whose chain has a sealed record to drop, the trim point from two
  // rounds of the replicas' reports (log_trim.hpp); the chain's records at or
  // below it are dropped by a fenced txn (segment_chain.hpp), then their
  // replicas' copies trimmed (LogTrim; a replica down now keeps its copy).
  size_t trim_round(ClusterNode& self) {
    std::lock_guard round(trim_mu);
    std::map<uint32_t, int64_t> led_now;
    {
      std::lock_guard lock(led_mu);
      led_now = led;
    }
    for (auto it = trim_previous.begin(); it != trim_previous.end();) {
      it = led_now.count(it->first) == 0 ? trim_previous.erase(it) : std::next(it);
    }
    std::optional<std::map<std::string, Result<NodeReport>>> reports;
    size_t total = 0;
    for (const auto& [p, epoch] : led_now) {
      if (stopping) break;
      auto chain = segments(*etcd, layout, p);
      if (!chain.ok()) continue;
      if (chain->empty() || chain->back().record.epoch != epoch ||
          trimmable(chain.value(), UINT64_MAX).empty()) {
        trim_previous.erase(p);
        continue;
      }
      if (!reports) {
        // Every node's report at once, the first time a partition needs them.
        auto promise = std::make_shared<std::promise<std::map<std::string, Result<NodeReport>>>>();
        auto future = promise->get_future();
        self.gather_reports(options.rpc_timeout,
                            [promise](std::map<std::string, Result<NodeReport>> all) {
                              promise->set_value(std::move(all));
                            });
        if (future.wait_for(options.rpc_timeout + std::chrono::milliseconds(500)) !=
            std::future_status::ready) {
          break;
        }
        reports = future.get();
      }
      TrimPositions now;
      for (const auto& [node, r] : *reports) {
        if (!r.ok()) continue;
        for (const ReplicaPosition& pos : r->partitions) {
          if (pos.partition == p) now[node] = {pos.applied_lsn, pos.segment, pos.durable_lsn};
        }
      }
      std::optional<uint64_t> point;
      if (auto before = trim_previous.find(p); before != trim_previous.end()) {
        point = trim_point(chain->back().record.replicas, before->second, now);
      }
      trim_previous[p] = std::move(now);
      if (!point) continue;
      auto dropped = trim_chain(*etcd, layout, p, chain.value(), *point, epoch);
      if (!dropped.ok()) {
        spdlog::warn("partition {}: trimming the chain at {} failed: {}", p, *point,
                     dropped.status().to_string());
        continue;
      }
      if (dropped->empty()) continue;
      total += dropped->size();
      count_trimmed_segments(p, dropped->size());
      spdlog::info("partition {}: trimmed {} segment(s) up to lsn {} (every replica applied {})", p,
                   dropped->size(), *dropped->back().record.sealed_end, *point);
      for (const SegmentEntry& e : dropped.value()) {
        v1::LogRequest req;
        req.mutable_trim()->set_partition(p);
        req.mutable_trim()->set_segment(static_cast<uint64_t>(e.record.epoch));
        req.mutable_trim()->set_sealing_epoch(static_cast<uint64_t>(epoch));
        const std::string payload = req.SerializeAsString();
        for (const std::string& node : e.record.replicas) {
          auto raw = log_call(node, payload, options.rpc_timeout);
          v1::LogReply reply;
          if (!raw.ok() || !reply.ParseFromString(raw.value()) || !reply.trimmed()) {
            spdlog::warn(
                "partition {}: {} did not trim its copy of segment {}: {}", p, node, e.record.epoch,
                raw.ok() ? reply.code() + " " + reply.message() : raw.status().to_string());
          }
        }
      }
    }
    return total;
  }

  void trim_loop(ClusterNode& self) {
    name_this_thread("y-trim");
    std::unique_lock lock(maint_mu);
    while (!stopping) {
      maint_cv.wait_for(lock, options.trim_interval, [this] { return stopping.load(); });
      if (stopping) break;
      lock.unlock();
      trim_round(self);
      lock.lock();
    }
  }

  // A new leader whose state is behind the trimmed log (it never held the
  // partition, or lagged): the snapshot from a replica of the newest segment
  // (the follower of `partition` is paused: nothing else writes it).
  Status install_before_leading(uint32_t partition, const std::vector<SegmentEntry>& chain) {
    const uint64_t first_live = chain.front().record.first_lsn;
    auto applied = storage::applied_lsn(*store, partition);
    if (!applied.ok()) return applied.status();
    if (applied.value() != 0) {
      if (Status st = storage::drop_partition(
              *store, partition,
              [n = meta.partitions](std::string_view id) { return partition_of(id, n); });
          !st.is_ok()) {
        return st;
      }
    }
    Status last(Errc::kUnavailable, "no replica to install a snapshot from");
    SnapshotTransferOptions o;
    o.timeout = options.rpc_timeout;
    for (const std::string& node : chain.back().record.replicas) {
      if (node == options.node_id) continue;
      auto r = install_snapshot(
          *store, call_fn(), node, partition,
          [n = meta.partitions](std::string_view id) { return partition_of(id, n); }, o);
      if (r.ok() && r->lsn + 1 >= first_live) {
        spdlog::info("partition {}: installed a snapshot at lsn {} from {} before leading",
                     partition, r->lsn, node);
        count_snapshot_transfer(partition, r->bytes);
        return Status::ok();
      }
      last = r.ok() ? Status(Errc::kUnavailable, node + "'s snapshot is older than the log")
                    : r.status();
      // A partial or too old import leaves no marker: the next one starts over.
      if (r.ok()) {
        (void)storage::drop_partition(
            *store, partition,
            [n = meta.partitions](std::string_view id) { return partition_of(id, n); });
      }
    }
    return last;
  }

  LogCall call_fn() {
    return [this](const std::string& node, std::string payload, std::chrono::milliseconds t) {
      return log_call(node, std::move(payload), t);
    };
  }

  // The replicas of a segment this node opens for `partition`: itself
  // first, then the placement's (a replica may be down: the segment commits
  // on any W). Before the controller wrote a placement: live nodes by
  // rendezvous rank, then known ones that are down.
  std::vector<std::string> choose_replicas(uint32_t partition) {
    std::vector<std::string> out{options.node_id};
    if (auto pl = placement_of(partition)) {
      for (const auto& n : pl->replicas) {
        if (out.size() >= meta.replication) break;
        if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
      }
      return out;
    }
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
      if (!rec.writable) continue;  // its store refuses writes
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
      ro.install_snapshot = [this, partition](const std::vector<SegmentEntry>& chain) {
        return install_before_leading(partition, chain);
      };
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
        auto hp = parse_host_port(rec.cluster);
        if (!hp.ok()) continue;
        auto peer = transport->connect(hp->host, hp->port, id);
        if (!peer.ok()) {
          spdlog::debug("cluster: connect to {} at {} failed: {}", id, rec.cluster,
                        peer.status().to_string());
        } else {
          spdlog::info("cluster: connected to node {} at {}", id, rec.cluster);
        }
      }
      retry_waiting();
      // Sooner while requests wait for a link.
      const auto pause =
          any_waiting() ? std::chrono::milliseconds(20) : std::chrono::milliseconds(200);
      std::unique_lock lock(maint_mu);
      maint_cv.wait_for(lock, pause, [&] { return stopping.load(); });
    }
    retry_waiting();  // stopping: fails what still waits
  }

  // Whether this node should lead `partition` now: the placement's
  // preferred node, or before there is a placement the top-ranked live node.
  bool preferred_here(uint32_t partition, const Membership::LiveSet& live) const {
    if (auto pl = placement_of(partition)) {
      return pl->preferred == options.node_id &&
             admin_of(options.node_id) == NodeAdminState::kActive;
    }
    auto pref = preferred_of(partition, live);
    return pref && *pref == options.node_id;
  }

  // A node is ready to take a leadership over: live, active, and connected.
  bool ready(const std::string& node, const Membership::LiveSet& live) const {
    auto it = live.find(node);
    return it != live.end() && it->second.writable && admin_of(node) == NodeAdminState::kActive &&
           transport && transport->peer_stats(node).has_value();
  }

  // Follows the placement (every 500 ms, and at once when it changes):
  // campaigns at once only where this node is preferred; hands a partition
  // it leads to the preferred node once that node is ready (resign: the
  // preferred node's campaign wins, the executions recover there from the
  // replicated log); and when the open segment's replicas are not the
  // placement's, hands the partition to a new epoch of its own (resign
  // with no holdoff, campaign again at once) whose segment opens on them.
  void follow_loop() {
    while (!stopping) {
      {
        std::unique_lock lock(maint_mu);
        maint_cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return stopping.load(); });
      }
      if (stopping) break;
      const auto live = membership->live();
      if (live.empty()) continue;
      std::map<uint32_t, int64_t> mine;
      // A node whose store refuses writes (full disk, write error) leads
      // nothing: it would refuse every write of its partitions, which the
      // other replicas can take (cluster_disk_full_test).
      const bool writable = !store->read_only();
      membership->set_writable(writable);  // so that no one hands it a partition
      {
        std::shared_lock lead_lock(leadership_mu);
        if (!leadership) break;
        for (uint32_t p = 0; p < meta.partitions; ++p) {
          leadership->set_preferred(p, writable && preferred_here(p, live));
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
      size_t moves = 0;
      for (const auto& [p, epoch] : mine) {
        if (stopping || moves >= 8) break;
        std::set<std::string> have;
        {
          // Only partitions fully handed to the engine (not mid-recovery).
          std::lock_guard lock(led_mu);
          auto it = logs.find(p);
          if (it == logs.end()) continue;
          for (const auto& r : it->second->replication().replicas) have.insert(r.node);
        }
        auto pl = placement_of(p);
        if (!pl) {
          // No controller has placed it yet: prefer the top-ranked live node.
          auto pref = preferred_of(p, live);
          if (pref && *pref != options.node_id && ready(*pref, live)) {
            spdlog::info("partition {}: handing leadership to its preferred node {}", p, *pref);
            resign(p);
            ++moves;
          }
          continue;
        }
        if (pl->preferred != options.node_id && ready(pl->preferred, live)) {
          spdlog::info("partition {}: handing leadership to its preferred node {}", p,
                       pl->preferred);
          resign(p);
          ++moves;
          continue;
        }
        const auto want_list = choose_replicas(p);
        const std::set<std::string> want(want_list.begin(), want_list.end());
        if (want != have && want.size() >= meta.write_quorum) {
          spdlog::info(
              "partition {}: the placement names other replicas than its open segment's; "
              "opening a new segment on them (new epoch)",
              p);
          std::shared_lock lock(leadership_mu);
          if (leadership) (void)leadership->resign(p, std::chrono::milliseconds(0));
          ++moves;
        }
      }
    }
  }

  // Nodes this node knows of: live, named by an operator's state, the
  // placement, or a leader key.
  std::set<std::string> known_nodes(const Membership::LiveSet& live) const {
    std::set<std::string> out;
    for (const auto& [id, rec] : live) out.insert(id);
    {
      std::lock_guard lock(records_mu);
      for (const auto& [id, st] : admin) out.insert(id);
      for (const auto& [p, entry] : placement) {
        for (const auto& n : entry.first.replicas) out.insert(n);
      }
    }
    std::lock_guard lock(known_mu);
    for (const auto& id : known) out.insert(id);
    return out;
  }
};

ClusterNode::ClusterNode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ClusterNode::~ClusterNode() {
  Impl& m = *impl_;
  m.stopping = true;
  m.stop_reports();  // a report reads the follower and the logs
  m.maint_cv.notify_all();
  if (m.connector.joinable()) m.connector.join();
  if (m.balancer.joinable()) m.balancer.join();
  if (m.trimmer.joinable()) m.trimmer.join();
  m.controller_ptr = nullptr;
  m.controller.reset();
  m.placement_mirror.reset();
  m.admin_mirror.reset();
  m.rebalance_mirror.reset();
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
  auto listen = parse_host_port(m.options.cluster_listen);
  if (!listen.ok()) {
    return Status(Errc::kInvalidArgument, "--cluster-listen: " + listen.status().message());
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
      *m.store,
      [&m](uint32_t p, uint64_t from, uint64_t to) -> Result<std::vector<std::string>> {
        auto chain = segments(*m.etcd, m.layout, p);
        if (!chain.ok()) return chain.status();
        return read_committed(*m.store, m.call_fn(), chain.value(), p, from, to, 1u << 20,
                              m.options.rpc_timeout);
      },
      m.snapshot_hooks());
  LogServer::Options lso;
  // Synced appends of different partitions run on different workers at
  // once, and RocksDB commits concurrent writers with one WAL sync (its
  // write group): more workers, fewer fsyncs per batch.
  lso.workers = 8;
  lso.on_committed = [&m](uint32_t p, uint64_t segment, uint64_t committed) {
    std::shared_lock lock(m.follower_mu);
    if (m.follower) m.follower->on_committed(p, segment, committed);
  };
  // Partition snapshots for new replicas (LogSnapshot), read from this store.
  lso.snapshot_store = m.store;
  lso.partition_of = [n = m.meta.partitions](std::string_view id) { return partition_of(id, n); };
  m.log_server = std::make_unique<LogServer>(m.store->segments(), lso);
  m.pipes = std::make_unique<AppendPipes>(
      [&m](const std::string& node, std::string payload, AppendPipes::Done done) {
        m.log_rpc(node, std::move(payload), std::move(done));
      });
  m.transport->handle("log", [&m](const std::string& from, std::string payload, Reply reply) {
    m.log_server->handle(from, std::move(payload), std::move(reply));
  });
  // Other nodes' operators ask for this node's report (gather_reports).
  m.report_thread = std::thread([&m, this] { m.report_loop(*this); });
  m.transport->handle("status", [&m](const std::string&, std::string, Reply reply) {
    m.queue_report(std::move(reply));
  });
  if (services) services(*m.transport);
  auto port = m.transport->listen(listen->host, listen->port);
  if (!port.ok()) return port.status();

  NodeLeaseOptions lo;
  lo.ttl = m.options.lease_ttl;
  auto lease = NodeLease::start(*m.etcd, lo);
  if (!lease.ok()) return lease.status();
  m.lease = std::move(lease.value());

  NodeRecord self;
  self.id = m.options.node_id;
  self.http = m.options.http_address;
  self.cluster = host_port(listen->host, port.value());
  self.version = m.options.version;
  self.started_ms = now_ms();
  auto membership = Membership::start(*m.etcd, m.layout, *m.lease, self);
  if (!membership.ok()) return membership.status();
  m.membership = std::move(membership.value());

  // The controller's records, then this node's controller candidate.
  m.placement_mirror = std::make_unique<PrefixMirror>(
      *m.etcd, m.layout.placements(), [&m](const std::vector<PrefixMirror::Change>&, int64_t) {
        m.load_placement();
        m.records_changed();
      });
  m.admin_mirror = std::make_unique<PrefixMirror>(
      *m.etcd, m.layout.node_admins(), [&m](const std::vector<PrefixMirror::Change>&, int64_t) {
        m.load_admin();
        m.records_changed();
      });
  m.rebalance_mirror = std::make_unique<PrefixMirror>(
      *m.etcd, m.layout.rebalance(), [&m](const std::vector<PrefixMirror::Change>&, int64_t) {
        m.load_rebalance();
        m.records_changed();
      });
  for (PrefixMirror* mirror :
       {m.placement_mirror.get(), m.admin_mirror.get(), m.rebalance_mirror.get()}) {
    if (!mirror->wait_synced(std::chrono::seconds(5))) {
      return Status(ClusterErrc::kTimeout,
                    "the placement records did not arrive from etcd within 5 s");
    }
  }
  ControllerOptions co;
  co.node_id = m.options.node_id;
  co.down_grace = m.options.down_grace;
  m.controller = std::make_unique<Controller>(*m.etcd, m.layout, *m.lease, m.meta, co,
                                              [&m] { return m.controller_view(); });
  m.controller_ptr = m.controller.get();

  for (size_t i = 0; i < std::max<size_t>(1, m.options.transition_threads); ++i) {
    auto s = std::make_unique<Impl::Stripe>();
    Impl::Stripe* raw = s.get();
    s->thread = std::thread([raw] {
      name_this_thread("y-transition");
      Impl::run_stripe(*raw);
    });
    m.stripes.push_back(std::move(s));
  }
  m.connector = std::thread([&m] {
    name_this_thread("y-connector");
    m.connect_loop();
  });

  LeadershipOptions lso2;
  const auto live = m.membership->live();
  for (uint32_t p = 0; p < m.meta.partitions; ++p) {
    lso2.partitions.insert(p);
    if (m.preferred_here(p, live)) lso2.preferred.insert(p);
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
  m.balancer = std::thread([&m] { m.follow_loop(); });
  if (m.options.trim_interval.count() > 0) {
    m.trimmer = std::thread([&m, this] { m.trim_loop(*this); });
  }
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
  Impl& m = *impl_;
  auto shared_done = std::make_shared<std::function<void(Result<std::string>)>>(std::move(done));
  // A live node not connected (yet, or again): wait for the connector's link.
  const auto stats = m.transport->peer_stats(node);
  if ((!stats || !stats->connected) && !m.stopping && m.membership &&
      m.membership->live().count(node) != 0) {
    const auto now = std::chrono::steady_clock::now();
    Impl::Waiting w{node,
                    service,
                    std::move(payload),
                    now + std::min<std::chrono::milliseconds>(timeout, kMaxLinkWait),
                    now + timeout,
                    [shared_done](Result<std::string> r) { (*shared_done)(std::move(r)); },
                    Status(TransportErrc::kPeerUnavailable,
                           "node " + node + " is not connected now (waited for the link)")};
    {
      std::lock_guard lock(m.waiting_mu);
      m.waiting.push_back(std::move(w));
    }
    m.maint_cv.notify_all();
    return;
  }
  Status sent = m.transport->request(PeerHandle{node}, service, std::move(payload), timeout,
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

Result<NodeReport> ClusterNode::report() const {
  const Impl& m = *impl_;
  if (m.engine == nullptr || m.store == nullptr) {
    return Status(Errc::kUnavailable, "the node is not started");
  }
  NodeReport r;
  r.node = m.options.node_id;
  r.version = m.options.version;
  r.at_ms = now_ms();
  const EngineStats stats = m.engine->stats();
  r.load.active_executions = stats.active_actors;
  r.load.executions_started = stats.started;
  r.load.executions_finished = stats.finished;
  process_load(r.load);
  const storage::SegmentStore& segments = m.store->segments();
  for (uint32_t p = 0; p < m.meta.partitions; ++p) {
    ReplicaPosition pos;
    pos.partition = p;
    uint64_t open_segment = 0;  // a segment's id is its writer's epoch
    {
      std::lock_guard lock(m.led_mu);
      auto it = m.logs.find(p);
      if (it != m.logs.end()) {
        pos.leads = true;
        const auto rep = it->second->replication();
        pos.committed_lsn = rep.committed_lsn;
        for (const auto& replica : rep.replicas) pos.segment_replicas.push_back(replica.node);
        if (auto e = m.led.find(p); e != m.led.end())
          open_segment = static_cast<uint64_t>(e->second);
      }
    }
    if (!pos.leads) {
      if (auto info = m.leader_info(p); info && !info->node.empty()) {
        open_segment = static_cast<uint64_t>(info->epoch);
      }
    }
    {
      std::shared_lock lock(m.follower_mu);
      if (m.follower) {
        pos.applied_lsn = m.follower->applied(p);
        if (!pos.leads) pos.committed_lsn = m.follower->heard(p);
      }
    }
    // The open segment (one point read); else the newest segment held.
    bool found = false;
    if (open_segment != 0) {
      if (auto info = segments.info(p, open_segment); info.ok()) {
        pos.segment = open_segment;
        pos.durable_lsn = info->last_lsn;
        found = true;
      }
    }
    if (!found) {
      if (auto all = segments.segments(p); all.ok()) {
        for (const auto& s : all.value()) {
          if (s.empty() || s.segment < pos.segment) continue;
          pos.segment = s.segment;
          pos.durable_lsn = s.last_lsn;
        }
      }
    }
    r.partitions.push_back(std::move(pos));
  }
  return r;
}

size_t ClusterNode::trim_now() {
  return impl_->trim_round(*this);
}

void ClusterNode::gather_reports(
    std::chrono::milliseconds timeout,
    std::function<void(std::map<std::string, Result<NodeReport>>)> done) {
  struct Gather {
    std::mutex mu;
    std::map<std::string, Result<NodeReport>> got;
    size_t left = 0;
    std::function<void(std::map<std::string, Result<NodeReport>>)> done;
  };
  auto g = std::make_shared<Gather>();
  g->done = std::move(done);
  std::vector<std::string> others;
  for (const auto& [id, rec] : live_nodes()) {
    if (id != node_id()) others.push_back(id);
  }
  g->left = others.size() + 1;  // and this node's own
  auto arrived = [g](const std::string& node, Result<NodeReport> r) {
    std::function<void(std::map<std::string, Result<NodeReport>>)> call;
    std::map<std::string, Result<NodeReport>> all;
    {
      std::lock_guard lock(g->mu);
      g->got.insert_or_assign(node, std::move(r));
      if (--g->left != 0) return;
      all = std::move(g->got);
      call = std::move(g->done);
    }
    call(std::move(all));
  };
  std::string payload;
  v1::NodeReportRequest().SerializeToString(&payload);
  for (const auto& node : others) {
    request(node, "status", payload, timeout, [arrived, node](Result<std::string> r) {
      if (!r.ok()) return arrived(node, r.status());
      arrived(node, from_wire(node, r.value()));
    });
  }
  arrived(node_id(), report());
}

std::vector<EtcdEndpointStatus> ClusterNode::etcd_status(std::chrono::milliseconds timeout) {
  // A client of its own: its deadline is `timeout`, not the data path's.
  EtcdOptions eo;
  eo.endpoints = impl_->options.etcd;
  eo.request_timeout = timeout;
  auto probe = EtcdClient::create(eo);
  std::vector<EtcdEndpointStatus> out;
  if (!probe.ok()) {
    for (const auto& url : eo.endpoints) {
      EtcdEndpointStatus s;
      s.url = url;
      s.error = probe.status().to_string();
      out.push_back(std::move(s));
    }
    return out;
  }
  EtcdClient& client = *probe.value();
  // One thread per endpoint (a handful), so the slowest costs `timeout`
  // whatever the count.
  std::vector<std::future<Result<MemberStatus>>> asked;
  for (const auto& url : eo.endpoints) {
    asked.push_back(std::async(std::launch::async, [&client, url] { return client.status(url); }));
  }
  for (size_t i = 0; i < asked.size(); ++i) {
    EtcdEndpointStatus s;
    s.url = eo.endpoints[i];
    auto r = asked[i].get();
    if (r.ok()) {
      s.reachable = true;
      s.member_id = r->header.member_id;
      s.leader_id = r->leader;
      s.db_size_bytes = r->db_size;
      s.raft_index = r->raft_index;
      s.raft_term = r->raft_term;
      s.version = r->version;
    } else {
      s.error = r.status().to_string();
    }
    out.push_back(std::move(s));
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

std::vector<NodeStatus> ClusterNode::nodes() const {
  const Impl& m = *impl_;
  if (!m.membership) return {};
  const auto live = m.membership->live();
  const auto known = m.known_nodes(live);
  std::map<std::string, size_t> leads;
  for (uint32_t p = 0; p < m.meta.partitions; ++p) {
    if (auto info = m.leader_info(p); info && !info->node.empty()) ++leads[info->node];
  }
  std::map<std::string, size_t> replicas;
  std::map<std::string, size_t> preferred;
  std::map<std::string, NodeAdminState> admin;
  {
    std::lock_guard lock(m.records_mu);
    admin = m.admin;
    for (const auto& [p, entry] : m.placement) {
      for (const auto& n : entry.first.replicas) ++replicas[n];
      ++preferred[entry.first.preferred];
    }
  }
  const auto now = std::chrono::steady_clock::now();
  std::vector<NodeStatus> out;
  std::lock_guard down_lock(m.down_mu);
  for (const auto& id : known) {
    NodeStatus n;
    n.id = id;
    if (auto a = admin.find(id); a != admin.end()) n.admin = a->second;
    auto rec = live.find(id);
    if (rec != live.end()) {
      n.record = rec->second;
      m.down_since.erase(id);
    } else {
      const auto since = m.down_since.emplace(id, now).first->second;
      n.down_for_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - since).count();
    }
    n.leads = leads[id];
    n.replicas = replicas[id];
    n.preferred = preferred[id];
    if (n.admin == NodeAdminState::kRemoved) {
      n.state = "removed";
    } else if (n.record) {
      n.state = n.admin == NodeAdminState::kDraining ? "draining" : "alive";
    } else {
      n.state = n.down_for_ms < m.options.down_grace.count() ? "suspect" : "down";
    }
    n.drained = n.admin != NodeAdminState::kActive && n.leads == 0 && n.replicas == 0;
    out.push_back(std::move(n));
  }
  return out;
}

std::optional<std::string> ClusterNode::controller() const {
  if (!impl_->controller) return std::nullopt;
  std::string holder = impl_->controller->holder();
  if (holder.empty()) return std::nullopt;
  return holder;
}

bool ClusterNode::is_controller() const {
  return impl_->controller && impl_->controller->is_controller();
}

std::optional<PlacementRecord> ClusterNode::placement(uint32_t partition) const {
  return impl_->placement_of(partition);
}

namespace {

Status no_node(const std::string& id) {
  return Status(Errc::kNotFound, "no node '" + id + "' in this cluster");
}

}  // namespace

Result<NodeStatus> ClusterNode::drain(const std::string& id) {
  Impl& m = *impl_;
  const auto live = m.membership->live();
  const auto known = m.known_nodes(live);
  if (known.count(id) == 0) return no_node(id);
  // The others must still make a write quorum for every partition.
  size_t others = 0;
  for (const auto& [n, rec] : live) {
    if (n != id && m.admin_of(n) == NodeAdminState::kActive) ++others;
  }
  if (others < m.meta.write_quorum) {
    return Status(Errc::kConflict, "draining node '" + id + "' would leave " +
                                       std::to_string(others) +
                                       " live active nodes, fewer than the write quorum " +
                                       std::to_string(m.meta.write_quorum));
  }
  auto put = m.etcd->put(
      PutRequest{m.layout.node_admin(id), to_json(NodeAdminState::kDraining), 0, false});
  if (!put.ok()) return put.status();
  spdlog::info("cluster: node {} is draining (operator)", id);
  {
    std::lock_guard lock(m.records_mu);
    m.admin[id] = NodeAdminState::kDraining;  // the mirror follows
  }
  m.records_changed();
  for (auto& n : nodes()) {
    if (n.id == id) return n;
  }
  return no_node(id);
}

Result<NodeStatus> ClusterNode::undrain(const std::string& id) {
  Impl& m = *impl_;
  const auto known = m.known_nodes(m.membership->live());
  if (known.count(id) == 0) return no_node(id);
  auto del = m.etcd->delete_range(DeleteRequest::single(m.layout.node_admin(id)));
  if (!del.ok()) return del.status();
  spdlog::info("cluster: node {} is active again (operator)", id);
  {
    std::lock_guard lock(m.records_mu);
    m.admin.erase(id);
  }
  m.records_changed();
  for (auto& n : nodes()) {
    if (n.id == id) return n;
  }
  return no_node(id);
}

Result<NodeStatus> ClusterNode::remove_node(const std::string& id, std::chrono::milliseconds wait) {
  Impl& m = *impl_;
  auto find = [this, &id]() -> std::optional<NodeStatus> {
    for (auto& n : nodes()) {
      if (n.id == id) return n;
    }
    return std::nullopt;
  };
  auto n = find();
  if (!n) return no_node(id);
  if (n->state == "removed") return *n;
  if (n->record) {
    if (n->admin != NodeAdminState::kDraining) {
      return Status(Errc::kConflict, "node '" + id +
                                         "' is alive and not drained: drain it first (POST "
                                         "/admin/v1/nodes/" +
                                         id + "/drain) or stop it");
    }
    if (!n->drained) {
      return Status(Errc::kConflict, "node '" + id + "' is still draining: it leads " +
                                         std::to_string(n->leads) +
                                         " partitions and the placement names it for " +
                                         std::to_string(n->replicas) + "; retry once both are 0");
    }
  }
  // Replicas first: a draining node is replaced at the controller's next
  // tick (no grace period).
  if (n->admin != NodeAdminState::kDraining) {
    auto put = m.etcd->put(
        PutRequest{m.layout.node_admin(id), to_json(NodeAdminState::kDraining), 0, false});
    if (!put.ok()) return put.status();
    m.records_changed();
  }
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    n = find();
    if (n && n->replicas == 0) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status(Errc::kConflict,
                    "node '" + id + "' is still named by the placement of " +
                        std::to_string(n ? n->replicas : 0) +
                        " partitions (is there a controller, and nodes to take them?); it is "
                        "draining now: retry the removal");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto put =
      m.etcd->put(PutRequest{m.layout.node_admin(id), to_json(NodeAdminState::kRemoved), 0, false});
  if (!put.ok()) return put.status();
  spdlog::info("cluster: node {} removed (operator)", id);
  {
    std::lock_guard lock(m.records_mu);
    m.admin[id] = NodeAdminState::kRemoved;
  }
  m.records_changed();
  n = find();
  if (!n) return no_node(id);
  return *n;
}

namespace {

// Reads P/placement/<p> from etcd: the record and its mod_revision (0 when
// absent).
Result<std::pair<std::optional<PlacementRecord>, int64_t>> read_placement(EtcdClient& etcd,
                                                                          const Layout& layout,
                                                                          uint32_t p) {
  RangeRequest rr;
  rr.key = layout.placement(p);
  auto got = etcd.range(rr);
  if (!got.ok()) return got.status();
  if (got->kvs.empty()) return std::make_pair(std::optional<PlacementRecord>(), int64_t{0});
  auto rec = parse_placement_record(got->kvs.front().value, rr.key);
  if (!rec.ok()) return rec.status();
  return std::make_pair(std::optional<PlacementRecord>(rec.value()), got->kvs.front().mod_revision);
}

// Writes it if the key is still at `revision` (0: absent); kConflict when
// another write came first.
Status write_placement(EtcdClient& etcd, const Layout& layout, uint32_t p,
                       const PlacementRecord& rec, int64_t revision) {
  const std::string key = layout.placement(p);
  TxnRequest txn;
  txn.compare.push_back(revision == 0
                            ? Compare::create_revision_is(key, Compare::Op::kEqual, 0)
                            : Compare::mod_revision_is(key, Compare::Op::kEqual, revision));
  txn.success.push_back(PutRequest{key, to_json(rec), 0, false});
  auto r = etcd.txn(txn);
  if (!r.ok()) return r.status();
  if (!r->succeeded) {
    return Status(Errc::kConflict, "the placement of partition " + std::to_string(p) +
                                       " changed while this request was made; retry");
  }
  return {};
}

}  // namespace

Result<LeaderMove> ClusterNode::move_leader(uint32_t partition, const std::string& node,
                                            std::chrono::milliseconds wait) {
  Impl& m = *impl_;
  if (partition >= m.meta.partitions) {
    return Status(Errc::kNotFound, "no partition " + std::to_string(partition) +
                                       " (the cluster has " + std::to_string(m.meta.partitions) +
                                       ")");
  }
  const auto live = m.membership->live();
  if (m.known_nodes(live).count(node) == 0) return no_node(node);
  if (live.count(node) == 0) {
    return Status(Errc::kConflict, "node '" + node + "' is not alive: it cannot lead");
  }
  if (m.admin_of(node) != NodeAdminState::kActive) {
    return Status(Errc::kConflict,
                  "node '" + node + "' is " + to_string(m.admin_of(node)) + ": undrain it first");
  }
  auto cur = read_placement(*m.etcd, m.layout, partition);
  if (!cur.ok()) return cur.status();
  PlacementRecord rec;
  if (cur->first) rec = *cur->first;
  if (rec.replicas.empty()) rec.replicas = m.choose_replicas(partition);
  if (std::find(rec.replicas.begin(), rec.replicas.end(), node) == rec.replicas.end()) {
    if (rec.replicas.size() < m.meta.replication) {
      rec.replicas.push_back(node);
    } else {
      rec.replicas.back() = node;
    }
  }
  rec.preferred = node;
  if (Status s = write_placement(*m.etcd, m.layout, partition, rec, cur->second); !s.is_ok()) {
    return s;
  }
  spdlog::info("cluster: partition {}: leadership to move to {} (operator)", partition, node);
  m.records_changed();
  LeaderMove out;
  out.placement = rec;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto info = m.leader_info(partition);
    if (info && !info->node.empty()) {
      out.leader = info->node;
      out.epoch = info->epoch;
    } else {
      out.leader.reset();
    }
    out.moved = out.leader && *out.leader == node;
    if (out.moved || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return out;
}

Result<PlacementRecord> ClusterNode::set_replicas(uint32_t partition,
                                                  const std::vector<std::string>& list) {
  Impl& m = *impl_;
  if (partition >= m.meta.partitions) {
    return Status(Errc::kNotFound, "no partition " + std::to_string(partition) +
                                       " (the cluster has " + std::to_string(m.meta.partitions) +
                                       ")");
  }
  if (list.size() < m.meta.write_quorum || list.size() > m.meta.replication) {
    return Status(Errc::kInvalidArgument,
                  "replicas must name " + std::to_string(m.meta.write_quorum) + " to " +
                      std::to_string(m.meta.replication) +
                      " nodes (the write quorum to the replication factor), not " +
                      std::to_string(list.size()));
  }
  const auto live = m.membership->live();
  const auto known = m.known_nodes(live);
  std::set<std::string> seen;
  for (const auto& n : list) {
    if (!seen.insert(n).second) {
      return Status(Errc::kInvalidArgument, "node '" + n + "' is named twice in replicas");
    }
    if (known.count(n) == 0) {
      return Status(Errc::kInvalidArgument, "unknown node '" + n + "' in replicas");
    }
    if (m.admin_of(n) != NodeAdminState::kActive) {
      return Status(Errc::kInvalidArgument, "node '" + n + "' in replicas is " +
                                                to_string(m.admin_of(n)) +
                                                ": it may not receive replicas");
    }
  }
  size_t alive = 0;
  for (const auto& n : list) alive += live.count(n);
  if (alive < m.meta.write_quorum) {
    return Status(Errc::kInvalidArgument, "only " + std::to_string(alive) +
                                              " of the replicas are alive; a write quorum "
                                              "needs " +
                                              std::to_string(m.meta.write_quorum));
  }
  auto cur = read_placement(*m.etcd, m.layout, partition);
  if (!cur.ok()) return cur.status();
  PlacementRecord rec;
  rec.replicas = list;
  // The current preferred node stays when it is among them and alive; else
  // the first alive one.
  if (cur->first && seen.count(cur->first->preferred) != 0 &&
      live.count(cur->first->preferred) != 0) {
    rec.preferred = cur->first->preferred;
  } else {
    for (const auto& n : list) {
      if (live.count(n) != 0) {
        rec.preferred = n;
        break;
      }
    }
  }
  if (Status s = write_placement(*m.etcd, m.layout, partition, rec, cur->second); !s.is_ok()) {
    return s;
  }
  spdlog::info("cluster: partition {}: replicas set by an operator", partition);
  m.records_changed();
  return rec;
}

Status ClusterNode::rebalance() {
  Impl& m = *impl_;
  auto put = m.etcd->put(PutRequest{
      m.layout.rebalance(),
      "{\"requested_ms\":" + std::to_string(now_ms()) + ",\"by\":\"" + m.options.node_id + "\"}", 0,
      false});
  if (!put.ok()) return put.status();
  spdlog::info("cluster: rebalance requested (operator)");
  return {};
}

}  // namespace yantra::cluster
