// Cron parsing and fire times.
//
// Why the search has this shape: a firing is a local minute that matches the
// spec, mapped to an instant by the zone. The local search skips by month,
// then day, then hour, then minute (bit scans), so a yearly schedule costs a
// dozen steps, not half a million minutes, and "never" is a bounded
// question: the Gregorian calendar repeats every 400 years (146097 days, a
// whole number of weeks), so a spec that matches no day in one cycle matches
// none ever.
//
// The zone enters in two ways. Fixed-time schedules map each matching local
// minute to one instant (the earlier of two, or the end of a gap); that map
// never runs backwards, so the first match whose instant is after `after` is
// the answer. Elapsed-time schedules walk the zone's offset intervals: inside
// one, local time is UTC plus a constant, so the same local search finds the
// first matching real minute of the interval, and an interval without one is
// skipped whole.
#include "runtime/cron.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>

#include <date/date.h>
#include <date/tz.h>

#include "base/text.hpp"
#include "runtime/doc_reader.hpp"
#include "runtime/errc.hpp"

// Zone rules must come from the system's tzdata: a scheduler that downloads
// (or fails to download) a database at run time would fire differently on
// different nodes.
static_assert(USE_OS_TZDB == 1 && HAS_REMOTE_API == 0,
              "date-tz must be built to read the OS time zone database");

