// The daily expiry warning (daemon/expiry.h): which credentials it names, and that its log
// lines carry ids and keyed hashes, never values.

#include "daemon/expiry.h"
#include "rpc-fixture.h"

#include <stdio.h>
#include <unistd.h>

namespace credvault::daemon {
namespace {

using namespace testing;

constexpr int64_t DAY = 86400 * core::TICKS_PER_SECOND;

class Expiry : public RpcFixture {
 protected:
  Expiry() : RpcFixture(false) {}
  int64_t now = core::UNIX_EPOCH_TICKS + int64_t(1'800'000'000) * core::TICKS_PER_SECOND;

  void saveWithEnd(rpc::Session::Client s, kj::StringPtr pub, int64_t validTo, bool active = true) {
    auto req = s.saveRequest();
    req.setType("expiring");
    auto c = req.initCredential();
    c.setPublicValue(pub);
    c.setValidTo(validTo);
    c.setIsActive(active);
    c.setComment("comment-never-logged");
    auto r = req.send().wait(ws);
    ASSERT_FALSE(r.hasError()) << r.getError().getMessage().cStr();
  }
};

TEST_F(Expiry, NamesActiveCredentialsInTheWindowOrPastIt) {
  auto a = peerSession(ALICE_UID);
  saveWithEnd(a, "soon@example.com", now + 3 * DAY);
  saveWithEnd(a, "edge@example.com", now + 14 * DAY);
  saveWithEnd(a, "later@example.com", now + 15 * DAY);
  saveWithEnd(a, "gone@example.com", now - DAY);
  saveWithEnd(a, "off@example.com", now + DAY, false);  // inactive: nobody relies on it
  saveWithEnd(peerSession(BOB_UID), "bob-soon@example.com", now + DAY);
  auto found = findExpiring(d.vault, now, 14);
  std::map<std::string, std::string> got;
  for (auto& f : found) {
    EXPECT_EQ(f.type, "expiring");
    got[f.publicValueHmac.cStr()] =
        std::to_string(f.associateId) + (f.expired ? " expired" : " soon");
  }
  auto hash = [&](kj::StringPtr pub) { return std::string(d.vault.auditHash(pub).cStr()); };
  EXPECT_EQ(got.size(), 4u);
  EXPECT_EQ(got[hash("soon@example.com")], std::to_string(alice) + " soon");
  EXPECT_EQ(got[hash("edge@example.com")], std::to_string(alice) + " soon");
  EXPECT_EQ(got[hash("gone@example.com")], std::to_string(alice) + " expired");
  EXPECT_EQ(got[hash("bob-soon@example.com")], std::to_string(bob) + " soon");
  EXPECT_EQ(got.count(hash("later@example.com")), 0u);
  EXPECT_EQ(got.count(hash("off@example.com")), 0u);
  EXPECT_EQ(findExpiring(d.vault, now, 0).size(), 1u);  // only the one that has passed
}

TEST_F(Expiry, LogLinesCarryHashesNotValues) {
  saveWithEnd(peerSession(ALICE_UID), "soon@example.com", now + DAY);
  auto found = findExpiring(d.vault, now, 14);
  ASSERT_EQ(found.size(), 1u);
  // Capture stderr (not under journald, the log is one line there).
  fflush(stderr);
  int saved = dup(2);
  FILE* tmp = tmpfile();
  dup2(fileno(tmp), 2);
  logExpiring(found, 14);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(tmp);
  char buf[4096] = {};
  size_t n = fread(buf, 1, sizeof(buf) - 1, tmp);
  fclose(tmp);
  std::string line(buf, n);
  EXPECT_NE(line.find("expires within 14 days"), std::string::npos) << line;
  EXPECT_NE(line.find(d.vault.auditHash("soon@example.com").cStr()), std::string::npos) << line;
  EXPECT_EQ(line.find("soon@example.com"), std::string::npos) << line;
  EXPECT_EQ(line.find("comment-never-logged"), std::string::npos) << line;
}

TEST_F(Expiry, TheLoopRunsFirstAfterItsDelayAndThenEveryPeriod) {
  saveWithEnd(peerSession(ALICE_UID), "soon@example.com",
              core::UNIX_EPOCH_TICKS +
                  ((kj::systemPreciseCalendarClock().now() - kj::UNIX_EPOCH) / kj::SECONDS) *
                      core::TICKS_PER_SECOND +
                  DAY);
  fflush(stderr);
  int saved = dup(2);
  FILE* tmp = tmpfile();
  dup2(fileno(tmp), 2);
  auto warnings = [&]() {
    fflush(stderr);
    std::string all;
    char buf[4096];
    for (ssize_t n; (n = pread(fileno(tmp), buf, sizeof(buf), off_t(all.size()))) > 0;) {
      all.append(buf, size_t(n));
    }
    size_t count = 0;
    for (size_t at = 0; (at = all.find("expires within 14 days", at)) != std::string::npos; ++at) {
      ++count;
    }
    return count;
  };
  // Until the second run (the first comes at 10 ms, the second a period later). Waiting for
  // it, not for a fixed time, keeps a loaded host from failing the test.
  auto& timer = d.io.provider->getTimer();
  auto start = timer.now();
  kj::Duration took;
  {
    auto loop =
        expiryWarnings(timer, d.service.maintenance(), d.vault, kj::systemPreciseCalendarClock(),
                       14, 10 * kj::MILLISECONDS, 100 * kj::MILLISECONDS)
            .eagerlyEvaluate(nullptr);
    runUntil([&]() { return warnings() >= 2; });
    took = timer.now() - start;
  }
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  EXPECT_GE(warnings(), 2u);
  fclose(tmp);
  // The period holds: the second run comes no sooner than 100 ms after the start (the first
  // after 10 ms, the next a whole period later), so the loop does not scan back to back.
  EXPECT_GE(took, 100 * kj::MILLISECONDS);
}

}  // namespace
}  // namespace credvault::daemon
