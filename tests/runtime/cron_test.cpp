// Cron schedules: every syntax form and every error message, then fire times
// worked out by hand in UTC, around both DST transitions of 2026 in two zones
// whose rules differ (America/New_York switches at 02:00 local, Europe/Berlin
// at 01:00 UTC), for a fixed-time schedule inside the gap or the overlap
// (02:30 or 01:30), one outside it, and elapsed-time schedules (@hourly,
// */30). Times are written as ISO strings so that a failure reads as a date.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "runtime/cron.hpp"

namespace yantra {
namespace {

// "2026-03-08T07:00Z" -> UTC epoch ms.
int64_t ms(const std::string& iso) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  char z = 0;
  EXPECT_EQ(std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d%c", &y, &mo, &d, &h, &mi, &z), 6) << iso;
  EXPECT_EQ(z, 'Z') << iso;
  using namespace std::chrono;
  sys_days day{year{y} / mo / d};
  return duration_cast<milliseconds>((day + hours{h} + minutes{mi}).time_since_epoch()).count();
}

// UTC epoch ms -> "2026-03-08T07:00Z" (seconds shown only when not zero).
std::string iso(int64_t t) {
  using namespace std::chrono;
  sys_time<milliseconds> tp{milliseconds{t}};
  sys_days day = floor<days>(tp);
  year_month_day ymd{day};
  hh_mm_ss<milliseconds> hms{tp - day};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()));
  std::string out = buf;
  if (hms.seconds().count() != 0 || hms.subseconds().count() != 0) {
    std::snprintf(buf, sizeof buf, ":%02d.%03d", static_cast<int>(hms.seconds().count()),
                  static_cast<int>(hms.subseconds().count()));
    out += buf;
  }
  return out + "Z";
}

CronSpec spec(const std::string& expr) {
  auto r = parse_cron(expr);
  EXPECT_TRUE(r.ok()) << expr << ": " << r.status().to_string();
  return r.ok() ? r.value() : CronSpec{};
}

std::string error(const std::string& expr) {
  auto r = parse_cron(expr);
  if (r.ok()) return "(parsed)";
  EXPECT_EQ(r.status().code(), "invalid_cron") << expr;
  return r.status().message();
}

// The first firing after `after`, as ISO, or the error.
std::string next(const std::string& expr, const std::string& zone, int64_t after) {
  auto r = next_fire_ms(spec(expr), zone, after);
  return r.ok() ? iso(*r) : r.status().to_string();
}
std::string next(const std::string& expr, const std::string& zone, const std::string& after) {
  return next(expr, zone, ms(after));
}

std::vector<std::string> between(const std::string& expr, const std::string& zone,
                                 const std::string& after, const std::string& until,
                                 size_t max = 1000) {
  auto r = fire_times_between(spec(expr), zone, ms(after), ms(until), max);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  std::vector<std::string> out;
  if (r.ok()) {
    for (int64_t t : *r) out.push_back(iso(t));
  }
  return out;
}

using Times = std::vector<std::string>;

std::vector<int> bits(const auto& set) {
  std::vector<int> out;
  for (size_t i = 0; i < set.size(); ++i) {
    if (set.test(i)) out.push_back(static_cast<int>(i));
  }
  return out;
}

std::vector<int> range(int lo, int hi) {
  std::vector<int> out;
  for (int i = lo; i <= hi; ++i) out.push_back(i);
  return out;
}

void expect_same(const CronSpec& a, const CronSpec& b) {
  EXPECT_EQ(a.minutes, b.minutes);
  EXPECT_EQ(a.hours, b.hours);
  EXPECT_EQ(a.days_of_month, b.days_of_month);
  EXPECT_EQ(a.months, b.months);
  EXPECT_EQ(a.days_of_week, b.days_of_week);
  EXPECT_EQ(a.minute_star, b.minute_star);
  EXPECT_EQ(a.hour_star, b.hour_star);
  EXPECT_EQ(a.dom_star, b.dom_star);
  EXPECT_EQ(a.dow_star, b.dow_star);
}

