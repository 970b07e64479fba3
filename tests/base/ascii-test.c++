#include "base/ascii.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <locale.h>
#include <string>

namespace credvault::base {
namespace {

std::string str(kj::ArrayPtr<const char> s) {
  return std::string(s.begin(), s.size());
}

TEST(Ascii, ComparesIgnoringAsciiCaseOnly) {
  EXPECT_TRUE(equalsIgnoreCase("Content-Length"_kj, "content-LENGTH"));
  EXPECT_TRUE(equalsIgnoreCase(""_kj, ""));
  EXPECT_FALSE(equalsIgnoreCase("Host"_kj, "Hos"));
  EXPECT_FALSE(equalsIgnoreCase("Hos"_kj, "Host"));
  // '@' and '`' sit next to 'A' and 'a'; '[' next to 'Z': no folding across them.
  EXPECT_FALSE(equalsIgnoreCase("@"_kj, "`"));
  EXPECT_FALSE(equalsIgnoreCase("["_kj, "{"));
  // Bytes past ASCII compare as themselves: "É" and "é" differ.
  EXPECT_FALSE(equalsIgnoreCase("\xc3\x89"_kj, "\xc3\xa9"));
  EXPECT_TRUE(equalsIgnoreCase("\xc3\xa9"_kj, "\xc3\xa9"));
  // A view that is not NUL-terminated compares by its length.
  kj::StringPtr longer = "xmlns";
  EXPECT_TRUE(equalsIgnoreCase(longer.slice(0, 3), "XML"));
}

TEST(Ascii, IgnoresTheProcessLocale) {
  // In a Turkish locale strcasecmp may fold 'I' to a dotless i; HTTP never does.
  if (setlocale(LC_CTYPE, "tr_TR.UTF-8") == nullptr) setlocale(LC_CTYPE, "C.UTF-8");
  EXPECT_TRUE(equalsIgnoreCase("TITLE"_kj, "title"));
  EXPECT_EQ(asciiLower('I'), 'i');
  setlocale(LC_CTYPE, "C");
}

TEST(Ascii, StartsWithIgnoreCase) {
  EXPECT_TRUE(startsWithIgnoreCase("HTTPS://x"_kj, "https://"));
  EXPECT_TRUE(startsWithIgnoreCase("abc"_kj, ""));
  EXPECT_FALSE(startsWithIgnoreCase("http"_kj, "https"));
}

TEST(Ascii, TrimsTheRightSpaces) {
  EXPECT_EQ(str(trimSpace(" \t\r\n x y \n\r\t "_kj)), "x y");
  EXPECT_EQ(str(trimSpace("   "_kj)), "");
  EXPECT_EQ(str(trimSpace(""_kj)), "");
  EXPECT_EQ(str(trimSpace("\vx\f"_kj)), "\vx\f");   // only XML's four
  EXPECT_EQ(str(trimOws(" \tx\r\n"_kj)), "x\r\n");  // HTTP OWS: space and tab only
  EXPECT_EQ(str(trim("--x--"_kj, [](char c) { return c == '-'; })), "x");
}

TEST(Ascii, HexDigits) {
  EXPECT_EQ(hexDigitValue('0'), 0);
  EXPECT_EQ(hexDigitValue('9'), 9);
  EXPECT_EQ(hexDigitValue('a'), 10);
  EXPECT_EQ(hexDigitValue('F'), 15);
  for (char c : {'g', 'G', '/', ':', '@', '`', ' ', '\0', '\xff'}) EXPECT_EQ(hexDigitValue(c), -1);
  EXPECT_TRUE(isAsciiDigit('7'));
  EXPECT_FALSE(isAsciiDigit('a'));
}

}  // namespace
}  // namespace credvault::base
