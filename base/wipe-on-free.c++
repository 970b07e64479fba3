// The interposers (wipe-on-free.h). Linked whole into each executable, never into a shared
// library: a library that replaced free() would do so in every program that loads it.

#include "wipe-on-free.h"

#include <errno.h>
#include <stdlib.h>
#include <atomic>

// A sanitizer runtime replaces malloc and free itself; freeing its blocks with glibc's
// __libc_free would corrupt both heaps. base/meson.build does not link this file in such
// builds; this guard covers flags passed some other way (CXXFLAGS).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CREDVAULT_WIPE_HOOK 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer) || __has_feature(hwaddress_sanitizer)
#define CREDVAULT_WIPE_HOOK 0
#endif
#endif
#ifndef CREDVAULT_WIPE_HOOK
#define CREDVAULT_WIPE_HOOK 1
#endif

#if CREDVAULT_WIPE_HOOK

// glibc's allocator under its exported internal names (GLIBC_2.2.5, all of glibc 2.x). They
// throw nothing (C), and saying so lets free() end in a jump to __libc_free, not a call.
extern "C" {
void* __libc_malloc(size_t size) noexcept;
void __libc_free(void* block) noexcept;
void* __libc_realloc(void* block, size_t size) noexcept;
}

namespace {

// glibc (≥ 2.34) writes one random key per process into the second word of every block it
// puts in a tcache, and a free() that finds it there looks for the block in the tcache:
// that is its double-free check. Learnt by freeing a probe block and reading the word back —
// the one place we read memory after glibc has it, and only our own probe. Zero (no check
// kept) when the word stays zero: tcache disabled (glibc.malloc.tcache_count=0), or a glibc
// that marks blocks otherwise.
uintptr_t learnTcacheKey() {
  auto* probe = static_cast<volatile uintptr_t*>(__libc_malloc(2 * sizeof(uintptr_t)));
  if (probe == nullptr) return 0;
  probe[1] = 0;
  __libc_free(const_cast<uintptr_t*>(probe));
  return probe[1];
}

// Whether chunkUsableSize answers as malloc_usable_size does in this process, tried on probe
// blocks of the sizes free() meets most (tcache, fast and small bins, a large one). A glibc
// whose chunks look otherwise keeps paying the call into libc.
bool headerAgrees() {
  constexpr size_t SIZES[] = {1, 24, 25, 40, 100, 200, 1000, 1100, 5000, 40000};
  void* probes[sizeof(SIZES) / sizeof(SIZES[0])];
  bool agrees = true;
  for (size_t i = 0; i < sizeof(SIZES) / sizeof(SIZES[0]); ++i) {
    probes[i] = __libc_malloc(SIZES[i]);
    if (probes[i] == nullptr ||
        credvault::base::chunkUsableSize(probes[i]) != malloc_usable_size(probes[i])) {
      agrees = false;
    }
  }
  for (void* p : probes) __libc_free(p);  // fresh blocks: nothing in them to wipe
  return agrees;
}

// Learnt on the first free. Plain atomics rather than a function-local static: no C++ guard
// (and its locking) on the way into free(). Threads that race here learn the same.
constexpr uintptr_t UNKNOWN = 1;  // glibc's key is random; 1 is as unlikely as any value
std::atomic<uintptr_t> tcacheKeyLearnt{UNKNOWN};
std::atomic<bool> headerReadable{false};

[[gnu::noinline, gnu::cold]] uintptr_t learn() {
  uintptr_t key = learnTcacheKey();
  headerReadable.store(headerAgrees(), std::memory_order_relaxed);
  tcacheKeyLearnt.store(key, std::memory_order_relaxed);
  return key;
}

// Inline in free(): one load once learnt.
inline uintptr_t tcacheKey() {
  uintptr_t key = tcacheKeyLearnt.load(std::memory_order_relaxed);
  if (__builtin_expect(key == UNKNOWN, 0)) key = learn();
  return key;
}

size_t usableSize(void* block) {
  if (headerReadable.load(std::memory_order_relaxed)) {
    return credvault::base::chunkUsableSize(block);
  }
  return malloc_usable_size(block);
}

constexpr credvault::base::HeapFunctions GLIBC = {__libc_malloc, __libc_free, __libc_realloc,
                                                  tcacheKey, usableSize};

}  // namespace

extern "C" {

// No state but the key above: safe from any thread, at any point of start-up and exit, and
// inside glibc.

void free(void* block) noexcept {
  credvault::base::wipeAndFree(block, GLIBC);
}

void* realloc(void* block, size_t size) noexcept {
  return credvault::base::wipingRealloc(block, size, GLIBC);
}

// glibc's reallocarray calls its realloc internally, not through the symbol.
void* reallocarray(void* block, size_t count, size_t size) noexcept {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return credvault::base::wipingRealloc(block, bytes, GLIBC);
}

}  // extern "C"

#endif  // CREDVAULT_WIPE_HOOK
