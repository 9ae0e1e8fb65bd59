// ASCII case mapping for protocol tokens (HTTP methods, header names, media
// types): locale-independent on purpose, unlike std::tolower on a locale.
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

}  // namespace yantra
