// credvault — wipe-on-free: no freed heap block keeps its bytes.
//
// Security invariant: in credvaultd, credvault-gateway and credvaultctl, every block glibc's
// malloc gets back has been zeroed first (its whole malloc_usable_size), whoever frees it:
// our code, KJ and Cap'n Proto (message segments, kj::String, kj::Array), libstdc++
// (operator delete calls free) or glibc itself. Copies of secrets that pass through ordinary
// heap memory — RPC messages, HTTP, JSON and XML buffers — are therefore gone once the
// request that carried them is over. Secrets that are kept live in crypto::Secret
// (sodium_malloc) regardless; this is the net for the copies nobody owns.
//
// How: wipe-on-free.c++ defines free(), realloc() and reallocarray(). Linked into an
// executable (link_whole, see base/meson.build), these definitions interpose on glibc's for
// the whole process, libraries included (ELF symbol interposition: the executable comes
// first in the lookup scope, and glibc routes its own frees through the same symbol). They
// zero the block, then hand it to glibc's __libc_free / __libc_malloc; allocation itself is
// untouched, so every pointer they see is glibc's and malloc_usable_size is valid for it.
// glibc writes its free-list pointers (16–32 bytes) into the block afterwards; those are
// addresses, not data.
//
// - realloc: glibc frees a moved block internally, not through free(), so growing is done
//   here as allocate + copy + wipe + free, and shrinking zeroes the tail glibc may split
//   off. reallocarray likewise (glibc calls its realloc directly).
// - Double frees: glibc's tcache recognises a block it already holds by a random key in the
//   block's second word; zeroing it would let a double free through (the block would then
//   be handed out twice). The hook learns the key once (by freeing a probe block) and leaves
//   a block that carries it to glibc unwiped, which aborts as it would without us.
// - Threads: no state but that key, set once (glibc ≥ 2.34: one key per process); tcache
//   and arenas are glibc's business after the wipe.
// - mmapped chunks (above glibc's mmap threshold, 128 KiB at first): wiped like the
//   others, although munmap returns the pages to the kernel, which zeroes them; we do not
//   look inside glibc's chunk header to tell.
// - Not covered: memory that is never freed (a live buffer's owner wipes it:
//   crypto::Secret, ipc::BufferedStream, the gateway's connection buffers), stacks, static
//   buffers, and memory outside malloc (sodium_malloc, the LMDB map, kernel socket buffers).
//
// Not linked under ASan/UBSan or libFuzzer (the sanitizer runtime owns malloc and free) nor
// with -Dwipe_on_free=false (e.g. for valgrind); base/meson.build decides, and the hook
// compiles to nothing when it sees a sanitizer anyway. Where it is linked, the dependency
// defines CREDVAULT_WIPE_ON_FREE=1.
//
// The functions here are the hook's logic with glibc injected, so tests can check what
// glibc is handed without reading freed memory. They are inline so that in the hook, where
// the HeapFunctions are constants, they compile to direct calls: free() runs ~300 times per
// gateway request (docs/performance.md §13).

#pragma once

#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace credvault::base {

struct HeapFunctions {
  void* (*allocate)(size_t size);             // __libc_malloc
  void (*release)(void* block);               // __libc_free
  void* (*resize)(void* block, size_t size);  // __libc_realloc, used only to shrink
  // The mark glibc's tcache leaves in the second word of a block it holds (0: none known).
  uintptr_t (*freedMark)();
  size_t (*usableSize)(void* block);  // malloc_usable_size, or chunkUsableSize once checked
};

