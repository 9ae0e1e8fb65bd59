// Exponential backoff saturates at max_delay_ms; the loop (not pow) keeps the
// result exact and immune to overflow for large attempt numbers.
#include "runtime/backoff.hpp"

#include <algorithm>

namespace yantra {

int64_t retry_delay_ms(const RetryPolicy& policy, uint32_t failed_attempt) {
  const int64_t cap = std::max<int64_t>(policy.max_delay_ms, 0);
  int64_t delay = std::max<int64_t>(policy.initial_delay_ms, 0);
  if (policy.backoff == Backoff::kFixed) return std::min(delay, cap);
  double d = static_cast<double>(delay);
  for (uint32_t i = 1; i < failed_attempt && d < static_cast<double>(cap); ++i) {
    d *= policy.multiplier;
  }
  return std::min(static_cast<int64_t>(std::min(d, static_cast<double>(cap))), cap);
}

}  // namespace yantra
