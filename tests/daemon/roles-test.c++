// The permission table row by row through the daemon's RPC layer, in-process (no root, no other
// uids; moved here from the root-only integration suite, which keeps what needs credvaultctl,
// real uids and a real process): what a plain user, a user administrator, a system user, an
// unmapped uid and a partner application may do to their own and to others' credentials and
// associates; tickets acting for their associate; a remapped or deactivated uid; who may stream
// a backup and compute an audit hash. Every secret, password, public value and comment a test
// sends is remembered, and at its end the daemon's database file, its audit trail and its log
// lines (captured from stderr, at debug level as in the integration suite) are scanned for them.
//
//   uid 0      root: a system user without an associate
//   uid 900    listed in system_uids: a system user without an associate
//   uid 1001   alice: a plain user (rpc-fixture.h)
//   uid 1003   admin: a user with userAdmin
//   uid 1005   svc: an associate of kind system
//   uid 6000   mapped to no one
//   (dave has no uid, only a password)

#include "calls.h"
#include "rpc-fixture.h"
#include "daemon/log.h"
#include "tests/support/capture-stderr.h"

#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <stdlib.h>
#include <unistd.h>
#include <string>

namespace credvault::daemon {
namespace {

using namespace testing;

// The daemon's log lines must reach stderr, where the leak check reads them, even when the
// tests run inside a systemd service: log.c++ decides at its first line, so before any test.
[[maybe_unused]] const bool NOT_UNDER_JOURNALD = (unsetenv("JOURNAL_STREAM"), true);

constexpr uint32_t SYSTEM_UID = 900;
constexpr uint32_t ADMIN_UID = 1003;
constexpr uint32_t SVC_UID = 1005;
constexpr uint32_t NOBODY_UID = 6000;
const std::string DAVE_PW = "dave-Pa55word-never-logged";

// Counts what a backup streams.
class CountingSink final : public rpc::ByteSink::Server {
 public:
  explicit CountingSink(uint64_t& bytes) : bytes_(bytes) {}

 protected:
  kj::Promise<void> write(WriteContext context) override {
    bytes_ += context.getParams().getData().size();
    return kj::READY_NOW;
  }
  kj::Promise<void> done(DoneContext) override { return kj::READY_NOW; }

 private:
  uint64_t& bytes_;
};

class Roles : public RpcFixture {
 protected:
  explicit Roles(bool onlineMode = false) : RpcFixture(true, onlineMode) {
    setLogLevel(Level::DEBUG);  // every call logged, as the integration suite runs the daemon
  }
  support::CaptureStderr logs;
  LeakCheck leaks;
  int32_t userAdmin = 0, svc = 0, dave = 0;
  static constexpr uint32_t ASSOCIATES = 7;  // alice, bob, sysa, ua (rpc-fixture.h) and these

  void SetUp() override {
    RpcFixture::SetUp();
    userAdmin = addAssociate("admin", rpc::Kind::USER, ADMIN_UID, "", true);
    svc = addAssociate("svc", rpc::Kind::SYSTEM, SVC_UID, "");
    dave = addAssociate("dave", rpc::Kind::USER, -1, DAVE_PW.c_str());
    remember(DAVE_PW);
  }
  // Nothing the test sent is in the database file, the audit trail or the log lines.
  void TearDown() override {
    clients.clear();
    leaks.check({(d.dir / "data.mdb").cStr(), (d.dir / "audit.jsonl").cStr()}, logs.text());
    RpcFixture::TearDown();
  }
  void remember(const std::string& s) {
    KJ_REQUIRE(s.size() >= 10, "remembered strings must be long enough not to occur by chance");
    leaks.remember(s);
  }

