// ClusterSide (cli/cluster_side.hpp): adapters between cluster::ClusterNode
// and the API's seams, and the order in which a cluster node comes up.
#include "cli/cluster_side.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "actors/admin.hpp"
#include "actors/engine.hpp"
#include "api/app.hpp"
#include "api/auth.hpp"
#include "api/cluster_view.hpp"
#include "api/errc.hpp"
#include "api/forwarding.hpp"
#include "base/crypto.hpp"
#include "base/errc.hpp"
#include "base/time.hpp"
#include "cli/cluster_list.hpp"
#include "cli/remote_start.hpp"
#include "cluster/audit_relay.hpp"
#include "cluster/errc.hpp"
#include "cluster/node.hpp"
#include "cluster/node_metrics.hpp"
#include "cluster/resources.hpp"
#include "cluster/transport.hpp"
#include "config/node_config.hpp"

namespace yantra::cli {
namespace {

// api::Forwarding over the cluster transport's "api" service.
class TransportForwarding final : public api::Forwarding {
 public:
  explicit TransportForwarding(cluster::ClusterNode& node) : node_(node) {}
  uint32_t partitions() const override { return node_.meta().partitions; }
  std::optional<std::string> leader_of(uint32_t p) const override { return node_.leader_of(p); }
  std::optional<std::string> any_leader() const override { return node_.any_leader(); }
  void forward(const std::string& node, std::string request, uint32_t timeout_ms,
               std::function<void(Result<std::string>)> done) override {
    node_.request(node, "api", std::move(request), std::chrono::milliseconds(timeout_ms),
                  std::move(done));
  }

