#include "secret.h"

#include <sodium.h>
#include <kj/debug.h>
#include <string.h>
#include <errno.h>

namespace credvault::crypto {

void init() {
  // sodium_init() is idempotent and thread-safe; 1 means "already initialised".
  KJ_ASSERT(sodium_init() >= 0, "libsodium failed to initialise");
}

Secret::Secret(size_t size) : size_(size) {
  if (size == 0) return;
  init();
  ptr_ = static_cast<kj::byte*>(sodium_malloc(size));
  if (ptr_ == nullptr) {
    size_ = 0;
    KJ_FAIL_SYSCALL("sodium_malloc", ENOMEM, size);
  }
  sodium_memzero(ptr_, size);
}

Secret::~Secret() noexcept(false) {
  if (ptr_ != nullptr) sodium_free(ptr_);  // sodium_free wipes before unmapping
}

Secret::Secret(Secret&& other) noexcept : ptr_(other.ptr_), size_(other.size_) {
  other.ptr_ = nullptr;
  other.size_ = 0;
}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    if (ptr_ != nullptr) sodium_free(ptr_);
    ptr_ = other.ptr_;
    size_ = other.size_;
    other.ptr_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

Secret Secret::copyOf(kj::ArrayPtr<const kj::byte> bytes) {
  Secret result(bytes.size());
  if (bytes.size() > 0) memcpy(result.ptr_, bytes.begin(), bytes.size());
  return result;
}

Secret Secret::copyOf(kj::StringPtr text) { return copyOf(text.asBytes()); }

Secret Secret::random(size_t size) {
  Secret result(size);
  if (size > 0) randombytes_buf(result.ptr_, size);
  return result;
}

bool Secret::equals(const Secret& other) const { return equals(other.reveal()); }

bool Secret::equals(kj::ArrayPtr<const kj::byte> other) const {
  return constantTimeEquals(reveal(), other);
}

void wipe(kj::ArrayPtr<kj::byte> bytes) {
  if (bytes.size() > 0) sodium_memzero(bytes.begin(), bytes.size());
}

void wipe(kj::ArrayPtr<char> chars) {
  if (chars.size() > 0) sodium_memzero(chars.begin(), chars.size());
}

bool constantTimeEquals(kj::ArrayPtr<const kj::byte> a, kj::ArrayPtr<const kj::byte> b) {
  if (a.size() != b.size()) return false;
  if (a.size() == 0) return true;
  return sodium_memcmp(a.begin(), b.begin(), a.size()) == 0;
}

}  // namespace credvault::crypto
