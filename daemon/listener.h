// credvaultd — accepting connections.
//
// Each accepted stream gets its own TwoPartyVatNetwork and RpcSystem whose bootstrap is a
// Vault capability bound to that stream's peer credentials (SO_PEERCRED via KJ's
// LocalPeerIdentity). The network runs over an ipc::BufferedStream (fewer system calls per
// message), put in place after the credentials are taken. Connections are capped per uid and
// in total; past the cap a connection is closed at once. The transport refuses messages past
// TRANSPORT_LIMIT_BYTES by closing the connection; smaller oversized requests get a typed
// error per call.

#pragma once

#include "rpc-server.h"
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/map.h>

namespace credvault::daemon {

constexpr uint64_t TRANSPORT_LIMIT_BYTES = 16 << 20;

class Listener final : private kj::TaskSet::ErrorHandler {
 public:
  Listener(Service& service, kj::Own<kj::ConnectionReceiver> receiver);
  ~Listener() noexcept(false);
  KJ_DISALLOW_COPY(Listener);

  // Accepts until the listener is destroyed.
  kj::Promise<void> run();

 private:
  struct Connection;
  Service& service_;
  kj::Own<kj::ConnectionReceiver> receiver_;
  kj::HashMap<uint32_t, uint32_t> perUid_;
  kj::TaskSet tasks_;

  void accept(kj::AuthenticatedStream stream);
  void taskFailed(kj::Exception&& exception) override;
};

}  // namespace credvault::daemon