 private:
  cluster::ClusterNode& node_;
};

nlohmann::json node_json(const cluster::NodeStatus& n) {
  nlohmann::json j = {{"id", n.id},
                      {"state", n.state},
                      {"admin_state", cluster::to_string(n.admin)},
                      {"partitions_led", n.leads},
                      {"partitions_replicated", n.replicas},
                      {"partitions_preferred", n.preferred},
                      {"drained", n.drained}};
  if (n.record) {
    j["http"] = n.record->http;
    j["cluster"] = n.record->cluster;
    j["version"] = n.record->version;
  } else {
    j["down_for_ms"] = n.down_for_ms;
  }
  return j;
}

// etcd's member ids are unsigned 64-bit: hex as etcdctl prints them (a JSON
// number would lose bits in a JavaScript reader).
std::string member_hex(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(id));
  return buf;
}

// Every node's report gathered for one picture, by node id.
using Reports = std::map<std::string, Result<cluster::NodeReport>>;

const cluster::ReplicaPosition* position_of(const cluster::NodeReport& r, uint32_t p) {
  if (p < r.partitions.size() && r.partitions[p].partition == p) return &r.partitions[p];
  for (const auto& pos : r.partitions) {
    if (pos.partition == p) return &pos;
  }
  return nullptr;
}

const cluster::NodeReport* report_of(const Reports& reports, const std::string& node) {
  auto it = reports.find(node);
  return it != reports.end() && it->second.ok() ? &it->second.value() : nullptr;
}

std::string unreachable_why(const Reports& reports, const std::string& node) {
  auto it = reports.find(node);
  if (it == reports.end()) return "not live: not asked";
  return it->second.ok() ? "" : it->second.status().to_string();
}

// The answer of GET /admin/v1/cluster, fields as docs/cluster.md
// ("Operators") lists them. Built from this node's in-memory view (etcd's
// records as its watches last said: nodes, leaders, placement) and the
// reports and etcd status just gathered.
nlohmann::json picture(cluster::ClusterNode& node, const Reports& reports,
                       const std::vector<cluster::EtcdEndpointStatus>& etcd) {
  using nlohmann::json;
  json partitions = json::array();
  for (const auto& v : node.partitions()) {
    const uint32_t id = v.partition;
    // The answering node's own view, as before the fan-out.
    json p = {{"id", id},
              {"leader", v.leader ? json(*v.leader) : json(nullptr)},
              {"epoch", v.epoch},
              {"committed_lsn", v.committed_lsn},
              {"applied_lsn", v.applied_lsn},
              {"lag", v.committed_lsn > v.applied_lsn ? v.committed_lsn - v.applied_lsn : 0}};
    if (!v.replicas.empty()) p["replicas"] = v.replicas;
    const auto pl = node.placement(id);
    if (pl) {
      p["placement"] = {{"replicas", pl->replicas}, {"preferred", pl->preferred}};
    } else {
      p["placement"] = nullptr;
    }
    // Every replica's positions. The set: the open segment's replicas as
    // its leader reports them; without that (leader unreachable or still
    // recovering) the placement's; without one, whoever holds a segment.
    const cluster::NodeReport* leader_report = v.leader ? report_of(reports, *v.leader) : nullptr;
    const cluster::ReplicaPosition* at_leader =
        leader_report ? position_of(*leader_report, id) : nullptr;
    if (at_leader != nullptr && !at_leader->leads) at_leader = nullptr;
    std::vector<std::string> set;
    if (at_leader != nullptr && !at_leader->segment_replicas.empty()) {
      set = at_leader->segment_replicas;
    } else if (pl && !pl->replicas.empty()) {
      set = pl->replicas;
    } else {
      for (const auto& [n, r] : reports) {
        if (!r.ok()) continue;
        if (const auto* pos = position_of(r.value(), id); pos && pos->segment != 0)
          set.push_back(n);
      }
    }
    if (v.leader && std::find(set.begin(), set.end(), *v.leader) == set.end()) {
      set.insert(set.begin(), *v.leader);
    }
    // Lag is counted from the leader's commit point; while the leader does
    // not answer, from the highest one any replica heard (a lower bound).
    uint64_t committed = 0;
    if (at_leader != nullptr) {
      committed = at_leader->committed_lsn;
      p["leader_committed_lsn"] = committed;
    } else {
      for (const auto& [n, r] : reports) {
        if (!r.ok()) continue;
        if (const auto* pos = position_of(r.value(), id)) {
          committed = std::max(committed, pos->committed_lsn);
        }
      }
      p["leader_committed_lsn"] = nullptr;
    }
    json positions = json::array();
    for (const auto& n : set) {
      const cluster::NodeReport* r = report_of(reports, n);
      const cluster::ReplicaPosition* pos = r ? position_of(*r, id) : nullptr;
      if (pos == nullptr) {
        positions.push_back(
            {{"node", n}, {"reachable", false}, {"error", unreachable_why(reports, n)}});
        continue;
      }
      positions.push_back(
          {{"node", n},
           {"reachable", true},
           {"leads", pos->leads},
           {"applied_lsn", pos->applied_lsn},
           {"durable_lsn", pos->durable_lsn},
           {"segment", pos->segment},
           {"committed_lsn", pos->committed_lsn},
           {"lag", committed > pos->applied_lsn ? committed - pos->applied_lsn : 0}});
    }
    p["positions"] = std::move(positions);
    partitions.push_back(std::move(p));
  }

  json nodes = json::array();
  for (const auto& n : node.nodes()) {
    json j = node_json(n);
    const cluster::NodeReport* r = report_of(reports, n.id);
    j["reachable"] = r != nullptr;
    if (r != nullptr) {
      size_t leading = 0;
      for (const auto& pos : r->partitions) leading += pos.leads ? 1 : 0;
      j["version"] = r->version;
      j["load"] = {{"active_executions", r->load.active_executions},
                   {"executions_started", r->load.executions_started},
                   {"executions_finished", r->load.executions_finished},
                   {"cpu_seconds", r->load.cpu_seconds},
                   {"rss_bytes", r->load.rss_bytes},
                   {"partitions_leading", leading}};
    } else {
      j["load"] = nullptr;
      j["error"] = unreachable_why(reports, n.id);
    }
    nodes.push_back(std::move(j));
  }

  json endpoints = json::array();
  for (const auto& e : etcd) {
    json j = {{"url", e.url}, {"reachable", e.reachable}};
    if (e.reachable) {
      j["member_id"] = member_hex(e.member_id);
      j["leader"] = e.leader_id != 0 && e.leader_id == e.member_id;
      j["leader_id"] = e.leader_id != 0 ? json(member_hex(e.leader_id)) : json(nullptr);
      j["db_size_bytes"] = e.db_size_bytes;
      j["raft_index"] = e.raft_index;
      j["raft_term"] = e.raft_term;
      j["version"] = e.version;
    } else {
      j["error"] = e.error;
    }
    endpoints.push_back(std::move(j));
  }

  const auto& meta = node.meta();
  const auto controller = node.controller();
  return {{"node", node.node_id()},
          {"cluster_id", meta.cluster_id},
          {"replication", meta.replication},
          {"write_quorum", meta.write_quorum},
          {"nodes", std::move(nodes)},
          {"partitions", std::move(partitions)},
          {"controller", controller ? json(*controller) : json(nullptr)},
          {"etcd", {{"lease_valid", node.can_write()}, {"endpoints", std::move(endpoints)}}}};
}

// Threads of the view's own that run jobs in their order of arrival. At
// most `max_queued` wait; post() refuses more. Jobs still waiting when it
// is destroyed run with stopping = true (to answer, not to act).
class JobQueue {
 public:
  using Job = std::function<void(bool stopping)>;
  JobQueue(size_t threads, size_t max_queued) : max_queued_(max_queued) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~JobQueue() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  bool post(Job job) {
    {
      std::lock_guard lock(mu_);
      if (stopping_ || jobs_.size() >= max_queued_) return false;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
  }

 private:
  void work() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      const bool stopping = stopping_;
      lock.unlock();
      job(stopping);
      lock.lock();
    }
  }

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// api::ClusterView over the node's view of leases, leaders and placement.
// Operators' commands block on etcd (and a leadership move on the cluster),
// so they run on a thread of this view, one at a time, never on the HTTP
// I/O thread that received them. Pictures (describe) run on two threads of
// their own, so a slow command (a move waits up to 10 s) delays none: each
// sends its report requests to every live node, asks etcd meanwhile, and
// waits for both (about 1 s at worst, a node or etcd paused).
class NodeView final : public api::ClusterView {
 public:
  // Each report request, and each etcd endpoint's status, within this.
  static constexpr std::chrono::milliseconds kAskTimeout{1000};

