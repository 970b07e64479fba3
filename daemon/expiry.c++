#include "expiry.h"
#include "log.h"
#include "ipc/client.h"

#include <kj/debug.h>

namespace credvault::daemon {

kj::Array<ExpiryFinding> findExpiring(const core::Vault& vault, int64_t now, uint32_t days) {
  // The watcher reads as the daemon itself: a system principal, never a client's.
  core::Principal self;
  self.kind = core::Kind::SYSTEM;
  self.method = core::AuthMethod::PEER_CREDENTIALS;
  self.name = kj::str("credvaultd");
  int64_t limit = now + int64_t(days) * 86400 * core::TICKS_PER_SECOND;
  kj::Vector<ExpiryFinding> out;
  // Every credential, one at a time (a listing would stop at MAX_LISTED_CREDENTIALS).
  auto refused = vault.visitAll(self, "", [&](core::ListedCredential&& e) {
    auto& c = e.credential;
    if (!c.isActive || c.validTo == 0 || c.validTo > limit) return;
    out.add(ExpiryFinding{e.associateId, kj::mv(e.type), vault.auditHash(c.publicValue), c.validTo,
                          c.validTo <= now});
  });
  // The daemon scans as itself, a system principal: a refusal is a bug.
  KJ_IF_MAYBE(r, refused) { KJ_FAIL_ASSERT("the expiry scan was refused", r->message); }
  return out.releaseAsArray();
}

void logExpiring(kj::ArrayPtr<const ExpiryFinding> findings, uint32_t days) {
  for (auto& f : findings) {
    logf(Level::WARNING,
         f.expired ? kj::str("a credential has expired (ValidTo passed)")
                   : kj::str("a credential expires within ", days, " days"),
         LogField{"OP", kj::str("expiry")}, LogField{"ASSOCIATE", kj::str(f.associateId)},
         LogField{"TYPE", kj::str(f.type)},
         LogField{"PUBLIC_VALUE_HMAC", kj::str(f.publicValueHmac)},
         LogField{"VALID_TO", kj::str(ipc::formatTicks(f.validTo), "Z")});
  }
}

kj::Promise<void> expiryWarnings(kj::Timer& timer, BlockingPool& pool, const core::Vault& vault,
                                 const kj::Clock& clock, uint32_t days, kj::Duration firstDelay,
                                 kj::Duration period) {
  return timer.afterDelay(firstDelay).then([&timer, &pool, &vault, &clock, days, period]() {
    int64_t now = (clock.now() - kj::UNIX_EPOCH) / kj::MICROSECONDS * 10 + core::UNIX_EPOCH_TICKS;
    return pool
        .run<kj::Array<ExpiryFinding>>(
            [&vault, now, days]() { return findExpiring(vault, now, days); })
        .then([&timer, &pool, &vault, &clock, days,
               period](Outcome<kj::Array<ExpiryFinding>> outcome) {
          KJ_IF_MAYBE(found, outcome.value) {
            logExpiring(*found, days);
          } else KJ_IF_MAYBE(e, outcome.error) {
            logf(Level::WARNING, kj::str("the expiry check did not run: ", e->message),
                 LogField{"OP", kj::str("expiry")});
          } else KJ_IF_MAYBE(f, outcome.failure) {
            logf(Level::ERROR, kj::str("the expiry check failed: ", f->getDescription()),
                 LogField{"OP", kj::str("expiry")});
          }
          return expiryWarnings(timer, pool, vault, clock, days, period, period);
        });
  });
}

}  // namespace credvault::daemon
