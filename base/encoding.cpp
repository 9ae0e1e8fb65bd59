// Table-free on purpose: the alphabets are ranges, and a switch on ranges is
// as fast as a 256-entry table for the short inputs seen here (keys, tokens,
// credentials) while being easy to check against RFC 4648 by eye.
#include "base/encoding.hpp"

#include <cstdint>

namespace yantra {
namespace {

constexpr char kHexLower[] = "0123456789abcdef";
constexpr char kHexUpper[] = "0123456789ABCDEF";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

const char* alphabet(Base64 variant) {
  return variant == Base64::kUrl
             ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

int base64_value(char c, Base64 variant) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == (variant == Base64::kUrl ? '-' : '+')) return 62;
  if (c == (variant == Base64::kUrl ? '_' : '/')) return 63;
  return -1;
}

// Decoded bytes may be key material: overwrite them before the memory goes
// back to the allocator. Volatile, so the stores are not optimised away.
void wipe(std::string& s) {
  volatile char* p = s.data();
  for (size_t i = 0; i < s.size(); ++i) p[i] = 0;
  s.clear();
}

}  // namespace

std::string hex_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(kHexLower[c >> 4]);
    out.push_back(kHexLower[c & 0xF]);
  }
  return out;
}

Result<std::string> hex_decode(std::string_view text) {
  if (text.size() % 2 != 0) {
    return Status(Errc::kInvalidHex,
                  "an odd number of hex digits (" + std::to_string(text.size()) + ")");
  }
  std::string out;
  out.reserve(text.size() / 2);  // no reallocation: no stray copies to wipe
  for (size_t i = 0; i < text.size(); i += 2) {
    const int hi = hex_value(text[i]);
    const int lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0) {
      wipe(out);
      return Status(Errc::kInvalidHex,
                    "character " + std::to_string(i + (hi < 0 ? 1 : 2)) + " is not a hex digit");
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string base64_encode(std::string_view bytes, Base64 variant) {
  const char* a = alphabet(variant);
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(a[(v >> shift) & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    const uint32_t v = (byte(i) << 16) | (rest == 2 ? byte(i + 1) << 8 : 0);
    out.push_back(a[(v >> 18) & 63]);
    out.push_back(a[(v >> 12) & 63]);
    if (rest == 2) out.push_back(a[(v >> 6) & 63]);
    if (variant == Base64::kStandard) out.append(3 - rest, '=');
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text, Base64 variant) {
  std::string_view body = text;
  size_t padding = 0;
  while (!body.empty() && body.back() == '=' && padding < 3) {
    body.remove_suffix(1);
    ++padding;
  }
  // Padded input is a whole number of quads; unpadded input stops where the
  // encoder would have started writing '='.
  if (body.size() % 4 == 1 || padding > 2 ||
      (padding > 0 && (text.size() % 4 != 0 || (body.size() % 4) + padding != 4))) {
    return Status(Errc::kInvalidBase64,
                  std::to_string(text.size()) + " characters are not a whole base64 encoding");
  }
  std::string out;
  out.reserve(body.size() * 3 / 4);  // no reallocation: no stray copies to wipe
  uint32_t bits = 0;
  int nbits = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    const int v = base64_value(body[i], variant);
    if (v < 0) {
      wipe(out);
      return Status(Errc::kInvalidBase64, "character " + std::to_string(i + 1) + " is not base64");
    }
    bits = (bits << 6) | static_cast<uint32_t>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out.push_back(static_cast<char>((bits >> nbits) & 0xFF));
    }
  }
  if ((bits & ((1u << nbits) - 1)) != 0) {
    wipe(out);
    return Status(Errc::kInvalidBase64, "the last character has bits that encode nothing set");
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHexUpper[c >> 4]);
      out.push_back(kHexUpper[c & 0xF]);
    }
  }
  return out;
}

}  // namespace yantra
