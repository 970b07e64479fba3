// Tests for daemon/backup.h: a snapshot spooled off the event loop and streamed into a
// ByteSink in bounded chunks; refusals are typed; the spool never outlives the call.
// In-process: the sink is a local capability, the store a real LMDB environment.

#include "daemon/backup.h"
#include "store/env.h"
#include "tests/support/temp-dir.h"

#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/vector.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <unistd.h>
#include <memory>
#include <set>
#include <string>

namespace credvault::daemon {
namespace {

using support::TempDir;

std::set<std::string> entriesOf(kj::StringPtr dir) {
  std::set<std::string> out;
  DIR* d = opendir(dir.cStr());
  KJ_REQUIRE(d != nullptr, dir);
  KJ_DEFER(closedir(d));
  while (auto* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.insert(name);
  }
  return out;
}

size_t openFds() {
  return entriesOf("/proc/self/fd").size();
}

// Keeps what arrives; optionally fails or stalls at a given write.
struct Received {
  kj::Vector<kj::byte> bytes;
  size_t writes = 0;
  size_t largest = 0;
  size_t dones = 0;
};

class Sink final : public rpc::ByteSink::Server {
 public:
  enum Mode { NORMAL, FAIL_SECOND, STALL_SECOND };
  Sink(Received& got, Mode mode) : got_(got), mode_(mode) {}

 protected:
  kj::Promise<void> write(WriteContext context) override {
    auto data = context.getParams().getData();
    if (++got_.writes == 2) {
      if (mode_ == FAIL_SECOND) KJ_FAIL_REQUIRE("disk full (client side) /secret/path");
      if (mode_ == STALL_SECOND) return kj::NEVER_DONE;
    }
    got_.bytes.addAll(data);
    got_.largest = kj::max(got_.largest, data.size());
    return kj::READY_NOW;
  }
  kj::Promise<void> done(DoneContext) override {
    ++got_.dones;
    return kj::READY_NOW;
  }

 private:
  Received& got_;
  Mode mode_;
};

class StreamBackupTest : public ::testing::Test {
 protected:
  // Destroyed in reverse: the pool (whose jobs use the environment) first.
  std::unique_ptr<kj::AsyncIoContext> io = std::make_unique<kj::AsyncIoContext>(kj::setupAsyncIo());
  TempDir dir;
  std::unique_ptr<store::Environment> env;
  store::Table table;
  std::unique_ptr<BlockingPool> pool = std::make_unique<BlockingPool>(1);

  void SetUp() override {
    auto live = kj::str(dir.path(), "/live");
    KJ_SYSCALL(mkdir(live.cStr(), 0700));
    env = std::make_unique<store::Environment>(live);
    table = env->table("things");
    // Random-looking values, so the compacted copy spans several chunks.
    env->write([&](store::WriteTxn& txn) {
      uint32_t x = 12345;
      for (uint32_t i = 0; i < 100; i++) {
        kj::byte key[4];
        store::putBe32(key, i);
        auto value = kj::heapArray<kj::byte>(3000);
        for (auto& b : value) b = (x = x * 1103515245 + 12345) >> 24;
        txn.put(table, key, value);
      }
    });
  }

  // The spool is closed on the pool (freeing its blocks takes the file system a while), so
  // it is gone shortly after the stream ends: the descriptors open once that has happened,
  // waiting at most twenty seconds (a loaded host is slow to free them).
  size_t fdsOnceSettled(size_t expected) {
    for (int i = 0; i < 20000 && openFds() != expected; i++) {
      io->provider->getTimer().afterDelay(1 * kj::MILLISECONDS).wait(io->waitScope);
    }
    return openFds();
  }

