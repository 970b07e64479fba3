// Connections from peers a test makes up, for code that accepts from a kj::ConnectionReceiver
// and reads the peer's credentials (the daemon's listener). Each connect() makes a real socket
// pair: the test keeps one end, and the other is handed to acceptAuthenticated() with the uid
// and pid the test chose as its kj::LocalPeerIdentity, which is what KJ reports from
// SO_PEERCRED on a real Unix socket. So the listener's per-uid decisions can be tested without
// root and without other uids, the way capnp's rpc-twoparty-test makes its peers. KJ-only.

#pragma once

#include <kj/async-io.h>
#include <kj/debug.h>
#include <deque>

namespace credvault::support {

class FakePeerReceiver final : public kj::ConnectionReceiver {
 public:
  explicit FakePeerReceiver(kj::AsyncIoProvider& provider) : provider_(provider) {}

  // A peer whose socket credentials say `uid` and `pid`; returns the peer's end.
  kj::Own<kj::AsyncIoStream> connect(uint32_t uid, int pid = 4242) {
    kj::LocalPeerIdentity::Credentials creds;
    creds.uid = uid;
    creds.pid = pid;
    return connectAs(kj::LocalPeerIdentity::newInstance(creds));
  }
  // A peer the kernel could not identify (no SO_PEERCRED answer).
  kj::Own<kj::AsyncIoStream> connectUnidentified() {
    return connectAs(kj::UnknownPeerIdentity::newInstance());
  }

  // Connections made and not yet accepted.
  size_t pending() const { return ready_.size(); }

  kj::Promise<kj::AuthenticatedStream> acceptAuthenticated() override {
    if (!ready_.empty()) {
      auto next = kj::mv(ready_.front());
      ready_.pop_front();
      return kj::mv(next);
    }
    auto paf = kj::newPromiseAndFulfiller<kj::AuthenticatedStream>();
    waiting_ = kj::mv(paf.fulfiller);
    return kj::mv(paf.promise);
  }
  kj::Promise<kj::Own<kj::AsyncIoStream>> accept() override {
    return acceptAuthenticated().then([](kj::AuthenticatedStream s) { return kj::mv(s.stream); });
  }
  uint getPort() override { return 0; }

 private:
  kj::AsyncIoProvider& provider_;
  std::deque<kj::AuthenticatedStream> ready_;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<kj::AuthenticatedStream>>> waiting_;

  kj::Own<kj::AsyncIoStream> connectAs(kj::Own<kj::PeerIdentity> identity) {
    auto pipe = provider_.newTwoWayPipe();
    kj::AuthenticatedStream accepted{kj::mv(pipe.ends[0]), kj::mv(identity)};
    KJ_IF_MAYBE(f, waiting_) {
      auto fulfiller = kj::mv(*f);
      waiting_ = nullptr;
      fulfiller->fulfill(kj::mv(accepted));
    } else {
      ready_.push_back(kj::mv(accepted));
    }
    return kj::mv(pipe.ends[1]);
  }
};

}  // namespace credvault::support
