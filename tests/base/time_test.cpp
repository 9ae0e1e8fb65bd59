// base/time: RFC 3339 text of known instants (leap days, the ends of the
// range, before 1970), parsing every form RFC 3339 allows and refusing the
// rest, round trips, and that the clock is the wall clock.
#include "base/time.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <random>

namespace yantra {
namespace {

TEST(Time, FormatsKnownInstants) {
  EXPECT_EQ(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(1767607200123), "2026-01-05T10:00:00.123Z");
  EXPECT_EQ(format_rfc3339_ms(951782400000), "2000-02-29T00:00:00.000Z");  // a leap day
  EXPECT_EQ(format_rfc3339_ms(4102444799999), "2099-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339_ms(1), "1970-01-01T00:00:00.001Z");
  EXPECT_EQ(format_rfc3339_ms(999), "1970-01-01T00:00:00.999Z");
}

TEST(Time, FormatsInstantsBefore1970) {
  EXPECT_EQ(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339_ms(-1000), "1969-12-31T23:59:59.000Z");
  EXPECT_EQ(format_rfc3339_ms(-86400000), "1969-12-31T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(-14182940000), "1969-07-20T20:17:40.000Z");  // Apollo 11 landed
  EXPECT_EQ(format_rfc3339_ms(-2208988800000), "1900-01-01T00:00:00.000Z");
}

TEST(Time, ClampsToTheYearsRfc3339CanWrite) {
  EXPECT_EQ(format_rfc3339_ms(kMinRfc3339Ms), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(kMaxRfc3339Ms), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339_ms(kMaxRfc3339Ms + 1), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339_ms(std::numeric_limits<int64_t>::max()), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339_ms(std::numeric_limits<int64_t>::min()), "0000-01-01T00:00:00.000Z");
}

int64_t parsed(const std::string& s) {
  auto r = parse_rfc3339_ms(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status().to_string();
  return r.ok() ? r.value() : INT64_MIN;
}

TEST(Time, ParsesEveryFormRfc3339Allows) {
  EXPECT_EQ(parsed("2026-01-05T10:00:00.123Z"), 1767607200123);
  EXPECT_EQ(parsed("2026-01-05T10:00:00Z"), 1767607200000);
  EXPECT_EQ(parsed("2026-01-05t10:00:00z"), 1767607200000);
  EXPECT_EQ(parsed("2026-01-05T10:00:00.5Z"), 1767607200500);
  EXPECT_EQ(parsed("2026-01-05T10:00:00.12Z"), 1767607200120);
  EXPECT_EQ(parsed("2026-01-05T10:00:00.123999Z"), 1767607200123);  // truncated, not rounded
  EXPECT_EQ(parsed("2026-01-05T11:30:00+01:30"), 1767607200000);
  EXPECT_EQ(parsed("2026-01-05T05:00:00-05:00"), 1767607200000);
  EXPECT_EQ(parsed("2026-01-05T10:00:00+00:00"), 1767607200000);
  EXPECT_EQ(parsed("1969-12-31T23:59:59.999Z"), -1);
  EXPECT_EQ(parsed("2000-02-29T00:00:00Z"), 951782400000);
  EXPECT_EQ(parsed("0000-01-01T00:00:00Z"), kMinRfc3339Ms);
  EXPECT_EQ(parsed("9999-12-31T23:59:59.999Z"), kMaxRfc3339Ms);
  // A leap second is the first second of the next minute.
  EXPECT_EQ(parsed("2016-12-31T23:59:60Z"), parsed("2017-01-01T00:00:00Z"));
}

TEST(Time, RefusesWhatIsNotRfc3339) {
  for (const char* bad : {
           "",
           "2026-01-05",
           "2026-01-05T10:00Z",
           "2026-01-05T10:00:00",
           "2026-01-05 10:00:00Z",
           "2026-1-05T10:00:00Z",
           "+2026-01-05T10:00:00Z",
           " 2026-01-05T10:00:00Z",
           "2026-01-05T10:00:00Z ",
           "2026-01-05T10:00:00.Z",
           "2026-01-05T10:00:00,5Z",
           "2026-01-05T10:00:00Zjunk",
           "2026-01-05T10:00:00+0100",
           "2026-01-05T10:00:00+24:00",
           "2026-01-05T10:00:00+01:60",
           "2026-02-29T00:00:00Z",  // 2026 is no leap year
           "2026-02-30T00:00:00Z",
           "2026-04-31T00:00:00Z",
           "2026-13-01T00:00:00Z",
           "2026-00-01T00:00:00Z",
           "2026-01-00T00:00:00Z",
           "2026-01-05T24:00:00Z",
           "2026-01-05T10:60:00Z",
           "2026-01-05T10:00:61Z",
           "1767607200123",
       }) {
    auto r = parse_rfc3339_ms(bad);
    EXPECT_FALSE(r.ok()) << "'" << bad << "' parsed as " << (r.ok() ? r.value() : 0);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), "invalid_time") << bad;
    }
  }
}

TEST(Time, FormatAndParseRoundTrip) {
  std::mt19937_64 rng(20260105);
  std::uniform_int_distribution<int64_t> any(kMinRfc3339Ms, kMaxRfc3339Ms);
  for (int i = 0; i < 20000; ++i) {
    const int64_t ms = any(rng);
    const std::string text = format_rfc3339_ms(ms);
    ASSERT_EQ(text.size(), 24u) << ms;
    ASSERT_EQ(parsed(text), ms) << text;
  }
}

TEST(Time, TheClockIsTheWallClock) {
  const auto system_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const int64_t before = system_ms();
  const int64_t ms = now_ms();
  const int64_t us = now_us();
  const int64_t after = system_ms();
  EXPECT_GE(ms, before);
  EXPECT_LE(ms, after);
  EXPECT_GE(us / 1000, before);
  EXPECT_LE(us / 1000, after);
}

}  // namespace
}  // namespace yantra
