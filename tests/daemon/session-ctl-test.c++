// Session.list, listAll, update and changePassword (the calls credvaultctl's list,
// expiring, update and passwd use) through the real RPC layer in-process: the permission
// table, the audit record, the re-check inside the commit, and what a hostile local user
// would try.

#include "rpc-fixture.h"

#include <sstream>
#include <unistd.h>

namespace credvault::daemon {
namespace {

using namespace testing;

class SessionCtl : public RpcFixture {
 protected:
  SessionCtl() : RpcFixture(false) {}

  template<typename Response>
  static std::string outcome(Response& r) {
    if (r.hasError()) return ipc::errorCodeName(r.getError().getCode()).cStr();
    return "ok";
  }

  // "error" or "id:type:pub[+secret]|..." in the order the daemon answers.
  template<typename Response>
  static std::string listing(Response& r) {
    if (r.hasError()) return ipc::errorCodeName(r.getError().getCode()).cStr();
    std::string out;
    for (auto e : r.getCredentials()) {
      if (!out.empty()) out += "|";
      out += std::to_string(e.getAssociateId()) + ":" + e.getType().cStr() + ":" +
             e.getCredential().getPublicValue().cStr();
      if (e.getCredential().hasSecretValue()) out += "+secret";
    }
    return out;
  }

  std::string list(rpc::Session::Client s, int32_t target, kj::StringPtr type = "") {
    auto req = s.listRequest();
    req.setAssociateId(target);
    req.setType(type);
    auto r = req.send().wait(ws);
    return listing(r);
  }
  std::string listAll(rpc::Session::Client s, kj::StringPtr type = "") {
    auto req = s.listAllRequest();
    req.setType(type);
    auto r = req.send().wait(ws);
    return listing(r);
  }

  capnp::Request<rpc::Session::UpdateParams, rpc::Session::UpdateResults> update(
      rpc::Session::Client s, int32_t target, kj::StringPtr pub) {
    auto req = s.updateRequest();
    req.setAssociateId(target);
    req.setType("imap");
    req.setPublicValue(pub);
    return req;
  }

  // The stored "imap" entry `pub` of `target`, read as root: "comment|active|secret".
  std::string stored(int32_t target, kj::StringPtr pub) {
    auto req = peerSession(0).getRequest();
    req.setAssociateId(target);
    req.setType("imap");
    auto r = req.send().wait(ws);
    for (auto c : r.getCredentials()) {
      if (c.getPublicValue() == pub) {
        return std::string(c.getComment().cStr()) + "|" +
               (c.getIsActive() ? "active" : "inactive") + "|" + c.getSecretValue().cStr();
      }
    }
    return "<none>";
  }

  std::string auditLine(const std::string& needle) {
    std::stringstream ss(readFile(d.dir / "audit.jsonl"));
    std::string found;
    for (std::string line; std::getline(ss, line);) {
      if (line.find(needle) != std::string::npos) return line;  // the first
    }
    return found;
  }

  std::string changePassword(rpc::Session::Client s, kj::StringPtr current, kj::StringPtr pw) {
    auto req = s.changePasswordRequest();
    req.setCurrent(current);
    req.setPassword(pw);
    auto r = req.send().wait(ws);
    return outcome(r);
  }

