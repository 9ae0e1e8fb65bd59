// RateLimiter: one tenant's token bucket, alone and as one node's share of a
// cluster-wide limit (rate / nodes, burst / nodes), and the rescale when
// the number of live nodes changes. Time is passed in, so the counts are
// exact.
#include "api/rate_limiter.hpp"

#include <gtest/gtest.h>

namespace yantra::api {
namespace {

// Admitted requests when `offered` arrive evenly spread over [from_us,
// from_us + span_us).
int admitted(RateLimiter& limiter, uint32_t rate, uint32_t burst, uint32_t nodes, int offered,
             int64_t from_us, int64_t span_us) {
  int n = 0;
  for (int i = 0; i < offered; ++i) {
    const int64_t t = from_us + span_us * i / offered;
    if (limiter.admit("acme", rate, burst, t, nodes).is_ok()) ++n;
  }
  return n;
}

TEST(RateLimiterTest, ASingleNodeAdmitsTheBurstThenTheRate) {
  RateLimiter limiter;
  EXPECT_EQ(admitted(limiter, 100, 0, 1, 500, 0, 1), 100);  // the burst, at once
  Status refused = limiter.admit("acme", 100, 0, 0, 1);
  EXPECT_EQ(refused.code(), "rate_limited");
  EXPECT_EQ(refused.retry_after_ms(), 10);  // one token at 100/s
  // 2 s later at 1,000 requests/s offered: the rate.
  const int n = admitted(limiter, 100, 0, 1, 2000, 1, 2'000'000);
  EXPECT_GE(n, 199);
  EXPECT_LE(n, 201);
}

TEST(RateLimiterTest, EachOfNNodesAdmitsItsShare) {
  // Four nodes, each one RateLimiter, each offered the same load: together
  // they admit the tenant's burst, then its rate.
  RateLimiter nodes[4];
  int burst = 0;
  int steady = 0;
  for (RateLimiter& node : nodes) {
    burst += admitted(node, 100, 40, 4, 100, 0, 1);
  }
  Status refused = nodes[0].admit("acme", 100, 40, 0, 4);
  ASSERT_EQ(refused.code(), "rate_limited");
  EXPECT_EQ(refused.retry_after_ms(), 40);  // one token at 25/s
  EXPECT_NE(refused.message().find("1/4"), std::string::npos) << refused.message();
  for (RateLimiter& node : nodes) steady += admitted(node, 100, 40, 4, 1000, 1, 2'000'000);
  EXPECT_EQ(burst, 40);
  EXPECT_GE(steady, 196);
  EXPECT_LE(steady, 204);
}

TEST(RateLimiterTest, AShareBelowOneTokenStillAdmitsOne) {
  RateLimiter limiter;
  // 2 requests/s over 5 nodes: 0.4/s here, a bucket of one token.
  EXPECT_EQ(admitted(limiter, 2, 0, 5, 10, 0, 1), 1);
  const int n = admitted(limiter, 2, 0, 5, 100, 1, 10'000'000);
  EXPECT_GE(n, 3);
  EXPECT_LE(n, 5);
}

TEST(RateLimiterTest, AMembershipChangeRescalesTheSavedTokens) {
  RateLimiter limiter;
  // Three nodes: a share of 30 tokens, 10 spent.
  EXPECT_EQ(admitted(limiter, 90, 0, 3, 10, 0, 1), 10);
  // One node left: the share is now 45 tokens, and the 20 saved of 30 are
  // 30 of 45; no time passes, so exactly 30 more.
  EXPECT_EQ(admitted(limiter, 90, 0, 2, 100, 1, 1), 30);
}

}  // namespace
}  // namespace yantra::api