  // Session.get's answer, for tests that look at its fields.
  capnp::Response<rpc::Session::GetResults> getAnswer(rpc::Session::Client s, int32_t target,
                                                      kj::StringPtr type) {
    auto req = s.getRequest();
    req.setAssociateId(target);
    req.setType(type);
    return req.send().wait(ws);
  }
  std::string save(rpc::Session::Client s, int32_t target, const Entry& e) {
    return saveFor(s, target, e, ws);
  }
  std::string get(rpc::Session::Client s, int32_t target, const std::string& type) {
    return getFor(s, target, type, ws);
  }
  std::string remove(rpc::Session::Client s, int32_t target, const std::string& type,
                     const std::string& pub) {
    return removeFor(s, target, type, pub, ws);
  }
  // Session.admin, then (pipelined on it) each administrative call a credvaultctl command
  // makes: "list add set remove rotate backup" as each one's outcome ("denied" when the call
  // failed because no Admin came).
  std::string adminCalls(rpc::Session::Client s, int32_t someone) {
    auto admin = s.adminRequest().send();
    auto outcome = [&](auto promise) -> std::string {
      std::string out;
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { out = errorOf(promise.wait(ws)); })) {
        (void)e;
        out = "denied";
      }
      return out;
    };
    auto a = admin.getAdmin();
    std::string out = outcome(a.listAssociatesRequest().send());
    auto add = a.addAssociateRequest();
    add.setName("mallory");
    add.setUnixUid(-1);
    out += " " + outcome(add.send());
    auto set = a.setAssociateRequest();
    set.setAssociateId(someone);
    set.initUpdate().getUserAdmin().setSet(true);
    out += " " + outcome(set.send());
    auto rm = a.removeAssociateRequest();
    rm.setAssociateId(someone);
    out += " " + outcome(rm.send());
    out += " " + outcome(a.rotateDataKeyRequest().send());
    uint64_t bytes = 0;
    auto backup = a.backupToRequest();
    backup.setSink(kj::heap<CountingSink>(bytes));
    out += " " + outcome(backup.send());
    if (bytes != 0) out += " (streamed " + std::to_string(bytes) + " bytes)";
    return errorOf(admin.wait(ws)) + ": " + out;
  }
  // A fresh connection from `uid` (as each credvaultctl run makes) asks for a session and gets
  // `type`: the error of either, or what getFor() renders.
  std::string freshGet(uint32_t uid, const std::string& type, int32_t target = 0) {
    auto r = connect(uid).sessionRequest().send().wait(ws);
    if (r.hasError()) return errorOf(r);
    return get(r.getSession(), target, type);
  }
};

// ---- the permission table, row by row -------------------------------------------------------

TEST_F(Roles, UserRow) {
  const std::string secret = "alice-row-secret-81723", pub = "alice-row@example.test",
                    comment = "alice row comment 81723";
  remember(secret), remember(pub), remember(comment);
  auto s = peerSession(ALICE_UID);
  // Own credentials: full.
  ASSERT_EQ(save(s, 0, {"row-user", pub, secret, comment}), "ok");
  {
    auto r = getAnswer(s, 0, "row-user");
    ASSERT_EQ(errorOf(r), "ok");
    ASSERT_EQ(r.getCredentials().size(), 1u);
    auto c = r.getCredentials()[0];
    EXPECT_EQ(std::string(c.getSecretValue().cStr()), secret);
    EXPECT_EQ(std::string(c.getPublicValue().cStr()), pub);
    EXPECT_EQ(std::string(c.getComment().cStr()), comment);
  }

  // Someone else's: denied, for reading, saving and removing; the refusal holds no secret.
  auto root = peerSession(0);
  ASSERT_EQ(save(root, userAdmin,
                 {"row-user", "admin-owned@example.test", std::string("admin-owned-secret-1")}),
            "ok");
  remember("admin-owned-secret-1");
  {
    auto r = getAnswer(s, userAdmin, "row-user");
    EXPECT_EQ(errorOf(r), "permission-denied");
    EXPECT_EQ(r.getCredentials().size(), 0u);
    EXPECT_EQ(std::string(r.getError().getMessage().cStr()).find("admin-owned-secret-1"),
              std::string::npos);
  }
  EXPECT_EQ(save(s, userAdmin, {"row-user", "x-by-alice", std::string("nope-secret")}),
            "permission-denied");
  EXPECT_EQ(remove(s, userAdmin, "row-user", "admin-owned@example.test"), "permission-denied");
  // No Admin capability: no associate list, no new associate, no key rotation, no backup.
  EXPECT_EQ(adminCalls(s, userAdmin),
            "permission-denied: denied denied denied denied denied denied");
  // Nothing changed for the other associate.
  EXPECT_EQ(get(root, userAdmin, "row-user"), "admin-owned@example.test=admin-owned-secret-1");
  EXPECT_EQ(get(root, 0, "row-user").find("x-by-alice"), std::string::npos);

  // The same on one connection, as the client library sends it.
  auto s2 = peerSession(ALICE_UID);
  EXPECT_EQ(get(s2, 0, "row-user") + " / " + get(s2, userAdmin, "row-user") + " / " +
                save(s2, userAdmin, {"row-user", "lib-by-alice", std::string("zzzzzzzz")}) + " / " +
                remove(s2, userAdmin, "row-user", "admin-owned@example.test"),
            pub + "=" + secret + " / permission-denied / permission-denied / permission-denied");

  // Own remove, then it is gone.
  EXPECT_EQ(remove(s, 0, "row-user", pub), "removed");
  EXPECT_EQ(remove(s, 0, "row-user", pub), "absent");
}

