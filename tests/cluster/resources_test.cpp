// Cluster-wide resources (cluster/resources.hpp) against a real etcd: two
// engines in one process, each over its own temporary data dir with the
// same vault master key, each with its own ResourceMirror and cluster Admin
// on the same etcd prefix — two nodes of one cluster. What is written
// through one node must be readable (and a flow runnable) on the other
// within 1 s; version numbers and webhook ids must be unique cluster-wide;
// a restarted node catches up with what it missed; a watch that resumes
// past a compaction re-lists.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "actors/admin.hpp"
#include "actors/engine.hpp"
#include "base/crypto.hpp"
#include "base/time.hpp"
#include "cluster/resources.hpp"
#include "tests/cluster/etcd_util.hpp"
#include "tests/support/process.hpp"

namespace yantra::cluster {
namespace {

using etcd_test::eventually;
using etcd_test::make_client;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

const std::string kMasterKey(32, 'm');

json echo_flow(const std::string& id, const std::string& name = "v") {
  json f = json::parse(R"({"steps": [{"id": "a", "type": "action",
      "config": {"tool_id": "core", "action": "echo", "parameters": {"x": 1}}}]})");
  f["id"] = id;
  f["name"] = name;
  return f;
}

json webhook_flow(const std::string& id, const std::string& name = "v") {
  json f = echo_flow(id, name);
  f["trigger"] = {{"type", "webhook"}, {"config", {{"auth", "none"}}}};
  return f;
}

// Calls `call` with a callback and waits (bounded) for its one answer.
template <typename T, typename Call>
Result<T> sync(Call call) {
  auto p = std::make_shared<std::promise<Result<T>>>();
  call([p](Result<T> r) { p->set_value(std::move(r)); });
  auto f = p->get_future();
  if (f.wait_for(30s) != std::future_status::ready) {
    return Status(Errc::kTimeout, "the admin never answered");
  }
  return f.get();
}

template <typename Call>
Status sync_status(Call call) {
  auto p = std::make_shared<std::promise<Status>>();
  call([p](Status s) { p->set_value(std::move(s)); });
  auto f = p->get_future();
  if (f.wait_for(30s) != std::future_status::ready) {
    return Status(Errc::kTimeout, "the admin never answered");
  }
  return f.get();
}

// One node: engine, mirror and cluster admin over `dir` and `etcd`.
struct Node {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<ResourceMirror> mirror;
  std::unique_ptr<Admin> admin;

  static std::unique_ptr<Node> open(const std::string& dir, EtcdClient& etcd,
                                    const std::string& prefix) {
    auto node = std::make_unique<Node>();
    EngineOptions options;
    options.data_dir = dir;
    options.partitions = 2;
    options.scheduler_threads = 2;
    options.master_key = kMasterKey;
    auto engine = Engine::open(options);
    EXPECT_TRUE(engine.ok()) << engine.status().to_string();
    if (!engine.ok()) return nullptr;
    node->engine = std::move(engine.value());
    node->mirror = std::make_unique<ResourceMirror>(*node->engine, etcd, prefix);
    EXPECT_TRUE(node->mirror->wait_synced(10s));
    node->admin = make_cluster_admin(*node->engine, etcd, prefix, *node->mirror);
    return node;
  }
  ~Node() {
    admin.reset();
    mirror.reset();
    engine.reset();
  }

  Result<v1::FlowVersion> put_flow(const json& def, const std::string& tenant = "default") {
    return sync<v1::FlowVersion>([&](auto done) { admin->put_flow(tenant, def, "t", "", done); });
  }
  Result<uint32_t> delete_flow(const std::string& id) {
    return sync<uint32_t>([&](auto done) { admin->delete_flow("default", id, "t", done); });
  }
  std::optional<std::string> hook_of(const std::string& flow_id) {
    auto h = admin->hook_of("default", flow_id);
    EXPECT_TRUE(h.ok()) << h.status().to_string();
    return h.ok() ? h.value() : std::nullopt;
  }
  std::string run(const std::string& flow_id) {
    RunRequest req;
    req.flow_id = flow_id;
    auto id = engine->start_sync(req);
    if (!id.ok()) return id.status().to_string();
    auto r = engine->wait(id.value(), 10s);
    if (!r.ok()) return r.status().to_string();
    return r.value().status;
  }
};

