// How many times slower this build runs than a normal one, for the few tests
// whose assertion is a latency bound ("answered within 1 s"). A sanitizer
// build (scripts/sanitize.sh) instruments every memory access: ThreadSanitizer
// runs code 5-15 times slower, AddressSanitizer 2-3 times, so such a bound is
// multiplied by kSlowdown there, and the bound a requirement states is kept
// exactly in the normal build (which is where it is checked). Only latency
// bounds scale; counts and results never do.
#pragma once

namespace yantra::testing {

#if defined(__has_feature)  // clang
#if __has_feature(thread_sanitizer)
#define YANTRA_TEST_SLOWDOWN 10
#elif __has_feature(address_sanitizer)
#define YANTRA_TEST_SLOWDOWN 3
#endif
#elif defined(__SANITIZE_THREAD__)  // gcc
#define YANTRA_TEST_SLOWDOWN 10
#elif defined(__SANITIZE_ADDRESS__)
#define YANTRA_TEST_SLOWDOWN 3
#endif
#ifndef YANTRA_TEST_SLOWDOWN
#define YANTRA_TEST_SLOWDOWN 1
#endif

inline constexpr int kSlowdown = YANTRA_TEST_SLOWDOWN;

}  // namespace yantra::testing
