#include "base/parse-int.h"

#include <gtest/gtest.h>
#include <kj/debug.h>

namespace credvault::base {
namespace {

IntError errorOf(kj::OneOf<uint64_t, IntError> r) {
  EXPECT_TRUE(r.is<IntError>());
  return r.is<IntError>() ? r.get<IntError>() : IntError::NOT_A_NUMBER;
}
IntError errorOf(kj::OneOf<int64_t, IntError> r) {
  EXPECT_TRUE(r.is<IntError>());
  return r.is<IntError>() ? r.get<IntError>() : IntError::NOT_A_NUMBER;
}

TEST(ParseInt, UnsignedAtItsEdges) {
  EXPECT_EQ(parseUnsigned("0"_kj).get<uint64_t>(), 0u);
  EXPECT_EQ(parseUnsigned("007"_kj).get<uint64_t>(), 7u);
  EXPECT_EQ(parseUnsigned("18446744073709551615"_kj).get<uint64_t>(), UINT64_MAX);
  EXPECT_EQ(errorOf(parseUnsigned("18446744073709551616"_kj)), IntError::OUT_OF_RANGE);
  EXPECT_EQ(errorOf(parseUnsigned("99999999999999999999999"_kj)), IntError::OUT_OF_RANGE);
  EXPECT_EQ(parseUnsigned("65535"_kj, 65535).get<uint64_t>(), 65535u);
  EXPECT_EQ(errorOf(parseUnsigned("65536"_kj, 65535)), IntError::OUT_OF_RANGE);
}

TEST(ParseInt, RefusesWhatStrtolWouldForgive) {
  for (kj::StringPtr bad : {""_kj, " 1"_kj, "1 "_kj, "+1"_kj, "-1"_kj, "1a"_kj, "0x10"_kj, "1.0"_kj,
                            "1e3"_kj, "\t1"_kj, "١"_kj /* Arabic-Indic one */}) {
    EXPECT_EQ(errorOf(parseUnsigned(bad)), IntError::NOT_A_NUMBER) << bad.cStr();
  }
  // Syntax first: a huge number with a stray byte is not a number, not out of range.
  EXPECT_EQ(errorOf(parseUnsigned("99999999999999999999999x"_kj)), IntError::NOT_A_NUMBER);
  // A view that is not NUL-terminated ends where it ends.
  kj::StringPtr text = "1234";
  EXPECT_EQ(parseUnsigned(text.slice(0, 2)).get<uint64_t>(), 12u);
}

TEST(ParseInt, Octal) {
  EXPECT_EQ(parseUnsigned("0750"_kj, UINT64_MAX, 8).get<uint64_t>(), 0750u);
  EXPECT_EQ(errorOf(parseUnsigned("8"_kj, UINT64_MAX, 8)), IntError::NOT_A_NUMBER);
}

TEST(ParseInt, SignedAtInt32AndInt64Edges) {
  EXPECT_EQ(parseSigned("-2147483648"_kj, INT32_MIN, INT32_MAX).get<int64_t>(), INT32_MIN);
  EXPECT_EQ(parseSigned("2147483647"_kj, INT32_MIN, INT32_MAX).get<int64_t>(), INT32_MAX);
  EXPECT_EQ(errorOf(parseSigned("-2147483649"_kj, INT32_MIN, INT32_MAX)), IntError::OUT_OF_RANGE);
  EXPECT_EQ(errorOf(parseSigned("2147483648"_kj, INT32_MIN, INT32_MAX)), IntError::OUT_OF_RANGE);
  EXPECT_EQ(parseSigned("-9223372036854775808"_kj, INT64_MIN, INT64_MAX).get<int64_t>(), INT64_MIN);
  EXPECT_EQ(parseSigned("9223372036854775807"_kj, INT64_MIN, INT64_MAX).get<int64_t>(), INT64_MAX);
  EXPECT_EQ(errorOf(parseSigned("9223372036854775808"_kj, INT64_MIN, INT64_MAX)),
            IntError::OUT_OF_RANGE);
  EXPECT_EQ(errorOf(parseSigned("-9223372036854775809"_kj, INT64_MIN, INT64_MAX)),
            IntError::OUT_OF_RANGE);
  EXPECT_EQ(parseSigned("-0"_kj, 0, 10).get<int64_t>(), 0);
  EXPECT_EQ(errorOf(parseSigned("-1"_kj, 0, 10)), IntError::OUT_OF_RANGE);
  EXPECT_EQ(errorOf(parseSigned("11"_kj, 0, 10)), IntError::OUT_OF_RANGE);
}

TEST(ParseInt, SignsAndSpaces) {
  EXPECT_EQ(errorOf(parseSigned("+5"_kj, -10, 10)), IntError::NOT_A_NUMBER);
  EXPECT_EQ(parseSigned("+5"_kj, -10, 10, true).get<int64_t>(), 5);
  for (kj::StringPtr bad :
       {""_kj, "-"_kj, "+"_kj, "--5"_kj, "+-5"_kj, "-+5"_kj, " 5"_kj, "5 "_kj, "- 5"_kj}) {
    EXPECT_EQ(errorOf(parseSigned(bad, -10, 10, true)), IntError::NOT_A_NUMBER) << bad.cStr();
  }
  EXPECT_TRUE(signedOrNull("x"_kj, -1, 1) == nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(signedOrNull("-1"_kj, -1, 1)), -1);
  EXPECT_EQ(KJ_ASSERT_NONNULL(unsignedOrNull("42"_kj)), 42u);
  EXPECT_TRUE(unsignedOrNull("43"_kj, 42) == nullptr);
}

}  // namespace
}  // namespace credvault::base