  std::string login(kj::StringPtr name, kj::StringPtr pw) {
    auto req = connect(STRANGER_UID).authenticatePasswordRequest();
    req.setName(name);
    req.setPassword(pw);
    auto r = req.send().wait(ws);
    return outcome(r);
  }
};

TEST_F(SessionCtl, ListFollowsThePermissionTableAndNeverCarriesASecret) {
  auto aliceS = peerSession(ALICE_UID);
  save(aliceS, "smtp", "relay@example.com", "alice-smtp-Secret");
  auto own = list(aliceS, 0);
  EXPECT_NE(own.find(kj::str(alice, ":imap:alice@example.com").cStr()), std::string::npos) << own;
  EXPECT_NE(own.find(kj::str(alice, ":smtp:relay@example.com").cStr()), std::string::npos) << own;
  EXPECT_EQ(own.find("+secret"), std::string::npos) << own;
  EXPECT_EQ(list(aliceS, 0, "smtp"), kj::str(alice, ":smtp:relay@example.com").cStr());
  EXPECT_EQ(list(aliceS, alice, "smtp"), kj::str(alice, ":smtp:relay@example.com").cStr());
  // A plain user: not another's, not everyone's, and a made-up id is refused, not probed.
  EXPECT_EQ(list(aliceS, bob), "permission-denied");
  EXPECT_EQ(list(aliceS, 99999), "permission-denied");
  EXPECT_EQ(list(aliceS, -1), "permission-denied");
  EXPECT_EQ(listAll(aliceS), "permission-denied");
  // A user admin (by password): another's list and everyone's, still no secret.
  auto ua = password(STRANGER_UID, "ua", "ua-Pw-3").session;
  EXPECT_EQ(list(ua, bob), kj::str(bob, ":imap:bob@example.com").cStr());
  auto all = listAll(ua, "imap");
  EXPECT_NE(all.find(kj::str(alice, ":imap:alice@example.com").cStr()), std::string::npos);
  EXPECT_NE(all.find(kj::str(bob, ":imap:bob@example.com").cStr()), std::string::npos);
  EXPECT_EQ(all.find("smtp"), std::string::npos) << all;
  EXPECT_EQ(all.find("+secret"), std::string::npos) << all;
  EXPECT_EQ(listAll(peerSession(0)).find("+secret"), std::string::npos);
  // Bad input is named; an unmapped uid gets no session at all.
  EXPECT_EQ(list(aliceS, 0, std::string(65, 't').c_str()), "limit-exceeded");
  EXPECT_EQ(list(peerSession(0), 0), "not-found");
  auto stranger = connect(STRANGER_UID).sessionRequest().send().wait(ws);
  EXPECT_TRUE(stranger.hasError());
  // Audited as the reads they are, with the target.
  auto rec = auditLine("\"operation\":\"list\",\"result\":\"permission-denied\"");
  EXPECT_NE(rec.find(kj::str("\"target_associate_id\":", bob).cStr()), std::string::npos) << rec;
  EXPECT_FALSE(auditLine("\"operation\":\"list-all\",\"result\":\"ok\"").empty());
  EXPECT_FALSE(auditLine("\"operation\":\"list-all\",\"result\":\"permission-denied\"").empty());
}

TEST_F(SessionCtl, UpdateChangesOnlyTheMaskedFields) {
  auto aliceS = peerSession(ALICE_UID);
  auto req = update(aliceS, 0, "alice@example.com");
  req.getUpdate().getComment().setSet("new comment");
  auto r = req.send().wait(ws);
  ASSERT_EQ(outcome(r), "ok");
  EXPECT_EQ(stored(alice, "alice@example.com"), std::string("new comment|active|") + ALICE_SECRET);
  req = update(aliceS, 0, "alice@example.com");
  req.getUpdate().getIsActive().setSet(false);
  req.getUpdate().getSecretValue().setSet("alice-new-Secret");
  r = req.send().wait(ws);
  ASSERT_EQ(outcome(r), "ok");
  EXPECT_EQ(stored(alice, "alice@example.com"), "new comment|inactive|alice-new-Secret");
  // Dates are checked against what is stored: validTo may not fall before validFrom.
  req = update(aliceS, 0, "alice@example.com");
  req.getUpdate().getValidFrom().setSet(ipc::UNIX_EPOCH_TICKS + 2000 * ipc::TICKS_PER_SECOND);
  ASSERT_EQ(outcome(r = req.send().wait(ws)), "ok");
  req = update(aliceS, 0, "alice@example.com");
  req.getUpdate().getValidTo().setSet(ipc::UNIX_EPOCH_TICKS + 1000 * ipc::TICKS_PER_SECOND);
  r = req.send().wait(ws);
  EXPECT_EQ(outcome(r), "invalid-argument");
  EXPECT_EQ(std::string(r.getError().getField().cStr()), "validTo");
  // Field limits as for a save; nothing changes.
  req = update(aliceS, 0, "alice@example.com");
  req.getUpdate().getComment().setSet(std::string(256, 'c').c_str());
  r = req.send().wait(ws);
  EXPECT_EQ(outcome(r), "limit-exceeded");
  req = update(aliceS, 0, "alice@example.com");
  req.getUpdate().getSecretValue().setSet(std::string(8193, 's').c_str());
  r = req.send().wait(ws);
  EXPECT_EQ(outcome(r), "limit-exceeded");
  EXPECT_EQ(stored(alice, "alice@example.com"), "new comment|inactive|alice-new-Secret");
  // No such entry: not found, and none is created.
  req = update(aliceS, 0, "nobody@example.com");
  req.getUpdate().getIsActive().setSet(true);
  r = req.send().wait(ws);
  EXPECT_EQ(outcome(r), "not-found");
  EXPECT_EQ(stored(alice, "nobody@example.com"), "<none>");
  // The audit record names the entry by its keyed hash, never by value.
  auto rec = auditLine("\"operation\":\"update\",\"result\":\"ok\"");
  ASSERT_FALSE(rec.empty());
  auto hashReq = rootAdmin().auditHashRequest();
  hashReq.setValue("alice@example.com");
  auto hmac = kj::heapString(hashReq.send().wait(ws).getHmac());
  EXPECT_NE(rec.find(hmac.cStr()), std::string::npos) << rec;
  auto log = readFile(d.dir / "audit.jsonl");
  for (const char* s : {"alice-new-Secret", "alice@example.com", "new comment"}) {
    EXPECT_EQ(log.find(s), std::string::npos) << s;
  }
}

TEST_F(SessionCtl, AnotherUsersEntryIsNotUpdatedByAPlainUser) {
  auto aliceS = peerSession(ALICE_UID);
  for (int32_t target : {bob, sys, admin}) {
    auto req = update(aliceS, target, "bob@example.com");
    req.getUpdate().getSecretValue().setSet("planted-by-alice");
    auto r = req.send().wait(ws);
    EXPECT_EQ(outcome(r), "permission-denied") << target;
  }
  auto req = update(aliceS, -5, "bob@example.com");
  req.getUpdate().getIsActive().setSet(false);
  auto r = req.send().wait(ws);
  EXPECT_EQ(outcome(r), "permission-denied");
  EXPECT_EQ(stored(bob, "bob@example.com"), std::string("|active|") + BOB_SECRET);
  // A user admin may set a secret of another (never read it): allowed as a save is.
  auto ua = password(STRANGER_UID, "ua", "ua-Pw-3").session;
  req = update(ua, bob, "bob@example.com");
  req.getUpdate().getSecretValue().setSet("set-by-ua-Secret");
  ASSERT_EQ(outcome(r = req.send().wait(ws)), "ok");
  EXPECT_EQ(getAs(ua, bob), "ok:<withheld>");
  EXPECT_EQ(stored(bob, "bob@example.com"), "|active|set-by-ua-Secret");
  auto rec = auditLine("\"operation\":\"update\",\"result\":\"permission-denied\"");
  EXPECT_NE(rec.find(kj::str("\"associate_id\":", alice).cStr()), std::string::npos) << rec;
}

// The re-check inside the commit: an update authorized before a demotion that commits first
// is refused, exactly like a save.
TEST_F(SessionCtl, QueuedUpdateAuthorizedBeforeDemotionIsRefusedAtCommit) {
  auto ua = password(STRANGER_UID, "ua", "ua-Pw-3").session;
  WriterGate gate;
  auto held = holdWriter(d.committer, gate);
  waitEntered(gate);
  auto demote = rootAdmin().setAssociateRequest();
  demote.setAssociateId(admin);
  demote.initUpdate().getUserAdmin().setSet(false);
  auto demoted = demote.send();
  runUntil([&]() { return d.committer.queued() == 1; });
  auto req = update(ua, bob, "bob@example.com");
  req.getUpdate().getSecretValue().setSet("attacker-chosen");
  auto planted = req.send();
  runUntil([&]() { return d.committer.queued() == 2; });
  *gate.open.lockExclusive() = true;
  held.wait(ws);
  ASSERT_FALSE(demoted.wait(ws).hasError());
  auto r = planted.wait(ws);
  EXPECT_EQ(outcome(r), "permission-denied");
  EXPECT_EQ(stored(bob, "bob@example.com"), std::string("|active|") + BOB_SECRET);
}

// Two updates of different fields queued in one batch: both land (no read-modify-write).
TEST_F(SessionCtl, UpdatesOfDifferentFieldsInOneBatchBothLand) {
  auto aliceS = peerSession(ALICE_UID);
  WriterGate gate;
  auto held = holdWriter(d.committer, gate);
  waitEntered(gate);
  auto one = update(aliceS, 0, "alice@example.com");
  one.getUpdate().getComment().setSet("from one");
  auto p1 = one.send();
  auto two = update(peerSession(ALICE_UID), 0, "alice@example.com");
  two.getUpdate().getIsActive().setSet(false);
  auto p2 = two.send();
  runUntil([&]() { return d.committer.queued() == 2; });
  *gate.open.lockExclusive() = true;
  held.wait(ws);
  auto r1 = p1.wait(ws);
  auto r2 = p2.wait(ws);
  EXPECT_EQ(outcome(r1), "ok");
  EXPECT_EQ(outcome(r2), "ok");
  EXPECT_EQ(stored(alice, "alice@example.com"), std::string("from one|inactive|") + ALICE_SECRET);
}

TEST_F(SessionCtl, ChangePasswordNeedsTheCurrentOneAndIsThrottled) {
  auto aliceS = peerSession(ALICE_UID);
  EXPECT_EQ(changePassword(aliceS, "wrong-Pw", NEW_PW), "not-authenticated");
  EXPECT_EQ(login("alice", ALICE_PW), "ok");
  EXPECT_EQ(changePassword(aliceS, ALICE_PW, ""), "invalid-argument");
  EXPECT_EQ(login("alice", ALICE_PW), "ok");
  // A ticket issued under the old password dies with it.
  auto ticket = password(STRANGER_UID, "alice", ALICE_PW, true).ticket;
  auto viaTicket = byTicket(STRANGER_UID, ticket);
  EXPECT_EQ(changePassword(aliceS, ALICE_PW, NEW_PW), "ok");
  EXPECT_EQ(login("alice", ALICE_PW), "not-authenticated");
  EXPECT_EQ(login("alice", NEW_PW), "ok");
  EXPECT_EQ(getAs(viaTicket, alice), "not-authenticated");
  // Guessing the current password is throttled like guessing at login.
  std::string last;
  for (int i = 0; i < 8; i++) last = changePassword(peerSession(BOB_UID), "guess", "x-Pw-9");
  EXPECT_EQ(last, "throttled");
  // No associate, no password.
  EXPECT_EQ(changePassword(peerSession(0), "a", "b"), "not-found");
  // Audited, without either password.
  EXPECT_FALSE(auditLine("\"operation\":\"passwd\",\"result\":\"ok\"").empty());
  auto log = readFile(d.dir / "audit.jsonl");
  EXPECT_EQ(log.find(NEW_PW), std::string::npos);
  EXPECT_EQ(log.find(ALICE_PW), std::string::npos);
}

}  // namespace
}  // namespace credvault::daemon
