// Authorization header parsing in-process (no engine, no key lookup): the
// two schemes, the case of the scheme, and every malformed shape refused
// with "unauthorized" and a message that says what was expected.
#include "api/auth.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace yantra::api {
namespace {

// RFC 4648 base64 with padding, as a client builds Basic credentials.
std::string base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t n = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) |
                       uint32_t(uint8_t(in[i + 2]));
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(n >> s) & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t n = uint32_t(uint8_t(in[i])) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t n = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

TEST(AuthParseTest, Base64HelperMatchesRfc4648) {
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
}

TEST(AuthParseTest, Bearer) {
  auto c = parse_authorization("Bearer yk_abc123");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->secret, "yk_abc123");
  EXPECT_FALSE(c->basic);
  EXPECT_EQ(c->tenant, "");
}

TEST(AuthParseTest, SchemeIsCaseInsensitiveAndMaySpaceOut) {
  for (const std::string h : {"bearer yk_x", "BEARER yk_x", "bEaReR yk_x", "Bearer   yk_x"}) {
    auto c = parse_authorization(h);
    ASSERT_TRUE(c.ok()) << h;
    EXPECT_EQ(c->secret, "yk_x") << h;
  }
  const std::string creds = base64("acme:yk_y");
  for (const std::string scheme : {"Basic ", "basic ", "BASIC ", "Basic  "}) {
    auto c = parse_authorization(scheme + creds);
    ASSERT_TRUE(c.ok()) << scheme;
    EXPECT_TRUE(c->basic);
    EXPECT_EQ(c->tenant, "acme");
    EXPECT_EQ(c->secret, "yk_y");
  }
}

TEST(AuthParseTest, BasicSplitsAtTheFirstColon) {
  std::string claimed;
  auto c = parse_authorization("Basic " + base64("acme:yk:with:colons"), &claimed);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->tenant, "acme");
  EXPECT_EQ(c->secret, "yk:with:colons");
  EXPECT_EQ(claimed, "acme");
}

TEST(AuthParseTest, MissingHeaderSaysSo) {
  auto c = parse_authorization("");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), "unauthorized");
  EXPECT_NE(c.status().message().find("missing Authorization header"), std::string::npos);
}

TEST(AuthParseTest, MalformedHeadersAreRefused) {
  const std::string too_long(513, 'k');
  for (const std::string& h : std::vector<std::string>{
           "Bearer",                                  // no credentials
           "Bearer ",                                 // empty key
           "Bearer  ",                                // only spaces
           "Bearer" + std::string("yk_x"),            // no space after the scheme
           "Token yk_x",                              // unknown scheme
           "Digest username=\"a\"",                   // unsupported scheme
           "yk_abc",                                  // no scheme at all
           " Bearer yk_x",                            // leading space
           "Bearer " + too_long,                      // longer than any key
           "Basic",                                   // no credentials
           "Basic !!!!",                              // not base64
           "Basic Zm9v",                              // "foo": no colon
           "Basic " + base64(":yk_x"),                // empty tenant
           "Basic " + base64("acme:"),                // empty key
           "Basic " + base64("acme:yk_x").substr(1),  // truncated
       }) {
    auto c = parse_authorization(h);
    ASSERT_FALSE(c.ok()) << "accepted: '" << h << "'";
    EXPECT_EQ(c.status().code(), "unauthorized") << h;
    EXPECT_NE(c.status().message().find("malformed Authorization header"), std::string::npos)
        << h << ": " << c.status().message();
  }
}

// The audit record of a failed Basic login names the tenant it claimed, even
// when the credentials are refused for their shape.
TEST(AuthParseTest, ClaimedTenantOfRefusedBasicCredentials) {
  std::string claimed;
  auto c = parse_authorization("Basic " + base64("acme:"), &claimed);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(claimed, "acme");
  claimed.clear();
  ASSERT_FALSE(parse_authorization("Basic !!!!", &claimed).ok());
  EXPECT_EQ(claimed, "");
  ASSERT_TRUE(parse_authorization("Bearer yk_x", &claimed).ok());
  EXPECT_EQ(claimed, "");
}

}  // namespace
}  // namespace yantra::api
