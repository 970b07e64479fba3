#include "throttle.h"

#include <kj/debug.h>
#include <kj/map.h>

namespace credvault::core {

namespace {

// Stored value: be32 failures ‖ be64 blocked-until ‖ be64 last failure (milliseconds).
constexpr size_t VALUE_BYTES = 20;

kj::Array<kj::byte> encode(const ThrottleState& s) {
  auto out = kj::heapArray<kj::byte>(VALUE_BYTES);
  store::putBe32(out.begin(), s.failures);
  store::putBe64(out.begin() + 4, uint64_t(s.blockedUntilMs));
  store::putBe64(out.begin() + 12, uint64_t(s.lastMs));
  return out;
}

// Null for a malformed value: a damaged entry costs the attacker nothing it did not have.
kj::Maybe<ThrottleState> decode(kj::ArrayPtr<const kj::byte> value) {
  if (value.size() != VALUE_BYTES) return nullptr;
  ThrottleState s;
  s.failures = store::getBe32(value.begin());
  s.blockedUntilMs = int64_t(store::getBe64(value.begin() + 4));
  s.lastMs = int64_t(store::getBe64(value.begin() + 12));
  return s;
}

bool forgotten(const ThrottleState& s, int64_t nowMs) {
  return nowMs - s.lastMs > THROTTLE_MEMORY_MS;
}

}  // namespace

ThrottleState afterFailure(ThrottleState s, uint32_t freeAttempts, int64_t maxDelayMs,
                           int64_t nowMs) {
  if (forgotten(s, nowMs)) s.failures = 0;
  if (s.failures < UINT32_MAX) ++s.failures;
  s.lastMs = nowMs;
  if (s.failures > freeAttempts) {
    uint32_t over = kj::min(s.failures - freeAttempts - 1, 16u);
    s.blockedUntilMs = nowMs + kj::min<int64_t>(int64_t(1000) << over, maxDelayMs);
  }
  return s;
}

// ---- in this process ----------------------------------------------------------------------

kj::Maybe<ThrottleState> MemoryThrottleBook::find(kj::StringPtr key, int64_t nowMs) {
  auto states = states_.lockExclusive();
  KJ_IF_MAYBE(s, states->find(key)) {
    if (!forgotten(*s, nowMs)) return *s;
  }
  return nullptr;
}

void MemoryThrottleBook::recordFailure(kj::StringPtr key, uint32_t freeAttempts, int64_t maxDelayMs,
                                       int64_t nowMs) {
  auto states = states_.lockExclusive();
  if (states->size() >= capacity_) {
    kj::Vector<kj::String> stale;
    for (auto& e : *states) {
      if (nowMs - e.value.lastMs > 60'000) stale.add(kj::heapString(e.key));
    }
    for (auto& k : stale) states->erase(k);
    if (states->size() >= capacity_) states->clear();
  }
  auto& s = states->findOrCreate(key, [&]() {
    return kj::HashMap<kj::String, ThrottleState>::Entry{kj::heapString(key), ThrottleState()};
  });
  s = afterFailure(s, freeAttempts, maxDelayMs, nowMs);
}

void MemoryThrottleBook::forget(kj::StringPtr key) {
  states_.lockExclusive()->erase(key);
}

uint32_t MemoryThrottleBook::sweep(int64_t nowMs) {
  auto states = states_.lockExclusive();
  kj::Vector<kj::String> stale;
  for (auto& e : *states) {
    if (forgotten(e.value, nowMs)) stale.add(kj::heapString(e.key));
  }
  for (auto& k : stale) states->erase(k);
  return uint32_t(stale.size());
}

// ---- in the store -------------------------------------------------------------------------

StoreThrottleBook::StoreThrottleBook(Vault& vault)
    : vault_(vault), table_(vault.environment().table("throttles")) {}

kj::Array<kj::byte> StoreThrottleBook::keyOf(kj::StringPtr key) const {
  return vault_.indexHash("throttle", key.asBytes());
}

kj::Maybe<ThrottleState> StoreThrottleBook::find(kj::StringPtr key, int64_t nowMs) {
  auto k = keyOf(key);
  auto txn = vault_.environment().read();
  KJ_IF_MAYBE(value, txn.get(table_, k)) {
    KJ_IF_MAYBE(s, decode(*value)) {
      if (!forgotten(*s, nowMs)) return *s;
    }
  }
  return nullptr;
}

void StoreThrottleBook::recordFailure(kj::StringPtr key, uint32_t freeAttempts, int64_t maxDelayMs,
                                      int64_t nowMs) {
  auto k = keyOf(key);
  // Read and write in one write transaction: writers are serialised across every host, so
  // two hosts counting the same key at once both count.
  vault_.environment().write([&](store::WriteTxn& txn) {
    ThrottleState s;
    KJ_IF_MAYBE(value, txn.get(table_, k)) {
      KJ_IF_MAYBE(found, decode(*value)) { s = *found; }
    }
    txn.put(table_, k, encode(afterFailure(s, freeAttempts, maxDelayMs, nowMs)));
  });
}

void StoreThrottleBook::forget(kj::StringPtr key) {
  auto k = keyOf(key);
  {
    auto txn = vault_.environment().read();
    if (txn.get(table_, k) == nullptr) return;  // the usual case: no write for a clean login
  }
  vault_.environment().write([&](store::WriteTxn& txn) { txn.del(table_, k); });
}

uint32_t StoreThrottleBook::sweep(int64_t nowMs) {
  return vault_.environment().write([&](store::WriteTxn& txn) {
    kj::Vector<kj::Array<kj::byte>> stale;
    txn.scan(table_, nullptr, [&](auto key, auto value) {
      auto s = decode(value);
      if (s == nullptr || forgotten(KJ_ASSERT_NONNULL(s), nowMs)) stale.add(kj::heapArray(key));
      return true;
    });
    for (auto& k : stale) txn.del(table_, k);
    return uint32_t(stale.size());
  });
}

}  // namespace credvault::core
