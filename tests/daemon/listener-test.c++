// The listener in-process: connections come from a receiver whose peers the test makes up
// (their uid and pid are what SO_PEERCRED would report), so the per-uid decisions are tested
// without root or other uids; one test listens on a real Unix socket to see the kernel's
// answer (the test's own uid) reach the daemon.

#include "tests/daemon/calls.h"
#include "tests/daemon/listener-fixture.h"
#include "daemon/log.h"
#include "tests/support/capture-stderr.h"

#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <capnp/rpc.capnp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace credvault::daemon {
namespace {

using testing::ALICE_UID;
using testing::BOB_UID;

constexpr uint32_t UNMAPPED_UID = 7777;

// The daemon's log lines must reach stderr, where a leak check reads them (see roles-test).
[[maybe_unused]] const bool NOT_UNDER_JOURNALD = (unsetenv("JOURNAL_STREAM"), true);

class ListenerTest : public testing::ListenerFixture {};

// A stream frame: segment 0 is `root` (a whole capnp message), then a second segment of
// `padWords` zero words that nothing points to. capnp counts both against its limit.
kj::Array<kj::byte> frameWithPadding(capnp::MessageBuilder& root, size_t padWords) {
  auto segments = root.getSegmentsForOutput();
  KJ_REQUIRE(segments.size() == 1);
  size_t rootWords = segments[0].size();
  auto out = kj::heapArray<kj::byte>(8 + 8 + (rootWords + padWords) * 8);
  memset(out.begin(), 0, out.size());
  auto put = [&](size_t at, uint32_t v) { memcpy(out.begin() + at, &v, 4); };
  put(0, 1);  // two segments
  put(4, rootWords);
  put(8, padWords);
  memcpy(out.begin() + 16, segments[0].begin(), rootWords * 8);
  return out;
}

// A Bootstrap message of `totalWords`, whose answer is a Return: proof that the frame was read.
kj::Array<kj::byte> bootstrapFrame(size_t totalWords) {
  capnp::MallocMessageBuilder message(16);
  message.initRoot<capnp::rpc::Message>().initBootstrap().setQuestionId(0);
  size_t rootWords = message.getSegmentsForOutput()[0].size();
  return frameWithPadding(message, totalWords - rootWords);
}

const std::string PEER = std::to_string(static_cast<int>(rpc::AuthMethod::PEER_CREDENTIALS));

TEST_F(ListenerTest, EachConnectionActsAsThePeerItsSocketNames) {
  EXPECT_EQ(whoami(dial(ALICE_UID, 77)), std::to_string(ALICE_UID) + "/77/alice/" + PEER);
  EXPECT_EQ(whoami(dial(BOB_UID, 78)), std::to_string(BOB_UID) + "/78/bob/" + PEER);
  // A uid mapped to no associate learns who it is, and gets no session.
  auto& stranger = dial(UNMAPPED_UID, 79);
  EXPECT_EQ(whoami(stranger).substr(0, 8), std::to_string(UNMAPPED_UID) + "/79/");
  EXPECT_EQ(sessionOf(stranger), "not-authenticated");
  // What alice's connection may read is alice's, whatever bob's connection holds.
  auto& aliceConn = dial(ALICE_UID);
  auto s = aliceConn.vault.sessionRequest().send().wait(ws).getSession();
  EXPECT_EQ(getAs(s, bob), "permission-denied");
  EXPECT_EQ(getAs(s, alice), std::string("ok:") + testing::ALICE_SECRET);
  EXPECT_EQ(d.service.connections, 4u);
}

TEST_F(ListenerTest, APeerWithoutCredentialsIsClosedAtOnce) {
  auto& c = dial(receiver->connectUnidentified());
  EXPECT_EQ(whoami(c), "disconnected");
  EXPECT_EQ(d.service.connections, 0u);
}

TEST_F(ListenerTest, ConnectionsAreCappedPerUidAndFreedWhenTheyClose) {
  for (size_t i = 0; i < core::MAX_CONNECTIONS_PER_UID; ++i) {
    ASSERT_NE(whoami(dial(BOB_UID)), "disconnected") << i;
  }
  EXPECT_EQ(whoami(dial(BOB_UID)), "disconnected") << "one past the per-uid cap";
  conns.pop_back();
  // Another uid is not held back by bob's connections.
  EXPECT_EQ(whoami(dial(ALICE_UID)).substr(0, 4), std::to_string(ALICE_UID));
  EXPECT_EQ(d.service.connections, core::MAX_CONNECTIONS_PER_UID + 1);
  // When one of bob's goes away, bob may connect again.
  conns.erase(conns.begin());
  settle(core::MAX_CONNECTIONS_PER_UID);
  ASSERT_EQ(d.service.connections, core::MAX_CONNECTIONS_PER_UID);
  EXPECT_NE(whoami(dial(BOB_UID)), "disconnected");
}

TEST_F(ListenerTest, AHeldSessionDiesWhenItsUidIsUnmappedAndAReconnectGetsNone) {
  auto& c = dial(ALICE_UID);
  auto s = c.vault.sessionRequest().send().wait(ws).getSession();
  EXPECT_EQ(getAs(s, alice), std::string("ok:") + testing::ALICE_SECRET);
  setAssociate(alice, [](rpc::AssociateUpdate::Builder u) { u.getUnixUid().setSet(-1); });
  EXPECT_EQ(getAs(s, alice), "not-authenticated");
  EXPECT_EQ(sessionOf(dial(ALICE_UID)), "not-authenticated");
}

TEST_F(ListenerTest, ARealUnixSocketReportsTheCallersOwnUidAndPid) {
  conns.clear();
  accepting = nullptr;
  listener = nullptr;
  auto path = d.dir / "credvaultd.sock";
  auto& network = d.io.provider->getNetwork();
  start(network.parseAddress(kj::str("unix:", path)).wait(ws)->listen());
  auto& c = dial(network.parseAddress(kj::str("unix:", path)).wait(ws)->connect().wait(ws));
  auto who = whoami(c);
  EXPECT_EQ(who.substr(0, who.find('/', who.find('/') + 1)),
            std::to_string(getuid()) + "/" + std::to_string(getpid()));
}

// A client that sends many saves at once and walks away after some are acknowledged (its
// connection closed with calls outstanding): every acknowledged save is stored, each with its
// own secret, nothing it did not send is, and the daemon goes on serving. Moved here from the
// root-only integration suite.
TEST_F(ListenerTest, AClientThatDisconnectsMidSaveLosesNothingAcknowledged) {
  setLogLevel(Level::DEBUG);
  KJ_DEFER(setLogLevel(Level::INFO));
  support::CaptureStderr logs;
  testing::LeakCheck leaks;
  constexpr int N = 400, K = 20;
  std::set<int> acked;
  {
    auto& conn = dial(0);
    auto s = conn.vault.sessionRequest().send().wait(ws).getSession();
    auto paf = kj::newPromiseAndFulfiller<void>();
    kj::Vector<kj::Promise<void>> pending;
    int completed = 0;
    bool done = false;
    for (int i = 0; i < N; i++) {
      auto req = s.saveRequest();
      req.setAssociateId(alice);
      req.setType("inflight-dc");
      testing::fill(req.initCredential(),
                    {"inflight-dc", "dc-" + std::to_string(i) + "@example.test",
                     "dc-secret-value-" + std::to_string(i)});
      pending.add(req.send()
                      .then(
                          [&, i](auto r) {
                            EXPECT_EQ(testing::errorOf(r), "ok");
                            if (!r.hasError()) acked.insert(i);
                            if ((acked.size() == K || ++completed == N) && !done) {
                              done = true;
                              paf.fulfiller->fulfill();
                            }
                          },
                          [&](kj::Exception&& e) {
                            ADD_FAILURE() << e.getDescription().cStr();
                            if (++completed == N && !done) {
                              done = true;
                              paf.fulfiller->fulfill();
                            }
                          })
                      .eagerlyEvaluate(nullptr));
    }
    paf.promise.wait(ws);
    // Walk away: drop every outstanding call and the connection.
    pending.clear();
    s = nullptr;
    conns.clear();
  }
  ASSERT_GE(acked.size(), size_t(K));
  for (int i = 0; i < N; i += 50) leaks.remember("dc-secret-value-" + std::to_string(i));

  auto& conn = dial(0);
  auto s = conn.vault.sessionRequest().send().wait(ws).getSession();
  auto req = s.getRequest();
  req.setAssociateId(alice);
  req.setType("inflight-dc");
  auto r = req.send().wait(ws);
  ASSERT_EQ(testing::errorOf(r), "ok");
  std::set<int> stored;
  for (auto c : r.getCredentials()) {
    std::string pub = c.getPublicValue().cStr();
    int i = std::stoi(pub.substr(3));
    EXPECT_EQ(std::string(c.getSecretValue().cStr()), "dc-secret-value-" + std::to_string(i));
    EXPECT_LT(i, N) << pub;
    stored.insert(i);
  }
  for (int i : acked) EXPECT_TRUE(stored.count(i)) << "acknowledged save " << i << " was lost";
  RecordProperty("acknowledged", std::to_string(acked.size()));
  RecordProperty("stored", std::to_string(stored.size()));
  EXPECT_LE(stored.size(), size_t(N));
  // The daemon goes on.
  EXPECT_EQ(testing::errorOf(conn.vault.statusRequest().send().wait(ws)), "ok");
  s = nullptr;
  conns.clear();
  leaks.check({(d.dir / "data.mdb").cStr(), (d.dir / "audit.jsonl").cStr()}, logs.text());
}

// The transport limit at its bound, in raw frames (moved here from the root-only isolation
// suite): a message of exactly MAX_TRANSPORT_MESSAGE_BYTES is read and answered; one word more
// closes that connection, and the listener goes on serving others.
TEST_F(ListenerTest, MessageOfExactlyTheTransportLimitIsReadAndOneWordMoreClosesTheConnection) {
  support::CaptureStderr logs;
  signal(SIGPIPE, SIG_IGN);  // the rest of the refused frame may meet a closed socket
  constexpr size_t LIMIT_WORDS = core::MAX_TRANSPORT_MESSAGE_BYTES / 8;
  auto& timer = d.io.provider->getTimer();
  {
    auto peer = receiver->connect(ALICE_UID);
    auto frame = bootstrapFrame(LIMIT_WORDS);
    peer->write(frame.begin(), frame.size()).wait(ws);
    kj::byte answer[8];
    // The Return began: the frame was read.
    EXPECT_EQ(peer->tryRead(answer, sizeof(answer), sizeof(answer))
                  .exclusiveJoin(timer.afterDelay(5 * kj::SECONDS).then([]() { return size_t(0); }))
                  .wait(ws),
              sizeof(answer));
  }
  {
    auto peer = receiver->connect(ALICE_UID);
    auto frame = bootstrapFrame(LIMIT_WORDS + 1);
    // Refused on the segment table; the write of the rest may fail.
    (void)kj::runCatchingExceptions([&]() { peer->write(frame.begin(), frame.size()).wait(ws); });
    // Closed (at once; within 10 s on a loaded host): end of stream or a reset, any answer
    // read and dropped.
    auto until = timer.now() + 10 * kj::SECONDS;
    kj::byte buffer[4096];
    bool closed = false;
    while (!closed && timer.now() < until) {
      size_t n = 1;
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                    n = peer->tryRead(buffer, 1, sizeof(buffer))
                            .exclusiveJoin(timer.atTime(until).then([]() { return size_t(1); }))
                            .wait(ws);
                  })) {
        (void)e;
        n = 0;  // reset
      }
      closed = n == 0;
    }
    EXPECT_TRUE(closed);
  }
  // The listener goes on serving.
  EXPECT_NE(whoami(dial(ALICE_UID)), "disconnected");
  EXPECT_NE(logs.text().find("RESULT=message-too-large"), std::string::npos) << logs.text();
}

