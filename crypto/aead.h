// credvault — authenticated encryption of records.
//
// XChaCha20-Poly1305-IETF with a random 192-bit nonce per seal. The sealed form is
// nonce || ciphertext || tag. The associated data is not stored: the caller rebuilds it
// from the record's context (format, key id, owner, type, public value), so a sealed value
// moved to another record fails to open. Never logs.

#pragma once

#include "secret.h"
#include <kj/array.h>
#include <kj/string.h>
#include <kj/common.h>
#include <stdint.h>

namespace credvault::crypto {

constexpr size_t KEY_BYTES = 32;
constexpr size_t NONCE_BYTES = 24;
constexpr size_t TAG_BYTES = 16;
constexpr size_t SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

// Seals `plaintext` under `key` (KEY_BYTES) bound to `ad`.
kj::Array<kj::byte> seal(const Secret& key, kj::ArrayPtr<const kj::byte> plaintext,
                         kj::ArrayPtr<const kj::byte> ad);

// Opens a sealed value. Returns null when the key, the associated data or the bytes do not
// match (tampering, wrong key, moved record); never returns unauthenticated bytes.
kj::Maybe<Secret> open(const Secret& key, kj::ArrayPtr<const kj::byte> sealed,
                       kj::ArrayPtr<const kj::byte> ad);

// Keyed hash (BLAKE2b-256) used for index keys and ticket/token lookup: deterministic, so a
// value can be found by its hash, but useless without the key.
constexpr size_t MAC_BYTES = 32;
kj::Array<kj::byte> keyedHash(const Secret& key, kj::ArrayPtr<const kj::byte> message);

// Derives a KEY_BYTES subkey for a purpose (libsodium's crypto_kdf; `context` is 8 chars).
Secret deriveKey(const Secret& masterKey, uint64_t id, const char (&context)[9]);

// `bytes` random bytes, base64-encoded (standard alphabet with padding, or URL-safe
// without). For bearer tokens that are handed to their owner once.
kj::String randomBase64(size_t bytes, bool urlSafe);

}  // namespace credvault::crypto
