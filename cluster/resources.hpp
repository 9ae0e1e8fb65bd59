// Cluster-wide resources: flows (every version), tenants, API keys, secrets
// (still encrypted), webhook ids and tool registrations (MCP servers,
// workers) live in etcd under `<prefix>/res/`, and
// every node keeps a copy of them in its own store, so the whole API reads
// locally (docs/cluster.md, "Resources in etcd").
//
// Two parts:
//
// - ResourceMirror: lists `<prefix>/res/` and watches it from the listing's
//   revision + 1 (PrefixMirror: re-lists after a compaction), installing
//   each record into the node's store through the engine, so every read
//   path (the engine and its flow cache and triggers, the Admin's reads, the
//   authenticator) sees it. Its first listing also drops the secrets the
//   local store holds and etcd does not (deleted while the node was down;
//   every other deletion is a record: a tombstone, a revoked key): etcd is
//   the truth.
// - make_cluster_admin(): the Admin seam (actors/admin.hpp) for a cluster
//   node. Writes are etcd transactions — a flow version number by
//   compare-and-swap on the flow's head key, a webhook id claimed
//   create-if-absent, upserts as puts — made on a pool of its own (etcd
//   calls block: never on the caller's thread, never a CAF thread), and
//   answered once this node's mirror installed the write's revision, so a
//   client reading its own write on the same node sees it. Validation is
//   LocalAdmin's (the engine's tool specs, the same errors). Reads go to a
//   LocalAdmin over the same engine; audit records go to the AuditRelay
//   (options.audit): the tenant's chain in its home partition.
//
// bootstrap_tenant() is `yantra serve`'s YANTRA_BOOTSTRAP_KEY for a cluster:
// the first node creates tenant `default` and its owner key cluster-wide;
// later nodes given the same key accept it, a different key is an error.
//
// Lifetimes: the EtcdClient and the Engine outlive the mirror, the mirror
// outlives the admin. No storage/, CAF or Beast type in this header.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/admin.hpp"
#include "base/result.hpp"
#include "cluster/etcd_client.hpp"
#include "cluster/prefix_mirror.hpp"

namespace yantra::cluster {

// Records larger than this are refused before they reach etcd (which limits
// a request to 1.5 MiB): "invalid_argument" naming the size.
inline constexpr size_t kMaxResourceBytes = 1 << 20;

// The etcd keys of the resources (docs/cluster.md). Ids are
// percent-encoded (every byte outside [A-Za-z0-9._-]), so '/' separates.
class ResourceKeys {
 public:
  explicit ResourceKeys(const std::string& prefix) : root_(prefix + "/res/") {}
  const std::string& root() const { return root_; }
  std::string tenant(const std::string& id) const;
  std::string api_key(const std::string& tenant, const std::string& hash) const;
  std::string api_keys_of(const std::string& tenant) const;  // a prefix
  std::string data_key(const std::string& tenant) const;
  std::string secret(const std::string& tenant, const std::string& name) const;
  std::string flow_head(const std::string& tenant, const std::string& flow_id) const;
  std::string flow_version(const std::string& tenant, const std::string& flow_id,
                           uint32_t version) const;
  std::string hook_of(const std::string& tenant, const std::string& flow_id) const;
  std::string hook(const std::string& hook_id) const;
  std::string tool_registration(const std::string& tenant, const std::string& kind,
                                const std::string& id) const;
  std::string bootstrap() const;

 private:
  std::string root_;
};

class ResourceMirror {
 public:
  // Told after a record was installed, for caches outside the engine (the
  // API's authenticator: forget_key / forget_tenant). Called on the
  // mirror's threads; keep them short.
  struct Listener {
    std::function<void(const std::string& hash)> key_changed;
    std::function<void(const std::string& tenant)> tenant_changed;
  };

  // Starts listing at once. The engine must outlive the mirror.
  ResourceMirror(Engine& engine, EtcdClient& etcd, const std::string& prefix,
                 Listener listener = {});
  ~ResourceMirror();
  ResourceMirror(const ResourceMirror&) = delete;
  ResourceMirror& operator=(const ResourceMirror&) = delete;

  // Until the first listing is installed (true) or `timeout`.
  bool wait_synced(std::chrono::milliseconds timeout) const;
  // Until every change up to etcd revision `revision` is installed (true)
  // or `timeout`.
  bool wait_installed(int64_t revision, std::chrono::milliseconds timeout) const;
  int64_t installed_revision() const;
  // Listings so far (1 after the first; each later one followed a
  // compaction or a watch that ended).
  int64_t listings() const;
  // Records that could not be installed (each logged at error level): a
  // store that refuses writes, a record that does not parse, no vault.
  int64_t install_errors() const { return install_errors_.load(); }

 private:
  void on_changes(const std::vector<PrefixMirror::Change>& changes, int64_t revision);
  Status install(const PrefixMirror::Change& change);
  void reconcile(const std::vector<PrefixMirror::Change>& listing);
  void reconcile_tool_registrations(const std::vector<PrefixMirror::Change>& listing);

  Engine& engine_;
  const ResourceKeys keys_;
  const Listener listener_;
  bool first_ = true;  // on_changes runs one call at a time
  std::atomic<int64_t> install_errors_{0};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  int64_t installed_ = 0;                 // guarded by mu_
  bool synced_ = false;                   // guarded by mu_
  std::unique_ptr<PrefixMirror> mirror_;  // last: started once the rest exists
};

class AuditRelay;  // audit_relay.hpp

struct ClusterAdminOptions {
  size_t threads = 2;
  // Where audit records go (audit_relay.hpp): the tenant's chain in its home
  // partition. Null: this node's own chain (tests of the resources alone).
  AuditRelay* audit = nullptr;
  // How long a write waits for this node's mirror to install it. Past it the
  // write (already in etcd) is answered "etcd_timeout" saying so.
  std::chrono::milliseconds install_timeout{5000};
};

// The cluster's Admin. `mirror` is this node's ResourceMirror on the same
// etcd and prefix; engine, etcd and mirror outlive the admin.
std::unique_ptr<Admin> make_cluster_admin(Engine& engine, EtcdClient& etcd, std::string prefix,
                                          ResourceMirror& mirror, ClusterAdminOptions options = {});

// `yantra serve`'s YANTRA_BOOTSTRAP_KEY in a cluster.
struct BootstrapKey {
  std::string hash;    // SHA-256 (hex) of the secret
  std::string key_id;  // for a key this call creates
  // The operator gave the key (YANTRA_BOOTSTRAP_KEY); false: this node made
  // it up and keeps it only if it is the first.
  bool preset = false;
};

struct Bootstrapped {
  enum class Outcome {
    kCreated,   // tenant `default` and this key were created cluster-wide
    kSameKey,   // the cluster was bootstrapped with this very key
    kExisting,  // the cluster was bootstrapped before (this node's key unused)
  };
  Outcome outcome = Outcome::kExisting;
  int64_t revision = 0;  // etcd revision to wait_installed() for
};

// Creates tenant `default` (unless it exists) and the owner key, once per
// cluster (create-if-absent on `<prefix>/res/bootstrap`). A preset key that
// differs from the one the cluster was bootstrapped with is "conflict",
// naming the problem, and must stop the node from starting.
Result<Bootstrapped> bootstrap_tenant(EtcdClient& etcd, const std::string& prefix,
                                      const BootstrapKey& key, int64_t now_ms);

}  // namespace yantra::cluster
