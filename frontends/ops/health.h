// credvault-gateway — GET /healthz: whether the gateway can serve, for load balancers,
// systemd and monitoring. No authentication, and nothing about the vault's content.
//
// 200 when the daemon answers Vault.health within HEALTH_DEADLINE, 503 otherwise; the body
// is a small JSON object: {"status": "ok"|"unavailable", "daemon": WHAT, "version": V} where
// WHAT is "ok", "unreachable" (no connection), "timeout" (no answer in time) or the daemon's
// error name ("unavailable" when its audit trail refuses records). `version` is the
// gateway's. Answers are never cached downstream (Cache-Control: no-store).
//
// Unauthenticated requests must not turn into daemon calls one for one: requests that arrive
// while a probe is out share it (and its answer). A flood of /healthz therefore keeps at most
// one health call outstanding at the daemon, and every answer is at most one probe old.

#pragma once

#include "frontends/common/vault-link.h"
#include "frontends/http/router.h"

namespace credvault::frontends {

constexpr kj::Duration HEALTH_DEADLINE = 2 * kj::SECONDS;

// What the daemon said: "ok", "unreachable", "timeout" or an error name.
kj::Promise<kj::String> probeDaemon(VaultLink& link, kj::Timer& timer,
                                    kj::Duration deadline = HEALTH_DEADLINE);

// Adds GET (and HEAD) /healthz under the router's prefix. `link`, `timer` must outlive it.
void addHealthRoute(http::Router& router, VaultLink& link, kj::Timer& timer, kj::StringPtr version);

}  // namespace credvault::frontends
