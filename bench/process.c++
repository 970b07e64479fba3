#include "process.h"
#include "load.h"

#include <kj/debug.h>
#include <kj/filesystem.h>
#include <kj/vector.h>
#include <lmdb.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

namespace credvault::bench {

pid_t spawn(kj::ArrayPtr<const kj::String> argv, kj::StringPtr logPath, uid_t uid) {
  kj::Vector<char*> args;
  for (auto& a : argv) args.add(const_cast<char*>(a.cStr()));
  args.add(nullptr);
  int logFd = open(logPath.cStr(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  KJ_SYSCALL(logFd, logPath);
  pid_t pid = fork();
  KJ_SYSCALL(pid, "fork");
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(logFd, 1);
    dup2(logFd, 2);
    // As under systemd. (Also: credvaultd 0.1.0 resolves an absolute --config path against
    // its working directory; from / that is the same path.)
    if (chdir("/") != 0) _exit(126);
    if (uid != getuid() && (setgid(uid) != 0 || setuid(uid) != 0)) _exit(125);
    execv(args[0], args.begin());
    _exit(127);
  }
  close(logFd);
  return pid;
}

void waitForSocket(pid_t pid, kj::StringPtr socketPath, kj::StringPtr logPath) {
  uint64_t until = nowNs() + 30'000'000'000ull;
  for (;;) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      KJ_FAIL_REQUIRE("the server exited at start", status, readText(logPath));
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, socketPath.cStr(), sizeof(addr.sun_path) - 1);
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (ok) return;
    KJ_REQUIRE(nowNs() < until, "the server did not open its socket in 30 s", readText(logPath));
    usleep(20'000);
  }
}

void stopProcess(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
}

kj::String selfExe() {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  KJ_SYSCALL(n);
  self[n] = '\0';
  return kj::str(self);
}

kj::String readText(kj::StringPtr path) {
  int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return kj::str("(cannot read ", path, ")");
  kj::Vector<char> out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.addAll(kj::arrayPtr(buf, n));
  close(fd);
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

Memory readMemory(pid_t pid) {
  Memory m;
  auto text = readText(kj::str("/proc/", pid, "/status"));
  auto field = [&](const char* name) -> uint64_t {
    const char* p = strstr(text.cStr(), name);
    if (p == nullptr) return 0;
    return strtoull(p + strlen(name), nullptr, 10);
  };
  m.vmRss = field("VmRSS:");
  m.rssAnon = field("RssAnon:");
  m.rssFile = field("RssFile:");
  m.rssShmem = field("RssShmem:");
  m.vmHwm = field("VmHWM:");
  return m;
}

void removeTree(kj::StringPtr path) {
  auto fs = kj::newDiskFilesystem();
  fs->getRoot().tryRemove(kj::Path::parse(path.slice(1)));
}

kj::Own<Daemon> startDaemon(const Options& o, kj::StringPtr dir, kj::StringPtr stateDir,
                            kj::StringPtr name, bool cheapPasswords,
                            kj::ArrayPtr<const kj::StringPtr> settings) {
  auto d = kj::heap<Daemon>();
  d->stateDir = kj::heapString(stateDir);
  d->socket = kj::str(dir, "/", name, ".sock");
  d->log = kj::str(dir, "/", name, ".log");
  auto config = kj::str(dir, "/credvaultd.conf");
  if (access(config.cStr(), F_OK) != 0) {
    int fd = open(config.cStr(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    KJ_SYSCALL(fd, config);
    close(fd);
  }
  kj::Vector<kj::String> argv;
  argv.add(kj::heapString(o.credvaultd));
  argv.add(kj::str("--config"));
  argv.add(kj::mv(config));
  argv.add(kj::str("--state-dir"));
  argv.add(kj::heapString(stateDir));
  argv.add(kj::str("--socket"));
  argv.add(kj::heapString(d->socket));
  argv.add(kj::str("--create-key"));
  auto set = [&](kj::String setting) {
    argv.add(kj::str("--set"));
    argv.add(kj::mv(setting));
  };
  if (cheapPasswords) {
    set(kj::str("password_ops_limit=1"));
    set(kj::str("password_mem_limit=8192"));
  }
  if (getuid() != 0) set(kj::str("system_uids=", getuid()));
  KJ_IF_MAYBE(level, o.daemonLogLevel) { set(kj::str("log_level=", *level)); }
  for (auto& setting : o.daemonSettings) set(kj::heapString(setting));
  for (auto setting : settings) set(kj::heapString(setting));
  d->pid = spawn(argv, d->log);
  waitForSocket(d->pid, d->socket, d->log);
  return d;
}

TxnCounter::TxnCounter(kj::StringPtr dir) {
  KJ_REQUIRE(mdb_env_create(&env_) == 0);
  int rc = mdb_env_open(env_, dir.cStr(), MDB_RDONLY | MDB_NOTLS, 0600);
  KJ_REQUIRE(rc == 0, "mdb_env_open (read-only)", mdb_strerror(rc));
}

TxnCounter::~TxnCounter() {
  mdb_env_close(env_);
}

uint64_t TxnCounter::lastTxnId() {
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  return info.me_last_txnid;
}

}  // namespace credvault::bench