constexpr const char* kNewYork = "America/New_York";
constexpr const char* kBerlin = "Europe/Berlin";

// ---------------------------------------------------------------- parsing

TEST(CronParse, StarsValuesListsRangesAndSteps) {
  CronSpec s = spec("5,10-12,*/20 */6 1,15,31 * *");
  EXPECT_EQ(bits(s.minutes), (std::vector<int>{0, 5, 10, 11, 12, 20, 40}));
  EXPECT_EQ(bits(s.hours), (std::vector<int>{0, 6, 12, 18}));
  EXPECT_EQ(bits(s.days_of_month), (std::vector<int>{1, 15, 31}));
  EXPECT_EQ(bits(s.months), range(1, 12));
  EXPECT_EQ(bits(s.days_of_week), range(0, 6));
  EXPECT_FALSE(s.minute_star);  // begins with '5', not '*'
  EXPECT_TRUE(s.hour_star);
  EXPECT_FALSE(s.dom_star);
  EXPECT_TRUE(s.dow_star);
  EXPECT_EQ(s.expression, "5,10-12,*/20 */6 1,15,31 * *");

  s = spec("* 9-17/4 */10 2-11/3 *");
  EXPECT_EQ(bits(s.minutes), range(0, 59));
  EXPECT_EQ(bits(s.hours), (std::vector<int>{9, 13, 17}));
  EXPECT_EQ(bits(s.days_of_month), (std::vector<int>{1, 11, 21, 31}));
  EXPECT_EQ(bits(s.months), (std::vector<int>{2, 5, 8, 11}));
  EXPECT_TRUE(s.minute_star);
  EXPECT_TRUE(s.dom_star);

  s = spec("59 23 31 12 6");
  EXPECT_EQ(bits(s.minutes), std::vector<int>{59});
  EXPECT_EQ(bits(s.days_of_week), std::vector<int>{6});
  s = spec("0 0 1 1 0");
  EXPECT_EQ(bits(s.minutes), std::vector<int>{0});
  EXPECT_EQ(bits(s.days_of_week), std::vector<int>{0});
}

TEST(CronParse, NamesInAnyCase) {
  CronSpec s = spec("0 0 * JAN,mar-May,Dec mon-FRI");
  EXPECT_EQ(bits(s.months), (std::vector<int>{1, 3, 4, 5, 12}));
  EXPECT_EQ(bits(s.days_of_week), range(1, 5));
  EXPECT_EQ(bits(spec("0 0 * * SUN,sat").days_of_week), (std::vector<int>{0, 6}));
  EXPECT_EQ(bits(spec("0 0 * feb-apr/2 *").months), (std::vector<int>{2, 4}));
}

TEST(CronParse, SevenIsSunday) {
  EXPECT_EQ(bits(spec("0 0 * * 7").days_of_week), std::vector<int>{0});
  EXPECT_EQ(bits(spec("0 0 * * 5-7").days_of_week), (std::vector<int>{0, 5, 6}));
  EXPECT_EQ(bits(spec("0 0 * * 0-7").days_of_week), range(0, 6));
  EXPECT_EQ(bits(spec("0 0 * * 1-7/2").days_of_week), (std::vector<int>{0, 1, 3, 5}));
  EXPECT_EQ(bits(spec("0 0 * * */2").days_of_week), (std::vector<int>{0, 2, 4, 6}));
}

TEST(CronParse, MacrosAreTheirExpansions) {
  expect_same(spec("@yearly"), spec("0 0 1 1 *"));
  expect_same(spec("@annually"), spec("0 0 1 1 *"));
  expect_same(spec("@monthly"), spec("0 0 1 * *"));
  expect_same(spec("@weekly"), spec("0 0 * * 0"));
  expect_same(spec("@daily"), spec("0 0 * * *"));
  expect_same(spec("@midnight"), spec("0 0 * * *"));
  expect_same(spec("@hourly"), spec("0 * * * *"));
  expect_same(spec("@DAILY"), spec("0 0 * * *"));
  EXPECT_EQ(spec("@hourly").expression, "@hourly");
  EXPECT_TRUE(spec("@hourly").follows_elapsed_time());
  EXPECT_FALSE(spec("@daily").follows_elapsed_time());
}

