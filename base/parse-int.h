// credvault — strict integer parsing: the whole text is the number, or it is refused.
//
// Unlike strtol and friends: no leading white space, no '+' (parseSigned() takes one only
// when asked), no base prefix, no trailing bytes, no silent wrap or clamp, no errno, no
// locale, and the empty text is not zero. Leading zeros are digits like any other (callers
// that bound the length of what they accept check the length themselves).
//
// The two ways to fail are told apart, syntax first: a text with any byte that is not a digit
// (after the one optional sign) is NOT_A_NUMBER however long it is; a text of digits whose
// value lies outside [min, max] is OUT_OF_RANGE. Overflow of the 64-bit accumulator is
// OUT_OF_RANGE too, never a wrapped value. Pure functions; no allocation; never throws.

#pragma once

#include <kj/common.h>
#include <kj/one-of.h>
#include <stdint.h>

namespace credvault::base {

enum class IntError { NOT_A_NUMBER, OUT_OF_RANGE };

// A whole number in `radix` (10, or 8 for modes) from 0 to `max`.
inline kj::OneOf<uint64_t, IntError> parseUnsigned(kj::ArrayPtr<const char> text,
                                                   uint64_t max = UINT64_MAX, unsigned radix = 10) {
  if (text.size() == 0) return IntError::NOT_A_NUMBER;
  bool tooBig = false;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c >= static_cast<char>('0' + radix)) return IntError::NOT_A_NUMBER;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (tooBig || value > (UINT64_MAX - digit) / radix) {
      tooBig = true;  // keep reading: a later non-digit still makes it NOT_A_NUMBER
      continue;
    }
    value = value * radix + digit;
  }
  if (tooBig || value > max) return IntError::OUT_OF_RANGE;
  return value;
}

// A decimal integer with an optional leading '-' (and '+' when `allowPlus`), from `min` to
// `max`. A sign with no digits after it is NOT_A_NUMBER.
inline kj::OneOf<int64_t, IntError> parseSigned(kj::ArrayPtr<const char> text, int64_t min,
                                                int64_t max, bool allowPlus = false) {
  bool negative = false;
  if (text.size() > 0 && (text[0] == '-' || (allowPlus && text[0] == '+'))) {
    negative = text[0] == '-';
    text = text.slice(1, text.size());
  }
  // The magnitude of INT64_MIN is INT64_MAX + 1: still a uint64_t.
  uint64_t limit = negative ? (min >= 0 ? 0 : static_cast<uint64_t>(-(min + 1)) + 1)
                            : (max < 0 ? 0 : static_cast<uint64_t>(max));
  auto magnitude = parseUnsigned(text, UINT64_MAX);
  if (magnitude.is<IntError>()) return magnitude.get<IntError>();
  uint64_t m = magnitude.get<uint64_t>();
  if (m > limit) return IntError::OUT_OF_RANGE;
  int64_t value =
      negative ? (m == 0 ? 0 : -static_cast<int64_t>(m - 1) - 1) : static_cast<int64_t>(m);
  if (value < min || value > max) return IntError::OUT_OF_RANGE;
  return value;
}

// The same, for callers that need only "a number in range or not".
inline kj::Maybe<uint64_t> unsignedOrNull(kj::ArrayPtr<const char> text, uint64_t max = UINT64_MAX,
                                          unsigned radix = 10) {
  auto r = parseUnsigned(text, max, radix);
  if (r.is<uint64_t>()) return r.get<uint64_t>();
  return nullptr;
}

inline kj::Maybe<int64_t> signedOrNull(kj::ArrayPtr<const char> text, int64_t min, int64_t max,
                                       bool allowPlus = false) {
  auto r = parseSigned(text, min, max, allowPlus);
  if (r.is<int64_t>()) return r.get<int64_t>();
  return nullptr;
}

}  // namespace credvault::base
