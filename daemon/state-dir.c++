#include "state-dir.h"

#include <kj/debug.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace credvault::daemon {

namespace {

constexpr const char LOCK_FILE[] = "credvaultd.lock";
constexpr const char MARKER_FILE[] = "vault.created";
constexpr const char NEW_DIR[] = ".new-vault";

bool exists(kj::StringPtr path) {
  struct stat st;
  return lstat(path.cStr(), &st) == 0;
}

void syncDirectory(kj::StringPtr dir) {
  int fd;
  KJ_SYSCALL(fd = open(dir.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), dir);
  KJ_DEFER(close(fd));
  KJ_SYSCALL(fsync(fd), dir);
}

}  // namespace

StateLock::~StateLock() {
  close(fd_);  // releases the lock
}

kj::Own<StateLock> lockStateDirectory(kj::StringPtr dir) {
  auto path = kj::str(dir, "/", LOCK_FILE);
  int fd;
  KJ_SYSCALL(fd = open(path.cStr(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600), path);
  auto lock = kj::heap<StateLock>(fd);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) KJ_FAIL_SYSCALL("flock", errno, path);
    char buf[32] = {};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    long pid = n > 0 ? strtol(buf, nullptr, 10) : 0;
    throw StartRefused{
        EXIT_LOCKED,
        kj::str("another credvaultd", pid > 0 ? kj::str(" (pid ", pid, ")") : kj::str(),
                " is using the state directory ", dir,
                "; stop it first (two daemons on one vault are refused)")};
  }
  auto pid = kj::str(getpid(), "\n");
  KJ_SYSCALL(ftruncate(fd, 0), path);
  KJ_SYSCALL(pwrite(fd, pid.begin(), pid.size(), 0), path);
  return lock;
}

VaultPresence checkStateDirectory(kj::StringPtr dir, bool createAllowed) {
  auto state = store::inspectDataFile(dir);
  if (state.exists) {
    KJ_IF_MAYBE(problem, state.problem) { throw StartRefused{EXIT_DAMAGED, kj::mv(*problem)}; }
    return VaultPresence::EXISTS;
  }
  if (exists(kj::str(dir, "/", MARKER_FILE))) {
    throw StartRefused{
        EXIT_NO_VAULT,
        kj::str("database missing: ", dir, "/data.mdb is gone but a vault was created here (",
                MARKER_FILE, "); restore data.mdb from a backup (docs/operations.md), or remove ",
                dir, "/", MARKER_FILE, " to start a new, empty vault")};
  }
  if (!createAllowed) {
    throw StartRefused{EXIT_NO_VAULT,
                       kj::str("no vault in ", dir,
                               ": restore data.mdb from a backup there, or start once with "
                               "--create-key to create a new, empty vault")};
  }
  return VaultPresence::NEW;
}

void createVault(kj::StringPtr dir, kj::FunctionParam<void(store::Environment&)> initialise) {
  auto staging = kj::str(dir, "/", NEW_DIR);
  // Left over from a start that was killed half-way: nothing in it was ever served.
  for (auto name : {"data.mdb", "lock.mdb"}) {
    auto path = kj::str(staging, "/", name);
    if (unlink(path.cStr()) != 0 && errno != ENOENT) KJ_FAIL_SYSCALL("unlink", errno, path);
  }
  if (mkdir(staging.cStr(), 0700) != 0 && errno != EEXIST) {
    KJ_FAIL_SYSCALL("mkdir", errno, staging);
  }
  {
    store::Environment env(staging);
    initialise(env);
  }  // closed: every commit was durable
  auto from = kj::str(staging, "/data.mdb");
  auto to = kj::str(dir, "/data.mdb");
  KJ_SYSCALL(rename(from.cStr(), to.cStr()), from, to);
  syncDirectory(dir);
  unlink(kj::str(staging, "/lock.mdb").cStr());
  rmdir(staging.cStr());
  markVault(dir);
}

void markVault(kj::StringPtr dir) {
  auto path = kj::str(dir, "/", MARKER_FILE);
  if (exists(path)) return;
  auto tmp = kj::str(path, ".tmp");
  int fd;
  KJ_SYSCALL(fd = open(tmp.cStr(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600),
             tmp);
  {
    KJ_DEFER(close(fd));
    auto text = kj::str(
        "A credvault vault lives in this directory (data.mdb). While this file exists,\n"
        "credvaultd refuses to start without data.mdb instead of creating a new, empty vault.\n");
    KJ_SYSCALL(write(fd, text.begin(), text.size()), tmp);
    KJ_SYSCALL(fsync(fd), tmp);
  }
  KJ_SYSCALL(rename(tmp.cStr(), path.cStr()), path);
  syncDirectory(dir);
}

}  // namespace credvault::daemon
