// Tests for base/wipe-on-free.h: the hook's logic with glibc injected (what glibc is handed
// must be zero), and, where the hook is linked into this test (CREDVAULT_WIPE_ON_FREE), the
// process-wide effect: after delete, free or a moving realloc — from our code, libstdc++ or
// KJ — the block's bytes are gone. Freed memory is read back through /proc/self/mem, never
// through a pointer.

#include "base/wipe-on-free.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <kj/string.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

namespace credvault::base {
namespace {

// What the injected glibc was handed, and when.
struct Recorder {
  std::vector<unsigned char> released;  // the block's usable bytes when it was released
  void* releasedBlock = nullptr;
  std::vector<unsigned char> resized;  // the block's usable bytes when it was resized
  size_t resizedTo = 0;
  int releases = 0;
  bool failAllocation = false;
};
Recorder recorder;

std::vector<unsigned char> usableBytes(void* block) {
  auto* bytes = static_cast<unsigned char*>(block);
  return std::vector<unsigned char>(bytes, bytes + malloc_usable_size(block));
}

void* recordingAllocate(size_t size) {
  return recorder.failAllocation ? nullptr : malloc(size);
}
void recordingRelease(void* block) {
  recorder.released = usableBytes(block);
  recorder.releasedBlock = block;
  ++recorder.releases;
  free(block);
}
void* recordingResize(void* block, size_t size) {
  recorder.resized = usableBytes(block);
  recorder.resizedTo = size;
  return block;  // a block may always stay as large as it was
}
constexpr uintptr_t FAKE_TCACHE_KEY = 0x6b65792d6b65792dull;
uintptr_t fakeTcacheKey() {
  return FAKE_TCACHE_KEY;
}
size_t libcUsableSize(void* block) {
  return malloc_usable_size(block);
}
constexpr HeapFunctions RECORDING = {recordingAllocate, recordingRelease, recordingResize,
                                     fakeTcacheKey, libcUsableSize};

bool allZero(const std::vector<unsigned char>& bytes, size_t from = 0) {
  for (size_t i = from; i < bytes.size(); ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

void* filled(size_t size, unsigned char value) {
  void* block = malloc(size);
  memset(block, value, size);
  return block;
}

class WipeOnFree : public testing::Test {
 protected:
  void SetUp() override { recorder = Recorder(); }
};

TEST_F(WipeOnFree, ReleasesAZeroedBlock) {
  void* block = filled(100, 0xa5);
  wipeAndFree(block, RECORDING);
  EXPECT_EQ(recorder.releasedBlock, block);
  ASSERT_GE(recorder.released.size(), 100u);  // the usable size, not only what was asked for
  EXPECT_TRUE(allZero(recorder.released));
}

TEST_F(WipeOnFree, LeavesABlockMarkedAsInTheTcacheToGlibc) {
  // As a block glibc already holds looks: its second word is the tcache's key. Releasing
  // it unwiped lets glibc's double-free check find the key.
  auto* block = static_cast<uintptr_t*>(filled(64, 0x5a));
  block[1] = FAKE_TCACHE_KEY;
  wipeAndFree(block, RECORDING);
  EXPECT_EQ(recorder.releasedBlock, block);
  ASSERT_GE(recorder.released.size(), 16u);
  uintptr_t second;
  memcpy(&second, recorder.released.data() + 8, sizeof(second));
  EXPECT_EQ(second, FAKE_TCACHE_KEY);
  EXPECT_EQ(recorder.released[20], 0x5a);
}

// The short blocks are zeroed with two overlapping stores instead of memset: every size zeroes
// exactly its bytes, none before or after.
TEST_F(WipeOnFree, WipeZeroesExactlyItsBytesAtEverySize) {
  std::vector<unsigned char> buffer(300 + 64);
  for (size_t size = 0; size <= 300; ++size) {
    std::fill(buffer.begin(), buffer.end(), 0xa5);
    wipe(buffer.data() + 32, size);
    for (size_t i = 0; i < buffer.size(); ++i) {
      bool inside = i >= 32 && i < 32 + size;
      ASSERT_EQ(buffer[i], inside ? 0 : 0xa5) << "size " << size << ", byte " << i;
    }
  }
}

TEST_F(WipeOnFree, IgnoresNull) {
  wipeAndFree(nullptr, RECORDING);
  EXPECT_EQ(recorder.releases, 0);
}

TEST_F(WipeOnFree, ReallocGrowingMovesAndReleasesTheOldBlockZeroed) {
  void* block = filled(64, 0x5a);
  auto* grown = static_cast<unsigned char*>(wipingRealloc(block, 4096, RECORDING));
  ASSERT_NE(grown, nullptr);
  for (size_t i = 0; i < 64; ++i) ASSERT_EQ(grown[i], 0x5a) << i;
  EXPECT_EQ(recorder.releasedBlock, block);
  EXPECT_TRUE(allZero(recorder.released));
  free(grown);
}

TEST_F(WipeOnFree, ReallocShrinkingZeroesTheTailBeforeGlibcSplitsIt) {
  void* block = filled(1000, 0x5a);
  void* shrunk = wipingRealloc(block, 100, RECORDING);
  EXPECT_EQ(shrunk, block);
  EXPECT_EQ(recorder.resizedTo, 100u);
  ASSERT_GE(recorder.resized.size(), 1000u);
  for (size_t i = 0; i < 100; ++i) ASSERT_EQ(recorder.resized[i], 0x5a) << i;
  EXPECT_TRUE(allZero(recorder.resized, 100));
  EXPECT_EQ(recorder.releases, 0);
  free(shrunk);
}

TEST_F(WipeOnFree, ReallocOfNullAllocatesAndToZeroFrees) {
  void* block = wipingRealloc(nullptr, 32, RECORDING);
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(recorder.releases, 0);
  memset(block, 0x77, 32);
  EXPECT_EQ(wipingRealloc(block, 0, RECORDING), nullptr);
  EXPECT_EQ(recorder.releasedBlock, block);
  EXPECT_TRUE(allZero(recorder.released));
}

TEST_F(WipeOnFree, FailedReallocLeavesTheBlockAlone) {
  void* block = filled(64, 0x5a);
  recorder.failAllocation = true;
  EXPECT_EQ(wipingRealloc(block, 1 << 20, RECORDING), nullptr);
  EXPECT_EQ(recorder.releases, 0);
  for (size_t i = 0; i < 64; ++i) ASSERT_EQ(static_cast<unsigned char*>(block)[i], 0x5a);
  free(block);
}

// ---- the hook as linked into this executable

#ifdef CREDVAULT_WIPE_ON_FREE
constexpr bool HOOK_LINKED = true;
#else
constexpr bool HOOK_LINKED = false;
#endif

constexpr char MARKER[] = "wipe-on-free-marker:";  // 20 bytes

// Keeps the compiler from proving a block unused (and eliding its new/delete pair).
void escape(void* p) {
  asm volatile("" : : "r"(p) : "memory");
}

void fillWithMarker(void* block, size_t size) {
  for (size_t i = 0; i + sizeof(MARKER) - 1 <= size; i += sizeof(MARKER) - 1) {
    memcpy(static_cast<char*>(block) + i, MARKER, sizeof(MARKER) - 1);
  }
  escape(block);
}

class WipeOnFreeHook : public testing::Test {
 protected:
  void SetUp() override {
    if (!HOOK_LINKED)
      GTEST_SKIP() << "the hook is not linked (sanitizer build or -Dwipe_on_free=false)";
    // Opened before the block is freed: open() allocates nothing, fopen() would.
    mem_ = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(mem_, 0);
  }
  void TearDown() override {
    if (mem_ >= 0) close(mem_);
  }

  // Whether the marker is still at `address` (a block freed since) in this process's memory.
  bool markerAt(uintptr_t address, size_t size) {
    char bytes[4096];
    EXPECT_LE(size, sizeof(bytes));
    ssize_t n = pread(mem_, bytes, size, static_cast<off_t>(address));
    if (n <= 0) return false;  // unmapped: an mmapped block went back to the kernel
    return memmem(bytes, static_cast<size_t>(n), MARKER, sizeof(MARKER) - 1) != nullptr;
  }

  int mem_ = -1;
};

TEST_F(WipeOnFreeHook, FreeIsTheHookNotGlibcs) {
  void* free_ = dlsym(RTLD_DEFAULT, "free");
  void* libcFree = dlsym(RTLD_DEFAULT, "__libc_free");
  ASSERT_NE(free_, nullptr);
  ASSERT_NE(libcFree, nullptr);
  EXPECT_NE(free_, libcFree);
  Dl_info info;
  ASSERT_NE(dladdr(free_, &info), 0);
  Dl_info self;
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&fillWithMarker), &self), 0);
  EXPECT_STREQ(info.dli_fname, self.dli_fname);  // defined in this executable
}

TEST_F(WipeOnFreeHook, FreeLeavesNoBytes) {
  void* block = malloc(400);
  fillWithMarker(block, 400);
  auto address = reinterpret_cast<uintptr_t>(block);
  ASSERT_TRUE(markerAt(address, 400));  // the check can see a marker
  free(block);
  EXPECT_FALSE(markerAt(address, 400));
}

TEST_F(WipeOnFreeHook, DeleteInLibstdcxxLeavesNoBytes) {
  auto* s = new std::string(300, 'x');
  fillWithMarker(s->data(), s->size());
  auto address = reinterpret_cast<uintptr_t>(s->data());
  delete s;
  EXPECT_FALSE(markerAt(address, 300));
}

TEST_F(WipeOnFreeHook, KjStringLeavesNoBytes) {
  uintptr_t address;
  {
    auto s = kj::heapString(500);
    fillWithMarker(s.begin(), s.size());
    address = reinterpret_cast<uintptr_t>(s.begin());
  }
  EXPECT_FALSE(markerAt(address, 500));
}

TEST_F(WipeOnFreeHook, MovingReallocLeavesNoBytesBehind) {
  void* block = malloc(200);
  fillWithMarker(block, 200);
  auto address = reinterpret_cast<uintptr_t>(block);
  void* blocker = malloc(16);  // right after `block`, so growing cannot stay in place
  escape(blocker);
  void* grown = realloc(block, 64 * 1024);
  ASSERT_NE(grown, nullptr);
  EXPECT_TRUE(markerAt(reinterpret_cast<uintptr_t>(grown), 200));
  if (reinterpret_cast<uintptr_t>(grown) != address) { EXPECT_FALSE(markerAt(address, 200)); }
  free(grown);
  free(blocker);
}

TEST_F(WipeOnFreeHook, FreeOnAnotherThreadLeavesNoBytes) {
  void* block = malloc(1000);
  fillWithMarker(block, 1000);
  auto address = reinterpret_cast<uintptr_t>(block);
  std::thread([block] { free(block); }).join();
  EXPECT_FALSE(markerAt(address, 1000));
}

TEST_F(WipeOnFreeHook, DoubleFreeStillAborts) {
  // glibc's tcache check ("free(): double free detected in tcache 2") survives the wipe.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        void* volatile block = malloc(40);
        free(block);
        free(block);
      },
      "double free");
}

// The hook reads a block's usable size from glibc's chunk header (once it has checked that
// this works): the same as malloc_usable_size for blocks of every size class, on the main
// arena and a thread's, and for an mmapped one.
TEST_F(WipeOnFreeHook, ChunkHeaderGivesMallocUsableSize) {
  auto check = [](size_t size) {
    void* block = malloc(size);
    escape(block);
    EXPECT_EQ(chunkUsableSize(block), malloc_usable_size(block)) << size;
    free(block);
  };
  for (size_t size = 0; size <= 4200; size += 7) check(size);
  check(64 << 10);
  check(8 << 20);  // mmapped
  std::thread([&] {
    for (size_t size = 0; size <= 2000; size += 13) check(size);
  }).join();
}

TEST_F(WipeOnFreeHook, LargeMmappedBlockLeavesNoBytes) {
  size_t size = 4 << 20;  // above glibc's mmap threshold
  void* block = malloc(size);
  fillWithMarker(block, size);
  auto address = reinterpret_cast<uintptr_t>(block);
  free(block);
  EXPECT_FALSE(markerAt(address, 4096));
}

}  // namespace
}  // namespace credvault::base
