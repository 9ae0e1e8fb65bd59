// Hashing and randomness come from base/crypto (OpenSSL's SHA-256 and
// RAND_bytes, its result checked): never a home-made primitive for
// credentials.
#include "api/auth.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "actors/errc.hpp"
#include "base/crypto.hpp"
#include "base/encoding.hpp"
#include "base/text.hpp"
#include "base/time.hpp"

namespace yantra::api {

namespace {

const Status kMalformed(Errc::kUnauthorized,
                        "malformed Authorization header (expected 'Bearer <key>' or Basic "
                        "credentials '<tenant>:<key>')");

}  // namespace

Result<NewApiKey> new_api_key() {
  auto secret = crypto::random_token(32);
  if (!secret.ok()) return secret.status();
  auto id = crypto::random_token(9);
  if (!id.ok()) return id.status();
  return NewApiKey{"key_" + id.value(), "yk_" + secret.value()};
}

void Authenticator::set_operator_key(const std::string& secret) {
  operator_hash_ = secret.empty() ? std::string() : crypto::sha256_hex(secret);
}

void Authenticator::forget_key(const std::string& hash) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase(hash);
  revoked_.insert(hash);
}

void Authenticator::evict_key(const std::string& hash) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase(hash);
  ++generation_;
}

void Authenticator::forget_tenant(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = cache_.begin(); it != cache_.end();) {
    it = it->second.tenant == tenant ? cache_.erase(it) : std::next(it);
  }
}

// The tenant's status is read on every request (from the engine's cache), so
// suspending a tenant takes effect at once without dropping cached keys.
Result<Principal> Authenticator::check_tenant(Principal p) {
  auto t = engine_.tenant(p.tenant);
  if (!t.ok()) return t.status();
  if (!t.value().has_value()) {
    // Only the bootstrap tenant of a store written before tenants existed
    // has keys but no row.
    if (p.tenant != "default")
      return Status(Errc::kUnauthorized, "the key's tenant no longer exists");
  } else if (t.value()->status() == "deleted") {
    return Status(Errc::kUnauthorized, "the key's tenant no longer exists");
  } else if (t.value()->status() == "suspended") {
    return Status(ActorsErrc::kTenantSuspended, "tenant '" + p.tenant + "' is suspended");
  }
  if (t.value().has_value()) {
    p.requests_per_second = t.value()->limits().requests_per_second();
    p.burst = t.value()->limits().burst();
  }
  return p;
}

Result<Credentials> parse_authorization(const std::string& header, std::string* claimed_tenant) {
  if (header.empty()) {
    return Status(Errc::kUnauthorized,
                  "missing Authorization header (expected 'Bearer <key>' or Basic credentials)");
  }
  // The credentials after the scheme and its 1*SP (RFC 9110 §11.4).
  auto after_scheme = [&](size_t scheme_len) {
    size_t i = scheme_len;
    while (i < header.size() && header[i] == ' ') ++i;
    return header.substr(i);
  };
  Credentials c;
  if (ascii_starts_with_ci(header, "bearer ")) {
    c.secret = after_scheme(7);
  } else if (ascii_starts_with_ci(header, "basic ")) {
    const std::string encoded = after_scheme(6);
    if (encoded.empty() || encoded.size() > 4096) return kMalformed;
    auto credentials = base64_decode(encoded);
    if (!credentials.ok()) return kMalformed;
    const std::string& decoded = credentials.value();
    const size_t colon = decoded.find(':');
    if (colon == std::string::npos || colon == 0) return kMalformed;
    c.basic = true;
    c.tenant = decoded.substr(0, colon);
    c.secret = decoded.substr(colon + 1);
    if (claimed_tenant != nullptr) *claimed_tenant = c.tenant;
  } else {
    return kMalformed;
  }
  if (c.secret.empty() || c.secret.size() > 512) return kMalformed;
  return c;
}

Result<Principal> Authenticator::authenticate(const std::string& authorization,
                                              std::string* claimed_tenant) {
  auto parsed = parse_authorization(authorization, claimed_tenant);
  if (!parsed.ok()) return parsed.status();
  const bool basic = parsed.value().basic;
  const std::string& basic_tenant = parsed.value().tenant;
  const std::string& secret = parsed.value().secret;
  const std::string hash = crypto::sha256_hex(secret);
  if (!basic && !operator_hash_.empty() && crypto::constant_time_equal(hash, operator_hash_)) {
    return Principal{"", "operator", "operator", 0, 0};
  }
  std::optional<Principal> cached;
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end()) cached = it->second;
    generation = generation_;
  }
  if (!cached) {
    auto key = engine_.find_api_key(hash);
    if (!key.ok()) return key.status();
    if (!key.value().has_value() || key.value()->revoked()) {
      return Status(Errc::kUnauthorized, "invalid API key");
    }
    cached = Principal{key.value()->tenant(), key.value()->key_id(), key.value()->role(), 0, 0};
    std::lock_guard<std::mutex> lock(mu_);
    if (revoked_.count(hash) != 0) return Status(Errc::kUnauthorized, "invalid API key");
    // A record that changed while we read it (evict_key) is read again next
    // time rather than cached as it was.
    if (generation == generation_) cache_.emplace(hash, *cached);
  }
  // Same answer as a wrong key: the name of another tenant is no hint.
  if (basic && basic_tenant != cached->tenant)
    return Status(Errc::kUnauthorized, "invalid API key");
  return check_tenant(std::move(*cached));
}

Result<std::string> Authenticator::bootstrap(const std::string& data_dir,
                                             const std::string& preset) {
  auto existing_tenant = engine_.tenant("default");
  if (!existing_tenant.ok()) return existing_tenant.status();
  if (!existing_tenant.value().has_value()) {
    v1::Tenant t;
    t.set_id("default");
    t.set_name("Default");
    t.set_status("active");
    t.set_created_ms(now_ms());
    t.set_updated_ms(t.created_ms());
    Status s = engine_.put_tenant(t);
    if (!s.is_ok()) return s;
  }
  auto count = engine_.count_api_keys("default");
  if (!count.ok()) return count.status();
  if (count.value() > 0 && preset.empty()) return std::string();
  auto generated = new_api_key();
  if (!generated.ok()) return generated.status();
  const std::string secret = preset.empty() ? generated->secret : preset;
  const std::string hash = crypto::sha256_hex(secret);
  auto existing = engine_.find_api_key(hash);
  if (!existing.ok()) return existing.status();
  if (existing.value().has_value()) return std::string();  // preset already stored
  v1::ApiKey key;
  key.set_key_id(generated->key_id);
  key.set_tenant("default");
  key.set_role("owner");
  key.set_name(preset.empty() ? "bootstrap" : "bootstrap (YANTRA_BOOTSTRAP_KEY)");
  key.set_created_ms(now_ms());
  Status s = engine_.put_api_key(hash, key);
  if (!s.is_ok()) return s;
  if (preset.empty()) {
    // Written with 0600 from the start: the key must never be readable by others.
    const std::string path = (std::filesystem::path(data_dir) / "bootstrap-key").string();
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return Status(Errc::kIoError, "cannot write " + path);
    std::string line = secret + "\n";
    ssize_t n = ::write(fd, line.data(), line.size());
    ::fsync(fd);
    ::close(fd);
    if (n != static_cast<ssize_t>(line.size()))
      return Status(Errc::kIoError, "cannot write " + path);
  }
  return secret;
}

}  // namespace yantra::api