TEST(CronParse, BlanksAroundAndBetweenFields) {
  CronSpec s = spec("  0\t12  *  * *\t");
  EXPECT_EQ(s.expression, "0\t12  *  * *");
  EXPECT_EQ(bits(s.hours), std::vector<int>{12});
  EXPECT_EQ(spec(" @daily ").expression, "@daily");
}

TEST(CronParse, WhichSchedulesFollowElapsedTime) {
  EXPECT_TRUE(spec("*/5 * * * *").follows_elapsed_time());
  EXPECT_TRUE(spec("0 * * * *").follows_elapsed_time());
  EXPECT_TRUE(spec("0 */2 * * *").follows_elapsed_time());
  EXPECT_TRUE(spec("*/30 2 * * *").follows_elapsed_time());  // as cronie: minute begins with '*'
  EXPECT_FALSE(spec("30 2 * * *").follows_elapsed_time());
  EXPECT_FALSE(spec("0 0-23 * * *").follows_elapsed_time());
  EXPECT_FALSE(spec("0,30 1,2 * * *").follows_elapsed_time());
}

TEST(CronParse, EveryError) {
  const std::pair<const char*, const char*> cases[] = {
      {"61 * * * *", "minute field: 61 is out of range 0-59"},
      {"* 24 * * *", "hour field: 24 is out of range 0-23"},
      {"* * 0 * *", "day-of-month field: 0 is out of range 1-31"},
      {"* * 32 * *", "day-of-month field: 32 is out of range 1-31"},
      {"* * * 0 *", "month field: 0 is out of range 1-12"},
      {"* * * 13 *", "month field: 13 is out of range 1-12"},
      {"* * * * 8", "day-of-week field: 8 is out of range 0-7"},
      {"1-60 * * * *", "minute field: 60 is out of range 0-59"},
      {"99999999999 * * * *", "minute field: 99999999999 is out of range 0-59"},
      {"x * * * *", "minute field: 'x' is not a number"},
      {"JAN * * * *", "minute field: 'JAN' is not a number"},
      {"* * * FOO *", "month field: 'FOO' is not a number or a month name (JAN-DEC)"},
      {"* * * * MONDAY", "day-of-week field: 'MONDAY' is not a number or a day name (SUN-SAT)"},
      {"* * * JAN-FOO *", "month field: 'FOO' is not a number or a month name (JAN-DEC)"},
      {"*/0 * * * *", "minute field: step 0 is out of range 1-60"},
      {"*/61 * * * *", "minute field: step 61 is out of range 1-60"},
      {"* */25 * * *", "hour field: step 25 is out of range 1-24"},
      {"* * * * */8", "day-of-week field: step 8 is out of range 1-7"},
      {"*/x * * * *", "minute field: step 'x' is not a number"},
      {"*/ * * * *", "minute field: step '' is not a number"},
      {"5/10 * * * *",
       "minute field: '5/10' steps over a single value; write */10 or a range such as 0-59/10"},
      {"/5 * * * *", "minute field: '/5' has nothing to step over"},
      {"30-10 * * * *", "minute field: range 30-10 runs backwards (ranges do not wrap)"},
      {"* * * * FRI-MON", "day-of-week field: range FRI-MON runs backwards (ranges do not wrap)"},
      {"1,,2 * * * *", "minute field: empty item in '1,,2'"},
      {"1, * * * *", "minute field: empty item in '1,'"},
      {",1 * * * *", "minute field: empty item in ',1'"},
      {"-5 * * * *", "minute field: '-5' is not a valid range"},
      {"5- * * * *", "minute field: '5-' is not a valid range"},
      {"1-2-3 * * * *", "minute field: '2-3' is not a number"},
      {"? * * * *", "minute field: '?' is not a number"},
      {"", "expected 5 fields (minute hour day-of-month month day-of-week), got 0"},
      {"   ", "expected 5 fields (minute hour day-of-month month day-of-week), got 0"},
      {"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"},
      {"0 * * * * 2026", "expected 5 fields (minute hour day-of-month month day-of-week), got 6"},
      {"@reboot",
       "unknown macro '@reboot' (expected @yearly, @annually, @monthly, @weekly, @daily, "
       "@midnight or @hourly)"},
      {"@daily 5", "macro '@daily' takes no other fields"},
      {"0 0 30 2 *", "never fires: day-of-month '30' does not occur in month '2'"},
      {"0 0 30,31 FEB *", "never fires: day-of-month '30,31' does not occur in month 'FEB'"},
      {"0 0 31 4,6,9,11 *", "never fires: day-of-month '31' does not occur in month '4,6,9,11'"},
  };
  for (const auto& [expr, message] : cases) EXPECT_EQ(error(expr), message) << expr;
  EXPECT_EQ(error(std::string(300, '*')), "cron expression is longer than 256 characters");
}

