// credvaultctl's parts that need no daemon: output formats and dates.

#include "tools/dates.h"
#include "tools/output.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <stdio.h>
#include <string>

namespace credvault::ctl {
namespace {

std::string render(Format f, bool terminal, kj::ArrayPtr<const Row> rows, bool single = false) {
  char* buf = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&buf, &size);
  printRows(out, f, terminal, rows, single);
  fclose(out);
  std::string s(buf, size);
  free(buf);
  return s;
}

kj::Array<Row> sample() {
  auto rows = kj::heapArray<Row>(2);
  rows[0].str("Name", "NAME", "-a\tb\nc\\d").num("N", "N", 7).boolean("On", "ON", true);
  rows[1].str("Name", "NAME", "é").num("N", "N", -12).boolean("On", "ON", false);
  return rows;
}

TEST(Output, TsvEscapesSoEveryRowIsOneLine) {
  EXPECT_EQ(render(Format::TSV, false, sample()),
            "Name\tN\tOn\n"
            "-a\\tb\\nc\\\\d\t7\ttrue\n"
            "é\t-12\tfalse\n");
  EXPECT_EQ(std::string(escapeField(kj::StringPtr("\r\x01")).cStr()), "\\r\\x01");
}

TEST(Output, TextOnATerminalHasHeadersAndAlignedColumns) {
  EXPECT_EQ(render(Format::TEXT, true, sample()),
            "NAME         N    ON\n"
            "-a\\tb\\nc\\\\d  7    true\n"
            "é            -12  false\n");
  // Off a terminal: the rows as in TSV, no header.
  EXPECT_EQ(render(Format::TEXT, false, sample()),
            "-a\\tb\\nc\\\\d\t7\ttrue\n"
            "é\t-12\tfalse\n");
  EXPECT_EQ(render(Format::TEXT, true, nullptr), "");
}

TEST(Output, JsonKeepsTypesAndValues) {
  EXPECT_EQ(render(Format::JSON, false, sample()),
            R"([{"Name":"-a\tb\nc\\d","N":7,"On":true},{"Name":"é","N":-12,"On":false}])"
            "\n");
  EXPECT_EQ(render(Format::JSON, false, nullptr), "[]\n");
  Row one;
  one.maybeStr("S", "S", nullptr, "<withheld>").date("D", "D", 0).maybeDate("E", "E", 0, "never");
  EXPECT_EQ(render(Format::JSON, false, kj::arrayPtr(&one, 1), true),
            R"({"S":null,"D":"0001-01-01T00:00:00Z","E":null})"
            "\n");
  EXPECT_EQ(render(Format::TSV, false, kj::arrayPtr(&one, 1), true),
            "S\tD\tE\n<withheld>\t-\tnever\n");
}

// Values come from other users (a comment, a public value) and may be anything a string
// holds: JSON must still be one line a parser reads back to the same text.
TEST(Output, JsonEscapesQuotesControlCharactersAndLineSeparators) {
  // Every C0 control character, DEL, a quote and a backslash, in one value (NUL included).
  kj::Vector<char> controls;
  for (int c = 0; c < 0x20; c++) controls.add(char(c));
  controls.add(0x7f);
  controls.addAll(kj::StringPtr("\"\\/"));
  Row row;
  row.str("C", "C", controls.asPtr()).str("S", "S", "\xe2\x80\xa8|\xe2\x80\xa9");
  EXPECT_EQ(render(Format::JSON, false, kj::arrayPtr(&row, 1), true),
            R"({"C":"\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e)"
            R"(\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b)"
            R"(\u001c\u001d\u001e\u001f\u007f\"\\/","S":"\u2028|\u2029"})"
            "\n");
}

TEST(Output, JsonKeepsNonAsciiAndReplacesInvalidUtf8) {
  Row row;
  // Valid UTF-8 of 2, 3 and 4 bytes passes as it is.
  row.str("Ok", "OK", "é€𝄞ü");
  // Invalid: a lone continuation byte, 0xff, an overlong '/', an encoded surrogate, a
  // sequence cut short at the end. Each bad byte becomes U+FFFD; the good ones around stay.
  row.str("Bad", "BAD",
          kj::StringPtr("a\x80"
                        "b\xff"
                        "c\xc0\xaf"
                        "d\xed\xa0\x80"
                        "e\xe2\x82"));
  EXPECT_EQ(render(Format::JSON, false, kj::arrayPtr(&row, 1), true),
            "{\"Ok\":\"é€𝄞ü\",\"Bad\":\"a\\ufffdb\\ufffdc\\ufffd\\ufffdd\\ufffd\\ufffd\\ufffde"
            "\\ufffd\\ufffd\"}\n");
  // Keys are escaped the same way (they are literals today, but the writer does not trust them).
  Row keyed;
  keyed.num("K\"ey", "K", 1);
  EXPECT_EQ(render(Format::JSON, false, kj::arrayPtr(&keyed, 1), true), "{\"K\\\"ey\":1}\n");
}

TEST(Dates, InputFormsAndUtcOutput) {
  int64_t now = KJ_ASSERT_NONNULL(parseDate("2026-12-01T09:00:00.5Z", 0));
  EXPECT_EQ(formatDate(KJ_ASSERT_NONNULL(parseDate("2030-01-01", now))), "2030-01-01T00:00:00Z");
  EXPECT_EQ(formatDate(KJ_ASSERT_NONNULL(parseDate("2030-01-01T10:00:00Z", now))),
            "2030-01-01T10:00:00Z");
  EXPECT_EQ(formatDate(KJ_ASSERT_NONNULL(parseDate("2030-01-01T10:00:00+02:00", now))),
            "2030-01-01T08:00:00Z");
  // Relative: from the current whole second.
  EXPECT_EQ(formatDate(KJ_ASSERT_NONNULL(parseDate("+90d", now))), "2027-03-01T09:00:00Z");
  EXPECT_EQ(formatDate(KJ_ASSERT_NONNULL(parseDate("+2w", now))), "2026-12-15T09:00:00Z");
  EXPECT_EQ(formatDate(KJ_ASSERT_NONNULL(parseDate("+36h", now))), "2026-12-02T21:00:00Z");
  EXPECT_EQ(KJ_ASSERT_NONNULL(parseDate("none", now)), 0);
  EXPECT_EQ(formatDate(0), "-");
  for (auto bad : {"", "+", "+0d", "+5", "+5y", "-5d", "tomorrow", "2030-13-01", "2030-01-01T25:00",
                   "0001-01-01", "+99999999999d"}) {
    EXPECT_TRUE(parseDate(bad, now) == nullptr) << bad;
  }
  EXPECT_EQ(KJ_ASSERT_NONNULL(parseDuration("30d")), 30 * 86400);
  EXPECT_TRUE(parseDuration("30") == nullptr);
  EXPECT_EQ(formatUnix(0), "1970-01-01T00:00:00Z");
}

TEST(Dates, ValidityStates) {
  int64_t now = 1000;
  EXPECT_EQ(validityState(true, 0, 0, now), "active");
  EXPECT_EQ(validityState(true, 0, 1000, now), "expired");  // ValidTo is the last instant
  EXPECT_EQ(validityState(true, 0, 1001, now), "active");
  EXPECT_EQ(validityState(true, 1001, 0, now), "not-yet-valid");
  EXPECT_EQ(validityState(false, 0, 0, now), "inactive");
  EXPECT_EQ(validityState(false, 0, 5, now), "inactive,expired");
  EXPECT_EQ(validityState(false, 2000, 0, now), "inactive,not-yet-valid");
}

}  // namespace
}  // namespace credvault::ctl
