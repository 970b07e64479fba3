// credvaultd — how the store is doing, for status and for the log.
//
// The writer thread reports every commit's outcome here. A storage failure (no space, I/O
// error, read-only file system: store::isStorageFailure) marks the store failing until the
// next commit succeeds, which needs no restart once the operator fixed the cause. Logging is
// rate-limited: the first failure is logged at once, later ones are counted and summed up in
// one line per `logInterval` (and when the store works again), so a full disk under load
// writes a few lines a minute, not one per refused save. Thread-safe.

#pragma once

#include <kj/mutex.h>
#include <kj/string.h>
#include <kj/time.h>

namespace credvault::daemon {

struct StoreHealthSnapshot {
  bool failing = false;
  kj::String lastError;  // the latest failure's message (ours: no client data)
  kj::Date failingSince = kj::UNIX_EPOCH;
  uint64_t failures = 0;  // failed commits since start
};

class StoreHealth {
 public:
  StoreHealth(const kj::Clock& clock, const kj::MonotonicClock& monotonic,
              kj::Duration logInterval = 10 * kj::SECONDS)
      : clock_(clock), monotonic_(monotonic), logInterval_(logInterval) {}

  void failed(kj::StringPtr message);
  void succeeded();
  StoreHealthSnapshot snapshot() const;

 private:
  struct State {
    bool failing = false;
    kj::String lastError;
    kj::Date failingSince = kj::UNIX_EPOCH;
    uint64_t failures = 0;
    uint64_t unlogged = 0;  // failures since the last line
    kj::TimePoint lastLogged = kj::origin<kj::TimePoint>();
  };
  const kj::Clock& clock_;
  const kj::MonotonicClock& monotonic_;
  kj::Duration logInterval_;
  kj::MutexGuarded<State> state_;
};

}  // namespace credvault::daemon
