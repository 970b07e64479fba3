#include "harness.h"

#include "tests/support/postgres.h"
#include "tests/support/test-store.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <thread>

namespace credvault::integration {

namespace {

std::string envOrDie(const char* name) {
  const char* v = getenv(name);
  KJ_REQUIRE(v != nullptr && *v != '\0', "environment variable not set (run through meson test)",
             name);
  return v;
}

// A memory file: inherited by a child whatever its uid, read back afterwards.
int memFile(const char* name, const std::string& content = "") {
  int fd = memfd_create(name, 0);
  KJ_REQUIRE(fd >= 0, "memfd_create", strerror(errno));
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    KJ_REQUIRE(n > 0, "write", strerror(errno));
    off += n;
  }
  lseek(fd, 0, SEEK_SET);
  return fd;
}

std::string readFd(int fd) {
  std::string out;
  lseek(fd, 0, SEEK_SET);
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, n);
  }
  return out;
}

void sleepMs(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, nullptr);
}

// Waits for `pid` with a deadline, polling; SIGKILLs it past the deadline.
int waitWithDeadline(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int delay = 1;
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    KJ_REQUIRE(r == 0 || errno == EINTR, "waitpid", strerror(errno));
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "process " << pid << " did not exit in time; killing it";
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return status;
    }
    sleepMs(delay);
    if (delay < 10) delay++;
  }
}

// In a forked child: drop to `uid` (gid = uid, no supplementary groups). Async-signal-safe.
void becomeUid(uid_t uid) {
  if (uid == 0) return;
  if (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 ||
      setresuid(uid, uid, uid) != 0) {
    _exit(126);
  }
}

void resetSignals() {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  signal(SIGPIPE, SIG_DFL);
}

std::vector<char*> cArgs(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::string credvaultdPath() {
  return envOrDie("CREDVAULTD");
}
std::string credvaultctlPath() {
  return envOrDie("CREDVAULTCTL");
}

void LeakCheck::check(const Daemon& daemon) const {
  std::string logs;
  for (auto& f : daemon.logFiles()) logs += readFile(f);
  EXPECT_TRUE(contains(logs, "credvaultd ready")) << "the daemon's logs were not captured";
  auto scan = [&](const std::string& file, bool logFile) {
    auto content = readFile(file);
    for (auto& s : sensitive_) {
      if (!logFile && s.size() < 10) continue;
      EXPECT_FALSE(contains(content, s)) << "'" << s << "' found in " << file;
    }
  };
  for (auto& f : daemon.logFiles()) scan(f, true);
  scan(daemon.dataFile(), false);
  if (!daemon.postgres().empty()) {
    auto rows = support::everyStoredByteOf(daemon.postgres().c_str());
    for (auto& s : sensitive_) {
      if (s.size() < 10) continue;
      EXPECT_FALSE(contains(rows, s)) << "'" << s << "' found in the PostgreSQL database";
    }
  }
  for (auto& f : files_) scan(f, false);
}

std::string readFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  auto out = readFd(fd);
  close(fd);
  return out;
}

void writeFile(const std::string& path, const std::string& content, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  KJ_REQUIRE(fd >= 0, "open", path, strerror(errno));
  KJ_SYSCALL(write(fd, content.data(), content.size()));
  KJ_SYSCALL(fchmod(fd, mode));
  close(fd);
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---- Daemon --------------------------------------------------------------------------------

bool onPostgres() {
  return support::testStoreIsPostgres();
}

Daemon::Daemon(std::string dir, uid_t runAsUid) : dir_(std::move(dir)), uid_(runAsUid) {
  writeFile(dir_ + "/empty.conf", "# no settings: everything comes from the command line\n", 0644);
  if (onPostgres() && uid_ == 0) {
    usePostgres(support::PostgresServer::instance().freshDatabase().cStr());
  }
}

void Daemon::usePostgres(const std::string& conninfo) {
  conninfo_ = conninfo;
}

Daemon::~Daemon() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
  if (notifyFd_ >= 0) close(notifyFd_);
}

