// Formatting writes the digits itself into a fixed buffer rather than going
// through date::format's ostream: API listings format one time per event
// and per row, and a stream per call costs an allocation and a locale
// lookup. The calendar (days <-> year/month/day) is date.h's.
//
// Parsing is a hand-written scanner over the exact RFC 3339 grammar instead
// of sscanf, which accepts signs, spaces and short fields ("%2d" reads " 1"),
// or date::parse, whose failures do not say which part was wrong.
#include "base/time.hpp"

#include <algorithm>
#include <chrono>

#include <date/date.h>

namespace yantra {
namespace {

using std::chrono::milliseconds;

// Writes `value` as exactly `width` decimal digits at `out`.
char* put_digits(char* out, unsigned value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return out + width;
}

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool at_end() const { return i_ == s_.size(); }
  bool peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
  bool take(char c) {
    if (!peek(c)) return false;
    ++i_;
    return true;
  }
  bool take_either(char a, char b) { return take(a) || take(b); }
  bool is_digit() const { return i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; }
  // Exactly `n` digits.
  bool digits(int n, int* out) {
    int v = 0;
    for (int k = 0; k < n; ++k) {
      if (!is_digit()) return false;
      v = v * 10 + (s_[i_++] - '0');
    }
    *out = v;
    return true;
  }
  int next_digit() { return s_[i_++] - '0'; }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

Status invalid_time(const std::string& what) {
  return {Errc::kInvalidTime, "not an RFC 3339 time like 2026-11-22T10:00:00Z: " + what};
}

}  // namespace

int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string format_rfc3339_ms(int64_t unix_ms) {
  const date::sys_time<milliseconds> t{
      milliseconds{std::clamp(unix_ms, kMinRfc3339Ms, kMaxRfc3339Ms)}};
  const date::sys_days day = date::floor<date::days>(t);
  const date::year_month_day ymd{day};
  const date::hh_mm_ss<milliseconds> tod{t - day};
  char buf[24];  // "YYYY-MM-DDTHH:MM:SS.mmmZ"
  char* p = put_digits(buf, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
  *p++ = '-';
  p = put_digits(p, static_cast<unsigned>(ymd.month()), 2);
  *p++ = '-';
  p = put_digits(p, static_cast<unsigned>(ymd.day()), 2);
  *p++ = 'T';
  p = put_digits(p, static_cast<unsigned>(tod.hours().count()), 2);
  *p++ = ':';
  p = put_digits(p, static_cast<unsigned>(tod.minutes().count()), 2);
  *p++ = ':';
  p = put_digits(p, static_cast<unsigned>(tod.seconds().count()), 2);
  *p++ = '.';
  p = put_digits(p, static_cast<unsigned>(tod.subseconds().count()), 3);
  *p++ = 'Z';
  return std::string(buf, static_cast<size_t>(p - buf));
}

Result<int64_t> parse_rfc3339_ms(std::string_view text) {
  Scanner in(text);
  int y = 0, mo = 0, d = 0;
  if (!in.digits(4, &y) || !in.take('-') || !in.digits(2, &mo) || !in.take('-') ||
      !in.digits(2, &d)) {
    return invalid_time("the date must be YYYY-MM-DD");
  }
  if (!in.take_either('T', 't')) return invalid_time("expected 'T' after the date");
  int h = 0, mi = 0, sec = 0;
  if (!in.digits(2, &h) || !in.take(':') || !in.digits(2, &mi) || !in.take(':') ||
      !in.digits(2, &sec)) {
    return invalid_time("the time of day must be HH:MM:SS");
  }
  int ms = 0;
  if (in.take('.')) {
    if (!in.is_digit()) return invalid_time("expected digits after '.'");
    int n = 0;
    for (; in.is_digit(); ++n) {
      const int digit = in.next_digit();
      if (n < 3) ms = ms * 10 + digit;
    }
    for (; n < 3; ++n) ms *= 10;
  }
  int offset_minutes = 0;
  if (!in.take_either('Z', 'z')) {
    const bool minus = in.peek('-');
    int oh = 0, om = 0;
    if (!in.take_either('+', '-') || !in.digits(2, &oh) || !in.take(':') || !in.digits(2, &om)) {
      return invalid_time("expected 'Z' or an offset like +01:00 after the time");
    }
    if (oh > 23 || om > 59) return invalid_time("the offset is out of range");
    offset_minutes = (minus ? -1 : 1) * (oh * 60 + om);
  }
  if (!in.at_end()) return invalid_time("unexpected text after the time zone");
  const date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(mo)},
                                 date::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return invalid_time("there is no such date");
  if (h > 23 || mi > 59 || sec > 60) return invalid_time("the time of day is out of range");
  const auto t = date::sys_days{ymd} + std::chrono::hours{h} + std::chrono::minutes{mi} +
                 std::chrono::seconds{sec} + milliseconds{ms} -
                 std::chrono::minutes{offset_minutes};
  return static_cast<int64_t>(date::floor<milliseconds>(t).time_since_epoch().count());
}

}  // namespace yantra
