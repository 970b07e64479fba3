// credvault-gateway — the seven UntrustedCredentials operations and SoPrincipal login,
// independent of SOAP or REST.
//
// A frontend parses its wire format into an OpRequest and a Caller, and renders OpResult
// back; this layer checks SuperOffice's field limits, maps AssociateId 0 to "the
// authenticated associate" (SuperOffice's convention), and performs each operation as ONE
// round trip to the daemon: the authenticate call and the operation are sent together,
// the operation pipelined on the session the authentication returns. Nothing is cached
// between requests — a revoked ticket stops working at once.
//
// Never logs; Failure messages come from fixed text or the daemon (whose messages never
// contain secrets) and never include a value the client sent.

#pragma once

#include "frontends/common/sensitive.h"
#include "frontends/common/vault-link.h"

#include <kj/async.h>
#include <kj/vector.h>

namespace credvault::frontends {

enum class Op {
  CREATE_DEFAULT,
  GET,
  GET_FOR_ASSOCIATE,
  SAVE,
  SAVE_FOR_ASSOCIATE,
  REMOVE,
  REMOVE_FOR_ASSOCIATE,
};
constexpr size_t OP_COUNT = 7;

// "CreateDefaultUntrustedCredentials", ... as SuperOffice names them.
kj::StringPtr opName(Op op);
// Exact match (SOAP element names are case-sensitive), or ASCII case-insensitive (REST URLs).
kj::Maybe<Op> opFromName(kj::StringPtr name, bool ignoreCase = false);
bool opHasAssociate(Op op);
bool opHasCredential(Op op);   // Save*
bool opHasPublicValue(Op op);  // Remove*
bool opReturnsList(Op op);     // Get*

// The UntrustedCredentials carrier.
struct Credential {
  int64_t validFrom = 0;  // .NET ticks; 0 = DateTime.MinValue (open-ended)
  int64_t validTo = 0;
  kj::String comment = kj::str();
  kj::Maybe<SensitiveText> secretValue;  // null: absent (save: keep stored; get: withheld)
  kj::String publicValue = kj::str();
  bool isActive = false;
};

struct OpRequest {
  Op op = Op::GET;
  int32_t associateId = 0;  // *ForAssociate; 0 = the authenticated associate
  kj::String type = kj::str();
  Credential credential;               // Save*
  kj::String publicValue = kj::str();  // Remove*
};

// What the HTTP client presented.
struct Caller {
  enum Kind { TICKET, PASSWORD, TOKEN } kind = TICKET;
  kj::String userName = kj::str();  // PASSWORD
  SensitiveText secret;             // the ticket, password or token
  kj::Maybe<kj::String> appToken;   // SOAP ApplicationToken / REST SO-AppToken
  // Where the request came from, passed on every authenticate call: the daemon throttles
  // password attempts per client address and writes both into the session's audit records.
  kj::String clientAddress = kj::str();  // the client's IP (HttpRequest::client), "" if unknown
  kj::String requestId = kj::str();      // the HTTP request's id (http/request-id.h)
};

struct Failure {
  rpc::ErrorCode code;
  kj::String field;                // SuperOffice's element name ("SecretValue"), or ""
  kj::String message;              // for humans; never contains a value the client sent
  uint32_t retryAfterSeconds = 0;  // throttled: HTTP Retry-After
};

struct OpResult {
  kj::Maybe<Failure> failure;
  kj::Vector<Credential> credentials;  // Get*: the list; CreateDefault: one element
  bool removed = false;
};

Failure makeFailure(rpc::ErrorCode code, kj::StringPtr field, kj::StringPtr message);

// SuperOffice's limits (SecretValue 70, PublicValue 238, Comment 255 characters), valid
// UTF-8, and bounds on the other strings. Null when the request may be sent.
kj::Maybe<Failure> validate(const OpRequest& request);
kj::Maybe<Failure> validate(const Caller& caller);

// Performs the operation as the caller. Resolves to a Failure for every expected outcome
// (not authenticated, denied, invalid, not found, daemon unavailable); rejects only on bugs.
kj::Promise<OpResult> perform(VaultLink& link, const Caller& caller, OpRequest request);

// Only authenticates the caller (no operation): null when the daemon accepts the credentials,
// else the Failure (notAuthenticated, throttled, unavailable). For checking credentials before
// a large request body is read; the operation itself then authenticates again.
kj::Promise<kj::Maybe<Failure>> authenticate(VaultLink& link, const Caller& caller);

// SoPrincipal.AuthenticateUsernamePassword: a password login that issues a ticket.
struct LoginResult {
  kj::Maybe<Failure> failure;  // notAuthenticated for a wrong name or password
  int32_t associateId = 0;
  kj::String name = kj::str();
  rpc::Kind kind = rpc::Kind::USER;
  bool userAdmin = false;
  SensitiveText ticket;
  int64_t ticketExpires = 0;
};
kj::Promise<LoginResult> login(VaultLink& link, kj::StringPtr userName,
                               const SensitiveText& password, kj::Maybe<kj::StringPtr> appToken,
                               kj::StringPtr clientAddress, kj::StringPtr requestId);

// "203.0.113.5" from a peer name "203.0.113.5:4711" ("[::1]:80" -> "::1"). The frontends
// use HttpRequest::client instead, which honours trusted proxies.
kj::String clientAddressOf(kj::StringPtr peer);

// Number of Unicode code points in valid UTF-8 text.
size_t countCodePoints(kj::StringPtr text);
bool isValidUtf8(kj::StringPtr text);

}  // namespace credvault::frontends