class ResourcesTest : public etcd_test::SharedEtcdTest {
 protected:
  void SetUp() override {
    SharedEtcdTest::SetUp();
    if (HasFatalFailure()) return;
    client_b_ = make_client(etcd_->endpoints());
    a_ = Node::open(dir_a_.str(), *client_, test_prefix());
    b_ = Node::open(dir_b_.str(), *client_b_, test_prefix());
    ASSERT_TRUE(a_ && b_);
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
  }

  // Every value stored under the prefix, concatenated (to look for bytes
  // that must never reach etcd).
  std::string everything_in_etcd() {
    auto r = client_->range(RangeRequest::prefix(test_prefix() + "/"));
    EXPECT_TRUE(r.ok());
    std::string all;
    if (r.ok()) {
      for (const auto& kv : r->kvs) all += kv.key + "\n" + kv.value + "\n";
    }
    return all;
  }

  test::TempDir dir_a_{"yantra-res-a"};
  test::TempDir dir_b_{"yantra-res-b"};
  std::unique_ptr<EtcdClient> client_b_;
  std::unique_ptr<Node> a_;
  std::unique_ptr<Node> b_;
};

TEST_F(ResourcesTest, AFlowPutOnAIsReadableAndRunnableOnBWithinOneSecond) {
  auto stored = a_->put_flow(echo_flow("hello"));
  ASSERT_TRUE(stored.ok()) << stored.status().to_string();
  EXPECT_EQ(stored->version(), 1u);
  // Answered only once installed on the writing node: read-your-write.
  EXPECT_TRUE(a_->engine->get_flow_version("default", "hello").ok());

  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      eventually([&] { return b_->engine->get_flow_version("default", "hello").ok(); }, 2s));
  const auto seen = std::chrono::steady_clock::now() - t0;
  std::printf("flow visible on B %.1f ms after A answered\n",
              std::chrono::duration<double, std::milli>(seen).count());
  EXPECT_LT(seen, 1s);
  auto on_b = b_->engine->get_flow_version("default", "hello");
  ASSERT_TRUE(on_b.ok());
  EXPECT_EQ(on_b->definition_json(), stored->definition_json());
  EXPECT_EQ(on_b->version(), 1u);
  EXPECT_EQ(b_->run("hello"), "completed");

  // A second version and then a deletion reach B's engine too.
  ASSERT_TRUE(a_->put_flow(echo_flow("hello", "second")).ok());
  ASSERT_TRUE(eventually(
      [&] {
        auto v = b_->engine->get_flow_version("default", "hello");
        return v.ok() && v->version() == 2;
      },
      1s));
  EXPECT_EQ(b_->run("hello"), "completed");
  auto deleted = b_->delete_flow("hello");
  ASSERT_TRUE(deleted.ok()) << deleted.status().to_string();
  EXPECT_EQ(deleted.value(), 3u);
  ASSERT_TRUE(
      eventually([&] { return !a_->engine->get_flow_version("default", "hello").ok(); }, 1s));
  RunRequest req;
  req.flow_id = "hello";
  EXPECT_EQ(a_->engine->start_sync(req).status().code(), "not_found");
  auto again = a_->delete_flow("hello");
  EXPECT_EQ(again.status().code(), "not_found") << again.status().to_string();
}

TEST_F(ResourcesTest, ConcurrentPutsOnBothNodesGetDistinctDenseVersions) {
  constexpr int kEach = 8;
  std::vector<uint32_t> versions_a, versions_b;
  auto writer = [](Node& node, const std::string& who, std::vector<uint32_t>& out) {
    for (int i = 0; i < kEach; ++i) {
      auto v = node.put_flow(echo_flow("race", who + std::to_string(i)));
      EXPECT_TRUE(v.ok()) << v.status().to_string();
      if (v.ok()) out.push_back(v->version());
    }
  };
  std::thread ta([&] { writer(*a_, "a", versions_a); });
  std::thread tb([&] { writer(*b_, "b", versions_b); });
  ta.join();
  tb.join();
  std::set<uint32_t> all(versions_a.begin(), versions_a.end());
  all.insert(versions_b.begin(), versions_b.end());
  EXPECT_EQ(all.size(), 2u * kEach) << "two puts got the same version";
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), 2u * kEach) << "versions are not dense";
  // Both nodes hold the same history.
  ASSERT_TRUE(eventually(
      [&] {
        auto a = a_->engine->flow_versions("default", "race");
        auto b = b_->engine->flow_versions("default", "race");
        if (!a.ok() || !b.ok() || a->size() != 2u * kEach || b->size() != a->size()) return false;
        for (size_t i = 0; i < a->size(); ++i) {
          if ((*a)[i].SerializeAsString() != (*b)[i].SerializeAsString()) return false;
        }
        return true;
      },
      2s));
}

