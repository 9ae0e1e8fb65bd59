// base/utf8: the strict RFC 3629 rules as one table of well-formed and
// ill-formed sequences (each boundary of Unicode Table 3-7 from both sides),
// U+FFFD substitution of maximal subparts (Unicode's own example, Table 3-8),
// and cutting on a boundary.
#include "base/utf8.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace yantra {
namespace {

struct Case {
  const char* name;
  std::string bytes;
  size_t first_invalid;  // npos: well-formed
};

const size_t kOk = std::string_view::npos;

const std::vector<Case> kCases = {
    {"empty", "", kOk},
    {"ascii", "hello, world", kOk},
    {"NUL is a character", std::string("a\0b", 3), kOk},
    {"U+007F", "\x7F", kOk},
    {"U+0080 (lowest 2-byte)", "\xC2\x80", kOk},
    {"U+07FF (highest 2-byte)", "\xDF\xBF", kOk},
    {"U+0800 (lowest 3-byte)", "\xE0\xA0\x80", kOk},
    {"U+D7FF (below the surrogates)", "\xED\x9F\xBF", kOk},
    {"U+E000 (above the surrogates)", "\xEE\x80\x80", kOk},
    {"U+FFFD", "\xEF\xBF\xBD", kOk},
    {"U+FFFF (highest 3-byte)", "\xEF\xBF\xBF", kOk},
    {"U+10000 (lowest 4-byte)", "\xF0\x90\x80\x80", kOk},
    {"U+10FFFF (highest code point)", "\xF4\x8F\xBF\xBF", kOk},
    {"mixed scripts and emoji", "caf\xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x98\x80 \xE6\x97\xA5", kOk},

    {"stray continuation byte", "\x80", 0},
    {"continuation byte after ascii", "ab\xBF", 2},
    {"overlong NUL (C0 80)", "\xC0\x80", 0},
    {"overlong U+007F (C1 BF)", "\xC1\xBF", 0},
    {"overlong 3-byte (E0 80 80)", "\xE0\x80\x80", 0},
    {"overlong U+07FF (E0 9F BF)", "\xE0\x9F\xBF", 0},
    {"overlong 4-byte (F0 80 80 80)", "\xF0\x80\x80\x80", 0},
    {"overlong U+FFFF (F0 8F BF BF)", "\xF0\x8F\xBF\xBF", 0},
    {"surrogate U+D800", "\xED\xA0\x80", 0},
    {"surrogate U+DBFF", "\xED\xAF\xBF", 0},
    {"surrogate U+DC00", "\xED\xB0\x80", 0},
    {"surrogate U+DFFF after text", "x\xED\xBF\xBF", 1},
    {"surrogate pair as CESU-8", "\xED\xA0\xBD\xED\xB8\x80", 0},
    {"U+110000 (F4 90 80 80)", "\xF4\x90\x80\x80", 0},
    {"F5 lead (above U+10FFFF)", "\xF5\x80\x80\x80", 0},
    {"5-byte form", "\xF8\x88\x80\x80\x80", 0},
    {"6-byte form", "\xFC\x84\x80\x80\x80\x80", 0},
    {"FE", "\xFE", 0},
    {"FF", "a\xFF", 1},
    {"truncated 2-byte at end", "ok\xC3", 2},
    {"truncated 3-byte at end", "\xE2\x82", 0},
    {"truncated 4-byte at end", "a\xF0\x9F\x98", 1},
    {"3-byte interrupted by ascii", "\xE2\x82z", 0},
    {"2-byte lead followed by a lead", "\xC2\xC2\x80", 0},
    {"valid then invalid", "\xC3\xA9\xE2\x9C\x93\xC0\xAF", 5},
};

TEST(Utf8, StrictTable) {
  for (const Case& c : kCases) {
    EXPECT_EQ(utf8::find_invalid(c.bytes), c.first_invalid) << c.name;
    EXPECT_EQ(utf8::is_valid(c.bytes), c.first_invalid == kOk) << c.name;
    // Replacement leaves well-formed text alone and makes the rest well-formed.
    const std::string replaced = utf8::replace_invalid(c.bytes);
    EXPECT_TRUE(utf8::is_valid(replaced)) << c.name;
    if (c.first_invalid == kOk) {
      EXPECT_EQ(replaced, c.bytes) << c.name;
    } else {
      EXPECT_NE(replaced.find("\xEF\xBF\xBD"), std::string::npos) << c.name;
      EXPECT_EQ(replaced.substr(0, c.first_invalid), c.bytes.substr(0, c.first_invalid)) << c.name;
    }
  }
}

// Every 1- and 2-byte string, against a reference that decodes and then
// checks the code point (the other way to write the rules).
TEST(Utf8, AgreesWithADecodingReferenceOnEveryShortString) {
  auto reference_valid = [](const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]);
      const size_t len = c < 0x80         ? 1
                         : (c >> 5) == 6  ? 2
                         : (c >> 4) == 14 ? 3
                         : (c >> 3) == 30 ? 4
                                          : 0;
      if (len == 0 || i + len > s.size()) return false;
      char32_t cp = len == 1 ? c : c & (0x7F >> len);
      for (size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (cc & 0x3F);
      }
      static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
      i += len;
    }
    return true;
  };
  for (int a = 0; a < 256; ++a) {
    const std::string one(1, static_cast<char>(a));
    ASSERT_EQ(utf8::is_valid(one), reference_valid(one)) << a;
    for (int b = 0; b < 256; ++b) {
      const std::string two = one + static_cast<char>(b);
      ASSERT_EQ(utf8::is_valid(two), reference_valid(two)) << a << " " << b;
    }
  }
  // Every 3-byte string with a lead byte E0..EF and every 4-byte one with
  // F0..F4 over the boundary values of the later bytes.
  const unsigned char kTrail[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
  for (int lead = 0xE0; lead <= 0xF4; ++lead) {
    for (unsigned char b : kTrail) {
      for (unsigned char c : kTrail) {
        for (unsigned char d : kTrail) {
          std::string s{static_cast<char>(lead), static_cast<char>(b), static_cast<char>(c)};
          if (lead >= 0xF0) s.push_back(static_cast<char>(d));
          ASSERT_EQ(utf8::is_valid(s), reference_valid(s))
              << lead << " " << int(b) << " " << int(c);
        }
      }
    }
  }
}

