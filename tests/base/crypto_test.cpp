// base/crypto: SHA-256 against the NIST FIPS 180-4 examples, HMAC-SHA256
// against every RFC 4231 test case, constant-time comparison, and random
// bytes/tokens of the right size and alphabet that do not repeat.
// RAND_set_rand_method is deprecated in OpenSSL 3 but still honoured, and
// it is the one way to make the CSPRNG fail on demand.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "base/crypto.hpp"

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <set>
#include <string>

#include "base/encoding.hpp"

namespace yantra {
namespace {

std::string unhex(const std::string& hex) {
  auto r = hex_decode(hex);
  EXPECT_TRUE(r.ok()) << hex;
  return r.ok() ? r.value() : std::string();
}

TEST(Sha256, NistVectors) {
  EXPECT_EQ(crypto::sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(crypto::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(crypto::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(crypto::sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  const std::string raw = crypto::sha256("abc");
  EXPECT_EQ(raw.size(), crypto::kSha256Size);
  EXPECT_EQ(hex_encode(raw), crypto::sha256_hex("abc"));
}

struct HmacCase {
  const char* name;
  std::string key;
  std::string data;
  const char* mac;  // hex; test case 5 gives only the first 128 bits
};

TEST(HmacSha256, Rfc4231Vectors) {
  const HmacCase kCases[] = {
      {"1", std::string(20, '\x0b'), "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"2", "Jefe", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {"3", std::string(20, '\xaa'), std::string(50, '\xdd'),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {"4", unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), std::string(50, '\xcd'),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {"5", std::string(20, '\x0c'), "Test With Truncation", "a3b6167473100ee06e0c796c2955552b"},
      {"6", std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {"7", std::string(131, '\xaa'),
       "This is a test using a larger than block-size key and a larger than block-size data. "
       "The key needs to be hashed before being used by the HMAC algorithm.",
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (const HmacCase& c : kCases) {
    const std::string mac = crypto::hmac_sha256_hex(c.key, c.data);
    EXPECT_EQ(mac.substr(0, std::string(c.mac).size()), c.mac) << "RFC 4231 test case " << c.name;
    EXPECT_EQ(crypto::hmac_sha256(c.key, c.data), unhex(mac)) << c.name;
  }
  // An empty key is a key (the callback signer never uses one, but the
  // primitive must not read a null pointer as "reuse the previous key").
  EXPECT_EQ(crypto::hmac_sha256_hex("", ""),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(ConstantTimeEqual, ComparesContentAndLength) {
  EXPECT_TRUE(crypto::constant_time_equal("", ""));
  EXPECT_TRUE(crypto::constant_time_equal("secret", "secret"));
  EXPECT_FALSE(crypto::constant_time_equal("secret", "secreT"));
  EXPECT_FALSE(crypto::constant_time_equal("secret", "secret2"));
  EXPECT_FALSE(crypto::constant_time_equal("", "x"));
  EXPECT_FALSE(crypto::constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(Random, BytesHaveTheAskedSizeAndDoNotRepeat) {
  for (size_t n : {0u, 1u, 12u, 32u, 1000u}) {
    auto r = crypto::random_bytes(n);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->size(), n);
  }
  // 2^-256 of a false failure.
  EXPECT_NE(crypto::random_bytes(32).value(), crypto::random_bytes(32).value());
}

// Two of the old copies ignored RAND_bytes' result and handed out whatever
// the buffer held (zeros: "yk_AAAA..."). A CSPRNG that fails must be an error.
int failing_bytes(unsigned char*, int) {
  return 0;
}
int failing_status() {
  return 0;
}

TEST(Random, AFailingCsprngIsAnErrorNotATokenOfZeros) {
  RAND_METHOD failing{};
  failing.bytes = failing_bytes;
  failing.pseudorand = failing_bytes;
  failing.status = failing_status;
  const RAND_METHOD* previous = RAND_get_rand_method();
  ASSERT_EQ(RAND_set_rand_method(&failing), 1);
  auto bytes = crypto::random_bytes(16);
  auto token = crypto::random_token(32);
  RAND_set_rand_method(previous);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().code(), "crypto_error");
  ASSERT_FALSE(token.ok()) << "got a token anyway: " << token.value();
  EXPECT_EQ(token.status().code(), "crypto_error");
  EXPECT_TRUE(crypto::random_token(32).ok()) << "the real CSPRNG is back";
}

TEST(Random, TokensAreBase64UrlOfTheirBytesAndDistinct) {
  for (size_t n = 0; n <= 40; ++n) {
    auto t = crypto::random_token(n);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    EXPECT_EQ(t->size(), (4 * n + 2) / 3) << n;
    EXPECT_EQ(
        t->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        std::string::npos)
        << *t;
    auto raw = base64_decode(*t, Base64::kUrl);
    ASSERT_TRUE(raw.ok()) << *t;
    EXPECT_EQ(raw->size(), n);
  }
  EXPECT_EQ(crypto::random_token(32)->size(), 43u);  // API keys: "yk_" + 43
  EXPECT_EQ(crypto::random_token(24)->size(), 32u);  // webhook ids: "hk_" + 32
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(crypto::random_token(16).value());
  EXPECT_EQ(seen.size(), 10000u);
}

}  // namespace
}  // namespace yantra
