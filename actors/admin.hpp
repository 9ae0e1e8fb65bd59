// Admin: the one seam for every write that is not an execution event (flows
// and their versions, flow deletion, API keys, tenants, secrets, webhook ids,
// tool registrations)
// and for the audit chain (append, list, verify, report).
//
// Why a seam: these writes are synced RocksDB writes. Run on an HTTP I/O
// thread, one fsync stalls every connection of that thread; and in a cluster
// they must go through replication, not straight into the local store. So
// writes and audit queries are asynchronous: each takes a completion callback
// that is called exactly once, on a thread of the implementation's own small
// pool (never synchronously on the caller's thread, never on a CAF scheduler
// thread). Callers answer from the callback (RouteCtx::respond is
// thread-safe) and must not block in it.
//
// Point reads and short scans (list API keys, one key, a secret's value for
// a webhook credential, webhook ids) stay synchronous, as the engine's own
// reads do (api/services.hpp): they cost a memtable or block-cache lookup.
// Every type here is an API-level value; no storage object leaves the seam.
//
// Implementations: LocalAdmin (make_local_admin below: one node, today's
// stores); the cluster issue adds one that replicates. The header is pure:
// no CAF, no RocksDB, no storage/ include.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/tool_registration.hpp"
#include "base/result.hpp"
#include "yantra/v1/events.pb.h"
#include "yantra/v1/tenancy.pb.h"

namespace yantra {

using json = nlohmann::json;

class Engine;

// A secret's metadata (never its value).
struct SecretInfo {
  std::string name;
  uint32_t version = 0;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

// One audit record to append (the chain assigns seq and hash).
struct AuditEntry {
  int64_t time_ms = 0;  // 0 = now (wall clock at append)
  std::string tenant;   // "" = no tenant (chain "-")
  std::string key_id;
  std::string role;
  std::string action;  // dotted, e.g. "flow.put"
  std::string resource;
  std::string outcome;
  std::string request_id;
  std::string detail;
};

// Which records of a tenant's chains a listing returns (storage/audit_log.hpp).
// A tenant has one chain on a single node and one per partition in a
// cluster; a listing walks them in order (the node's own chain, then the
// partitions' in partition order), each oldest first.
struct AuditQuery {
  std::string chain;    // tenant, or "" for chain "-"
  int64_t from_ms = 0;  // time_ms in [from_ms, to_ms)
  int64_t to_ms = 0;    // 0 = no upper bound
  std::string action;   // "" = every action; ending in '.' = a prefix
  size_t limit = 0;     // 0 = no limit
  // The cursor: the chain and seq of the last record of the previous page
  // (after_partition nullopt = the node's own chain).
  std::optional<uint32_t> after_partition;
  uint64_t after_seq = 0;
};

// A listed record and the chain it is in (nullopt: the node's own chain).
struct AuditListed {
  std::optional<uint32_t> partition;
  v1::AuditRecord record;
};

// verify() walks every chain of the tenant and stops at the first broken.
struct AuditVerifyReport {
  bool ok = true;
  uint64_t records = 0;
  uint64_t first_broken_seq = 0;  // 0 when ok
  std::string reason;
  uint64_t chains = 0;                       // chains walked
  std::optional<uint32_t> broken_partition;  // the broken chain (nullopt: the node's own)
};

// (action, outcome) -> count
using AuditCounts = std::map<std::pair<std::string, std::string>, uint64_t>;

// The flow a webhook id starts.
struct HookTarget {
  std::string tenant;
  std::string flow_id;
};

class Admin {
 public:
  template <typename T>
  using Done = std::function<void(Result<T>)>;
  using StatusDone = std::function<void(Status)>;

  virtual ~Admin() = default;