  explicit NodeView(cluster::ClusterNode& node) : node_(node) {}

  Status write_status() const override {
    if (!node_.can_write()) {
      return Status(ApiErrc::kNotReady,
                    "this node's cluster lease is not valid (etcd unreachable?)")
          .with_retry_after_ms(1000);
    }
    for (uint32_t p = 0; p < node_.meta().partitions; ++p) {
      if (!node_.leader_of(p)) {
        return Status(ApiErrc::kNotReady,
                      "partition " + std::to_string(p) + " has no leader right now")
            .with_retry_after_ms(1000);
      }
    }
    return {};
  }

  void describe(std::function<void(Result<nlohmann::json>)> done) override {
    auto shared = std::make_shared<std::function<void(Result<nlohmann::json>)>>(std::move(done));
    const bool queued = pictures_.post([this, shared](bool stopping) {
      if (stopping) return (*shared)(Status(ApiErrc::kNotReady, "the node is stopping"));
      (*shared)(describe_now());
    });
    if (!queued) {
      (*shared)(Status(ApiErrc::kNotReady, "too many cluster pictures in progress on this node")
                    .with_retry_after_ms(1000));
    }
  }

  void run(Command command, std::function<void(Result<nlohmann::json>)> done) override {
    auto shared = std::make_shared<std::function<void(Result<nlohmann::json>)>>(std::move(done));
    const bool queued = commands_.post([this, shared, command = std::move(command)](bool stopping) {
      if (stopping) return (*shared)(Status(ApiErrc::kNotReady, "the node is stopping"));
      (*shared)(execute(command));
    });
    if (!queued) {
      (*shared)(Status(ApiErrc::kNotReady, "too many cluster commands in progress on this node")
                    .with_retry_after_ms(1000));
    }
  }

