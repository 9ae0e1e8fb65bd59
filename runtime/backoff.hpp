// Retry delay math, shared by decide() and the docs: attempt n (1-based) that
// failed is followed by attempt n+1 after retry_delay_ms(policy, n).
// Deterministic (no jitter) so that replaying a log reproduces the schedule.
#pragma once

#include <cstdint>

#include "runtime/flow.hpp"

namespace yantra {

int64_t retry_delay_ms(const RetryPolicy& policy, uint32_t failed_attempt);

}  // namespace yantra
