// credvault — .NET ticks, the dates SuperOffice stores, and their ISO 8601 text.
//
// A tick is 100 ns; ticks count from 0001-01-01T00:00:00 UTC in the proleptic Gregorian
// calendar (.NET DateTime, Kind UTC). 0 is DateTime.MinValue, which credvault reads as "not
// set" (an open end of a validity window). MAX_TICKS is DateTime.MaxValue,
// 9999-12-31T23:59:59.9999999. The calendar arithmetic is exact integer arithmetic over the
// whole range (no time_t, no gmtime_r, no time zone, no leap seconds), before 1970 included.
//
// Text is "YYYY-MM-DDTHH:MM:SS[.fffffff]", always UTC, without a zone designator: callers
// append "Z" where their protocol wants one. Pure functions; never throws.

#pragma once

#include <kj/string.h>
#include <stdint.h>
#include <stdio.h>

namespace credvault::base {

constexpr int64_t TICKS_PER_SECOND = 10'000'000;
constexpr int64_t TICKS_PER_DAY = 86400 * TICKS_PER_SECOND;
constexpr int64_t UNIX_EPOCH_TICKS = 621'355'968'000'000'000;  // 1970-01-01T00:00:00
constexpr int64_t MAX_TICKS = 3'155'378'975'999'999'999;       // 9999-12-31T23:59:59.9999999

constexpr bool isLeapYear(int64_t year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

// Days from 1970-01-01 to year-month-day (month 1-12, day 1-31, already checked); negative
// before 1970.
constexpr int64_t daysFromCivil(int64_t year, int64_t month, int64_t day) {
  // Count from 0000-03-01 in 400-year eras (146,097 days each) so the leap day is last.
  int64_t y = year - (month <= 2 ? 1 : 0);
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yearOfEra = y - era * 400;
  int64_t dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  int64_t dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

struct CivilTime {
  int64_t year = 1;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0;
  int64_t fraction = 0;  // ticks within the second, 0 to TICKS_PER_SECOND - 1
};

// The calendar date and time of `ticks`, clamped to [0, MAX_TICKS].
constexpr CivilTime civilFromTicks(int64_t ticks) {
  if (ticks < 0) ticks = 0;
  if (ticks > MAX_TICKS) ticks = MAX_TICKS;
  CivilTime t;
  t.fraction = ticks % TICKS_PER_SECOND;
  int64_t seconds = ticks / TICKS_PER_SECOND;
  int64_t secondOfDay = seconds % 86400;
  t.hour = static_cast<int>(secondOfDay / 3600);
  t.minute = static_cast<int>(secondOfDay / 60 % 60);
  t.second = static_cast<int>(secondOfDay % 60);
  // Days since 0000-03-01 (0001-01-01 is day 306): never negative in range.
  int64_t z = seconds / 86400 + 306;
  int64_t era = z / 146097;
  int64_t dayOfEra = z - era * 146097;
  int64_t yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365;
  int64_t dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100);
  int64_t mp = (5 * dayOfYear + 2) / 153;
  t.day = static_cast<int>(dayOfYear - (153 * mp + 2) / 5 + 1);
  t.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  t.year = yearOfEra + era * 400 + (t.month <= 2 ? 1 : 0);
  return t;
}

// How a nonzero fraction of a second is written: all seven digits (".1000000", what
// credvault's SOAP and credvaultctl print), or without trailing zeros (".1", the REST
// gateway's RFC 3339). A zero fraction is never written.
enum class Fraction { SEVEN_DIGITS, TRIMMED };

// "YYYY-MM-DDTHH:MM:SS[.fffffff]" for `ticks`, clamped to [0, MAX_TICKS]; no zone designator.
inline kj::String formatTicks(int64_t ticks, Fraction style = Fraction::SEVEN_DIGITS) {
  CivilTime t = civilFromTicks(ticks);
  char buffer[48];
  int n = snprintf(buffer, sizeof(buffer), "%04lld-%02d-%02dT%02d:%02d:%02d",
                   static_cast<long long>(t.year), t.month, t.day, t.hour, t.minute, t.second);
  if (t.fraction != 0) {
    char digits[8];
    snprintf(digits, sizeof(digits), "%07lld", static_cast<long long>(t.fraction));
    int keep = 7;
    if (style == Fraction::TRIMMED) {
      while (keep > 1 && digits[keep - 1] == '0') --keep;
    }
    snprintf(buffer + n, sizeof(buffer) - n, ".%.*s", keep, digits);
  }
  return kj::heapString(buffer);
}

// Ticks for "YYYY-MM-DD" (midnight) or "YYYY-MM-DDTHH:MM" with optional ":SS" and, after the
// seconds, an optional fraction of any length (digits past the seventh are dropped, not
// rounded); ' ' may stand for 'T'. Then an optional "Z"/"z" or a "+HH:MM"/"-HH:MM" offset
// (the colon is optional; at most 14:59), converted to UTC; none means UTC. Null when
// malformed, when a field is out of range (Feb 29 outside a leap year included), or when the
// instant lies outside [0, MAX_TICKS].
inline kj::Maybe<int64_t> parseTicks(kj::StringPtr text) {
  const char* p = text.begin();
  const char* end = text.end();
  auto digits = [&](int n, int64_t& out) -> bool {
    out = 0;
    for (int i = 0; i < n; i++) {
      if (p >= end || *p < '0' || *p > '9') return false;
      out = out * 10 + (*p++ - '0');
    }
    return true;
  };
  auto expect = [&](char c) -> bool {
    if (p < end && *p == c) {
      ++p;
      return true;
    }
    return false;
  };
  int64_t year, month, day, hour = 0, minute = 0, second = 0, fraction = 0;
  if (!digits(4, year) || !expect('-') || !digits(2, month) || !expect('-') || !digits(2, day)) {
    return nullptr;
  }
  if (p < end && (*p == 'T' || *p == ' ')) {
    ++p;
    if (!digits(2, hour) || !expect(':') || !digits(2, minute)) return nullptr;
    if (expect(':')) {
      if (!digits(2, second)) return nullptr;
      if (expect('.')) {
        int n = 0;
        while (p < end && *p >= '0' && *p <= '9') {
          if (n < 7) fraction = fraction * 10 + (*p - '0');
          ++n;
          ++p;
        }
        if (n == 0) return nullptr;
        for (int i = n; i < 7; i++) fraction *= 10;
      }
    }
  }
  int64_t offsetSeconds = 0;
  if (p < end) {
    if (*p == 'Z' || *p == 'z') {
      ++p;
    } else if (*p == '+' || *p == '-') {
      int sign = *p == '+' ? 1 : -1;
      ++p;
      int64_t offsetHours, offsetMinutes;
      if (!digits(2, offsetHours)) return nullptr;
      expect(':');
      if (!digits(2, offsetMinutes)) return nullptr;
      if (offsetHours > 14 || offsetMinutes > 59) return nullptr;
      offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60);
    }
  }
  if (p != end) return nullptr;
  static const int DAYS_IN_MONTH[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1]) {
    return nullptr;
  }
  if (month == 2 && day == 29 && !isLeapYear(year)) return nullptr;
  if (hour > 23 || minute > 59 || second > 59) return nullptr;
  int64_t unixSeconds =
      daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offsetSeconds;
  int64_t ticks = unixSeconds * TICKS_PER_SECOND + fraction + UNIX_EPOCH_TICKS;
  if (ticks < 0 || ticks > MAX_TICKS) return nullptr;
  return ticks;
}

}  // namespace credvault::base
