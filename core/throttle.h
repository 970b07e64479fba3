// credvault — the throttle's book of failed password attempts: in this process, or in the
// store for every host that shares it.
//
// The rules (which keys are counted, when a client is refused) live in core/auth.c++; this
// file only keeps the counts. One key stands for one (account, client), one client or one
// account (docs/authentication.md). A failure past `freeAttempts` blocks the key for a delay
// that doubles with each further failure up to the maximum; an hour without a failure starts
// the count again, so a legitimate user is never locked out for good.
//
// - MemoryThrottleBook: one daemon on one host (LMDB). Bounded: past `capacity` keys, entries
//   idle for a minute are forgotten, else all; the worst an attacker gains by flooding names
//   is that their own earlier delays are forgotten.
// Both answer an entry idle for longer than THROTTLE_MEMORY_MS as none, and sweep() deletes
// such entries.
// - StoreThrottleBook: several daemons sharing one database (PostgreSQL). Counts live in a
//   table of the store, under a keyed hash of the key (names and client addresses never reach
//   the database), updated inside a write transaction, so failures from every host add up
//   and adding hosts does not multiply an attacker's attempts.
//
// Thread-safety: both may be used from any thread. Never logs.

#pragma once

#include "vault.h"

namespace credvault::core {

struct ThrottleState {
  uint32_t failures = 0;
  int64_t blockedUntilMs = 0;
  int64_t lastMs = 0;
};

// An hour without a failure forgets the count.
constexpr int64_t THROTTLE_MEMORY_MS = 3'600'000;

// The state after one more failure at `nowMs`.
ThrottleState afterFailure(ThrottleState state, uint32_t freeAttempts, int64_t maxDelayMs,
                           int64_t nowMs);

class ThrottleBook {
 public:
  virtual ~ThrottleBook() noexcept(false) = default;
  // The state of `key` (null: no failure counted, or idle for longer than THROTTLE_MEMORY_MS).
  virtual kj::Maybe<ThrottleState> find(kj::StringPtr key, int64_t nowMs) = 0;
  virtual void recordFailure(kj::StringPtr key, uint32_t freeAttempts, int64_t maxDelayMs,
                             int64_t nowMs) = 0;
  // After a success: the key starts again from zero.
  virtual void forget(kj::StringPtr key) = 0;
  // Deletes every entry idle for longer than THROTTLE_MEMORY_MS; returns how many.
  virtual uint32_t sweep(int64_t nowMs) = 0;
};

class MemoryThrottleBook final : public ThrottleBook {
 public:
  explicit MemoryThrottleBook(size_t capacity) : capacity_(capacity) {}
  kj::Maybe<ThrottleState> find(kj::StringPtr key, int64_t nowMs) override;
  void recordFailure(kj::StringPtr key, uint32_t freeAttempts, int64_t maxDelayMs,
                     int64_t nowMs) override;
  void forget(kj::StringPtr key) override;
  uint32_t sweep(int64_t nowMs) override;

 private:
  size_t capacity_;
  kj::MutexGuarded<kj::HashMap<kj::String, ThrottleState>> states_;
};

class StoreThrottleBook final : public ThrottleBook {
 public:
  // Opens (or creates) the table; call at start, before concurrent use.
  explicit StoreThrottleBook(Vault& vault);
  kj::Maybe<ThrottleState> find(kj::StringPtr key, int64_t nowMs) override;
  void recordFailure(kj::StringPtr key, uint32_t freeAttempts, int64_t maxDelayMs,
                     int64_t nowMs) override;
  void forget(kj::StringPtr key) override;
  uint32_t sweep(int64_t nowMs) override;

 private:
  Vault& vault_;
  store::Table table_;
  kj::Array<kj::byte> keyOf(kj::StringPtr key) const;
};

}  // namespace credvault::core
