// credvault — authentication: passwords (with throttling and a verification cache),
// tickets, API tokens and partner application tokens.
//
// Tickets and tokens are bearer secrets: they are stored only under a keyed hash of their
// value (the index key never leaves the daemon) with a sealed record holding the owner and
// expiry. A malformed ticket is answered exactly like an unknown one. A ticket carries the
// associate's credential epoch at issue; a password change, deactivation or removal moves
// the epoch (or the associate) and so ends every ticket at once.
//
// Thread-safety: reads may run on any thread; the throttle and cache are internally
// locked. Never logs. With a store shared by several hosts (anything but the embedded LMDB
// file), failed attempts are counted in the store, so every host sees every host's failures;
// the verification cache stays per process and is checked against the associate's stored
// credential epoch on every hit, so a password change on any host ends it there too.

#pragma once

#include "throttle.h"
#include "vault.h"
#include <kj/map.h>

namespace credvault::core {

struct AuthOptions {
  int64_t ticketLifetimeSeconds = 8 * 3600;
  bool onlineMode = false;            // SuperOffice Online: app tokens required, partner apps
  int64_t cacheLifetimeSeconds = 60;  // Basic-auth verification cache
  size_t cacheCapacity = 10000;
  uint32_t throttleFreeAttempts = 3;  // per (name, client); per client it is 5× this
  // Failures of one account (from any clients) past which clients that have failed before
  // are refused for it; clean clients are not (docs/authentication.md).
  uint32_t accountBrakeFailures = 20;
  int64_t throttleMaxDelaySeconds = 60;
  // Where failed attempts are counted: null decides by the store (in the store when it is
  // shared by several hosts, i.e. not the embedded LMDB file; else in this process).
  kj::Maybe<bool> failuresInStore;
};

struct IssuedTicket {
  kj::String ticket;  // "7T:" + base64(32 random bytes); a bearer secret
  int64_t expiresUnix;
};

struct TicketInfo {
  int32_t associateId;
  uint32_t epoch;
  int64_t expiresUnix;
};

struct ApiTokenInfo {
  kj::String name;
  int32_t associateId;
  int64_t createdUnix;
  int64_t expiresUnix;  // 0 = never
};

struct IssuedApiToken {
  kj::String token;  // "cvt_" + base64url(32 random bytes); shown once
  ApiTokenInfo info;
};

struct ApplicationInfo {
  kj::String name;
  int64_t createdUnix;
};

class Authenticator {
 public:
  Authenticator(Vault& vault, const kj::Clock& clock, AuthOptions options);
  KJ_DISALLOW_COPY(Authenticator);

  bool onlineMode() const { return options_.onlineMode; }

  // Password login. Refuses NOT_AUTHENTICATED (unknown name or wrong password, the same
  // message either way) or THROTTLED. On success returns the associate; `rehash` is set
  // when the stored hash was made with other parameters and should be replaced.
  Result<Associate> checkPassword(kj::StringPtr name, const crypto::Secret& password,
                                  kj::StringPtr client, kj::Maybe<kj::String>& rehash);
  // The cheap part of checkPassword: input checks, throttling and the verification cache,
  // without Argon2id. Null when the cache cannot answer (call checkPassword, off the
  // event loop). Refuses like checkPassword.
  Result<kj::Maybe<Associate>> checkCachedPassword(kj::StringPtr name,
                                                   const crypto::Secret& password,
                                                   kj::StringPtr client);
  WriteOp<bool> storeRehash(int32_t associateId, kj::String hash, uint32_t epoch) const;

  WriteOp<IssuedTicket> issueTicket(const Associate& associate) const;
  // The ticket's associate (active, at the ticket's epoch); null: malformed, unknown,
  // revoked, expired, or its associate is gone, inactive or its epoch moved on.
  kj::Maybe<Associate> validateTicket(kj::StringPtr ticket) const;
  // The stored record only (null: malformed, unknown, revoked, expired), for a caller that
  // checks the associate and its epoch itself.
  kj::Maybe<TicketInfo> findTicket(kj::StringPtr ticket) const;
  // The index key a ticket is stored under (null when malformed). A session keeps this
  // keyed hash, never the ticket, to look its ticket up again on every call.
  kj::Maybe<kj::Array<kj::byte>> ticketKey(kj::StringPtr ticket) const;
  kj::Maybe<TicketInfo> findTicketByKey(kj::ArrayPtr<const kj::byte> key) const;
  // The same inside a transaction (a write transaction sees its own batch's changes).
  kj::Maybe<TicketInfo> findTicketIn(const store::ReadTxn& txn,
                                     kj::ArrayPtr<const kj::byte> key) const;
  WriteOp<bool> revokeTicket(kj::StringPtr ticket) const;
  WriteOp<bool> revokeTicketByKey(kj::ArrayPtr<const kj::byte> key) const;