namespace yantra {
namespace {

using std::chrono::milliseconds;
using Minutes = std::chrono::minutes;
using LocalMinutes = date::local_time<Minutes>;
using SysMinutes = date::sys_time<Minutes>;
using SysMs = date::sys_time<milliseconds>;

constexpr size_t kMaxExpressionSize = 256;
constexpr date::days kGregorianCycle{146097};  // 400 years
// Times accepted from callers: the years 1900-9999, far from the limits of
// the date types even after adding a search horizon.
constexpr int64_t kMinTimeMs = -2208988800000;   // 1900-01-01T00:00Z
constexpr int64_t kMaxTimeMs = 253402300799999;  // 9999-12-31T23:59:59.999Z

// ---- parsing

struct FieldDef {
  const char* name;
  int lo;       // smallest value that may be written
  int hi;       // largest value that may be written
  int star_hi;  // `*` is lo..star_hi (day of week: 0-6, 7 is a second Sunday)
  const char* const* names = nullptr;  // three-letter names of values lo, lo+1, ...
  int names_first = 0;
  int name_count = 0;
  const char* names_hint = nullptr;
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

constexpr FieldDef kFields[] = {
    {"minute", 0, 59, 59},
    {"hour", 0, 23, 23},
    {"day-of-month", 1, 31, 31},
    {"month", 1, 12, 12, kMonthNames, 1, 12, "a month name (JAN-DEC)"},
    {"day-of-week", 0, 7, 6, kDayNames, 0, 7, "a day name (SUN-SAT)"},
};

struct Macro {
  std::string_view name;
  std::string_view expansion;
};
constexpr Macro kMacros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

Status invalid(const FieldDef& f, const std::string& message) {
  return Status(RuntimeErrc::kInvalidCron, std::string(f.name) + " field: " + message);
}

// A number echoed in a message: enough of it to recognise, never all of a
// hostile one.
std::string shown_number(std::string_view token) {
  return token.size() <= 16 ? std::string(token) : std::string(token.substr(0, 16)) + "...";
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A number or a name, within the field's range.
Status parse_value(const FieldDef& f, std::string_view token, int& out) {
  if (all_digits(token)) {
    // Five digits are out of every range already; stopping there keeps the
    // arithmetic small whatever the input.
    int value = 0;
    for (char c : token.substr(0, std::min<size_t>(token.size(), 5))) {
      value = value * 10 + (c - '0');
    }
    if (token.size() > 5 || value < f.lo || value > f.hi) {
      return invalid(f, shown_number(token) + " is out of range " + std::to_string(f.lo) + "-" +
                            std::to_string(f.hi));
    }
    out = value;
    return {};
  }
  if (f.names != nullptr && token.size() == 3) {
    std::string upper = ascii_upper(token);
    for (int i = 0; i < f.name_count; ++i) {
      if (upper == f.names[i]) {
        out = f.names_first + i;
        return {};
      }
    }
  }
  return invalid(f, quote_name(token) + " is not a number" +
                        (f.names_hint ? std::string(" or ") + f.names_hint : std::string()));
}

// One item of a list: `*`, a value, or a range, with an optional step.
Status parse_item(const FieldDef& f, std::string_view item, uint64_t& bits) {
  std::string_view base = item;
  int step = 1;
  if (size_t slash = item.find('/'); slash != std::string_view::npos) {
    base = item.substr(0, slash);
    if (base.empty()) return invalid(f, quote_name(item) + " has nothing to step over");
    std::string_view step_text = item.substr(slash + 1);
    int span = f.star_hi - f.lo + 1;
    if (!all_digits(step_text)) {
      return invalid(f, "step " + quote_name(step_text) + " is not a number");
    }
    step = step_text.size() > 5 ? span + 1 : std::stoi(std::string(step_text));
    if (step < 1 || step > span) {
      return invalid(
          f, "step " + shown_number(step_text) + " is out of range 1-" + std::to_string(span));
    }
    if (base != "*" && base.find('-') == std::string_view::npos) {
      return invalid(f, quote_name(item) + " steps over a single value; write */" +
                            std::string(step_text) + " or a range such as " + std::to_string(f.lo) +
                            "-" + std::to_string(f.star_hi) + "/" + std::string(step_text));
    }
  }
  int first = f.lo;
  int last = f.star_hi;
  if (base != "*") {
    size_t dash = base.find('-');
    if (dash == 0 || dash + 1 == base.size()) {
      return invalid(f, quote_name(item) + " is not a valid range");
    }
    if (Status s = parse_value(f, base.substr(0, dash), first); !s) return s;
    last = first;
    if (dash != std::string_view::npos) {
      if (Status s = parse_value(f, base.substr(dash + 1), last); !s) return s;
      if (first > last) {
        return invalid(f, "range " + std::string(base) + " runs backwards (ranges do not wrap)");
      }
    }
  }
  for (int v = first; v <= last; v += step) bits |= uint64_t{1} << v;
  return {};
}

Status parse_field(const FieldDef& f, std::string_view text, uint64_t& bits, bool& star) {
  star = text[0] == '*';
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item =
        text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    if (item.empty()) return invalid(f, "empty item in " + quote_name(text));
    if (Status s = parse_item(f, item, bits); !s) return s;
    if (comma == std::string_view::npos) return {};
    start = comma + 1;
  }
}

std::vector<std::string_view> split_blanks(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// ---- the calendar

template <size_t N>
int first_set(const std::bitset<N>& bits, int from) {
  for (int i = std::max(from, 0); i < static_cast<int>(N); ++i) {
    if (bits.test(static_cast<size_t>(i))) return i;
  }
  return -1;
}

// The first day in [from, limit) that the spec's month and day rules allow.
std::optional<date::local_days> next_day(const CronSpec& spec, date::local_days from,
                                         date::local_days limit) {
  while (from < limit) {
    date::year_month_day ymd{from};
    auto month = static_cast<unsigned>(ymd.month());
    if (!spec.months.test(month)) {
      from = date::local_days{(date::year_month{ymd.year(), ymd.month()} + date::months{1}) /
                              date::day{1}};
      continue;
    }
    if (spec.matches_day(month, static_cast<unsigned>(ymd.day()),
                         date::weekday{from}.c_encoding())) {
      return from;
    }
    from += date::days{1};
  }
  return std::nullopt;
}

// The first local minute in [from, limit) that the spec matches.
std::optional<LocalMinutes> next_minute(const CronSpec& spec, LocalMinutes from,
                                        LocalMinutes limit) {
  LocalMinutes t = from;
  while (t < limit) {
    date::local_days today = date::floor<date::days>(t);
    auto day = next_day(spec, today, date::floor<date::days>(limit) + date::days{1});
    if (!day) return std::nullopt;
    if (*day != today) t = *day;
    auto since_midnight = (t - *day).count();
    int hour = static_cast<int>(since_midnight / 60);
    int minute = static_cast<int>(since_midnight % 60);
    while (true) {
      int h = first_set(spec.hours, hour);
      if (h < 0) break;
      int m = first_set(spec.minutes, h == hour ? minute : 0);
      if (m >= 0) {
        LocalMinutes found = *day + std::chrono::hours{h} + Minutes{m};
        if (found < limit) return found;
        return std::nullopt;
      }
      hour = h + 1;
      minute = 0;
    }
    t = *day + date::days{1};
  }
  return std::nullopt;
}

// ---- the zone

// A zone of the tz database, or UTC without one (so that UTC schedules work
// on a host without tzdata).
class Zone {
 public:
  static Result<Zone> locate(std::string_view name) {
    if (name == "UTC") return Zone(nullptr);
    try {
      date::get_tzdb();  // loads the database once; a missing one is not an unknown zone
    } catch (const std::exception& e) {
      return Status(RuntimeErrc::kInvalidTimeZone,
                    "time zone " + quote_name(name) + " cannot be resolved: " + e.what());
    }
    try {
      return Zone(date::locate_zone(name));
    } catch (const std::exception&) {
      return Status(RuntimeErrc::kInvalidTimeZone, "unknown time zone " + quote_name(name));
    }
  }

  // The offset in effect at `t`, and until when it holds.
  struct Interval {
    date::sys_seconds end;
    std::chrono::seconds offset;
  };
  Interval at(date::sys_seconds t) const {
    if (tz_ == nullptr) return {date::sys_days{date::year::max() / 12 / 31}, {}};
    date::sys_info info = tz_->get_info(t);
    return {info.end, info.offset};
  }

  date::local_seconds to_local(date::sys_seconds t) const {
    return date::local_seconds{(t + at(t).offset).time_since_epoch()};
  }

  // When a fixed-time schedule fires for local time `t`: its only instant,
  // the first of two (fall back), or the end of the gap it falls in.
  date::sys_seconds fixed_instant(LocalMinutes t) const {
    date::sys_seconds naive{t.time_since_epoch()};
    if (tz_ == nullptr) return naive;
    date::local_info info = tz_->get_info(t);
    if (info.result == date::local_info::nonexistent) return info.first.end;
    return naive - info.first.offset;
  }

 private:
  explicit Zone(const date::time_zone* tz) : tz_(tz) {}
  const date::time_zone* tz_;
};

int64_t to_ms(date::sys_seconds t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

// The first firing t with after_ms < t <= until_ms.
std::optional<int64_t> next_fire(const CronSpec& spec, const Zone& zone, int64_t after_ms,
                                 int64_t until_ms) {
  SysMs after{milliseconds{after_ms}};
  SysMs until{milliseconds{until_ms}};
  if (!spec.follows_elapsed_time()) {
    LocalMinutes t = date::floor<Minutes>(zone.to_local(date::floor<std::chrono::seconds>(after)));
    // A local minute can fire up to a DST shift later than its wall time
    // suggests; two days covers every shift there is (Samoa's was 24 hours).
    LocalMinutes limit =
        date::floor<Minutes>(zone.to_local(date::floor<std::chrono::seconds>(until))) +
        date::days{2};
    while (auto local = next_minute(spec, t, limit)) {
      int64_t at = to_ms(zone.fixed_instant(*local));
      if (at > until_ms) return std::nullopt;
      if (at > after_ms) return at;
      t = *local + Minutes{1};
    }
    return std::nullopt;
  }
  SysMinutes u = date::floor<Minutes>(after) + Minutes{1};
  const SysMinutes stop_at = date::floor<Minutes>(until) + Minutes{1};
  while (u < stop_at) {
    Zone::Interval interval = zone.at(u);
    // Offsets are whole minutes since the 1970s; the floor only matters for
    // local mean times of the 19th century.
    Minutes offset = date::floor<Minutes>(interval.offset);
    SysMinutes stop = std::min(date::ceil<Minutes>(interval.end), stop_at);
    auto local = next_minute(spec, LocalMinutes{(u + offset).time_since_epoch()},
                             LocalMinutes{(stop + offset).time_since_epoch()});
    if (local) return to_ms(SysMinutes{local->time_since_epoch()} - offset);
    u = stop;
  }
  return std::nullopt;
}

Status check_time(int64_t ms) {
  if (ms >= kMinTimeMs && ms <= kMaxTimeMs) return {};
  return Status(Errc::kInvalidArgument,
                "time " + std::to_string(ms) + " is outside the years 1900-9999");
}

}  // namespace

bool CronSpec::matches_day(unsigned month, unsigned day, unsigned weekday) const {
  if (month >= months.size() || day >= days_of_month.size() || weekday >= days_of_week.size()) {
    return false;
  }
  if (!months.test(month)) return false;
  bool dom = days_of_month.test(day);
  bool dow = days_of_week.test(weekday);
  return dom_star || dow_star ? dom && dow : dom || dow;
}

Result<CronSpec> parse_cron(std::string_view expr) {
  if (expr.size() > kMaxExpressionSize) {
    return Status(
        RuntimeErrc::kInvalidCron,
        "cron expression is longer than " + std::to_string(kMaxExpressionSize) + " characters");
  }
  std::vector<std::string_view> fields = split_blanks(expr);
  CronSpec spec;
  if (!fields.empty() && fields[0][0] == '@') {
    if (fields.size() > 1) {
      return Status(RuntimeErrc::kInvalidCron,
                    "macro " + quote_name(fields[0]) + " takes no other fields");
    }
    std::string name = ascii_lower(fields[0]);
    auto macro = std::find_if(std::begin(kMacros), std::end(kMacros),
                              [&](const Macro& m) { return m.name == name; });
    if (macro == std::end(kMacros)) {
      return Status(RuntimeErrc::kInvalidCron,
                    "unknown macro " + quote_name(fields[0]) +
                        " (expected @yearly, @annually, @monthly, @weekly, "
                        "@daily, @midnight or @hourly)");
    }
    auto expanded = parse_cron(macro->expansion);
    if (!expanded) return expanded.status();
    spec = std::move(expanded).value();
    spec.expression = std::string(fields[0]);
    return spec;
  }
  if (fields.size() != 5) {
    return Status(RuntimeErrc::kInvalidCron,
                  "expected 5 fields (minute hour day-of-month month day-of-week), got " +
                      std::to_string(fields.size()));
  }
  uint64_t bits[5] = {};
  bool stars[5] = {};
  for (size_t i = 0; i < 5; ++i) {
    if (Status s = parse_field(kFields[i], fields[i], bits[i], stars[i]); !s) return s;
  }
  if (bits[4] & (uint64_t{1} << 7)) bits[4] = (bits[4] | 1) & ~(uint64_t{1} << 7);
  spec.minutes = std::bitset<60>(bits[0]);
  spec.hours = std::bitset<24>(bits[1]);
  spec.days_of_month = std::bitset<32>(bits[2]);
  spec.months = std::bitset<13>(bits[3]);
  spec.days_of_week = std::bitset<7>(bits[4]);
  spec.minute_star = stars[0];
  spec.hour_star = stars[1];
  spec.dom_star = stars[2];
  spec.dow_star = stars[4];
  size_t begin = expr.find_first_not_of(" \t");
  size_t end = expr.find_last_not_of(" \t");
  spec.expression = std::string(expr.substr(begin, end - begin + 1));

  // Only days of month that no listed month has can make a spec impossible
  // ("30 2", "31 4,6,9,11"); one Gregorian cycle settles it either way.
  date::local_days start{date::year{2000} / 1 / 1};
  if (!next_day(spec, start, start + kGregorianCycle)) {
    return Status(RuntimeErrc::kInvalidCron, "never fires: day-of-month " + quote_name(fields[2]) +
                                                 " does not occur in month " +
                                                 quote_name(fields[3]));
  }
  return spec;
}

Status check_time_zone(std::string_view iana) {
  auto zone = Zone::locate(iana);
  return zone ? Status() : zone.status();
}

Result<int64_t> next_fire_ms(const CronSpec& spec, std::string_view time_zone,
                             int64_t after_utc_ms) {
  if (Status s = check_time(after_utc_ms); !s) return s;
  auto zone = Zone::locate(time_zone);
  if (!zone) return zone.status();
  // A year past the cycle: the cycle's last match may sit at its far end.
  constexpr int64_t kHorizonMs = (kGregorianCycle.count() + 366) * 86400000LL;
  try {
    if (auto next = next_fire(spec, *zone, after_utc_ms, after_utc_ms + kHorizonMs)) return *next;
  } catch (const std::exception& e) {
    return Status(RuntimeErrc::kInvalidTimeZone,
                  "time zone " + quote_name(time_zone) + " could not be read: " + e.what());
  }
  return Status(RuntimeErrc::kInvalidCron, "never fires: nothing matches " +
                                               quote_name(spec.expression) + " within 400 years");
}

Result<std::vector<int64_t>> fire_times_between(const CronSpec& spec, std::string_view time_zone,
                                                int64_t after_ms, int64_t until_ms, size_t max) {
  if (Status s = check_time(after_ms); !s) return s;
  if (Status s = check_time(until_ms); !s) return s;
  auto zone = Zone::locate(time_zone);
  if (!zone) return zone.status();
  std::vector<int64_t> out;
  try {
    while (out.size() < max && after_ms < until_ms) {
      auto next = next_fire(spec, *zone, after_ms, until_ms);
      if (!next) break;
      out.push_back(*next);
      after_ms = *next;
    }
  } catch (const std::exception& e) {
    return Status(RuntimeErrc::kInvalidTimeZone,
                  "time zone " + quote_name(time_zone) + " could not be read: " + e.what());
  }
  return out;
}

}  // namespace yantra
