// The daemon's RPC layer in-process: the real Service over a real LMDB directory, each
// client on its own socket pair with a peer identity the test chooses (no root, no other
// uids needed). What a hostile local user would try against held capabilities: every
// revocation event must end a held Session and Admin on its very next call, whether the
// capability was used before or not.

#include "rpc-fixture.h"
#include "credvault-config.h"
#include "daemon/rpc-server.h"
#include "core/identity.h"
#include "crypto/aead.h"
#include "crypto/password.h"
#include "ipc/client.h"

#include <capnp/rpc-twoparty.h>
#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <kj/filesystem.h>
#include <kj/thread.h>
#include <stdio.h>

#include <fstream>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <memory>
#include <vector>
#include <sstream>

namespace credvault::daemon {
namespace {

using namespace testing;

class ServiceTest : public RpcFixture {
 protected:
  ServiceTest() : RpcFixture(true) {}
};

// Each revocation event, against sessions opened before it: one never used ("first call")
// and one used once ("later call").
struct Held {
  rpc::Session::Client fresh;
  rpc::Session::Client used;
};

TEST_F(ServiceTest, HeldAdminDiesWhenItsAssociateIsDemoted) {
  // An unmapped uid logs in as a system associate and keeps the Admin capability.
  auto login = password(STRANGER_UID, "sysa", SYS_PW);
  auto a = login.session.adminRequest().send().wait(ws).getAdmin();
  auto fresh = password(STRANGER_UID, "sysa", SYS_PW).session;
  auto freshAdmin = fresh.adminRequest().send().wait(ws).getAdmin();
  EXPECT_EQ(listAs(a), "ok");
  EXPECT_EQ(getAs(login.session, alice), std::string("ok:") + ALICE_SECRET);

  setAssociate(sys, [](auto u) { u.getKind().setSet(rpc::Kind::USER); });

  EXPECT_EQ(listAs(a), "permission-denied");
  EXPECT_EQ(listAs(freshAdmin), "permission-denied");
  // Nor can it plant a system associate mapped to its own uid.
  auto add = a.addAssociateRequest();
  add.setName("mallory");
  add.setKind(rpc::Kind::SYSTEM);
  add.setUnixUid(STRANGER_UID);
  auto r = add.send().wait(ws);
  ASSERT_TRUE(r.hasError());
  EXPECT_EQ(r.getError().getCode(), rpc::ErrorCode::PERMISSION_DENIED);
  EXPECT_EQ(getAs(login.session, alice), "permission-denied");
  EXPECT_EQ(getAs(fresh, alice), "permission-denied");
  // The uid got nothing: it is still no one by its peer credentials.
  auto whoami = connect(STRANGER_UID).whoamiRequest().send().wait(ws);
  EXPECT_EQ(whoami.getPrincipal().getMethod(), rpc::AuthMethod::NONE);
}

TEST_F(ServiceTest, HeldAdminDiesWhenItsAssociateIsDeactivatedOrRemoved) {
  auto s = password(STRANGER_UID, "sysa", SYS_PW).session;
  auto a = s.adminRequest().send().wait(ws).getAdmin();
  EXPECT_EQ(listAs(a), "ok");
  setAssociate(sys, [](auto u) { u.getActive().setSet(false); });
  EXPECT_EQ(listAs(a), "not-authenticated");
  setAssociate(sys, [](auto u) { u.getActive().setSet(true); });
  // Reactivation does not revive it: the deactivation moved the credential epoch.
  EXPECT_EQ(listAs(a), "not-authenticated");

  auto s2 = password(STRANGER_UID, "sysa", SYS_PW).session;
  auto a2 = s2.adminRequest().send().wait(ws).getAdmin();
  auto rm = rootAdmin().removeAssociateRequest();
  rm.setAssociateId(sys);
  ASSERT_FALSE(rm.send().wait(ws).hasError());
  EXPECT_EQ(listAs(a2), "not-authenticated");
  EXPECT_EQ(getAs(s2, alice), "not-authenticated");
}

TEST_F(ServiceTest, UserAdminLosesListingWhenDemoted) {
  auto s = password(STRANGER_UID, "ua", "ua-Pw-3").session;
  auto a = s.adminRequest().send().wait(ws).getAdmin();
  EXPECT_EQ(getAs(s, alice), "ok:<withheld>");
  EXPECT_EQ(listAs(a), "ok");
  setAssociate(admin, [](auto u) { u.getUserAdmin().setSet(false); });
  EXPECT_EQ(listAs(a), "permission-denied");
  EXPECT_EQ(getAs(s, alice), "permission-denied");
}

TEST_F(ServiceTest, TicketSessionsDieOnPasswordChangeDeactivationAndRevocation) {
  auto ticket = password(STRANGER_UID, "alice", ALICE_PW, true).ticket;
  Held h{byTicket(STRANGER_UID, ticket), byTicket(STRANGER_UID, ticket)};
  EXPECT_EQ(getAs(h.used, alice), std::string("ok:") + ALICE_SECRET);

  auto pw = rootAdmin().setPasswordRequest();
  pw.setAssociateId(alice);
  pw.setPassword(NEW_PW);
  ASSERT_FALSE(pw.send().wait(ws).hasError());
  EXPECT_EQ(getAs(h.fresh, alice), "not-authenticated");
  EXPECT_EQ(getAs(h.used, alice), "not-authenticated");

  // Revocation.
  auto t2 = password(STRANGER_UID, "alice", NEW_PW, true).ticket;
  Held h2{byTicket(STRANGER_UID, t2), byTicket(STRANGER_UID, t2)};
  EXPECT_EQ(getAs(h2.used, alice), std::string("ok:") + ALICE_SECRET);
  auto rv = connect(STRANGER_UID).revokeTicketRequest();
  rv.setTicket(t2);
  EXPECT_TRUE(rv.send().wait(ws).getRevoked());
  EXPECT_EQ(getAs(h2.fresh, alice), "not-authenticated");
  EXPECT_EQ(getAs(h2.used, alice), "not-authenticated");

  // Deactivation, including the password session that issued the ticket.
  auto login = password(STRANGER_UID, "alice", NEW_PW, true);
  Held h3{byTicket(STRANGER_UID, login.ticket), login.session};
  EXPECT_EQ(getAs(h3.used, alice), std::string("ok:") + ALICE_SECRET);
  setAssociate(alice, [](auto u) { u.getActive().setSet(false); });
  EXPECT_EQ(getAs(h3.fresh, alice), "not-authenticated");
  EXPECT_EQ(getAs(h3.used, alice), "not-authenticated");
}

TEST_F(ServiceTest, PeerSessionsDieWhenTheUidIsUnmappedOrRemapped) {
  Held h{peerSession(ALICE_UID), peerSession(ALICE_UID)};
  EXPECT_EQ(getAs(h.used, alice), std::string("ok:") + ALICE_SECRET);
  setAssociate(alice, [](auto u) { u.getUnixUid().setSet(-1); });
  EXPECT_EQ(getAs(h.fresh, alice), "not-authenticated");
  EXPECT_EQ(getAs(h.used, alice), "not-authenticated");

  // Remapped: the uid's old sessions do not follow the mapping to another associate, and
  // the associate's new uid gets a new session, not the old ones.
  setAssociate(alice, [](auto u) { u.getUnixUid().setSet(ALICE_UID); });
  Held h2{peerSession(ALICE_UID), peerSession(ALICE_UID)};
  EXPECT_EQ(getAs(h2.used, alice), std::string("ok:") + ALICE_SECRET);
  setAssociate(alice, [](auto u) { u.getUnixUid().setSet(7777); });
  EXPECT_EQ(getAs(h2.fresh, alice), "not-authenticated");
  EXPECT_EQ(getAs(h2.used, alice), "not-authenticated");
  EXPECT_EQ(getAs(peerSession(7777), alice), std::string("ok:") + ALICE_SECRET);
}

TEST_F(ServiceTest, TokenSessionsDieOnRevocationAndTokensDieWithTheirAssociate) {
  auto own = peerSession(ALICE_UID);
  auto t = token(own, "ci");
  auto t2 = token(own, "ci-2");
  auto req = connect(STRANGER_UID).authenticateTokenRequest();
  req.setToken(t);
  auto s = req.send().wait(ws).getSession();
  EXPECT_EQ(getAs(s, alice), std::string("ok:") + ALICE_SECRET);
  auto rv = own.revokeTokenRequest();
  rv.setName("ci");
  EXPECT_TRUE(rv.send().wait(ws).getRevoked());
  EXPECT_EQ(getAs(s, alice), "not-authenticated");
  EXPECT_EQ(tokenLogin(STRANGER_UID, t), "not-authenticated");

  // Removing the associate deletes its tokens and tickets, not only disables them.
  auto ticket = password(STRANGER_UID, "alice", ALICE_PW, true).ticket;
  EXPECT_EQ(tokenLogin(STRANGER_UID, t2), "ok");
  auto rm = rootAdmin().removeAssociateRequest();
  rm.setAssociateId(alice);
  ASSERT_FALSE(rm.send().wait(ws).hasError());
  EXPECT_EQ(tokenLogin(STRANGER_UID, t2), "not-authenticated");
  auto revoke = connect(STRANGER_UID).revokeTicketRequest();
  revoke.setTicket(ticket);
  EXPECT_FALSE(revoke.send().wait(ws).getRevoked()) << "the ticket record was left behind";
  auto txn = d.env.read();
  EXPECT_EQ(txn.count(d.env.table("api-tokens")), 0u);
  EXPECT_EQ(txn.count(d.env.table("api-token-names")), 0u);
}

// What someone who can write the file does to the uid -> associate index: the first two
// entries trade values. Returns how many entries the index holds (nothing is swapped below 2).
size_t swapFirstTwoUidIndexValues(store::Store& env) {
  auto table = env.table("associate-uids");
  size_t entries = 0;
  env.write([&](store::WriteTxn& txn) {
    kj::Vector<kj::Array<kj::byte>> keys, values;
    txn.scan(table, nullptr, [&](auto k, auto v) {
      keys.add(kj::heapArray(k));
      values.add(kj::heapArray(v));
      return true;
    });
    entries = keys.size();
    if (entries < 2) return;
    txn.put(table, keys[0], values[1]);
    txn.put(table, keys[1], values[0]);
  });
  return entries;
}

TEST_F(ServiceTest, ASwappedUidIndexRefusesBothUids) {
  // Root's view of the file: swap the two values of the uid -> associate index.
  ASSERT_EQ(swapFirstTwoUidIndexValues(d.env), 2u);
  for (uint32_t uid : {ALICE_UID, BOB_UID}) {
    auto r = connect(uid).sessionRequest().send().wait(ws);
    ASSERT_TRUE(r.hasError());
    EXPECT_EQ(r.getError().getCode(), rpc::ErrorCode::INTEGRITY);
    auto who = connect(uid).whoamiRequest().send().wait(ws);
    EXPECT_EQ(who.getPrincipal().getAssociateId(), 0);
    auto st = connect(uid).statusRequest().send().wait(ws);
    EXPECT_TRUE(st.hasError());
  }
}

// Admin.verify walks the live vault in a forked child; only system users may run it, and every
// call, refused or not, leaves one audit record.
TEST_F(ServiceTest, VerifyIsForSystemUsersOnlyAndAudited) {
  auto ok = rootAdmin().verifyRequest().send().wait(ws);
  ASSERT_FALSE(ok.hasError()) << ok.getError().getMessage().cStr();
  EXPECT_FALSE(ok.getReport().hasProblem());
  EXPECT_GE(ok.getReport().getCredentials(), 2u);  // alice's and bob's
  EXPECT_GE(ok.getReport().getAssociates(), 4u);
  // Without a page walk (the loop-guard store, as PostgreSQL) the vault's tables are counted.
  EXPECT_GT(ok.getReport().getTables(), 0u);
  EXPECT_GT(ok.getReport().getEntries(), ok.getReport().getCredentials());

  // A userAdmin holds an Admin capability but is no system user.
  auto ua = password(STRANGER_UID, "ua", "ua-Pw-3").session;
  auto uaAdmin = ua.adminRequest().send().wait(ws).getAdmin();
  auto r1 = uaAdmin.verifyRequest().send().wait(ws);
  ASSERT_TRUE(r1.hasError());
  EXPECT_EQ(r1.getError().getCode(), rpc::ErrorCode::PERMISSION_DENIED);
  EXPECT_FALSE(r1.hasReport());
  // A system associate's Admin, held after it was demoted to a plain user, is refused too.
  auto held = password(STRANGER_UID, "sysa", SYS_PW).session.adminRequest().send().wait(ws);
  auto heldAdmin = held.getAdmin();
  setAssociate(sys, [](auto u) { u.getKind().setSet(rpc::Kind::USER); });
  auto r2 = heldAdmin.verifyRequest().send().wait(ws);
  ASSERT_TRUE(r2.hasError());
  EXPECT_EQ(r2.getError().getCode(), rpc::ErrorCode::PERMISSION_DENIED);

  auto log = readFile(d.dir / "audit.jsonl");
  std::stringstream ss(log);
  int okLines = 0, refusedLines = 0;
  for (std::string line; std::getline(ss, line);) {
    if (line.find("\"operation\":\"verify\",\"result\":\"ok\"") != std::string::npos) ++okLines;
    if (line.find("\"operation\":\"verify\",\"result\":\"permission-denied\"") !=
        std::string::npos) {
      ++refusedLines;
    }
  }
  EXPECT_EQ(okLines, 1) << log;
  EXPECT_EQ(refusedLines, 2) << log;
}

// A value swapped in the file is found by verify on demand, while the daemon keeps serving.
TEST_F(ServiceTest, VerifyReportsATamperedIndexAndTheDaemonKeepsServing) {
  ASSERT_GE(swapFirstTwoUidIndexValues(d.env), 2u);
  auto r = rootAdmin().verifyRequest().send().wait(ws);
  ASSERT_TRUE(r.hasError());
  EXPECT_EQ(r.getError().getCode(), rpc::ErrorCode::INTEGRITY);
  ASSERT_TRUE(r.getReport().hasProblem());
  EXPECT_NE(strstr(r.getReport().getProblem().cStr(), "associate-uids"), nullptr)
      << r.getReport().getProblem().cStr();
  // Still serving (calls that do not touch the swapped entries).
  EXPECT_EQ(listAs(rootAdmin()), "ok");
}

TEST_F(ServiceTest, PartnerAppsAndUnauthenticatedCallersGetNothing) {
  auto r = connect(STRANGER_UID).sessionRequest().send().wait(ws);
  ASSERT_TRUE(r.hasError());
  EXPECT_EQ(r.getError().getCode(), rpc::ErrorCode::NOT_AUTHENTICATED);
  // Calls on the session promise of a refused login fail too.
  EXPECT_ANY_THROW(getAs(r.getSession(), alice));
  auto bad = connect(STRANGER_UID).authenticatePasswordRequest();
  bad.setName("alice");
  bad.setPassword("wrong");
  auto br = bad.send().wait(ws);
  ASSERT_TRUE(br.hasError());
  EXPECT_EQ(br.getError().getCode(), rpc::ErrorCode::NOT_AUTHENTICATED);
}

// Setting a password empties the Basic-auth verification cache, which may never have held an
// entry (found by the daemon-rpc fuzz target: undefined behaviour under UBSan).
TEST_F(ServiceTest, AnAdminSetsAPasswordBeforeAnyoneHasLoggedIn) {
  auto req = rootAdmin().setPasswordRequest();
  req.setAssociateId(alice);
  req.setPassword(NEW_PW);
  auto r = req.send().wait(ws);
  ASSERT_FALSE(r.hasError()) << r.getError().getMessage().cStr();
  auto login = connect(STRANGER_UID).authenticatePasswordRequest();
  login.setName("alice");
  login.setPassword(ALICE_PW);
  EXPECT_EQ(login.send().wait(ws).getError().getCode(), rpc::ErrorCode::NOT_AUTHENTICATED);
  auto s = password(STRANGER_UID, "alice", NEW_PW).session;
  EXPECT_EQ(getAs(s, alice), std::string("ok:") + ALICE_SECRET);
}

// A data key rotation on the event loop while the group committer seals a queued write: each
// waited for the other (keyring, then LMDB's writer lock, against the opposite order) and the
// daemon hung for good (found by the daemon-rpc fuzz target). A watchdog fails the test rather
// than let it hang.
TEST_F(ServiceTest, ARotationWhileAWriteIsSealedCompletesBoth) {
  auto unguarded = d.unguarded();  // the rotation runs here, on the test's thread
  WriterGate gate;
  core::NewAssociate na;
  na.name = kj::str("sealed-during-rotation");
  auto add = d.vault.addAssociate(support::rootPrincipal(), kj::mv(na)).value();
  auto queued = d.committer.submit<core::Result<core::Associate>>(
      [&gate, add = kj::mv(add)](store::WriteTxn& txn) mutable -> core::Result<core::Associate> {
        *gate.entered.lockExclusive() = true;
        gate.open.when([](const bool& o) { return o; }, [](bool&) {});
        return add(txn);  // seals the name under the keyring, holding the writer lock
      });
  waitEntered(gate);
  kj::MutexGuarded<bool> done(false);
  kj::Thread opener([&]() {
    usleep(100 * 1000);  // the rotation below is waiting by then
    *gate.open.lockExclusive() = true;
    if (!done.when([](const bool& d) { return d; }, [](bool& d) { return d; }, 10 * kj::SECONDS)) {
      fprintf(stderr, "deadlock: a data key rotation and a queued write wait for each other\n");
      _exit(1);
    }
  });
  uint32_t before = d.vault.counts().dataKeyId;
  uint32_t id = d.vault.rotateDataKey(support::rootPrincipal()).value();
  auto outcome = queued.wait(ws);
  *done.lockExclusive() = true;
  EXPECT_EQ(id, before + 1);
  ASSERT_TRUE(outcome.value != nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(d.vault.findAssociateByName("sealed-during-rotation")).id,
            KJ_ASSERT_NONNULL(outcome.value).id);
  // New writes are sealed with the new key and read back.
  save(peerSession(ALICE_UID), "after-rotation", "a@example.com", "after-rotation-secret");
  EXPECT_EQ(d.vault.counts().dataKeyId, id);
}

TEST_F(ServiceTest, AUserCannotReadOrChangeAnothersCredentials) {
  auto s = peerSession(ALICE_UID);
  EXPECT_EQ(getAs(s, bob), "permission-denied");
  auto req = s.saveRequest();
  req.setAssociateId(bob);
  req.setType("imap");
  req.initCredential().setPublicValue("x");
  EXPECT_EQ(req.send().wait(ws).getError().getCode(), rpc::ErrorCode::PERMISSION_DENIED);
  EXPECT_EQ(s.adminRequest().send().wait(ws).getError().getCode(),
            rpc::ErrorCode::PERMISSION_DENIED);
  EXPECT_EQ(getAs(peerSession(900), bob), std::string("ok:") + BOB_SECRET);
}

TEST_F(ServiceTest, AssociateIdZeroIsTheCallerInGetSaveAndRemove) {
  auto s = peerSession(ALICE_UID);
  EXPECT_EQ(getAs(s, 0), std::string("ok:") + ALICE_SECRET);
  EXPECT_EQ(getAs(s, alice), std::string("ok:") + ALICE_SECRET);
  EXPECT_EQ(getAs(s, -1), "invalid-argument");
  auto save = s.saveRequest();  // no associateId, as a client of the earlier release sends it
  save.setType("imap");
  auto c = save.initCredential();
  c.setPublicValue("alice@example.com");
  c.setSecretValue("changed-by-zero");
  ASSERT_FALSE(save.send().wait(ws).hasError());
  EXPECT_EQ(getAs(s, alice), "ok:changed-by-zero");
  auto rm = s.removeRequest();
  rm.setAssociateId(0);
  rm.setType("imap");
  rm.setPublicValue("alice@example.com");
  EXPECT_TRUE(rm.send().wait(ws).getRemoved());
  EXPECT_EQ(getAs(s, alice), "ok:empty");
  // uid 0 has no associate of its own: 0 names no one.
  EXPECT_EQ(getAs(peerSession(0), 0), "not-found");
}

// getForAssociate/saveForAssociate/removeForAssociate are deprecated but answered, by the same
// code, for clients and gateways of the earlier release during an upgrade.
TEST_F(ServiceTest, DeprecatedForAssociateCallsAnswerAsBefore) {
  auto s = peerSession(ALICE_UID);
  auto get = [&](rpc::Session::Client session, int32_t target) -> std::string {
    auto req = session.getForAssociateRequest();
    req.setAssociateId(target);
    req.setType("imap");
    auto r = req.send().wait(ws);
    if (r.hasError()) return ipc::errorCodeName(r.getError().getCode()).cStr();
    if (r.getCredentials().size() == 0) return "ok:empty";
    return std::string("ok:") + r.getCredentials()[0].getSecretValue().cStr();
  };
  EXPECT_EQ(get(s, alice), std::string("ok:") + ALICE_SECRET);
  EXPECT_EQ(get(s, bob), "permission-denied");
  EXPECT_EQ(get(peerSession(900), bob), std::string("ok:") + BOB_SECRET);
  auto save = s.saveForAssociateRequest();
  save.setAssociateId(bob);
  save.setType("imap");
  save.initCredential().setPublicValue("planted");
  EXPECT_EQ(save.send().wait(ws).getError().getCode(), rpc::ErrorCode::PERMISSION_DENIED);
  auto own = s.saveForAssociateRequest();
  own.setAssociateId(alice);
  own.setType("imap");
  auto c = own.initCredential();
  c.setPublicValue("alice@example.com");
  c.setSecretValue("via-deprecated");
  ASSERT_FALSE(own.send().wait(ws).hasError());
  EXPECT_EQ(getAs(s, 0), "ok:via-deprecated");
  auto rm = s.removeForAssociateRequest();
  rm.setAssociateId(alice);
  rm.setType("imap");
  rm.setPublicValue("alice@example.com");
  EXPECT_TRUE(rm.send().wait(ws).getRemoved());
  EXPECT_EQ(get(s, alice), "ok:empty");
}

TEST_F(ServiceTest, EveryCallIsAuditedWithoutSecrets) {
  auto s = byTicket(STRANGER_UID, password(STRANGER_UID, "alice", ALICE_PW, true).ticket);
  EXPECT_EQ(getAs(s, alice), std::string("ok:") + ALICE_SECRET);
  EXPECT_EQ(getAs(s, bob), "permission-denied");
  auto rm = s.removeRequest();
  rm.setType("imap");
  rm.setPublicValue("alice@example.com");
  EXPECT_TRUE(rm.send().wait(ws).getRemoved());
  auto hashReq = rootAdmin().auditHashRequest();
  hashReq.setValue("alice@example.com");
  auto hmac = kj::heapString(hashReq.send().wait(ws).getHmac());
  EXPECT_EQ(hmac.size(), 64u);

  auto log = readFile(d.dir / "audit.jsonl");
  std::vector<std::string> lines;
  std::stringstream ss(log);
  for (std::string line; std::getline(ss, line);) lines.push_back(line);
  auto find = [&](std::string needle) {
    for (auto& l : lines) {
      if (l.find(needle) != std::string::npos) return l;
    }
    return std::string();
  };
  // A read is recorded: who, whose, what type, and the request id the front end gave.
  auto read = find("\"operation\":\"get\",\"result\":\"ok\"");
  ASSERT_FALSE(read.empty()) << log;
  EXPECT_NE(read.find("\"peer_uid\":5000"), std::string::npos) << read;
  EXPECT_NE(read.find("\"auth_method\":\"ticket\""), std::string::npos) << read;
  EXPECT_NE(read.find(kj::str("\"associate_id\":", alice).cStr()), std::string::npos) << read;
  EXPECT_NE(read.find(kj::str("\"target_associate_id\":", alice).cStr()), std::string::npos);
  EXPECT_NE(read.find("\"type\":\"imap\""), std::string::npos) << read;
  EXPECT_NE(read.find("\"client_address\":\"203.0.113.7\""), std::string::npos) << read;
  EXPECT_NE(read.find("\"request_id\":\"req-0001\""), std::string::npos) << read;
  auto refused = find("\"operation\":\"get\",\"result\":\"permission-denied\"");
  EXPECT_NE(refused.find(kj::str("\"target_associate_id\":", bob).cStr()), std::string::npos)
      << refused;
  auto removed = find("\"operation\":\"remove\"");
  EXPECT_NE(removed.find(hmac.cStr()), std::string::npos) << removed;
  EXPECT_FALSE(find("\"operation\":\"authenticate-password\",\"result\":\"ok\"").empty());
  EXPECT_FALSE(find("\"operation\":\"audit-hash\"").empty());

  // Nothing secret in the trail or the database file.
  auto db = readFile(d.dir / "data.mdb");
  for (const char* secret : {ALICE_SECRET, BOB_SECRET, ALICE_PW, SYS_PW, "alice@example.com"}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << secret;
    EXPECT_EQ(db.find(secret), std::string::npos) << secret;
  }
  // Every call in this test wrote exactly one record; the setup made 4 + 2 peer sessions,
  // 4 admins, 4 adds, 2 saves — at least this many lines.
  EXPECT_GE(lines.size(), 20u);
}

TEST_F(ServiceTest, OnlyAGatewayUidsClientAddressIsBelieved) {
  // bob's uid is no front end: what it says of "its client" is not recorded (nor used as a
  // throttle key), so a local user cannot pose as many clients or forge the trail.
  auto ticket = password(STRANGER_UID, "alice", ALICE_PW, true).ticket;
  auto req = connect(BOB_UID).authenticateTicketRequest();
  req.setTicket(ticket);
  req.setClientAddress("198.51.100.99");
  req.setRequestId("forged-id-1");
  auto s = req.send().wait(ws).getSession();
  EXPECT_EQ(getAs(s, alice), std::string("ok:") + ALICE_SECRET);
  auto log = readFile(d.dir / "audit.jsonl");
  EXPECT_EQ(log.find("198.51.100.99"), std::string::npos);
  EXPECT_EQ(log.find("forged-id-1"), std::string::npos);
  // A front end's word is bounded: printable ASCII, at most 64 bytes.
  auto bad = connect(STRANGER_UID).authenticateTicketRequest();
  bad.setTicket(ticket);
  bad.setRequestId(std::string(65, 'x').c_str());
  auto r = bad.send().wait(ws);
  ASSERT_TRUE(r.hasError());
  EXPECT_EQ(r.getError().getCode(), rpc::ErrorCode::INVALID_ARGUMENT);
  EXPECT_EQ(kj::StringPtr(r.getError().getField()), "requestId");
}

// The choke point reads the fields it checks and records straight from the request's bytes
// (daemon/rpc-server.c++, Shape). A client of an earlier release sends a shorter params struct:
// Get's associateId is missing and reads as 0, the caller's own, so a shorter struct can never
// name someone else. A newer client's longer struct is read as far as ours goes.
TEST_F(ServiceTest, AShorterOrLongerParamsStructIsReadAsItsFieldsSay) {
  auto send = [&](rpc::Session::Client s, uint16_t dataWords, uint16_t pointers,
                  int32_t associateId) {
    auto req = s.typelessRequest(capnp::typeId<rpc::Session>(), 2, nullptr);  // get @2
    auto params = req.initAsAnyStruct(dataWords, pointers);
    params.getPointerSection()[0].setAs<capnp::Text>("imap");
    if (dataWords > 0) memcpy(params.getDataSection().begin(), &associateId, 4);
    auto response = req.send().wait(ws);
    auto r = response.getAs<rpc::Session::GetResults>();
    if (r.hasError()) return std::string(ipc::errorCodeName(r.getError().getCode()).cStr());
    if (r.getCredentials().size() == 0) return std::string("ok:empty");
    return std::string("ok:") + r.getCredentials()[0].getSecretValue().cStr();
  };
  // No data section: associateId 0, bob's own, whoever he would have named.
  EXPECT_EQ(send(peerSession(BOB_UID), 0, 1, 0), std::string("ok:") + BOB_SECRET);
  // The same struct as ours, and a longer one: associateId says alice's, which bob may not read.
  EXPECT_EQ(send(peerSession(BOB_UID), 1, 1, alice), "permission-denied");
  EXPECT_EQ(send(peerSession(BOB_UID), 3, 4, alice), "permission-denied");
  EXPECT_EQ(send(peerSession(ALICE_UID), 3, 4, alice), std::string("ok:") + ALICE_SECRET);
  // Each went into the trail with its type and the target it was decided on.
  auto log = readFile(d.dir / "audit.jsonl");
  auto denied = kj::str("\"operation\":\"get\",\"result\":\"permission-denied\"");
  auto target = kj::str("\"target_associate_id\":", alice);
  size_t deniedWithTarget = 0;
  std::stringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(denied.cStr()) != std::string::npos &&
        line.find(target.cStr()) != std::string::npos &&
        line.find("\"type\":\"imap\"") != std::string::npos) {
      ++deniedWithTarget;
    }
  }
  EXPECT_EQ(deniedWithTarget, 2u) << log;
}

