// Token bucket arithmetic in microseconds and fractional tokens, so that low
// rates (1 request/s) and high ones (100k/s) are equally exact.
#include "api/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace yantra::api {

Status RateLimiter::admit(const std::string& tenant, uint32_t per_second, uint32_t burst,
                          int64_t now_us, uint32_t nodes) {
  if (per_second == 0) return Status::ok();
  nodes = std::max<uint32_t>(1, nodes);
  // This node's share of the cluster-wide rate and burst.
  const double rate = static_cast<double>(per_second) / nodes;
  const double capacity =
      std::max<double>(1.0, static_cast<double>(burst == 0 ? per_second : burst) / nodes);
  std::lock_guard<std::mutex> lock(mu_);
  Bucket& b = buckets_[tenant];
  if (b.fresh) {
    b.fresh = false;
    b.tokens = capacity;
    b.last_us = now_us;
    b.nodes = nodes;
  } else if (b.nodes != nodes) {
    // Membership changed: the tokens saved were of the old share.
    b.tokens = b.tokens * b.nodes / nodes;
    b.nodes = nodes;
  }
  const double elapsed_s = static_cast<double>(std::max<int64_t>(0, now_us - b.last_us)) / 1e6;
  b.tokens = std::min(capacity, b.tokens + elapsed_s * rate);
  b.last_us = now_us;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return Status::ok();
  }
  const double wait_s = (1.0 - b.tokens) / rate;
  std::string message =
      "tenant '" + tenant + "' exceeded its rate of " + std::to_string(per_second) + " requests/s";
  if (nodes > 1) {
    message += " (cluster-wide: this node admits its share, 1/" + std::to_string(nodes) + ")";
  }
  return Status(Errc::kRateLimited, std::move(message))
      .with_retry_after_ms(std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_s * 1000))));
}

}  // namespace yantra::api
