#include "terminal.h"

#include <kj/debug.h>
#include <kj/vector.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

namespace credvault::ctl {

namespace {

void wipeVector(kj::Vector<char>& v) {
  if (v.capacity() > 0) explicit_bzero(v.begin(), v.capacity());
}

// The terminal settings to put back when a signal ends us mid-prompt (the one global: a
// handler has nowhere else to look).
struct termios savedTerminal;
volatile sig_atomic_t echoOff = 0;

void restoreTerminal(int sig) {
  if (echoOff) tcsetattr(STDIN_FILENO, TCSAFLUSH, &savedTerminal);
  signal(sig, SIG_DFL);
  raise(sig);
}

kj::String askOnce(kj::StringPtr prompt, size_t limit) {
  struct termios t;
  if (tcgetattr(STDIN_FILENO, &t) != 0) {
    throw ReadFailed{kj::str("cannot read the terminal: ", strerror(errno))};
  }
  savedTerminal = t;
  struct sigaction act, oldInt, oldTerm, oldHup;
  memset(&act, 0, sizeof(act));
  act.sa_handler = restoreTerminal;
  sigaction(SIGINT, &act, &oldInt);
  sigaction(SIGTERM, &act, &oldTerm);
  sigaction(SIGHUP, &act, &oldHup);
  t.c_lflag &= ~(ECHO | ECHONL);
  t.c_lflag |= ICANON;
  echoOff = 1;
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
  // The prompt only once echo is off: whoever answers it cannot be echoed.
  fputs(prompt.cStr(), stderr);
  fflush(stderr);
  KJ_DEFER({
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &savedTerminal);
    echoOff = 0;
    sigaction(SIGINT, &oldInt, nullptr);
    sigaction(SIGTERM, &oldTerm, nullptr);
    sigaction(SIGHUP, &oldHup, nullptr);
    fputc('\n', stderr);
  });
  KJ_IF_MAYBE(line, readLine(STDIN_FILENO, limit)) { return kj::mv(*line); }
  throw ReadFailed{kj::str("no input")};
}

}  // namespace

void wipeString(kj::String& s) {
  if (s.size() > 0) explicit_bzero(s.begin(), s.size());
}

bool stdinIsTerminal() {
  return isatty(STDIN_FILENO);
}

bool stdoutIsTerminal() {
  return isatty(STDOUT_FILENO);
}

kj::String readSecret(int fd, size_t limit) {
  kj::Vector<char> buf(4096);
  KJ_DEFER(wipeVector(buf));
  char chunk[4096];
  KJ_DEFER(explicit_bzero(chunk, sizeof(chunk)));
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw ReadFailed{kj::str("cannot read the secret: ", strerror(errno))};
    }
    if (n == 0) break;
    if (buf.size() + n > limit + 2) throw TooLong{};
    if (buf.size() + n > buf.capacity()) {
      kj::Vector<char> bigger(kj::max(buf.capacity() * 2, buf.size() + n));
      bigger.addAll(buf);
      wipeVector(buf);
      buf = kj::mv(bigger);
    }
    buf.addAll(chunk, chunk + n);
  }
  size_t size = buf.size();
  if (size > 0 && buf[size - 1] == '\n') --size;
  if (size > 0 && buf[size - 1] == '\r') --size;
  if (size > limit) throw TooLong{};
  return kj::heapString(buf.begin(), size);
}

kj::Maybe<kj::String> readLine(int fd, size_t limit) {
  kj::Vector<char> buf(256);
  KJ_DEFER(wipeVector(buf));
  bool any = false;
  for (;;) {
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw ReadFailed{kj::str("cannot read: ", strerror(errno))};
    }
    if (n == 0) break;
    any = true;
    if (c == '\n') break;
    if (buf.size() >= limit) throw TooLong{};
    if (buf.size() == buf.capacity()) {
      kj::Vector<char> bigger(buf.capacity() * 2);
      bigger.addAll(buf);
      wipeVector(buf);
      buf = kj::mv(bigger);
    }
    buf.add(c);
  }
  if (!any) return nullptr;
  size_t size = buf.size();
  if (size > 0 && buf[size - 1] == '\r') --size;
  return kj::heapString(buf.begin(), size);
}

kj::String promptSecret(kj::StringPtr prompt, bool confirm, size_t limit) {
  for (int attempt = 0; attempt < 3; attempt++) {
    auto first = askOnce(kj::str(prompt, ": "), limit);
    if (!confirm) return first;
    auto second = askOnce("Again, to confirm: ", limit);
    KJ_DEFER(wipeString(second));
    if (first.size() == second.size() &&
        (first.size() == 0 || memcmp(first.begin(), second.begin(), first.size()) == 0)) {
      return first;
    }
    wipeString(first);
    fputs("credvaultctl: the two entries differ; try again\n", stderr);
  }
  throw ReadFailed{kj::str("the entries differed three times")};
}

}  // namespace credvault::ctl