TEST_F(Roles, UserAdminRow) {
  const std::string secret = "alice-owned-by-alice-5521", pub = "alice-admin-row@example.test";
  const std::string adminSet = "set-by-admin-secret-5521";
  remember(secret), remember(pub), remember(adminSet), remember("owner comment 5521");
  auto owner = peerSession(ALICE_UID);
  ASSERT_EQ(save(owner, 0, {"row-admin", pub, secret, "owner comment 5521"}), "ok");

  // Another's list: yes, the SecretValue absent on the wire (not just blanked).
  auto a = peerSession(ADMIN_UID);
  {
    auto r = getAnswer(a, alice, "row-admin");
    ASSERT_EQ(errorOf(r), "ok");
    ASSERT_EQ(r.getCredentials().size(), 1u);
    auto c = r.getCredentials()[0];
    EXPECT_FALSE(c.hasSecretValue());
    EXPECT_EQ(std::string(c.getPublicValue().cStr()), pub);
    EXPECT_EQ(std::string(c.getComment().cStr()), "owner comment 5521");
  }

  // May set a secret for another, never read it back.
  EXPECT_EQ(save(a, alice, {"row-admin", "set-by-admin@example.test", adminSet}), "ok");
  EXPECT_EQ(get(a, alice, "row-admin"), pub + "=<withheld>|set-by-admin@example.test=<withheld>");
  EXPECT_EQ(get(owner, 0, "row-admin"),
            pub + "=" + secret + "|set-by-admin@example.test=" + adminSet);
  // A save without a secret keeps the owner's.
  remember("changed by admin 5521");
  EXPECT_EQ(save(a, alice, {"row-admin", pub, nullptr, "changed by admin 5521"}), "ok");
  {
    auto r = getAnswer(owner, 0, "row-admin");
    bool seen = false;
    for (auto c : r.getCredentials()) {
      if (c.getPublicValue() != pub) continue;
      seen = true;
      EXPECT_EQ(std::string(c.getSecretValue().cStr()), secret);
      EXPECT_EQ(std::string(c.getComment().cStr()), "changed by admin 5521");
    }
    EXPECT_TRUE(seen);
  }
  // Remove for another.
  EXPECT_EQ(remove(a, alice, "row-admin", "set-by-admin@example.test"), "removed");
  // Associates: may list, not change; no key rotation, no backup.
  auto admin = a.adminRequest().send().wait(ws);
  ASSERT_EQ(errorOf(admin), "ok");
  auto listed = admin.getAdmin().listAssociatesRequest().send().wait(ws);
  ASSERT_EQ(errorOf(listed), "ok");
  bool sawAlice = false;
  for (auto x : listed.getAssociates()) sawAlice |= x.getName() == "alice";
  EXPECT_TRUE(sawAlice);
  EXPECT_EQ(adminCalls(a, alice),
            "ok: ok permission-denied permission-denied permission-denied permission-denied "
            "permission-denied");
}

