// Per-tenant request rate limits: one token bucket per tenant, refilled at
// the tenant's requests_per_second up to its burst (= the rate when unset).
// A bucket costs a mutex and a map lookup per request; tenants without a
// limit skip it entirely.
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
  Status admit(const std::string& tenant, uint32_t per_second, uint32_t burst, int64_t now_us);

 private:
  struct Bucket {
    double tokens = 0;
    int64_t last_us = 0;
    bool fresh = true;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace yantra::api
