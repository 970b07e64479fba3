// The daemon's log: client text is escaped and bounded; storage failures are rate-limited.

#include "daemon/log.h"
#include "daemon/store-health.h"
#include "tests/support/clock.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/function.h>
#include <algorithm>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <string>

namespace credvault::daemon {
namespace {

std::string esc(std::string s, size_t max = 1000) {
  return escapeForLog(kj::arrayPtr(s.data(), s.size()), max).cStr();
}

TEST(EscapeForLog, KeepsPrintableUtf8) {
  EXPECT_EQ(esc("save failed: associate 7"), "save failed: associate 7");
  EXPECT_EQ(esc("Grüße, 東京 🙂"), "Grüße, 東京 🙂");
}

TEST(EscapeForLog, EscapesControlsBackslashesAndBytesThatAreNotUtf8) {
  EXPECT_EQ(esc(std::string("a\nb\rc\0d\x1b[31m\x7f", 13)), "a\\x0ab\\x0dc\\x00d\\x1b[31m\\x7f");
  EXPECT_EQ(esc("C:\\path"), "C:\\\\path");  // a literal \x00 in the input cannot pass as ours
  EXPECT_EQ(esc("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(esc("\xc3"), "\\xc3");                    // cut sequence
  EXPECT_EQ(esc("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(esc("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(esc("\xc2\x9b"), "\\xc2\\x9b");           // C1 CSI
}

TEST(EscapeForLog, EscapesCharactersThatReorderOrBreakWhatTheOperatorSees) {
  EXPECT_EQ(esc("imap\xe2\x80\xaegpj.exe"), "imap\\xe2\\x80\\xaegpj.exe");  // U+202E RLO
  EXPECT_EQ(esc("a\xe2\x81\xa6"
                "b"),
            "a\\xe2\\x81\\xa6b");  // U+2066 LRI
  EXPECT_EQ(esc("a\xe2\x80\xa8"
                "b"),
            "a\\xe2\\x80\\xa8b");                  // U+2028 LS
  EXPECT_EQ(esc("\xe2\x80\x99"), "\xe2\x80\x99");  // U+2019, an ordinary quote, stays
}

TEST(EscapeForLog, BoundsTheLength) {
  auto out = esc(std::string(10000, 'a'), 100);
  EXPECT_EQ(out, std::string(100, 'a') + "...[9900 bytes cut]");
  // Never cuts a character in two.
  out = esc("ééé", 3);
  EXPECT_EQ(out, "éé...[2 bytes cut]");
}

using support::FakeClock;

// Runs `body` with stderr going to a file; returns what was written.
std::string captureStderr(kj::FunctionParam<void()> body) {
  char path[] = "/tmp/credvault-log-test.XXXXXX";
  int fd = mkstemp(path);
  KJ_REQUIRE(fd >= 0);
  unlink(path);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  body();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string out;
  char buf[4096];
  ssize_t n;
  lseek(fd, 0, SEEK_SET);
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

size_t lines(const std::string& s) {
  return std::count(s.begin(), s.end(), '\n');
}

TEST(StoreHealth, LogsTheFirstFailureThenACountPerIntervalAndRecovers) {
  FakeClock clock;
  StoreHealth health(clock, clock.monotonic(), 10 * kj::SECONDS);
  EXPECT_FALSE(health.snapshot().failing);
  auto out = captureStderr([&]() {
    // 20,000 refused saves over 25 s (the issue's 124,329 lines in 25 s).
    for (int i = 0; i < 20000; ++i) {
      if (i > 0) clock.advance(1250 * kj::MICROSECONDS);
      health.failed("no space left on the vault's file system; free some and retry");
    }
  });
  EXPECT_EQ(lines(out), 3u) << out;  // the first, then one per 10 s
  EXPECT_NE(out.find("storage failure: no space"), std::string::npos) << out;
  EXPECT_NE(out.find("storage still failing: "), std::string::npos) << out;
  auto snap = health.snapshot();
  EXPECT_TRUE(snap.failing);
  EXPECT_EQ(snap.failures, 20000u);
  EXPECT_EQ(snap.failingSince, kj::UNIX_EPOCH + 1700000000 * kj::SECONDS);

  out = captureStderr([&]() {
    health.succeeded();
    health.succeeded();
  });
  EXPECT_EQ(lines(out), 1u) << out;
  EXPECT_NE(out.find("storage works again"), std::string::npos) << out;
  EXPECT_FALSE(health.snapshot().failing);

  // A new spell is logged at once again.
  out = captureStderr([&]() { health.failed("I/O error on the vault's file system"); });
  EXPECT_EQ(lines(out), 1u) << out;
}

TEST(Log, ClientTextCannotForgeALine) {
  auto out = captureStderr([&]() {
    logf(Level::ERROR, "call failed: bad message \n<3>credvaultd: forged",
         LogField{"FIELD", kj::str("x\ny")});
  });
  EXPECT_EQ(lines(out), 1u) << out;
  EXPECT_NE(out.find("\\x0a<3>credvaultd: forged"), std::string::npos) << out;
  EXPECT_NE(out.find("FIELD=x\\x0ay"), std::string::npos) << out;
}

}  // namespace
}  // namespace credvault::daemon