  // Counted from the membership at most every 100 ms: the rate limiter
  // asks on every limited request.
  uint32_t live_nodes() const override {
    const int64_t now = now_ms();
    if (now - refreshed_ms_.load(std::memory_order_relaxed) >= 100) {
      refreshed_ms_.store(now, std::memory_order_relaxed);
      live_.store(static_cast<uint32_t>(std::max<size_t>(1, node_.live_nodes().size())),
                  std::memory_order_relaxed);
    }
    return live_.load(std::memory_order_relaxed);
  }

  // The cluster-wide list (cli/cluster_list.hpp), once start() made it.
  bool list_executions(const ListQuery& query,
                       std::function<void(Result<ExecutionPage>)> done) override {
    ClusterList* list = list_.load();
    return list != nullptr && list->list(query, std::move(done));
  }
  void set_list(ClusterList* list) { list_.store(list); }

 private:
  // On a picture thread: may block.
  Result<nlohmann::json> describe_now() {
    auto gathered = std::make_shared<std::promise<Reports>>();
    auto future = gathered->get_future();
    node_.gather_reports(kAskTimeout,
                         [gathered](Reports reports) { gathered->set_value(std::move(reports)); });
    const auto etcd = node_.etcd_status(kAskTimeout);
    Reports reports;
    // The transport answers every request by its timeout; the margin only
    // guards against a bug there.
    if (future.wait_for(kAskTimeout + std::chrono::milliseconds(500)) ==
        std::future_status::ready) {
      reports = future.get();
    } else {
      spdlog::warn("cluster: node reports did not all arrive in time; answering without them");
    }
    return picture(node_, reports, etcd);
  }

  Result<nlohmann::json> execute(const Command& c) {
    using nlohmann::json;
    using Kind = Command::Kind;
    auto placement_json = [](uint32_t p, const cluster::PlacementRecord& rec) {
      return json{{"partition", p}, {"replicas", rec.replicas}, {"preferred", rec.preferred}};
    };
    switch (c.kind) {
      case Kind::kDrain: {
        auto r = node_.drain(c.node);
        if (!r.ok()) return r.status();
        return node_json(r.value());
      }
      case Kind::kUndrain: {
        auto r = node_.undrain(c.node);
        if (!r.ok()) return r.status();
        return node_json(r.value());
      }
      case Kind::kRemove: {
        auto r = node_.remove_node(c.node, std::chrono::seconds(10));
        if (!r.ok()) return r.status();
        return node_json(r.value());
      }
      case Kind::kMoveLeader: {
        auto r = node_.move_leader(c.partition, c.node, std::chrono::seconds(10));
        if (!r.ok()) return r.status();
        json j = placement_json(c.partition, r->placement);
        j["leader"] = r->leader ? json(*r->leader) : json(nullptr);
        j["epoch"] = r->epoch;
        j["moved"] = r->moved;
        return j;
      }
      case Kind::kSetReplicas: {
        auto r = node_.set_replicas(c.partition, c.replicas);
        if (!r.ok()) return r.status();
        return placement_json(c.partition, r.value());
      }
      case Kind::kRebalance: {
        if (Status s = node_.rebalance(); !s.is_ok()) return s;
        const auto controller = node_.controller();
        return json{{"requested", true},
                    {"controller", controller ? json(*controller) : json(nullptr)}};
      }
    }
    return Status(Errc::kInvalidArgument, "unknown cluster command");
  }

  cluster::ClusterNode& node_;
  mutable std::atomic<int64_t> refreshed_ms_{0};
  mutable std::atomic<uint32_t> live_{1};
  // Destroyed first (declared last): their threads call node_.
  JobQueue commands_{1, 64};
  JobQueue pictures_{2, 32};
  std::atomic<ClusterList*> list_{nullptr};
};

}  // namespace

