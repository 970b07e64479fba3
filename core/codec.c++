#include "codec.h"
#include "error.h"
#include "store/env.h"

#include <string.h>

namespace credvault::core {

void Encoder::put(const void* p, size_t n) {
  if (writing_) {
    KJ_ASSERT(pos_ + n <= out_.size());
    if (n > 0) memcpy(out_.begin() + pos_, p, n);
  }
  pos_ += n;
}

void Encoder::u8(uint8_t v) {
  put(&v, 1);
}

void Encoder::u32(uint32_t v) {
  kj::byte b[4];
  store::putBe32(b, v);
  put(b, 4);
}

void Encoder::u64(uint64_t v) {
  kj::byte b[8];
  store::putBe64(b, v);
  put(b, 8);
}

void Encoder::bytes(kj::ArrayPtr<const kj::byte> b) {
  u32(b.size());
  put(b.begin(), b.size());
}

const kj::byte* Decoder::take(size_t n) {
  if (in_.size() - pos_ < n) { damaged(kj::str("a stored record is damaged (truncated)")); }
  auto p = in_.begin() + pos_;
  pos_ += n;
  return p;
}

uint8_t Decoder::u8() {
  return *take(1);
}
uint32_t Decoder::u32() {
  return store::getBe32(take(4));
}
uint64_t Decoder::u64() {
  return store::getBe64(take(8));
}

kj::ArrayPtr<const kj::byte> Decoder::bytes() {
  uint32_t n = u32();
  return {take(n), n};
}

kj::String Decoder::text() {
  auto b = bytes();
  return kj::heapString(reinterpret_cast<const char*>(b.begin()), b.size());
}

}  // namespace credvault::core
