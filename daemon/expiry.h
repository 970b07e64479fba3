// credvaultd — the daily warning about credentials that expire soon (setting
// `expiry_warning_days`, default 14; 0 turns it off).
//
// Once a day (first a minute after start) every active credential whose ValidTo falls within
// the window, or has passed, gets one journald WARNING with its associate id, type, the
// keyed hash of its public value (as the audit trail names it) and ValidTo. Never the public
// value, comment or secret. Listing runs on a worker pool, not the event loop.

#pragma once

#include "blocking-pool.h"
#include "core/vault.h"
#include <kj/async.h>
#include <kj/timer.h>

namespace credvault::daemon {

struct ExpiryFinding {
  int32_t associateId;
  kj::String type;
  kj::String publicValueHmac;
  int64_t validTo;  // .NET ticks
  bool expired;     // ValidTo has passed (else: within the window)
};

// The active credentials whose ValidTo is at or before now + days; in store order.
kj::Array<ExpiryFinding> findExpiring(const core::Vault& vault, int64_t nowTicks, uint32_t days);

// One WARNING per finding.
void logExpiring(kj::ArrayPtr<const ExpiryFinding> findings, uint32_t days);

// Runs findExpiring on `pool` after `firstDelay`, then every `period`, until cancelled.
kj::Promise<void> expiryWarnings(kj::Timer& timer, BlockingPool& pool, const core::Vault& vault,
                                 const kj::Clock& clock, uint32_t days,
                                 kj::Duration firstDelay = 60 * kj::SECONDS,
                                 kj::Duration period = 24 * kj::HOURS);

}  // namespace credvault::daemon
