// Helpers shared by the libFuzzer targets in tests/fuzz (docs/fuzzing.md).
//
// A target checks invariants with KJ_ASSERT; runOne() turns any exception that escapes the
// code under test or a check into an abort with the exception's text, so libFuzzer reports
// the input as a crash and saves it. None of the parsers fuzzed here throws for bad input by
// design: an escaping exception is a finding.

#pragma once

#include <kj/array.h>
#include <kj/exception.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

namespace credvault::fuzz {

template<typename Func>
void runOne(Func&& func) {
  KJ_IF_MAYBE(e, kj::runCatchingExceptions(kj::fwd<Func>(func))) {
    fprintf(stderr, "fuzz target: exception escaped: %s\n", kj::str(*e).cStr());
    abort();
  }
}

// Cuts an input into newline-terminated fields (the framing of the multi-part targets: a
// content type, a query, then the body) without copying.
class Fields {
 public:
  Fields(const uint8_t* data, size_t size) : rest_(reinterpret_cast<const char*>(data), size) {}

  // The bytes up to the next '\n' (excluded), or everything left when there is none.
  kj::ArrayPtr<const char> line() {
    for (size_t i = 0; i < rest_.size(); i++) {
      if (rest_[i] == '\n') {
        auto out = rest_.slice(0, i);
        rest_ = rest_.slice(i + 1, rest_.size());
        return out;
      }
    }
    auto out = rest_;
    rest_ = nullptr;
    return out;
  }
  kj::ArrayPtr<const char> rest() const { return rest_; }

 private:
  kj::ArrayPtr<const char> rest_;
};

// Where to split `input` into pieces, as a network read would: each piece is 1 to 16 bytes
// long, its length taken from the byte it starts with, so the split depends on the input
// only and a saved crash reproduces.
inline kj::Array<size_t> splitPoints(kj::ArrayPtr<const char> input) {
  kj::Vector<size_t> points;
  size_t pos = 0;
  while (pos < input.size()) {
    pos += 1 + (static_cast<unsigned char>(input[pos]) & 0x0f);
    if (pos > input.size()) pos = input.size();
    points.add(pos);
  }
  return points.releaseAsArray();
}

// True when `s` lies entirely inside `buffer`, NUL terminator included.
inline bool pointsInto(kj::StringPtr s, kj::ArrayPtr<const char> buffer) {
  return s.begin() >= buffer.begin() && s.end() < buffer.end() && *s.end() == '\0';
}

}  // namespace credvault::fuzz