TEST_F(ServiceTest, APasswordFloodFromOneUidDoesNotDelayAnotherUidsLogin) {
  // An unmapped uid pipelines 400 logins with random names; alice (another uid) logs in
  // meanwhile. The flood gets a few places in the queue and `throttled` for the rest; alice's
  // verification waits for at most one of the flood's per busy uid, not for 400.
  auto flooder = connect(BOB_UID);
  kj::Vector<kj::Promise<void>> flood;
  size_t throttled = 0, verified = 0;
  for (int i = 0; i < 400; ++i) {
    auto req = flooder.authenticatePasswordRequest();
    req.setName(kj::str("nobody-", i));
    req.setPassword("guess");
    req.setClientAddress(kj::str("10.0.", i / 256, ".", i % 256));
    flood.add(req.send().then([&](auto r) {
      if (r.hasError() && r.getError().getCode() == rpc::ErrorCode::THROTTLED) {
        ++throttled;
      } else {
        ++verified;
      }
    }));
  }
  auto login = connect(ALICE_UID).authenticatePasswordRequest();
  login.setName("alice");
  login.setPassword(ALICE_PW);
  auto r = login.send().wait(ws);
  EXPECT_FALSE(r.hasError());
  kj::joinPromises(flood.releaseAsArray()).wait(ws);
  EXPECT_EQ(throttled + verified, 400u);
  // Most of the flood never got a place (the order the pool serves is tested in
  // blocking-pool-test; the wait, with real Argon2id costs, in credvault-bench).
  EXPECT_GE(throttled, 200u) << verified << " verified";
}