TEST(CronParse, DaysThatOnlySomeMonthsOrYearsHaveAreFine) {
  spec("0 0 29 2 *");     // leap years
  spec("0 0 30 2 MON");   // Mondays in February: either day field matches
  spec("0 0 31 1-12 *");  // the months that have one
  spec("0 0 29 2 */7");   // Sundays that are February 29th: 2032, 2060, ...
}

// ---------------------------------------------------------------- zones

TEST(CronZone, KnownAndUnknownZones) {
  EXPECT_TRUE(check_time_zone("UTC").is_ok());
  EXPECT_TRUE(check_time_zone(kNewYork).is_ok());
  EXPECT_TRUE(check_time_zone(kBerlin).is_ok());
  EXPECT_TRUE(check_time_zone("Etc/UTC").is_ok());
  for (const char* bad : {"Mars/Olympus", "", "europe/berlin", "../../etc/passwd", "EST5EDT "}) {
    Status s = check_time_zone(bad);
    EXPECT_EQ(s.code(), "invalid_time_zone") << bad;
    EXPECT_EQ(s.message(), std::string("unknown time zone '") + bad + "'");
  }
  EXPECT_EQ(check_time_zone(std::string(100, 'x')).message(),
            "unknown time zone '" + std::string(64, 'x') + "...'");
  auto r = next_fire_ms(spec("@daily"), "Mars/Olympus", 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "invalid_time_zone");
  EXPECT_EQ(r.status().message(), "unknown time zone 'Mars/Olympus'");
  auto between = fire_times_between(spec("@daily"), "Mars/Olympus", 0, 1, 10);
  ASSERT_FALSE(between.ok());
  EXPECT_EQ(between.status().code(), "invalid_time_zone");
}

// ---------------------------------------------------------------- fire times

TEST(CronNext, UtcIsStrictlyAfter) {
  EXPECT_EQ(next("15 10 * * *", "UTC", "2026-06-01T10:14Z"), "2026-06-01T10:15Z");
  EXPECT_EQ(next("15 10 * * *", "UTC", ms("2026-06-01T10:15Z") - 1), "2026-06-01T10:15Z");
  EXPECT_EQ(next("15 10 * * *", "UTC", "2026-06-01T10:15Z"), "2026-06-02T10:15Z");
  EXPECT_EQ(next("15 10 * * *", "UTC", ms("2026-06-01T10:15Z") + 1), "2026-06-02T10:15Z");
  EXPECT_EQ(next("* * * * *", "UTC", ms("2026-06-01T10:15Z") + 59999), "2026-06-01T10:16Z");
  EXPECT_EQ(next("*/5 * * * *", "UTC", "2026-12-31T23:58Z"), "2027-01-01T00:00Z");
  EXPECT_EQ(next("0 12 31 * *", "UTC", "2026-04-01T00:00Z"), "2026-05-31T12:00Z");
  EXPECT_EQ(next("30 4 * * *", "Etc/UTC", "2026-06-01T10:14Z"), "2026-06-02T04:30Z");
}

