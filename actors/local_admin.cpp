// LocalAdmin: the single-node Admin (actors/admin.hpp) over the engine's own
// stores. Every write and every audit query runs as a task on a small pool
// of its own threads, which then calls the caller's callback: the synced
// RocksDB write (or the wait for the audit writer) blocks a pool thread,
// never an HTTP I/O thread and never a CAF scheduler thread. A separate pool
// from the engine's I/O pool, so that a burst of admin writes parked on a
// slow fsync cannot delay activations and recovery reads.
//
// Flow writes go through Engine::put_flow / delete_flow (they keep the flow
// cache and the trigger indexes in step) and tenant writes through
// Engine::put_tenant / delete_tenant (admission's cache); the rest goes to
// the typed stores directly, as the route handlers did before.
//
// A callback that throws is logged and swallowed: an exception must not
// cross into the pool's thread loop (the request then gets the HTTP
// server's 500 for a dropped responder).
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

#include "actors/admin.hpp"
#include "actors/engine.hpp"
#include "actors/errc.hpp"
#include "actors/internal/io_pool.hpp"
#include "actors/internal/parts.hpp"
#include "base/time.hpp"
#include "storage/audit_log.hpp"
#include "storage/auth_store.hpp"
#include "storage/store.hpp"
#include "storage/trigger_store.hpp"
#include "storage/vault.hpp"

namespace yantra {
namespace {

const Status kNoVault(ActorsErrc::kVaultUnavailable, "this node has no master key configured");

SecretInfo info_of(const storage::Vault::SecretInfo& i) {
  return SecretInfo{i.name, i.version, i.created_ms, i.updated_ms};
}

class LocalAdmin final : public Admin {
 public:
  LocalAdmin(Engine& engine, size_t threads)
      : engine_(engine), parts_(detail::parts_of(engine)), pool_(threads == 0 ? 1 : threads) {}

  void put_flow(std::string tenant, json definition, std::string created_by, std::string note,
                Done<v1::FlowVersion> done) override {
    run([this, tenant = std::move(tenant), definition = std::move(definition),
         created_by = std::move(created_by), note = std::move(note), done = std::move(done)]() {
      auto version = engine_.put_flow(tenant, definition, created_by, note);
      if (!version.ok()) return done(version.status());
      done(engine_.get_flow_version(tenant, definition.value("id", ""), version.value()));
    });
  }

  void delete_flow(std::string tenant, std::string flow_id, std::string deleted_by,
                   Done<uint32_t> done) override {
    run([this, tenant = std::move(tenant), flow_id = std::move(flow_id),
         deleted_by = std::move(deleted_by),
         done = std::move(done)]() { done(engine_.delete_flow(tenant, flow_id, deleted_by)); });
  }

  void put_api_key(std::string hash, v1::ApiKey key, StatusDone done) override {
    run([this, hash = std::move(hash), key = std::move(key), done = std::move(done)]() {
      done(engine_.put_api_key(hash, key));
    });
  }

  void revoke_api_key(std::string tenant, std::string key_id, Done<std::string> done) override {
    run([this, tenant = std::move(tenant), key_id = std::move(key_id), done = std::move(done)]() {
      done(parts_.store->auth().revoke_api_key(tenant, key_id));
    });
  }

  Result<std::vector<v1::ApiKey>> list_api_keys(const std::string& tenant) const override {
    return parts_.store->auth().list_api_keys(tenant);
  }

  Result<std::optional<v1::ApiKey>> find_api_key_by_id(const std::string& tenant,
                                                       const std::string& key_id) const override {
    auto found = parts_.store->auth().find_api_key_by_id(tenant, key_id);
    if (!found.ok()) return found.status();
    if (!found.value().has_value()) return std::optional<v1::ApiKey>();
    return std::optional<v1::ApiKey>(std::move(found.value()->second));
  }

  void put_tenant(v1::Tenant tenant, StatusDone done) override {
    run([this, tenant = std::move(tenant), done = std::move(done)]() {
      done(engine_.put_tenant(tenant));
    });
  }

  void put_tool_registration(ToolRegistration registration, StatusDone done) override {
    run([this, registration = std::move(registration), done = std::move(done)]() mutable {
      if (registration.updated_ms == 0) registration.updated_ms = now_ms();
      if (Status s = check_tool_registration(registration); !s.is_ok()) return done(s);
      done(engine_.put_tool_registration(registration));
    });
  }

  void delete_tool_registration(std::string tenant, std::string kind, std::string id,
                                StatusDone done) override {
    run([this, tenant = std::move(tenant), kind = std::move(kind), id = std::move(id),
         done = std::move(done)]() { done(engine_.delete_tool_registration(tenant, kind, id)); });
  }

  Result<std::vector<ToolRegistration>> list_tool_registrations(
      const std::string& tenant, const std::string& kind) const override {
    return engine_.tool_registrations(tenant, kind);
  }

  Result<std::optional<ToolRegistration>> find_tool_registration(
      const std::string& tenant, const std::string& kind, const std::string& id) const override {
    return engine_.tool_registration(tenant, kind, id);
  }

  void delete_tenant(std::string id, StatusDone done) override {
    run([this, id = std::move(id), done = std::move(done)]() { done(engine_.delete_tenant(id)); });
  }

  bool has_vault() const override { return parts_.vault != nullptr; }

