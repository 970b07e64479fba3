// credvaultd — accepting connections.
//
// Each accepted stream gets its own TwoPartyVatNetwork and RpcSystem whose bootstrap is a
// Vault capability bound to that stream's peer credentials (SO_PEERCRED via KJ's
// LocalPeerIdentity). The network runs over an ipc::BufferedStream (fewer system calls per
// message), put in place after the credentials are taken. Connections are capped per uid and
// in total; past the cap a connection is closed at once. The transport refuses messages past
// TRANSPORT_LIMIT_BYTES by closing the connection; smaller oversized requests get a typed
// error per call. Each connection has a transport budget (TransportOptions, from the
// configuration; docs/limits.md): a message must arrive whole within a short time, a silent
// connection is closed after the idle timeout, and answers waiting to be written are capped —
// past the cap the connection's requests are not read until its peer reads its answers, and a
// peer that reads nothing for the write timeout is disconnected.

#pragma once

#include "rpc-server.h"
#include "core/limits.h"
#include "ipc/buffered-stream.h"
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/map.h>
#include <kj/vector.h>
#include <kj/io.h>
#include <unordered_map>
#include <vector>

namespace credvault::daemon {

constexpr uint64_t TRANSPORT_LIMIT_BYTES = core::MAX_TRANSPORT_MESSAGE_BYTES;

using TransportOptions = ipc::BufferedStream::Limits;

class Listener final : private kj::TaskSet::ErrorHandler {
 public:
  // `timer` times every connection's limits; it must outlive the listener.
  Listener(Service& service, kj::Own<kj::ConnectionReceiver> receiver, kj::Timer& timer,
           TransportOptions options = TransportOptions());
  ~Listener() noexcept(false);
  KJ_DISALLOW_COPY(Listener);

  // Accepts until the listener is destroyed or stopAccepting() is called.
  kj::Promise<void> run();

  // Graceful stop, step 1: closes the listening socket (cancel run()'s promise first). New
  // clients queue at the socket for the next daemon (socket activation) or are refused.
  void stopAccepting() { receiver_ = nullptr; }
  // Step 2: resolves true once no call is in flight (Service::inFlight) and every connection
  // has written all its answers, or false at `deadline`. Connections stay open meanwhile.
  kj::Promise<bool> drain(kj::TimePoint deadline);
  // Step 3: ends each connection's sending side (the peer reads every answer, then EOF) and
  // waits for the peers to close, until `deadline`. Closing outright would let a peer's next
  // write fail first (EPIPE), and a client library then drops the answers it has read but not
  // yet handed out: a stored save would look lost to its client.
  kj::Promise<void> closeGracefully(kj::TimePoint deadline);

 private:
  struct Connection;
  Service& service_;
  kj::Own<kj::ConnectionReceiver> receiver_;
  kj::Timer& timer_;
  TransportOptions options_;
  kj::HashMap<uint32_t, uint32_t> perUid_;
  std::unordered_map<uint32_t, std::vector<Connection*>> byUid_;  // for answerBytesOf
  kj::TaskSet tasks_;
  kj::Vector<kj::AutoCloseFd> lingering_;  // closeGracefully(): sockets kept until peers hang up

  void accept(kj::AuthenticatedStream stream);
  bool drained();
  kj::Promise<void> waitForPeers(kj::TimePoint deadline);
  void taskFailed(kj::Exception&& exception) override;
};

}  // namespace credvault::daemon
