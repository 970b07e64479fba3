#include "base/ticks.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <stdio.h>
#include <time.h>
#include <string>

namespace credvault::base {
namespace {

std::string fmt(int64_t ticks, Fraction style = Fraction::SEVEN_DIGITS) {
  return formatTicks(ticks, style).cStr();
}

int64_t parsed(kj::StringPtr text) {
  return KJ_ASSERT_NONNULL(parseTicks(text), text);
}

TEST(Ticks, TheEndsOfTheRange) {
  EXPECT_EQ(fmt(0), "0001-01-01T00:00:00");
  EXPECT_EQ(fmt(1), "0001-01-01T00:00:00.0000001");
  EXPECT_EQ(fmt(MAX_TICKS), "9999-12-31T23:59:59.9999999");
  EXPECT_EQ(fmt(MAX_TICKS, Fraction::TRIMMED), "9999-12-31T23:59:59.9999999");
  // Outside the range: clamped, never garbage.
  EXPECT_EQ(fmt(-1), "0001-01-01T00:00:00");
  EXPECT_EQ(fmt(INT64_MIN), "0001-01-01T00:00:00");
  EXPECT_EQ(fmt(INT64_MAX), "9999-12-31T23:59:59.9999999");
  EXPECT_EQ(parsed("0001-01-01T00:00:00"), 0);
  EXPECT_EQ(parsed("9999-12-31T23:59:59.9999999"), MAX_TICKS);
  EXPECT_TRUE(parseTicks("9999-12-31T23:59:59.9999999-00:01") == nullptr);  // past MaxValue
  EXPECT_TRUE(parseTicks("0001-01-01T00:00:00+00:01") == nullptr);          // before MinValue
  EXPECT_EQ(fmt(UNIX_EPOCH_TICKS), "1970-01-01T00:00:00");
  EXPECT_EQ(daysFromCivil(1970, 1, 1), 0);
}

TEST(Ticks, LeapDays) {
  EXPECT_EQ(fmt(parsed("2024-02-29")), "2024-02-29T00:00:00");
  EXPECT_EQ(fmt(parsed("2000-02-29T12:00:00")), "2000-02-29T12:00:00");
  EXPECT_TRUE(parseTicks("1900-02-29") == nullptr);  // divisible by 100, not by 400
  EXPECT_TRUE(parseTicks("2023-02-29") == nullptr);
  EXPECT_TRUE(parseTicks("2024-02-30") == nullptr);
  EXPECT_TRUE(parseTicks("2024-04-31") == nullptr);
  EXPECT_EQ(parsed("2024-03-01") - parsed("2024-02-28"), 2 * TICKS_PER_DAY);
  EXPECT_EQ(parsed("2023-03-01") - parsed("2023-02-28"), 1 * TICKS_PER_DAY);
  EXPECT_EQ(fmt(parsed("0004-02-29")), "0004-02-29T00:00:00");
}

TEST(Ticks, BeforeNineteenSeventy) {
  EXPECT_EQ(fmt(UNIX_EPOCH_TICKS - 1), "1969-12-31T23:59:59.9999999");
  EXPECT_EQ(fmt(parsed("1969-07-20T20:17:40Z")), "1969-07-20T20:17:40");
  EXPECT_LT(daysFromCivil(1969, 12, 31), 0);
}

TEST(Ticks, FractionStyles) {
  int64_t t = parsed("2019-07-14T01:24:48.5");
  EXPECT_EQ(fmt(t), "2019-07-14T01:24:48.5000000");
  EXPECT_EQ(fmt(t, Fraction::TRIMMED), "2019-07-14T01:24:48.5");
  EXPECT_EQ(fmt(t + 1, Fraction::TRIMMED), "2019-07-14T01:24:48.5000001");
  EXPECT_EQ(fmt(parsed("2019-07-14T01:24:48"), Fraction::TRIMMED), "2019-07-14T01:24:48");
  // Digits past the seventh are dropped, not rounded.
  EXPECT_EQ(fmt(parsed("2019-07-14T01:24:48.123456789")), "2019-07-14T01:24:48.1234567");
}

TEST(Ticks, ParsesOffsetsAndRefusesMalformedText) {
  EXPECT_EQ(parsed("2030-01-01T10:00:00+02:00"), parsed("2030-01-01T08:00:00Z"));
  EXPECT_EQ(parsed("2030-01-01T10:00:00-0130"), parsed("2030-01-01T11:30:00"));
  EXPECT_EQ(parsed("2030-01-01 10:00"), parsed("2030-01-01T10:00:00z"));
  for (kj::StringPtr bad :
       {""_kj, "2030"_kj, "2030-1-01"_kj, "2030-01-01T"_kj, "2030-01-01T10"_kj,
        "2030-01-01T10:00:"_kj, "2030-01-01T10:00:00."_kj, "2030-01-01T24:00:00"_kj,
        "2030-01-01T10:60:00"_kj, "2030-01-01T10:00:60"_kj, "2030-13-01"_kj, "2030-00-01"_kj,
        "0000-01-01"_kj, "2030-01-01T10:00:00+15:00"_kj, "2030-01-01T10:00:00+01:60"_kj,
        "2030-01-01Z "_kj, " 2030-01-01"_kj, "+2030-01-01"_kj, "2030-01-01T10:00:00ZZ"_kj}) {
    EXPECT_TRUE(parseTicks(bad) == nullptr) << bad.cStr();
  }
}

// The calendar arithmetic against the C library's, over the whole range time_t covers here
// (one sample a prime number of seconds apart, so every field varies).
TEST(Ticks, AgreesWithGmtimeAcrossTheRange) {
  int64_t first = -UNIX_EPOCH_TICKS / TICKS_PER_SECOND;
  int64_t last = (MAX_TICKS - UNIX_EPOCH_TICKS) / TICKS_PER_SECOND;
  for (int64_t s = first; s <= last; s += 999'983 * 7) {
    time_t t = static_cast<time_t>(s);
    struct tm tm;
    ASSERT_NE(gmtime_r(&t, &tm), nullptr);
    char expected[64];
    snprintf(expected, sizeof(expected), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    int64_t ticks = s * TICKS_PER_SECOND + UNIX_EPOCH_TICKS;
    ASSERT_EQ(fmt(ticks), expected) << s;
    ASSERT_EQ(parsed(expected), ticks);
  }
}

}  // namespace
}  // namespace credvault::base