TEST_F(Roles, SystemRow) {
  const std::string secret = "system-row-secret-0042";
  remember(secret);
  ASSERT_EQ(save(peerSession(ALICE_UID), 0, {"row-sys", "alice-sys@example.test", secret}), "ok");
  // Root: everything.
  {
    auto s = peerSession(0);
    EXPECT_EQ(get(s, alice, "row-sys"), "alice-sys@example.test=" + secret);
    EXPECT_EQ(
        save(s, alice, {"row-sys", "by-root@example.test", std::string("root-set-secret-0042")}),
        "ok");
    remember("root-set-secret-0042");
    EXPECT_EQ(get(s, alice, "row-sys"),
              "alice-sys@example.test=" + secret + "|by-root@example.test=root-set-secret-0042");
    EXPECT_EQ(remove(s, alice, "row-sys", "by-root@example.test"), "removed");
    // Root has no associate: its own list is not found.
    EXPECT_EQ(get(s, 0, "row-sys"), "not-found associateId");
    auto admin = s.adminRequest().send().wait(ws);
    ASSERT_EQ(errorOf(admin), "ok");
    auto all = admin.getAdmin().listAssociatesRequest().send().wait(ws);
    EXPECT_EQ(all.getAssociates().size(), ASSOCIATES);
  }
  // A configured system uid (no associate).
  auto sys = peerSession(SYSTEM_UID);
  EXPECT_EQ(get(sys, alice, "row-sys"), "alice-sys@example.test=" + secret);
  EXPECT_EQ(get(sys, 0, "row-sys"), "not-found associateId");
  EXPECT_EQ(listAs(sys.adminRequest().send().wait(ws).getAdmin()), "ok");
  // An associate of kind system, by its uid.
  auto s = peerSession(SVC_UID);
  auto a = save(s, alice, {"row-sys", "by-svc@example.test", std::string("svc-set-secret-0042")});
  auto b = get(s, alice, "row-sys");
  auto c = remove(s, alice, "row-sys", "by-svc@example.test");
  auto e = save(s, 0, {"row-sys", "svc-own@example.test", std::string("svc-own-secret-0042")});
  remember("svc-set-secret-0042"), remember("svc-own-secret-0042");
  EXPECT_EQ(a + " / " + b + " / " + c + " / " + e + " / " + get(s, 0, "row-sys"),
            "ok / alice-sys@example.test=" + secret +
                "|by-svc@example.test=svc-set-secret-0042 / removed / ok / "
                "svc-own@example.test=svc-own-secret-0042");
}

TEST_F(Roles, UnauthenticatedRow) {
  ASSERT_EQ(save(peerSession(ALICE_UID), 0,
                 {"row-unauth", "alice-unauth@example.test", std::string("unauth-row-secret-77")}),
            "ok");
  remember("unauth-row-secret-77");
  // No session by peer credentials, and nothing through the promise of the refused one: own
  // and another's get, save and remove, the Admin calls.
  {
    auto r = connect(NOBODY_UID).sessionRequest().send();
    auto s = r.getSession();
    auto refused = [&](auto promise) {
      return kj::runCatchingExceptions([&]() { promise.wait(ws); }) != nullptr;
    };
    auto get = [&](int32_t target) {
      auto req = s.getRequest();
      req.setAssociateId(target);
      req.setType("row-unauth");
      return refused(req.send());
    };
    auto save = [&](int32_t target) {
      auto req = s.saveRequest();
      req.setAssociateId(target);
      req.setType("row-unauth");
      fill(req.initCredential(), {"row-unauth", "x@example.test"});
      return refused(req.send());
    };
    auto rm = s.removeRequest();
    rm.setAssociateId(alice);
    rm.setType("row-unauth");
    rm.setPublicValue("alice-unauth@example.test");
    EXPECT_TRUE(get(0));
    EXPECT_TRUE(get(alice));
    EXPECT_TRUE(save(0));
    EXPECT_TRUE(save(alice));
    EXPECT_TRUE(refused(rm.send()));
    EXPECT_TRUE(refused(s.adminRequest().send().getAdmin().listAssociatesRequest().send()));
    EXPECT_TRUE(refused(s.adminRequest().send().getAdmin().rotateDataKeyRequest().send()));
    EXPECT_EQ(errorOf(r.wait(ws)), "not-authenticated");
  }

  // On one connection: no session by peer credentials; a password opens one.
  auto conn = connect(NOBODY_UID);
  std::string out = errorOf(conn.sessionRequest().send().wait(ws));
  auto bad = conn.authenticatePasswordRequest();
  bad.setName("dave");
  bad.setPassword("wrong-password-123");
  out += " / " + errorOf(bad.send().wait(ws));
  auto unknown = conn.authenticatePasswordRequest();
  unknown.setName("nobody-by-that-name");
  unknown.setPassword(DAVE_PW.c_str());
  out += " / " + errorOf(unknown.send().wait(ws));
  auto good = conn.authenticatePasswordRequest();
  good.setName("DAVE");
  good.setPassword(DAVE_PW.c_str());
  auto resp = good.send().wait(ws);
  out += " / " + errorOf(resp);
  ASSERT_FALSE(resp.hasError()) << out;
  auto s = resp.getSession();
  out += std::string(" as ") + resp.getPrincipal().getName().cStr();
  out +=
      " / " + save(s, 0, {"row-unauth", "dave@example.test", std::string("dave-own-secret-3141")});
  remember("dave-own-secret-3141");
  out += " / " + get(s, 0, "row-unauth");
  out += " / " + get(s, alice, "row-unauth");
  // A partner application token is not known: no session.
  auto token = conn.authenticateTokenRequest();
  token.setToken("not-a-real-token-value");
  token.setAppToken("partner-app-token");
  out += " / " + errorOf(token.send().wait(ws));
  EXPECT_EQ(out,
            "not-authenticated / not-authenticated / not-authenticated / ok as dave / ok / "
            "dave@example.test=dave-own-secret-3141 / permission-denied / "
            "not-authenticated token");
  // Alice's entry is untouched.
  EXPECT_EQ(get(peerSession(ALICE_UID), 0, "row-unauth"),
            "alice-unauth@example.test=unauth-row-secret-77");
}

