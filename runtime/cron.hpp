// Cron schedules: the five-field syntax, and when a schedule fires in an
// IANA time zone.
//
// Why in runtime/: "when does this fire next?" and "which slots were
// missed?" depend on nothing but the spec, the zone's rules and the times
// passed in, so they are answered here without a clock, and tested to the
// minute across DST transitions. The scheduler only supplies `now`.
//
// Syntax: "minute hour day-of-month month day-of-week", each field a list
// (a,b) of values, ranges (a-b), `*`, and steps over `*` or a range (*/n,
// a-b/n). Months may be named JAN-DEC and days SUN-SAT (any case); day of
// week 0 and 7 are both Sunday. Macros: @yearly (@annually) = 0 0 1 1 *,
// @monthly = 0 0 1 * *, @weekly = 0 0 * * 0, @daily (@midnight) = 0 0 * * *,
// @hourly = 0 * * * *. A step needs `*` or a range: "5/10" is refused rather
// than guessed at (cron implementations disagree on what it means).
//
// The day rule is cron's: when both day fields are restricted, a day matches
// if EITHER matches ("0 0 1,15 * MON" is the 1st, the 15th and every
// Monday); when either field begins with `*` (including "*/n", as in cronie
// and Vixie cron), a day must match both.
//
// DST, as cronie does it. A schedule whose minute or hour field begins with
// `*` (@hourly, "*/5 * * * *") follows elapsed time: every real minute whose
// local wall time matches fires, so @hourly fires every real hour, twice at
// 01:00 on a fall-back day and never at the missing 02:00 on a
// spring-forward day. Every other schedule is fixed-time: each matching local
// date and time fires exactly once; an ambiguous local time (fall back) fires
// at its first occurrence, and a local time that does not exist (spring
// forward) fires at the first instant after the gap, so 02:30 daily in
// America/New_York fires at 03:00 EDT on 2026-03-08; several missing times
// collapse into that one firing.
//
// Zone rules come from the system's tzdata (/usr/share/zoneinfo) through
// Howard Hinnant's date library, read once per process and never downloaded.
// Its reader uses the listed transitions only, which Debian's files give up
// to 2037: later instants keep the offset in effect at the end of 2037.
// "UTC" needs no tzdata at all.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace yantra {

struct CronSpec {
  std::string expression;         // as written, without surrounding blanks
  std::bitset<60> minutes;        // bit m = minute m
  std::bitset<24> hours;          // bit h = hour h
  std::bitset<32> days_of_month;  // bit d = day d (1-31); bit 0 unused
  std::bitset<13> months;         // bit m = month m (1-12); bit 0 unused
  std::bitset<7> days_of_week;    // bit d = weekday d, 0 = Sunday (7 folds onto 0)
  // Whether the field began with `*` ("*" or "*/n"): the day rule and the
  // DST behaviour depend on how a field was written, not only on its set.
  bool minute_star = false;
  bool hour_star = false;
  bool dom_star = false;
  bool dow_star = false;

  // Elapsed-time schedule (see the DST rules above) rather than fixed-time.
  bool follows_elapsed_time() const { return minute_star || hour_star; }
  // The day rule; weekday 0 = Sunday.
  bool matches_day(unsigned month, unsigned day, unsigned weekday) const;
};

// Error code "invalid_cron", the message naming the field and the token:
// "minute field: 61 is out of range 0-59". A spec that no date can match
// ("0 0 30 2 *") is refused too: "never fires: ...".
Result<CronSpec> parse_cron(std::string_view expr);

// Ok if `iana` names a zone of the tz database ("Europe/Berlin", "UTC");
// otherwise "invalid_time_zone": "unknown time zone 'Mars/Olympus'".
Status check_time_zone(std::string_view iana);

// The first firing strictly after `after_utc_ms` (a whole minute, or a
// DST transition instant), in UTC epoch milliseconds. Errors:
// "invalid_time_zone"; "invalid_argument" for a time outside the years
// 1900-9999; "invalid_cron": "never fires" when nothing matches within a
// Gregorian cycle (400 years, after which the calendar repeats).
Result<int64_t> next_fire_ms(const CronSpec& spec, std::string_view time_zone,
                             int64_t after_utc_ms);

// The firings t with after_ms < t <= until_ms, earliest first, at most
// `max` of them (the earliest ones; call again from the last to go on).
// For catch-up after downtime. Same errors as next_fire_ms, except that no
// firing in the window is an empty vector, not an error.
Result<std::vector<int64_t>> fire_times_between(const CronSpec& spec, std::string_view time_zone,
                                                int64_t after_ms, int64_t until_ms, size_t max);

}  // namespace yantra
