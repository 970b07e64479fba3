#include "secret.h"

#include <sodium.h>
#include <kj/debug.h>
#include <string.h>
#include <errno.h>
#include <mutex>
#include <vector>

namespace credvault::crypto {

namespace {

// Small secrets come from size classes carved out of large sodium_malloc regions: the
// regions are mlock()ed, excluded from core dumps and fenced by guard pages, and a block
// is wiped when it is freed and before it is reused. A sodium_malloc per small secret
// costs an mmap, an mprotect and an mlock (and their undoing) — most of the daemon's CPU
// on a Get before this pool. What is lost is a guard page per secret: an overflow inside
// a region is not trapped. Regions are kept for reuse (memory follows the peak number of
// secrets alive at once).
// 8192: the largest secret value (core::MAX_SECRET_BYTES) fits its block exactly.
constexpr size_t CLASS_SIZES[] = {64, 256, 1024, 4096, 8192, 16384};
constexpr size_t CLASS_COUNT = sizeof(CLASS_SIZES) / sizeof(CLASS_SIZES[0]);
constexpr size_t REGION_BYTES = 128 * 1024;

struct Pool {
  std::mutex mutex;
  std::vector<kj::byte*> free[CLASS_COUNT];
};

Pool& pool() {
  // Never destroyed: secrets may be freed during static destruction.
  static Pool* instance = new Pool;
  return *instance;
}

int classFor(size_t size) {
  for (size_t i = 0; i < CLASS_COUNT; i++) {
    if (size <= CLASS_SIZES[i]) return i;
  }
  return -1;
}

kj::byte* poolAllocate(int cls) {
  auto& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  auto& list = p.free[cls];
  if (list.empty()) {
    size_t blockSize = CLASS_SIZES[cls];
    auto region = static_cast<kj::byte*>(sodium_malloc(REGION_BYTES));
    if (region == nullptr) KJ_FAIL_SYSCALL("sodium_malloc", ENOMEM, REGION_BYTES);
    sodium_memzero(region, REGION_BYTES);
    for (size_t off = 0; off + blockSize <= REGION_BYTES; off += blockSize) {
      list.push_back(region + off);
    }
  }
  auto block = list.back();
  list.pop_back();
  return block;
}

void poolFree(kj::byte* block, int cls, size_t used) {
  sodium_memzero(block, used);
  auto& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.free[cls].push_back(block);
}

}  // namespace

void init() {
  // sodium_init() is idempotent and thread-safe; 1 means "already initialised".
  KJ_ASSERT(sodium_init() >= 0, "libsodium failed to initialise");
}

Secret::Secret(size_t size) : size_(size) {
  if (size == 0) return;
  init();
  class_ = classFor(size);
  if (class_ >= 0) {
    ptr_ = poolAllocate(class_);  // blocks are wiped on free, so this is zeroed
    return;
  }
  ptr_ = static_cast<kj::byte*>(sodium_malloc(size));
  if (ptr_ == nullptr) {
    size_ = 0;
    KJ_FAIL_SYSCALL("sodium_malloc", ENOMEM, size);
  }
  sodium_memzero(ptr_, size);
}

void Secret::release() {
  if (ptr_ == nullptr) return;
  if (class_ >= 0) {
    poolFree(ptr_, class_, size_);
  } else {
    sodium_free(ptr_);  // sodium_free wipes before unmapping
  }
  ptr_ = nullptr;
  size_ = 0;
  class_ = -1;
}

Secret::~Secret() noexcept(false) {
  release();
}

Secret::Secret(Secret&& other) noexcept
    : ptr_(other.ptr_), size_(other.size_), class_(other.class_) {
  other.ptr_ = nullptr;
  other.size_ = 0;
  other.class_ = -1;
}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    release();
    ptr_ = other.ptr_;
    size_ = other.size_;
    class_ = other.class_;
    other.ptr_ = nullptr;
    other.size_ = 0;
    other.class_ = -1;
  }
  return *this;
}

Secret Secret::copyOf(kj::ArrayPtr<const kj::byte> bytes) {
  Secret result(bytes.size());
  if (bytes.size() > 0) memcpy(result.ptr_, bytes.begin(), bytes.size());
  return result;
}

Secret Secret::copyOf(kj::StringPtr text) {
  return copyOf(text.asBytes());
}

Secret Secret::random(size_t size) {
  Secret result(size);
  if (size > 0) randombytes_buf(result.ptr_, size);
  return result;
}

bool Secret::equals(const Secret& other) const {
  return equals(other.reveal());
}

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