TEST_F(ServiceTest, ALongListIsAnsweredWholeFromTheReadsWorker) {
  // Past INLINE_GET_LIMIT the list is opened off the event loop; the answer is the same.
  {
    auto unguarded = d.unguarded();
    auto self = d.identity.byPeer({ALICE_UID, 1}).value();
    d.env.write([&](store::WriteTxn& txn) {
      for (size_t i = 0; i < INLINE_GET_LIMIT + 44; ++i) {
        core::Credential c;
        c.publicValue = kj::str("bulk-", i, "@example.com");
        c.secretValue = crypto::Secret::copyOf(kj::str("bulk-secret-", i));
        d.vault.save(self.principal, 0, "bulk", kj::mv(c)).value()(txn).value();
      }
    });
  }
  auto s = peerSession(ALICE_UID);
  auto req = s.getRequest();
  req.setType("bulk");
  auto r = req.send().wait(ws);
  ASSERT_FALSE(r.hasError()) << r.getError().getMessage().cStr();
  ASSERT_EQ(r.getCredentials().size(), INLINE_GET_LIMIT + 44);
  size_t withSecret = 0;
  for (auto c : r.getCredentials()) {
    if (c.hasSecretValue() && kj::StringPtr(c.getSecretValue()).startsWith("bulk-secret-")) {
      ++withSecret;
    }
  }
  EXPECT_EQ(withSecret, INLINE_GET_LIMIT + 44);
  // Another associate's long list is still refused before any work.
  EXPECT_EQ(getAs(peerSession(BOB_UID), alice), "permission-denied");
}

