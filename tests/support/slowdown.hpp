// How many times slower this build runs than a normal one, for the few tests
// whose assertion is a latency bound ("retried within 1 s"). A sanitizer
// build (scripts/sanitize.sh) instruments every memory access: ThreadSanitizer
// runs our code 5-15 times slower, AddressSanitizer about 2 times (the
// uninstrumented libraries and the kernel do not slow down; under TSan, on
// a machine loaded 7 times over, failing and retrying a run took 2 s where
// time_machine_engine_test allowed 1 s). Such a bound is
// multiplied by kSlowdown there, and the bound a requirement states is kept
// exactly in the normal build (which is where it is checked). Only latency
// bounds and the durations they depend on scale; counts and results never do.
#pragma once

namespace yantra::testing {

#if defined(__has_feature)  // clang
#if __has_feature(thread_sanitizer)
#define YANTRA_TEST_SLOWDOWN 5
#elif __has_feature(address_sanitizer)
#define YANTRA_TEST_SLOWDOWN 2
#endif
#elif defined(__SANITIZE_THREAD__)  // gcc
#define YANTRA_TEST_SLOWDOWN 5
#elif defined(__SANITIZE_ADDRESS__)
#define YANTRA_TEST_SLOWDOWN 2
#endif
#ifndef YANTRA_TEST_SLOWDOWN
#define YANTRA_TEST_SLOWDOWN 1
#endif

inline constexpr int kSlowdown = YANTRA_TEST_SLOWDOWN;

}  // namespace yantra::testing
