// ClusterSide (cli/cluster_side.hpp): adapters between cluster::ClusterNode
// and the API's seams, and the order in which a cluster node comes up.
#include "cli/cluster_side.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
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

// api::ClusterView over the node's view of leases, leaders and placement.
// Operators' commands block on etcd (and a leadership move on the cluster),
// so they run on a thread of this view, one at a time, never on the HTTP
// I/O thread that received them.
class NodeView final : public api::ClusterView {
 public:
  explicit NodeView(cluster::ClusterNode& node) : node_(node) {
    worker_ = std::thread([this] { work(); });
  }
  ~NodeView() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

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

  nlohmann::json describe() const override {
    using nlohmann::json;
    const auto parts = node_.partitions();
    json partitions = json::array();
    for (const auto& v : parts) {
      json p = {{"id", v.partition},
                {"leader", v.leader ? json(*v.leader) : json(nullptr)},
                {"epoch", v.epoch},
                {"committed_lsn", v.committed_lsn},
                {"applied_lsn", v.applied_lsn},
                {"lag", v.committed_lsn > v.applied_lsn ? v.committed_lsn - v.applied_lsn : 0}};
      if (!v.replicas.empty()) p["replicas"] = v.replicas;
      if (auto pl = node_.placement(v.partition)) {
        p["placement"] = {{"replicas", pl->replicas}, {"preferred", pl->preferred}};
      } else {
        p["placement"] = nullptr;
      }
      partitions.push_back(std::move(p));
    }
    json nodes = json::array();
    for (const auto& n : node_.nodes()) nodes.push_back(node_json(n));
    const auto& meta = node_.meta();
    const auto controller = node_.controller();
    return {{"node", node_.node_id()},
            {"cluster_id", meta.cluster_id},
            {"replication", meta.replication},
            {"write_quorum", meta.write_quorum},
            {"nodes", std::move(nodes)},
            {"partitions", std::move(partitions)},
            {"controller", controller ? json(*controller) : json(nullptr)},
            {"etcd", {{"lease_valid", node_.can_write()}}}};
  }

  void run(Command command, std::function<void(Result<nlohmann::json>)> done) override {
    {
      std::lock_guard lock(mu_);
      if (!stopping_ && jobs_.size() < 64) {
        jobs_.push_back({std::move(command), std::move(done)});
        cv_.notify_one();
        return;
      }
    }
    done(Status(ApiErrc::kNotReady, "too many cluster commands in progress on this node")
             .with_retry_after_ms(1000));
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

  void work() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      const bool stopping = stopping_;
      lock.unlock();
      Result<nlohmann::json> r =
          stopping ? Result<nlohmann::json>(Status(ApiErrc::kNotReady, "the node is stopping"))
                   : execute(job.first);
      job.second(std::move(r));
      lock.lock();
    }
  }

  cluster::ClusterNode& node_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Command, std::function<void(Result<nlohmann::json>)>>> jobs_;
  bool stopping_ = false;
  std::thread worker_;
  mutable std::atomic<int64_t> refreshed_ms_{0};
  mutable std::atomic<uint32_t> live_{1};
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
  std::unique_ptr<ClusterList> list;              // the "list" service; stopped before the node
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
  impl->list = std::make_unique<ClusterList>(*impl->node, engine);
  if (impl->view) impl->view->set_list(impl->list.get());
  Status started = impl->node->start(engine, [impl](cluster::Transport& transport) {
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
  impl_->list.reset();
}

void ClusterSide::stop_mirror() {
  impl_->mirror.reset();
  impl_->audit.reset();
}

}  // namespace yantra::cli
