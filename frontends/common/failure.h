// credvault-gateway — what an operation answers when it does not succeed.
//
// A Failure is built from fixed text or from the daemon's rpc::Error (whose messages never
// contain secrets); it never includes a value the client sent.

#pragma once

#include "ipc/credvault.capnp.h"

#include <kj/exception.h>
#include <kj/string.h>

namespace credvault::frontends {

struct Failure {
  rpc::ErrorCode code;
  kj::String field;                // SuperOffice's element name ("SecretValue"), or ""
  kj::String message;              // for humans; never contains a value the client sent
  uint32_t retryAfterSeconds = 0;  // throttled: HTTP Retry-After
};

Failure makeFailure(rpc::ErrorCode code, kj::StringPtr field, kj::StringPtr message);

// The daemon's answer, with its schema field name ("secretValue") in SuperOffice's spelling
// ("SecretValue") and a default message when it sent none.
Failure failureFrom(rpc::Error::Reader error);

// A call that did not get an answer: the daemon is gone or overloaded (unavailable), or a bug.
Failure failureFromException(const kj::Exception& e);

}  // namespace credvault::frontends