// A daemon in SuperOffice Online mode: application tokens are checked, and a partner
// application is refused every credential operation.
class OnlineRoles : public Roles {
 protected:
  OnlineRoles() : Roles(true) {}
};

TEST_F(OnlineRoles, PartnerAppIsDeniedEveryCredentialOperation) {
  constexpr uint32_t PA_UID = 1010;
  const std::string password = "partner-user-Pa55word";
  remember(password);
  int32_t user = addAssociate("pa-user", rpc::Kind::USER, PA_UID, password.c_str());
  int32_t other = addAssociate("pa-other", rpc::Kind::USER, -1, "");
  ASSERT_EQ(save(peerSession(0), user,
                 {"partner", "pa@example.test", std::string("partner-row-secret-1")}),
            "ok");
  remember("partner-row-secret-1");
  auto app = rootAdmin().addApplicationRequest();
  app.setName("partner-one");
  auto added = app.send().wait(ws);
  ASSERT_EQ(errorOf(added), "ok");
  std::string appToken = added.getToken().cStr();
  ASSERT_GE(appToken.size(), 16u);
  remember(appToken);

  auto conn = connect(0);
  auto authenticate = [&](kj::Maybe<std::string> token) {
    auto req = conn.authenticatePasswordRequest();
    req.setName("pa-user");
    req.setPassword(password.c_str());
    KJ_IF_MAYBE(t, token) { req.setAppToken(t->c_str()); }
    return req.send().wait(ws);
  };
  // Online mode: no token, or an unknown one, is not authenticated.
  EXPECT_EQ(errorOf(authenticate(nullptr)), "not-authenticated");
  EXPECT_EQ(errorOf(authenticate(std::string("not-a-known-application-token"))),
            "not-authenticated");
  // A known partner token: authenticated, but denied everything.
  auto resp = authenticate(appToken);
  ASSERT_EQ(errorOf(resp), "ok");
  EXPECT_TRUE(resp.getPrincipal().getPartnerApp());
  auto s = resp.getSession();
  const std::string message = "User management is not allowed for partner apps";
  auto g = s.getRequest();
  g.setType("partner");
  auto got = g.send().wait(ws);
  EXPECT_EQ(errorOf(got), "permission-denied");
  EXPECT_EQ(std::string(got.getError().getMessage().cStr()), message);
  EXPECT_EQ(get(s, user, "partner"), "permission-denied");
  EXPECT_EQ(get(s, other, "partner"), "permission-denied");
  EXPECT_EQ(save(s, 0, {"partner", "pa@example.test", std::string("partner-overwrite-1")}),
            "permission-denied");
  EXPECT_EQ(save(s, other, {"partner", "x@example.test", std::string("partner-overwrite-2")}),
            "permission-denied");
  EXPECT_EQ(remove(s, 0, "partner", "pa@example.test"), "permission-denied");
  EXPECT_EQ(remove(s, other, "partner", "x@example.test"), "permission-denied");
  EXPECT_EQ(errorOf(s.createDefaultRequest().send().wait(ws)), "permission-denied");
  EXPECT_EQ(errorOf(s.adminRequest().send().wait(ws)), "permission-denied");
  // The same associate by its own uid (not a partner app) keeps full access, unchanged.
  EXPECT_EQ(freshGet(PA_UID, "partner"), "pa@example.test=partner-row-secret-1");
}

