// Per-tenant request rate limits: one token bucket per tenant, refilled at
// the tenant's requests_per_second up to its burst (= the rate when unset).
// A bucket costs a mutex and a map lookup per request; tenants without a
// limit skip it entirely.
//
// In a cluster the limit is the tenant's for the cluster as a whole: each
// of the `nodes` live nodes admits its share, rate / nodes and burst / nodes
// (at least 1 token), so requests spread over the nodes are admitted at the
// tenant's rate in total (docs/cluster.md, "Limits and quotas": how close).
// A change of `nodes` rescales the bucket's tokens at the next request.
//
// Thread-safety: admit() may be called from any HTTP I/O thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/result.hpp"

namespace yantra::api {

class RateLimiter {
 public:
  // ok, or "rate_limited" with the time until a token is available.
  // `nodes`: the live nodes sharing the limit (1 = a single node; 0 is 1).
  Status admit(const std::string& tenant, uint32_t per_second, uint32_t burst, int64_t now_us,
               uint32_t nodes = 1);

 private:
  struct Bucket {
    double tokens = 0;
    int64_t last_us = 0;
    bool fresh = true;
    uint32_t nodes = 1;  // the share the tokens were counted for
  };
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace yantra::api
