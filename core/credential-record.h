// credvault — the plaintext of a sealed credential record: encode before sealing, decode after
// opening. core/vault.c++ seals and opens; this module only lays out bytes.
//
// Two layouts, told apart by the first byte of the plaintext (which the AEAD authenticates
// with the rest, so it cannot be flipped without the record failing to open):
//   0x00  positional (releases up to schema version 2): big-endian length-prefixed type,
//         public value, validFrom, validTo, isActive, comment, secret. Read only.
//   0x02  an 8-byte header (0x02 and seven zero bytes), then a single-segment Cap'n Proto
//         message of core/credential-record.capnp's stored.Credential. Written since schema
//         version 3; later fields are added to that struct, never as a new layout.
//
// Security invariant: the plaintext holds the secret, so encoding writes only into Secret
// memory (the capnp segment is a Secret too), and decoding copies the secret straight into a
// Secret. A plaintext that opened but does not decode is an integrity failure (core/error.h),
// whatever is wrong with it; no other exception, crash or read past the end comes out of
// these bytes.

#pragma once

#include "model.h"
#include "crypto/secret.h"

namespace credvault::core {

// A credential as filed: its type (part of the record's key) and its fields.
struct CredentialRecord {
  kj::String type;
  Credential credential;
};

// The current layout (0x02). An absent secretValue is stored as an empty secret; `secret`,
// when given, is stored instead of credential.secretValue (a save that keeps the stored one).
crypto::Secret encodeCredentialRecord(kj::StringPtr type, const Credential& credential,
                                      kj::Maybe<const crypto::Secret&> secret = nullptr);

// Either layout. Without `withSecret` the secret is not copied out (secretValue stays null).
CredentialRecord decodeCredentialRecord(kj::ArrayPtr<const kj::byte> plain, bool withSecret);

// Whether `plain` is in the layout encodeCredentialRecord writes (the upgrade rewrites the rest).
bool isCurrentCredentialRecord(kj::ArrayPtr<const kj::byte> plain);

// The retired positional layout, for tests that must produce what an earlier release wrote.
crypto::Secret encodePositionalCredentialRecord(kj::StringPtr type, const Credential& credential);

}  // namespace credvault::core
