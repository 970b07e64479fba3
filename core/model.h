// credvault — the vault's data model. Plain values; no I/O.

#pragma once

#include "base/ticks.h"
#include "carried-fields.h"
#include "crypto/secret.h"
#include <kj/string.h>
#include <kj/one-of.h>

namespace credvault::core {

// .NET DateTime ticks (100 ns since 0001-01-01T00:00:00 UTC), as SuperOffice stores dates.
// 0 is DateTime.MinValue: "not set", an open end of a validity window. base/ticks.h.
using Ticks = int64_t;
using base::MAX_TICKS;  // 9999-12-31T23:59:59.9999999
using base::TICKS_PER_SECOND;
using base::UNIX_EPOCH_TICKS;

enum class Kind : uint8_t { USER = 0, SYSTEM = 1 };

enum class AuthMethod : uint8_t { NONE, PEER_CREDENTIALS, PASSWORD, TICKET, API_TOKEN };

struct Associate {
  int32_t id = 0;
  kj::String name;
  Kind kind = Kind::USER;
  bool userAdmin = false;
  kj::Maybe<uint32_t> unixUid;
  bool active = true;
  kj::String passwordHash;  // Argon2id string; empty: no password login
  int64_t createdUnix = 0;
  int64_t modifiedUnix = 0;
  uint32_t credentialEpoch = 0;  // bumped when tickets must die (password change, deactivate)
};

struct Credential {
  Ticks validFrom = 0;
  Ticks validTo = 0;
  kj::String comment;
  // On save: null keeps the stored secret. On read: null when withheld from the caller.
  kj::Maybe<crypto::Secret> secretValue;
  kj::String publicValue;
  bool isActive = true;
  // Every other field of the schemas, which core stores and returns without reading: see
  // carried-fields.h. Never secret.
  CarriedFields carried;
};

// Who is calling, as established by the daemon (peer credentials, ticket, password, token).
struct Principal {
  int32_t associateId = 0;  // 0: no associate (e.g. root without a mapping)
  kj::String name;
  Kind kind = Kind::USER;
  bool userAdmin = false;
  AuthMethod method = AuthMethod::NONE;
  bool partnerApp = false;  // came with a partner application token (online mode)
  // The peer is a configured front end (uid 0 or gateway_uids): may read the daemon's
  // figures (Operation::METRICS), nothing more by itself.
  bool frontEnd = false;
  uint32_t uid = 0;
  uint32_t pid = 0;

  bool isSystem() const { return kind == Kind::SYSTEM; }
};

Principal clonePrincipal(const Principal& p);

}  // namespace credvault::core
