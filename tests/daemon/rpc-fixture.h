// The daemon's RPC layer in-process, for its tests: the real Service over a real LMDB
// directory, each client on its own socket pair with a peer identity the test chooses (no
// root, no other uids needed), and helpers for what those tests do to it.

#pragma once

#include "daemon/rpc-server.h"
#include "tests/daemon/loop-guard-store.h"
#include "tests/daemon/writer-gate.h"
#include "core/identity.h"
#include "crypto/aead.h"
#include "crypto/password.h"
#include "ipc/client.h"
#include "tests/support/temp-dir.h"
#include "tests/support/vault-world.h"
#include <capnp/rpc-twoparty.h>
#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <kj/filesystem.h>
#include <unistd.h>
#include <fstream>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <memory>
#include <vector>
#include <sstream>

namespace credvault::daemon::testing {

using support::readFile;
using support::TempDir;

constexpr uint32_t ALICE_UID = 1001;
constexpr uint32_t BOB_UID = 1002;
constexpr uint32_t STRANGER_UID = 5000;

const char ALICE_SECRET[] = "alice-Secret-7c1f";
const char BOB_SECRET[] = "bob-Secret-93aa";
const char ALICE_PW[] = "alice-Pw-1";
const char SYS_PW[] = "sys-Pw-4";
const char NEW_PW[] = "alice-Pw-2";

// One daemon: store, vault, auth, identity, committer, pool and audit log in a temp dir.
//
// Built with CREDVAULT_TEST_LOOP_GUARD (the *-offload test binaries), the service runs on a
// LoopGuardStore that says it may block, as PostgreSQL does: every test then also proves that
// no call touches the store on the event loop. Direct core calls of a test go under
// unguarded().
struct Daemon {
  // Before `world`: it outlives the vault built on it.
  std::unique_ptr<LoopGuardStore> guard;
  support::VaultWorld world;
  TempDir& dir = world.dir;
  kj::AsyncIoContext io = kj::setupAsyncIo();
  store::Store& env;
  store::Store& store;  // what the service uses: the guard when there is one, else env
  core::Vault& vault;
  core::Authenticator& auth;
  core::Identity& identity;
  GroupCommitter committer{store};
  BlockingPool passwords{1};
  AuditLog audit;
  Service service;

  static store::Store& open(support::VaultWorld& world, bool strangerIsGateway, bool onlineMode) {
    world.identityOptions.systemUids = kj::heapArray<uint32_t>({900});
    world.authOptions.onlineMode = onlineMode;
    if (strangerIsGateway)
      world.identityOptions.gatewayUids = kj::heapArray<uint32_t>({STRANGER_UID});
    world.open();
    return *world.env;
  }
  // With CREDVAULT_TEST_LOOP_GUARD: the vault, authenticator and identity again, on a guard.
  store::Store& guarded() {
#ifdef CREDVAULT_TEST_LOOP_GUARD
    world.identity = nullptr;
    world.auth = nullptr;
    world.vault = nullptr;
    guard = std::make_unique<LoopGuardStore>(*world.env);
    core::VaultOptions options;
    options.passwordParams = crypto::minimalPasswordParams();
    world.vault = std::make_unique<core::Vault>(
        *guard, crypto::Secret::copyOf(world.master.asPtr()), world.clockInUse, options);
    world.auth = std::make_unique<core::Authenticator>(*world.vault, world.clockInUse,
                                                       core::AuthOptions(world.authOptions));
    core::IdentityOptions identityOptions;
    identityOptions.systemUids = kj::heapArray(world.identityOptions.systemUids.asPtr());
    identityOptions.gatewayUids = kj::heapArray(world.identityOptions.gatewayUids.asPtr());
    world.identity = std::make_unique<core::Identity>(*world.vault, *world.auth, world.clockInUse,
                                                      kj::mv(identityOptions));
    return *guard;
#else
    return *world.env;
#endif
  }
  // While the result lives, the test's own core calls on the loop's thread are allowed.
  struct Unguarded {
    LoopGuardStore* guard;
    ~Unguarded() {
      if (guard != nullptr) guard->arm();
    }
  };
  Unguarded unguarded() {
    if (guard != nullptr) guard->disarm();
    return {guard.get()};
  }
  AuditOptions auditOptions() {
    AuditOptions o;
    o.path = dir / "audit.jsonl";
    o.journal = false;
    return o;
  }

