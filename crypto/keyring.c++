#include "keyring.h"
#include "aead.h"

#include <sodium.h>
#include <kj/debug.h>
#include <kj/encoding.h>

namespace credvault::crypto {

namespace {

// Associated data for a wrapped key: a label and the key id, so a wrapped key cannot be
// swapped for another id.
kj::FixedArray<kj::byte, 20> wrapAd(uint32_t id) {
  kj::FixedArray<kj::byte, 20> ad;
  memcpy(ad.begin(), "credvault-key-v1", 16);
  ad[16] = id >> 24;
  ad[17] = id >> 16;
  ad[18] = id >> 8;
  ad[19] = id;
  return ad;
}

}  // namespace

Keyring::Keyring(Secret masterKey) : master_(kj::mv(masterKey)) {
  KJ_REQUIRE(master_.size() == KEY_BYTES, "master key must be 32 bytes");
}

bool Keyring::load(uint32_t id, kj::ArrayPtr<const kj::byte> wrapped) {
  auto ad = wrapAd(id);
  KJ_IF_MAYBE(key, open(master_, wrapped, ad)) {
    if (key->size() != KEY_BYTES) return false;
    keys_.upsert(id, kj::mv(*key), [](Secret& old, Secret&& repl) { old = kj::mv(repl); });
    if (id != INDEX_KEY_ID && id > current_) current_ = id;
    return true;
  }
  return false;
}

kj::Array<kj::byte> Keyring::create(uint32_t id) {
  KJ_REQUIRE(keys_.find(id) == nullptr, "key id already in use", id);
  auto key = Secret::random(KEY_BYTES);
  auto ad = wrapAd(id);
  auto wrapped = seal(master_, key.reveal(), ad);
  keys_.insert(id, kj::mv(key));
  if (id != INDEX_KEY_ID && id > current_) current_ = id;
  return wrapped;
}

void Keyring::forget(uint32_t id) {
  keys_.erase(id);
  current_ = 0;
  for (auto& entry : keys_) {
    if (entry.key != INDEX_KEY_ID && entry.key > current_) current_ = entry.key;
  }
}

kj::Maybe<const Secret&> Keyring::find(uint32_t id) const {
  return keys_.find(id);
}

const Secret& Keyring::indexKey() const {
  KJ_IF_MAYBE(k, keys_.find(INDEX_KEY_ID)) { return *k; }
  KJ_FAIL_REQUIRE("index key not loaded");
}

kj::Array<kj::byte> Keyring::wrapUnder(uint32_t id, const Secret& newMasterKey) const {
  KJ_REQUIRE(newMasterKey.size() == KEY_BYTES, "master key must be 32 bytes");
  KJ_IF_MAYBE(k, keys_.find(id)) {
    auto ad = wrapAd(id);
    return seal(newMasterKey, k->reveal(), ad);
  }
  KJ_FAIL_REQUIRE("no such key", id);
}

void Keyring::replaceMasterKey(Secret newMasterKey) {
  KJ_REQUIRE(newMasterKey.size() == KEY_BYTES, "master key must be 32 bytes");
  master_ = kj::mv(newMasterKey);
}

kj::String Keyring::fingerprint(const Secret& masterKey) {
  // A hash under a fixed label; 8 bytes are enough to tell keys apart and reveal nothing.
  kj::byte out[8];
  static const kj::byte LABEL[] = "credvault-master-key-fingerprint";
  crypto_generichash(out, sizeof(out), LABEL, sizeof(LABEL) - 1, masterKey.reveal().begin(),
                     masterKey.size());
  return kj::encodeHex(kj::arrayPtr(out, sizeof(out)));
}

}  // namespace credvault::crypto
