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

void notify(kj::StringPtr state);  // sd_notify; a no-op outside systemd

// Resolves every half watchdog period forever (WATCHDOG=1); never resolves if disabled.
kj::Promise<void> watchdogLoop(kj::Timer& timer);

}  // namespace credvault::daemon