  // Flows. put_flow validates and stores a new version and answers with the
  // stored row (errors as Engine::put_flow). delete_flow stores a tombstone
  // version and answers with its number ("not_found" for an unknown flow).
  virtual void put_flow(std::string tenant, json definition, std::string created_by,
                        std::string note, Done<v1::FlowVersion> done) = 0;
  virtual void delete_flow(std::string tenant, std::string flow_id, std::string deleted_by,
                           Done<uint32_t> done) = 0;

  // API keys by SHA-256 (hex) of their secret. revoke_api_key answers with
  // the key's hash (to evict caches); "not_found" when it is not `tenant`'s.
  virtual void put_api_key(std::string hash, v1::ApiKey key, StatusDone done) = 0;
  virtual void revoke_api_key(std::string tenant, std::string key_id, Done<std::string> done) = 0;
  virtual Result<std::vector<v1::ApiKey>> list_api_keys(const std::string& tenant) const = 0;
  virtual Result<std::optional<v1::ApiKey>> find_api_key_by_id(const std::string& tenant,
                                                               const std::string& key_id) const = 0;

  // Tenants (the engine's admission cache follows at once).
  virtual void put_tenant(v1::Tenant tenant, StatusDone done) = 0;
  virtual void delete_tenant(std::string id, StatusDone done) = 0;

  // Secrets. Without a vault (no master key) every secret call answers
  // "vault_unavailable"; has_vault() lets a caller say so before parsing.
  virtual bool has_vault() const = 0;
  virtual void put_secret(std::string tenant, std::string name, std::string value, int64_t now_ms,
                          Done<SecretInfo> done) = 0;
  virtual void delete_secret(std::string tenant, std::string name, StatusDone done) = 0;
  virtual Result<std::vector<SecretInfo>> list_secrets(const std::string& tenant) const = 0;
  // A secret's value, for checking a webhook's credential (nullopt = unset).
  virtual Result<std::optional<std::string>> secret_value(const std::string& tenant,
                                                          const std::string& name) const = 0;

  // Webhook ids. rotate_hook replaces the flow's id and answers the new one.
  virtual Result<std::optional<HookTarget>> find_hook(const std::string& hook_id) const = 0;
  virtual Result<std::optional<std::string>> hook_of(const std::string& tenant,
                                                     const std::string& flow_id) const = 0;
  virtual void rotate_hook(std::string tenant, std::string flow_id, Done<std::string> done) = 0;

  // Tool registrations (actors/tool_registration.hpp): a tenant's MCP
  // servers and workers. The caller validated the definition; put upserts
  // (updated_ms 0 = now) and answers once this node's engine installed it
  // (the kind's handler ran); delete answers "not_found" when absent.
  virtual void put_tool_registration(ToolRegistration registration, StatusDone done) = 0;
  virtual void delete_tool_registration(std::string tenant, std::string kind, std::string id,
                                        StatusDone done) = 0;
  virtual Result<std::vector<ToolRegistration>> list_tool_registrations(
      const std::string& tenant, const std::string& kind) const = 0;
  virtual Result<std::optional<ToolRegistration>> find_tool_registration(
      const std::string& tenant, const std::string& kind, const std::string& id) const = 0;

  // The audit chains. audit() queues a record and never blocks. The queries
  // read whole chains; audit_verify first waits until every record appended
  // before the call is written, so it covers what the caller just did.
  virtual void audit(AuditEntry entry) = 0;
  virtual void audit_query(AuditQuery query, Done<std::vector<AuditListed>> done) = 0;
  virtual void audit_verify(std::string chain, Done<AuditVerifyReport> done) = 0;
  virtual void audit_report(std::string chain, int64_t from_ms, int64_t to_ms,
                            Done<AuditCounts> done) = 0;
};

// The single-node implementation over `engine`'s stores: writes run on a
// pool of `threads` threads of its own (at least 1), which also call the
// callbacks. It must be destroyed before `engine`; its destructor finishes
// the queued work first.
std::unique_ptr<Admin> make_local_admin(Engine& engine, size_t threads = 2);

}  // namespace yantra
