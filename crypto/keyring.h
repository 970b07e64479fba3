// credvault — the key hierarchy.
//
// A master key (KEK) wraps data keys (DEKs). Wrapped keys are stored by the caller (core/,
// in the database); this class only holds the unwrapped keys in Secret memory. Key id 0
// is the index key (keyed hashes for lookups); ids >= 1 are data keys, the highest is the
// one new records are sealed with. Rotating adds a data key; changing the master key
// re-wraps every key without touching records. Never logs.

#pragma once

#include "secret.h"
#include <kj/map.h>
#include <kj/array.h>

namespace credvault::crypto {

constexpr uint32_t INDEX_KEY_ID = 0;

class Keyring {
 public:
  explicit Keyring(Secret masterKey);
  KJ_DISALLOW_COPY(Keyring);

  // Unwraps and keeps a stored key. Returns false when it does not open under this master
  // key (the wrong master key, or a damaged key record); the keyring is then unchanged.
  bool load(uint32_t id, kj::ArrayPtr<const kj::byte> wrapped);

  // Creates a fresh random key with this id and returns its wrapped form for storage.
  kj::Array<kj::byte> create(uint32_t id);

  // Drops a key created by create() whose wrapped form could not be stored.
  void forget(uint32_t id);

  // The newest data key id (0 when there is none yet).
  uint32_t currentId() const { return current_; }
  kj::Maybe<const Secret&> find(uint32_t id) const;
  const Secret& indexKey() const;

  // The wrapped form of key `id` under `newMasterKey` (for re-wrapping before a switch).
  kj::Array<kj::byte> wrapUnder(uint32_t id, const Secret& newMasterKey) const;
  // After every key was re-wrapped and stored, adopt the new master key.
  void replaceMasterKey(Secret newMasterKey);

  // The master key itself, for opening a second, read-only view of the same vault (a
  // verification child, daemon/verify.h). Never logged; copy it only into a Secret.
  const Secret& masterKey() const { return master_; }

  // A short non-secret fingerprint of a master key (to tell keys apart in messages).
  static kj::String fingerprint(const Secret& masterKey);

 private:
  Secret master_;
  kj::HashMap<uint32_t, Secret> keys_;
  uint32_t current_ = 0;
};

}  // namespace credvault::crypto
