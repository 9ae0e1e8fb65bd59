// Cluster resources (resources.hpp). Design notes:
//
// - Values in etcd are the protobuf rows the local store keeps (FlowVersion,
//   Tenant, ApiKey, TenantDataKey, SecretRecord), so installing one is
//   writing it as it is; small bookkeeping records (a flow's head, a hook
//   claim, the bootstrap record) are JSON.
// - Every write that must be unique or ordered is a transaction that
//   compares what it read (mod_revision, or create_revision == 0 for
//   "absent") and is retried from a fresh read when another writer got
//   there first: a flow's next version (its head key), a webhook id (its
//   claim key), a secret's version, a key's revocation, a tenant deletion.
// - A write is answered once the local mirror installed its revision: the
//   txn's header revision is the mod_revision of every key it wrote, and the
//   mirror's revision advances only with events of the prefix, so waiting
//   for it is exact.
// - A write whose outcome etcd leaves unknown (a timeout, a lost connection)
//   is answered with that error (503): the client retries, which for a flow
//   may store one more version with the same definition.
// - The mirror installs a batch in dependency order (tenants, keys, data
//   keys, secrets, hook ids, flows): a webhook flow's hook id is in place
//   before the version whose triggers look for it.
#include "cluster/resources.hpp"

#include <algorithm>
#include <cstdio>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "actors/engine.hpp"
#include "actors/errc.hpp"
#include "actors/internal/io_pool.hpp"
#include "actors/internal/parts.hpp"
#include "base/time.hpp"
#include "cluster/audit_relay.hpp"
#include "cluster/errc.hpp"
#include "runtime/execution.hpp"
#include "runtime/flow.hpp"
#include "storage/trigger_store.hpp"
#include "storage/vault.hpp"

