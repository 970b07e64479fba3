// credvault-gateway — the seven UntrustedCredentials operations, independent of SOAP or REST.
//
// A frontend parses its wire format into an OpRequest (filling the rpc::Credential the daemon
// receives directly: there is no gateway copy of the carrier) and a Caller, and renders the
// OpResult's rpc::Credential list back; this layer checks SuperOffice's field limits
// (request-checks.h) and performs each operation as ONE round trip to the daemon: the
// authenticate call and the operation are sent together, the operation pipelined on the
// session the authentication returns. AssociateId goes to the daemon as it came: 0 is the
// authenticated associate there too. Nothing is cached between requests — a revoked ticket
// stops working at once.
//
// Never logs; Failure messages come from fixed text or the daemon (whose messages never
// contain secrets) and never include a value the client sent.

#pragma once

#include "frontends/common/caller.h"
#include "frontends/common/failure.h"
#include "frontends/common/request-checks.h"
#include "frontends/common/sensitive.h"
#include "frontends/common/vault-link.h"
#include "frontends/common/wiped-message.h"

#include <kj/async.h>

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

struct OpRequest {
  Op op = Op::GET;
  int32_t associateId = 0;  // *ForAssociate; 0 = the authenticated associate
  kj::String type = kj::str();
  kj::String publicValue = kj::str();  // Remove*

  // Save*: the UntrustedCredentials carrier as the daemon receives it. A binder sets what
  // the client sent; an unset SecretValue keeps the stored secret.
  rpc::Credential::Builder credential() { return carrier_.root<rpc::Credential>(); }
  rpc::Credential::Reader credential() const { return carrier_.read<rpc::Credential>(); }

 private:
  WipedMessage carrier_;
};

struct OpResult {
  kj::Maybe<Failure> failure;
  bool removed = false;

  // Get*: the list as the daemon answered it; CreateDefault: one element.
  capnp::List<rpc::Credential>::Reader credentials() const {
    return list_.read<capnp::AnyPointer>().getAs<capnp::List<rpc::Credential>>();
  }
  capnp::List<rpc::Credential>::Builder initCredentials(capnp::uint count) {
    return list_.root<capnp::AnyPointer>().initAs<capnp::List<rpc::Credential>>(count);
  }
  void setCredentials(capnp::List<rpc::Credential>::Reader list) {
    list_.root<capnp::AnyPointer>().setAs<capnp::List<rpc::Credential>>(list);
  }

 private:
  WipedMessage list_;
};

// Performs the operation as the caller. Resolves to a Failure for every expected outcome
// (not authenticated, denied, invalid, not found, daemon unavailable); rejects only on bugs.
kj::Promise<OpResult> perform(VaultLink& link, const Caller& caller, OpRequest request);

}  // namespace credvault::frontends
