// Red-team attacks on the daemon's RPC layer: the choke point (pass), identity caching
// (Standing + generation), group commit and the audit trail, as a hostile local user would
// try them. Fixture copied from service-test.c++. The tests whose comment says "was hole"
// failed at 84050b6 and pass since the fixes (writes re-checked at commit, unknown methods
// audited, revokeTicket writes only for live tickets, Admin calls need ADMIN, bearer sessions
// cannot mint tokens, deactivation deletes tokens, lock-out-free throttling, gateway_uids);
// the rest are regressions.

#include "rpc-fixture.h"
#include "daemon/rpc-server.h"
#include "core/identity.h"
#include "crypto/aead.h"
#include "crypto/password.h"
#include "ipc/client.h"

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

using namespace testing;

class AttackTest : public RpcFixture {
 protected:
  AttackTest() : RpcFixture(false) {}
};

// ---- helpers for the attacks --------------------------------------------------------------

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
    auto req = peerSession(0).getRequest();
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
  runUntil([&]() { return d.committer.queued() == 1; });  // queued behind the held batch

  auto plant = ua.saveRequest();
  plant.setAssociateId(bob);
  plant.setType("imap");
  auto c = plant.initCredential();
  c.setPublicValue("planted@evil.example");
  c.setSecretValue("attacker-chosen");
  c.setIsActive(true);
  auto planted = plant.send();
  // Authorized now (generation unchanged), queued after the demotion.
  runUntil([&]() { return d.committer.queued() == 2; });

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
  runUntil([&]() { return d.committer.queued() == 1; });
  auto rm = intruder.removeRequest();
  rm.setType("imap");
  rm.setPublicValue("alice@example.com");
  auto removed = rm.send();
  runUntil([&]() { return d.committer.queued() == 2; });

  *gate.open.lockExclusive() = true;
  held.wait(ws);
  ASSERT_FALSE(deactivated.wait(ws).hasError());
  auto r = removed.wait(ws);
  EXPECT_EQ(outcome(r), "not-authenticated");
  EXPECT_TRUE(hasEntry(alice, "alice@example.com"))
      << "a remove by a session ended by the deactivation committed after it";
}

// A long Get (more than INLINE_GET_LIMIT entries) and a listing run on the reads worker, maybe
// long after the choke point let them in. An account deactivated while they wait in the queue
// must not be served when their turn comes: the worker acts as the grant resolves then.
TEST_F(Attack, QueuedLongReadsOfADeactivatedAccountAreRefusedWhenTheirTurnComes) {
  auto s = peerSession(ALICE_UID);
  for (size_t i = 0; i <= INLINE_GET_LIMIT; i++) {
    save(s, "bulk", kj::str("user", i, "@example.com"), ALICE_SECRET);
  }
  auto root = rootAdmin();

  WriterGate gate;  // here it holds the reads worker, not the writer
  auto held = d.service.reads().run<bool>([&gate]() {
    *gate.entered.lockExclusive() = true;
    gate.open.when([](const bool& o) { return o; }, [](bool&) {});
    return true;
  });
  waitEntered(gate);

  auto get = s.getRequest();
  get.setType("bulk");
  auto got = get.send();
  auto list = s.listRequest();
  list.setType("bulk");
  auto listed = list.send();
  // Both admitted by the choke point and queued behind the held job.
  runUntil([&]() { return d.service.reads().queued() == 2; });

  auto off = root.setAssociateRequest();
  off.setAssociateId(alice);
  off.initUpdate().getActive().setSet(false);
  ASSERT_FALSE(off.send().wait(ws).hasError());

  *gate.open.lockExclusive() = true;
  held.wait(ws);
  auto g = got.wait(ws);
  EXPECT_EQ(outcome(g), "not-authenticated") << g.getCredentials().size() << " credentials served";
  EXPECT_EQ(g.getCredentials().size(), 0u);
  auto l = listed.wait(ws);
  EXPECT_EQ(outcome(l), "not-authenticated") << l.getCredentials().size() << " entries served";

  // The same reads by an active account are served (the gate itself refuses nothing).
  auto again = peerSession(BOB_UID).getRequest();
  again.setType("bulk");
  auto a = again.send().wait(ws);
  EXPECT_EQ(outcome(a), "ok");
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
    runUntil([&]() { return d.committer.queued() == 1; });  // authorized and queued
    s = nullptr;
  }
  clients.erase(clients.begin() + conn);  // the client goes away (the daemon drops the conn)
  spin();
  *gate.open.lockExclusive() = true;
  held.wait(ws);
  runUntil([&]() { return countAudit("\"operation\":\"save\"") > before; });
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
    runUntil([&]() { return d.passwords.queued() == 1; });  // queued behind the held job
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
    auto r = a.verifyRequest().send().wait(ws);
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
