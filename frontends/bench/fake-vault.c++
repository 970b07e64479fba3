// A stand-in for credvaultd that answers instantly, to measure the gateway alone
// (frontends/bench/soap-bench.sh with FAKE_VAULT=1). Never for production: it accepts any
// ticket and password. Serves the real schema on a Unix socket; every call gets a
// constant answer (one credential for Get*, success otherwise).

#include "ipc/credvault.capnp.h"

#include <capnp/ez-rpc.h>
#include <kj/debug.h>
#include <kj/main.h>
#include <unistd.h>

namespace credvault::bench {
namespace {

class FastSession final : public rpc::Session::Server {
 protected:
  static void fill(rpc::Credential::Builder c) {
    c.setValidFrom(638000000000000000);
    c.setComment("");
    c.setSecretValue("bench-secret");
    c.setPublicValue("bench@example.org");
    c.setIsActive(true);
  }
  kj::Promise<void> get(GetContext context) override {
    fill(context.getResults().initCredentials(1)[0]);
    return kj::READY_NOW;
  }
  kj::Promise<void> getForAssociate(GetForAssociateContext context) override {
    fill(context.getResults().initCredentials(1)[0]);
    return kj::READY_NOW;
  }
  kj::Promise<void> createDefault(CreateDefaultContext context) override {
    context.getResults().initCredential();
    return kj::READY_NOW;
  }
  kj::Promise<void> save(SaveContext) override { return kj::READY_NOW; }
  kj::Promise<void> saveForAssociate(SaveForAssociateContext) override { return kj::READY_NOW; }
  kj::Promise<void> remove(RemoveContext) override { return kj::READY_NOW; }
  kj::Promise<void> removeForAssociate(RemoveForAssociateContext) override { return kj::READY_NOW; }
};

class FastVault final : public rpc::Vault::Server {
 protected:
  kj::Promise<void> authenticateTicket(AuthenticateTicketContext context) override {
    context.getResults().setSession(kj::heap<FastSession>());
    return kj::READY_NOW;
  }
  kj::Promise<void> authenticatePassword(AuthenticatePasswordContext context) override {
    auto r = context.getResults();
    r.setSession(kj::heap<FastSession>());
    r.initPrincipal().setAssociateId(1);
    r.setTicket("7T:fake");
    return kj::READY_NOW;
  }
};

class Main {
 public:
  explicit Main(kj::ProcessContext& context) : context_(context) {}
  kj::MainFunc getMain() {
    return kj::MainBuilder(context_, "fake-vault",
                           "An instant stand-in for credvaultd (benchmarks).")
        .expectArg("<socket>", KJ_BIND_METHOD(*this, run))
        .build();
  }

 private:
  kj::MainBuilder::Validity run(kj::StringPtr path) {
    unlink(path.cStr());
    capnp::EzRpcServer server(kj::heap<FastVault>(), kj::str("unix:", path));
    server.getPort().wait(server.getWaitScope());
    kj::NEVER_DONE.wait(server.getWaitScope());
  }
  kj::ProcessContext& context_;
};

}  // namespace
}  // namespace credvault::bench

KJ_MAIN(credvault::bench::Main)