// A silent connection is closed after the idle timeout (shortened here; the daemon's default is
// ten minutes), a call just before it keeps the connection, and the client can connect again.
// Moved here from the root-only isolation suite.
TEST_F(ListenerTest, IdleConnectionIsClosedAndAClientCanReconnect) {
  support::CaptureStderr logs;
  // The margin before the timeout is the wider one: a loaded host may be slow to make the call
  // that keeps the connection, never early to close it.
  constexpr int IDLE_MS = 1000, EARLY_MS = 700, LATE_MS = 300;
  transport.idleTimeout = IDLE_MS * kj::MILLISECONDS;
  restart();
  auto& timer = d.io.provider->getTimer();
  auto& c = dial(ALICE_UID);
  EXPECT_NE(whoami(c), "disconnected");
  // Under the idle timeout, a call keeps the connection.
  timer.afterDelay((IDLE_MS - EARLY_MS) * kj::MILLISECONDS).wait(ws);
  EXPECT_NE(whoami(c), "disconnected");
  // Past it, the connection has been closed.
  timer.afterDelay((IDLE_MS + LATE_MS) * kj::MILLISECONDS).wait(ws);
  EXPECT_EQ(whoami(c), "disconnected");
  EXPECT_NE(logs.text().find("idle-timeout"), std::string::npos) << logs.text();
  EXPECT_NE(whoami(dial(ALICE_UID)), "disconnected");
}

}  // namespace
}  // namespace credvault::daemon
