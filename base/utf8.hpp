// UTF-8, once. Text reaches Yantra from tenants (flow documents, headers,
// expressions) and from remote servers (HTTP tool responses), and ends in
// protobuf `string` fields and JSON, both of which require well-formed UTF-8:
// protobuf writes ill-formed bytes but refuses to parse them back, and
// nlohmann::json throws when asked to dump them.
//
// "Well-formed" is the strict definition of RFC 3629 / Unicode Table 3-7: no
// overlong forms (C0, C1, E0 80..9F, F0 80..8F), no UTF-16 surrogates
// (ED A0..BF), nothing above U+10FFFF (F4 90.., F5..FF), no truncated or
// stray continuation bytes. Every check in the tree uses this one, so a
// string accepted at one door is accepted at every other.
//
// Pure functions of their arguments: runtime/ may use them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace yantra::utf8 {

// Offset of the first byte that does not start a well-formed sequence, or
// std::string_view::npos when `s` is entirely well-formed.
size_t find_invalid(std::string_view s);

inline bool is_valid(std::string_view s) {
  return find_invalid(s) == std::string_view::npos;
}

// `s` with every ill-formed part replaced by U+FFFD. Follows Unicode's
// "substitution of maximal subparts" (the practice of the WHATWG encoding
// standard, browsers and Python): one U+FFFD for each maximal prefix of a
// well-formed sequence that is cut short, one for each other bad byte.
// Well-formed input comes back unchanged.
std::string replace_invalid(std::string_view s);

// The longest prefix of `s` of at most `max_bytes` bytes that does not cut a
// multi-byte sequence in half (for bounding text echoed in messages).
std::string_view truncate(std::string_view s, size_t max_bytes);

// The number of code points of well-formed `s` (bytes that are not
// continuation bytes; on ill-formed input an approximation that never
// exceeds s.size()).
size_t count_code_points(std::string_view s);

// Appends the encoding of `cp`, which must be a Unicode scalar value
// (at most U+10FFFF and not a surrogate): callers decode escapes and reject
// lone surrogates before, with a message of their own.
void append_code_point(std::string& out, char32_t cp);

}  // namespace yantra::utf8
