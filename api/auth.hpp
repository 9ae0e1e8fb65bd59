// API keys. A key is "yk_" + 43 characters of base64url randomness; only its
// SHA-256 is stored (Engine::put_api_key), so a stolen database holds no
// usable credential. Verified keys are cached by hash: a request costs one
// hash and one map lookup, not a RocksDB read.
//
// Bootstrap: on first start the node creates tenant "default" with an owner
// key, written to <data>/bootstrap-key (mode 0600) and printed once;
// YANTRA_BOOTSTRAP_KEY sets the key instead.
//
// Credentials: "Authorization: Bearer <key>" or HTTP Basic with the tenant
// as user name and the key as password (a key used under another tenant's
// name is refused). The operator key (config or YANTRA_OPERATOR_KEY) is not
// stored: only its hash is held in memory, and it opens /admin/v1 only.
// A revoked key stops working at once: revocation drops it from the cache.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "actors/engine.hpp"
#include "base/result.hpp"

namespace yantra::api {

struct Principal {
  std::string tenant;  // "" for the operator
  std::string key_id;
  std::string role;  // owner, admin, editor, viewer, or operator
  // The tenant's request limit, read with its status on this request (so
  // the rate limiter needs no second lookup). 0 = none.
  uint32_t requests_per_second = 0;
  uint32_t burst = 0;
  bool is_operator() const { return role == "operator"; }
};

// A fresh key: id "key_" + 12 characters, secret "yk_" + 43 characters (both
// base64url of random bytes). Fails ("crypto_error") only when the CSPRNG does.
struct NewApiKey {
  std::string key_id;
  std::string secret;
};
Result<NewApiKey> new_api_key();

// An Authorization header value, parsed but not verified.
struct Credentials {
  std::string secret;  // the key
  std::string tenant;  // Basic's user name; "" for Bearer
  bool basic = false;
};
// "Bearer <key>" or "Basic base64(<tenant>:<key>)"; the scheme is
// case-insensitive (RFC 9110 §11.1) and may be followed by several spaces.
// Error "unauthorized" for a missing or malformed value, naming the forms
// expected. `claimed_tenant` gets Basic's user name whenever it could be
// decoded, even if the value is refused (the audit record names it). Pure:
// no lookup, no clock.
Result<Credentials> parse_authorization(const std::string& header,
                                        std::string* claimed_tenant = nullptr);

class Authenticator {
 public:
  explicit Authenticator(Engine& engine) : engine_(engine) {}
  // From an Authorization header value. Errors: "unauthorized" (no, bad or
  // revoked credentials), "tenant_suspended". `claimed_tenant` gets the user
  // name of Basic credentials even when they fail (for the audit record).
  Result<Principal> authenticate(const std::string& authorization,
                                 std::string* claimed_tenant = nullptr);
  void set_operator_key(const std::string& secret);
  // Drops cached credentials after a revocation or a tenant change.
  void forget_key(const std::string& hash);
  // The key's record changed in the store (a cluster's mirror installed a
  // new or revoked key): drop what is cached, so the next request reads the
  // store again. Unlike forget_key it does not refuse the key from now on.
  void evict_key(const std::string& hash);
  void forget_tenant(const std::string& tenant);

  // Creates tenant default's owner key unless the tenant has keys. Returns
  // the new secret (empty when nothing was created). `preset` (from
  // YANTRA_BOOTSTRAP_KEY) is used as the secret when given.
  Result<std::string> bootstrap(const std::string& data_dir, const std::string& preset);

 private:
  Result<Principal> check_tenant(Principal p);
  Engine& engine_;
  std::string operator_hash_;  // empty = no operator key configured
  std::mutex mu_;
  std::unordered_map<std::string, Principal> cache_;  // by hash
  // Hashes revoked while this node runs: a lookup racing the revocation
  // must not put the key back into the cache.
  std::unordered_set<std::string> revoked_;
  uint64_t generation_ = 0;  // bumped by evict_key; guarded by mu_
};

}  // namespace yantra::api