namespace yantra::cluster {
namespace {

using std::chrono::milliseconds;

const Status kNoVault(ActorsErrc::kVaultUnavailable, "this node has no master key configured");
constexpr int kMaxAttempts = 64;

std::string enc(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '_' || c == '-';
    if (plain) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::optional<std::string> dec(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_digit(s[i + 1]);
    const int lo = hex_digit(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// "a/b/c" -> decoded parts; nullopt when one does not decode.
std::optional<std::vector<std::string>> split(std::string_view s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = s.find('/', start);
    auto part = dec(s.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (!part) return std::nullopt;
    parts.push_back(std::move(*part));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

template <typename Proto>
bool parse_proto(const std::string& bytes, Proto& out) {
  return out.ParseFromString(bytes);
}

Status too_large(const std::string& what, size_t bytes) {
  return Status(Errc::kInvalidArgument, what + " is " + std::to_string(bytes) +
                                            " bytes; a cluster stores at most " +
                                            std::to_string(kMaxResourceBytes) +
                                            " bytes per record (etcd limits a request to 1.5 MiB)");
}

Status bad_record(const std::string& key, const std::string& why) {
  return Status(ClusterErrc::kInvalidRecord, "etcd record " + key + ": " + why);
}

// A short random pause between attempts of a compare-and-swap that lost, so
// that racing writers do not retry in lockstep.
void backoff(int attempt) {
  thread_local std::mt19937 rng{std::random_device{}()};
  const int cap = std::min(2 << std::min(attempt, 5), 50);
  std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<int>(1, cap)(rng)));
}

Status contended(const std::string& what) {
  return Status(Errc::kConflict, "too many concurrent writes of " + what + "; retry");
}

const KeyValue* first_kv(const TxnResponse& r, size_t i) {
  if (i >= r.responses.size()) return nullptr;
  const auto* range = std::get_if<RangeResponse>(&r.responses[i]);
  if (range == nullptr || range->kvs.empty()) return nullptr;
  return &range->kvs.front();
}

Result<std::optional<KeyValue>> get_one(EtcdClient& etcd, const std::string& key) {
  auto r = etcd.range(RangeRequest::single(key));
  if (!r.ok()) return r.status();
  if (r->kvs.empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(std::move(r->kvs.front()));
}

// "exists as read" for a compare: unchanged since read, or still absent.
Compare unchanged(const std::string& key, const std::optional<KeyValue>& read) {
  return read ? Compare::mod_revision_is(key, Compare::Op::kEqual, read->mod_revision)
              : Compare::create_revision_is(key, Compare::Op::kEqual, 0);
}

struct Head {
  uint32_t version = 0;
  bool deleted = false;
};

Result<Head> parse_head(const KeyValue& kv) {
  json doc = json::parse(kv.value, nullptr, false);
  if (!doc.is_object() || !doc.contains("version") || !doc["version"].is_number_unsigned()) {
    return bad_record(kv.key, "a flow head is {\"version\": N, \"deleted\": bool}");
  }
  Head h;
  h.version = doc["version"].get<uint32_t>();
  h.deleted = doc.value("deleted", false);
  return h;
}

std::string head_value(const Head& h) {
  return json{{"version", h.version}, {"deleted", h.deleted}}.dump();
}

}  // namespace

// --- keys ---------------------------------------------------------------------------

std::string ResourceKeys::tenant(const std::string& id) const {
  return root_ + "tenants/" + enc(id);
}
std::string ResourceKeys::api_key(const std::string& tenant, const std::string& hash) const {
  return api_keys_of(tenant) + enc(hash);
}
std::string ResourceKeys::api_keys_of(const std::string& tenant) const {
  return root_ + "keys/" + enc(tenant) + "/";
}
std::string ResourceKeys::data_key(const std::string& tenant) const {
  return root_ + "vault/dk/" + enc(tenant);
}
std::string ResourceKeys::secret(const std::string& tenant, const std::string& name) const {
  return root_ + "vault/s/" + enc(tenant) + "/" + enc(name);
}
std::string ResourceKeys::flow_head(const std::string& tenant, const std::string& flow_id) const {
  return root_ + "flow-head/" + enc(tenant) + "/" + enc(flow_id);
}
std::string ResourceKeys::flow_version(const std::string& tenant, const std::string& flow_id,
                                       uint32_t version) const {
  char digits[16];
  std::snprintf(digits, sizeof digits, "%010u", version);
  return root_ + "flows/" + enc(tenant) + "/" + enc(flow_id) + "/" + digits;
}
std::string ResourceKeys::hook_of(const std::string& tenant, const std::string& flow_id) const {
  return root_ + "hook-of/" + enc(tenant) + "/" + enc(flow_id);
}
std::string ResourceKeys::hook(const std::string& hook_id) const {
  return root_ + "hooks/" + enc(hook_id);
}
std::string ResourceKeys::tool_registration(const std::string& tenant, const std::string& kind,
                                            const std::string& id) const {
  return root_ + "tools/" + enc(tenant) + "/" + enc(kind) + "/" + enc(id);
}
std::string ResourceKeys::bootstrap() const {
  return root_ + "bootstrap";
}

// --- the mirror ---------------------------------------------------------------------

namespace {

// In install order: a tool registration may name secrets (an MCP server's
// headers), and flows are validated against the tools registrations bring.
enum class Kind {
  kTenant,
  kApiKey,
  kDataKey,
  kSecret,
  kToolRegistration,
  kHookOf,
  kFlowVersion,
  kOther
};

struct Parsed {
  Kind kind = Kind::kOther;
  std::vector<std::string> parts;  // decoded ids after the kind
};

Parsed parse_key(const std::string& root, const std::string& key) {
  Parsed p;
  if (key.compare(0, root.size(), root) != 0) return p;
  const std::string_view rest = std::string_view(key).substr(root.size());
  struct Shape {
    std::string_view head;
    Kind kind;
    size_t parts;
  };
  static constexpr Shape kShapes[] = {
      {"tenants/", Kind::kTenant, 1},         {"keys/", Kind::kApiKey, 2},
      {"vault/dk/", Kind::kDataKey, 1},       {"vault/s/", Kind::kSecret, 2},
      {"hook-of/", Kind::kHookOf, 2},         {"flows/", Kind::kFlowVersion, 3},
      {"tools/", Kind::kToolRegistration, 3},
  };
  for (const Shape& s : kShapes) {
    if (rest.substr(0, s.head.size()) != s.head) continue;
    auto parts = split(rest.substr(s.head.size()));
    if (!parts || parts->size() != s.parts) return p;
    for (const auto& part : *parts) {
      if (part.empty()) return p;
    }
    p.kind = s.kind;
    p.parts = std::move(*parts);
    return p;
  }
  return p;
}

int rank(Kind k) {
  return static_cast<int>(k);  // the enum is declared in install order
}

}  // namespace

ResourceMirror::ResourceMirror(Engine& engine, EtcdClient& etcd, const std::string& prefix,
                               Listener listener)
    : engine_(engine), keys_(prefix), listener_(std::move(listener)) {
  mirror_ =
      std::make_unique<PrefixMirror>(etcd, keys_.root(),
                                     [this](const std::vector<PrefixMirror::Change>& changes,
                                            int64_t revision) { on_changes(changes, revision); });
}

ResourceMirror::~ResourceMirror() {
  mirror_.reset();  // stops its threads: no on_changes after this
}

bool ResourceMirror::wait_synced(milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return synced_; });
}

bool ResourceMirror::wait_installed(int64_t revision, milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return synced_ && installed_ >= revision; });
}

int64_t ResourceMirror::installed_revision() const {
  std::lock_guard lock(mu_);
  return installed_;
}

int64_t ResourceMirror::listings() const {
  return mirror_ ? mirror_->listings() : 0;
}

void ResourceMirror::on_changes(const std::vector<PrefixMirror::Change>& changes,
                                int64_t revision) {
  std::vector<std::pair<int, const PrefixMirror::Change*>> ordered;
  ordered.reserve(changes.size());
  for (const auto& c : changes) ordered.emplace_back(rank(parse_key(keys_.root(), c.key).kind), &c);
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [r, c] : ordered) {
    Status s;
    try {
      s = install(*c);
    } catch (const std::exception& e) {
      s = Status(Errc::kInternalError, e.what());
    }
    if (!s.is_ok()) {
      install_errors_.fetch_add(1);
      spdlog::error("cluster resources: cannot install {}: {}", c->key, s.to_string());
    }
  }
  if (first_) {
    first_ = false;
    reconcile(changes);
  }
  {
    std::lock_guard lock(mu_);
    installed_ = std::max(installed_, revision);
    synced_ = true;
  }
  cv_.notify_all();
}