struct ClusterSide::Impl {
  std::string prefix;
  std::unique_ptr<cluster::ClusterNode> node;
  std::unique_ptr<cluster::ResourceMirror> mirror;
  // API audit records to the tenant's home partition (audit_relay.hpp);
  // stopped before the node, destroyed after the admin.
  std::unique_ptr<cluster::AuditRelay> audit;
  std::unique_ptr<TransportForwarding> forwarding;
  std::unique_ptr<NodeView> view;
  std::unique_ptr<cluster::NodeMetrics> metrics;  // after start(), before the node goes
  // The "start" service's worker (remote_start.hpp): made before the node
  // serves, gone after the node (its transport) is.
  std::unique_ptr<RemoteStarts> starts;
  std::unique_ptr<ClusterList> list;  // the "list" service; stopped before the node
  std::atomic<api::ApiApp*> app{nullptr};
};

ClusterSide::ClusterSide(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ClusterSide::~ClusterSide() {
  stop();
  stop_mirror();
}

Result<std::unique_ptr<ClusterSide>> ClusterSide::connect(const NodeConfig& config,
                                                          const std::string& version) {
  cluster::ClusterNodeOptions o;
  o.node_id = config.node_id;
  o.etcd = cluster::split_endpoints(config.etcd);
  o.prefix = config.etcd_prefix;
  o.cluster_listen = config.cluster_listen;
  o.http_address = config.advertise_http.empty() ? config.listen : config.advertise_http;
  o.cluster_key_file = config.cluster_key_file;
  o.data_dir = config.data_dir;
  o.version = version;
  o.down_grace = std::chrono::milliseconds(config.node_down_grace_ms);
  o.trim_interval = std::chrono::milliseconds(config.log_trim_interval_ms);
  auto node = cluster::ClusterNode::connect(o);
  if (!node.ok()) return node.status();
  auto impl = std::make_unique<Impl>();
  impl->prefix = config.etcd_prefix;
  impl->node = std::move(node.value());
  return std::unique_ptr<ClusterSide>(new ClusterSide(std::move(impl)));
}

void ClusterSide::engine_options(EngineOptions& options) {
  cluster::ClusterNode* node = impl_->node.get();
  options.partitions = node->meta().partitions;
  options.lead_all_partitions = false;
  options.claim_schedule_slot = [node](const std::string& tenant, const std::string& flow_id,
                                       int64_t slot_ms) {
    return node->claim_schedule_slot(tenant, flow_id, slot_ms);
  };
  options.start_elsewhere = remote_start_hook(*node);
}

Result<std::unique_ptr<Admin>> ClusterSide::make_admin(Engine& engine) {
  Impl* impl = impl_.get();
  cluster::ResourceMirror::Listener listener;
  listener.key_changed = [impl](const std::string& hash) {
    if (api::ApiApp* app = impl->app.load()) app->auth().evict_key(hash);
  };
  listener.tenant_changed = [impl](const std::string& tenant) {
    if (api::ApiApp* app = impl->app.load()) app->auth().forget_tenant(tenant);
  };
  impl->mirror =
      std::make_unique<cluster::ResourceMirror>(engine, impl->node->etcd(), impl->prefix, listener);
  if (!impl->mirror->wait_synced(std::chrono::seconds(30))) {
    return Status(ClusterErrc::kTimeout,
                  "the cluster's resources (flows, tenants, keys) did not arrive from etcd "
                  "within 30 s");
  }
  impl->audit = cluster::AuditRelay::over(engine, *impl->node);
  cluster::ClusterAdminOptions admin_options;
  admin_options.audit = impl->audit.get();
  return cluster::make_cluster_admin(engine, impl->node->etcd(), impl->prefix, *impl->mirror,
                                     admin_options);
}

void ClusterSide::attach(api::ApiApp& app) {
  impl_->forwarding = std::make_unique<TransportForwarding>(*impl_->node);
  impl_->view = std::make_unique<NodeView>(*impl_->node);
  app.set_forwarding(impl_->forwarding.get());
  app.set_cluster_view(impl_->view.get());
  impl_->app.store(&app);
}

Result<std::string> ClusterSide::bootstrap(Engine& engine, const std::string& data_dir,
                                           const std::string& preset) {
  auto generated = api::new_api_key();
  if (!generated.ok()) return generated.status();
  const std::string secret = preset.empty() ? generated->secret : preset;
  cluster::BootstrapKey key;
  key.hash = crypto::sha256_hex(secret);
  key.key_id = generated->key_id;
  key.preset = !preset.empty();
  auto done = cluster::bootstrap_tenant(impl_->node->etcd(), impl_->prefix, key, now_ms());
  if (!done.ok()) return done.status();
  // Until this node's store has it. (A revision is only a fair target for
  // a write of ours: the mirror watches resources only, so it never sees
  // the revisions other keys take.)
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto tenant = engine.tenant("default");
    auto stored = engine.find_api_key(key.hash);
    const bool have_key = stored.ok() && stored.value().has_value();
    const bool need_key = done->outcome != cluster::Bootstrapped::Outcome::kExisting;
    if (tenant.ok() && tenant.value().has_value() && (have_key || !need_key)) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return Status(ClusterErrc::kTimeout,
                    "the bootstrap tenant did not reach this node's store within 10 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (done->outcome != cluster::Bootstrapped::Outcome::kCreated || !preset.empty()) {
    return std::string();
  }
  const std::string path = (std::filesystem::path(data_dir) / "bootstrap-key").string();
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return Status(Errc::kIoError, "cannot write " + path);
  const std::string line = secret + "\n";
  const ssize_t n = ::write(fd, line.data(), line.size());
  ::fsync(fd);
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size())) return Status(Errc::kIoError, "cannot write " + path);
  return secret;
}