  CheckedWrite<IssuedApiToken> createToken(const Principal& who, int32_t associateId,
                                           kj::StringPtr name, int64_t expiresUnix) const;
  Result<kj::Array<ApiTokenInfo>> listTokens(const Principal& who, int32_t associateId) const;
  CheckedWrite<bool> revokeToken(const Principal& who, int32_t associateId,
                                 kj::StringPtr name) const;
  kj::Maybe<ApiTokenInfo> validateToken(kj::StringPtr token) const;
  kj::Maybe<kj::Array<kj::byte>> tokenKey(kj::StringPtr token) const;
  kj::Maybe<ApiTokenInfo> findTokenByKey(kj::ArrayPtr<const kj::byte> key) const;
  kj::Maybe<ApiTokenInfo> findTokenIn(const store::ReadTxn& txn,
                                      kj::ArrayPtr<const kj::byte> key) const;

  // Removes the associate with its credentials (Vault::removeAssociate) and, in the same
  // transaction, its API tokens and tickets. Returns the number of credentials removed.
  CheckedWrite<uint32_t> removeAssociate(const Principal& who, int32_t id) const;
  // Vault::setAssociate, and a deactivation deletes the associate's API tokens in the same
  // transaction (reactivating must not revive credentials an intruder may have minted).
  CheckedWrite<Associate> setAssociate(const Principal& who, int32_t id,
                                       AssociateUpdate update) const;

  CheckedWrite<IssuedApiToken> addApplication(const Principal& who, kj::StringPtr name) const;
  Result<kj::Array<ApplicationInfo>> listApplications(const Principal& who) const;
  CheckedWrite<bool> removeApplication(const Principal& who, kj::StringPtr name) const;
  // Applies the application-token rule of the mode: onsite ignores tokens; online needs a
  // known one and marks the caller a partner app (true). Refuses NOT_AUTHENTICATED otherwise.
  Result<bool> checkApplication(kj::Maybe<kj::StringPtr> appToken) const;
  // The same, giving the partner application's index key (null: not a partner app), so a
  // session can check on every call that the application is still registered.
  Result<kj::Maybe<kj::Array<kj::byte>>> checkApplicationKey(
      kj::Maybe<kj::StringPtr> appToken) const;
  bool applicationKnown(kj::ArrayPtr<const kj::byte> key) const;
  bool applicationKnownIn(const store::ReadTxn& txn, kj::ArrayPtr<const kj::byte> key) const;

  // Forget cached password verifications (password change, removal).
  void flushCache();
  // Whether failed attempts are counted in the store (shared by every host) rather than here.
  bool failuresInStore() const { return failuresInStore_; }
  // Deletes failure counts idle for an hour; returns how many. The daemon calls it hourly,
  // off the event loop, where they are counted in the store (in memory they are bounded).
  uint32_t sweepFailures();

 private:
  Vault& vault_;
  const kj::Clock& clock_;
  AuthOptions options_;
  store::Table tickets_, tokens_, tokenNames_, applications_, applicationNames_;
  crypto::Secret cacheKey_;  // random per start: cache entries mean nothing elsewhere

  struct CacheEntry {
    int32_t associateId;
    uint32_t epoch;
    int64_t expiresMs;
  };
  struct Memory {
    kj::HashMap<kj::String, CacheEntry> cache;  // key: hex of a keyed hash of name+password
  };
  kj::MutexGuarded<Memory> memory_;
  // Failed attempts: in this process for an LMDB vault; in the store, counted across every
  // host, for a store shared by several daemons (core/throttle.h).
  kj::Own<ThrottleBook> throttles_;
  bool failuresInStore_ = false;

  int64_t nowMs() const;
  Result<kj::String> precheck(kj::StringPtr name, const crypto::Secret& password,
                              kj::StringPtr client, int64_t now);
  kj::Maybe<Associate> lookupCache(kj::StringPtr cacheId, int64_t now);
  kj::Maybe<Refusal> checkThrottle(kj::StringPtr key, int64_t now);
  void recordFailure(kj::StringPtr key, uint32_t freeAttempts, int64_t now);
  bool underAttack(kj::StringPtr nameKey, int64_t now);
  bool hasFailed(kj::StringPtr clientKey, int64_t now);
  void deleteTokens(store::WriteTxn& txn, int32_t associateId) const;
  // The associate whose tokens are meant (0 = the caller), once `who` may manage them.
  Result<int32_t> tokenOwner(const Principal& who, int32_t associateId) const;
  // Key of the by-name token record: be32 associate ‖ keyed hash of the name.
  kj::Array<kj::byte> tokenNameKey(int32_t associateId, kj::StringPtr name) const;
};

}  // namespace credvault::core
