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

int32_t addAssociate(kj::WaitScope& ws, rpc::Admin::Client& admin, kj::StringPtr name,
                     int64_t unixUid, kj::StringPtr password) {
  auto req = admin.addAssociateRequest();
  req.setName(name);
  req.setKind(rpc::Kind::USER);
  req.setUnixUid(unixUid);
  if (password != nullptr) req.setPassword(password);
  auto r = req.send().wait(ws);
  expectOk(r, "addAssociate");
  return r.getAssociate().getAssociateId();
}

}  // namespace credvault::bench
