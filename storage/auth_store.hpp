// AuthStore: API keys and tenants, in the `auth` column family
// (docs/event-log-format.md):
//   "k" | sha256(secret) hex             -> ApiKey (found by its secret)
//   "x" | tenant | 0x00 | key_id         -> sha256(secret) hex (since 0.3)
//   "t" | tenant                         -> Tenant (since 0.3)
//   "g" | tenant | 0x00 | kind | 0x00 | id -> ToolRegistration (since 0.8)
// The per-tenant "x" index is written in the same batch as its key, so
// listing and revoking by key id touch one tenant's rows only and never
// reveal another tenant's keys; keys stored before the index existed are
// indexed once at open. The same column family holds the trigger rows
// ("h", "H", "S"; trigger_store.hpp).
//
// Writes: synced unless the store is Durability::kAsync (the backfill at
// open is always synced), and serialised by one mutex: they read-modify-
// write (a revoke must never race a put of the same key), and they are rare.
//
// Thread-safety: every method may be called from any thread. Owned by Store
// (store.auth()).
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "storage/store.hpp"
#include "yantra/v1/events.pb.h"
#include "yantra/v1/tenancy.pb.h"

namespace yantra::storage {

class AuthStore {
 public:
  AuthStore(const AuthStore&) = delete;
  AuthStore& operator=(const AuthStore&) = delete;

  // API keys, by the SHA-256 (hex) of their secret, plus the per-tenant
  // index by key id. key.tenant() must be a valid tenant id and key.key_id()
  // non-empty ("invalid_argument" otherwise).
  Status put_api_key(std::string_view hash, const v1::ApiKey& key);
  Result<std::optional<v1::ApiKey>> find_api_key(std::string_view hash) const;
  // Keys of the tenant that are not revoked.
  Result<size_t> count_api_keys(std::string_view tenant) const;
  // Every key of the tenant (revoked ones included), ordered by key id.
  Result<std::vector<v1::ApiKey>> list_api_keys(std::string_view tenant) const;
  // (hash, key) of one key of `tenant`; nullopt when that tenant has no such
  // key id, even if another tenant has.
  Result<std::optional<std::pair<std::string, v1::ApiKey>>> find_api_key_by_id(
      std::string_view tenant, std::string_view key_id) const;
  // Marks the key revoked and returns its hash (to evict caches). "not_found"
  // when the key is not one of `tenant`'s. Revoking twice is fine.
  Result<std::string> revoke_api_key(std::string_view tenant, std::string_view key_id);

  // Tenants (since 0.3). put_tenant upserts by id.
  Status put_tenant(const v1::Tenant& tenant);
  Result<std::optional<v1::Tenant>> get_tenant(std::string_view id) const;
  // Ordered by id.
  Result<std::vector<v1::Tenant>> list_tenants() const;
  // Removes the tenant row and revokes every key of the tenant, one batch.
  // Its flows, executions, secrets and audit chain stay (they are history).
  // "not_found" when there is no such tenant.
  Status delete_tenant(std::string_view id);

  // Tool registrations (since 0.8): a tenant's MCP servers and workers.
  // put upserts by (tenant, kind, id); delete answers "not_found" when there
  // is no such row. tenant and id follow the flow-id rules, kind is
  // [a-z_]+ ("invalid_argument" otherwise).
  Status put_tool_registration(const v1::ToolRegistration& registration);
  Status delete_tool_registration(std::string_view tenant, std::string_view kind,
                                  std::string_view id);
  Result<std::optional<v1::ToolRegistration>> get_tool_registration(std::string_view tenant,
                                                                    std::string_view kind,
                                                                    std::string_view id) const;
  // Ordered by id.
  Result<std::vector<v1::ToolRegistration>> list_tool_registrations(std::string_view tenant,
                                                                    std::string_view kind) const;
  // Every tenant's registrations of one kind ("" = of every kind): a scan
  // of the "g" rows, which are few.
  Result<std::vector<v1::ToolRegistration>> all_tool_registrations(std::string_view kind) const;

 private:
  friend class Store;
  explicit AuthStore(const internal::Db& db) : db_(db) {}
  // Adds the key-id index rows that keys written before 0.3 lack (at open).
  Status backfill_api_key_index();
  const internal::Db& db_;
  std::mutex write_mu_;  // serialises key and tenant writes
};

}  // namespace yantra::storage
