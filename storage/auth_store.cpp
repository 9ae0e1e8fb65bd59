// AuthStore: API keys are point-read by the hash of their secret on every
// request (the API's key cache sits above); the per-tenant "x" index makes
// every by-id operation a point read of the index and one of the key. Writes
// read-modify-write under one mutex: re-keying a hash to another tenant or
// id must also drop the old index row, and a revoke must see the key's
// current row.
#include "storage/auth_store.hpp"

#include <algorithm>

#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/scan.hpp"

namespace yantra::storage {

using internal::invalid;

namespace {

Status invalid_tenant() {
  return invalid("tenant must be non-empty and contain no NUL");
}

}  // namespace

Status AuthStore::put_api_key(std::string_view hash, const v1::ApiKey& key) {
  if (!keys::valid_flow_part(key.tenant())) return invalid_tenant();
  if (key.key_id().empty()) return invalid("API key id is empty");
  if (hash.empty()) return invalid("API key hash is empty");
  std::lock_guard lock(write_mu_);
  if (db_.store->read_only()) return db_.store->read_only_error();
  std::string k;
  keys::api_key_key(k, hash);
  // Re-keying a hash to another tenant or id must not leave the old index
  // row pointing at it.
  auto previous = internal::parse_row<v1::ApiKey>(db_.get(db_.auth, k), "an API key");
  if (!previous.ok()) return previous.status();
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  std::string index;
  if (previous.value() &&
      (previous.value()->tenant() != key.tenant() || previous.value()->key_id() != key.key_id())) {
    keys::api_key_index_key(index, previous.value()->tenant(), previous.value()->key_id());
    check(batch.Delete(db_.auth, index));
  }
  check(batch.Put(db_.auth, k, key.SerializeAsString()));
  keys::api_key_index_key(index, key.tenant(), key.key_id());
  check(batch.Put(db_.auth, index, rocksdb::Slice(hash.data(), hash.size())));
  if (Status st = check.status(); !st.is_ok()) return st;
  return db_.write(batch, db_.sync_writes());
}

Result<std::optional<v1::ApiKey>> AuthStore::find_api_key(std::string_view hash) const {
  std::string k;
  keys::api_key_key(k, hash);
  return internal::parse_row<v1::ApiKey>(db_.get(db_.auth, k), "an API key");
}

Result<size_t> AuthStore::count_api_keys(std::string_view tenant) const {
  auto all = list_api_keys(tenant);
  if (!all.ok()) return all.status();
  return static_cast<size_t>(
      std::count_if(all->begin(), all->end(), [](const v1::ApiKey& k) { return !k.revoked(); }));
}

Result<std::vector<v1::ApiKey>> AuthStore::list_api_keys(std::string_view tenant) const {
  if (!keys::valid_flow_part(tenant)) return invalid_tenant();
  std::string prefix;
  keys::api_key_index_prefix(prefix, tenant);
  std::vector<v1::ApiKey> out;
  Status st =
      internal::scan_prefix(db_, db_.auth, std::move(prefix),
                            [&](const rocksdb::Slice&, const rocksdb::Slice& hash) -> Status {
                              auto key = find_api_key(hash.ToStringView());
                              if (!key.ok()) return key.status();
                              // An index row whose key is gone or moved is stale: skip it rather
                              // than show another tenant's key.
                              if (key.value() && key.value()->tenant() == tenant)
                                out.push_back(std::move(*key.value()));
                              return {};
                            });
  if (!st.is_ok()) return st;
  return out;
}

Result<std::optional<std::pair<std::string, v1::ApiKey>>> AuthStore::find_api_key_by_id(
    std::string_view tenant, std::string_view key_id) const {
  using Found = std::optional<std::pair<std::string, v1::ApiKey>>;
  if (!keys::valid_flow_part(tenant)) return invalid_tenant();
  if (key_id.empty()) return Found();
  std::string index;
  keys::api_key_index_key(index, tenant, key_id);
  auto hash = db_.get(db_.auth, index);
  if (!hash.ok()) return hash.status();
  if (!hash.value()) return Found();
  auto key = find_api_key(*hash.value());
  if (!key.ok()) return key.status();
  if (!key.value() || key.value()->tenant() != tenant || key.value()->key_id() != key_id) {
    return Found();
  }
  return Found(std::make_pair(std::move(*hash.value()), std::move(*key.value())));
}

Result<std::string> AuthStore::revoke_api_key(std::string_view tenant, std::string_view key_id) {
  if (!keys::valid_flow_part(tenant)) return invalid_tenant();
  std::lock_guard lock(write_mu_);
  if (db_.store->read_only()) return db_.store->read_only_error();
  auto found = find_api_key_by_id(tenant, key_id);
  if (!found.ok()) return found.status();
  if (!found.value()) {
    return Status(Errc::kNotFound,
                  "tenant " + std::string(tenant) + " has no API key " + std::string(key_id));
  }
  auto& [hash, key] = *found.value();
  key.set_revoked(true);
  std::string k;
  keys::api_key_key(k, hash);
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  check(batch.Put(db_.auth, k, key.SerializeAsString()));
  if (Status st = check.status(); !st.is_ok()) return st;
  if (Status st = db_.write(batch, db_.sync_writes()); !st.is_ok()) return st;
  return std::move(hash);
}

Status AuthStore::backfill_api_key_index() {
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  std::string index;
  Status st = internal::scan_prefix(
      db_, db_.auth, "k", [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Status {
        v1::ApiKey api_key;
        // Unparseable or unindexable keys stay as they are: find_api_key
        // still reports them; they just do not show up in listings.
        if (!internal::parse_value(value, api_key) || !keys::valid_flow_part(api_key.tenant()) ||
            api_key.key_id().empty()) {
          return {};
        }
        keys::api_key_index_key(index, api_key.tenant(), api_key.key_id());
        auto existing = db_.get(db_.auth, index);
        if (!existing.ok()) return existing.status();
        if (existing.value()) return {};
        check(batch.Put(db_.auth, index, rocksdb::Slice(key.data() + 1, key.size() - 1)));
        return {};
      });
  if (!st.is_ok()) return st;
  if (Status s = check.status(); !s.is_ok()) return s;
  if (batch.Count() == 0) return {};
  return db_.write(batch, /*sync=*/true);
}

Status AuthStore::put_tenant(const v1::Tenant& tenant) {
  if (!keys::valid_flow_part(tenant.id())) return invalid_tenant();
  std::lock_guard lock(write_mu_);
  if (db_.store->read_only()) return db_.store->read_only_error();
  std::string k;
  keys::tenant_key(k, tenant.id());
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  check(batch.Put(db_.auth, k, tenant.SerializeAsString()));
  if (Status st = check.status(); !st.is_ok()) return st;
  return db_.write(batch, db_.sync_writes());
}

Result<std::optional<v1::Tenant>> AuthStore::get_tenant(std::string_view id) const {
  if (!keys::valid_flow_part(id)) return invalid_tenant();
  std::string k;
  keys::tenant_key(k, id);
  return internal::parse_row<v1::Tenant>(db_.get(db_.auth, k), "tenant " + std::string(id));
}

Result<std::vector<v1::Tenant>> AuthStore::list_tenants() const {
  std::vector<v1::Tenant> out;
  Status st = internal::scan_prefix(
      db_, db_.auth, "t", [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Status {
        if (!internal::parse_value(value, out.emplace_back())) {
          return internal::corrupt("tenant " + key.ToString().substr(1));
        }
        return {};
      });
  if (!st.is_ok()) return st;
  return out;
}

Status AuthStore::delete_tenant(std::string_view id) {
  if (!keys::valid_flow_part(id)) return invalid_tenant();
  std::lock_guard lock(write_mu_);
  if (db_.store->read_only()) return db_.store->read_only_error();
  auto existing = get_tenant(id);
  if (!existing.ok()) return existing.status();
  if (!existing.value()) return Status(Errc::kNotFound, "no tenant " + std::string(id));
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  std::string k;
  keys::tenant_key(k, id);
  check(batch.Delete(db_.auth, k));
  // Index rows stay, so the revoked keys remain listable (an audit trail).
  std::string prefix;
  keys::api_key_index_prefix(prefix, id);
  auto key_ids = internal::key_suffixes(db_, db_.auth, prefix);
  if (!key_ids.ok()) return key_ids.status();
  for (const auto& key_id : *key_ids) {
    auto found = find_api_key_by_id(id, key_id);
    if (!found.ok()) return found.status();
    if (!found.value() || found.value()->second.revoked()) continue;
    found.value()->second.set_revoked(true);
    keys::api_key_key(k, found.value()->first);
    check(batch.Put(db_.auth, k, found.value()->second.SerializeAsString()));
  }
  if (Status st = check.status(); !st.is_ok()) return st;
  return db_.write(batch, db_.sync_writes());
}

namespace {

bool valid_kind(std::string_view kind) {
  if (kind.empty() || kind.size() > 32) return false;
  for (char c : kind) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

Status check_registration_key(std::string_view tenant, std::string_view kind, std::string_view id) {
  if (!keys::valid_flow_part(tenant)) return invalid_tenant();
  if (!valid_kind(kind)) {
    return Status(Errc::kInvalidArgument, "invalid tool registration kind '" + std::string(kind) +
                                              "' (lowercase letters and '_')");
  }
  if (!keys::valid_flow_part(id)) {
    return Status(Errc::kInvalidArgument, "invalid tool registration id '" + std::string(id) + "'");
  }
  return {};
}

}  // namespace

Status AuthStore::put_tool_registration(const v1::ToolRegistration& registration) {
  if (Status st =
          check_registration_key(registration.tenant(), registration.kind(), registration.id());
      !st.is_ok()) {
    return st;
  }
  std::lock_guard lock(write_mu_);
  if (db_.store->read_only()) return db_.store->read_only_error();
  std::string k;
  keys::tool_registration_key(k, registration.tenant(), registration.kind(), registration.id());
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  check(batch.Put(db_.auth, k, registration.SerializeAsString()));
  if (Status st = check.status(); !st.is_ok()) return st;
  return db_.write(batch, db_.sync_writes());
}

Status AuthStore::delete_tool_registration(std::string_view tenant, std::string_view kind,
                                           std::string_view id) {
  if (Status st = check_registration_key(tenant, kind, id); !st.is_ok()) return st;
  std::lock_guard lock(write_mu_);
  if (db_.store->read_only()) return db_.store->read_only_error();
  std::string k;
  keys::tool_registration_key(k, tenant, kind, id);
  auto existing = db_.get(db_.auth, k);
  if (!existing.ok()) return existing.status();
  if (!existing.value()) {
    return Status(Errc::kNotFound, "tenant " + std::string(tenant) + " has no " +
                                       std::string(kind) + " '" + std::string(id) + "'");
  }
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  check(batch.Delete(db_.auth, k));
  if (Status st = check.status(); !st.is_ok()) return st;
  return db_.write(batch, db_.sync_writes());
}

Result<std::optional<v1::ToolRegistration>> AuthStore::get_tool_registration(
    std::string_view tenant, std::string_view kind, std::string_view id) const {
  if (Status st = check_registration_key(tenant, kind, id); !st.is_ok()) return st;
  std::string k;
  keys::tool_registration_key(k, tenant, kind, id);
  return internal::parse_row<v1::ToolRegistration>(
      db_.get(db_.auth, k),
      std::string(kind) + " " + std::string(id) + " of " + std::string(tenant));
}

Result<std::vector<v1::ToolRegistration>> AuthStore::list_tool_registrations(
    std::string_view tenant, std::string_view kind) const {
  if (Status st = check_registration_key(tenant, kind, "x"); !st.is_ok()) return st;
  std::string prefix;
  keys::tool_registration_prefix(prefix, tenant, kind);
  std::vector<v1::ToolRegistration> out;
  Status st = internal::scan_prefix(
      db_, db_.auth, prefix, [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Status {
        if (!internal::parse_value(value, out.emplace_back())) {
          return internal::corrupt("tool registration " + key.ToString().substr(1));
        }
        return {};
      });
  if (!st.is_ok()) return st;
  return out;
}

Result<std::vector<v1::ToolRegistration>> AuthStore::all_tool_registrations(
    std::string_view kind) const {
  std::vector<v1::ToolRegistration> out;
  Status st = internal::scan_prefix(
      db_, db_.auth, "g", [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Status {
        v1::ToolRegistration r;
        if (!internal::parse_value(value, r)) {
          return internal::corrupt("tool registration " + key.ToString().substr(1));
        }
        if (kind.empty() || r.kind() == kind) out.push_back(std::move(r));
        return {};
      });
  if (!st.is_ok()) return st;
  return out;
}

}  // namespace yantra::storage