TEST_F(ServiceTest, OneGatewayClientsLongListsDoNotTakeAnotherClientsTurn) {
  // Through a gateway (one uid, many HTTP clients), a client that pipelines long Gets gets
  // LONG_GETS_PER_CLIENT of them admitted and `throttled` for the rest; another client of the
  // same gateway, same account even, still gets its long Get queued and answered. (Before,
  // every client of a gateway shared one lane of LONG_GETS_PER_UID places: one client took
  // them all and the others were throttled.)
  {
    auto unguarded = d.unguarded();
    auto self = d.identity.byPeer({ALICE_UID, 1}).value();
    d.env.write([&](store::WriteTxn& txn) {
      for (size_t i = 0; i < INLINE_GET_LIMIT + 10; ++i) {
        core::Credential c;
        c.publicValue = kj::str("bulk-", i, "@example.com");
        c.secretValue = crypto::Secret::copyOf(kj::str("bulk-secret-", i));
        d.vault.save(self.principal, 0, "bulk", kj::mv(c)).value()(txn).value();
      }
    });
  }
  auto ticket = password(STRANGER_UID, "alice", ALICE_PW, true).ticket;
  auto asClient = [&](kj::StringPtr address) {
    auto req = connect(STRANGER_UID).authenticateTicketRequest();
    req.setTicket(ticket);
    req.setClientAddress(address);
    return req.send().wait(ws).getSession();
  };
  auto greedy = asClient("203.0.113.7");
  auto other = asClient("198.51.100.2");

  // The long-list worker is kept busy, so every admitted long Get waits in its lane.
  kj::MutexGuarded<bool> released(false);
  auto blocker = d.service.reads().run<bool>([&]() -> core::Result<bool> {
    released.when([](bool r) { return r; }, [](bool) {});
    return true;
  });
  KJ_DEFER(*released.lockExclusive() = true);

  constexpr size_t SENT = 6;
  size_t greedyOk = 0, greedyThrottled = 0;
  kj::Vector<kj::Promise<void>> answers;
  for (size_t i = 0; i < SENT; ++i) {
    auto req = greedy.getRequest();
    req.setType("bulk");
    answers.add(req.send()
                    .then([&](auto r) {
                      if (!r.hasError()) {
                        ++greedyOk;
                      } else if (r.getError().getCode() == rpc::ErrorCode::THROTTLED) {
                        ++greedyThrottled;
                      }
                    })
                    .eagerlyEvaluate(nullptr));
  }
  // The refusals come at once; the admitted ones wait for the worker.
  for (int i = 0; i < 20000 && greedyThrottled < SENT - LONG_GETS_PER_CLIENT; ++i) {
    d.io.provider->getTimer().afterDelay(1 * kj::MILLISECONDS).wait(ws);
  }
  EXPECT_EQ(greedyThrottled, SENT - LONG_GETS_PER_CLIENT);

  auto req = other.getRequest();
  req.setType("bulk");
  auto mine = req.send();
  d.io.provider->getTimer().afterDelay(20 * kj::MILLISECONDS).wait(ws);
  *released.lockExclusive() = true;
  auto r = mine.wait(ws);
  ASSERT_FALSE(r.hasError()) << ipc::errorCodeName(r.getError().getCode()).cStr();
  EXPECT_EQ(r.getCredentials().size(), INLINE_GET_LIMIT + 10);
  kj::joinPromises(answers.releaseAsArray()).wait(ws);
  EXPECT_EQ(greedyOk, LONG_GETS_PER_CLIENT);
  EXPECT_TRUE(blocker.wait(ws).value != nullptr);
  EXPECT_TRUE(d.service.longGetsByClient.size() == 0) << "a client's count outlived its calls";
}

