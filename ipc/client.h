// credvault — the client library for local programs.
//
// Connects to credvaultd's Unix socket and hands out the bootstrap Vault capability. Every
// credential operation then goes through a Session obtained from it (see credvault.capnp).
// Thread-compatible: use a Connection from the thread whose event loop created it.

#pragma once

#include "base/ticks.h"
#include "ipc/credvault.capnp.h"
#include "buffered-stream.h"
#include "errors.h"

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

namespace credvault::ipc {

// Limits on what the client accepts from the daemon (a corrupted or hostile peer cannot
// make it allocate without bound).
constexpr uint64_t CLIENT_TRAVERSAL_LIMIT_WORDS = 64 * 1024 * 1024 / 8;

// For WaitScope::setBusyPollInterval in credvaultd and credvault-gateway. KJ reads a socket
// optimistically before asking epoll, and asks epoll only when its queue runs dry. Under load
// the queue never runs dry: connections whose next message is already there when they are
// read keep the loop busy, and connections waiting on epoll starve (measured: 46 of 64 HTTP
// connections waited 140 ms while the other 18 were served). Asking epoll every this many
// events gives every connection its turn within milliseconds (docs/performance.md).
constexpr unsigned BUSY_POLL_INTERVAL = 256;

class Connection {
 public:
  explicit Connection(kj::Own<kj::AsyncIoStream> stream);
  KJ_DISALLOW_COPY(Connection);

  rpc::Vault::Client vault() { return vault_; }
  // Resolves when the daemon closes the connection (or it breaks).
  kj::Promise<void> onDisconnect() { return network_.onDisconnect(); }

 private:
  kj::Own<BufferedStream> stream_;
  capnp::TwoPartyVatNetwork network_;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc_;
  rpc::Vault::Client vault_;
};

// Connects to the daemon's socket at `path`.
kj::Promise<kj::Own<Connection>> connect(kj::Network& network, kj::StringPtr path);

// The socket path to use: `explicitPath` if given, else $CREDVAULT_SOCKET, else the
// packaged default.
kj::String socketPath(kj::Maybe<kj::StringPtr> explicitPath);

// .NET ticks (100 ns since 0001-01-01) <-> text "YYYY-MM-DDTHH:MM:SS[.fffffff]" in UTC, for
// the clients of the native API: base/ticks.h, named here too.
using base::formatTicks;
using base::MAX_TICKS;
using base::parseTicks;
using base::TICKS_PER_SECOND;
using base::UNIX_EPOCH_TICKS;

}  // namespace credvault::ipc