Status ClusterSide::start(Engine& engine) {
  Impl* impl = impl_.get();
  impl->starts = std::make_unique<RemoteStarts>(engine);
  impl->list = std::make_unique<ClusterList>(*impl->node, engine);
  if (impl->view) impl->view->set_list(impl->list.get());
  Status started = impl->node->start(engine, [impl](cluster::Transport& transport) {
    // Starts of a flow whose executions live in a partition led here
    // (remote_start.hpp).
    transport.handle("start",
                     [impl](const std::string&, std::string payload, cluster::Reply reply) {
                       impl->starts->serve(std::move(payload), std::move(reply));
                     });
    // Other nodes' shares of a cluster-wide list of executions.
    transport.handle("list",
                     [impl](const std::string& from, std::string payload, cluster::Reply reply) {
                       impl->list->serve(from, std::move(payload), std::move(reply));
                     });
    // Requests forwarded by other nodes run through this node's API.
    transport.handle("api", [impl](const std::string&, std::string payload, cluster::Reply reply) {
      api::ApiApp* app = impl->app.load();
      if (app == nullptr) {
        reply(Status(Errc::kUnavailable, "the API is not attached yet"));
        return;
      }
      app->handle_forwarded(std::move(payload),
                            [reply](std::string response) { reply(std::move(response)); });
    });
    // Audit records other nodes relay to the partitions this node leads.
    transport.handle("audit",
                     [impl](const std::string&, std::string payload, cluster::Reply reply) {
                       if (!impl->audit) {
                         reply(Status(Errc::kUnavailable, "the audit relay is not started yet"));
                         return;
                       }
                       impl->audit->serve(std::move(payload), std::move(reply));
                     });
  });
  if (started.is_ok()) impl->metrics = std::make_unique<cluster::NodeMetrics>(*impl->node);
  return started;
}

void ClusterSide::stop() {
  impl_->metrics.reset();
  if (impl_->audit) {
    // Queued records reach their chains while this node still leads.
    if (!impl_->audit->flush(std::chrono::seconds(2))) {
      spdlog::warn("cluster: audit records still queued at shutdown are dropped");
    }
    impl_->audit->stop();
  }
  impl_->view.reset();  // its worker calls the node
  if (impl_->list) impl_->list->stop();
  impl_->node.reset();
  impl_->starts.reset();
  impl_->list.reset();
}

void ClusterSide::stop_mirror() {
  impl_->mirror.reset();
  impl_->audit.reset();
}

}  // namespace yantra::cli
