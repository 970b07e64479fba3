// credvault — the byte layout of records before sealing and after opening.
//
// Big-endian fixed-width integers and length-prefixed strings. Encoders write into Secret
// memory because the plaintext of a credential contains its secret. A Reader that runs
// past the end throws an integrity error: a record that opened (authenticated) but does
// not parse was written by something else.

#pragma once

#include "crypto/secret.h"
#include <kj/array.h>
#include <kj/string.h>
#include <kj/vector.h>

namespace credvault::core {

class Encoder {
 public:
  // First pass: measure; second pass: write into a Secret of the measured size.
  void u8(uint8_t v);
  void u32(uint32_t v);
  void u64(uint64_t v);
  void bytes(kj::ArrayPtr<const kj::byte> b);  // u32 length + bytes
  void text(kj::ArrayPtr<const char> t) { bytes(t.asBytes()); }

  size_t size() const { return pos_; }
  void target(kj::ArrayPtr<kj::byte> out) {
    out_ = out;
    pos_ = 0;
    writing_ = true;
  }

 private:
  kj::ArrayPtr<kj::byte> out_;
  size_t pos_ = 0;
  bool writing_ = false;
  void put(const void* p, size_t n);
};

// Encodes with `fill` twice (measure, then write) into a Secret.
template<typename Func>
crypto::Secret encodeSecret(Func&& fill) {
  Encoder measure;
  fill(measure);
  crypto::Secret out(measure.size());
  Encoder write;
  write.target(out.revealMut());
  fill(write);
  return out;
}

template<typename Func>
kj::Array<kj::byte> encodePlain(Func&& fill) {
  Encoder measure;
  fill(measure);
  auto out = kj::heapArray<kj::byte>(measure.size());
  Encoder write;
  write.target(out);
  fill(write);
  return out;
}

// A big-endian key of 4 bytes (store order = numeric order).
inline kj::FixedArray<kj::byte, 4> be32(uint32_t v) {
  kj::FixedArray<kj::byte, 4> out;
  out[0] = v >> 24;
  out[1] = v >> 16;
  out[2] = v >> 8;
  out[3] = v;
  return out;
}

class Decoder {
 public:
  explicit Decoder(kj::ArrayPtr<const kj::byte> in) : in_(in) {}
  uint8_t u8();
  uint32_t u32();
  uint64_t u64();
  kj::ArrayPtr<const kj::byte> bytes();
  kj::String text();
  bool done() const { return pos_ == in_.size(); }

 private:
  kj::ArrayPtr<const kj::byte> in_;
  size_t pos_ = 0;
  const kj::byte* take(size_t n);
};

}  // namespace credvault::core
