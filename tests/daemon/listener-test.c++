// The listener in-process: connections come from a receiver whose peers the test makes up
// (their uid and pid are what SO_PEERCRED would report), so the per-uid decisions are tested
// without root or other uids; one test listens on a real Unix socket to see the kernel's
// answer (the test's own uid) reach the daemon.

#include "daemon/listener.h"
#include "tests/daemon/rpc-fixture.h"
#include "tests/support/fake-peer.h"

#include <capnp/rpc-twoparty.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <memory>
#include <string>
#include <vector>

namespace credvault::daemon {
namespace {

using testing::ALICE_UID;
using testing::BOB_UID;

constexpr uint32_t UNMAPPED_UID = 7777;

class ListenerTest : public testing::RpcFixture {
 protected:
  // One client connection through the listener.
  struct Conn {
    explicit Conn(kj::Own<kj::AsyncIoStream> s)
        : stream(kj::mv(s)), client(*stream), vault(client.bootstrap().castAs<rpc::Vault>()) {}
    kj::Own<kj::AsyncIoStream> stream;
    capnp::TwoPartyClient client;
    rpc::Vault::Client vault;
  };

  support::FakePeerReceiver* receiver = nullptr;
  std::unique_ptr<Listener> listener;
  // Pointers: the fixture's destructor must stay noexcept (KJ's are not).
  std::unique_ptr<kj::Promise<void>> accepting;
  std::vector<std::unique_ptr<Conn>> conns;

  void SetUp() override {
    RpcFixture::SetUp();
    auto r = kj::heap<support::FakePeerReceiver>(*d.io.provider);
    receiver = r.get();
    start(kj::mv(r));
  }
  void start(kj::Own<kj::ConnectionReceiver> r) {
    listener = std::make_unique<Listener>(d.service, kj::mv(r), d.io.provider->getTimer());
    accepting = std::make_unique<kj::Promise<void>>(listener->run().eagerlyEvaluate(
        [](kj::Exception&& e) { ADD_FAILURE() << "accepting failed: " << kj::str(e).cStr(); }));
  }
  void TearDown() override {
    conns.clear();
    accepting = nullptr;
    listener = nullptr;
    RpcFixture::TearDown();
  }

  Conn& dial(kj::Own<kj::AsyncIoStream> stream) {
    conns.push_back(std::make_unique<Conn>(kj::mv(stream)));
    return *conns.back();
  }
  Conn& dial(uint32_t uid, int pid = 4242) { return dial(receiver->connect(uid, pid)); }

  // "uid/pid/name/method" as the daemon sees the caller, the error code's name, or
  // "disconnected" when the connection was closed.
  std::string whoami(Conn& c) {
    std::string out;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                  auto r = c.vault.whoamiRequest().send().wait(ws);
                  if (r.hasError()) {
                    out = ipc::errorCodeName(r.getError().getCode()).cStr();
                    return;
                  }
                  auto p = r.getPrincipal();
                  out = kj::str(p.getUid(), "/", p.getPid(), "/", p.getName(), "/",
                                static_cast<int>(p.getMethod()))
                            .cStr();
                })) {
      out = e->getType() == kj::Exception::Type::DISCONNECTED ? "disconnected" : kj::str(*e).cStr();
    }
    return out;
  }
  std::string sessionOf(Conn& c) {
    auto r = c.vault.sessionRequest().send().wait(ws);
    return r.hasError() ? ipc::errorCodeName(r.getError().getCode()).cStr() : "ok";
  }
  // Runs the event loop until the listener has seen `n` connections close.
  void settle(uint32_t connections) {
    for (int i = 0; i < 1000 && d.service.connections != connections; ++i) {
      d.io.provider->getTimer().afterDelay(1 * kj::MILLISECONDS).wait(ws);
    }
  }
};

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

}  // namespace
}  // namespace credvault::daemon
