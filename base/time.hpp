// Wall-clock time and its text form, once.
//
// Times are stored and passed as int64 Unix milliseconds (UTC) everywhere;
// text appears only at the edges (API views, audit queries, callback
// payloads, the CLI), always as RFC 3339 in UTC with milliseconds:
// "2026-01-05T10:00:00.123Z". The calendar arithmetic is Howard Hinnant's
// date library (the one C++20's <chrono> calendar was taken from; GCC 12
// does not ship that part yet), not gmtime/timegm, which depend on the C
// library's time_t range and set no error on bad input.
//
// runtime/ is pure: it may format and parse, but must not call now_ms() or
// now_us() (it receives the time as an argument and records it in events).
// Components that must be testable across time jumps read a Clock
// (actors/clock.hpp) whose system implementation calls now_ms().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace yantra {

// The wall clock (std::chrono::system_clock): Unix milliseconds/microseconds.
// It may step backwards; measure durations with std::chrono::steady_clock.
int64_t now_ms();
int64_t now_us();

// Years 0000..9999, the range RFC 3339 can write.
constexpr int64_t kMinRfc3339Ms = -62167219200000;  // 0000-01-01T00:00:00.000Z
constexpr int64_t kMaxRfc3339Ms = 253402300799999;  // 9999-12-31T23:59:59.999Z

// "2026-01-05T10:00:00.123Z" for Unix milliseconds; instants before 1970 too
// ("1969-12-31T23:59:59.999Z" for -1). Outside years 0000..9999 (no clock
// produces those: only corrupted or hostile input) the value is clamped to
// that range, so the result is always a valid RFC 3339 timestamp.
std::string format_rfc3339_ms(int64_t unix_ms);

// Unix milliseconds from an RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS", an
// optional fraction (any number of digits, truncated to milliseconds) and
// "Z" or a numeric offset "+HH:MM"/"-HH:MM". 'T' and 'Z' may be lower case
// (RFC 3339 section 5.6). The date must exist (no February 30); a leap second
// (":60") is read as the first second of the next minute. Error code
// "invalid_time"; the message says what is wrong, not the whole input.
Result<int64_t> parse_rfc3339_ms(std::string_view text);

}  // namespace yantra