// Zeroes `size` bytes at `bytes` in a way the compiler may not drop as a dead store to
// memory about to be freed (explicit_bzero does the same with one more call).
inline void wipe(void* bytes, size_t size) noexcept {
  // Hides where `bytes` came from: where malloc is visible, _FORTIFY_SOURCE would check `size`
  // against what malloc was asked for, and malloc_usable_size may be more.
  asm("" : "+r"(bytes));
  auto* b = static_cast<unsigned char*>(bytes);
  if (size >= 16 && size <= 128) {
    // Most blocks: two overlapping runs of 16, 32 or 64 bytes from either end, as memset would
    // do after a call and its own dispatch on the size.
    if (size <= 32) {
      __builtin_memset(b, 0, 16);
      __builtin_memset(b + size - 16, 0, 16);
    } else if (size <= 64) {
      __builtin_memset(b, 0, 32);
      __builtin_memset(b + size - 32, 0, 32);
    } else {
      __builtin_memset(b, 0, 64);
      __builtin_memset(b + size - 64, 0, 64);
    }
  } else {
    memset(b, 0, size);
  }
  asm volatile("" : : "r"(bytes) : "memory");
}

// What malloc_usable_size(block) answers for a block glibc's malloc handed out, read from the
// chunk's header as glibc itself does (malloc.c, musable) rather than through a call into libc
// on every free: the size word before the block, its low three bits being flags; an mmapped
// chunk (IS_MMAPPED, 2) has its two header words to take off, a heap chunk its size word, and a
// heap chunk counts as in use only while the next chunk's PREV_INUSE bit (1) is set — otherwise
// 0, as glibc answers. (Memory tagging, which would change this, exists on AArch64 only.) The
// hook uses it only after checking it against malloc_usable_size on probe blocks
// (wipe-on-free.c++).
inline size_t chunkUsableSize(const void* block) noexcept {
  constexpr size_t WORD = sizeof(size_t);
  auto* bytes = static_cast<const unsigned char*>(block);
  size_t header;
  memcpy(&header, bytes - WORD, WORD);
  size_t chunk = header & ~size_t{7};
  if ((header & 2) != 0) return chunk - 2 * WORD;
  size_t next;
  memcpy(&next, bytes - 2 * WORD + chunk + WORD, WORD);
  return (next & 1) != 0 ? chunk - WORD : 0;
}

// What free(block) does: zeroes the usable size of `block` (null is ignored), then releases it.
// A block that carries the tcache's mark is most likely in the tcache already, i.e. freed
// twice: it is released as it is, so that glibc's check sees its mark and aborts ("free():
// double free detected in tcache 2") instead of the block being handed out twice. Data that
// happens to equal the random mark (one chance in 2^64) would only go unwiped.
inline void wipeAndFree(void* block, const HeapFunctions& heap) noexcept {
  if (block == nullptr) return;
  uintptr_t mark = heap.freedMark();
  size_t size = heap.usableSize(block);
  if (mark != 0 && size >= 2 * sizeof(uintptr_t) &&
      __builtin_memcmp(static_cast<char*>(block) + sizeof(uintptr_t), &mark, sizeof(mark)) == 0) {
    heap.release(block);
    return;
  }
  wipe(block, size);
  heap.release(block);
}

// What realloc(block, size) does, with glibc's semantics (null block: allocate; size 0:
// free, return null; failure: null, block untouched). Shrinking zeroes the bytes past `size`
// and stays in place; growing allocates anew, copies and wipes the old block, because
// glibc's own realloc would free a moved block without passing through free().
inline void* wipingRealloc(void* block, size_t size, const HeapFunctions& heap) noexcept {
  if (block == nullptr) return heap.allocate(size);
  if (size == 0) {
    wipeAndFree(block, heap);  // glibc frees and returns null for realloc(p, 0)
    return nullptr;
  }
  size_t old = heap.usableSize(block);
  if (size <= old) {
    // A heap chunk shrinks in place and glibc frees the split-off tail internally; an
    // mmapped one shrinks with mremap, which moves pages, not bytes.
    wipe(static_cast<char*>(block) + size, old - size);
    return heap.resize(block, size);
  }
  // This gives up growing in place; our programs seldom realloc.
  void* moved = heap.allocate(size);
  if (moved == nullptr) return nullptr;  // errno is ENOMEM; `block` is untouched
  memcpy(moved, block, old);
  wipeAndFree(block, heap);
  return moved;
}

}  // namespace credvault::base