  // `onlineMode`: SuperOffice Online (application tokens required, partner apps known).
  explicit Daemon(bool strangerIsGateway, bool onlineMode = false)
      : world(support::VaultWorld::Clock::SYSTEM, "credvault-daemon-test"),
        env(open(world, strangerIsGateway, onlineMode)),
        store(guarded()),
        vault(*world.vault),
        auth(*world.auth),
        identity(*world.identity),
        audit(auditOptions()),
        service(vault, auth, identity, committer, passwords, audit,
                kj::systemPreciseCalendarClock()) {
    if (guard != nullptr) {
      service.setReadWorkers(2);  // the short reads; long ones keep their one worker
      guard->arm();
    }
  }
};

// A client connected over a socket pair, as the given peer.
struct Client {
  kj::Own<kj::AsyncIoStream> serverEnd;
  kj::Own<kj::AsyncIoStream> clientEnd;
  capnp::TwoPartyVatNetwork serverNetwork;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> server;
  capnp::TwoPartyClient client;
  rpc::Vault::Client vault;

  Client(Daemon& d, kj::TwoWayPipe pipe, Peer peer)
      : serverEnd(kj::mv(pipe.ends[0])),
        clientEnd(kj::mv(pipe.ends[1])),
        serverNetwork(*serverEnd, capnp::rpc::twoparty::Side::SERVER),
        server(capnp::makeRpcServer(serverNetwork, d.service.newBootstrap(peer))),
        client(*clientEnd),
        vault(client.bootstrap().castAs<rpc::Vault>()) {}
};

class RpcFixture : public ::testing::Test {
 protected:
  // Pointers: the fixture's destructor must stay noexcept (KJ's are not).
  // STRANGER_UID plays a gateway (its clientAddress is believed) when `strangerIsGateway`.
  explicit RpcFixture(bool strangerIsGateway = true, bool onlineMode = false)
      : dp(std::make_unique<Daemon>(strangerIsGateway, onlineMode)) {}
  std::unique_ptr<Daemon> dp;
  Daemon& d = *dp;
  kj::WaitScope& ws = d.io.waitScope;
  std::vector<std::unique_ptr<Client>> clients;
  int32_t alice = 0, bob = 0, sys = 0, admin = 0;

  // Runs the event loop until `done()` holds: for a test that needs a request sent without
  // waiting to have reached a queue. A fixed pause is not enough on a loaded machine, where
  // the loop may not read the request in time. Fails the test after 30 s.
  bool runUntil(kj::Function<bool()> done) {
    auto& timer = d.io.provider->getTimer();
    auto deadline = timer.now() + 30 * kj::SECONDS;
    while (!done()) {
      if (timer.now() >= deadline) {
        ADD_FAILURE() << "runUntil: gave up after 30 s";
        return false;
      }
      timer.afterDelay(2 * kj::MILLISECONDS).wait(ws);
    }
    return true;
  }

  rpc::Vault::Client connect(uint32_t uid, uint32_t pid = 4242) {
    clients.push_back(std::make_unique<Client>(d, d.io.provider->newTwoWayPipe(), Peer{uid, pid}));
    return clients.back()->vault;
  }

  rpc::Session::Client peerSession(uint32_t uid) {
    auto r = connect(uid).sessionRequest().send().wait(ws);
    EXPECT_FALSE(r.hasError()) << (r.hasError() ? r.getError().getMessage().cStr() : "");
    return r.getSession();
  }

  rpc::Admin::Client rootAdmin() {
    auto r = peerSession(0).adminRequest().send().wait(ws);
    EXPECT_FALSE(r.hasError());
    return r.getAdmin();
  }

  int32_t addAssociate(kj::StringPtr name, rpc::Kind kind, int64_t uid, kj::StringPtr pw,
                       bool userAdmin = false) {
    auto req = rootAdmin().addAssociateRequest();
    req.setName(name);
    req.setKind(kind);
    req.setUnixUid(uid);
    req.setUserAdmin(userAdmin);
    if (pw.size() > 0) req.setPassword(pw);
    auto r = req.send().wait(ws);
    EXPECT_FALSE(r.hasError()) << (r.hasError() ? r.getError().getMessage().cStr() : "");
    return r.getAssociate().getAssociateId();
  }