Status ResourceMirror::install(const PrefixMirror::Change& c) {
  const Parsed p = parse_key(keys_.root(), c.key);
  const detail::EngineParts parts = detail::parts_of(engine_);
  const bool put = c.after.has_value();
  switch (p.kind) {
    case Kind::kTenant: {
      const std::string& id = p.parts[0];
      Status s;
      if (put) {
        v1::Tenant t;
        if (!parse_proto(c.after->value, t) || t.id() != id)
          return bad_record(c.key, "not a Tenant");
        if (t.status() == "deleted") {
          // Revokes the tenant's local keys in one batch and leaves the
          // tombstone; the exact row follows.
          s = engine_.delete_tenant(id);
          if (s.is(Errc::kNotFound)) s = Status::ok();
        }
        if (s.is_ok()) s = engine_.put_tenant(t);
      } else {
        s = engine_.delete_tenant(id);
        if (s.is(Errc::kNotFound)) s = Status::ok();
      }
      if (listener_.tenant_changed) listener_.tenant_changed(id);
      return s;
    }
    case Kind::kApiKey: {
      if (!put) return Status::ok();  // keys are revoked (a put), never deleted
      v1::ApiKey key;
      if (!parse_proto(c.after->value, key) || key.tenant() != p.parts[0]) {
        return bad_record(c.key, "not an ApiKey of tenant " + p.parts[0]);
      }
      Status s = engine_.put_api_key(p.parts[1], key);
      if (listener_.key_changed) listener_.key_changed(p.parts[1]);
      return s;
    }
    case Kind::kDataKey:
      if (!put) return Status::ok();  // a data key is never deleted
      if (parts.vault == nullptr) return kNoVault;
      return parts.vault->install_data_key(p.parts[0], c.after->value);
    case Kind::kSecret: {
      if (parts.vault == nullptr) return kNoVault;
      if (put) return parts.vault->install_secret(p.parts[0], p.parts[1], c.after->value);
      Status s = parts.vault->remove(p.parts[0], p.parts[1]);
      return s.is(Errc::kNotFound) ? Status::ok() : s;
    }
    case Kind::kToolRegistration: {
      if (!put) {
        Status s = engine_.delete_tool_registration(p.parts[0], p.parts[1], p.parts[2]);
        return s.is(Errc::kNotFound) ? Status::ok() : s;
      }
      v1::ToolRegistration r;
      if (!parse_proto(c.after->value, r) || r.tenant() != p.parts[0] || r.kind() != p.parts[1] ||
          r.id() != p.parts[2]) {
        return bad_record(c.key, "not the ToolRegistration its key names");
      }
      return engine_.put_tool_registration(from_proto(r));
    }
    case Kind::kHookOf:
      // A flow's tombstone removes its trigger rows; the hook-of key goes
      // with it in the same txn, so its deletion needs nothing here.
      if (!put) return Status::ok();
      return parts.triggers->set_hook(p.parts[0], p.parts[1], c.after->value);
    case Kind::kFlowVersion: {
      if (!put) return Status::ok();  // versions are kept
      v1::FlowVersion fv;
      if (!parse_proto(c.after->value, fv) || fv.tenant() != p.parts[0] ||
          fv.flow_id() != p.parts[1] ||
          c.key != keys_.flow_version(p.parts[0], p.parts[1], fv.version())) {
        return bad_record(c.key, "not the FlowVersion its key names");
      }
      Status s = engine_.install_flow_version(fv);
      if (!s.is_ok() && (s.code() == "invalid_flow" || s.is(Errc::kInvalidArgument))) {
        // Stored, but this node cannot run it (a tool it lacks, say).
        spdlog::warn("cluster resources: flow {}/{} v{} does not parse here: {}", fv.tenant(),
                     fv.flow_id(), fv.version(), s.to_string());
        return Status::ok();
      }
      return s;
    }
    case Kind::kOther: return Status::ok();  // heads, hook claims, the bootstrap record
  }
  return Status::ok();
}

// Tool registrations are deleted for real too: the ones this node holds and
// etcd does not were deleted while it was down.
void ResourceMirror::reconcile_tool_registrations(
    const std::vector<PrefixMirror::Change>& listing) {
  std::set<std::string> in_etcd;
  for (const auto& c : listing) {
    if (c.after && parse_key(keys_.root(), c.key).kind == Kind::kToolRegistration) {
      in_etcd.insert(c.key);
    }
  }
  auto local = engine_.all_tool_registrations("");
  if (!local.ok()) {
    install_errors_.fetch_add(1);
    spdlog::error("cluster resources: cannot list tool registrations: {}",
                  local.status().to_string());
    return;
  }
  for (const auto& r : local.value()) {
    if (in_etcd.count(keys_.tool_registration(r.tenant, r.kind, r.id)) != 0) continue;
    Status s = engine_.delete_tool_registration(r.tenant, r.kind, r.id);
    if (!s.is_ok() && !s.is(Errc::kNotFound)) {
      install_errors_.fetch_add(1);
      spdlog::error("cluster resources: cannot drop {} {} of {}: {}", r.kind, r.id, r.tenant,
                    s.to_string());
    }
  }
}