TEST(CronNext, Yearly) {
  EXPECT_EQ(next("@yearly", "UTC", "2026-01-01T00:00Z"), "2027-01-01T00:00Z");
  EXPECT_EQ(next("@yearly", "UTC", ms("2026-01-01T00:00Z") - 1), "2026-01-01T00:00Z");
  EXPECT_EQ(next("@yearly", kNewYork, "2026-06-01T00:00Z"), "2027-01-01T05:00Z");
  EXPECT_EQ(next("@monthly", kBerlin, "2026-03-15T00:00Z"), "2026-03-31T22:00Z");  // CEST
  EXPECT_EQ(next("@weekly", "UTC", "2026-02-01T00:00Z"), "2026-02-08T00:00Z");     // Sundays
}

TEST(CronNext, FebruaryTwentyNinth) {
  EXPECT_EQ(next("0 12 29 2 *", "UTC", "2026-01-01T00:00Z"), "2028-02-29T12:00Z");
  EXPECT_EQ(next("0 12 29 2 *", "UTC", "2028-02-29T12:00Z"), "2032-02-29T12:00Z");
  // 2100 is not a leap year: eight years to wait.
  EXPECT_EQ(next("0 12 29 2 *", "UTC", "2096-03-01T00:00Z"), "2104-02-29T12:00Z");
  // A Sunday that is February 29th comes every 28 years.
  EXPECT_EQ(next("0 0 29 2 */7", "UTC", "2026-01-01T00:00Z"), "2032-02-29T00:00Z");
  EXPECT_EQ(next("0 0 29 2 */7", "UTC", "2032-03-01T00:00Z"), "2060-02-29T00:00Z");
}

TEST(CronNext, DayOfMonthOrDayOfWeek) {
  // 2026-02-01 is a Sunday. Both restricted: the 10th, and every Monday.
  EXPECT_EQ(
      between("0 0 10 * 1", "UTC", "2026-02-01T00:00Z", "2026-02-17T00:00Z"),
      (Times{"2026-02-02T00:00Z", "2026-02-09T00:00Z", "2026-02-10T00:00Z", "2026-02-16T00:00Z"}));
  EXPECT_EQ(
      between("0 0 1,15 * MON", "UTC", "2026-03-01T00:00Z", "2026-03-17T00:00Z"),
      (Times{"2026-03-02T00:00Z", "2026-03-09T00:00Z", "2026-03-15T00:00Z", "2026-03-16T00:00Z"}));
  EXPECT_EQ(between("0 0 10 * *", "UTC", "2026-02-01T00:00Z", "2026-02-17T00:00Z"),
            (Times{"2026-02-10T00:00Z"}));
  EXPECT_EQ(between("0 0 * * 1", "UTC", "2026-02-01T00:00Z", "2026-02-17T00:00Z"),
            (Times{"2026-02-02T00:00Z", "2026-02-09T00:00Z", "2026-02-16T00:00Z"}));
  // A field beginning with '*' is unrestricted for this rule (as in cronie):
  // days 1, 11, 21, 31 that are Mondays; the first from February is May 11th.
  EXPECT_EQ(next("0 0 */10 * 1", "UTC", "2026-02-01T00:00Z"), "2026-05-11T00:00Z");
}

