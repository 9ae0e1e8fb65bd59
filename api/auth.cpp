// Hashing and randomness come from OpenSSL (SHA-256, RAND_bytes): never a
// home-made primitive for credentials.
#include "api/auth.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

namespace yantra::api {

std::string sha256_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

std::string random_token(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes));
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : raw) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      out.push_back(kAlphabet[(acc >> (bits - 6)) & 63]);
      bits -= 6;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

Result<Principal> Authenticator::authenticate(const std::string& authorization) {
  static const std::string kBearer = "Bearer ";
  if (authorization.empty()) {
    return Status("unauthorized", "missing Authorization header (expected 'Bearer <key>')");
  }
  if (authorization.size() <= kBearer.size() ||
      authorization.compare(0, kBearer.size(), kBearer) != 0) {
    return Status("unauthorized", "malformed Authorization header (expected 'Bearer <key>')");
  }
  const std::string hash = sha256_hex(authorization.substr(kBearer.size()));
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end()) return it->second;
  }
  auto key = engine_.find_api_key(hash);
  if (!key.ok()) return key.status();
  if (!key.value().has_value() || key.value()->revoked()) {
    return Status("unauthorized", "invalid API key");
  }
  Principal p{key.value()->tenant(), key.value()->key_id(), key.value()->role()};
  std::lock_guard<std::mutex> lock(mu_);
  cache_.emplace(hash, p);
  return p;
}

Result<std::string> Authenticator::bootstrap(const std::string& data_dir,
                                             const std::string& preset) {
  auto count = engine_.count_api_keys("default");
  if (!count.ok()) return count.status();
  if (count.value() > 0 && preset.empty()) return std::string();
  const std::string secret = preset.empty() ? "yk_" + random_token(32) : preset;
  const std::string hash = sha256_hex(secret);
  auto existing = engine_.find_api_key(hash);
  if (!existing.ok()) return existing.status();
  if (existing.value().has_value()) return std::string();  // preset already stored
  v1::ApiKey key;
  key.set_key_id("key_" + random_token(9));
  key.set_tenant("default");
  key.set_role("owner");
  key.set_name(preset.empty() ? "bootstrap" : "bootstrap (YANTRA_BOOTSTRAP_KEY)");
  key.set_created_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count());
  Status s = engine_.put_api_key(hash, key);
  if (!s.is_ok()) return s;
  if (preset.empty()) {
    // Written with 0600 from the start: the key must never be readable by others.
    const std::string path = (std::filesystem::path(data_dir) / "bootstrap-key").string();
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return Status("io_error", "cannot write " + path);
    std::string line = secret + "\n";
    ssize_t n = ::write(fd, line.data(), line.size());
    ::fsync(fd);
    ::close(fd);
    if (n != static_cast<ssize_t>(line.size())) return Status("io_error", "cannot write " + path);
  }
  return secret;
}

}  // namespace yantra::api