void ResourceMirror::reconcile(const std::vector<PrefixMirror::Change>& listing) {
  // Secrets are the one resource etcd deletes for real (a deleted tenant,
  // flow or key is a record too: a tombstone, a tombstone version, a
  // revoked key), so the first listing after a start must drop the ones
  // deleted while this node was down. What etcd holds comes from the
  // listing (every key arrives as new).
  reconcile_tool_registrations(listing);
  storage::Vault* vault = detail::parts_of(engine_).vault;
  if (vault == nullptr) return;
  std::set<std::string> tenants;
  std::set<std::pair<std::string, std::string>> secrets;
  for (const auto& c : listing) {
    if (!c.after) continue;
    const Parsed p = parse_key(keys_.root(), c.key);
    if (p.kind == Kind::kTenant || p.kind == Kind::kDataKey) tenants.insert(p.parts[0]);
    if (p.kind == Kind::kSecret) secrets.emplace(p.parts[0], p.parts[1]);
  }
  auto local = engine_.list_tenants();
  if (local.ok()) {
    for (const auto& t : local.value()) tenants.insert(t.id());
  }
  tenants.insert("default");
  for (const auto& t : tenants) {
    auto names = vault->list(t);
    if (!names.ok()) continue;
    for (const auto& info : names.value()) {
      if (secrets.count({t, info.name}) != 0) continue;
      Status s = vault->remove(t, info.name);
      if (!s.is_ok() && !s.is(Errc::kNotFound)) {
        install_errors_.fetch_add(1);
        spdlog::error("cluster resources: cannot drop secret {} of {}: {}", info.name, t,
                      s.to_string());
      }
    }
  }
}

// --- the admin ----------------------------------------------------------------------

namespace {

class ClusterAdmin final : public Admin {
 public:
  ClusterAdmin(Engine& engine, EtcdClient& etcd, std::string prefix, ResourceMirror& mirror,
               ClusterAdminOptions options)
      : engine_(engine),
        etcd_(etcd),
        keys_(prefix),
        mirror_(mirror),
        options_(options),
        vault_(detail::parts_of(engine).vault),
        local_(make_local_admin(engine, 1)),
        pool_(options.threads == 0 ? 1 : options.threads) {}

  // --- flows ---

  void put_flow(std::string tenant, json definition, std::string created_by, std::string note,
                Done<v1::FlowVersion> done) override {
    run(std::move(done),
        [this, tenant = std::move(tenant), definition = std::move(definition),
         created_by = std::move(created_by), note = std::move(note)]() -> Result<v1::FlowVersion> {
          auto flow = parse_flow(definition, ParseOptions{engine_.tool_specs(tenant)});
          if (!flow.ok()) return flow.status();
          const std::string& flow_id = flow.value()->id;
          if (!valid_id(tenant) || !valid_id(flow_id)) {
            return Status(Errc::kInvalidArgument,
                          "tenant and flow id must be non-empty and contain no NUL");
          }
          v1::FlowVersion fv;
          fv.set_tenant(tenant);
          fv.set_flow_id(flow_id);
          fv.set_definition_json(dump_canonical(definition));
          fv.set_created_ms(now_ms());
          fv.set_created_by(created_by);
          fv.set_note(note);
          if (fv.ByteSizeLong() > kMaxResourceBytes) {
            return too_large("flow definition '" + flow_id + "'", fv.ByteSizeLong());
          }
          const bool webhook = flow.value()->trigger_spec.type == Trigger::Type::kWebhook;
          if (Status s = next_version(fv, webhook); !s.is_ok()) return s;
          return fv;
        });
  }

  void delete_flow(std::string tenant, std::string flow_id, std::string deleted_by,
                   Done<uint32_t> done) override {
    run(std::move(done),
        [this, tenant = std::move(tenant), flow_id = std::move(flow_id),
         deleted_by = std::move(deleted_by)]() -> Result<uint32_t> {
          if (!valid_id(tenant) || !valid_id(flow_id)) {
            return Status(Errc::kInvalidArgument,
                          "tenant and flow id must be non-empty and contain no NUL");
          }
          v1::FlowVersion tomb;
          tomb.set_tenant(tenant);
          tomb.set_flow_id(flow_id);
          tomb.set_created_ms(now_ms());
          tomb.set_created_by(deleted_by);
          tomb.set_deleted(true);
          if (Status s = next_version(tomb, false); !s.is_ok()) return s;
          return tomb.version();
        });
  }

  // --- API keys ---

  void put_api_key(std::string hash, v1::ApiKey key, StatusDone done) override {
    run_status(std::move(done), [this, hash = std::move(hash), key = std::move(key)]() -> Status {
      if (!valid_id(key.tenant())) {
        return Status(Errc::kInvalidArgument, "tenant must be non-empty and contain no NUL");
      }
      if (key.key_id().empty()) return Status(Errc::kInvalidArgument, "API key id is empty");
      if (hash.empty()) return Status(Errc::kInvalidArgument, "API key hash is empty");
      auto r = etcd_.put(PutRequest{keys_.api_key(key.tenant(), hash), key.SerializeAsString()});
      if (!r.ok()) return r.status();
      return installed(r->header.revision);
    });
  }

  void revoke_api_key(std::string tenant, std::string key_id, Done<std::string> done) override {
    run(std::move(done),
        [this, tenant = std::move(tenant), key_id = std::move(key_id)]() -> Result<std::string> {
          if (!valid_id(tenant)) {
            return Status(Errc::kInvalidArgument, "tenant must be non-empty and contain no NUL");
          }
          for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
            auto all = etcd_.range(RangeRequest::prefix(keys_.api_keys_of(tenant)));
            if (!all.ok()) return all.status();
            const KeyValue* found = nullptr;
            v1::ApiKey key;
            for (const auto& kv : all->kvs) {
              v1::ApiKey k;
              if (parse_proto(kv.value, k) && k.key_id() == key_id) {
                found = &kv;
                key = std::move(k);
                break;
              }
            }
            if (found == nullptr) {
              return Status(Errc::kNotFound, "tenant " + tenant + " has no API key " + key_id);
            }
            const std::string hash = *dec(found->key.substr(keys_.api_keys_of(tenant).size()));
            key.set_revoked(true);
            TxnRequest txn;
            txn.compare.push_back(
                Compare::mod_revision_is(found->key, Compare::Op::kEqual, found->mod_revision));
            txn.success.push_back(PutRequest{found->key, key.SerializeAsString()});
            auto r = etcd_.txn(txn);
            if (!r.ok()) return r.status();
            if (r->succeeded) {
              Status s = installed(r->header.revision);
              if (!s.is_ok()) return s;
              return hash;
            }
            backoff(attempt);
          }
          return contended("API key " + key_id);
        });
  }