// America/New_York, 2026-03-08: 02:00 EST (07:00Z) becomes 03:00 EDT.
TEST(CronDst, NewYorkSpringForward) {
  // 02:30 does not exist that day: it fires at the end of the gap, 03:00 EDT.
  EXPECT_EQ(next("30 2 * * *", kNewYork, "2026-03-07T12:00Z"), "2026-03-08T07:00Z");
  EXPECT_EQ(next("30 2 * * *", kNewYork, "2026-03-08T07:00Z"), "2026-03-09T06:30Z");
  EXPECT_EQ(
      between("30 2 * * *", kNewYork, "2026-03-06T12:00Z", "2026-03-10T12:00Z"),
      (Times{"2026-03-07T07:30Z", "2026-03-08T07:00Z", "2026-03-09T06:30Z", "2026-03-10T06:30Z"}));
  // Missing times and 03:00 itself collapse into one firing.
  EXPECT_EQ(between("0,30 2,3 * * *", kNewYork, "2026-03-08T06:00Z", "2026-03-08T08:00Z"),
            (Times{"2026-03-08T07:00Z", "2026-03-08T07:30Z"}));
  // 01:30 is before the gap: unaffected.
  EXPECT_EQ(between("30 1 * * *", kNewYork, "2026-03-06T12:00Z", "2026-03-09T12:00Z"),
            (Times{"2026-03-07T06:30Z", "2026-03-08T06:30Z", "2026-03-09T05:30Z"}));
  // Elapsed time: every real hour; there is no 02:00 to fire at.
  EXPECT_EQ(
      between("@hourly", kNewYork, "2026-03-08T04:30Z", "2026-03-08T08:30Z"),
      (Times{"2026-03-08T05:00Z", "2026-03-08T06:00Z", "2026-03-08T07:00Z", "2026-03-08T08:00Z"}));
  EXPECT_EQ(next("@hourly", kNewYork, "2026-03-08T06:00Z"), "2026-03-08T07:00Z");
  EXPECT_EQ(
      between("*/30 * * * *", kNewYork, "2026-03-08T06:00Z", "2026-03-08T08:00Z"),
      (Times{"2026-03-08T06:30Z", "2026-03-08T07:00Z", "2026-03-08T07:30Z", "2026-03-08T08:00Z"}));
  // An elapsed-time schedule inside the missing hour skips that day.
  EXPECT_EQ(
      between("*/30 2 * * *", kNewYork, "2026-03-06T12:00Z", "2026-03-09T12:00Z"),
      (Times{"2026-03-07T07:00Z", "2026-03-07T07:30Z", "2026-03-09T06:00Z", "2026-03-09T06:30Z"}));
}

// America/New_York, 2026-11-01: 02:00 EDT (06:00Z) becomes 01:00 EST; 01:xx
// happens twice.
TEST(CronDst, NewYorkFallBack) {
  // 01:30 is ambiguous: only its first occurrence (EDT) fires.
  EXPECT_EQ(next("30 1 * * *", kNewYork, "2026-10-31T12:00Z"), "2026-11-01T05:30Z");
  EXPECT_EQ(next("30 1 * * *", kNewYork, "2026-11-01T05:30Z"), "2026-11-02T06:30Z");
  EXPECT_EQ(next("30 1 * * *", kNewYork, "2026-11-01T06:15Z"), "2026-11-02T06:30Z");
  EXPECT_EQ(between("30 1 * * *", kNewYork, "2026-10-31T00:00Z", "2026-11-03T00:00Z"),
            (Times{"2026-10-31T05:30Z", "2026-11-01T05:30Z", "2026-11-02T06:30Z"}));
  // 02:30 happens once, in EST.
  EXPECT_EQ(between("30 2 * * *", kNewYork, "2026-10-30T12:00Z", "2026-11-02T12:00Z"),
            (Times{"2026-10-31T06:30Z", "2026-11-01T07:30Z", "2026-11-02T07:30Z"}));
  // Elapsed time: both 01:00s fire.
  EXPECT_EQ(
      between("@hourly", kNewYork, "2026-11-01T03:30Z", "2026-11-01T07:30Z"),
      (Times{"2026-11-01T04:00Z", "2026-11-01T05:00Z", "2026-11-01T06:00Z", "2026-11-01T07:00Z"}));
  EXPECT_EQ(
      between("*/30 * * * *", kNewYork, "2026-11-01T05:00Z", "2026-11-01T07:00Z"),
      (Times{"2026-11-01T05:30Z", "2026-11-01T06:00Z", "2026-11-01T06:30Z", "2026-11-01T07:00Z"}));
  // The same hours written out are fixed-time: 01:00 fires once.
  EXPECT_EQ(between("0 0-23 * * *", kNewYork, "2026-11-01T03:30Z", "2026-11-01T07:30Z"),
            (Times{"2026-11-01T04:00Z", "2026-11-01T05:00Z", "2026-11-01T07:00Z"}));
}

