// base/encoding: the RFC 4648 section 10 vectors in both base64 variants,
// round trips of every byte value, every kind of malformed input refused
// (with messages that never repeat the input), hex both ways, and
// percent-encoding of the RFC 3986 reserved and non-ASCII bytes. Also the
// ASCII prefix test of base/text.hpp.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "base/encoding.hpp"
#include "base/text.hpp"

namespace yantra {
namespace {

std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

TEST(Hex, EncodesLowerCaseAndDecodesEitherCase) {
  EXPECT_EQ(hex_encode(""), "");
  EXPECT_EQ(hex_encode(std::string("\x00\x01\xab\xff", 4)), "0001abff");
  EXPECT_EQ(*hex_decode("0001abff"), std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(*hex_decode("0001ABFF"), std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(*hex_decode(hex_encode(all_bytes())), all_bytes());
  EXPECT_EQ(hex_decode("").value(), "");
}

TEST(Hex, RefusesOddLengthsAndNonDigitsByPosition) {
  for (const char* bad : {"0", "abc", "0g", "g0", "00 1", "0x00", "zz"}) {
    auto r = hex_decode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), "invalid_hex") << bad;
  }
  EXPECT_NE(hex_decode("00ag").status().message().find("character 4"), std::string::npos)
      << hex_decode("00ag").status().message();
}

TEST(Base64, Rfc4648Vectors) {
  const std::vector<std::pair<std::string, std::string>> kVectors = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : kVectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(*base64_decode(encoded), plain) << encoded;
    std::string unpadded = encoded;
    while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
    EXPECT_EQ(base64_encode(plain, Base64::kUrl), unpadded);
    EXPECT_EQ(*base64_decode(unpadded), plain) << "unpadded " << unpadded;
    EXPECT_EQ(*base64_decode(unpadded, Base64::kUrl), plain) << unpadded;
    EXPECT_EQ(*base64_decode(encoded, Base64::kUrl), plain) << "padded url " << encoded;
  }
  // The two characters where the alphabets differ.
  EXPECT_EQ(base64_encode("\xfb\xff"), "+/8=");
  EXPECT_EQ(base64_encode("\xfb\xff", Base64::kUrl), "-_8");
  EXPECT_EQ(*base64_decode("-_8", Base64::kUrl), "\xfb\xff");
}

TEST(Base64, RoundTripsEveryByteAndLength) {
  std::mt19937 rng(4648);
  for (size_t n = 0; n < 200; ++n) {
    std::string bytes(n, '\0');
    for (auto& b : bytes) b = static_cast<char>(rng());
    for (Base64 v : {Base64::kStandard, Base64::kUrl}) {
      const std::string text = base64_encode(bytes, v);
      ASSERT_EQ(text.size(), v == Base64::kStandard ? (n + 2) / 3 * 4 : (4 * n + 2) / 3) << n;
      auto back = base64_decode(text, v);
      ASSERT_TRUE(back.ok()) << text << ": " << back.status().to_string();
      ASSERT_EQ(back.value(), bytes) << n;
    }
  }
  EXPECT_EQ(*base64_decode(base64_encode(all_bytes())), all_bytes());
}

TEST(Base64, RefusesMalformedInput) {
  const std::vector<std::string> kBad = {
      "Z",         // 4n+1 characters
      "Zm9vY",     //
      "Zg=",       // padding that does not complete a quad
      "Zg===",     // too much padding
      "Z===",      //
      "=",         //
      "====",      //
      "Zm9v=",     //
      "Zg==Zg==",  // '=' inside
      "Zm=v",      //
      "Zh==",      // unused bits set: a second spelling of "f"
      "Zm9=",      //
      "Zm 9v",     // whitespace
      "Zm9v\n",    //
      "Zm9v!",     // not in the alphabet
      "-_8=",      // URL-safe characters in the standard alphabet
  };
  for (const std::string& bad : kBad) {
    auto r = base64_decode(bad);
    ASSERT_FALSE(r.ok()) << bad << " decoded";
    EXPECT_EQ(r.status().code(), "invalid_base64") << bad;
  }
  EXPECT_FALSE(base64_decode("+/8=", Base64::kUrl).ok());
  EXPECT_FALSE(base64_decode("Zh", Base64::kUrl).ok());
  // Messages name a position, never the text (it may be a credential).
  auto r = base64_decode("c2VjcmV0LXZhbHVl!");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find("c2VjcmV0"), std::string::npos) << r.status().message();
  auto bad_char = base64_decode("c2Vj*mV0");
  ASSERT_FALSE(bad_char.ok());
  EXPECT_NE(bad_char.status().message().find("character 5"), std::string::npos)
      << bad_char.status().message();
}

TEST(PercentEncode, KeepsUnreservedAndEscapesTheRestInUpperCase) {
  EXPECT_EQ(percent_encode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(percent_encode("a b/c?d=e&f#g%h+i"), "a%20b%2Fc%3Fd%3De%26f%23g%25h%2Bi");
  EXPECT_EQ(percent_encode("caf\xC3\xA9"), "caf%C3%A9");
  EXPECT_EQ(percent_encode(std::string("\0\xff", 2)), "%00%FF");
}

TEST(Text, StartsWithIgnoringAsciiCase) {
  EXPECT_TRUE(ascii_starts_with_ci("Bearer abc", "bearer "));
  EXPECT_TRUE(ascii_starts_with_ci("BASIC xyz", "Basic "));
  EXPECT_TRUE(ascii_starts_with_ci("anything", ""));
  EXPECT_FALSE(ascii_starts_with_ci("Bear", "bearer "));
  EXPECT_FALSE(ascii_starts_with_ci("Bearerx", "bearer "));
  // Not a locale's idea of case: only A-Z and a-z fold.
  EXPECT_FALSE(ascii_starts_with_ci("\xC3\x89", "\xC3\xA9"));
}

}  // namespace
}  // namespace yantra
