#include "verify.h"

#include "store/env.h"
#include <kj/debug.h>
#include <kj/vector.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

namespace credvault::daemon {

namespace {

void writeLine(int fd, kj::StringPtr line) {
  auto text = kj::str(line, "\n");
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.begin() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += n;
  }
}

// One line of text without line breaks (exception text may hold several).
kj::String oneLine(kj::StringPtr text) {
  auto out = kj::heapString(text);
  for (auto& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

[[noreturn]] void child(int fd, kj::StringPtr dir, const crypto::Secret& masterKey) {
  int status = 1;
  kj::Own<store::Environment> env;
  kj::Own<core::Vault> vault;
  // Opening: a wrong master key or an unreadable file is not a verdict on the data; LMDB's
  // and the store's findings ("damaged") are.
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                store::Options options;
                options.readOnly = true;
                env = kj::heap<store::Environment>(dir, options);
                vault = kj::heap<core::Vault>(*env, crypto::Secret::copyOf(masterKey.reveal()),
                                              kj::systemPreciseCalendarClock());
              })) {
    if (core::isIntegrityFailure(*e)) {
      writeLine(fd, kj::str("fail ", oneLine(core::integrityMessage(*e))));
      _exit(1);
    }
    auto d = e->getDescription();
    bool damage = false;
    for (auto word : {"damaged", "LMDB found", "MDB_INVALID"}) {
      if (strstr(d.cStr(), word) != nullptr) damage = true;
    }
    writeLine(fd, kj::str(damage ? "fail " : "error ", oneLine(d)));
    _exit(1);
  }
  // Walking: whatever goes wrong now is about the data.
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                auto r = vault->verify(
                    [&](kj::StringPtr table) { writeLine(fd, kj::str("table ", table)); });
                writeLine(fd, kj::str("ok ", r.tables, " ", r.entries, " ", r.associates, " ",
                                      r.credentials));
                status = 0;
              })) {
    writeLine(fd, kj::str("fail ", oneLine(core::isIntegrityFailure(*e) ? core::integrityMessage(*e)
                                                                        : e->getDescription())));
  }
  _exit(status);
}

}  // namespace

VerifyResult verifyInChild(kj::StringPtr dir, const crypto::Secret& masterKey) {
  auto started = kj::systemPreciseMonotonicClock().now();
  int fds[2];
  KJ_SYSCALL(pipe2(fds, O_CLOEXEC));
  pid_t pid;
  KJ_SYSCALL(pid = fork());
  if (pid == 0) {
    close(fds[0]);
    // LMDB reports a failed assertion on stderr before it aborts: the parent quotes it.
    dup2(fds[1], STDERR_FILENO);
    // The child's death by a signal is the expected way a damaged page shows; no core file
    // (RLIMIT_CORE is 0 already) and the default action, whatever the parent set.
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    signal(SIGABRT, SIG_DFL);
    child(fds[1], dir, masterKey);
  }
  close(fds[1]);
  kj::Vector<char> output;
  {
    KJ_DEFER(close(fds[0]));
    char buf[4096];
    for (;;) {
      ssize_t n = read(fds[0], buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      output.addAll(kj::ArrayPtr<const char>(buf, n));
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) { KJ_REQUIRE(errno == EINTR, "waitpid", strerror(errno)); }
  VerifyResult result;
  result.took = kj::systemPreciseMonotonicClock().now() - started;
  // The last table named and the last line.
  kj::String table = kj::str("(before the first table)");
  kj::String last;
  kj::String other;  // the last line that is not ours (LMDB's assertion text)
  auto text = kj::str(output.asPtr());
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n') continue;
    auto line = kj::str(text.slice(start, i));
    start = i + 1;
    if (line.startsWith("table ")) {
      table = kj::str(line.slice(6));
    } else if (!line.startsWith("ok ") && !line.startsWith("fail ") && !line.startsWith("error ")) {
      other = kj::mv(line);
      continue;
    }
    last = kj::mv(line);
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    result.message =
        kj::str("database damaged: verification crashed (", strsignal(sig), ") reading table ",
                table, "; restore data.mdb from a backup (docs/operations.md)");
    return result;
  }
  if (last.startsWith("fail ")) {
    auto what = last.slice(5);
    result.message = strstr(what.cStr(), "restore") != nullptr
                         ? kj::str("database damaged: ", what)
                         : kj::str("database damaged: ", what, " (table ", table,
                                   "); restore data.mdb from a backup (docs/operations.md)");
    return result;
  }
  if (last.startsWith("error ")) {
    result.damaged = false;
    result.message = kj::str(last.slice(6));
    return result;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && last.startsWith("ok ")) {
    unsigned long long v[4] = {};
    if (sscanf(last.cStr() + 3, "%llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3]) == 4) {
      result.ok = true;
      result.report.tables = v[0];
      result.report.entries = v[1];
      result.report.associates = v[2];
      result.report.credentials = v[3];
      result.message =
          kj::str("verified ", v[3], " credentials of ", v[2], " associates (", v[1],
                  " entries in ", v[0], " tables) in ", result.took / kj::MILLISECONDS, " ms");
      return result;
    }
  }
  result.message =
      kj::str("database damaged: verification ended without a result (status ", status,
              ") in table ", table, "; restore data.mdb from a backup (docs/operations.md)");
  return result;
}

VerifyResult verifyInProcess(const core::Vault& vault) {
  VerifyResult result;
  auto started = kj::systemPreciseMonotonicClock().now();
  kj::String table = kj::str("(before the first table)");
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                result.report = vault.verify([&](kj::StringPtr t) { table = kj::str(t); });
                result.ok = true;
              })) {
    // The store's failures (the server went away) are not a verdict on the data.
    result.damaged = !store::isStorageFailure(*e);
    auto what = core::isIntegrityFailure(*e) ? core::integrityMessage(*e) : e->getDescription();
    result.message =
        kj::str(result.damaged ? "database damaged: " : "", oneLine(what), " (table ", table, ")");
  }
  result.took = kj::systemPreciseMonotonicClock().now() - started;
  if (result.ok) {
    auto& r = result.report;
    result.message = kj::str("verified ", r.credentials, " credentials of ", r.associates,
                             " associates (", r.entries, " entries in ", r.tables, " tables) in ",
                             result.took / kj::MILLISECONDS, " ms");
  }
  return result;
}

}  // namespace credvault::daemon
