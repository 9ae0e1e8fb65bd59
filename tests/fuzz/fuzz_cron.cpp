// libFuzzer target: cron expressions (runtime/cron.hpp). The input is the
// schedule text; when it parses, its firings are computed in fixed zones
// (UTC, and two zones whose DST rules differ) from fixed instants next to
// their 2026 DST transitions, and checked for what the scheduler relies on:
// the next firing is strictly later, it is the first firing of the window
// that ends at it, and a window's firings are strictly increasing and inside
// the window. Seeds: tests/fuzz/corpus/cron/ (the unit tests' schedules).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/cron.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

constexpr const char* kZones[] = {"UTC", "America/New_York", "Europe/Berlin"};
// 2026-03-08T06:00Z (one hour before New York springs forward) and
// 2026-10-25T00:30Z (half an hour before Berlin falls back).
constexpr int64_t kInstants[] = {1772949600000, 1792888200000};
constexpr int64_t kWindowMs = int64_t{3} * 24 * 3600 * 1000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = yantra::parse_cron(text);
  if (!spec.ok()) {
    FUZZ_CHECK(spec.status().code() == "invalid_cron", "unexpected error code %s",
               spec.status().to_string().c_str());
    return 0;
  }
  // What is stored is `expression`; it must parse to the same schedule.
  auto again = yantra::parse_cron(spec->expression);
  FUZZ_CHECK(again.ok() && again->minutes == spec->minutes && again->hours == spec->hours &&
                 again->days_of_month == spec->days_of_month && again->months == spec->months &&
                 again->days_of_week == spec->days_of_week,
             "'%s' does not parse to the same schedule", spec->expression.c_str());

  for (const char* zone : kZones) {
    for (const int64_t after : kInstants) {
      auto next = yantra::next_fire_ms(*spec, zone, after);
      if (!next.ok()) {
        // Only "never fires" is possible here: the zone and instant are valid.
        FUZZ_CHECK(next.status().code() == "invalid_cron", "%s in %s: %s", spec->expression.c_str(),
                   zone, next.status().to_string().c_str());
        continue;
      }
      FUZZ_CHECK(*next > after, "next firing %lld is not after %lld", static_cast<long long>(*next),
                 static_cast<long long>(after));
      auto upto = yantra::fire_times_between(*spec, zone, after, *next, 4);
      FUZZ_CHECK(upto.ok() && !upto->empty() && upto->front() == *next,
                 "the window ending at the next firing does not start with it (%s)", zone);

      auto window = yantra::fire_times_between(*spec, zone, after, after + kWindowMs, 64);
      FUZZ_CHECK(window.ok(), "%s", window.status().to_string().c_str());
      int64_t prev = after;
      for (const int64_t t : *window) {
        FUZZ_CHECK(t > prev && t <= after + kWindowMs, "firing %lld out of order or window",
                   static_cast<long long>(t));
        prev = t;
      }
      if (!window->empty()) {
        FUZZ_CHECK(window->front() == *next, "the window's first firing is not the next one");
      }
    }
  }
  return 0;
}
