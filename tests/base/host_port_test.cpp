// parse_host_port (base/host_port.hpp): what every address flag accepts.
#include <gtest/gtest.h>

#include "base/errc.hpp"
#include "base/host_port.hpp"

namespace yantra {
namespace {

TEST(HostPortTest, AcceptsNamesAddressesAndBracketedIpv6) {
  auto a = parse_host_port("127.0.0.1:8080");
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  auto b = parse_host_port("[::1]:65535");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 65535);
  auto c = parse_host_port("node-1.example:1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "node-1.example");
  EXPECT_TRUE(parse_host_port("0.0.0.0:0", /*allow_port_zero=*/true).ok());
}

TEST(HostPortTest, RefusesWithTheReason) {
  struct Case {
    const char* text;
    const char* why;
  };
  for (const Case& c :
       {Case{"8080", "no ':PORT'"}, Case{":8080", "the host is empty"},
        Case{"[]:80", "IPv6 host needs"}, Case{"::1:80", "must be bracketed"},
        Case{"[::1:80", "IPv6 host needs"}, Case{"a b:80", "has a character"},
        Case{"h:", "port must be a number 1..65535"}, Case{"h:0", "port must be a number 1..65535"},
        Case{"h:65536", "1..65535"}, Case{"h:80abc", "1..65535"}, Case{"h:+80", "1..65535"},
        Case{"h:-1", "1..65535"}, Case{"h: 80", "1..65535"}}) {
    auto r = parse_host_port(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_TRUE(r.status().is(Errc::kInvalidArgument)) << c.text;
    EXPECT_NE(r.status().message().find(c.why), std::string::npos)
        << c.text << ": " << r.status().message();
    EXPECT_NE(r.status().message().find(std::string("'") + c.text + "'"), std::string::npos);
  }
}

}  // namespace
}  // namespace yantra
