// credvault — the client library for local programs.
//
// Connects to credvaultd's Unix socket and hands out the bootstrap Vault capability. Every
// credential operation then goes through a Session obtained from it (see credvault.capnp).
// Thread-compatible: use a Connection from the thread whose event loop created it.

#pragma once

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

// .NET ticks (100 ns since 0001-01-01) <-> text "YYYY-MM-DDTHH:MM:SS[.fffffff]" in UTC.
// 0 is DateTime.MinValue (open-ended).
constexpr int64_t TICKS_PER_SECOND = 10'000'000;
constexpr int64_t UNIX_EPOCH_TICKS = 621'355'968'000'000'000;
constexpr int64_t MAX_TICKS = 3'155'378'975'999'999'999;
kj::String formatTicks(int64_t ticks);
// Accepts "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS" with optional fraction and optional "Z" or
// "+HH:MM"/"-HH:MM" offset (converted to UTC). Returns null when malformed or out of range.
kj::Maybe<int64_t> parseTicks(kj::StringPtr text);

}  // namespace credvault::ipc