TEST_F(ServiceTest, AnAuditLogThatCannotBeWrittenWithholdsTheAnswer) {
  // Fail closed: a Get whose record cannot be written is answered `unavailable` and
  // carries no secret. The file stops taking writes behind the daemon's back (a file size
  // limit makes write(2) fail with EFBIG, as a full disk would with ENOSPC).
  auto s = peerSession(ALICE_UID);
  EXPECT_EQ(getAs(s, alice), std::string("ok:") + ALICE_SECRET);
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto oldHandler = signal(SIGXFSZ, SIG_IGN);
  struct stat st;
  ASSERT_EQ(stat((d.dir / "audit.jsonl").cStr(), &st), 0);
  struct rlimit limit = {static_cast<rlim_t>(st.st_size), old.rlim_max};
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  auto refused = getAs(s, alice);
  auto opened = connect(BOB_UID).sessionRequest().send().wait(ws);
  auto next = opened.hasError() ? ipc::errorCodeName(opened.getError().getCode()) : "ok"_kj;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, oldHandler);
  EXPECT_EQ(refused, "unavailable");
  EXPECT_EQ(next, "unavailable"_kj);
  // Once the file takes writes again, so does the daemon, and the kept records are written.
  EXPECT_EQ(getAs(s, alice), std::string("ok:") + ALICE_SECRET);
  auto log = readFile(d.dir / "audit.jsonl");
  EXPECT_NE(log.find("\"result\":\"unavailable\""), std::string::npos);
}

