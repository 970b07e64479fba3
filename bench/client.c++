#include "client.h"

namespace credvault::bench {

Client connectClient(kj::AsyncIoContext& io, kj::StringPtr socket) {
  Client c;
  c.connection = ipc::connect(io.provider->getNetwork(), socket).wait(io.waitScope);
  auto r = c.connection->vault().sessionRequest().send().wait(io.waitScope);
  expectOk(r, "session");
  c.session = r.getSession();
  return c;
}

rpc::Admin::Client adminOf(kj::WaitScope& ws, Client& c) {
  auto r = c.session.adminRequest().send().wait(ws);
  expectOk(r, "admin");
  return r.getAdmin();
}

}  // namespace credvault::bench