TEST_F(ResourcesTest, AWebhookIdIsUniqueAndTheSameOnEveryNode) {
  // Both nodes store the first version of the same webhook flow at once:
  // one hook id only, on both nodes.
  std::thread ta([&] { EXPECT_TRUE(a_->put_flow(webhook_flow("hooked", "a")).ok()); });
  std::thread tb([&] { EXPECT_TRUE(b_->put_flow(webhook_flow("hooked", "b")).ok()); });
  ta.join();
  tb.join();
  auto claims = client_->range(RangeRequest::prefix(test_prefix() + "/res/hooks/"));
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(claims->kvs.size(), 1u) << "two webhook ids claimed for one flow";
  std::optional<std::string> id;
  ASSERT_TRUE(eventually(
      [&] {
        id = a_->hook_of("hooked");
        return id && b_->hook_of("hooked") == id;
      },
      1s));
  auto target = b_->admin->find_hook(*id);
  ASSERT_TRUE(target.ok() && target.value().has_value());
  EXPECT_EQ(target.value()->flow_id, "hooked");

  // Other flows get other ids; a later version keeps the id.
  ASSERT_TRUE(b_->put_flow(webhook_flow("other")).ok());
  ASSERT_TRUE(a_->put_flow(webhook_flow("hooked", "v3")).ok());
  ASSERT_TRUE(eventually([&] { return a_->hook_of("other").has_value(); }, 1s));
  EXPECT_NE(a_->hook_of("other"), id);
  EXPECT_EQ(b_->hook_of("hooked"), id);

  // A rotation on B: A resolves the new id, neither the old one.
  auto rotated =
      sync<std::string>([&](auto done) { b_->admin->rotate_hook("default", "hooked", done); });
  ASSERT_TRUE(rotated.ok()) << rotated.status().to_string();
  EXPECT_NE(rotated.value(), *id);
  ASSERT_TRUE(eventually([&] { return a_->hook_of("hooked") == rotated.value(); }, 1s));
  EXPECT_FALSE(a_->admin->find_hook(*id).value().has_value());
  EXPECT_FALSE(b_->admin->find_hook(*id).value().has_value());
  EXPECT_TRUE(a_->admin->find_hook(rotated.value()).value().has_value());

  // Deleting the flow drops its id everywhere.
  ASSERT_TRUE(a_->delete_flow("hooked").ok());
  ASSERT_TRUE(eventually([&] { return !b_->hook_of("hooked").has_value(); }, 1s));
  EXPECT_FALSE(b_->admin->find_hook(rotated.value()).value().has_value());
}