// ---- tickets and uids -----------------------------------------------------------------------

TEST_F(Roles, TicketsActForTheirAssociate) {
  // An unmapped uid logs in by password and acts through the ticket.
  auto login = connect(NOBODY_UID).authenticatePasswordRequest();
  login.setName("dave");
  login.setPassword(DAVE_PW.c_str());
  login.setIssueTicket(true);
  auto r = login.send().wait(ws);
  ASSERT_EQ(errorOf(r), "ok");
  std::string ticket = r.getTicket().cStr();
  ASSERT_EQ(ticket.rfind("7T:", 0), 0u) << ticket;
  remember(ticket);
  // Each use on a fresh connection, as each credvaultctl run with CREDVAULT_TICKET makes:
  // "ok" and the session, or the error and a null one.
  struct Login {
    std::string outcome;
    rpc::Session::Client session = nullptr;
  };
  auto byTicket = [&](const std::string& t) {
    auto req = connect(NOBODY_UID).authenticateTicketRequest();
    req.setTicket(t.c_str());
    auto resp = req.send().wait(ws);
    Login out{errorOf(resp)};
    if (!resp.hasError()) out.session = resp.getSession();
    return out;
  };
  auto s = byTicket(ticket).session;
  auto who = s.whoamiRequest().send().wait(ws);
  EXPECT_EQ(std::string(who.getPrincipal().getName().cStr()), "dave");
  EXPECT_EQ(who.getPrincipal().getMethod(), rpc::AuthMethod::TICKET);
  EXPECT_EQ(save(byTicket(ticket).session, 0,
                 {"ticketed", "dave-ticket@example.test", std::string("ticket-saved-secret-1")}),
            "ok");
  remember("ticket-saved-secret-1");
  EXPECT_EQ(get(byTicket(ticket).session, 0, "ticketed"),
            "dave-ticket@example.test=ticket-saved-secret-1");
  // Dave's rights, not more.
  EXPECT_EQ(get(byTicket(ticket).session, alice, "ticketed"), "permission-denied");
  // A wrong password is refused; revoking the ticket ends it.
  auto wrong = connect(NOBODY_UID).authenticatePasswordRequest();
  wrong.setName("dave");
  wrong.setPassword("wrong-password");
  wrong.setIssueTicket(true);
  EXPECT_EQ(errorOf(wrong.send().wait(ws)), "not-authenticated");
  auto revoke = connect(NOBODY_UID).revokeTicketRequest();
  revoke.setTicket(ticket.c_str());
  auto revoked = revoke.send().wait(ws);
  EXPECT_EQ(errorOf(revoked), "ok");
  EXPECT_TRUE(revoked.getRevoked());
  EXPECT_EQ(byTicket(ticket).outcome, "not-authenticated ticket");
  EXPECT_EQ(get(s, 0, "ticketed"), "not-authenticated");
  EXPECT_EQ(byTicket("7T:bm90LWEtcmVhbC10aWNrZXQ=").outcome, "not-authenticated ticket");
}

TEST_F(Roles, RemappedOrDeactivatedUidLosesAccessAtOnce) {
  constexpr uint32_t FIRST = 1006, SECOND = 1007;
  int32_t temp = addAssociate("temp-user", rpc::Kind::USER, FIRST, "");
  ASSERT_EQ(save(peerSession(FIRST), 0, {"remap", "temp@example.test"}), "ok");
  // A session the uid holds re-checks the store on its next call, as a new one does.
  auto held = peerSession(FIRST);
  setAssociate(temp, [](auto u) { u.getActive().setSet(false); });
  EXPECT_EQ(freshGet(FIRST, "remap"), "not-authenticated");
  EXPECT_EQ(get(held, 0, "remap"), "not-authenticated");
  setAssociate(temp, [](auto u) {
    u.getActive().setSet(true);
    u.getUnixUid().setSet(SECOND);
  });
  EXPECT_EQ(freshGet(FIRST, "remap"), "not-authenticated");
  EXPECT_EQ(freshGet(SECOND, "remap").rfind("temp@example.test=", 0), 0u);
  auto rm = rootAdmin().removeAssociateRequest();
  rm.setAssociateId(temp);
  auto removed = rm.send().wait(ws);
  EXPECT_EQ(errorOf(removed), "ok");
  EXPECT_EQ(removed.getRemovedCredentials(), 1u);
  EXPECT_EQ(freshGet(SECOND, "remap"), "not-authenticated");
}