void Daemon::spawn() {
  KJ_REQUIRE(pid_ <= 0, "the daemon is already running");
  ++starts_;
  auto log = dir_ + "/daemon-" + std::to_string(starts_) + ".log";
  logs_.push_back(log);
  current_ = log;
  int logFd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  KJ_REQUIRE(logFd >= 0, "open log", strerror(errno));
  // The audit trail, made here so the daemon can append to it whatever uid it runs as; it
  // is scanned for secrets with the logs.
  auto audit = dir_ + "/audit.jsonl";
  int auditFd = open(audit.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  KJ_REQUIRE(auditFd >= 0, "open audit log", strerror(errno));
  KJ_SYSCALL(fchown(auditFd, uid_, -1));
  close(auditFd);
  if (starts_ == 1) logs_.push_back(audit);

  // sd_notify target: READY=1 tells us the socket is listening.
  if (notifyFd_ >= 0) close(notifyFd_);
  auto notifyPath = dir_ + "/notify-" + std::to_string(starts_) + ".sock";
  notifyFd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  KJ_REQUIRE(notifyFd_ >= 0);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  KJ_REQUIRE(notifyPath.size() < sizeof(addr.sun_path));
  memcpy(addr.sun_path, notifyPath.data(), notifyPath.size());
  KJ_SYSCALL(bind(notifyFd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
  KJ_SYSCALL(chmod(notifyPath.c_str(), 0666));

  std::vector<std::string> args = {
      credvaultdPath(),
      "--config",
      dir_ + "/empty.conf",
      "--state-dir",
      stateDir(),
      "--socket",
      socket(),
      "--create-key",
      "--set",
      "password_ops_limit=1",
      "--set",
      "password_mem_limit=8192",
      "--set",
      "log_level=debug",
      "--set",
      "audit_log=" + dir_ + "/audit.jsonl",
  };
  if (!conninfo_.empty()) {
    args.insert(args.end(), {"--set", "storage=postgresql", "--set", "postgresql=" + conninfo_,
                             "--set", "postgresql_connections=2"});
  }
  for (auto& s : settings_) {
    args.push_back("--set");
    args.push_back(s);
  }
  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                                  "NOTIFY_SOCKET=" + notifyPath};
  env.insert(env.end(), env_.begin(), env_.end());
  auto argv = cArgs(args);
  auto envp = cArgs(env);
  auto path = credvaultdPath();
  int devNull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = fork();
  KJ_REQUIRE(pid >= 0, "fork", strerror(errno));
  if (pid == 0) {
    resetSignals();
    dup2(devNull, 0);
    dup2(logFd, 1);
    dup2(logFd, 2);
    becomeUid(uid_);
    execve(path.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  close(devNull);
  close(logFd);
  pid_ = pid;
}

bool Daemon::awaitReady(std::chrono::milliseconds timeout, int* exitStatus) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    struct pollfd pfd = {notifyFd_, POLLIN, 0};
    int n = poll(&pfd, 1, 20);
    if (n > 0) {
      char buf[4096];
      ssize_t len;
      while ((len = recv(notifyFd_, buf, sizeof(buf) - 1, 0)) > 0) {
        buf[len] = '\0';
        if (strstr(buf, "READY=1") != nullptr) return true;
      }
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      if (exitStatus != nullptr) *exitStatus = status;
      return false;
    }
  }
  ADD_FAILURE() << "credvaultd neither became ready nor exited in time";
  kill(pid_, SIGKILL);
  int status;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  if (exitStatus != nullptr) *exitStatus = status;
  return false;
}

void Daemon::start() {
  spawn();
  int status = 0;
  bool ready = awaitReady(std::chrono::seconds(20), &status);
  ASSERT_TRUE(ready) << "credvaultd exited during start (status " << status << "):\n" << lastLog();
}

int Daemon::startExpectingFailure() {
  spawn();
  int status = 0;
  bool ready = awaitReady(std::chrono::seconds(20), &status);
  EXPECT_FALSE(ready) << "credvaultd started although it should not have";
  if (ready) stop();
  return status;
}

void Daemon::terminate() {
  KJ_REQUIRE(pid_ > 0, "the daemon is not running");
  KJ_SYSCALL(kill(pid_, SIGTERM));
}

int Daemon::wait() {
  KJ_REQUIRE(pid_ > 0, "the daemon is not running");
  int status = waitWithDeadline(pid_, std::chrono::seconds(20));
  pid_ = -1;
  return status;
}

int Daemon::stop() {
  terminate();
  return wait();
}

// ---- clients -------------------------------------------------------------------------------

CtlResult runAs(uid_t uid, const std::vector<std::string>& argvIn, const std::string& input,
                const std::vector<std::string>& envIn) {
  int in = memFile("stdin", input);
  int out = memFile("stdout");
  int err = memFile("stderr");
  auto args = argvIn;
  auto env = envIn;
  env.push_back("PATH=/usr/bin:/bin");
  auto argv = cArgs(args);
  auto envp = cArgs(env);
  pid_t pid = fork();
  KJ_REQUIRE(pid >= 0, "fork", strerror(errno));
  if (pid == 0) {
    resetSignals();
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    becomeUid(uid);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  int status = waitWithDeadline(pid, std::chrono::seconds(30));
  CtlResult r;
  r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = readFd(out);
  r.err = readFd(err);
  close(in);
  close(out);
  close(err);
  return r;
}

CtlResult ctl(uid_t uid, const std::string& socket, const std::vector<std::string>& args,
              const std::string& input) {
  std::vector<std::string> argv = {credvaultctlPath(), "--socket", socket};
  argv.insert(argv.end(), args.begin(), args.end());
  return runAs(uid, argv, input, {});
}

std::string withClientAs(uid_t uid, const std::string& socket,
                         std::function<std::string(ipc::Connection&, kj::WaitScope&)> body) {
  int out = memFile("result");
  pid_t pid = fork();
  KJ_REQUIRE(pid >= 0, "fork", strerror(errno));
  if (pid == 0) {
    becomeUid(uid);
    std::string result;
    // A fresh thread: the parent's event loop is registered thread-locally in this one.
    std::thread t([&]() {
      try {
        auto io = kj::setupAsyncIo();
        auto conn = ipc::connect(io.provider->getNetwork(), socket.c_str()).wait(io.waitScope);
        result = body(*conn, io.waitScope);
      } catch (const kj::Exception& e) {
        result = std::string("EXCEPTION: ") + e.getDescription().cStr();
      } catch (const std::exception& e) { result = std::string("EXCEPTION: ") + e.what(); }
    });
    t.join();
    ssize_t n = write(out, result.data(), result.size());
    _exit(n == ssize_t(result.size()) ? 0 : 1);
  }
  int status = waitWithDeadline(pid, std::chrono::seconds(30));
  auto result = readFd(out);
  close(out);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return "CHILD FAILED (status " + std::to_string(status) + "): " + result;
  }
  return result;
}

}  // namespace credvault::integration