// Europe/Berlin, 2026-03-29: 02:00 CET (01:00Z) becomes 03:00 CEST.
TEST(CronDst, BerlinSpringForward) {
  EXPECT_EQ(next("30 2 * * *", kBerlin, "2026-03-28T12:00Z"), "2026-03-29T01:00Z");
  EXPECT_EQ(between("30 2 * * *", kBerlin, "2026-03-27T12:00Z", "2026-03-31T00:00Z"),
            (Times{"2026-03-28T01:30Z", "2026-03-29T01:00Z", "2026-03-30T00:30Z"}));
  EXPECT_EQ(
      between("30 1 * * *", kBerlin, "2026-03-27T12:00Z", "2026-03-31T00:00Z"),
      (Times{"2026-03-28T00:30Z", "2026-03-29T00:30Z", "2026-03-29T23:30Z", "2026-03-30T23:30Z"}));
  EXPECT_EQ(between("@hourly", kBerlin, "2026-03-28T23:30Z", "2026-03-29T02:30Z"),
            (Times{"2026-03-29T00:00Z", "2026-03-29T01:00Z", "2026-03-29T02:00Z"}));
  EXPECT_EQ(
      between("*/30 * * * *", kBerlin, "2026-03-29T00:00Z", "2026-03-29T02:00Z"),
      (Times{"2026-03-29T00:30Z", "2026-03-29T01:00Z", "2026-03-29T01:30Z", "2026-03-29T02:00Z"}));
}

// Europe/Berlin, 2026-10-25: 03:00 CEST (01:00Z) becomes 02:00 CET; 02:xx
// happens twice.
TEST(CronDst, BerlinFallBack) {
  EXPECT_EQ(next("30 2 * * *", kBerlin, "2026-10-24T12:00Z"), "2026-10-25T00:30Z");
  EXPECT_EQ(next("30 2 * * *", kBerlin, "2026-10-25T00:30Z"), "2026-10-26T01:30Z");
  EXPECT_EQ(between("30 2 * * *", kBerlin, "2026-10-24T00:00Z", "2026-10-27T00:00Z"),
            (Times{"2026-10-24T00:30Z", "2026-10-25T00:30Z", "2026-10-26T01:30Z"}));
  EXPECT_EQ(between("30 1 * * *", kBerlin, "2026-10-23T12:00Z", "2026-10-26T12:00Z"),
            (Times{"2026-10-23T23:30Z", "2026-10-24T23:30Z", "2026-10-26T00:30Z"}));
  EXPECT_EQ(between("@hourly", kBerlin, "2026-10-24T23:30Z", "2026-10-25T02:30Z"),
            (Times{"2026-10-25T00:00Z", "2026-10-25T01:00Z", "2026-10-25T02:00Z"}));
  EXPECT_EQ(
      between("*/30 * * * *", kBerlin, "2026-10-25T00:00Z", "2026-10-25T02:00Z"),
      (Times{"2026-10-25T00:30Z", "2026-10-25T01:00Z", "2026-10-25T01:30Z", "2026-10-25T02:00Z"}));
}

