#include "store-health.h"
#include "log.h"

namespace credvault::daemon {

void StoreHealth::failed(kj::StringPtr message) {
  auto now = monotonic_.now();
  auto s = state_.lockExclusive();
  ++s->failures;
  bool first = !s->failing;
  if (first) {
    s->failing = true;
    s->failingSince = clock_.now();
  }
  s->lastError = kj::heapString(message);
  if (first) {
    s->lastLogged = now;
    s->unlogged = 0;
    logf(Level::ERROR, kj::str("storage failure: ", message),
         LogField{"RESULT", kj::str("unavailable")});
  } else if (now - s->lastLogged >= logInterval_) {
    uint64_t n = s->unlogged + 1;
    auto seconds = (now - s->lastLogged) / kj::SECONDS;
    s->lastLogged = now;
    s->unlogged = 0;
    logf(Level::ERROR,
         kj::str("storage still failing: ", n, " more failed writes in the last ", seconds,
                 " s: ", message),
         LogField{"RESULT", kj::str("unavailable")}, LogField{"COUNT", kj::str(n)});
  } else {
    ++s->unlogged;
  }
}

void StoreHealth::succeeded() {
  // The common case takes the lock shared and leaves at once.
  if (!state_.lockShared()->failing) return;
  auto s = state_.lockExclusive();
  if (!s->failing) return;
  auto seconds = (clock_.now() - s->failingSince) / kj::SECONDS;
  logf(Level::NOTICE, kj::str("storage works again after ", seconds, " s (", s->unlogged,
                              " failed writes since the last report)"));
  s->failing = false;
  s->unlogged = 0;
}

StoreHealthSnapshot StoreHealth::snapshot() const {
  auto s = state_.lockShared();
  return {s->failing, kj::heapString(s->lastError), s->failingSince, s->failures};
}

}  // namespace credvault::daemon
