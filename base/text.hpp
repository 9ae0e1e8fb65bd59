// ASCII case mapping for protocol tokens (HTTP methods, header names, media
// types, authorization schemes): locale-independent on purpose, unlike
// std::tolower on a locale.
#pragma once

#include <string>
#include <string_view>

namespace yantra {

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

inline std::string ascii_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

// Whether `s` starts with `prefix`, ignoring ASCII case ("Bearer " matches
// "bearer "): HTTP scheme and header names are case-insensitive.
inline bool ascii_starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char a = s[i];
    char b = prefix[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

// Whether `s` is an HTTP token (RFC 9110 5.6.2: a method or header field
// name): one or more of ALPHA, DIGIT and !#$%&'*+-.^_`|~. Callers add their
// own length bound.
inline bool is_http_token(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    const bool alnum =
        (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(ch) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

}  // namespace yantra