TEST(CronNext, ImpossibleSpecsEndWithAnError) {
  // parse_cron refuses these; a spec built by hand is bounded all the same.
  CronSpec impossible = spec("0 0 1 2 *");
  impossible.days_of_month.reset();
  impossible.days_of_month.set(30);
  for (const char* zone : {"UTC", kBerlin}) {
    auto r = next_fire_ms(impossible, zone, ms("2026-01-01T00:00Z"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), "invalid_cron");
    EXPECT_EQ(r.status().message(), "never fires: nothing matches '0 0 1 2 *' within 400 years");
    auto window = fire_times_between(impossible, zone, 0, ms("2100-01-01T00:00Z"), 10);
    ASSERT_TRUE(window.ok());
    EXPECT_TRUE(window->empty());
  }
  CronSpec empty;  // matches nothing at all
  EXPECT_EQ(next_fire_ms(empty, kNewYork, 0).status().code(), "invalid_cron");
  CronSpec elapsed_impossible = impossible;
  elapsed_impossible.minute_star = true;
  EXPECT_EQ(next_fire_ms(elapsed_impossible, kNewYork, 0).status().code(), "invalid_cron");
}

TEST(CronNext, TimesOutsideTheSupportedYears) {
  for (int64_t bad : {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                      ms("1899-12-31T23:59Z"), ms("9999-12-31T23:59Z") + 60000}) {
    auto r = next_fire_ms(spec("@daily"), "UTC", bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), "invalid_argument");
    EXPECT_EQ(fire_times_between(spec("@daily"), "UTC", 0, bad, 1).status().code(),
              "invalid_argument");
  }
  EXPECT_EQ(next("@yearly", "UTC", "9999-06-01T00:00Z"), "10000-01-01T00:00Z");
}

TEST(CronBetween, WindowAndLimit) {
  // (after, until]: the end is included, the start is not.
  EXPECT_EQ(between("0 * * * *", "UTC", "2026-01-01T00:00Z", "2026-01-01T03:00Z"),
            (Times{"2026-01-01T01:00Z", "2026-01-01T02:00Z", "2026-01-01T03:00Z"}));
  EXPECT_EQ(between("* * * * *", "UTC", "2026-01-01T00:00Z", "2026-01-02T00:00Z", 3),
            (Times{"2026-01-01T00:01Z", "2026-01-01T00:02Z", "2026-01-01T00:03Z"}));
  EXPECT_EQ(between("* * * * *", "UTC", "2026-01-01T00:00Z", "2026-01-02T00:00Z", 0), Times{});
  EXPECT_EQ(between("* * * * *", "UTC", "2026-01-01T00:00Z", "2026-01-01T00:00Z"), Times{});
  EXPECT_EQ(between("* * * * *", "UTC", "2026-01-02T00:00Z", "2026-01-01T00:00Z"), Times{});
  EXPECT_EQ(between("@yearly", kBerlin, "2000-01-01T00:00Z", "2100-01-01T00:00Z").size(), 100u);
}

// The skipping search agrees with the obvious minute-by-minute one.
TEST(CronNext, AgreesWithAMinuteByMinuteScan) {
  const char* specs[] = {"*/7 3-5 * * *", "0 0 10 * 1",     "59 23 31 * *", "15,45 */5 * 2 MON-WED",
                         "0 12 1 1,7 *",  "*/13 * */3 * *", "@hourly",      "30 2 1 3 *"};
  int64_t start = ms("2027-12-30T00:00Z");
  for (const char* expr : specs) {
    CronSpec s = spec(expr);
    auto matches = [&](int64_t t) {
      using namespace std::chrono;
      sys_time<minutes> tp{duration_cast<minutes>(milliseconds{t})};
      sys_days day = floor<days>(tp);
      year_month_day ymd{day};
      hh_mm_ss<minutes> hm{tp - day};
      return s.minutes.test(static_cast<size_t>(hm.minutes().count())) &&
             s.hours.test(static_cast<size_t>(hm.hours().count())) &&
             s.matches_day(static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                           weekday{day}.c_encoding());
    };
    int64_t t = start;
    for (int i = 0; i < 5; ++i) {
      auto r = next_fire_ms(s, "UTC", t);
      ASSERT_TRUE(r.ok()) << expr;
      int64_t expected = (t / 60000 + 1) * 60000;
      while (!matches(expected)) expected += 60000;
      ASSERT_EQ(iso(*r), iso(expected)) << expr << " after " << iso(t);
      t = *r + 17;
    }
  }
}

}  // namespace
}  // namespace yantra