TEST_F(ResourcesTest, TenantsKeysAndSecretsWrittenOnAAreVisibleOnB) {
  v1::Tenant t;
  t.set_id("acme");
  t.set_name("Acme");
  t.set_status("active");
  t.mutable_limits()->set_max_concurrent_executions(7);
  // The operator's tool policy travels with the tenant: B refuses the call.
  t.set_tool_policy_json(R"({"deny":["http"]})");
  EXPECT_EQ(b_->engine->tools().refuses("acme", "http", "request"), "");
  ASSERT_TRUE(sync_status([&](auto done) { a_->admin->put_tenant(t, done); }).is_ok());
  ASSERT_TRUE(eventually(
      [&] {
        auto got = b_->engine->tenant("acme");
        return got.ok() && got.value() && got.value()->limits().max_concurrent_executions() == 7;
      },
      1s));
  EXPECT_NE(b_->engine->tools().refuses("acme", "http", "request"), "")
      << "a tool policy set through A does not hold on B";
  EXPECT_EQ(b_->engine->tools().refuses("acme", "core", "echo"), "");

  v1::ApiKey key;
  key.set_key_id("k1");
  key.set_tenant("acme");
  key.set_role("admin");
  const std::string hash = crypto::sha256_hex("the-secret-of-k1");
  ASSERT_TRUE(sync_status([&](auto done) { a_->admin->put_api_key(hash, key, done); }).is_ok());
  ASSERT_TRUE(eventually(
      [&] {
        auto got = b_->engine->find_api_key(hash);
        return got.ok() && got.value() && !got.value()->revoked();
      },
      1s));
  auto revoked =
      sync<std::string>([&](auto done) { b_->admin->revoke_api_key("acme", "k1", done); });
  ASSERT_TRUE(revoked.ok()) << revoked.status().to_string();
  EXPECT_EQ(revoked.value(), hash);
  ASSERT_TRUE(eventually(
      [&] {
        auto got = a_->engine->find_api_key(hash);
        return got.ok() && got.value() && got.value()->revoked();
      },
      1s));
  EXPECT_EQ(sync<std::string>([&](auto done) { a_->admin->revoke_api_key("acme", "nope", done); })
                .status()
                .code(),
            "not_found");

  // The first secret of a tenant written on both nodes at once: one data
  // key for the cluster, and every secret decrypts on both nodes.
  const std::string value_a = "plaintext-value-from-a-0123456789";
  const std::string value_b = "plaintext-value-from-b-9876543210";
  std::thread ta([&] {
    auto r = sync<SecretInfo>(
        [&](auto done) { a_->admin->put_secret("acme", "from_a", value_a, now_ms(), done); });
    EXPECT_TRUE(r.ok()) << r.status().to_string();
  });
  std::thread tb([&] {
    auto r = sync<SecretInfo>(
        [&](auto done) { b_->admin->put_secret("acme", "from_b", value_b, now_ms(), done); });
    EXPECT_TRUE(r.ok()) << r.status().to_string();
  });
  ta.join();
  tb.join();
  for (Node* n : {a_.get(), b_.get()}) {
    ASSERT_TRUE(eventually(
        [&] {
          auto x = n->admin->secret_value("acme", "from_a");
          auto y = n->admin->secret_value("acme", "from_b");
          return x.ok() && y.ok() && x.value() == value_a && y.value() == value_b;
        },
        1s))
        << "a secret does not decrypt on one node";
  }
  const std::string etcd_bytes = everything_in_etcd();
  EXPECT_EQ(etcd_bytes.find(value_a), std::string::npos) << "a plaintext secret reached etcd";
  EXPECT_EQ(etcd_bytes.find(value_b), std::string::npos) << "a plaintext secret reached etcd";

  // Overwrite on B: version 2 on A; delete on A: gone on B.
  auto second = sync<SecretInfo>(
      [&](auto done) { b_->admin->put_secret("acme", "from_a", "new", now_ms(), done); });
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->version, 2u);
  ASSERT_TRUE(eventually(
      [&] {
        auto l = a_->admin->list_secrets("acme");
        return l.ok() && l->size() == 2 && (*l)[0].name == "from_a" && (*l)[0].version == 2;
      },
      1s));
  ASSERT_TRUE(
      sync_status([&](auto done) { a_->admin->delete_secret("acme", "from_b", done); }).is_ok());
  ASSERT_TRUE(eventually(
      [&] {
        auto v = b_->admin->secret_value("acme", "from_b");
        return v.ok() && !v.value().has_value();
      },
      1s));
  EXPECT_EQ(
      sync_status([&](auto done) { a_->admin->delete_secret("acme", "from_b", done); }).code(),
      "not_found");

  // Deleting the tenant on B: a tombstone on A (as on one node), its keys
  // revoked there too.
  v1::ApiKey key2 = key;
  key2.set_key_id("k2");
  const std::string hash2 = crypto::sha256_hex("the-secret-of-k2");
  ASSERT_TRUE(sync_status([&](auto done) { a_->admin->put_api_key(hash2, key2, done); }).is_ok());
  ASSERT_TRUE(sync_status([&](auto done) { b_->admin->delete_tenant("acme", done); }).is_ok());
  ASSERT_TRUE(eventually(
      [&] {
        auto got = a_->engine->tenant("acme");
        auto k = a_->engine->find_api_key(hash2);
        return got.ok() && got.value() && got.value()->status() == "deleted" && k.ok() &&
               k.value() && k.value()->revoked();
      },
      1s));
  EXPECT_EQ(sync_status([&](auto done) { a_->admin->delete_tenant("acme", done); }).code(),
            "not_found");
}

