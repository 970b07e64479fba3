// credvault — UTF-8, decoded and encoded the strict way (RFC 3629).
//
// Well-formed means what Unicode calls well-formed: the shortest encoding of a Unicode scalar
// value. So decode() refuses overlong forms (C0 80), encoded surrogates (ED A0 80), values
// past U+10FFFF (F4 90 80 80) and every lead byte that can only start one of those (C0, C1,
// F5-FF), a stray continuation byte, and a sequence cut short by the end of the text or by a
// byte that is not a continuation. It never reads past `end`.
//
// What a caller allows beyond that (U+0000, control characters, XML's characters) is the
// caller's rule, not this file's. Pure functions; no allocation; never throws.

#pragma once

#include <kj/common.h>
#include <stddef.h>
#include <stdint.h>

namespace credvault::base::utf8 {

constexpr uint32_t MAX_CODE_POINT = 0x10ffff;
constexpr size_t MAX_SEQUENCE = 4;

// A Unicode scalar value: a code point that is not a surrogate.
constexpr bool isScalarValue(uint32_t codePoint) {
  return codePoint <= MAX_CODE_POINT && !(codePoint >= 0xd800 && codePoint <= 0xdfff);
}

// The length (1 to 4) of the well-formed sequence at `p` (p < end), storing its scalar value
// in `codePoint`; 0 when the bytes at `p` are not well-formed (codePoint is then unspecified).
inline size_t decode(const unsigned char* p, const unsigned char* end, uint32_t& codePoint) {
  unsigned char lead = p[0];
  if (lead < 0x80) {
    codePoint = lead;
    return 1;
  }
  size_t length;
  uint32_t min;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, min = 0x80, codePoint = lead & 0x1f;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, min = 0x800, codePoint = lead & 0x0f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, min = 0x10000, codePoint = lead & 0x07;
  } else {
    return 0;  // a continuation byte, C0/C1 (always overlong) or F5-FF (always > U+10FFFF)
  }
  if (static_cast<size_t>(end - p) < length) return 0;
  for (size_t i = 1; i < length; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    codePoint = (codePoint << 6) | (p[i] & 0x3f);
  }
  if (codePoint < min || !isScalarValue(codePoint)) return 0;
  return length;
}

inline size_t decode(const char* p, const char* end, uint32_t& codePoint) {
  return decode(reinterpret_cast<const unsigned char*>(p),
                reinterpret_cast<const unsigned char*>(end), codePoint);
}

// decode() at offset `at` of `text` (at < text.size()).
inline size_t decodeAt(kj::ArrayPtr<const char> text, size_t at, uint32_t& codePoint) {
  return decode(text.begin() + at, text.end(), codePoint);
}

// Writes the UTF-8 form of `codePoint` to `out` (room for MAX_SEQUENCE bytes) and returns its
// length. `codePoint` must be a scalar value (isScalarValue): callers that take code points
// from outside (a \u escape, a character reference) check that first.
inline size_t encode(uint32_t codePoint, char* out) {
  if (codePoint < 0x80) {
    out[0] = static_cast<char>(codePoint);
    return 1;
  }
  if (codePoint < 0x800) {
    out[0] = static_cast<char>(0xc0 | (codePoint >> 6));
    out[1] = static_cast<char>(0x80 | (codePoint & 0x3f));
    return 2;
  }
  if (codePoint < 0x10000) {
    out[0] = static_cast<char>(0xe0 | (codePoint >> 12));
    out[1] = static_cast<char>(0x80 | ((codePoint >> 6) & 0x3f));
    out[2] = static_cast<char>(0x80 | (codePoint & 0x3f));
    return 3;
  }
  out[0] = static_cast<char>(0xf0 | (codePoint >> 18));
  out[1] = static_cast<char>(0x80 | ((codePoint >> 12) & 0x3f));
  out[2] = static_cast<char>(0x80 | ((codePoint >> 6) & 0x3f));
  out[3] = static_cast<char>(0x80 | (codePoint & 0x3f));
  return 4;
}

// The number of scalar values in `text`, or null when it is not well-formed UTF-8 throughout.
inline kj::Maybe<size_t> countCodePoints(kj::ArrayPtr<const char> text) {
  size_t count = 0;
  const char* p = text.begin();
  while (p < text.end()) {
    uint32_t codePoint;
    size_t length = decode(p, text.end(), codePoint);
    if (length == 0) return nullptr;
    p += length;
    ++count;
  }
  return count;
}

// True when all of `text` is well-formed UTF-8 (the empty text is).
inline bool isValid(kj::ArrayPtr<const char> text) {
  return countCodePoints(text) != nullptr;
}

// The largest n <= limit such that text[0, n) does not end inside a sequence: where to cut
// `text` to at most `limit` bytes without splitting a character (a cut that is itself in
// ill-formed bytes stops at the last lead byte before `limit`).
inline size_t boundaryAtOrBefore(kj::ArrayPtr<const char> text, size_t limit) {
  if (limit >= text.size()) return text.size();
  size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80) --n;
  return n;
}

}  // namespace credvault::base::utf8