  void setAssociate(int32_t id, kj::Function<void(rpc::AssociateUpdate::Builder)> change) {
    auto req = rootAdmin().setAssociateRequest();
    req.setAssociateId(id);
    change(req.initUpdate());
    auto r = req.send().wait(ws);
    ASSERT_FALSE(r.hasError()) << r.getError().getMessage().cStr();
  }

  void save(rpc::Session::Client s, kj::StringPtr type, kj::StringPtr pub, kj::StringPtr secret) {
    auto req = s.saveRequest();
    req.setType(type);
    auto c = req.initCredential();
    c.setPublicValue(pub);
    c.setSecretValue(secret);
    c.setIsActive(true);
    auto r = req.send().wait(ws);
    ASSERT_FALSE(r.hasError()) << r.getError().getMessage().cStr();
  }

  // The outcome of a Get of `target`'s "imap" credentials: "ok:<secret>", "ok:<withheld>",
  // or the error code's name.
  std::string getAs(rpc::Session::Client s, int32_t target) {
    auto req = s.getRequest();
    req.setAssociateId(target);
    req.setType("imap");
    auto r = req.send().wait(ws);
    if (r.hasError()) return ipc::errorCodeName(r.getError().getCode()).cStr();
    if (r.getCredentials().size() == 0) return "ok:empty";
    auto c = r.getCredentials()[0];
    return std::string("ok:") + (c.hasSecretValue() ? c.getSecretValue().cStr() : "<withheld>");
  }

  std::string listAs(rpc::Admin::Client a) {
    auto r = a.listAssociatesRequest().send().wait(ws);
    if (r.hasError()) return ipc::errorCodeName(r.getError().getCode()).cStr();
    return "ok";
  }

  struct Login {
    rpc::Session::Client session;
    kj::String ticket;
  };
  Login password(uint32_t uid, kj::StringPtr name, kj::StringPtr pw, bool ticket = false) {
    auto req = connect(uid).authenticatePasswordRequest();
    req.setName(name);
    req.setPassword(pw);
    req.setIssueTicket(ticket);
    auto r = req.send().wait(ws);
    EXPECT_FALSE(r.hasError()) << (r.hasError() ? r.getError().getMessage().cStr() : "");
    return {r.getSession(), kj::heapString(r.getTicket())};
  }
  rpc::Session::Client byTicket(uint32_t uid, kj::StringPtr ticket) {
    auto req = connect(uid).authenticateTicketRequest();
    req.setTicket(ticket);
    req.setClientAddress("203.0.113.7");
    req.setRequestId("req-0001");
    auto r = req.send().wait(ws);
    EXPECT_FALSE(r.hasError()) << (r.hasError() ? r.getError().getMessage().cStr() : "");
    return r.getSession();
  }
  kj::String token(rpc::Session::Client s, kj::StringPtr name) {
    auto req = s.createTokenRequest();
    req.setName(name);
    auto r = req.send().wait(ws);
    EXPECT_FALSE(r.hasError()) << (r.hasError() ? r.getError().getMessage().cStr() : "");
    return kj::heapString(r.getToken());
  }
  std::string tokenLogin(uint32_t uid, kj::StringPtr t) {
    auto req = connect(uid).authenticateTokenRequest();
    req.setToken(t);
    auto r = req.send().wait(ws);
    if (r.hasError()) return ipc::errorCodeName(r.getError().getCode()).cStr();
    return "ok";
  }

  void TearDown() override {
    clients.clear();
    dp = nullptr;
  }

  void SetUp() override {
    alice = addAssociate("alice", rpc::Kind::USER, ALICE_UID, ALICE_PW);
    bob = addAssociate("bob", rpc::Kind::USER, BOB_UID, "");
    sys = addAssociate("sysa", rpc::Kind::SYSTEM, -1, SYS_PW);
    admin = addAssociate("ua", rpc::Kind::USER, -1, "ua-Pw-3", true);
    save(peerSession(ALICE_UID), "imap", "alice@example.com", ALICE_SECRET);
    save(peerSession(BOB_UID), "imap", "bob@example.com", BOB_SECRET);
  }
};

}  // namespace credvault::daemon::testing
