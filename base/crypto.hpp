// Hashing, MACs and randomness over OpenSSL, once, behind a header that
// includes no OpenSSL: only base/crypto.cpp compiles against it, and a
// caller cannot forget to check a return code it never sees.
//
// - Digests and MACs cannot fail for any input; OpenSSL reports failure only
//   when it is broken (allocation failure, a provider that will not load).
//   Then the process aborts with a message: a wrong or empty digest returned
//   silently would, for instance, make every API key hash alike.
// - Randomness can fail (no entropy source yet, a failed reseed), so
//   random_bytes()/random_token() return Result: code "crypto_error".
// - Credentials are compared with constant_time_equal(), whose time depends
//   on the lengths only; to hide the length too, compare digests.
//
// Thread-safety: every function may be called from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace yantra::crypto {

constexpr size_t kSha256Size = 32;

// SHA-256 (FIPS 180-4): 32 raw bytes, or 64 lower-case hex digits.
std::string sha256(std::string_view data);
std::string sha256_hex(std::string_view data);

// HMAC-SHA256 (RFC 2104): 32 raw bytes, or 64 lower-case hex digits.
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

// a == b, in time that depends on a.size() and b.size() only.
bool constant_time_equal(std::string_view a, std::string_view b);

// `n` bytes from OpenSSL's CSPRNG (RAND_bytes).
Result<std::string> random_bytes(size_t n);

// `bytes` random bytes as unpadded base64url (4 characters per 3 bytes,
// rounded up): unguessable, and safe in URLs, headers and file names.
// 32 bytes give 43 characters (API keys), 24 give 32 (webhook ids).
Result<std::string> random_token(size_t bytes);

}  // namespace yantra::crypto
