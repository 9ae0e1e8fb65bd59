// Byte <-> text encodings: hex, base64 (RFC 4648) and percent-encoding
// (RFC 3986). Pure C++ (no OpenSSL), so runtime/ may use them too.
//
// Decoders are strict and return Status values rather than guessing: a
// credential or a key that decodes "somehow" is worse than a clear refusal.
// Their messages name a position, never the input, because the input is
// often secret (master keys, Basic credentials). The partial output of a
// failed decode is wiped before it is freed, for the same reason.
#pragma once

#include <string>
#include <string_view>

#include "base/result.hpp"

namespace yantra {

// Lower-case hex digits, two per byte.
std::string hex_encode(std::string_view bytes);
// Hex digits of either case, an even number of them. Error "invalid_hex".
Result<std::string> hex_decode(std::string_view text);

enum class Base64 {
  kStandard,  // RFC 4648 section 4: '+' and '/', encoded with '=' padding (HTTP Basic)
  kUrl,       // RFC 4648 section 5: '-' and '_', encoded without padding (tokens in URLs)
};

std::string base64_encode(std::string_view bytes, Base64 variant = Base64::kStandard);
// Decodes `variant`'s alphabet only. Padding may be present (then exactly
// as the encoder writes it) or absent; '=' elsewhere, a length of 4n+1, and
// unused low bits that are not zero (a second spelling of the same bytes,
// RFC 4648 section 3.5) are refused. No whitespace. Error "invalid_base64".
Result<std::string> base64_decode(std::string_view text, Base64 variant = Base64::kStandard);

// Every byte outside RFC 3986's unreserved set (ALPHA DIGIT - . _ ~) as
// %XX with upper-case hex: safe in a path segment and in a query value.
std::string percent_encode(std::string_view s);

}  // namespace yantra
