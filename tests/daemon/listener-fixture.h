// The daemon's listener in-process, for its tests: the real Listener over the real Service
// (rpc-fixture.h), accepting from a receiver whose peers the test makes up (their uid and pid
// are what SO_PEERCRED would report; tests/support/fake-peer.h). Each connection gets what a
// connection to credvaultd gets: the transport limit, the reader's traversal and nesting
// limits and the transport budget, so requests meet the same checks in the same order.

#pragma once

#include "daemon/listener.h"
#include "tests/daemon/rpc-fixture.h"
#include "tests/support/fake-peer.h"

#include <capnp/rpc-twoparty.h>
#include <gtest/gtest.h>
#include <memory>
#include <string>
#include <vector>

namespace credvault::daemon::testing {

class ListenerFixture : public RpcFixture {
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
  // What start() gives the listener: the daemon's defaults unless a test shortens them.
  TransportOptions transport;
  void start(kj::Own<kj::ConnectionReceiver> r) {
    listener =
        std::make_unique<Listener>(d.service, kj::mv(r), d.io.provider->getTimer(), transport);
    accepting = std::make_unique<kj::Promise<void>>(listener->run().eagerlyEvaluate(
        [](kj::Exception&& e) { ADD_FAILURE() << "accepting failed: " << kj::str(e).cStr(); }));
  }
  // Stops the listener (and its connections) and starts it again on a new receiver with
  // `transport` as it is now.
  void restart() {
    conns.clear();
    accepting = nullptr;
    listener = nullptr;
    auto r = kj::heap<support::FakePeerReceiver>(*d.io.provider);
    receiver = r.get();
    start(kj::mv(r));
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

}  // namespace credvault::daemon::testing