TEST_F(ServiceTest, AnAuditLogThatNeverWorksRefusesFromTheFirstCall) {
  AuditOptions o;
  o.path = kj::str("/dev/full");
  o.journal = false;
  AuditLog full(kj::mv(o));
  Service service(d.vault, d.auth, d.identity, d.committer, d.passwords, full,
                  kj::systemPreciseCalendarClock());
  auto pipe = d.io.provider->newTwoWayPipe();
  capnp::TwoPartyVatNetwork net(*pipe.ends[0], capnp::rpc::twoparty::Side::SERVER);
  auto server = capnp::makeRpcServer(net, service.newBootstrap(Peer{ALICE_UID, 1}));
  capnp::TwoPartyClient client(*pipe.ends[1]);
  auto vault = client.bootstrap().castAs<rpc::Vault>();
  for (int i = 0; i < 2; ++i) {
    auto r = vault.sessionRequest().send().wait(ws);
    ASSERT_TRUE(r.hasError());
    EXPECT_EQ(r.getError().getCode(), rpc::ErrorCode::UNAVAILABLE);
  }
}

}  // namespace
// The calls no other test here makes (probes, defaults, applications) answer; in the offload
// build (loop-guard-store.h) they, like every call above, read the store off the event loop.
TEST_F(ServiceTest, ProbesDefaultsAndApplicationsAnswerOffTheLoopWhenTheStoreMayBlock) {
  auto health = connect(STRANGER_UID).healthRequest().send().wait(ws);
  ASSERT_FALSE(health.hasError()) << health.getError().getMessage().cStr();
  EXPECT_EQ(health.getVersion(), CREDVAULT_VERSION);
  auto metrics = connect(0).metricsRequest().send().wait(ws);
  ASSERT_FALSE(metrics.hasError()) << metrics.getError().getMessage().cStr();
  EXPECT_GE(metrics.getStatus().getAssociates(), 2u);
  auto status = connect(ALICE_UID).statusRequest().send().wait(ws);
  ASSERT_FALSE(status.hasError()) << status.getError().getMessage().cStr();
  EXPECT_GE(status.getStatus().getCredentials(), 2u);
  auto refused = connect(12345).statusRequest().send().wait(ws);
  EXPECT_EQ(refused.getError().getCode(), rpc::ErrorCode::NOT_AUTHENTICATED);
  auto def = peerSession(ALICE_UID).createDefaultRequest().send().wait(ws);
  ASSERT_FALSE(def.hasError());
  EXPECT_TRUE(def.getCredential().getIsActive());
  auto add = rootAdmin().addApplicationRequest();
  add.setName("probe-app");
  ASSERT_FALSE(add.send().wait(ws).hasError());
  auto rm = rootAdmin().removeApplicationRequest();
  rm.setName("probe-app");
  auto removed = rm.send().wait(ws);
  ASSERT_FALSE(removed.hasError());
  EXPECT_TRUE(removed.getRemoved());
  if (d.guard != nullptr) {
    EXPECT_EQ(d.guard->violations(), 0u);
    EXPECT_GT(d.guard->offLoop(), 0u);
  }
}

}  // namespace credvault::daemon
