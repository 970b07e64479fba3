// credvault — secret buffers.
//
// Security invariant: the bytes of a Secret live only in sodium_malloc memory (mlock'd,
// excluded from core dumps, fenced by guard pages, wiped on free; small secrets share
// pooled regions, see secret.c++). They are read only through reveal(), so every read is greppable,
// they never reach a stream or a log (KJ_STRINGIFY prints "<redacted>"), and comparison is
// constant-time.

#pragma once

#include <kj/array.h>
#include <kj/string.h>
#include <kj/common.h>
#include <stdint.h>

namespace credvault::crypto {

// Initialises libsodium. Safe to call more than once and from several threads.
void init();

class Secret {
 public:
  Secret() = default;
  // A zero-filled secret of `size` bytes.
  explicit Secret(size_t size);
  ~Secret() noexcept(false);
  KJ_DISALLOW_COPY(Secret);
  Secret(Secret&& other) noexcept;
  Secret& operator=(Secret&& other) noexcept;

  static Secret copyOf(kj::ArrayPtr<const kj::byte> bytes);
  static Secret copyOf(kj::StringPtr text);
  // `size` random bytes from libsodium's CSPRNG.
  static Secret random(size_t size);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  kj::ArrayPtr<const kj::byte> reveal() const { return {ptr_, size_}; }
  kj::ArrayPtr<kj::byte> revealMut() { return {ptr_, size_}; }
  // The bytes as text (not NUL-terminated). Only for secrets known to be UTF-8.
  kj::ArrayPtr<const char> revealChars() const {
    return {reinterpret_cast<const char*>(ptr_), size_};
  }

  // Constant-time comparison of length and contents.
  bool equals(const Secret& other) const;
  bool equals(kj::ArrayPtr<const kj::byte> other) const;

 private:
  kj::byte* ptr_ = nullptr;
  size_t size_ = 0;
  int class_ = -1;  // size class of the secure pool, or -1 for its own sodium_malloc
  void release();
};

inline kj::StringPtr KJ_STRINGIFY(const Secret&) {
  return "<redacted>"_kj;
}

// Wipes a buffer that held secret material (for short stack buffers, via KJ_DEFER).
void wipe(kj::ArrayPtr<kj::byte> bytes);
void wipe(kj::ArrayPtr<char> chars);

// Constant-time equality of two byte strings of the same length (false if lengths differ).
bool constantTimeEquals(kj::ArrayPtr<const kj::byte> a, kj::ArrayPtr<const kj::byte> b);

}  // namespace credvault::crypto
