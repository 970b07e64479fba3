// credvaultd — the process around the service: hardening and systemd integration.

#pragma once

#include <kj/async-io.h>
#include <kj/string.h>

namespace credvault::daemon {

// No core dumps, no ptrace attach by same-uid processes, private file modes.
void hardenProcess();

// The listening socket handed over by systemd (LISTEN_FDS), if any.
kj::Maybe<int> socketFromSystemd();

// Binds a fresh Unix socket at `path` (replacing a stale one) with `mode`.
kj::Own<kj::ConnectionReceiver> bindUnixSocket(kj::LowLevelAsyncIoProvider& io, kj::StringPtr path,
                                               uint32_t mode);

// Which file a socket path names, to remove it at stop only if it is still the one we bound.
struct SocketIdentity {
  uint64_t device;
  uint64_t inode;
};
kj::Maybe<SocketIdentity> socketIdentity(kj::StringPtr path);
// Unlinks `path` if it is still the socket `id` (a clean stop; errors are ignored).
void removeSocketIf(kj::StringPtr path, SocketIdentity id);

void notify(kj::StringPtr state);  // sd_notify; a no-op outside systemd

// Resolves every half watchdog period forever (WATCHDOG=1); never resolves if disabled.
kj::Promise<void> watchdogLoop(kj::Timer& timer);

}  // namespace credvault::daemon