TEST_F(ResourcesTest, WritesAreValidatedAsOnOneNode) {
  json bad = echo_flow("bad");
  bad["steps"][0]["config"]["tool_id"] = "no-such-tool";
  auto local_engine_error = a_->engine->put_flow("default", bad);
  ASSERT_FALSE(local_engine_error.ok());
  auto r = a_->put_flow(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), local_engine_error.status().code());

  json big = echo_flow("big");
  big["description"] = std::string(kMaxResourceBytes + 10, 'x');
  auto too_big = a_->put_flow(big);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), "invalid_argument");
  EXPECT_NE(too_big.status().message().find("1.5 MiB"), std::string::npos)
      << too_big.status().message();
  EXPECT_EQ(everything_in_etcd().find("big"), std::string::npos) << "a refused flow reached etcd";

  auto secret = sync<SecretInfo>(
      [&](auto done) { a_->admin->put_secret("acme", "bad name!", "v", now_ms(), done); });
  EXPECT_EQ(secret.status().code(), "invalid_argument");
}

TEST_F(ResourcesTest, BootstrapCreatesTheDefaultTenantOnceAndRefusesAnotherKey) {
  const std::string prefix = test_prefix();
  BootstrapKey first{crypto::sha256_hex("yk_first_bootstrap_key"), "kb1", true};
  auto made = bootstrap_tenant(*client_, prefix, first, now_ms());
  ASSERT_TRUE(made.ok()) << made.status().to_string();
  EXPECT_EQ(made->outcome, Bootstrapped::Outcome::kCreated);
  ASSERT_TRUE(b_->mirror->wait_installed(made->revision, 2s));
  auto key = b_->engine->find_api_key(first.hash);
  ASSERT_TRUE(key.ok() && key.value());
  EXPECT_EQ(key.value()->tenant(), "default");
  EXPECT_EQ(key.value()->role(), "owner");
  auto tenant = b_->engine->tenant("default");
  ASSERT_TRUE(tenant.ok() && tenant.value());

  // A node started with the same key accepts it.
  auto same = bootstrap_tenant(*client_b_, prefix, first, now_ms());
  ASSERT_TRUE(same.ok()) << same.status().to_string();
  EXPECT_EQ(same->outcome, Bootstrapped::Outcome::kSameKey);
  // A node that brought no key uses the cluster's.
  BootstrapKey generated{crypto::sha256_hex("yk_generated_here"), "kb2", false};
  auto existing = bootstrap_tenant(*client_b_, prefix, generated, now_ms());
  ASSERT_TRUE(existing.ok());
  EXPECT_EQ(existing->outcome, Bootstrapped::Outcome::kExisting);
  // A different preset key is a start error naming the problem.
  BootstrapKey other{crypto::sha256_hex("yk_another_key"), "kb3", true};
  auto refused = bootstrap_tenant(*client_b_, prefix, other, now_ms());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), "conflict");
  EXPECT_NE(refused.status().message().find("YANTRA_BOOTSTRAP_KEY"), std::string::npos);
  ASSERT_TRUE(b_->mirror->wait_installed(
      client_->range(RangeRequest::single(prefix))->header.revision, 2s));
  EXPECT_FALSE(b_->engine->find_api_key(other.hash).value().has_value());
  EXPECT_FALSE(b_->engine->find_api_key(generated.hash).value().has_value());
}

