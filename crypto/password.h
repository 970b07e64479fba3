// credvault — password hashing (Argon2id via crypto_pwhash_str).
//
// Hashes are self-describing strings ($argon2id$v=19$m=…,t=…,p=1$…), so the parameters a
// hash was made with are known at verification time and a rehash can be triggered when
// the configured cost changes. Never logs.

#pragma once

#include "secret.h"
#include <kj/string.h>

namespace credvault::crypto {

struct PasswordParams {
  uint64_t opsLimit;  // Argon2id passes
  size_t memLimit;    // bytes
};

// libsodium's "interactive" level: 2 passes over 64 MiB (~0.1 s here). The daemon's
// configuration may change it; see docs/authentication.md.
PasswordParams defaultPasswordParams();
// The cheapest parameters libsodium accepts, for tests only.
PasswordParams minimalPasswordParams();

kj::String hashPassword(const Secret& password, const PasswordParams& params);
bool verifyPassword(kj::StringPtr hash, const Secret& password);
bool passwordNeedsRehash(kj::StringPtr hash, const PasswordParams& params);

}  // namespace credvault::crypto
