#include "base/utf8.h"

#include <gtest/gtest.h>
#include <kj/array.h>
#include <kj/debug.h>
#include <string>

namespace credvault::base::utf8 {
namespace {

// decode() of all of `bytes`: its length and code point, or 0.
size_t decodeAll(const std::string& bytes, uint32_t& codePoint) {
  return decode(bytes.data(), bytes.data() + bytes.size(), codePoint);
}

kj::ArrayPtr<const char> view(const std::string& s) {
  return kj::arrayPtr(s.data(), s.size());
}

TEST(Utf8, DecodesEachLengthAtItsBounds) {
  struct Case {
    std::string bytes;
    uint32_t codePoint;
  } cases[] = {
      {std::string("\0", 1), 0},
      {"\x7f", 0x7f},
      {"\xc2\x80", 0x80},
      {"\xdf\xbf", 0x7ff},
      {"\xe0\xa0\x80", 0x800},
      {"\xed\x9f\xbf", 0xd7ff},
      {"\xee\x80\x80", 0xe000},
      {"\xef\xbf\xbf", 0xffff},
      {"\xf0\x90\x80\x80", 0x10000},
      {"\xf4\x8f\xbf\xbf", 0x10ffff},
  };
  for (auto& c : cases) {
    uint32_t cp = 0xdeadbeef;
    EXPECT_EQ(decodeAll(c.bytes, cp), c.bytes.size()) << std::hex << c.codePoint;
    EXPECT_EQ(cp, c.codePoint);
    char out[MAX_SEQUENCE];
    ASSERT_EQ(encode(c.codePoint, out), c.bytes.size());
    EXPECT_EQ(std::string(out, c.bytes.size()), c.bytes);
  }
}

TEST(Utf8, RefusesOverlongForms) {
  uint32_t cp;
  for (const char* bad : {"\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf",
                          "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf"}) {
    EXPECT_EQ(decodeAll(bad, cp), 0u) << bad;
  }
}

TEST(Utf8, RefusesSurrogatesAndPastU10FFFF) {
  uint32_t cp;
  EXPECT_EQ(decodeAll("\xed\xa0\x80", cp), 0u);              // U+D800
  EXPECT_EQ(decodeAll("\xed\xbf\xbf", cp), 0u);              // U+DFFF
  EXPECT_EQ(decodeAll("\xed\xa0\xbd\xed\xb8\x80", cp), 0u);  // CESU-8 pair
  EXPECT_EQ(decodeAll("\xf4\x90\x80\x80", cp), 0u);          // U+10FFFF + 1
  EXPECT_EQ(decodeAll("\xf5\x80\x80\x80", cp), 0u);          // lead byte past F4
  EXPECT_EQ(decodeAll("\xff", cp), 0u);
  EXPECT_FALSE(isScalarValue(0xd800));
  EXPECT_FALSE(isScalarValue(0x110000));
  EXPECT_TRUE(isScalarValue(0x10ffff));
}

TEST(Utf8, RefusesTruncatedAndBrokenSequencesWithoutReadingPastTheEnd) {
  uint32_t cp;
  // Each prefix of a 4-byte sequence, in a buffer exactly that long (ASan sees an overread).
  std::string four = "\xf0\x9f\x98\x80";
  for (size_t n = 1; n < 4; n++) {
    auto heap = kj::heapArray<char>(four.data(), n);
    EXPECT_EQ(decode(heap.begin(), heap.end(), cp), 0u) << n;
  }
  EXPECT_EQ(decodeAll("\x80", cp), 0u);          // a lone continuation byte
  EXPECT_EQ(decodeAll("\xe2\x28\xa1", cp), 0u);  // a non-continuation in the middle
  EXPECT_EQ(decodeAll("\xc3(", cp), 0u);
}

TEST(Utf8, CountsScalarValuesOrRefusesTheWholeText) {
  EXPECT_EQ(KJ_ASSERT_NONNULL(countCodePoints(view(""))), 0u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(countCodePoints(view("a\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e"))), 4u);
  EXPECT_TRUE(countCodePoints(view("ok\xc3")) == nullptr);
  EXPECT_TRUE(isValid(view("plain")));
  EXPECT_TRUE(isValid(view(std::string("a\0b", 3))));  // U+0000 is UTF-8; callers decide
  EXPECT_FALSE(isValid(view("\xed\xa0\x80")));
}

TEST(Utf8, CutsOnlyAtCharacterBoundaries) {
  std::string s =
      "ab\xe2\x82\xac"
      "c";  // a b € c
  EXPECT_EQ(boundaryAtOrBefore(view(s), 0), 0u);
  EXPECT_EQ(boundaryAtOrBefore(view(s), 2), 2u);
  EXPECT_EQ(boundaryAtOrBefore(view(s), 3), 2u);  // inside the euro sign
  EXPECT_EQ(boundaryAtOrBefore(view(s), 4), 2u);
  EXPECT_EQ(boundaryAtOrBefore(view(s), 5), 5u);
  EXPECT_EQ(boundaryAtOrBefore(view(s), 100), s.size());
}

TEST(Utf8, EncodeThenDecodeRoundTripsEveryScalarValue) {
  for (uint32_t cp = 0; cp <= MAX_CODE_POINT; cp++) {
    if (!isScalarValue(cp)) continue;
    char out[MAX_SEQUENCE];
    size_t n = encode(cp, out);
    uint32_t back;
    ASSERT_EQ(decode(out, out + n, back), n) << cp;
    ASSERT_EQ(back, cp);
  }
}

}  // namespace
}  // namespace credvault::base::utf8
