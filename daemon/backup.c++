#include "backup.h"
#include "log.h"

#include <kj/debug.h>
#include <kj/io.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace credvault::daemon {

namespace {

// The snapshot, written and not yet sent. The descriptor is the only reference to the file.
struct Spool {
  kj::AutoCloseFd fd;
  uint64_t size;
};

// An anonymous file in `dir`. O_TMPFILE with O_EXCL can never be given a name; where the
// file system lacks O_TMPFILE, a named file is unlinked at once.
kj::AutoCloseFd openSpool(kj::StringPtr dir) {
  int fd = ::open(dir.cStr(), O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) return kj::AutoCloseFd(fd);
  if (errno != EOPNOTSUPP && errno != EISDIR) {
    KJ_FAIL_SYSCALL("open(O_TMPFILE) for the backup spool", errno, dir);
  }
  auto name = kj::str(dir, "/.backup-spool-XXXXXX");
  KJ_SYSCALL(fd = ::mkostemp(name.begin(), O_CLOEXEC), "creating the backup spool", dir);
  kj::AutoCloseFd owned(fd);
  KJ_SYSCALL(::unlink(name.cStr()), "unlinking the backup spool", dir);
  return owned;
}

// Runs on a pool thread: the copy takes as long as the disk needs, never the event loop.
core::Result<Spool> writeSpool(kj::StringPtr dir, uint64_t sizeBound,
                               kj::Function<kj::Maybe<core::Refusal>(int)>& write) {
  auto fd = openSpool(dir);
  struct statvfs fs;
  KJ_SYSCALL(::fstatvfs(fd, &fs), "statvfs(state directory)", dir);
  uint64_t available = uint64_t(fs.f_bavail) * fs.f_frsize;
  if (available / 2 < sizeBound) {
    return core::refuse(
        core::ErrorCode::UNAVAILABLE, "",
        kj::str("not enough free space in the state directory to take a backup (", available,
                " bytes free; it needs twice the database's ", sizeBound, " bytes)"));
  }
  CV_REFUSE_IF(write(fd));
  struct stat st;
  KJ_SYSCALL(::fstat(fd, &st), "fstat(backup spool)");
  return Spool{kj::mv(fd), uint64_t(st.st_size)};
}

// pread() until `out` is full. On the event loop: one chunk of a file just written (so in
// the page cache) is microseconds, and the chunk size bounds it.
void readAt(int fd, kj::ArrayPtr<kj::byte> out, uint64_t offset) {
  while (out.size() > 0) {
    ssize_t n;
    KJ_SYSCALL(n = ::pread(fd, out.begin(), out.size(), offset), "reading the backup spool");
    KJ_ASSERT(n > 0, "the backup spool is shorter than what was written to it");
    out = out.slice(n, out.size());
    offset += n;
  }
}

class Stream {
 public:
  Stream(BlockingPool& pool, Spool spool, rpc::ByteSink::Client sink)
      : pool_(pool), spool_(kj::mv(spool)), sink_(kj::mv(sink)) {}
  KJ_DISALLOW_COPY(Stream);

  ~Stream() noexcept(false) {
    // The last descriptor of the spool frees its blocks when closed: hundreds of MiB take
    // ext4 tens of milliseconds, so it is closed on the pool, not on the event loop.
    pool_
        .run<bool>([fd = kj::mv(spool_.fd)]() mutable {
          fd = nullptr;
          return core::Result<bool>(true);
        })
        .detach([](kj::Exception&&) {});
    // Dropped before it finished: the call was cancelled (the client went away, or the
    // daemon is stopping). The spool goes with spool_.fd.
    if (!settled_) {
      logf(Level::NOTICE, "backup cancelled before it finished", LogField{"OP", kj::str("backup")},
           LogField{"RESULT", kj::str("cancelled")}, LogField{"BYTES", kj::str(sent_)});
    }
  }

  kj::Promise<Outcome<uint64_t>> run() {
    return pump()
        .then([this]() { return fromSink(sink_.doneRequest().send().ignoreResult()); })
        .then(
            [this]() {
              settled_ = true;
              Outcome<uint64_t> out;
              out.value = sent_;
              return out;
            },
            [this](kj::Exception&& e) {
              settled_ = true;
              Outcome<uint64_t> out;
              if (sinkFailed_) {
                // The client's text is not ours to log or echo; say only where it stopped.
                bool gone = e.getType() == kj::Exception::Type::DISCONNECTED;
                out.error = core::refuse(
                    gone ? core::ErrorCode::UNAVAILABLE : core::ErrorCode::INVALID_ARGUMENT, "sink",
                    kj::str(gone ? "the client went away" : "the sink failed", " after ", sent_,
                            " of ", spool_.size, " bytes; the backup is incomplete"));
              } else {
                out.failure = kj::mv(e);
              }
              return out;
            });
  }

 private:
  BlockingPool& pool_;
  Spool spool_;
  rpc::ByteSink::Client sink_;
  uint64_t sent_ = 0;
  bool sinkFailed_ = false;
  bool settled_ = false;

  // One chunk per write; the streaming call's promise resolves when flow control has room
  // for the next, so at most a window of chunks is in memory.
  kj::Promise<void> pump() {
    if (sent_ == spool_.size) return kj::READY_NOW;
    size_t n = kj::min(BACKUP_CHUNK_BYTES, spool_.size - sent_);
    auto req = sink_.writeRequest(capnp::MessageSize{n / sizeof(capnp::word) + 8, 0});
    readAt(spool_.fd, req.initData(n), sent_);
    sent_ += n;
    return fromSink(req.send()).then([this]() { return pump(); });
  }

  // Marks a failure as the sink's (the client's), not ours.
  kj::Promise<void> fromSink(kj::Promise<void> call) {
    return call.catch_([this](kj::Exception&& e) -> kj::Promise<void> {
      sinkFailed_ = true;
      return kj::mv(e);
    });
  }
};

}  // namespace

kj::Promise<Outcome<uint64_t>> streamBackup(BlockingPool& pool, BackupSource source,
                                            rpc::ByteSink::Client sink) {
  auto job = [dir = kj::heapString(source.spoolDirectory), bound = source.sizeBound,
              write = kj::mv(source.write)]() mutable { return writeSpool(dir, bound, write); };
  return pool.run<Spool>(kj::mv(job))
      .then([&pool, sink = kj::mv(sink)](
                Outcome<Spool> spooled) mutable -> kj::Promise<Outcome<uint64_t>> {
        KJ_IF_MAYBE(failed, passOn<uint64_t>(spooled)) { return kj::mv(*failed); }
        auto stream =
            kj::heap<Stream>(pool, KJ_ASSERT_NONNULL(kj::mv(spooled.value)), kj::mv(sink));
        auto& ref = *stream;
        return ref.run().attach(kj::mv(stream));
      });
}

}  // namespace credvault::daemon
