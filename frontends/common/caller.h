// credvault-gateway — who the HTTP client says it is, and asking the daemon whether that holds.
//
// A Caller is what a SOAP or REST request presented (ticket, password or API token, with an
// application token and where it came from). sendAuthentication() is the one place that turns
// it into the daemon's authenticate call; perform() (operations.h) pipelines the operation on
// the session it returns. Never logs; never caches an answer between requests.

#pragma once

#include "frontends/common/failure.h"
#include "frontends/common/sensitive.h"
#include "frontends/common/vault-link.h"

#include <kj/async.h>

namespace credvault::frontends {

struct Caller {
  enum Kind { TICKET, PASSWORD, TOKEN } kind = TICKET;
  kj::String userName = kj::str();  // PASSWORD
  SensitiveText secret;             // the ticket, password or token
  kj::Maybe<kj::String> appToken;   // SOAP ApplicationToken / REST SO-AppToken
  // Where the request came from, passed on every authenticate call: the daemon throttles
  // password attempts per client address and writes both into the session's audit records.
  kj::String clientAddress = kj::str();  // the client's IP (HttpRequest::client), "" if unknown
  kj::String requestId = kj::str();      // the HTTP request's id (http/request-id.h)

  Caller clone() const;
};

// Bounds and UTF-8 of what the caller presented. Null when it may be sent.
kj::Maybe<Failure> validate(const Caller& caller);

// The authenticate call for `caller` (password logins issue a ticket only with
// `issueTicket`), sent; its session may be used at once (pipelined).
struct SentAuthentication {
  rpc::Session::Client session;
  kj::Promise<kj::Maybe<Failure>> outcome;  // null: authenticated
};
SentAuthentication sendAuthentication(rpc::Vault::Client& vault, const Caller& caller);

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

}  // namespace credvault::frontends
