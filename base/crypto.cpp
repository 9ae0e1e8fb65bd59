// OpenSSL 3 one-shot calls (EVP_Digest, HMAC): no context objects to manage
// for inputs that are all in memory. Return codes are checked everywhere;
// see crypto.hpp for why a failed digest aborts and a failed RAND_bytes
// does not.
#include "base/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "base/encoding.hpp"

namespace yantra::crypto {
namespace {

[[noreturn]] void fatal(const char* what) {
  char detail[256];
  ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
  std::fprintf(stderr, "yantra: fatal: OpenSSL %s failed: %s\n", what, detail);
  std::abort();
}

const unsigned char* bytes(std::string_view s) {
  // A valid pointer even for an empty view: OpenSSL treats a null key as
  // "reuse the previous key" in some calls.
  static const unsigned char kEmpty = 0;
  return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

std::string sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes(data), data.size(), digest, &len, EVP_sha256(), nullptr) != 1 ||
      len != kSha256Size) {
    fatal("SHA-256");
  }
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string sha256_hex(std::string_view data) {
  return hex_encode(sha256(data));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  if (key.size() > INT_MAX) fatal("HMAC-SHA256 (key too long)");
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), bytes(key), static_cast<int>(key.size()), bytes(data), data.size(), mac,
           &len) == nullptr ||
      len != kSha256Size) {
    fatal("HMAC-SHA256");
  }
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  return hex_encode(hmac_sha256(key, data));
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<std::string> random_bytes(size_t n) {
  if (n > INT_MAX) return Status(Errc::kCryptoError, "too many random bytes requested");
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    char detail[256];
    ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
    return Status(Errc::kCryptoError, std::string("RAND_bytes failed: ") + detail);
  }
  return out;
}

Result<std::string> random_token(size_t bytes) {
  auto raw = random_bytes(bytes);
  if (!raw.ok()) return raw.status();
  std::string token = base64_encode(raw.value(), Base64::kUrl);
  OPENSSL_cleanse(raw.value().data(), raw.value().size());
  return token;
}

}  // namespace yantra::crypto