  Result<std::vector<v1::ApiKey>> list_api_keys(const std::string& tenant) const override {
    return local_->list_api_keys(tenant);
  }
  Result<std::optional<v1::ApiKey>> find_api_key_by_id(const std::string& tenant,
                                                       const std::string& key_id) const override {
    return local_->find_api_key_by_id(tenant, key_id);
  }

  // --- tenants ---

  void put_tenant(v1::Tenant tenant, StatusDone done) override {
    run_status(std::move(done), [this, tenant = std::move(tenant)]() -> Status {
      if (!valid_id(tenant.id())) {
        return Status(Errc::kInvalidArgument, "tenant must be non-empty and contain no NUL");
      }
      auto r = etcd_.put(PutRequest{keys_.tenant(tenant.id()), tenant.SerializeAsString()});
      if (!r.ok()) return r.status();
      return installed(r->header.revision);
    });
  }

  // As Engine::delete_tenant on one node: every key of the tenant revoked
  // and the row replaced by a tombstone (status "deleted"), so the id never
  // names a new tenant that would inherit its flows and secrets. The last
  // txn writes the tombstone only if the row is unchanged, with the
  // revocations that fit in it (etcd allows 128 operations per txn; earlier
  // txns carry the rest).
  void delete_tenant(std::string id, StatusDone done) override {
    run_status(std::move(done), [this, id = std::move(id)]() -> Status {
      if (!valid_id(id)) {
        return Status(Errc::kInvalidArgument, "tenant must be non-empty and contain no NUL");
      }
      constexpr size_t kOpsPerTxn = 100;
      const Status missing(Errc::kNotFound, "tenant '" + id + "' not found");
      for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
        auto row = get_one(etcd_, keys_.tenant(id));
        if (!row.ok()) return row.status();
        if (!row.value()) return missing;
        v1::Tenant tombstone;
        if (!parse_proto(row.value()->value, tombstone)) {
          return bad_record(row.value()->key, "not a Tenant");
        }
        if (tombstone.status() == "deleted") return missing;
        tombstone.set_status("deleted");
        auto all = etcd_.range(RangeRequest::prefix(keys_.api_keys_of(id)));
        if (!all.ok()) return all.status();
        std::vector<PutRequest> revokes;
        for (const auto& kv : all->kvs) {
          v1::ApiKey k;
          if (!parse_proto(kv.value, k) || k.revoked()) continue;
          k.set_revoked(true);
          revokes.push_back(PutRequest{kv.key, k.SerializeAsString()});
        }
        while (revokes.size() > kOpsPerTxn) {
          TxnRequest early;
          for (size_t i = 0; i < kOpsPerTxn; ++i) {
            early.success.push_back(std::move(revokes.back()));
            revokes.pop_back();
          }
          auto r = etcd_.txn(early);
          if (!r.ok()) return r.status();
        }
        TxnRequest txn;
        txn.compare.push_back(unchanged(keys_.tenant(id), row.value()));
        for (auto& p : revokes) txn.success.push_back(std::move(p));
        txn.success.push_back(PutRequest{keys_.tenant(id), tombstone.SerializeAsString()});
        auto r = etcd_.txn(txn);
        if (!r.ok()) return r.status();
        if (r->succeeded) return installed(r->header.revision);
        backoff(attempt);
      }
      return contended("tenant " + id);
    });
  }

  // --- tool registrations ---

  void put_tool_registration(ToolRegistration registration, StatusDone done) override {
    run_status(std::move(done), [this, registration = std::move(registration)]() mutable -> Status {
      if (registration.updated_ms == 0) registration.updated_ms = now_ms();
      if (Status s = check_tool_registration(registration); !s.is_ok()) return s;
      if (!valid_id(registration.tenant) || !valid_id(registration.kind) ||
          !valid_id(registration.id)) {
        return Status(Errc::kInvalidArgument,
                      "tenant, kind and id must be non-empty and contain no NUL");
      }
      auto r = etcd_.put(PutRequest{
          keys_.tool_registration(registration.tenant, registration.kind, registration.id),
          to_proto(registration).SerializeAsString()});
      if (!r.ok()) return r.status();
      return installed(r->header.revision);
    });
  }

  void delete_tool_registration(std::string tenant, std::string kind, std::string id,
                                StatusDone done) override {
    run_status(
        std::move(done),
        [this, tenant = std::move(tenant), kind = std::move(kind), id = std::move(id)]() -> Status {
          if (!valid_id(tenant) || !valid_id(kind) || !valid_id(id)) {
            return Status(Errc::kInvalidArgument,
                          "tenant, kind and id must be non-empty and contain no NUL");
          }
          auto r =
              etcd_.delete_range(DeleteRequest::single(keys_.tool_registration(tenant, kind, id)));
          if (!r.ok()) return r.status();
          if (r->deleted == 0) {
            return Status(Errc::kNotFound,
                          "tenant " + tenant + " has no " + kind + " '" + id + "'");
          }
          return installed(r->header.revision);
        });
  }

  Result<std::vector<ToolRegistration>> list_tool_registrations(
      const std::string& tenant, const std::string& kind) const override {
    return local_->list_tool_registrations(tenant, kind);
  }

  Result<std::optional<ToolRegistration>> find_tool_registration(
      const std::string& tenant, const std::string& kind, const std::string& id) const override {
    return local_->find_tool_registration(tenant, kind, id);
  }

  // --- secrets ---

  bool has_vault() const override { return vault_ != nullptr; }

  void put_secret(std::string tenant, std::string name, std::string value, int64_t now,
                  Done<SecretInfo> done) override {
    run(std::move(done),
        [this, tenant = std::move(tenant), name = std::move(name), value = std::move(value),
         now]() -> Result<SecretInfo> {
          if (vault_ == nullptr) return kNoVault;
          if (Status s = storage::Vault::check_secret(tenant, name, value); !s.is_ok()) return s;
          auto data_key = cluster_data_key(tenant, now);
          if (!data_key.ok()) return data_key.status();
          const std::string key = keys_.secret(tenant, name);
          for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
            auto current = get_one(etcd_, key);
            if (!current.ok()) return current.status();
            storage::Vault::SecretInfo info{name, 1, now, now};
            if (current.value()) {
              v1::SecretRecord old;
              if (!parse_proto(current.value()->value, old)) {
                return bad_record(key, "not a SecretRecord");
              }
              info.version = old.version() + 1;
              info.created_ms = old.created_ms();
            }
            auto record = vault_->seal_secret(tenant, info, value, data_key.value());
            if (!record.ok()) return record.status();
            TxnRequest txn;
            txn.compare.push_back(unchanged(key, current.value()));
            txn.success.push_back(PutRequest{key, std::move(record.value())});
            auto r = etcd_.txn(txn);
            if (!r.ok()) return r.status();
            if (r->succeeded) {
              Status s = installed(r->header.revision);
              if (!s.is_ok()) return s;
              return SecretInfo{info.name, info.version, info.created_ms, info.updated_ms};
            }
            backoff(attempt);
          }
          return contended("secret " + name);
        });
  }

  void delete_secret(std::string tenant, std::string name, StatusDone done) override {
    run_status(std::move(done), [this, tenant = std::move(tenant), name = std::move(name)]() {
      if (vault_ == nullptr) return kNoVault;
      if (Status s = storage::Vault::check_secret(tenant, name, ""); !s.is_ok()) return s;
      auto r = etcd_.delete_range(DeleteRequest::single(keys_.secret(tenant, name)));
      if (!r.ok()) return r.status();
      if (r->deleted == 0) {
        return Status(Errc::kNotFound, "tenant " + tenant + " has no secret " + name);
      }
      return installed(r->header.revision);
    });
  }

  Result<std::vector<SecretInfo>> list_secrets(const std::string& tenant) const override {
    return local_->list_secrets(tenant);
  }
  Result<std::optional<std::string>> secret_value(const std::string& tenant,
                                                  const std::string& name) const override {
    return local_->secret_value(tenant, name);
  }

  // --- webhook ids ---

  Result<std::optional<HookTarget>> find_hook(const std::string& hook_id) const override {
    return local_->find_hook(hook_id);
  }
  Result<std::optional<std::string>> hook_of(const std::string& tenant,
                                             const std::string& flow_id) const override {
    return local_->hook_of(tenant, flow_id);
  }

  void rotate_hook(std::string tenant, std::string flow_id, Done<std::string> done) override {
    run(std::move(done),
        [this, tenant = std::move(tenant), flow_id = std::move(flow_id)]() -> Result<std::string> {
          if (!valid_id(tenant) || !valid_id(flow_id)) {
            return Status(Errc::kInvalidArgument,
                          "tenant and flow id must be non-empty and contain no NUL");
          }
          const std::string of = keys_.hook_of(tenant, flow_id);
          for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
            auto current = get_one(etcd_, of);
            if (!current.ok()) return current.status();
            auto id = storage::TriggerStore::new_hook_id();
            if (!id.ok()) return id.status();
            TxnRequest txn;
            txn.compare.push_back(unchanged(of, current.value()));
            claim_hook(txn, tenant, flow_id, id.value());
            if (current.value()) {
              txn.success.push_back(DeleteRequest::single(keys_.hook(current.value()->value)));
            }
            auto r = etcd_.txn(txn);
            if (!r.ok()) return r.status();
            if (r->succeeded) {
              Status s = installed(r->header.revision);
              if (!s.is_ok()) return s;
              return id.value();
            }
            backoff(attempt);
          }
          return contended("the webhook id of flow " + flow_id);
        });
  }

  // --- audit (docs/cluster.md, "Audit trail") ---
  // With a relay, a record goes to the tenant's chain in its home partition
  // (through that partition's leader); the queries read this node's copies
  // of the partitions' chains (LocalAdmin walks them all). Without one
  // (tests of the resources alone) the node's own chain, as before.

  void audit(AuditEntry entry) override {
    if (options_.audit != nullptr) return options_.audit->append(std::move(entry));
    local_->audit(std::move(entry));
  }
  void audit_query(AuditQuery query, Done<std::vector<AuditListed>> done) override {
    local_->audit_query(std::move(query), std::move(done));
  }
  void audit_verify(std::string chain, Done<AuditVerifyReport> done) override {
    if (options_.audit == nullptr) return local_->audit_verify(std::move(chain), std::move(done));
    // What the caller did is committed before the walk (as on one node);
    // this node applies it as a replica shortly after (docs/cluster.md).
    pool_.submit([this, chain = std::move(chain), done = std::move(done)]() mutable {
      if (!options_.audit->flush(options_.install_timeout)) {
        Done<AuditVerifyReport> d = std::move(done);
        call(d, Result<AuditVerifyReport>(
                    Status(Errc::kUnavailable,
                           "audit records of this node are not committed yet (no "
                           "leader for their partition?); retry")
                        .with_retry_after_ms(1000)));
        return;
      }
      local_->audit_verify(std::move(chain), std::move(done));
    });
  }
  void audit_report(std::string chain, int64_t from_ms, int64_t to_ms,
                    Done<AuditCounts> done) override {
    local_->audit_report(std::move(chain), from_ms, to_ms, std::move(done));
  }

 private:
  static bool valid_id(const std::string& s) {
    return !s.empty() && s.find('\0') == std::string::npos;
  }

  // Waits for this node's mirror to install `revision`.
  Status installed(int64_t revision) {
    if (mirror_.wait_installed(revision, options_.install_timeout)) return Status::ok();
    return Status(ClusterErrc::kTimeout,
                  "the write is stored in etcd (revision " + std::to_string(revision) +
                      ") but this node did not install it within " +
                      std::to_string(options_.install_timeout.count()) + " ms");
  }

  // The ops that make `id` the flow's hook id: the claim must not exist yet
  // (a webhook id is unique cluster-wide).
  void claim_hook(TxnRequest& txn, const std::string& tenant, const std::string& flow_id,
                  const std::string& id) {
    txn.compare.push_back(Compare::create_revision_is(keys_.hook(id), Compare::Op::kEqual, 0));
    txn.success.push_back(
        PutRequest{keys_.hook(id), json{{"tenant", tenant}, {"flow_id", flow_id}}.dump()});
    txn.success.push_back(PutRequest{keys_.hook_of(tenant, flow_id), id});
  }

  // Stores `fv` as the flow's next version: a compare-and-swap on the
  // flow's head, retried from a fresh read when another writer won. A new
  // version of a webhook flow without a hook id claims one in the same txn;
  // a tombstone (fv.deleted) needs a live flow and drops the hook id.
  Status next_version(v1::FlowVersion& fv, bool webhook) {
    const std::string head_key = keys_.flow_head(fv.tenant(), fv.flow_id());
    const std::string of = keys_.hook_of(fv.tenant(), fv.flow_id());
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      TxnRequest read;  // head and hook id at one revision
      read.success.push_back(RangeRequest::single(head_key));
      read.success.push_back(RangeRequest::single(of));
      auto seen = etcd_.txn(read);
      if (!seen.ok()) return seen.status();
      std::optional<KeyValue> head_kv;
      std::optional<KeyValue> hook_kv;
      if (const KeyValue* kv = first_kv(seen.value(), 0)) head_kv = *kv;
      if (const KeyValue* kv = first_kv(seen.value(), 1)) hook_kv = *kv;
      Head head;
      if (head_kv) {
        auto h = parse_head(*head_kv);
        if (!h.ok()) return h.status();
        head = h.value();
      }
      if (fv.deleted() && (!head_kv || head.deleted)) {
        return Status(Errc::kNotFound, "flow '" + fv.flow_id() + "' not found");
      }
      if (head.version == UINT32_MAX) {
        return Status(Errc::kInvalidArgument, "flow has too many versions");
      }
      fv.set_version(head.version + 1);
      TxnRequest txn;
      txn.compare.push_back(unchanged(head_key, head_kv));
      txn.compare.push_back(unchanged(of, hook_kv));
      txn.success.push_back(PutRequest{head_key, head_value(Head{fv.version(), fv.deleted()})});
      txn.success.push_back(PutRequest{keys_.flow_version(fv.tenant(), fv.flow_id(), fv.version()),
                                       fv.SerializeAsString()});
      if (fv.deleted() && hook_kv) {
        txn.success.push_back(DeleteRequest::single(of));
        txn.success.push_back(DeleteRequest::single(keys_.hook(hook_kv->value)));
      }
      if (webhook && !hook_kv) {
        auto id = storage::TriggerStore::new_hook_id();
        if (!id.ok()) return id.status();
        claim_hook(txn, fv.tenant(), fv.flow_id(), id.value());
      }
      auto r = etcd_.txn(txn);
      if (!r.ok()) return r.status();
      if (r->succeeded) return installed(r->header.revision);
      backoff(attempt);
    }
    return contended("flow " + fv.flow_id());
  }

  // The tenant's data key row, the cluster's one: the first writer's,
  // created if absent (create-if-absent; the loser reads the winner's).
  Result<std::string> cluster_data_key(const std::string& tenant, int64_t now) {
    const std::string key = keys_.data_key(tenant);
    auto current = get_one(etcd_, key);
    if (!current.ok()) return current.status();
    if (current.value()) return current.value()->value;
    auto row = vault_->new_data_key_row(tenant, now);
    if (!row.ok()) return row.status();
    TxnRequest txn;
    txn.compare.push_back(Compare::create_revision_is(key, Compare::Op::kEqual, 0));
    txn.success.push_back(PutRequest{key, row.value()});
    txn.failure.push_back(RangeRequest::single(key));
    auto r = etcd_.txn(txn);
    if (!r.ok()) return r.status();
    if (r->succeeded) return std::move(row.value());
    const KeyValue* winner = first_kv(r.value(), 0);
    if (winner == nullptr) return bad_record(key, "vanished while read");
    return winner->value;
  }

  template <typename T, typename Work>
  void run(Done<T> done, Work work) {
    pool_.submit([done = std::move(done), work = std::move(work)]() mutable {
      Result<T> result = Status(Errc::kInternalError, "admin task failed");
      try {
        result = work();
      } catch (const std::exception& e) {
        result = Status(Errc::kInternalError, e.what());
      }
      call(done, std::move(result));
    });
  }

  template <typename Work>
  void run_status(StatusDone done, Work work) {
    pool_.submit([done = std::move(done), work = std::move(work)]() mutable {
      Status result;
      try {
        result = work();
      } catch (const std::exception& e) {
        result = Status(Errc::kInternalError, e.what());
      }
      call(done, std::move(result));
    });
  }

  // A callback that throws is logged and swallowed (as LocalAdmin does).
  template <typename Fn, typename Arg>
  static void call(Fn& done, Arg arg) {
    try {
      done(std::move(arg));
    } catch (const std::exception& e) {
      spdlog::error("admin: a completion callback threw: {}", e.what());
    } catch (...) {
      spdlog::error("admin: a completion callback threw a non-exception");
    }
  }

  Engine& engine_;
  EtcdClient& etcd_;
  const ResourceKeys keys_;
  ResourceMirror& mirror_;
  const ClusterAdminOptions options_;
  storage::Vault* vault_;
  std::unique_ptr<Admin> local_;  // reads and the node-local audit chain
  detail::IoPool pool_;           // last: joined first, while the rest is alive
};

}  // namespace

