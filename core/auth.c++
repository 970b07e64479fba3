#include "auth.h"
#include "codec.h"
#include "limits.h"
#include "validate.h"
#include "crypto/aead.h"

#include <kj/debug.h>
#include <kj/encoding.h>

namespace credvault::core {

namespace {

constexpr kj::StringPtr TICKET_PREFIX = "7T:"_kj;
constexpr kj::StringPtr TOKEN_PREFIX = "cvt_"_kj;
constexpr kj::StringPtr APP_PREFIX = "cva_"_kj;
constexpr size_t TOKEN_RANDOM_BYTES = 32;

Refusal notAuthenticated(kj::StringPtr why) {
  return refuse(ErrorCode::NOT_AUTHENTICATED, "", kj::str(why));
}

}  // namespace

Authenticator::Authenticator(Vault& vault, const kj::Clock& clock, AuthOptions options)
    : vault_(vault),
      clock_(clock),
      options_(options),
      cacheKey_(crypto::Secret::random(crypto::KEY_BYTES)) {
  auto& env = vault_.environment();
  failuresInStore_ = env.lmdb() == nullptr;
  KJ_IF_MAYBE(chosen, options_.failuresInStore) { failuresInStore_ = *chosen; }
  if (failuresInStore_) {
    throttles_ = kj::heap<StoreThrottleBook>(vault_);
  } else {
    throttles_ = kj::heap<MemoryThrottleBook>(options_.cacheCapacity);
  }
  tickets_ = env.table("tickets");
  tokens_ = env.table("api-tokens");
  tokenNames_ = env.table("api-token-names");
  applications_ = env.table("applications");
  applicationNames_ = env.table("application-names");
}

int64_t Authenticator::nowMs() const {
  return (clock_.now() - kj::UNIX_EPOCH) / kj::MILLISECONDS;
}

// ---- passwords ---------------------------------------------------------------------------

kj::Maybe<Refusal> Authenticator::checkThrottle(kj::StringPtr key, int64_t now) {
  KJ_IF_MAYBE(t, throttles_->find(key, now)) {
    if (t->blockedUntilMs > now) {
      uint32_t seconds = (t->blockedUntilMs - now + 999) / 1000;
      auto r = refuse(ErrorCode::THROTTLED, "",
                      kj::str("too many failed attempts; retry in ", seconds, " s"));
      r.retryAfterSeconds = seconds;
      return kj::mv(r);
    }
  }
  return nullptr;
}

bool Authenticator::underAttack(kj::StringPtr nameKey, int64_t now) {
  KJ_IF_MAYBE(t, throttles_->find(nameKey, now)) {
    return t->failures > options_.accountBrakeFailures;
  }
  return false;
}

bool Authenticator::hasFailed(kj::StringPtr clientKey, int64_t now) {
  KJ_IF_MAYBE(t, throttles_->find(clientKey, now)) { return t->failures > 0; }
  return false;
}

void Authenticator::recordFailure(kj::StringPtr key, uint32_t freeAttempts, int64_t now) {
  throttles_->recordFailure(key, freeAttempts, options_.throttleMaxDelaySeconds * 1000, now);
}

Result<kj::String> Authenticator::precheck(kj::StringPtr name, const crypto::Secret& password,
                                           kj::StringPtr client, int64_t now) {
  if (name.size() == 0 || name.size() > MAX_NAME_BYTES || utf8Length(name) == nullptr) {
    return notAuthenticated("unknown user name or wrong password");
  }
  if (password.size() > MAX_PASSWORD_BYTES) {
    return notAuthenticated("unknown user name or wrong password");
  }
  auto folded = foldName(name);
  // Slows the guesser, never locks out the owner: an account's failures from one client
  // block that account only from that client ("nc:"); a client's failures across names
  // block that client ("c:"). The account-wide count ("n:") only brakes clients that have
  // failed before: a correct password from a clean client always gets its hash.
  KJ_IF_MAYBE(r, checkThrottle(kj::str("nc:", folded, "\n", client), now)) { return kj::mv(*r); }
  KJ_IF_MAYBE(r, checkThrottle(kj::str("c:", client), now)) { return kj::mv(*r); }
  if (underAttack(kj::str("n:", folded), now) && hasFailed(kj::str("c:", client), now)) {
    uint32_t seconds = options_.throttleMaxDelaySeconds;
    auto r = refuse(ErrorCode::THROTTLED, "",
                    kj::str("too many failed attempts for this account; retry in ", seconds, " s"));
    r.retryAfterSeconds = seconds;
    return kj::mv(r);
  }
  // The cache key binds name and password under a key that exists only in this process.
  auto message = encodeSecret([&](Encoder& e) {
    e.text(foldName(name));
    e.bytes(password.reveal());
  });
  return kj::encodeHex(crypto::keyedHash(cacheKey_, message.reveal()));
}

kj::Maybe<Associate> Authenticator::lookupCache(kj::StringPtr cacheId, int64_t now) {
  int32_t id;
  uint32_t epoch;
  {
    auto mem = memory_.lockExclusive();
    KJ_IF_MAYBE(hit, mem->cache.find(cacheId)) {
      if (hit->expiresMs <= now) {
        mem->cache.erase(cacheId);
        return nullptr;
      }
      id = hit->associateId;
      epoch = hit->epoch;
    } else {
      return nullptr;
    }
  }
  KJ_IF_MAYBE(a, vault_.findAssociate(id)) {
    if (a->active && a->credentialEpoch == epoch) return kj::mv(*a);
  }
  memory_.lockExclusive()->cache.erase(cacheId);
  return nullptr;
}

Result<kj::Maybe<Associate>> Authenticator::checkCachedPassword(kj::StringPtr name,
                                                                const crypto::Secret& password,
                                                                kj::StringPtr client) {
  int64_t now = nowMs();
  auto checked = precheck(name, password, client, now);
  if (!checked.ok()) return checked.takeRefusal();
  return lookupCache(checked.value(), now);
}

Result<Associate> Authenticator::checkPassword(kj::StringPtr name, const crypto::Secret& password,
                                               kj::StringPtr client,
                                               kj::Maybe<kj::String>& rehash) {
  int64_t now = nowMs();
  auto checked = precheck(name, password, client, now);
  if (!checked.ok()) return checked.takeRefusal();
  auto cacheId = kj::mv(checked).value();
  KJ_IF_MAYBE(a, lookupCache(cacheId, now)) { return kj::mv(*a); }
  auto folded = foldName(name);
  auto pairKey = kj::str("nc:", folded, "\n", client);
  auto nameKey = kj::str("n:", folded);
  auto clientKey = kj::str("c:", client);

  KJ_IF_MAYBE(a, vault_.verifyPassword(name, password)) {
    {
      throttles_->forget(pairKey);
      auto mem = memory_.lockExclusive();
      if (mem->cache.size() >= options_.cacheCapacity) mem->cache.clear();
      mem->cache.upsert(
          kj::mv(cacheId),
          CacheEntry{a->id, a->credentialEpoch, now + options_.cacheLifetimeSeconds * 1000},
          [](CacheEntry& old, CacheEntry&& repl) { old = repl; });
    }
    if (crypto::passwordNeedsRehash(a->passwordHash, vault_.passwordParams())) {
      rehash = crypto::hashPassword(password, vault_.passwordParams());
    }
    return kj::mv(*a);
  }
  recordFailure(pairKey, options_.throttleFreeAttempts, now);
  recordFailure(clientKey, options_.throttleFreeAttempts * 5, now);
  recordFailure(nameKey, UINT32_MAX, now);  // counted only; see underAttack()
  return notAuthenticated("unknown user name or wrong password");
}

WriteOp<bool> Authenticator::storeRehash(int32_t associateId, kj::String hash,
                                         uint32_t epoch) const {
  return vault_.replacePasswordHash(associateId, kj::mv(hash), epoch);
}

uint32_t Authenticator::sweepFailures() {
  return throttles_->sweep(nowMs());
}

void Authenticator::flushCache() {
  // Not clear() on a map that never held an entry: KJ 0.9.2's HashIndex::clear() then passes
  // memset a null pointer (undefined behaviour; found by the daemon-rpc fuzz target).
  auto mem = memory_.lockExclusive();
  if (mem->cache.size() > 0) mem->cache.clear();
}

// ---- tickets -----------------------------------------------------------------------------

WriteOp<IssuedTicket> Authenticator::issueTicket(const Associate& a) const {
  auto ticket = kj::str(TICKET_PREFIX, crypto::randomBase64(TOKEN_RANDOM_BYTES, false));
  auto key = vault_.indexHash("ticket", ticket.asBytes());
  int64_t now = nowMs() / 1000;
  int64_t expires = now + options_.ticketLifetimeSeconds;
  auto plain = encodeSecret([&](Encoder& e) {
    e.u32(a.id);
    e.u32(a.credentialEpoch);
    e.u64(now);
    e.u64(expires);
  });
  auto sealed = vault_.sealValue("ticket", key, plain);
  return [this, ticket = kj::mv(ticket), key = kj::mv(key), sealed = kj::mv(sealed),
          expires](store::WriteTxn& txn) -> IssuedTicket {
    txn.put(tickets_, key, sealed);
    return {kj::heapString(ticket), expires};
  };
}

kj::Maybe<kj::Array<kj::byte>> Authenticator::ticketKey(kj::StringPtr ticket) const {
  // Malformed and unknown are the same answer.
  if (!ticket.startsWith(TICKET_PREFIX) || ticket.size() > MAX_TICKET_BYTES) return nullptr;
  return vault_.indexHash("ticket", ticket.asBytes());
}

kj::Maybe<TicketInfo> Authenticator::findTicket(kj::StringPtr ticket) const {
  KJ_IF_MAYBE(key, ticketKey(ticket)) { return findTicketByKey(*key); }
  return nullptr;
}

kj::Maybe<TicketInfo> Authenticator::findTicketByKey(kj::ArrayPtr<const kj::byte> key) const {
  auto txn = vault_.environment().read();
  return findTicketIn(txn, key);
}

kj::Maybe<TicketInfo> Authenticator::findTicketIn(const store::ReadTxn& txn,
                                                  kj::ArrayPtr<const kj::byte> key) const {
  kj::Maybe<TicketInfo> info;
  {
    KJ_IF_MAYBE(stored, txn.get(tickets_, key)) {
      auto plain = vault_.openValue("ticket", key, *stored);
      Decoder d(plain.reveal());
      TicketInfo t;
      t.associateId = d.u32();
      t.epoch = d.u32();
      d.u64();
      t.expiresUnix = d.u64();
      info = t;
    }
  }
  KJ_IF_MAYBE(t, info) {
    if (t->expiresUnix <= nowMs() / 1000) return nullptr;
  }
  return info;
}

kj::Maybe<Associate> Authenticator::validateTicket(kj::StringPtr ticket) const {
  KJ_IF_MAYBE(t, findTicket(ticket)) {
    KJ_IF_MAYBE(a, vault_.findAssociate(t->associateId)) {
      if (a->active && a->credentialEpoch == t->epoch) return kj::mv(*a);
    }
  }
  return nullptr;
}

WriteOp<bool> Authenticator::revokeTicket(kj::StringPtr ticket) const {
  if (!ticket.startsWith(TICKET_PREFIX) || ticket.size() > MAX_TICKET_BYTES) {
    return [](store::WriteTxn&) { return false; };
  }
  return revokeTicketByKey(vault_.indexHash("ticket", ticket.asBytes()));
}

WriteOp<bool> Authenticator::revokeTicketByKey(kj::ArrayPtr<const kj::byte> key) const {
  return [this, key = kj::heapArray(key)](store::WriteTxn& txn) {
    if (!txn.del(tickets_, key)) return false;
    txn.moveGenerationOnCommit();
    return true;
  };
}

// ---- API tokens --------------------------------------------------------------------------

kj::Array<kj::byte> Authenticator::tokenNameKey(int32_t associateId, kj::StringPtr name) const {
  auto key = kj::heapArray<kj::byte>(4 + crypto::MAC_BYTES);
  store::putBe32(key.begin(), associateId);
  auto hash = vault_.indexHash("api-token-name", name.asBytes());
  memcpy(key.begin() + 4, hash.begin(), crypto::MAC_BYTES);
  return key;
}

Result<int32_t> Authenticator::tokenOwner(const Principal& who, int32_t associateId) const {
  if (associateId == 0) associateId = who.associateId;  // 0 = the caller
  auto decision = authorize(who, Operation::MANAGE_TOKENS, associateId);
  if (!decision.ok()) return decision.takeRefusal();
  return associateId;
}

namespace {

ApiTokenInfo decodeTokenInfo(Decoder& d) {
  ApiTokenInfo info;
  info.associateId = d.u32();
  info.name = d.text();
  info.createdUnix = d.u64();
  info.expiresUnix = d.u64();
  return info;
}

}  // namespace

CheckedWrite<IssuedApiToken> Authenticator::createToken(const Principal& who, int32_t associateId,
                                                        kj::StringPtr name,
                                                        int64_t expiresUnix) const {
  auto owner = tokenOwner(who, associateId);
  if (!owner.ok()) return owner.takeRefusal();
  associateId = owner.value();
  if (associateId <= 0) return invalidArgument("associateId", "associateId must name an associate");
  if (name.size() == 0) return invalidArgument("name", "name is empty");
  CV_REFUSE_IF(checkText("name", name, MAX_TOKEN_NAME_CHARS));
  int64_t now = nowMs() / 1000;
  if (expiresUnix < 0 || (expiresUnix != 0 && expiresUnix <= now)) {
    return invalidArgument("expires", "expires must be in the future (or 0 for never)");
  }
  auto token = kj::str(TOKEN_PREFIX, crypto::randomBase64(TOKEN_RANDOM_BYTES, true));
  auto key = vault_.indexHash("api-token", token.asBytes());
  auto nameKey = tokenNameKey(associateId, name);
  auto plain = encodeSecret([&](Encoder& e) {
    e.u32(associateId);
    e.text(name);
    e.u64(now);
    e.u64(expiresUnix);
    e.bytes(key);
  });
  auto sealedByToken = vault_.sealValue("api-token", key, plain);
  auto sealedByName = vault_.sealValue("api-token-name", nameKey, plain);
  WriteOp<Result<IssuedApiToken>> op =
      [this, associateId, token = kj::mv(token), key = kj::mv(key), nameKey = kj::mv(nameKey),
       sealedByToken = kj::mv(sealedByToken), sealedByName = kj::mv(sealedByName),
       name = kj::heapString(name), now,
       expiresUnix](store::WriteTxn& txn) -> Result<IssuedApiToken> {
    if (vault_.findAssociateIn(txn, associateId) == nullptr) {
      return refuse(ErrorCode::NOT_FOUND, "associateId",
                    kj::str("associate ", associateId, " does not exist"));
    }
    if (txn.get(tokenNames_, nameKey) != nullptr) {
      return refuse(ErrorCode::CONFLICT, "name",
                    kj::str("the associate already has a token with this name"));
    }
    size_t count = 0;
    txn.scan(tokenNames_, be32(associateId), [&](auto, auto) {
      ++count;
      return true;
    });
    if (count >= MAX_TOKENS_PER_ASSOCIATE) {
      return refuse(ErrorCode::LIMIT_EXCEEDED, "",
                    kj::str("the associate has the maximum number of tokens"));
    }
    txn.put(tokens_, key, sealedByToken);
    txn.put(tokenNames_, nameKey, sealedByName);
    return IssuedApiToken{kj::heapString(token),
                          {kj::heapString(name), associateId, now, expiresUnix}};
  };
  return kj::mv(op);
}

Result<kj::Array<ApiTokenInfo>> Authenticator::listTokens(const Principal& who,
                                                          int32_t associateId) const {
  auto owner = tokenOwner(who, associateId);
  if (!owner.ok()) return owner.takeRefusal();
  associateId = owner.value();
  kj::Vector<ApiTokenInfo> out;
  auto txn = vault_.environment().read();
  txn.scan(tokenNames_, be32(associateId), [&](auto key, auto value) {
    auto plain = vault_.openValue("api-token-name", key, value);
    Decoder d(plain.reveal());
    out.add(decodeTokenInfo(d));
    return true;
  });
  return out.releaseAsArray();
}

CheckedWrite<bool> Authenticator::revokeToken(const Principal& who, int32_t associateId,
                                              kj::StringPtr name) const {
  auto owner = tokenOwner(who, associateId);
  if (!owner.ok()) return owner.takeRefusal();
  auto nameKey = tokenNameKey(owner.value(), name);
  WriteOp<Result<bool>> op = [this,
                              nameKey = kj::mv(nameKey)](store::WriteTxn& txn) -> Result<bool> {
    KJ_IF_MAYBE(stored, txn.get(tokenNames_, nameKey)) {
      auto plain = vault_.openValue("api-token-name", nameKey, *stored);
      Decoder d(plain.reveal());
      decodeTokenInfo(d);
      auto tokenKey = kj::heapArray(d.bytes());
      txn.del(tokens_, tokenKey);
      txn.del(tokenNames_, nameKey);
      txn.moveGenerationOnCommit();
      return true;
    }
    return false;
  };
  return kj::mv(op);
}

kj::Maybe<kj::Array<kj::byte>> Authenticator::tokenKey(kj::StringPtr token) const {
  if (!token.startsWith(TOKEN_PREFIX) || token.size() > MAX_TOKEN_BYTES) return nullptr;
  return vault_.indexHash("api-token", token.asBytes());
}

kj::Maybe<ApiTokenInfo> Authenticator::validateToken(kj::StringPtr token) const {
  KJ_IF_MAYBE(key, tokenKey(token)) { return findTokenByKey(*key); }
  return nullptr;
}

kj::Maybe<ApiTokenInfo> Authenticator::findTokenByKey(kj::ArrayPtr<const kj::byte> key) const {
  auto txn = vault_.environment().read();
  return findTokenIn(txn, key);
}

kj::Maybe<ApiTokenInfo> Authenticator::findTokenIn(const store::ReadTxn& txn,
                                                   kj::ArrayPtr<const kj::byte> key) const {
  KJ_IF_MAYBE(stored, txn.get(tokens_, key)) {
    auto plain = vault_.openValue("api-token", key, *stored);
    Decoder d(plain.reveal());
    auto info = decodeTokenInfo(d);
    if (info.expiresUnix != 0 && info.expiresUnix <= nowMs() / 1000) return nullptr;
    return kj::mv(info);
  }
  return nullptr;
}

// ---- partner applications -----------------------------------------------------------------

CheckedWrite<IssuedApiToken> Authenticator::addApplication(const Principal& who,
                                                           kj::StringPtr name) const {
  CV_REFUSE_IF(requireSystem(who, "registering applications"));
  if (name.size() == 0) return invalidArgument("name", "name is empty");
  CV_REFUSE_IF(checkText("name", name, MAX_TOKEN_NAME_CHARS));
  auto token = kj::str(APP_PREFIX, crypto::randomBase64(TOKEN_RANDOM_BYTES, true));
  auto key = vault_.indexHash("application", token.asBytes());
  auto nameKey = vault_.indexHash("application-name", name.asBytes());
  int64_t now = nowMs() / 1000;
  auto plain = encodeSecret([&](Encoder& e) {
    e.u32(0);
    e.text(name);
    e.u64(now);
    e.u64(0);
    e.bytes(key);
  });
  auto sealedByToken = vault_.sealValue("application", key, plain);
  auto sealedByName = vault_.sealValue("application-name", nameKey, plain);
  WriteOp<Result<IssuedApiToken>> op =
      [this, token = kj::mv(token), key = kj::mv(key), nameKey = kj::mv(nameKey),
       sealedByToken = kj::mv(sealedByToken), sealedByName = kj::mv(sealedByName),
       name = kj::heapString(name), now](store::WriteTxn& txn) -> Result<IssuedApiToken> {
    if (txn.get(applicationNames_, nameKey) != nullptr) {
      return refuse(ErrorCode::CONFLICT, "name", kj::str("an application with this name exists"));
    }
    txn.put(applications_, key, sealedByToken);
    txn.put(applicationNames_, nameKey, sealedByName);
    return IssuedApiToken{kj::heapString(token), {kj::heapString(name), 0, now, 0}};
  };
  return kj::mv(op);
}

Result<kj::Array<ApplicationInfo>> Authenticator::listApplications(const Principal& who) const {
  CV_REFUSE_IF(requireSystem(who, "listing applications"));
  kj::Vector<ApplicationInfo> out;
  auto txn = vault_.environment().read();
  txn.scan(applicationNames_, nullptr, [&](auto key, auto value) {
    auto plain = vault_.openValue("application-name", key, value);
    Decoder d(plain.reveal());
    auto info = decodeTokenInfo(d);
    out.add(ApplicationInfo{kj::mv(info.name), info.createdUnix});
    return true;
  });
  return out.releaseAsArray();
}

CheckedWrite<bool> Authenticator::removeApplication(const Principal& who,
                                                    kj::StringPtr name) const {
  CV_REFUSE_IF(requireSystem(who, "removing applications"));
  auto nameKey = vault_.indexHash("application-name", name.asBytes());
  WriteOp<Result<bool>> op = [this,
                              nameKey = kj::mv(nameKey)](store::WriteTxn& txn) -> Result<bool> {
    KJ_IF_MAYBE(stored, txn.get(applicationNames_, nameKey)) {
      auto plain = vault_.openValue("application-name", nameKey, *stored);
      Decoder d(plain.reveal());
      decodeTokenInfo(d);
      auto tokenKey = kj::heapArray(d.bytes());
      txn.del(applications_, tokenKey);
      txn.del(applicationNames_, nameKey);
      txn.moveGenerationOnCommit();  // sessions opened with its token end
      return true;
    }
    return false;
  };
  return kj::mv(op);
}

Result<bool> Authenticator::checkApplication(kj::Maybe<kj::StringPtr> appToken) const {
  auto checked = checkApplicationKey(appToken);
  if (!checked.ok()) return checked.takeRefusal();
  return checked.value() != nullptr;
}

Result<kj::Maybe<kj::Array<kj::byte>>> Authenticator::checkApplicationKey(
    kj::Maybe<kj::StringPtr> appToken) const {
  using Key = kj::Maybe<kj::Array<kj::byte>>;
  if (!options_.onlineMode) return Key(nullptr);  // on-site: application tokens are not checked
  KJ_IF_MAYBE(t, appToken) {
    if (t->startsWith(APP_PREFIX) && t->size() <= MAX_APP_TOKEN_BYTES) {
      auto key = vault_.indexHash("application", t->asBytes());
      if (applicationKnown(key)) return Key(kj::mv(key));
    }
    return notAuthenticated("unknown application token");
  }
  return notAuthenticated("an application token is required");
}

bool Authenticator::applicationKnown(kj::ArrayPtr<const kj::byte> key) const {
  auto txn = vault_.environment().read();
  return applicationKnownIn(txn, key);
}

bool Authenticator::applicationKnownIn(const store::ReadTxn& txn,
                                       kj::ArrayPtr<const kj::byte> key) const {
  return txn.get(applications_, key) != nullptr;
}

void Authenticator::deleteTokens(store::WriteTxn& txn, int32_t id) const {
  // By name under the associate's prefix, each naming its token key.
  kj::Vector<kj::Array<kj::byte>> doomed;
  txn.scan(tokenNames_, be32(id), [&](auto key, auto value) {
    auto plain = vault_.openValue("api-token-name", key, value);
    Decoder d(plain.reveal());
    decodeTokenInfo(d);
    txn.del(tokens_, d.bytes());
    doomed.add(kj::heapArray(key));
    return true;
  });
  for (auto& k : doomed) txn.del(tokenNames_, k);
}

CheckedWrite<Associate> Authenticator::setAssociate(const Principal& who, int32_t id,
                                                    AssociateUpdate update) const {
  bool deactivates = false;
  KJ_IF_MAYBE(active, update.active) { deactivates = !*active; }
  auto checked = vault_.setAssociate(who, id, kj::mv(update));
  if (!checked.ok()) return checked.takeRefusal();
  WriteOp<Result<Associate>> op = [this, id, deactivates, change = kj::mv(checked).value()](
                                      store::WriteTxn& txn) mutable -> Result<Associate> {
    bool wasActive = false;
    KJ_IF_MAYBE(a, vault_.findAssociateIn(txn, id)) { wasActive = a->active; }
    auto a = change(txn);
    // Deactivation is the answer to a compromised account: its tokens must not come back
    // with a later reactivation (its tickets die by the epoch).
    if (a.ok() && deactivates && wasActive) deleteTokens(txn, id);
    return a;
  };
  return kj::mv(op);
}

CheckedWrite<uint32_t> Authenticator::removeAssociate(const Principal& who, int32_t id) const {
  auto checked = vault_.removeAssociate(who, id);
  if (!checked.ok()) return checked.takeRefusal();
  WriteOp<Result<uint32_t>> op = [this, id, removeRecords = kj::mv(checked).value()](
                                     store::WriteTxn& txn) mutable -> Result<uint32_t> {
    auto removed = removeRecords(txn);
    if (!removed.ok()) return removed;
    deleteTokens(txn, id);
    // And its tickets (keyed by the ticket's hash only, so each is opened to see its owner;
    // expired ones of anyone are swept on the way).
    kj::Vector<kj::Array<kj::byte>> doomed;
    int64_t now = nowMs() / 1000;
    txn.scan(tickets_, nullptr, [&](auto key, auto value) {
      auto plain = vault_.openValue("ticket", key, value);
      Decoder d(plain.reveal());
      int32_t owner = d.u32();
      d.u32();
      d.u64();
      int64_t expires = d.u64();
      if (owner == id || expires <= now) doomed.add(kj::heapArray(key));
      return true;
    });
    for (auto& k : doomed) txn.del(tickets_, k);
    return removed;
  };
  return kj::mv(op);
}

}  // namespace credvault::core