TEST_F(ResourcesTest, ARestartedNodeCatchesUpWithWhatItMissed) {
  v1::Tenant gone;
  gone.set_id("gone");
  gone.set_status("active");
  ASSERT_TRUE(sync_status([&](auto done) { a_->admin->put_tenant(gone, done); }).is_ok());
  ASSERT_TRUE(a_->put_flow(echo_flow("kept", "one")).ok());
  ASSERT_TRUE(sync<SecretInfo>([&](auto done) {
                a_->admin->put_secret("default", "old", "old-value", now_ms(), done);
              }).ok());
  ASSERT_TRUE(eventually(
      [&] {
        auto s = b_->admin->secret_value("default", "old");
        auto t = b_->engine->tenant("gone");
        return s.ok() && s.value() && t.ok() && t.value();
      },
      1s));

  b_.reset();  // B is down while A writes
  ASSERT_TRUE(a_->put_flow(echo_flow("kept", "two")).ok());
  ASSERT_TRUE(a_->put_flow(webhook_flow("new")).ok());
  ASSERT_TRUE(sync_status([&](auto done) { a_->admin->delete_tenant("gone", done); }).is_ok());
  ASSERT_TRUE(
      sync_status([&](auto done) { a_->admin->delete_secret("default", "old", done); }).is_ok());
  ASSERT_TRUE(sync<SecretInfo>([&](auto done) {
                a_->admin->put_secret("default", "fresh", "fresh-value", now_ms(), done);
              }).ok());

  b_ = Node::open(dir_b_.str(), *client_b_, test_prefix());
  ASSERT_TRUE(b_);  // open() waited for the first listing to be installed
  auto kept = b_->engine->get_flow_version("default", "kept");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->version(), 2u);
  EXPECT_EQ(b_->run("kept"), "completed");
  EXPECT_EQ(b_->run("new"), "completed");
  EXPECT_EQ(b_->hook_of("new"), a_->hook_of("new"));
  auto t = b_->engine->tenant("gone");
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t.value().has_value());
  EXPECT_EQ(t.value()->status(), "deleted") << "a tenant deleted while B was down survived on B";
  auto old = b_->admin->secret_value("default", "old");
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old.value().has_value()) << "a secret deleted while B was down survived on B";
  EXPECT_EQ(b_->admin->secret_value("default", "fresh").value(),
            std::optional<std::string>("fresh-value"));
  EXPECT_EQ(b_->mirror->install_errors(), 0);
}

// A tool registration (an MCP server, a worker) written through A reaches
// B's engine — its handler runs there, so B offers the tools — and one
// deleted while B was down is dropped when B comes back.
TEST_F(ResourcesTest, ToolRegistrationsReachEveryNodeAndTheirHandlers) {
  struct Seen {
    std::mutex mu;
    std::map<std::string, json> live;  // tenant/id -> definition
    int deletes = 0;
  };
  auto watch = [](Node& n, const std::shared_ptr<Seen>& seen) {
    n.engine->watch_tool_registrations("worker", [seen](const ToolRegistration& r, bool deleted) {
      std::lock_guard lock(seen->mu);
      if (deleted) {
        seen->live.erase(r.tenant + "/" + r.id);
        ++seen->deletes;
      } else {
        seen->live[r.tenant + "/" + r.id] = r.definition;
      }
    });
  };
  auto seen_b = std::make_shared<Seen>();
  watch(*b_, seen_b);
  auto has = [](const std::shared_ptr<Seen>& seen, const std::string& key, int version) {
    std::lock_guard lock(seen->mu);
    auto it = seen->live.find(key);
    return it != seen->live.end() && it->second.value("v", 0) == version;
  };

  ToolRegistration w1{"default", "worker", "w1", json{{"v", 1}}, 0};
  ASSERT_TRUE(sync_status([&](auto done) { a_->admin->put_tool_registration(w1, done); }).is_ok());
  ASSERT_TRUE(eventually([&] { return has(seen_b, "default/w1", 1); }, 1s))
      << "B's handler never saw the registration written through A";
  auto listed = b_->admin->list_tool_registrations("default", "worker");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().id, "w1");
  EXPECT_GT(listed->front().updated_ms, 0);

  w1.definition = json{{"v", 2}};
  ASSERT_TRUE(sync_status([&](auto done) { b_->admin->put_tool_registration(w1, done); }).is_ok());
  ASSERT_TRUE(eventually([&] { return has(seen_b, "default/w1", 2); }, 1s));
  // B's put was answered once B installed it; A's mirror follows within 1 s.
  EXPECT_TRUE(eventually(
      [&] {
        auto on_a = a_->admin->find_tool_registration("default", "worker", "w1");
        return on_a.ok() && on_a.value() && on_a.value()->definition.value("v", 0) == 2;
      },
      1s))
      << "a registration rewritten through B never reached A";

  // Bad input is refused before etcd; an unknown one is not_found.
  ToolRegistration bad{"default", "worker", "w2", json::array(), 0};
  EXPECT_EQ(sync_status([&](auto done) { a_->admin->put_tool_registration(bad, done); }).code(),
            "invalid_argument");
  EXPECT_EQ(sync_status([&](auto done) {
              a_->admin->delete_tool_registration("default", "worker", "nope", done);
            }).code(),
            "not_found");

  // Deleted while B is down: gone on B after its restart, handler told at
  // no point that it exists.
  b_.reset();
  ASSERT_TRUE(sync_status([&](auto done) {
                a_->admin->delete_tool_registration("default", "worker", "w1", done);
              }).is_ok());
  ToolRegistration w3{"default", "worker", "w3", json{{"v", 3}}, 0};
  ASSERT_TRUE(sync_status([&](auto done) { a_->admin->put_tool_registration(w3, done); }).is_ok());
  b_ = Node::open(dir_b_.str(), *client_b_, test_prefix());
  ASSERT_TRUE(b_);
  auto seen_again = std::make_shared<Seen>();
  watch(*b_, seen_again);
  std::lock_guard lock(seen_again->mu);
  EXPECT_EQ(seen_again->live.count("default/w1"), 0u)
      << "a registration deleted while B was down survived";
  EXPECT_EQ(seen_again->live.count("default/w3"), 1u);
  EXPECT_EQ(b_->mirror->install_errors(), 0);
}