  BackupSource source(uint64_t sizeBound = 0) {
    BackupSource s;
    s.spoolDirectory = env->directory();
    s.sizeBound = sizeBound;
    s.write = [this](int fd) -> kj::Maybe<core::Refusal> {
      env->backup(fd);
      return nullptr;
    };
    return s;
  }
};

TEST_F(StreamBackupTest, StreamsTheWholeSnapshotInBoundedChunksThenDone) {
  auto before = entriesOf(env->directory());
  Received got;
  auto outcome =
      streamBackup(*pool, source(), kj::heap<Sink>(got, Sink::NORMAL)).wait(io->waitScope);
  ASSERT_TRUE(outcome.error == nullptr && outcome.failure == nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(outcome.value), got.bytes.size());
  EXPECT_GT(got.writes, 2u);
  EXPECT_LE(got.largest, BACKUP_CHUNK_BYTES);
  EXPECT_EQ(got.dones, 1u);
  EXPECT_EQ(entriesOf(env->directory()), before) << "the spool left a file";

  // What arrived is a database with the same content.
  auto copy = kj::str(dir.path(), "/copy");
  KJ_SYSCALL(mkdir(copy.cStr(), 0700));
  int fd = open(kj::str(copy, "/data.mdb").cStr(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, got.bytes.begin(), got.bytes.size()), ssize_t(got.bytes.size()));
  close(fd);
  store::Environment restored(copy);
  auto t = restored.table("things");
  EXPECT_EQ(restored.read().count(t), 100u);
}

TEST_F(StreamBackupTest, ASinkThatFailsIsAnInvalidArgumentAndTheSpoolIsClosed) {
  size_t fds = openFds();
  Received got;
  auto outcome =
      streamBackup(*pool, source(), kj::heap<Sink>(got, Sink::FAIL_SECOND)).wait(io->waitScope);
  auto& e = KJ_ASSERT_NONNULL(outcome.error);
  EXPECT_EQ(e.code, core::ErrorCode::INVALID_ARGUMENT);
  EXPECT_EQ(e.field, "sink");
  // The client's text is neither echoed nor trusted.
  EXPECT_EQ(kj::StringPtr(e.message).findFirst('/'), nullptr) << e.message.cStr();
  EXPECT_EQ(got.dones, 0u);
  EXPECT_EQ(fdsOnceSettled(fds), fds);
}

TEST_F(StreamBackupTest, CancellingMidStreamClosesTheSpool) {
  size_t fds = openFds();
  Received got;
  {
    auto promise = streamBackup(*pool, source(), kj::heap<Sink>(got, Sink::STALL_SECOND));
    // Run the event loop until the stream is stuck at the second write.
    for (int i = 0; i < 20000 && got.writes < 2; i++) {
      io->provider->getTimer().afterDelay(1 * kj::MILLISECONDS).wait(io->waitScope);
    }
    ASSERT_EQ(got.writes, 2u);
    EXPECT_EQ(openFds(), fds + 1) << "no spool while streaming?";
  }
  EXPECT_EQ(fdsOnceSettled(fds), fds);
}

TEST_F(StreamBackupTest, RefusesWithoutRoomForTheSpoolAndWritesNothing) {
  Received got;
  bool called = false;
  BackupSource s = source(uint64_t(1) << 62);
  s.write = [&called](int) -> kj::Maybe<core::Refusal> {
    called = true;
    return nullptr;
  };
  auto outcome =
      streamBackup(*pool, kj::mv(s), kj::heap<Sink>(got, Sink::NORMAL)).wait(io->waitScope);
  auto& e = KJ_ASSERT_NONNULL(outcome.error);
  EXPECT_EQ(e.code, core::ErrorCode::UNAVAILABLE);
  EXPECT_FALSE(called);
  EXPECT_EQ(got.writes, 0u);
}

TEST_F(StreamBackupTest, ARefusalFromTheVaultIsCarriedTyped) {
  Received got;
  BackupSource s = source();
  s.write = [](int) -> kj::Maybe<core::Refusal> {
    return core::refuse(core::ErrorCode::PERMISSION_DENIED, "",
                        kj::str("taking a backup needs a system user"));
  };
  auto outcome =
      streamBackup(*pool, kj::mv(s), kj::heap<Sink>(got, Sink::NORMAL)).wait(io->waitScope);
  EXPECT_EQ(KJ_ASSERT_NONNULL(outcome.error).code, core::ErrorCode::PERMISSION_DENIED);
  EXPECT_EQ(got.writes, 0u);
}

}  // namespace
}  // namespace credvault::daemon