std::unique_ptr<Admin> make_cluster_admin(Engine& engine, EtcdClient& etcd, std::string prefix,
                                          ResourceMirror& mirror, ClusterAdminOptions options) {
  return std::make_unique<ClusterAdmin>(engine, etcd, std::move(prefix), mirror, options);
}

// --- bootstrap ----------------------------------------------------------------------

Result<Bootstrapped> bootstrap_tenant(EtcdClient& etcd, const std::string& prefix,
                                      const BootstrapKey& key, int64_t now) {
  if (key.hash.empty() || key.key_id.empty()) {
    return Status(Errc::kInvalidArgument, "a bootstrap key needs its hash and key id");
  }
  const ResourceKeys keys(prefix);
  // Tenant `default`, unless it exists (an operator may have made it).
  v1::Tenant t;
  t.set_id("default");
  t.set_name("Default");
  t.set_status("active");
  t.set_created_ms(now);
  t.set_updated_ms(now);
  v1::ApiKey k;
  k.set_key_id(key.key_id);
  k.set_tenant("default");
  k.set_role("owner");
  k.set_name(key.preset ? "bootstrap (YANTRA_BOOTSTRAP_KEY)" : "bootstrap");
  k.set_created_ms(now);
  const json record = {
      {"key_hash", key.hash}, {"key_id", key.key_id}, {"preset", key.preset}, {"created_ms", now}};

  // As a single node does at every start: tenant `default` exists
  // afterwards (create-if-absent, so an operator's changes to it stay).
  TxnRequest tenant;
  tenant.compare.push_back(
      Compare::create_revision_is(keys.tenant("default"), Compare::Op::kEqual, 0));
  tenant.success.push_back(PutRequest{keys.tenant("default"), t.SerializeAsString()});
  auto made = etcd.txn(tenant);
  if (!made.ok()) return made.status();

  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    TxnRequest txn;
    txn.compare.push_back(Compare::create_revision_is(keys.bootstrap(), Compare::Op::kEqual, 0));
    txn.success.push_back(PutRequest{keys.bootstrap(), record.dump()});
    txn.success.push_back(PutRequest{keys.api_key("default", key.hash), k.SerializeAsString()});
    txn.failure.push_back(RangeRequest::single(keys.bootstrap()));
    auto r = etcd.txn(txn);
    if (!r.ok()) return r.status();
    if (r->succeeded) return Bootstrapped{Bootstrapped::Outcome::kCreated, r->header.revision};
    const KeyValue* existing = first_kv(r.value(), 0);
    if (existing == nullptr) {  // deleted between the compare and the read
      backoff(attempt);
      continue;
    }
    json doc = json::parse(existing->value, nullptr, false);
    if (!doc.is_object() || !doc.contains("key_hash") || !doc["key_hash"].is_string()) {
      return bad_record(existing->key, "a bootstrap record is {\"key_hash\", \"key_id\", ...}");
    }
    if (!key.preset) return Bootstrapped{Bootstrapped::Outcome::kExisting, r->header.revision};
    if (doc["key_hash"].get<std::string>() == key.hash) {
      return Bootstrapped{Bootstrapped::Outcome::kSameKey, r->header.revision};
    }
    return Status(Errc::kConflict,
                  "YANTRA_BOOTSTRAP_KEY differs from the key the cluster under " + prefix +
                      " was bootstrapped with: give every node the same value (or none)");
  }
  return contended("the bootstrap record");
}

}  // namespace yantra::cluster
