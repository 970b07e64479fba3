// credvault — ASCII case folding and white-space trimming, the only kinds the protocols need.
//
// HTTP header names, media types, SOAP action names and REST member names compare
// case-insensitively in ASCII only: 'A'-'Z' fold to 'a'-'z' and every other byte (UTF-8
// included) compares as itself, whatever the process locale (unlike strcasecmp). Trimming
// returns a view into the argument (not NUL-terminated: use it as an ArrayPtr, or copy it).
// Pure functions; no allocation; never throws.

#pragma once

#include <kj/string.h>

namespace credvault::base {

constexpr char asciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr bool isAsciiDigit(char c) {
  return c >= '0' && c <= '9';
}

// The value of a hexadecimal digit (either case), or -1 for any other byte.
constexpr int hexDigitValue(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

// True when `a` and `b` have the same length and equal bytes after asciiLower().
inline bool equalsIgnoreCase(kj::ArrayPtr<const char> a, kj::StringPtr b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    if (asciiLower(a[i]) != asciiLower(b[i])) return false;
  }
  return true;
}

// True when `s` begins with `prefix`, ignoring ASCII case.
inline bool startsWithIgnoreCase(kj::ArrayPtr<const char> s, kj::StringPtr prefix) {
  return s.size() >= prefix.size() && equalsIgnoreCase(s.slice(0, prefix.size()), prefix);
}

// XML's and the configuration files' white space: space, tab, CR and LF.
constexpr bool isAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// HTTP's optional white space (RFC 9110 OWS): space and tab only.
constexpr bool isOws(char c) {
  return c == ' ' || c == '\t';
}

// `s` without leading and trailing bytes for which `isSpace` is true.
template<typename IsSpace>
inline kj::ArrayPtr<const char> trim(kj::ArrayPtr<const char> s, IsSpace&& isSpace) {
  size_t b = 0, e = s.size();
  while (b < e && isSpace(s[b])) ++b;
  while (e > b && isSpace(s[e - 1])) --e;
  return s.slice(b, e);
}

// `s` without leading and trailing space, tab, CR and LF.
inline kj::ArrayPtr<const char> trimSpace(kj::ArrayPtr<const char> s) {
  return trim(s, isAsciiSpace);
}

// `s` without leading and trailing space and tab (HTTP list elements, header values).
inline kj::ArrayPtr<const char> trimOws(kj::ArrayPtr<const char> s) {
  return trim(s, isOws);
}

}  // namespace credvault::base