// Its own 3-member etcd: B's watch runs on member 0, which hangs while A
// writes (through members 1 and 2) and the history is compacted, then dies:
// B's watch resumes elsewhere from a compacted revision and must re-list.
TEST(ResourcesCompactionTest, AWatchResumedPastACompactionReLists) {
  test::EtcdCluster etcd(3);
  std::string error;
  ASSERT_TRUE(etcd.start(&error)) << error;
  const std::string prefix = "/yantra";
  auto client_a = make_client({etcd.endpoint(1), etcd.endpoint(2)});
  auto client_b = make_client(etcd.endpoints(), milliseconds(300));
  test::TempDir dir_a("yantra-res-a");
  test::TempDir dir_b("yantra-res-b");
  auto a = Node::open(dir_a.str(), *client_a, prefix);
  auto b = Node::open(dir_b.str(), *client_b, prefix);
  ASSERT_TRUE(a && b);
  v1::Tenant t;
  t.set_id("doomed");
  t.set_status("active");
  ASSERT_TRUE(sync_status([&](auto done) { a->admin->put_tenant(t, done); }).is_ok());
  ASSERT_TRUE(a->put_flow(echo_flow("f", "one")).ok());
  ASSERT_TRUE(eventually(
      [&] {
        auto got = b->engine->tenant("doomed");
        return got.ok() && got.value() && b->engine->get_flow_version("default", "f").ok();
      },
      2s));
  ASSERT_EQ(b->mirror->listings(), 1);

  ASSERT_TRUE(etcd.pause(0));
  // Member 0 may have been the etcd leader: wait until 1 and 2 have one.
  ASSERT_TRUE(eventually([&] { return client_a->put(PutRequest{"/probe", "x"}).ok(); }, 10s));
  auto two = a->put_flow(echo_flow("f", "two"));
  ASSERT_TRUE(two.ok()) << two.status().to_string();
  ASSERT_EQ(two->version(), 2u);
  ASSERT_TRUE(sync_status([&](auto done) { a->admin->delete_tenant("doomed", done); }).is_ok());
  ASSERT_TRUE(eventually(
      [&] {
        auto r = client_a->range(RangeRequest::single(prefix));
        return r.ok() && client_a->compact(r->header.revision).is_ok();
      },
      5s));
  EXPECT_EQ(b->engine->tenant("doomed").value()->status(), "active");  // nothing heard yet
  ASSERT_TRUE(etcd.kill9(0));
  ASSERT_TRUE(eventually(
      [&] {
        auto got = b->engine->tenant("doomed");
        auto f = b->engine->get_flow_version("default", "f");
        return got.ok() && got.value() && got.value()->status() == "deleted" && f.ok() &&
               f->version() == 2;
      },
      8s))
      << "B stayed stale after the compaction";
  EXPECT_EQ(b->mirror->listings(), 2);
  EXPECT_EQ(b->run("f"), "completed");
}

}  // namespace
}  // namespace yantra::cluster