TEST(Utf8, ReplacesMaximalSubpartsAsUnicodeTable3_8) {
  // The example of Unicode 15, section 3.9, Table 3-8.
  const std::string in = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8::replace_invalid(in), "a" + r + r + r + "b" + r + "c" + r + r + "d");
  // A truncated sequence is one replacement, not one per byte.
  EXPECT_EQ(utf8::replace_invalid("x\xF0\x9F\x98"), "x" + r);
  // Bytes that can never start a prefix of a well-formed sequence are one each.
  EXPECT_EQ(utf8::replace_invalid("\xED\xA0\x80"), r + r + r);
  EXPECT_EQ(utf8::replace_invalid("\xC0\xAF"), r + r);
}

TEST(Utf8, TruncateNeverCutsASequence) {
  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // a é € 😀 (1+2+3+4 bytes)
  const std::vector<std::pair<size_t, std::string>> cuts = {
      {0, ""},
      {1, "a"},
      {2, "a"},
      {3, "a\xC3\xA9"},
      {4, "a\xC3\xA9"},
      {5, "a\xC3\xA9"},
      {6, "a\xC3\xA9\xE2\x82\xAC"},
      {9, "a\xC3\xA9\xE2\x82\xAC"},
      {10, s},
      {100, s},
  };
  for (const auto& [max, want] : cuts) EXPECT_EQ(utf8::truncate(s, max), want) << max;
  // On ill-formed input it still ends, and still bounds the size.
  const std::string junk(50, '\x80');
  EXPECT_LE(utf8::truncate(junk, 10).size(), 10u);
}

TEST(Utf8, CountsCodePoints) {
  EXPECT_EQ(utf8::count_code_points(""), 0u);
  EXPECT_EQ(utf8::count_code_points("abc"), 3u);
  EXPECT_EQ(utf8::count_code_points("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"), 4u);
}

TEST(Utf8, AppendsEveryScalarValueAsTheDecoderReadsIt) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string one;
    utf8::append_code_point(one, static_cast<char32_t>(cp));
    const size_t want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    ASSERT_EQ(one.size(), want) << cp;
    ASSERT_TRUE(utf8::is_valid(one)) << cp;
    ASSERT_EQ(utf8::count_code_points(one), 1u) << cp;
  }
  std::string euro;
  utf8::append_code_point(euro, 0x20AC);
  EXPECT_EQ(euro, "\xE2\x82\xAC");
  std::string max;
  utf8::append_code_point(max, 0x10FFFF);
  EXPECT_EQ(max, "\xF4\x8F\xBF\xBF");
}

}  // namespace
}  // namespace yantra