// ---- backups and audit hashes -----------------------------------------------------------------

// The daemon never writes a backup file itself (docs/operations.md): the caller streams it.
TEST_F(Roles, WithdrawnBackupToAPathIsRefusedAndCreatesNothing) {
  auto admin = rootAdmin();
  auto target = d.dir / "daemon-written.mdb";
  auto req = admin.backupRequest();
  req.setPath(target);
  auto resp = req.send().wait(ws);
  EXPECT_EQ(errorOf(resp), "permission-denied");
  EXPECT_NE(std::string(resp.getError().getMessage().cStr()).find("backupTo"), std::string::npos)
      << resp.getError().getMessage().cStr();
  EXPECT_NE(access(target.cStr(), F_OK), 0) << "the daemon created the file";
  // The same for a path that exists: no oracle either.
  req = admin.backupRequest();
  req.setPath(d.dir / "data.mdb");
  EXPECT_EQ(errorOf(req.send().wait(ws)), "permission-denied");
}

TEST_F(Roles, BackupToIsForSystemUsersOnly) {
  auto backupAs = [&](uint32_t uid) {
    auto admin = peerSession(uid).adminRequest().send().wait(ws);
    if (admin.hasError()) return "no admin: " + errorOf(admin);
    uint64_t bytes = 0;
    auto req = admin.getAdmin().backupToRequest();
    req.setSink(kj::heap<CountingSink>(bytes));
    auto resp = req.send().wait(ws);
    if (resp.hasError()) return errorOf(resp) + " " + std::to_string(bytes);
    return std::string(bytes > 0 && bytes == resp.getBytes() ? "ok all bytes" : "ok short");
  };
  // A user administrator gets an Admin capability, but not a backup.
  EXPECT_EQ(backupAs(ADMIN_UID), "permission-denied 0");
  // A system associate's uid, a configured system uid and root may.
#ifndef CREDVAULT_TEST_LOOP_GUARD
  const std::string allowed = "ok all bytes";
#else
  // The offload build's store is not LMDB: a file backup is refused (pg_dump instead).
  const std::string allowed = "invalid-argument 0";
#endif
  EXPECT_EQ(backupAs(SVC_UID), allowed);
  EXPECT_EQ(backupAs(SYSTEM_UID), allowed);
  EXPECT_EQ(backupAs(0), allowed);
}

TEST_F(Roles, AuditHashFindsAnEntrysRecordsAndIsForSystemUsersOnly) {
  const std::string pub = "audited-entry@example.test", secret = "audited-secret-55120";
  remember(pub), remember(secret);
  auto s = peerSession(ALICE_UID);
  ASSERT_EQ(save(s, 0, {"audited", pub, secret}), "ok");
  ASSERT_EQ(get(s, 0, "audited"), pub + "=" + secret);
  auto hashAs = [&](uint32_t uid) {
    auto admin = peerSession(uid).adminRequest().send().wait(ws);
    if (admin.hasError()) return errorOf(admin);
    auto req = admin.getAdmin().auditHashRequest();
    req.setValue(pub.c_str());
    auto r = req.send().wait(ws);
    return r.hasError() ? errorOf(r) : std::string(r.getHmac().cStr());
  };
  std::string hmac = hashAs(0);
  ASSERT_EQ(hmac.size(), 64u) << hmac;
  // The save names the entry by that hash (a get names a type, not an entry).
  auto trail = readFile(d.dir / "audit.jsonl");
  EXPECT_NE(trail.find("\"operation\":\"save\",\"result\":\"ok\",\"peer_uid\":" +
                       std::to_string(ALICE_UID)),
            std::string::npos)
      << trail.substr(0, 2000);
  EXPECT_NE(trail.find("\"public_value_hmac\":\"" + hmac + "\""), std::string::npos);
  EXPECT_EQ(trail.find(pub), std::string::npos);
  // Only system users may compute it (it would otherwise confirm guesses of others' values).
  EXPECT_EQ(hashAs(ALICE_UID), "permission-denied");
  EXPECT_EQ(hashAs(ADMIN_UID), "permission-denied");
  EXPECT_EQ(hashAs(SYSTEM_UID), hmac);
  EXPECT_EQ(hashAs(SVC_UID), hmac);
}

}  // namespace
}  // namespace credvault::daemon
