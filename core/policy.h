// credvault — who may do what: the one permission decision (DESIGN.md §3) for every
// operation the daemon serves, administration included.
//
// Pure functions of a Principal, an operation and a target associate: no store, no I/O,
// no logging. The daemon asks `authorize` at its choke point before any method body runs,
// with the principal as it stands now (Identity::current); core's own methods ask again
// (defence in depth), through the same functions.

#pragma once

#include "error.h"
#include "model.h"

namespace credvault::core {

enum class Operation : uint8_t {
  // Open to anyone who can reach the socket (identity is established by the call itself).
  WHOAMI,
  AUTHENTICATE,   // password, ticket or API token
  REVOKE_TICKET,  // holding a ticket is the authority to revoke it
  HEALTH,         // liveness (the gateway's /healthz): tells nothing about the vault
  OPEN_SESSION,   // peer credentials: needs a mapped uid or a system uid
  STATUS,         // the same
  METRICS,        // the daemon's figures (counts, queues): system users and front ends
  // Session.
  CREATE_DEFAULT,
  GET,  // another's list needs MANAGE; their SecretValue needs FULL
  SAVE,
  REMOVE,
  ADMIN,  // obtain the Admin capability
  LOGOUT,
  MANAGE_TOKENS,  // list, revoke API tokens of `target`
  CREATE_TOKEN,   // the same, from a session that is not itself a ticket or token session
  LIST_ALL,       // every associate's listing (no secrets): system users and user admins
  // Admin.
  LIST_ASSOCIATES,    // list and find
  CHANGE_ASSOCIATES,  // add, change, remove
  SET_PASSWORD,       // of `target`: the associate itself or a system user
  MAINTAIN,           // backup, key rotation, master key change, applications, audit hash
};

// Whether `op` is open to anyone who can reach the socket (the caller need not be anyone).
bool openToAnyone(Operation op);

// Stable lower-case name ("get", "manage-tokens"), for messages and tests.
kj::StringPtr operationName(Operation op);

// What `who` may do with associate `target`'s credentials.
enum class Access {
  NONE,    // nothing
  MANAGE,  // list (SecretValue blanked), save, remove — userAdmin on others
  FULL,    // everything, SecretValue included — self, system users
};
Access accessTo(const Principal& who, int32_t targetAssociate);

// The decision. `target` is the associate acted on (the caller's own id when the call names
// none; 0 when the operation has no target). Refuses PERMISSION_DENIED with a message that
// says what is needed, or NOT_AUTHENTICATED when `who` is no one. Else the access level for
// credential operations (FULL otherwise).
Result<Access> authorize(const Principal& who, Operation op, int32_t target);

// PERMISSION_DENIED ("<what> needs a system user") unless `who` is a system user (and not a
// partner app); null when it is.
[[nodiscard]] kj::Maybe<Refusal> requireSystem(const Principal& who, kj::StringPtr what);

}  // namespace credvault::core