  void put_secret(std::string tenant, std::string name, std::string value, int64_t now_ms,
                  Done<SecretInfo> done) override {
    run([this, tenant = std::move(tenant), name = std::move(name), value = std::move(value), now_ms,
         done = std::move(done)]() {
      if (parts_.vault == nullptr) return done(kNoVault);
      auto info = parts_.vault->put(tenant, name, value, now_ms);
      if (!info.ok()) return done(info.status());
      done(info_of(info.value()));
    });
  }

  void delete_secret(std::string tenant, std::string name, StatusDone done) override {
    run([this, tenant = std::move(tenant), name = std::move(name), done = std::move(done)]() {
      if (parts_.vault == nullptr) return done(kNoVault);
      done(parts_.vault->remove(tenant, name));
    });
  }

  Result<std::vector<SecretInfo>> list_secrets(const std::string& tenant) const override {
    if (parts_.vault == nullptr) return kNoVault;
    auto all = parts_.vault->list(tenant);
    if (!all.ok()) return all.status();
    std::vector<SecretInfo> out;
    out.reserve(all.value().size());
    for (const auto& i : all.value()) out.push_back(info_of(i));
    return out;
  }

  Result<std::optional<std::string>> secret_value(const std::string& tenant,
                                                  const std::string& name) const override {
    if (parts_.vault == nullptr) return kNoVault;
    return parts_.vault->get(tenant, name);
  }

  Result<std::optional<HookTarget>> find_hook(const std::string& hook_id) const override {
    auto found = parts_.triggers->find_hook(hook_id);
    if (!found.ok()) return found.status();
    if (!found.value().has_value()) return std::optional<HookTarget>();
    return std::optional<HookTarget>(
        HookTarget{std::move(found.value()->tenant), std::move(found.value()->flow_id)});
  }

  Result<std::optional<std::string>> hook_of(const std::string& tenant,
                                             const std::string& flow_id) const override {
    return parts_.triggers->hook_of(tenant, flow_id);
  }

  void rotate_hook(std::string tenant, std::string flow_id, Done<std::string> done) override {
    run([this, tenant = std::move(tenant), flow_id = std::move(flow_id), done = std::move(done)]() {
      done(parts_.triggers->rotate_hook(tenant, flow_id));
    });
  }

  void audit(AuditEntry entry) override {
    storage::AuditEntry e;
    e.time_ms = entry.time_ms;
    e.tenant = std::move(entry.tenant);
    e.key_id = std::move(entry.key_id);
    e.role = std::move(entry.role);
    e.action = std::move(entry.action);
    e.resource = std::move(entry.resource);
    e.outcome = std::move(entry.outcome);
    e.request_id = std::move(entry.request_id);
    e.detail = std::move(entry.detail);
    parts_.audit->append(std::move(e));  // queued: never blocks
  }

  void audit_query(AuditQuery q, Done<std::vector<AuditListed>> done) override {
    run([this, q = std::move(q), done = std::move(done)]() { done(list_audit(q)); });
  }

  void audit_verify(std::string chain, Done<AuditVerifyReport> done) override {
    run([this, chain = std::move(chain), done = std::move(done)]() {
      parts_.audit->flush();
      auto report = parts_.audit->verify_all(chain);
      if (!report.ok()) return done(report.status());
      const auto& r = report.value();
      done(AuditVerifyReport{r.ok, r.records, r.first_broken_seq, r.reason, r.chains,
                             r.broken_partition});
    });
  }

  void audit_report(std::string chain, int64_t from_ms, int64_t to_ms,
                    Done<AuditCounts> done) override {
    run([this, chain = std::move(chain), from_ms, to_ms, done = std::move(done)]() {
      done(parts_.audit->report(chain, from_ms, to_ms));
    });
  }

 private:
  // The tenant's chains from the cursor's on, until `limit` records.
  Result<std::vector<AuditListed>> list_audit(const AuditQuery& q) const {
    auto chains = parts_.audit->chains(q.chain);
    if (!chains.ok()) return chains.status();
    std::vector<AuditListed> out;
    bool reached = !q.after_partition && q.after_seq == 0;
    for (const storage::AuditChainPartition& chain : chains.value()) {
      uint64_t after = 0;
      if (!reached) {
        // The cursor's chain, or the first one after it in the walk's order.
        if (chain == q.after_partition) {
          after = q.after_seq;
        } else if (chain.has_value() && (!q.after_partition || *chain < *q.after_partition)) {
          continue;
        } else if (!chain.has_value()) {
          continue;
        }
        reached = true;
      }
      const size_t room = q.limit == 0 ? 0 : q.limit - out.size();
      auto records = parts_.audit->query(q.chain, q.from_ms, q.to_ms, q.action, room, after, chain);
      if (!records.ok()) return records.status();
      for (auto& r : records.value()) out.push_back({chain, std::move(r)});
      if (q.limit != 0 && out.size() >= q.limit) break;
    }
    return out;
  }

  template <typename Task>
  void run(Task task) {
    pool_.submit([task = std::move(task)]() mutable {
      try {
        task();
      } catch (const std::exception& e) {
        spdlog::error("admin: a completion callback threw: {}", e.what());
      } catch (...) {
        spdlog::error("admin: a completion callback threw a non-exception");
      }
    });
  }

  Engine& engine_;
  detail::EngineParts parts_;
  detail::IoPool pool_;  // last: joined first, while the rest is alive
};

}  // namespace

std::unique_ptr<Admin> make_local_admin(Engine& engine, size_t threads) {
  return std::make_unique<LocalAdmin>(engine, threads);
}

}  // namespace yantra
