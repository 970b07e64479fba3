#include "system.h"

#include <systemd/sd-daemon.h>
#include <kj/debug.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <fcntl.h>

namespace credvault::daemon {

void hardenProcess() {
  struct rlimit none = {0, 0};
  KJ_SYSCALL(setrlimit(RLIMIT_CORE, &none));
  KJ_SYSCALL(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0));
  umask(077);
}

kj::Maybe<int> socketFromSystemd() {
  int n = sd_listen_fds(1);
  KJ_REQUIRE(n >= 0, "invalid LISTEN_FDS from systemd");
  if (n == 0) return nullptr;
  KJ_REQUIRE(n == 1, "credvaultd expects exactly one socket from systemd", n);
  int fd = SD_LISTEN_FDS_START;
  KJ_REQUIRE(sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) > 0,
             "the socket from systemd is not a listening Unix stream socket");
  return fd;
}

kj::Own<kj::ConnectionReceiver> bindUnixSocket(kj::LowLevelAsyncIoProvider& io, kj::StringPtr path,
                                               uint32_t mode) {
  struct sockaddr_un addr;
  KJ_REQUIRE(path.size() < sizeof(addr.sun_path), "socket path is too long", path);
  // Replace a stale socket, never a regular file someone put there.
  struct stat st;
  if (lstat(path.cStr(), &st) == 0) {
    KJ_REQUIRE(S_ISSOCK(st.st_mode), "the socket path exists and is not a socket", path);
    KJ_SYSCALL(unlink(path.cStr()), path);
  }
  int fd;
  KJ_SYSCALL(fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  KJ_ON_SCOPE_FAILURE(close(fd));
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.begin(), path.size());
  KJ_SYSCALL(bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), path);
  KJ_SYSCALL(chmod(path.cStr(), mode), path);
  KJ_SYSCALL(listen(fd, SOMAXCONN));
  return io.wrapListenSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
}

kj::Maybe<SocketIdentity> socketIdentity(kj::StringPtr path) {
  struct stat st;
  if (lstat(path.cStr(), &st) != 0 || !S_ISSOCK(st.st_mode)) return nullptr;
  return SocketIdentity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

void removeSocketIf(kj::StringPtr path, SocketIdentity id) {
  KJ_IF_MAYBE(now, socketIdentity(path)) {
    if (now->device == id.device && now->inode == id.inode) unlink(path.cStr());
  }
}

void notify(kj::StringPtr state) {
  sd_notify(0, state.cStr());
}

kj::Promise<void> watchdogLoop(kj::Timer& timer) {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return kj::NEVER_DONE;
  auto period = usec / 2 * kj::MICROSECONDS;
  return timer.afterDelay(period).then([&timer]() {
    notify("WATCHDOG=1");
    return watchdogLoop(timer);
  });
}

}  // namespace credvault::daemon
