// credvault-bench — talking to credvaultd: a connection with its session, the admin
// capability, and the one check every answer gets (a refused call fails the bench: the
// figures would measure an error path).

#pragma once

#include "ipc/client.h"

#include <kj/async-io.h>
#include <kj/debug.h>

namespace credvault::bench {

template<typename R>
void expectOk(R& results, kj::StringPtr what) {
  if (results.hasError()) {
    auto e = results.getError();
    KJ_FAIL_REQUIRE("call failed", what, ipc::errorCodeName(e.getCode()), e.getField(),
                    e.getMessage());
  }
}

// One connection and the session the daemon gives its peer (this process's uid).
struct Client {
  kj::Own<ipc::Connection> connection;
  rpc::Session::Client session = nullptr;
};

Client connectClient(kj::AsyncIoContext& io, kj::StringPtr socket);
// The session's admin capability (the bench runs as a system user).
rpc::Admin::Client adminOf(kj::WaitScope& ws, Client& c);
// Adds a user associate mapped to `unixUid` (-1: none), with `password` unless null; its id.
int32_t addAssociate(kj::WaitScope& ws, rpc::Admin::Client& admin, kj::StringPtr name,
                     int64_t unixUid, kj::StringPtr password = nullptr);

}  // namespace credvault::bench
