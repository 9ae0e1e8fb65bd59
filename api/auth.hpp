// API keys. A key is "yk_" + 43 characters of base64url randomness; only its
// SHA-256 is stored (Engine::put_api_key), so a stolen database holds no
// usable credential. Verified keys are cached by hash: a request costs one
// hash and one map lookup, not a RocksDB read.
//
// Bootstrap: on first start the node creates tenant "default" with an owner
// key, written to <data>/bootstrap-key (mode 0600) and printed once;
// YANTRA_BOOTSTRAP_KEY sets the key instead.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "actors/engine.hpp"
#include "runtime/result.hpp"

namespace yantra::api {

struct Principal {
  std::string tenant;
  std::string key_id;
  std::string role;
};

std::string sha256_hex(const std::string& data);
std::string random_token(size_t bytes);

class Authenticator {
 public:
  explicit Authenticator(Engine& engine) : engine_(engine) {}
  // From an Authorization header value. Error "unauthorized".
  Result<Principal> authenticate(const std::string& authorization);

  // Creates tenant default's owner key unless the tenant has keys. Returns
  // the new secret (empty when nothing was created). `preset` (from
  // YANTRA_BOOTSTRAP_KEY) is used as the secret when given.
  Result<std::string> bootstrap(const std::string& data_dir, const std::string& preset);

 private:
  Engine& engine_;
  std::mutex mu_;
  std::unordered_map<std::string, Principal> cache_;  // by hash
};

}  // namespace yantra::api
