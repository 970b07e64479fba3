// Red-team attacks on the daemon's RPC layer: the choke point (pass), identity caching
// (Standing + generation), group commit and the audit trail, as a hostile local user would
// try them. Fixture copied from service-test.c++. The tests whose comment says "was hole"
// failed at 84050b6 and pass since the fixes (writes re-checked at commit, unknown methods
// audited, revokeTicket writes only for live tickets, Admin calls need ADMIN, bearer sessions
// cannot mint tokens, deactivation deletes tokens, lock-out-free throttling, gateway_uids);
// the rest are regressions.

#include "daemon/rpc-server.h"
#include "core/identity.h"
#include "crypto/aead.h"
#include "crypto/password.h"
#include "ipc/client.h"
#include "tests/core/test-util.h"

#include <capnp/rpc-twoparty.h>
#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <kj/filesystem.h>

#include <fstream>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <memory>
#include <vector>
#include <unistd.h>
#include <sstream>

namespace credvault::daemon {
namespace {

using core::testing::TempDir;

constexpr uint32_t ALICE_UID = 1001;
constexpr uint32_t BOB_UID = 1002;
constexpr uint32_t STRANGER_UID = 5000;

const char ALICE_SECRET[] = "alice-Secret-7c1f";
const char BOB_SECRET[] = "bob-Secret-93aa";
const char ALICE_PW[] = "alice-Pw-1";
const char SYS_PW[] = "sys-Pw-4";
const char NEW_PW[] = "alice-Pw-2";

std::string readFile(kj::StringPtr path) {
  std::ifstream in(path.cStr(), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One daemon: store, vault, auth, identity, committer, pool and audit log in a temp dir.
struct Daemon {
  TempDir dir;
  kj::AsyncIoContext io = kj::setupAsyncIo();
  store::Environment env{dir.path()};
  core::Vault vault;
  core::Authenticator auth;
  core::Identity identity;
  GroupCommitter committer{env};
  BlockingPool passwords{1};
  AuditLog audit;
  Service service;

  static core::VaultOptions vaultOptions() {
    core::VaultOptions o;
    o.passwordParams = crypto::minimalPasswordParams();
    return o;
  }
  static core::IdentityOptions identityOptions() {
    core::IdentityOptions o;
    o.systemUids = kj::heapArray<uint32_t>({900});
    return o;
  }
  AuditOptions auditOptions() {
    AuditOptions o;
    o.path = dir / "audit.jsonl";
    o.journal = false;
    return o;
  }

  Daemon()
      : vault(env, crypto::Secret::random(crypto::KEY_BYTES), kj::systemPreciseCalendarClock(),
              vaultOptions()),
        auth(vault, kj::systemPreciseCalendarClock(), core::AuthOptions()),
        identity(vault, auth, kj::systemPreciseCalendarClock(), identityOptions()),
        audit(auditOptions()),
        service(vault, auth, identity, committer, passwords, audit,
                kj::systemPreciseCalendarClock()) {}
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

class AttackTest : public ::testing::Test {
 protected:
  // Pointers: the fixture's destructor must stay noexcept (KJ's are not).
  std::unique_ptr<Daemon> dp = std::make_unique<Daemon>();
  Daemon& d = *dp;
  kj::WaitScope& ws = d.io.waitScope;
  std::vector<std::unique_ptr<Client>> clients;
  int32_t alice = 0, bob = 0, sys = 0, admin = 0;

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
    auto req = s.getForAssociateRequest();
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

// ---- helpers for the attacks --------------------------------------------------------------

// Holds the group committer's writer thread inside a write transaction until opened, so
// that writes queued meanwhile commit, in order, in the next batch.
struct WriterGate {
  kj::MutexGuarded<bool> open{false};
  kj::MutexGuarded<bool> entered{false};
};

kj::Promise<Outcome<bool>> holdWriter(GroupCommitter& committer, WriterGate& gate) {
  return committer.submit<bool>([&gate](store::WriteTxn&) -> bool {
    *gate.entered.lockExclusive() = true;
    gate.open.when([](const bool& o) { return o; }, [](bool&) {});
    return true;
  });
}

void waitEntered(WriterGate& gate) {
  while (!*gate.entered.lockShared()) usleep(1000);
}

class Attack : public AttackTest {
 protected:
  // Runs the event loop for a while, so requests sent without waiting reach the server.
  void spin(int ms = 50) { d.io.provider->getTimer().afterDelay(ms * kj::MILLISECONDS).wait(ws); }
  std::vector<std::string> auditLines() {
    auto log = readFile(d.dir / "audit.jsonl");
    std::vector<std::string> lines;
    std::stringstream ss(log);
    for (std::string line; std::getline(ss, line);) lines.push_back(line);
    return lines;
  }
  size_t countAudit(const std::string& needle) {
    size_t n = 0;
    for (auto& l : auditLines()) {
      if (l.find(needle) != std::string::npos) ++n;
    }
    return n;
  }
  // "ok" or the error code's name.
  template<typename Response>
  static std::string outcome(Response& r) {
    if (r.hasError()) return ipc::errorCodeName(r.getError().getCode()).cStr();
    return "ok";
  }
  rpc::Admin::Client adminOf(rpc::Session::Client s) {
    auto r = s.adminRequest().send().wait(ws);
    EXPECT_FALSE(r.hasError());
    return r.getAdmin();
  }
  std::string setPasswordAs(rpc::Admin::Client a, int32_t id, kj::StringPtr pw) {
    auto req = a.setPasswordRequest();
    req.setAssociateId(id);
    req.setPassword(pw);
    auto r = req.send().wait(ws);
    return outcome(r);
  }
  // Whether `target` holds an "imap" entry with public value `pub` (read as root).
  bool hasEntry(int32_t target, kj::StringPtr pub) {
    auto req = peerSession(0).getForAssociateRequest();
    req.setAssociateId(target);
    req.setType("imap");
    auto r = req.send().wait(ws);
    EXPECT_FALSE(r.hasError());
    for (auto c : r.getCredentials()) {
      if (c.getPublicValue() == pub) return true;
    }
    return false;
  }
};

// ==== HOLES (these FAIL on main at 84050b6) ====================================================

// Was hole 1 (fixed; TOCTOU between the choke point and group commit). A write is authorized on the
// event loop against the principal as it stands, then queued; it commits later with no re-check. A
// demotion already queued (not yet committed) when the write is authorized commits first, and the
// write of the demoted userAdmin into another associate's credentials still lands.
TEST_F(Attack, QueuedWriteAuthorizedBeforeDemotionCommitsAfterIt) {
  auto ua = password(STRANGER_UID, "ua", "ua-Pw-3").session;
  auto root = rootAdmin();
  WriterGate gate;
  auto held = holdWriter(d.committer, gate);
  waitEntered(gate);

  auto demote = root.setAssociateRequest();
  demote.setAssociateId(admin);
  demote.initUpdate().getUserAdmin().setSet(false);
  auto demoted = demote.send();
  spin();  // the demotion is queued behind the held batch

  auto plant = ua.saveForAssociateRequest();
  plant.setAssociateId(bob);
  plant.setType("imap");
  auto c = plant.initCredential();
  c.setPublicValue("planted@evil.example");
  c.setSecretValue("attacker-chosen");
  c.setIsActive(true);
  auto planted = plant.send();
  spin();  // authorized now (generation unchanged), queued after the demotion

  *gate.open.lockExclusive() = true;
  held.wait(ws);
  auto dr = demoted.wait(ws);
  ASSERT_FALSE(dr.hasError());
  auto pr = planted.wait(ws);
  // The demotion committed before the save: the save must not be allowed.
  EXPECT_EQ(outcome(pr), "permission-denied");
  EXPECT_FALSE(hasEntry(bob, "planted@evil.example"))
      << "a save authorized before a demotion was committed after it";
  // (After the fact the held session is refused, as it should be.)
  EXPECT_EQ(getAs(ua, bob), "permission-denied");
}

// The same race against the strongest revocation: an account is deactivated (e.g. it was
// compromised) while the intruder's remove of the owner's credential is queued behind it.
TEST_F(Attack, QueuedWriteOfADeactivatedAccountCommitsAfterDeactivation) {
  auto intruder = byTicket(STRANGER_UID, password(STRANGER_UID, "alice", ALICE_PW, true).ticket);
  auto root = rootAdmin();
  WriterGate gate;
  auto held = holdWriter(d.committer, gate);
  waitEntered(gate);

  auto off = root.setAssociateRequest();
  off.setAssociateId(alice);
  off.initUpdate().getActive().setSet(false);
  auto deactivated = off.send();
  spin();
  auto rm = intruder.removeRequest();
  rm.setType("imap");
  rm.setPublicValue("alice@example.com");
  auto removed = rm.send();
  spin();

  *gate.open.lockExclusive() = true;
  held.wait(ws);
  ASSERT_FALSE(deactivated.wait(ws).hasError());
  auto r = removed.wait(ws);
  EXPECT_EQ(outcome(r), "not-authenticated");
  EXPECT_TRUE(hasEntry(alice, "alice@example.com"))
      << "a remove by a session ended by the deactivation committed after it";
}

// (Regression, passes.) A write that is queued when its connection drops still commits; its
// audit record must still be written (the call's continuation is not cancelled with the
// connection, or the change would land with no record).
TEST_F(Attack, DisconnectingDuringAQueuedSaveStillWritesTheAuditRecord) {
  auto s = peerSession(ALICE_UID);
  size_t conn = clients.size() - 1;
  auto before = countAudit("\"operation\":\"save\"");
  WriterGate gate;
  auto held = holdWriter(d.committer, gate);
  waitEntered(gate);
  {
    auto req = s.saveRequest();
    req.setType("imap");
    auto c = req.initCredential();
    c.setPublicValue("unaudited@example.com");
    c.setSecretValue("x-secret");
    c.setIsActive(true);
    auto p = req.send();
    spin();  // the daemon has authorized and queued it
    s = nullptr;
  }
  clients.erase(clients.begin() + conn);  // the client goes away (the daemon drops the conn)
  spin();
  *gate.open.lockExclusive() = true;
  held.wait(ws);
  spin();
  ASSERT_TRUE(hasEntry(alice, "unaudited@example.com")) << "the write was not committed";
  EXPECT_EQ(countAudit("\"operation\":\"save\""), before + 1)
      << "a committed save has no audit record";
}

// Was hole 2 (fixed; audit gap, low). A call to a method number the interface does not have passes
// the choke point without a record ("not ours"), so probing leaves no trace, against "every RPC
// ends in exactly one audit record".
TEST_F(Attack, UnknownMethodOrdinalWritesNoAuditRecord) {
  auto s = peerSession(ALICE_UID);
  auto before = auditLines().size();
  auto req = s.typelessRequest(capnp::typeId<rpc::Session>(), 200, nullptr);
  EXPECT_ANY_THROW(req.send().wait(ws));
  auto req2 = s.typelessRequest(capnp::typeId<rpc::Admin>(), 4, nullptr);  // wrong interface
  EXPECT_ANY_THROW(req2.send().wait(ws));
  EXPECT_EQ(auditLines().size(), before + 2);
}

// Was hole 3 (fixed; unauthenticated write amplification). Anyone who can reach the socket (an
// unmapped uid, no credentials) can call revokeTicket with any well-formed "7T:" string. Each call
// is a durable LMDB commit (an fsync) and moves the generation even though nothing was revoked, so
// every held session of every user re-resolves (read txn + decrypt) on its next call.
TEST_F(Attack, RevokingAnUnknownTicketCommitsAndMovesTheGeneration) {
  auto v = connect(STRANGER_UID);
  // Warm up so the counters are settled.
  auto generation = d.env.generation();
  auto commits = d.committer.stats().commits;
  for (int i = 0; i < 20; ++i) {
    auto req = v.revokeTicketRequest();
    req.setTicket(kj::str("7T:", kj::repeat('A', 43), i));
    auto r = req.send().wait(ws);
    EXPECT_FALSE(r.hasError());
    EXPECT_FALSE(r.getRevoked());
  }
  EXPECT_EQ(d.env.generation(), generation) << "nothing was revoked, yet sessions must re-read";
  EXPECT_EQ(d.committer.stats().commits, commits)
      << "an unauthenticated caller forced durable commits";
}

// Was hole 4 (fixed; a held Admin outlives the ADMIN permission). SET_PASSWORD of oneself is
// granted without ADMIN, and the Admin capability does not re-check ADMIN: a userAdmin demoted to a
// plain user keeps the Admin capability and sets their own password — something a plain user
// cannot do (Session.admin is refused to them).
TEST_F(Attack, DemotedUserAdminStillSetsOwnPasswordThroughHeldAdmin) {
  auto s = password(STRANGER_UID, "ua", "ua-Pw-3").session;
  auto a = adminOf(s);
  setAssociate(admin, [](auto u) { u.getUserAdmin().setSet(false); });
  EXPECT_EQ(listAs(a), "permission-denied");  // re-checked: good
  EXPECT_EQ(s.adminRequest().send().wait(ws).getError().getCode(),
            rpc::ErrorCode::PERMISSION_DENIED);  // a plain user gets no Admin
  EXPECT_EQ(setPasswordAs(a, admin, "ua-Pw-new"), "permission-denied")
      << "the demoted associate changed its password through the Admin it kept";
}

// Was hole 5 (fixed; judgment: ticket lifetime escalation). A ticket is meant to die with the
// password (epoch) — but a ticket session may mint a never-expiring API token, which survives the
// password reset that was meant to evict whoever held the ticket (tokens surviving a password
// change is documented in docs/design.md; minting one from a *ticket* is what escalates).
TEST_F(Attack, TicketSessionMintsATokenThatSurvivesThePasswordReset) {
  // Fixed: a ticket or token session cannot mint a token (CREATE_TOKEN).
  auto stolen = password(STRANGER_UID, "alice", ALICE_PW, true).ticket;
  auto intruder = byTicket(STRANGER_UID, stolen);
  auto req = intruder.createTokenRequest();
  req.setName("persist");
  auto r = req.send().wait(ws);
  ASSERT_TRUE(r.hasError());
  EXPECT_EQ(r.getError().getCode(), rpc::ErrorCode::PERMISSION_DENIED);
  EXPECT_EQ(setPasswordAs(rootAdmin(), alice, NEW_PW), "ok");
  EXPECT_EQ(getAs(intruder, alice), "not-authenticated");  // the ticket died
}

// Was hole 6 (fixed; judgment: lockout DoS). The per-name throttle is checked before the password,
// for every client: any local uid, unauthenticated, makes four wrong guesses for "alice" (from its
// own client key, rotating clientAddress if it likes) and alice's own correct login, from
// her own uid, is refused `throttled` — repeatable for ever at 4 guesses per window.
TEST_F(Attack, AnyLocalUserLocksAnotherOutByName) {
  for (int i = 0; i < 4; ++i) {
    auto bad = connect(STRANGER_UID).authenticatePasswordRequest();
    bad.setName("alice");
    bad.setPassword("guess");
    bad.setClientAddress(kj::str("192.0.2.", i));
    auto r = bad.send().wait(ws);
    EXPECT_TRUE(r.hasError());
  }
  auto good = connect(ALICE_UID).authenticatePasswordRequest();
  good.setName("alice");
  good.setPassword(ALICE_PW);
  auto r = good.send().wait(ws);
  EXPECT_EQ(outcome(r), "ok") << "the owner is locked out by a stranger's failures";
}

// Was known (issue 11, fixed, not new): any uid may set clientAddress / requestId, which go into
// every audit record of its session; a local user can make its records look like a gateway
// client's.
TEST_F(Attack, NonGatewayUidSpoofsClientAddressInAudit) {
  auto req = connect(ALICE_UID).authenticatePasswordRequest();
  req.setName("alice");
  req.setPassword(ALICE_PW);
  req.setClientAddress("198.51.100.66");
  req.setRequestId("forged-req");
  auto r = req.send().wait(ws);
  ASSERT_FALSE(r.hasError());
  getAs(r.getSession(), alice);
  EXPECT_EQ(countAudit("198.51.100.66"), 0u) << "a non-gateway uid wrote a client address";
}

// Was hole 7 (fixed; judgment, with HOLE 5). Deactivation moves the credential epoch so that
// tickets and password sessions end for good — but API tokens do not look at the epoch: the usual
// response to a compromised account (deactivate, reset the password, reactivate) revives
// every token the intruder minted.
TEST_F(Attack, ReactivationRevivesTokensMintedBeforeDeactivation) {
  // The intruder has the password: a password session may mint a token.
  auto login = password(STRANGER_UID, "alice", ALICE_PW, true);
  auto intruder = byTicket(STRANGER_UID, login.ticket);
  auto persist = token(login.session, "persist");
  setAssociate(alice, [](auto u) { u.getActive().setSet(false); });
  EXPECT_EQ(tokenLogin(STRANGER_UID, persist), "not-authenticated");
  EXPECT_EQ(setPasswordAs(rootAdmin(), alice, NEW_PW), "ok");
  setAssociate(alice, [](auto u) { u.getActive().setSet(true); });
  EXPECT_EQ(getAs(intruder, alice), "not-authenticated");  // the ticket stays dead
  EXPECT_EQ(tokenLogin(STRANGER_UID, persist), "not-authenticated")
      << "a token survived deactivation, password reset and reactivation";
}

// Was known (issue 11, fixed) — its sharper consequence: the per-client throttle key is (peer uid,
// clientAddress) and any uid chooses clientAddress, so one local uid that rotates it sprays
// guesses across many names and is never throttled as a client (with a fixed address the
// 16th failure is throttled).
TEST_F(Attack, RotatingClientAddressDefeatsThePerClientThrottle) {
  auto attempt = [&](kj::StringPtr name, kj::StringPtr address) {
    auto req = connect(STRANGER_UID).authenticatePasswordRequest();
    req.setName(name);
    req.setPassword("guess");
    req.setClientAddress(address);
    auto r = req.send().wait(ws);
    return outcome(r);
  };
  bool throttledFixed = false;
  for (int i = 0; i < 20; ++i) {
    if (attempt(kj::str("fixed", i), "198.51.100.1") == "throttled") throttledFixed = true;
  }
  EXPECT_TRUE(throttledFixed) << "the per-client throttle does not work at all";
  bool throttledRotating = false;
  for (int i = 0; i < 20; ++i) {
    if (attempt(kj::str("rot", i), kj::str("198.51.100.", 100 + i)) == "throttled") {
      throttledRotating = true;
    }
  }
  EXPECT_TRUE(throttledRotating) << "rotating clientAddress escapes the per-client throttle";
}

// ==== REGRESSIONS (hole not present; these pass) ==============================================

// A login whose Argon2id is still on the password pool when the client disconnects: the
// continuation (which captures the bootstrap object) must not run on a destroyed VaultImpl,
// and the call is still audited once. Meaningful under ASan (build-asan).
TEST_F(Attack, DisconnectDuringPasswordVerificationIsSafeAndAudited) {
  auto before = countAudit("\"operation\":\"authenticate-password\"");
  WriterGate gate;  // here: holds the one password-pool thread
  auto held = d.passwords.run<bool>([&gate]() -> bool {
    *gate.entered.lockExclusive() = true;
    gate.open.when([](const bool& o) { return o; }, [](bool&) {});
    return true;
  });
  waitEntered(gate);
  {
    auto v = connect(STRANGER_UID);
    size_t conn = clients.size() - 1;
    auto req = v.authenticatePasswordRequest();
    req.setName("alice");
    req.setPassword(ALICE_PW);
    req.setIssueTicket(true);
    auto p = req.send();
    spin();  // queued behind the held job
    v = nullptr;
    clients.erase(clients.begin() + conn);
  }
  spin();
  *gate.open.lockExclusive() = true;
  held.wait(ws);
  spin(200);
  EXPECT_LE(countAudit("\"operation\":\"authenticate-password\""), before + 1);
  // The daemon still serves.
  EXPECT_EQ(getAs(peerSession(ALICE_UID), alice), std::string("ok:") + ALICE_SECRET);
}

// A userAdmin holding Admin may list and find, and nothing else.
TEST_F(Attack, UserAdminAdminCapIsLimitedToListAndFind) {
  auto s = password(STRANGER_UID, "ua", "ua-Pw-3").session;
  auto a = adminOf(s);
  EXPECT_EQ(listAs(a), "ok");
  {
    auto f = a.findAssociateRequest();
    f.setName("alice");
    auto r = f.send().wait(ws);
    EXPECT_EQ(outcome(r), "ok");
  }
  {  // promote itself
    auto req = a.setAssociateRequest();
    req.setAssociateId(admin);
    req.initUpdate().getKind().setSet(rpc::Kind::SYSTEM);
    auto r = req.send().wait(ws);
    EXPECT_EQ(outcome(r), "permission-denied");
  }
  {  // map itself to a uid
    auto req = a.setAssociateRequest();
    req.setAssociateId(admin);
    req.initUpdate().getUnixUid().setSet(STRANGER_UID);
    auto r = req.send().wait(ws);
    EXPECT_EQ(outcome(r), "permission-denied");
  }
  for (int32_t id : {0, -1}) {  // target 0/negative skips the choke point's decision
    auto req = a.setAssociateRequest();
    req.setAssociateId(id);
    req.initUpdate().getKind().setSet(rpc::Kind::SYSTEM);
    auto r = req.send().wait(ws);
    EXPECT_NE(outcome(r), "ok");
    EXPECT_NE(setPasswordAs(a, id, "x-Pw-123"), "ok");
    auto rm = a.removeAssociateRequest();
    rm.setAssociateId(id);
    auto rr = rm.send().wait(ws);
    EXPECT_NE(outcome(rr), "ok");
  }
  EXPECT_EQ(setPasswordAs(a, bob, "bob-Pw-9"), "permission-denied");
  EXPECT_EQ(setPasswordAs(a, sys, "sys-Pw-9"), "permission-denied");
  {
    auto req = a.addAssociateRequest();
    req.setName("mallory");
    req.setKind(rpc::Kind::SYSTEM);
    req.setUnixUid(STRANGER_UID);
    auto r = req.send().wait(ws);
    EXPECT_EQ(outcome(r), "permission-denied");
  }
  {
    auto rm = a.removeAssociateRequest();
    rm.setAssociateId(bob);
    auto r = rm.send().wait(ws);
    EXPECT_EQ(outcome(r), "permission-denied");
  }
  {
    auto h = a.auditHashRequest();
    h.setValue("alice@example.com");
    auto r = h.send().wait(ws);
    EXPECT_EQ(outcome(r), "permission-denied");
  }
  {
    auto b = a.backupToRequest();  // no sink: refused before the body runs
    auto r = b.send().wait(ws);
    EXPECT_EQ(outcome(r), "permission-denied");
  }
  {
    auto r = a.rotateDataKeyRequest().send().wait(ws);
    EXPECT_EQ(outcome(r), "permission-denied");
    auto app = a.addApplicationRequest();
    app.setName("x");
    auto ar = app.send().wait(ws);
    EXPECT_EQ(outcome(ar), "permission-denied");
    auto lr = a.listApplicationsRequest().send().wait(ws);
    EXPECT_EQ(outcome(lr), "permission-denied");
    auto mk = a.changeMasterKeyRequest();
    mk.setKeyFile("/etc/shadow");
    auto mr = mk.send().wait(ws);
    EXPECT_EQ(outcome(mr), "permission-denied");
  }
  {  // tokens of others
    auto req = s.createTokenRequest();
    req.setAssociateId(alice);
    req.setName("x");
    auto r = req.send().wait(ws);
    EXPECT_EQ(outcome(r), "permission-denied");
    auto lr = s.listTokensRequest();
    lr.setAssociateId(alice);
    auto l = lr.send().wait(ws);
    EXPECT_EQ(outcome(l), "permission-denied");
  }
  // A userAdmin sees others' entries but never their secrets.
  EXPECT_EQ(getAs(s, alice), "ok:<withheld>");
  EXPECT_EQ(getAs(s, sys), "ok:empty");
}

// Logout of a ticket session ends it and every Admin derived from it, at once (the revoke
// moves the generation).
TEST_F(Attack, LogoutEndsTheTicketSessionAndItsAdmin) {
  auto login = password(STRANGER_UID, "sysa", SYS_PW, true);
  auto a = adminOf(login.session);
  auto other = byTicket(STRANGER_UID, login.ticket);
  EXPECT_EQ(listAs(a), "ok");
  EXPECT_EQ(getAs(other, alice), std::string("ok:") + ALICE_SECRET);
  ASSERT_FALSE(login.session.logoutRequest().send().wait(ws).hasError());
  EXPECT_EQ(listAs(a), "not-authenticated");
  EXPECT_EQ(getAs(login.session, alice), "not-authenticated");
  EXPECT_EQ(getAs(other, alice), "not-authenticated");
  // Logging out twice writes one record each and stays refused.
  auto r = login.session.logoutRequest().send().wait(ws);
  EXPECT_EQ(outcome(r), "not-authenticated");
}

// A session capability handed back to the daemon as a ByteSink: the daemon calls ByteSink
// methods on its own Session object, which must answer unimplemented, not run a Session method.
TEST_F(Attack, SessionPassedBackAsBackupSinkIsNotCalledAsASession) {
  auto root = peerSession(0);
  auto a = adminOf(root);
  auto req = a.backupToRequest();
  req.setSink(root.castAs<rpc::ByteSink>());
  auto r = req.send().wait(ws);
  EXPECT_NE(outcome(r), "ok");
  EXPECT_EQ(getAs(root, alice), std::string("ok:") + ALICE_SECRET);  // still serving
}

// Pipelined: a plain user's Admin promise, and calls on it, fail; a refused login's session
// promise too; the audit trail has one record for each call that reached the daemon.
TEST_F(Attack, PipelinedAdminOfAPlainUserGetsNothing) {
  auto s = peerSession(ALICE_UID);
  auto before = countAudit("\"operation\":\"associate-list\"");
  auto pipelined = s.adminRequest().send().getAdmin();
  EXPECT_ANY_THROW(pipelined.listAssociatesRequest().send().wait(ws));
  auto add = pipelined.addAssociateRequest();
  add.setName("mallory");
  add.setKind(rpc::Kind::SYSTEM);
  add.setUnixUid(ALICE_UID + 1000);
  EXPECT_ANY_THROW(add.send().wait(ws));
  EXPECT_EQ(countAudit("\"operation\":\"associate-list\""), before);
  auto who = connect(ALICE_UID + 1000).whoamiRequest().send().wait(ws);
  EXPECT_EQ(who.getPrincipal().getMethod(), rpc::AuthMethod::NONE);
}

// JSON injection and size: a client-chosen type with quotes, newlines, invalid UTF-8 and 64 KiB
// stays one bounded, valid line.
TEST_F(Attack, AuditRecordsResistInjectionAndSize) {
  auto s = peerSession(ALICE_UID);
  auto before = auditLines().size();
  std::string evil = "x\",\"operation\":\"forged\"}\n{\"operation\":\"forged\u2028\xff\xfe";
  evil += std::string(65536, 'A');
  auto req = s.getRequest();
  req.setType(evil.c_str());
  auto r = req.send().wait(ws);
  EXPECT_NE(outcome(r), "ok");
  auto lines = auditLines();
  ASSERT_EQ(lines.size(), before + 1);
  EXPECT_LT(lines.back().size(), 2048u);
  EXPECT_EQ(lines.back().find("\"operation\":\"forged\""), std::string::npos) << lines.back();
  EXPECT_EQ(lines.back().rfind("{\"time\":", 0), 0u);
}

// Error answers and the audit trail never echo a secret or public value sent in a bad save.
TEST_F(Attack, BadSavesDoNotEchoValues) {
  auto s = peerSession(ALICE_UID);
  const char* leakPub = "leak-public-3f9a";
  const char* leakSecret = "leak-secret-b21c";
  std::vector<std::string> messages;
  for (int variant = 0; variant < 4; ++variant) {
    auto req = s.saveRequest();
    req.setType(variant == 0 ? "im\x01ap" : "imap");
    auto c = req.initCredential();
    std::string pub = leakPub;
    if (variant == 1) pub += std::string(300, 'p');
    c.setPublicValue(pub.c_str());
    std::string sec = leakSecret;
    if (variant == 2) sec += std::string(70000, 's');
    if (variant == 3) sec += "\xff";
    c.setSecretValue(sec.c_str());
    c.setComment(leakSecret);
    auto r = req.send().wait(ws);
    EXPECT_TRUE(r.hasError()) << variant;
    if (r.hasError()) messages.push_back(r.getError().getMessage().cStr());
  }
  auto log = readFile(d.dir / "audit.jsonl");
  for (auto& m : messages) {
    EXPECT_EQ(m.find(leakPub), std::string::npos) << m;
    EXPECT_EQ(m.find(leakSecret), std::string::npos) << m;
  }
  EXPECT_EQ(log.find(leakPub), std::string::npos);
  EXPECT_EQ(log.find(leakSecret), std::string::npos);
}

// A system uid mapped to an inactive associate still acts as a system user (without the
// associate); an ordinary uid mapped to an inactive associate is no one.
TEST_F(Attack, InactiveAssociatesMappedToUids) {
  auto x = addAssociate("sysmapped", rpc::Kind::USER, 900, "");
  setAssociate(x, [](auto u) { u.getActive().setSet(false); });
  auto whoResponse = connect(900).whoamiRequest().send().wait(ws);
  auto who = whoResponse.getPrincipal();
  EXPECT_EQ(who.getAssociateId(), 0);
  EXPECT_EQ(who.getKind(), rpc::Kind::SYSTEM);
  setAssociate(bob, [](auto u) { u.getActive().setSet(false); });
  auto r = connect(BOB_UID).sessionRequest().send().wait(ws);
  EXPECT_EQ(outcome(r), "not-authenticated");
}

// Remapping a uid while a session is held: the held peer session neither follows the uid to
// the new associate nor keeps the old one.
TEST_F(Attack, HeldPeerSessionAfterUidMovedToAnotherAssociate) {
  auto held = peerSession(ALICE_UID);
  EXPECT_EQ(getAs(held, alice), std::string("ok:") + ALICE_SECRET);
  setAssociate(alice, [](auto u) { u.getUnixUid().setSet(-1); });
  setAssociate(bob, [](auto u) { u.getUnixUid().setSet(ALICE_UID); });
  EXPECT_EQ(getAs(held, alice), "not-authenticated");
  EXPECT_EQ(getAs(held, bob), "not-authenticated");
  auto who = held.whoamiRequest().send().wait(ws);
  EXPECT_EQ(outcome(who), "not-authenticated");
}

}  // namespace
}  // namespace credvault::daemon
