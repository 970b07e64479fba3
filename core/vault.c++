#include "vault.h"
#include "codec.h"
#include "credential-record.h"
#include "limits.h"
#include "validate.h"
#include "crypto/aead.h"

#include <kj/debug.h>
#include <kj/encoding.h>
#include <kj/map.h>
#include <sodium.h>

namespace credvault::core {

namespace {

constexpr uint8_t RECORD_FORMAT = 1;
constexpr size_t INDEX_HASH_PART = 16;  // bytes of keyed hash per key component
constexpr size_t INDEX_VALUE_MAC = 16;  // bytes of MAC after a stored count or id
const kj::byte NEXT_ID_KEY[] = {'n', 'e', 'x', 't', '-', 'i', 'd'};

Refusal noSuchAssociate(int32_t id) {
  return refuse(ErrorCode::NOT_FOUND, "associateId", kj::str("associate ", id, " does not exist"));
}

Refusal deny(kj::StringPtr what) {
  return refuse(ErrorCode::PERMISSION_DENIED, "", kj::str(what));
}

// A read on behalf of who may reach `associateId`'s credentials.
kj::Maybe<Refusal> checkReach(const Principal& who, int32_t associateId, kj::StringPtr verb) {
  if (accessTo(who, associateId) == Access::NONE) {
    return deny(kj::str("not allowed to ", verb, " another associate's credentials"));
  }
  return nullptr;
}

}  // namespace

Vault::Vault(store::Store& env, crypto::Secret masterKey, const kj::Clock& clock,
             VaultOptions options)
    : env_(env), clock_(clock), options_(options), keyring_(kj::mv(masterKey)) {
  // The version first: a database of a newer release is refused before anything is created.
  uint32_t onDisk = env_.checkSchemaOnly(SCHEMA_VERSION);
  keys_ = env_.table("keys");
  associates_ = env_.table("associates");
  names_ = env_.table("associate-names");
  uids_ = env_.table("associate-uids");
  credentials_ = env_.table("credentials");
  counters_ = env_.table("credential-counts");
  meta_ = env_.table("meta");
  loadOrCreateKeys();
  if (env_.readOnly()) {
    legacyIndexValues_ = onDisk < 2;
    return;
  }
  if (onDisk > 0 && onDisk < SCHEMA_VERSION) {
    // Everything an older release wrote is brought up to date in the transaction that moves
    // the schema version, so a crash leaves the old version on the old data
    // (docs/operations.md, "Upgrades"). Release 1 kept credential counts and the next
    // associate id in clear: rebuilt from the sealed records, stored with a MAC. Releases 1
    // and 2 wrote positional credential records: resealed as stored.Credential.
    env_.write([&](store::WriteTxn& txn) {
      if (onDisk < 2) rebuildIndexValues(txn);
      upgradeCredentialRecords(txn);
      env_.setSchemaVersion(txn, SCHEMA_VERSION);
    });
  } else if (onDisk == 0) {
    env_.write([&](store::WriteTxn& txn) { env_.setSchemaVersion(txn, SCHEMA_VERSION); });
  }
  // Made now, not at the first login, so that login does not pay for two hashes.
  dummyHash_ = crypto::hashPassword(crypto::Secret::copyOf("credvault-dummy-password"_kj),
                                    options_.passwordParams);
}

// ---- authenticated index values ----------------------------------------------------------
// Counts and the next associate id are 4 big-endian bytes followed by a 16-byte MAC under the
// index key over (table, key, value): a value edited or moved in the file is an integrity
// error, never a wrong answer.

kj::Array<kj::byte> Vault::macValue(kj::StringPtr table, kj::ArrayPtr<const kj::byte> key,
                                    uint32_t value) const {
  auto raw = be32(value);
  auto message = kj::heapArray<kj::byte>(key.size() + 4);
  memcpy(message.begin(), key.begin(), key.size());
  memcpy(message.begin() + key.size(), raw.begin(), 4);
  auto mac = indexHash(kj::str("value-mac:", table), message);
  auto out = kj::heapArray<kj::byte>(4 + INDEX_VALUE_MAC);
  memcpy(out.begin(), raw.begin(), 4);
  memcpy(out.begin() + 4, mac.begin(), INDEX_VALUE_MAC);
  return out;
}

uint32_t Vault::openValue32(kj::StringPtr table, kj::ArrayPtr<const kj::byte> key,
                            kj::ArrayPtr<const kj::byte> stored) const {
  if (stored.size() == 4 && legacyIndexValues_) return store::getBe32(stored.begin());
  if (stored.size() == 4 + INDEX_VALUE_MAC) {
    uint32_t v = store::getBe32(stored.begin());
    auto expected = macValue(table, key, v);
    if (sodium_memcmp(expected.begin(), stored.begin(), expected.size()) == 0) return v;
  }
  damaged(kj::str("a value in table ", table,
                  " failed authentication (tampered or damaged); run "
                  "credvaultd --verify and restore a backup"));
}

void Vault::rebuildIndexValues(store::WriteTxn& txn) const {
  kj::HashMap<uint32_t, uint32_t> perAssociate;
  txn.scan(credentials_, nullptr, [&](auto key, auto) {
    KJ_REQUIRE(key.size() >= 4, "the credentials table is damaged");
    uint32_t id = store::getBe32(key.begin());
    ++perAssociate.findOrCreate(id, [&]() {
      return kj::HashMap<uint32_t, uint32_t>::Entry{id, 0};
    });
    return true;
  });
  uint32_t maxId = 0;
  kj::Vector<kj::Array<kj::byte>> oldCounters;
  txn.scan(counters_, nullptr, [&](auto key, auto) {
    oldCounters.add(kj::heapArray(key));
    return true;
  });
  for (auto& k : oldCounters) txn.del(counters_, k);
  txn.scan(associates_, nullptr, [&](auto key, auto) {
    KJ_REQUIRE(key.size() == 4, "the associates table is damaged");
    maxId = kj::max(maxId, store::getBe32(key.begin()));
    return true;
  });
  for (auto& e : perAssociate) {
    auto key = be32(e.key);
    txn.put(counters_, key, macValue("credential-counts", key, e.value));
  }
  uint32_t next = maxId + 1;
  KJ_IF_MAYBE(stored, txn.get(meta_, NEXT_ID_KEY)) {
    // An id once handed out is never reused, even after its associate was removed.
    if (stored->size() == 4) next = kj::max(next, store::getBe32(stored->begin()));
  }
  txn.put(meta_, NEXT_ID_KEY, macValue("meta", NEXT_ID_KEY, next));
}

void Vault::loadOrCreateKeys() {
  auto ring = keyring_.lockExclusive();
  auto load = [&]() {
    bool any = false;
    auto txn = env_.read();
    txn.scan(keys_, nullptr, [&](auto key, auto value) {
      KJ_REQUIRE(key.size() == 4, "the key table is damaged");
      uint32_t id = store::getBe32(key.begin());
      if (!ring->load(id, value)) {
        KJ_FAIL_REQUIRE(
            "the master key does not open this vault's data keys: wrong master key for this "
            "state directory (or the key table is damaged). Refusing to start.",
            id);
      }
      any = true;
      return true;
    });
    return any;
  };
  if (!load()) {
    if (env_.readOnly()) {
      damaged(
          kj::str("table keys: the vault has no keys (empty or damaged database); restore a "
                  "backup"));
    }
    // Looked for again inside the write: on a store shared by several daemons another one
    // may have created the keys since, and then those are the vault's keys, not ours. The
    // body may run more than once, so it starts from a keyring without the new ids.
    bool created = env_.write([&](store::WriteTxn& txn) {
      ring->forget(crypto::INDEX_KEY_ID);
      ring->forget(1);
      bool found = false;
      txn.scan(keys_, nullptr, [&](auto, auto) {
        found = true;
        return false;
      });
      if (found) return false;
      auto index = ring->create(crypto::INDEX_KEY_ID);
      auto data = ring->create(1);
      txn.put(keys_, be32(crypto::INDEX_KEY_ID), index);
      txn.put(keys_, be32(1), data);
      return true;
    });
    if (!created) load();
  }
  KJ_REQUIRE(ring->find(crypto::INDEX_KEY_ID) != nullptr && ring->currentId() >= 1,
             "the key table is incomplete");
}

int64_t Vault::nowUnix() const {
  return (clock_.now() - kj::UNIX_EPOCH) / kj::SECONDS;
}

kj::Array<kj::byte> Vault::indexHash(kj::StringPtr label,
                                     kj::ArrayPtr<const kj::byte> value) const {
  auto ring = keyring_.lockShared();
  auto message = kj::heapArray<kj::byte>(label.size() + 1 + value.size());
  memcpy(message.begin(), label.begin(), label.size());
  message[label.size()] = 0;
  if (value.size() > 0) memcpy(message.begin() + label.size() + 1, value.begin(), value.size());
  auto out = crypto::keyedHash(ring->indexKey(), message);
  crypto::wipe(message);
  return out;
}

kj::String Vault::auditHash(kj::StringPtr publicValue) const {
  return kj::encodeHex(indexHash("audit-public-value", publicValue.asBytes()));
}

namespace {

kj::Array<kj::byte> recordAd(kj::StringPtr purpose, uint32_t keyId,
                             kj::ArrayPtr<const kj::byte> context) {
  return encodePlain([&](Encoder& e) {
    e.u8(RECORD_FORMAT);
    e.text(purpose);
    e.u32(keyId);
    e.bytes(context);
  });
}

}  // namespace

kj::Array<kj::byte> Vault::sealValue(kj::StringPtr purpose, kj::ArrayPtr<const kj::byte> context,
                                     const crypto::Secret& plaintext) const {
  auto ring = keyring_.lockShared();
  uint32_t keyId = ring->currentId();
  auto ad = recordAd(purpose, keyId, context);
  auto sealed = crypto::seal(KJ_ASSERT_NONNULL(ring->find(keyId)), plaintext.reveal(), ad);
  auto out = kj::heapArray<kj::byte>(5 + sealed.size());
  out[0] = RECORD_FORMAT;
  store::putBe32(out.begin() + 1, keyId);
  memcpy(out.begin() + 5, sealed.begin(), sealed.size());
  return out;
}

crypto::Secret Vault::openValue(kj::StringPtr purpose, kj::ArrayPtr<const kj::byte> context,
                                kj::ArrayPtr<const kj::byte> stored) const {
  if (stored.size() < 5 || stored[0] != RECORD_FORMAT) {
    damaged(kj::str("a stored ", purpose, " record is damaged"));
  }
  uint32_t keyId = store::getBe32(stored.begin() + 1);
  auto ring = keyring_.lockShared();
  KJ_IF_MAYBE(key, ring->find(keyId)) {
    auto ad = recordAd(purpose, keyId, context);
    KJ_IF_MAYBE(plain, crypto::open(*key, stored.slice(5, stored.size()), ad)) {
      return kj::mv(*plain);
    }
    damaged(kj::str("a stored ", purpose, " record failed authentication (tampered or moved)"));
  }
  damaged(kj::str("a stored ", purpose, " record names an unknown key"));
}

// ---- associates ------------------------------------------------------------------------

kj::Maybe<Associate> Vault::readAssociate(const store::ReadTxn& txn, int32_t id) const {
  auto key = be32(id);
  KJ_IF_MAYBE(stored, txn.get(associates_, key)) {
    auto plain = openValue("associate", key, *stored);
    Decoder d(plain.reveal());
    Associate a;
    a.id = d.u32();
    a.name = d.text();
    a.kind = d.u8() == 1 ? Kind::SYSTEM : Kind::USER;
    a.userAdmin = d.u8() != 0;
    if (d.u8() != 0)
      a.unixUid = d.u32();
    else
      d.u32();
    a.active = d.u8() != 0;
    a.passwordHash = d.text();
    a.createdUnix = d.u64();
    a.modifiedUnix = d.u64();
    a.credentialEpoch = d.u32();
    if (a.id != id) damaged(kj::str("an associate record was moved"));
    return kj::mv(a);
  }
  return nullptr;
}

Result<Associate> Vault::requireAssociate(const store::ReadTxn& txn, int32_t id) const {
  KJ_IF_MAYBE(a, readAssociate(txn, id)) { return kj::mv(*a); }
  return noSuchAssociate(id);
}

void Vault::writeAssociate(store::WriteTxn& txn, const Associate& a) const {
  auto plain = encodeSecret([&](Encoder& e) {
    e.u32(a.id);
    e.text(a.name);
    e.u8(a.kind == Kind::SYSTEM ? 1 : 0);
    e.u8(a.userAdmin);
    KJ_IF_MAYBE(uid, a.unixUid) {
      e.u8(1);
      e.u32(*uid);
    } else {
      e.u8(0);
      e.u32(0);
    }
    e.u8(a.active);
    e.text(a.passwordHash);
    e.u64(a.createdUnix);
    e.u64(a.modifiedUnix);
    e.u32(a.credentialEpoch);
  });
  auto key = be32(a.id);
  txn.put(associates_, key, sealValue("associate", key, plain));
  // Sessions cache who their associate is; any change makes them look again.
  txn.moveGenerationOnCommit();
}

kj::Maybe<Associate> Vault::findAssociate(int32_t id) const {
  if (id <= 0) return nullptr;
  auto txn = env_.read();
  return readAssociate(txn, id);
}

kj::Maybe<Associate> Vault::findAssociateByName(kj::StringPtr name) const {
  auto txn = env_.read();
  auto folded = foldName(name);
  KJ_IF_MAYBE(id, txn.get(names_, indexHash("name", folded.asBytes()))) {
    // The index only points; the sealed record must say the same, or the index was edited.
    auto a = checkedIndexTarget(txn, "associate-names", *id);
    if (foldName(a.name) != folded) indexMismatch("associate-names");
    return kj::mv(a);
  }
  return nullptr;
}

Associate Vault::checkedIndexTarget(const store::ReadTxn& txn, kj::StringPtr table,
                                    kj::ArrayPtr<const kj::byte> value) const {
  if (value.size() != 4) indexMismatch(table);
  KJ_IF_MAYBE(a, readAssociate(txn, store::getBe32(value.begin()))) { return kj::mv(*a); }
  indexMismatch(table);
}

void Vault::indexMismatch(kj::StringPtr table) const {
  damaged(kj::str("table ", table,
                  " disagrees with the sealed associate records (tampered or "
                  "damaged); run credvaultd --verify and restore a backup"));
}

kj::Maybe<Associate> Vault::findAssociateByUid(uint32_t uid) const {
  auto txn = env_.read();
  KJ_IF_MAYBE(id, txn.get(uids_, indexHash("uid", be32(uid)))) {
    auto a = checkedIndexTarget(txn, "associate-uids", *id);
    if (a.unixUid != uid) indexMismatch("associate-uids");
    return kj::mv(a);
  }
  return nullptr;
}

Result<kj::Array<Associate>> Vault::listAssociates(const Principal& who) const {
  if (who.partnerApp || !(who.isSystem() || who.userAdmin)) {
    return deny("listing associates needs a system user or a user administrator");
  }
  kj::Vector<Associate> out;
  auto txn = env_.read();
  txn.scan(associates_, nullptr, [&](auto key, auto) {
    KJ_IF_MAYBE(a, readAssociate(txn, store::getBe32(key.begin()))) { out.add(kj::mv(*a)); }
    return true;
  });
  return out.releaseAsArray();
}

CheckedWrite<Associate> Vault::addAssociate(const Principal& who, NewAssociate na) const {
  CV_REFUSE_IF(requireSystem(who, "adding an associate"));
  CV_REFUSE_IF(checkAssociateName(na.name));
  kj::String hash;
  KJ_IF_MAYBE(pw, na.password) {
    CV_REFUSE_IF(checkPassword(*pw));
    hash = crypto::hashPassword(*pw, options_.passwordParams);
  }
  auto nameKey = indexHash("name", foldName(na.name).asBytes());
  kj::Maybe<kj::Array<kj::byte>> uidKey;
  KJ_IF_MAYBE(uid, na.unixUid) { uidKey = indexHash("uid", be32(*uid)); }
  int64_t now = nowUnix();
  WriteOp<Result<Associate>> op = [this, na = kj::mv(na), hash = kj::mv(hash),
                                   nameKey = kj::mv(nameKey), uidKey = kj::mv(uidKey),
                                   now](store::WriteTxn& txn) -> Result<Associate> {
    if (txn.get(names_, nameKey) != nullptr) {
      return refuse(ErrorCode::CONFLICT, "name",
                    kj::str("an associate with this name already exists"));
    }
    KJ_IF_MAYBE(k, uidKey) {
      if (txn.get(uids_, *k) != nullptr) {
        return refuse(ErrorCode::CONFLICT, "unixUid", kj::str("another associate has this uid"));
      }
    }
    uint32_t next = 1;
    KJ_IF_MAYBE(stored, txn.get(meta_, NEXT_ID_KEY)) {
      next = openValue32("meta", NEXT_ID_KEY, *stored);
    }
    if (next > MAX_ASSOCIATES) {
      return refuse(ErrorCode::LIMIT_EXCEEDED, "",
                    kj::str("the vault holds its maximum of associates"));
    }
    // An id in use would hand the new associate another's record and credentials.
    if (txn.get(associates_, be32(next)) != nullptr) indexMismatch("meta (next-id)");
    Associate a;
    a.id = next;
    a.name = kj::heapString(na.name);
    a.kind = na.kind;
    a.userAdmin = na.userAdmin;
    a.unixUid = na.unixUid;
    a.active = true;
    a.passwordHash = kj::heapString(hash);
    a.createdUnix = a.modifiedUnix = now;
    writeAssociate(txn, a);
    txn.put(meta_, NEXT_ID_KEY, macValue("meta", NEXT_ID_KEY, next + 1));
    txn.put(names_, nameKey, be32(a.id));
    KJ_IF_MAYBE(k, uidKey) { txn.put(uids_, *k, be32(a.id)); }
    return a;
  };
  return kj::mv(op);
}

CheckedWrite<Associate> Vault::setAssociate(const Principal& who, int32_t id,
                                            AssociateUpdate update) const {
  CV_REFUSE_IF(requireSystem(who, "changing an associate"));
  KJ_IF_MAYBE(n, update.name) { CV_REFUSE_IF(checkAssociateName(*n)); }
  int64_t now = nowUnix();
  WriteOp<Result<Associate>> op = [this, id, update = kj::mv(update),
                                   now](store::WriteTxn& txn) -> Result<Associate> {
    auto found = requireAssociate(txn, id);
    if (!found.ok()) return found.takeRefusal();
    auto& a = found.value();
    KJ_IF_MAYBE(n, update.name) {
      auto oldKey = indexHash("name", foldName(a.name).asBytes());
      auto newKey = indexHash("name", foldName(*n).asBytes());
      if (newKey != oldKey.asPtr()) {
        if (txn.get(names_, newKey) != nullptr) {
          return refuse(ErrorCode::CONFLICT, "name",
                        kj::str("an associate with this name already exists"));
        }
        txn.del(names_, oldKey);
        txn.put(names_, newKey, be32(id));
      }
      a.name = kj::heapString(*n);
    }
    KJ_IF_MAYBE(k, update.kind) { a.kind = *k; }
    KJ_IF_MAYBE(u, update.userAdmin) { a.userAdmin = *u; }
    KJ_IF_MAYBE(uid, update.unixUid) {
      KJ_IF_MAYBE(old, a.unixUid) { txn.del(uids_, indexHash("uid", be32(*old))); }
      KJ_IF_MAYBE(newUid, *uid) {
        auto key = indexHash("uid", be32(*newUid));
        if (txn.get(uids_, key) != nullptr) {
          return refuse(ErrorCode::CONFLICT, "unixUid", kj::str("another associate has this uid"));
        }
        txn.put(uids_, key, be32(id));
      }
      a.unixUid = *uid;
    }
    KJ_IF_MAYBE(act, update.active) {
      if (a.active && !*act) ++a.credentialEpoch;  // ends the associate's tickets
      a.active = *act;
    }
    a.modifiedUnix = now;
    writeAssociate(txn, a);
    return kj::mv(found);
  };
  return kj::mv(op);
}

CheckedWrite<uint32_t> Vault::removeAssociate(const Principal& who, int32_t id) const {
  CV_REFUSE_IF(requireSystem(who, "removing an associate"));
  WriteOp<Result<uint32_t>> op = [this, id](store::WriteTxn& txn) -> Result<uint32_t> {
    auto found = requireAssociate(txn, id);
    if (!found.ok()) return found.takeRefusal();
    auto& a = found.value();
    // Credentials go with their associate: kept, they would be readable by whoever is
    // later given the same id or uid. See docs/associates.md.
    kj::Vector<kj::Array<kj::byte>> doomed;
    txn.scan(credentials_, be32(id), [&](auto key, auto) {
      doomed.add(kj::heapArray(key));
      return true;
    });
    for (auto& k : doomed) txn.del(credentials_, k);
    txn.del(counters_, be32(id));
    txn.del(names_, indexHash("name", foldName(a.name).asBytes()));
    KJ_IF_MAYBE(uid, a.unixUid) { txn.del(uids_, indexHash("uid", be32(*uid))); }
    txn.del(associates_, be32(id));
    txn.moveGenerationOnCommit();
    return uint32_t(doomed.size());
  };
  return kj::mv(op);
}

CheckedWrite<bool> Vault::setPassword(const Principal& who, int32_t id,
                                      crypto::Secret password) const {
  if (!(who.associateId == id && !who.partnerApp)) {
    CV_REFUSE_IF(requireSystem(who, "setting a password"));
  }
  CV_REFUSE_IF(checkPassword(password));
  auto hash = crypto::hashPassword(password, options_.passwordParams);
  int64_t now = nowUnix();
  WriteOp<Result<bool>> op = [this, id, hash = kj::mv(hash),
                              now](store::WriteTxn& txn) -> Result<bool> {
    auto found = requireAssociate(txn, id);
    if (!found.ok()) return found.takeRefusal();
    auto& a = found.value();
    a.passwordHash = kj::heapString(hash);
    ++a.credentialEpoch;  // a new password ends every ticket issued under the old one
    a.modifiedUnix = now;
    writeAssociate(txn, a);
    return true;
  };
  return kj::mv(op);
}

WriteOp<bool> Vault::replacePasswordHash(int32_t id, kj::String hash, uint32_t epoch) const {
  return [this, id, hash = kj::mv(hash), epoch](store::WriteTxn& txn) -> bool {
    KJ_IF_MAYBE(a, readAssociate(txn, id)) {
      if (a->credentialEpoch != epoch) return false;
      a->passwordHash = kj::heapString(hash);
      writeAssociate(txn, *a);
      return true;
    }
    return false;
  };
}

kj::Maybe<Associate> Vault::verifyPassword(kj::StringPtr name,
                                           const crypto::Secret& password) const {
  // An unknown or inactive name pays for one hash too, so timing does not tell names apart.
  const kj::String& dummy = dummyHash_;
  kj::Maybe<Associate> found;
  if (utf8Length(name) != nullptr && name.size() <= MAX_NAME_CHARS * 4) {
    found = findAssociateByName(name);
  }
  KJ_IF_MAYBE(a, found) {
    // Verified whether or not the associate is active: an inactive account answers after
    // the same one hash as an active one, so timing does not tell them apart.
    bool ok = a->passwordHash.size() > 0 ? crypto::verifyPassword(a->passwordHash, password)
                                         : (crypto::verifyPassword(dummy, password), false);
    if (ok && a->active) return kj::mv(*a);
    return nullptr;
  }
  crypto::verifyPassword(dummy, password);
  return nullptr;
}

// ---- credentials -----------------------------------------------------------------------

Result<int32_t> Vault::resolveTarget(const Principal& who, int32_t associateId) const {
  if (who.partnerApp) return deny("User management is not allowed for partner apps");
  if (associateId < 0) {
    return invalidArgument("associateId", "associateId must be 0 (self) or a positive number");
  }
  if (associateId > 0) return associateId;
  if (who.associateId == 0) {
    return refuse(ErrorCode::NOT_FOUND, "associateId",
                  kj::str("the caller is not mapped to an associate; name one explicitly"));
  }
  return who.associateId;
}

Result<int32_t> Vault::reachTarget(const Principal& who, int32_t associateId,
                                   kj::Maybe<kj::StringPtr> type, kj::StringPtr verb,
                                   kj::Maybe<Refusal> badArgument) const {
  auto target = resolveTarget(who, associateId);
  if (!target.ok()) return target.takeRefusal();
  int32_t id = target.value();
  KJ_IF_MAYBE(t, type) { CV_REFUSE_IF(checkType(*t)); }
  CV_REFUSE_IF(kj::mv(badArgument));
  CV_REFUSE_IF(checkReach(who, id, verb));
  return id;
}

kj::Array<kj::byte> Vault::typePrefix(int32_t associateId, kj::StringPtr type) const {
  auto out = kj::heapArray<kj::byte>(4 + INDEX_HASH_PART);
  store::putBe32(out.begin(), associateId);
  auto h = indexHash("type", type.asBytes());
  memcpy(out.begin() + 4, h.begin(), INDEX_HASH_PART);
  return out;
}

kj::Array<kj::byte> Vault::credentialKey(int32_t associateId, kj::StringPtr type,
                                         kj::StringPtr publicValue) const {
  auto out = kj::heapArray<kj::byte>(4 + 2 * INDEX_HASH_PART);
  auto prefix = typePrefix(associateId, type);
  memcpy(out.begin(), prefix.begin(), prefix.size());
  auto entry = encodePlain([&](Encoder& e) {
    e.text(type);
    e.text(publicValue);
  });
  auto h = indexHash("credential", entry);
  memcpy(out.begin() + prefix.size(), h.begin(), INDEX_HASH_PART);
  return out;
}

kj::Array<kj::byte> Vault::sealCredential(int32_t associateId, kj::StringPtr type,
                                          const Credential& c,
                                          kj::Maybe<const crypto::Secret&> keptSecret) const {
  auto key = credentialKey(associateId, type, c.publicValue);
  return sealValue("credential", key, encodeCredentialRecord(type, c, keptSecret));
}

using OpenedCredential = CredentialRecord;

// Opens the record stored under `key`; the key is the associated data, so a record copied
// under another key (another owner, type or public value) fails to open.
static OpenedCredential openAt(const Vault& vault, kj::ArrayPtr<const kj::byte> key,
                               kj::ArrayPtr<const kj::byte> stored, bool withSecret) {
  auto plain = vault.openValue("credential", key, stored);
  return decodeCredentialRecord(plain.reveal(), withSecret);
}

void Vault::upgradeCredentialRecords(store::WriteTxn& txn) const {
  // Collected first: LMDB cursors must not walk a table while it is written.
  kj::Vector<kj::Array<kj::byte>> keys;
  txn.scan(credentials_, nullptr, [&](auto key, auto) {
    keys.add(kj::heapArray(key));
    return true;
  });
  for (auto& key : keys) {
    KJ_REQUIRE(key.size() >= 4, "the credential table is damaged");
    auto plain = openValue("credential", key, KJ_ASSERT_NONNULL(txn.get(credentials_, key)));
    if (isCurrentCredentialRecord(plain.reveal())) continue;
    // A record is resealed under the key it was found at: a record that does not belong
    // there did not open above (the key is its associated data).
    auto record = decodeCredentialRecord(plain.reveal(), true);
    txn.put(credentials_, key,
            sealValue("credential", key, encodeCredentialRecord(record.type, record.credential)));
  }
}

Result<Credential> Vault::createDefault(const Principal& who) const {
  if (who.partnerApp) return deny("User management is not allowed for partner apps");
  if (who.method == AuthMethod::NONE) {
    return refuse(ErrorCode::NOT_AUTHENTICATED, "", kj::str("not authenticated"));
  }
  Credential c;
  c.isActive = true;
  c.secretValue = crypto::Secret();
  return c;
}

Result<kj::Array<Credential>> Vault::get(const Principal& who, int32_t associateId,
                                         kj::StringPtr type) const {
  auto got = tryGet(who, associateId, type, SIZE_MAX);
  if (!got.ok()) return got.takeRefusal();
  return KJ_ASSERT_NONNULL(kj::mv(got).value());
}

Result<kj::Maybe<kj::Array<Credential>>> Vault::tryGet(const Principal& who, int32_t associateId,
                                                       kj::StringPtr type, size_t limit) const {
  auto target = reachTarget(who, associateId, type, "read");
  if (!target.ok()) return target.takeRefusal();
  int32_t id = target.value();
  auto access = accessTo(who, id);
  auto txn = env_.read();
  kj::Vector<Credential> out;
  bool tooMany = false;
  auto prefix = typePrefix(id, type);
  txn.scan(credentials_, prefix, [&](auto key, auto value) {
    if (out.size() >= limit) {
      tooMany = true;
      return false;
    }
    auto opened = openAt(*this, key, value, access == Access::FULL);
    if (opened.type != type) {
      damaged(kj::str("a credential record is filed under the wrong type"));
    }
    out.add(kj::mv(opened.credential));
    return true;
  });
  if (tooMany) return kj::Maybe<kj::Array<Credential>>(nullptr);
  // Credentials exist only while their associate does (removeAssociate deletes them in the
  // same transaction), so only an empty answer needs the associate looked up.
  if (out.empty() && readAssociate(txn, id) == nullptr) return noSuchAssociate(id);
  return kj::Maybe<kj::Array<Credential>>(out.releaseAsArray());
}

uint32_t Vault::counter(const store::ReadTxn& txn, int32_t associateId) const {
  auto key = be32(associateId);
  KJ_IF_MAYBE(v, txn.get(counters_, key)) { return openValue32("credential-counts", key, *v); }
  return 0;
}

void Vault::setCounter(store::WriteTxn& txn, int32_t associateId, uint32_t value) const {
  if (value == 0) {
    txn.del(counters_, be32(associateId));
  } else {
    auto key = be32(associateId);
    txn.put(counters_, key, macValue("credential-counts", key, value));
  }
}

CheckedWrite<bool> Vault::save(const Principal& who, int32_t associateId, kj::StringPtr type,
                               Credential credential) const {
  auto target = reachTarget(who, associateId, type, "save", checkCredential(credential));
  if (!target.ok()) return target.takeRefusal();
  int32_t id = target.value();
  auto key = credentialKey(id, type, credential.publicValue);
  WriteOp<Result<bool>> op = [this, id, key = kj::mv(key), type = kj::heapString(type),
                              credential =
                                  kj::mv(credential)](store::WriteTxn& txn) -> Result<bool> {
    if (readAssociate(txn, id) == nullptr) return noSuchAssociate(id);
    bool created = true;
    kj::Maybe<crypto::Secret> kept;
    KJ_IF_MAYBE(existing, txn.get(credentials_, key)) {
      created = false;
      if (credential.secretValue == nullptr) {
        auto opened = openAt(*this, key, *existing, true);
        kept = kj::mv(opened.credential.secretValue);
      }
    }
    if (created) {
      uint32_t n = counter(txn, id);
      if (n >= MAX_CREDENTIALS_PER_ASSOCIATE) {
        return refuse(ErrorCode::LIMIT_EXCEEDED, "",
                      kj::str("associate ", id, " already has ", n, " credentials, the limit"));
      }
      setCounter(txn, id, n + 1);
    }
    // With the stored secret when one is kept; the caller's carrier stays untouched for reruns.
    txn.put(credentials_, key, sealCredential(id, type, credential, kept));
    return created;
  };
  return kj::mv(op);
}

CheckedWrite<bool> Vault::update(const Principal& who, int32_t associateId, kj::StringPtr type,
                                 kj::StringPtr publicValue, CredentialUpdate update) const {
  auto target = reachTarget(who, associateId, type, "change",
                            checkText("publicValue", publicValue, MAX_PUBLIC_VALUE_CHARS));
  if (!target.ok()) return target.takeRefusal();
  int32_t id = target.value();
  // Each given field alone; the combination (validTo after validFrom) once merged below.
  {
    Credential probe;
    probe.publicValue = kj::heapString(publicValue);
    KJ_IF_MAYBE(c, update.comment) { probe.comment = kj::heapString(*c); }
    KJ_IF_MAYBE(f, update.validFrom) { probe.validFrom = *f; }
    KJ_IF_MAYBE(t, update.validTo) { probe.validTo = *t; }
    if (update.validFrom != nullptr && update.validTo != nullptr) {
      CV_REFUSE_IF(checkCredential(probe));
    } else {
      probe.validFrom = update.validFrom.orDefault(0);
      probe.validTo = 0;
      CV_REFUSE_IF(checkCredential(probe));
      probe.validFrom = 0;
      probe.validTo = update.validTo.orDefault(0);
      CV_REFUSE_IF(checkCredential(probe));
    }
    KJ_IF_MAYBE(sec, update.secretValue) {
      Credential secretOnly;
      secretOnly.secretValue = crypto::Secret::copyOf(sec->reveal());
      CV_REFUSE_IF(checkCredential(secretOnly));
    }
  }
  auto key = credentialKey(id, type, publicValue);
  WriteOp<Result<bool>> op = [this, id, key = kj::mv(key), type = kj::heapString(type),
                              update = kj::mv(update)](store::WriteTxn& txn) -> Result<bool> {
    if (readAssociate(txn, id) == nullptr) return noSuchAssociate(id);
    auto stored = txn.get(credentials_, key);
    if (stored == nullptr) {
      return refuse(ErrorCode::NOT_FOUND, "publicValue",
                    kj::str("no credential of this type has this public value"));
    }
    auto opened = openAt(*this, key, KJ_ASSERT_NONNULL(stored), true);
    if (opened.type != type) {
      damaged(kj::str("a credential record is filed under the wrong type"));
    }
    // The op may run again (map growth): read the captured update, never move out of it.
    auto& c = opened.credential;
    KJ_IF_MAYBE(f, update.validFrom) { c.validFrom = *f; }
    KJ_IF_MAYBE(t, update.validTo) { c.validTo = *t; }
    KJ_IF_MAYBE(m, update.comment) { c.comment = kj::heapString(*m); }
    KJ_IF_MAYBE(a, update.isActive) { c.isActive = *a; }
    KJ_IF_MAYBE(sec, update.secretValue) { c.secretValue = crypto::Secret::copyOf(sec->reveal()); }
    if (c.validFrom != 0 && c.validTo != 0 && c.validTo < c.validFrom) {
      return invalidArgument("validTo", "validTo would be before validFrom");
    }
    txn.put(credentials_, key, sealCredential(id, type, c));
    return true;
  };
  return kj::mv(op);
}

Result<kj::Array<ListedCredential>> Vault::list(const Principal& who, int32_t associateId,
                                                kj::StringPtr type) const {
  auto target = reachTarget(who, associateId,
                            type.size() > 0 ? kj::Maybe<kj::StringPtr>(type) : nullptr, "read");
  if (!target.ok()) return target.takeRefusal();
  int32_t id = target.value();
  auto txn = env_.read();
  kj::Vector<ListedCredential> out;
  auto prefix = type.size() > 0 ? typePrefix(id, type) : kj::heapArray<kj::byte>(be32(id));
  txn.scan(credentials_, prefix, [&](auto key, auto value) {
    auto opened = openAt(*this, key, value, false);
    if (type.size() > 0 && opened.type != type) {
      damaged(kj::str("a credential record is filed under the wrong type"));
    }
    out.add(ListedCredential{id, kj::mv(opened.type), kj::mv(opened.credential)});
    return true;
  });
  if (out.empty() && readAssociate(txn, id) == nullptr) return noSuchAssociate(id);
  return out.releaseAsArray();
}

kj::Maybe<Refusal> Vault::visitAll(const Principal& who, kj::StringPtr type,
                                   kj::FunctionParam<void(ListedCredential&&)> each) const {
  return visitAllWhile(who, type, [&](ListedCredential&& entry) {
    each(kj::mv(entry));
    return true;
  });
}

kj::Maybe<Refusal> Vault::visitAllWhile(const Principal& who, kj::StringPtr type,
                                        kj::FunctionParam<bool(ListedCredential&&)> each) const {
  auto decision = authorize(who, Operation::LIST_ALL, 0);
  if (!decision.ok()) return decision.takeRefusal();
  if (type.size() > 0) CV_REFUSE_IF(checkType(type));
  auto txn = env_.read();
  txn.scan(credentials_, nullptr, [&](auto key, auto value) {
    KJ_REQUIRE(key.size() >= 4, "the credential table is damaged");
    auto opened = openAt(*this, key, value, false);
    if (type.size() > 0 && opened.type != type) return true;
    return each(ListedCredential{int32_t(store::getBe32(key.begin())), kj::mv(opened.type),
                                 kj::mv(opened.credential)});
  });
  return nullptr;
}

Result<kj::Array<ListedCredential>> Vault::listAll(const Principal& who, kj::StringPtr type) const {
  kj::Vector<ListedCredential> out;
  size_t bytes = 0;
  bool tooLong = false;
  CV_REFUSE_IF(visitAllWhile(who, type, [&](ListedCredential&& entry) {
    auto& c = entry.credential;
    bytes += entry.type.size() + c.publicValue.size() + c.comment.size() + c.carried.bytes();
    if (out.size() >= MAX_LISTED_CREDENTIALS || bytes > MAX_LISTED_BYTES) {
      tooLong = true;
      return false;
    }
    out.add(kj::mv(entry));
    return true;
  }));
  if (tooLong) {
    return refuse(ErrorCode::LIMIT_EXCEEDED, "",
                  kj::str("the listing is longer than ", MAX_LISTED_CREDENTIALS, " entries or ",
                          MAX_LISTED_BYTES >> 20, " MiB; name a type or an associate"));
  }
  return out.releaseAsArray();
}

CheckedWrite<bool> Vault::remove(const Principal& who, int32_t associateId, kj::StringPtr type,
                                 kj::StringPtr publicValue) const {
  auto target = reachTarget(who, associateId, type, "remove",
                            checkText("publicValue", publicValue, MAX_PUBLIC_VALUE_CHARS));
  if (!target.ok()) return target.takeRefusal();
  int32_t id = target.value();
  auto key = credentialKey(id, type, publicValue);
  WriteOp<Result<bool>> op = [this, id, key = kj::mv(key)](store::WriteTxn& txn) -> Result<bool> {
    if (readAssociate(txn, id) == nullptr) return noSuchAssociate(id);
    if (!txn.del(credentials_, key)) return false;
    uint32_t n = counter(txn, id);
    setCounter(txn, id, n > 0 ? n - 1 : 0);
    return true;
  };
  return kj::mv(op);
}

// ---- keys and maintenance ----------------------------------------------------------------

Result<uint32_t> Vault::rotateDataKey(const Principal& who) {
  CV_REFUSE_IF(requireSystem(who, "rotating the data key"));
  // No record may be sealed with a key that a failed commit would leave unstored: the new key
  // is made aside, stored, and only then loaded into the keyring, where it becomes current.
  // The keyring is never held while waiting for LMDB's writer lock: a write (the group
  // committer's thread) holds that lock and seals under the keyring, so the opposite order
  // hung the daemon for good (found by the daemon-rpc fuzz target).
  uint32_t id;
  kj::Array<kj::byte> wrapped;
  {
    auto ring = keyring_.lockShared();
    id = ring->currentId() + 1;
    crypto::Keyring aside(crypto::Secret::copyOf(ring->masterKey().reveal()));
    wrapped = aside.create(id);
  }
  env_.write([&](store::WriteTxn& txn) {
    // A rotation that committed meanwhile took this id: never overwrite a stored key.
    KJ_REQUIRE(txn.get(keys_, be32(id)) == nullptr, "another data key rotation came first");
    txn.put(keys_, be32(id), wrapped);
  });
  KJ_ASSERT(keyring_.lockExclusive()->load(id, wrapped), "the new data key does not open");
  return id;
}

kj::Maybe<Refusal> Vault::changeMasterKey(const Principal& who, crypto::Secret newMasterKey) {
  CV_REFUSE_IF(requireSystem(who, "changing the master key"));
  if (newMasterKey.size() != crypto::KEY_BYTES) {
    return invalidArgument("keyFile", "the new key is not 32 bytes");
  }
  // The keyring is taken inside the write transaction, after LMDB's writer lock, the order
  // every write follows (see rotateDataKey): taken before, this waited for a write being
  // committed while that write waited for the keyring.
  env_.write([&](store::WriteTxn& txn) {
    kj::Vector<uint32_t> ids;
    txn.scan(keys_, nullptr, [&](auto key, auto) {
      ids.add(store::getBe32(key.begin()));
      return true;
    });
    auto ring = keyring_.lockShared();
    for (auto id : ids) txn.put(keys_, be32(id), ring->wrapUnder(id, newMasterKey));
  });
  keyring_.lockExclusive()->replaceMasterKey(kj::mv(newMasterKey));
  return nullptr;
}

kj::Maybe<Refusal> Vault::backup(const Principal& who, int fd) {
  CV_REFUSE_IF(requireSystem(who, "taking a backup"));
  KJ_IF_MAYBE(lmdb, env_.lmdb()) {
    lmdb->backup(fd);
    return nullptr;
  }
  return invalidArgument(
      "", "a vault kept in ", env_.backendName(),
      " is backed up with the database's own tools (pg_dump; docs/operations.md)");
}

Result<crypto::Secret> Vault::masterKeyForVerify(const Principal& who) const {
  CV_REFUSE_IF(requireSystem(who, "verifying the vault"));
  return crypto::Secret::copyOf(keyring_.lockShared()->masterKey().reveal());
}

VaultCounts Vault::counts() const {
  auto txn = env_.read();
  return {txn.count(credentials_), txn.count(associates_), keyring_.lockShared()->currentId()};
}

}  // namespace credvault::core
