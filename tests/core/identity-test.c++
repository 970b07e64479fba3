// Identity and policy in core, without a daemon or root: every cell of DESIGN.md §3's
// table for every authentication method, each principal obtained through Identity as the
// daemon obtains it; and the re-check that ends a grant the moment it no longer holds.

#include "core/identity.h"
#include "crypto/aead.h"
#include "test-util.h"
#include "tests/support/vault-world.h"

#include <memory>
#include <string>

namespace credvault::core {
namespace {

using testing::FakeClock;
using testing::TempDir;

crypto::Secret pw(kj::StringPtr s) {
  return crypto::Secret::copyOf(s);
}

// The outcome of authorize() as text: "full", "manage", or the error code's name.
std::string decide(const Principal& who, Operation op, int32_t target) {
  auto decision = authorize(who, op, target);
  KJ_IF_MAYBE(r, decision.refused()) { return ::credvault::core::testing::codeName(r->code); }
  switch (decision.value()) {
    case Access::FULL:
      return "full";
    case Access::MANAGE:
      return "manage";
    case Access::NONE:
      return "none";
  }
  return "?";
}

class IdentityTest : public ::testing::TestWithParam<AuthMethod> {
 protected:
  support::VaultWorld world;
  FakeClock& clock = world.clock;
  std::unique_ptr<Vault>& vault = world.vault;
  std::unique_ptr<Authenticator>& auth = world.auth;
  std::unique_ptr<Identity>& identity = world.identity;
  support::StoreHandle& env = world.env;
  Principal& root = world.root;
  Associate user, userAdmin, system, other;
  kj::String appToken;

  static constexpr uint32_t USER_UID = 1001, ADMIN_UID = 1002, SYSTEM_UID = 1003;
  static constexpr uint32_t OTHER_UID = 1004, STRANGER_UID = 5000;

  void open(bool online) {
    world.authOptions.onlineMode = online;
    world.authOptions.ticketLifetimeSeconds = 3600;
    world.open();
  }

  Associate add(kj::StringPtr name, Kind kind, bool admin, uint32_t uid) {
    NewAssociate na;
    na.name = kj::heapString(name);
    na.kind = kind;
    na.userAdmin = admin;
    na.unixUid = uid;
    na.password = pw(kj::str(name, "-Pw-1"));
    return vault->runNow(vault->addAssociate(root, kj::mv(na))).value();
  }

  void SetUp() override {
    open(false);
    user = add("user", Kind::USER, false, USER_UID);
    userAdmin = add("useradmin", Kind::USER, true, ADMIN_UID);
    system = add("system", Kind::SYSTEM, false, SYSTEM_UID);
    other = add("other", Kind::USER, false, OTHER_UID);
    auto issued = vault->runNow(auth->addApplication(root, "partner")).value();
    appToken = kj::mv(issued.token);
  }

  void TearDown() override { world.close(); }

  // Opens a standing for `a` by `method`, as the daemon would (from a stranger's uid for
  // the bearer methods, from the associate's own uid for peer credentials).
  Standing openAs(const Associate& a, AuthMethod method, bool partner = false) {
    kj::Maybe<kj::Array<kj::byte>> appKey;
    if (partner) appKey = auth->checkApplicationKey(kj::StringPtr(appToken)).value();
    switch (method) {
      case AuthMethod::PEER_CREDENTIALS:
        return identity->byPeer({KJ_ASSERT_NONNULL(a.unixUid), 77}).value();
      case AuthMethod::PASSWORD: {
        kj::Maybe<kj::String> rehash;
        auto verified =
            auth->checkPassword(a.name, pw(kj::str(a.name, "-Pw-1")), "c", rehash).value();
        return identity->byPassword({STRANGER_UID, 77}, verified, kj::mv(appKey)).value();
      }
      case AuthMethod::TICKET: {
        auto t = vault->runNow(auth->issueTicket(a));
        return identity->byTicket({STRANGER_UID, 77}, t.ticket, kj::mv(appKey)).value();
      }
      case AuthMethod::API_TOKEN: {
        auto t = vault->runNow(auth->createToken(root, a.id, kj::str("t", a.id), 0)).value();
        return identity->byToken({STRANGER_UID, 77}, t.token, kj::mv(appKey)).value();
      }
      case AuthMethod::NONE:
        break;
    }
    KJ_FAIL_ASSERT("no such method");
  }

  // The four columns of the table for one caller: own credentials, another's list,
  // another's SecretValue, save/remove for another.
  std::string row(const Principal& who) {
    auto own = decide(who, Operation::GET, who.associateId);
    auto list = decide(who, Operation::GET, other.id);
    auto secret = list == "full" ? "yes" : "never";
    auto change = decide(who, Operation::SAVE, other.id);
    auto removeOwn = decide(who, Operation::REMOVE, who.associateId);
    return own + "/" + removeOwn + " | " + list + " | " + secret + " | " + change;
  }
};

TEST_P(IdentityTest, ThePermissionTableHoldsForEveryMethod) {
  auto method = GetParam();
  // user: full on own; denied on another's list; never another's secret; denied changes.
  auto u = openAs(user, method);
  EXPECT_EQ(u.principal.method, method);
  EXPECT_EQ(row(u.principal), "full/full | permission-denied | never | permission-denied");
  // userAdmin: another's list with SecretValue blank (manage), may save, never read.
  auto ua = openAs(userAdmin, method);
  EXPECT_EQ(row(ua.principal), "full/full | manage | never | manage");
  // system: everything.
  auto s = openAs(system, method);
  EXPECT_EQ(row(s.principal), "full/full | full | yes | full");
  // Administration: system yes, userAdmin lists only, user nothing.
  EXPECT_EQ(decide(s.principal, Operation::CHANGE_ASSOCIATES, 0), "full");
  EXPECT_EQ(decide(s.principal, Operation::MAINTAIN, 0), "full");
  EXPECT_EQ(decide(ua.principal, Operation::ADMIN, 0), "full");
  EXPECT_EQ(decide(ua.principal, Operation::LIST_ASSOCIATES, 0), "full");
  EXPECT_EQ(decide(ua.principal, Operation::CHANGE_ASSOCIATES, 0), "permission-denied");
  EXPECT_EQ(decide(ua.principal, Operation::MAINTAIN, 0), "permission-denied");
  EXPECT_EQ(decide(u.principal, Operation::ADMIN, 0), "permission-denied");
  EXPECT_EQ(decide(u.principal, Operation::LIST_ASSOCIATES, 0), "permission-denied");
  // Tokens and passwords: one's own, or a system user's.
  EXPECT_EQ(decide(u.principal, Operation::MANAGE_TOKENS, user.id), "full");
  EXPECT_EQ(decide(u.principal, Operation::MANAGE_TOKENS, other.id), "permission-denied");
  EXPECT_EQ(decide(ua.principal, Operation::MANAGE_TOKENS, other.id), "permission-denied");
  EXPECT_EQ(decide(s.principal, Operation::MANAGE_TOKENS, other.id), "full");
  EXPECT_EQ(decide(u.principal, Operation::SET_PASSWORD, user.id), "full");
  EXPECT_EQ(decide(u.principal, Operation::SET_PASSWORD, other.id), "permission-denied");
}

TEST_P(IdentityTest, PartnerAppsAreDeniedEverything) {
  auto method = GetParam();
  if (method == AuthMethod::PEER_CREDENTIALS) return;  // peers carry no application token
  open(true);
  for (auto* a : {&user, &userAdmin, &system}) {
    auto p = openAs(*a, method, true);
    EXPECT_TRUE(p.principal.partnerApp);
    EXPECT_EQ(row(p.principal),
              "permission-denied/permission-denied | permission-denied | never | "
              "permission-denied");
    EXPECT_EQ(decide(p.principal, Operation::ADMIN, 0), "permission-denied");
    EXPECT_EQ(decide(p.principal, Operation::CREATE_DEFAULT, 0), "permission-denied");
    EXPECT_EQ(decide(p.principal, Operation::MANAGE_TOKENS, a->id), "permission-denied");
  }
}

TEST_P(IdentityTest, ADemotionTakesEffectOnTheNextCheck) {
  auto s = openAs(system, GetParam());
  EXPECT_EQ(decide(identity->current(s).value(), Operation::CHANGE_ASSOCIATES, 0), "full");
  AssociateUpdate demote;
  demote.kind = Kind::USER;
  vault->runNow(vault->setAssociate(root, system.id, kj::mv(demote))).value();
  EXPECT_EQ(decide(identity->current(s).value(), Operation::CHANGE_ASSOCIATES, 0),
            "permission-denied");
  EXPECT_EQ(decide(identity->current(s).value(), Operation::GET, other.id), "permission-denied");
}

TEST_P(IdentityTest, DeactivationAndRemovalEndEveryGrant) {
  auto s = openAs(user, GetParam());
  EXPECT_ACCEPTED(identity->current(s));
  AssociateUpdate off;
  off.active = false;
  vault->runNow(vault->setAssociate(root, user.id, kj::mv(off))).value();
  EXPECT_VAULT_ERROR(identity->current(s), ErrorCode::NOT_AUTHENTICATED, "");
  auto o = openAs(other, GetParam());
  vault->runNow(auth->removeAssociate(root, other.id)).value();
  EXPECT_VAULT_ERROR(identity->current(o), ErrorCode::NOT_AUTHENTICATED, "");
}

INSTANTIATE_TEST_SUITE_P(EveryMethod, IdentityTest,
                         ::testing::Values(AuthMethod::PEER_CREDENTIALS, AuthMethod::PASSWORD,
                                           AuthMethod::TICKET, AuthMethod::API_TOKEN),
                         [](const auto& info) -> std::string {
                           switch (info.param) {
                             case AuthMethod::PEER_CREDENTIALS:
                               return "Peer";
                             case AuthMethod::PASSWORD:
                               return "Password";
                             case AuthMethod::TICKET:
                               return "Ticket";
                             case AuthMethod::API_TOKEN:
                               return "Token";
                             default:
                               return "None";
                           }
                         });

// ---- Beyond the table ----------------------------------------------------------------------

class IdentityRules : public IdentityTest {};

TEST_F(IdentityRules, NoOneIsDeniedEverything) {
  Principal nobody;
  EXPECT_EQ(decide(nobody, Operation::GET, 0), "not-authenticated");
  EXPECT_EQ(decide(nobody, Operation::OPEN_SESSION, 0), "not-authenticated");
  EXPECT_EQ(decide(nobody, Operation::WHOAMI, 0), "full");
  EXPECT_VAULT_ERROR(identity->byPeer({STRANGER_UID, 1}), ErrorCode::NOT_AUTHENTICATED, "");
  EXPECT_EQ(identity->peerPrincipal({STRANGER_UID, 1}).method, AuthMethod::NONE);
  Standing none{Grant()};
  EXPECT_VAULT_ERROR(identity->current(none), ErrorCode::NOT_AUTHENTICATED, "");
}

TEST_F(IdentityRules, UidZeroIsASystemUserWithoutAnAssociate) {
  auto r = identity->byPeer({0, 1}).value();
  EXPECT_TRUE(r.principal.isSystem());
  EXPECT_EQ(r.principal.associateId, 0);
  EXPECT_EQ(decide(r.principal, Operation::GET, other.id), "full");
  EXPECT_EQ(decide(r.principal, Operation::MAINTAIN, 0), "full");
}

TEST_F(IdentityRules, ExpiredTicketsAndTokensEndTheirSessionsWithoutAnyWrite) {
  auto t = vault->runNow(auth->issueTicket(user));
  auto s = identity->byTicket({STRANGER_UID, 1}, t.ticket, nullptr).value();
  auto tok = vault
                 ->runNow(auth->createToken(root, user.id, "short",
                                            (clock.now() - kj::UNIX_EPOCH) / kj::SECONDS + 60))
                 .value();
  auto k = identity->byToken({STRANGER_UID, 1}, tok.token, nullptr).value();
  EXPECT_ACCEPTED(identity->current(s));
  EXPECT_ACCEPTED(identity->current(k));
  clock.advance(61 * kj::SECONDS);
  EXPECT_VAULT_ERROR(identity->current(k), ErrorCode::NOT_AUTHENTICATED, "");
  EXPECT_ACCEPTED(identity->current(s));
  clock.advance(3600 * kj::SECONDS);
  EXPECT_VAULT_ERROR(identity->current(s), ErrorCode::NOT_AUTHENTICATED, "");
}

TEST_F(IdentityRules, APasswordChangeEndsPasswordAndTicketGrantsButNotTokens) {
  auto p = openAs(user, AuthMethod::PASSWORD);
  auto t = openAs(user, AuthMethod::TICKET);
  auto k = openAs(user, AuthMethod::API_TOKEN);
  auto peer = openAs(user, AuthMethod::PEER_CREDENTIALS);
  vault->runNow(vault->setPassword(root, user.id, pw("user-Pw-2"))).value();
  EXPECT_VAULT_ERROR(identity->current(p), ErrorCode::NOT_AUTHENTICATED, "");
  EXPECT_VAULT_ERROR(identity->current(t), ErrorCode::NOT_AUTHENTICATED, "");
  // An API token is a credential of its own (revoked on its own), as is the uid mapping.
  EXPECT_EQ(identity->current(k).value().associateId, user.id);
  EXPECT_EQ(identity->current(peer).value().associateId, user.id);
}

TEST_F(IdentityRules, RemovingAnApplicationEndsItsPartnerSessions) {
  open(true);
  auto s = openAs(user, AuthMethod::PASSWORD, true);
  EXPECT_ACCEPTED(identity->current(s));
  vault->runNow(auth->removeApplication(root, "partner")).value();
  EXPECT_VAULT_ERROR(identity->current(s), ErrorCode::NOT_AUTHENTICATED, "");
}

TEST_F(IdentityRules, TheCacheIsUsedOnlyWhileNothingChanged) {
  auto s = openAs(user, AuthMethod::TICKET);
  auto before = env->generation();
  EXPECT_ACCEPTED(identity->current(s));
  EXPECT_EQ(s.generation, before);
  // A credential save does not move the generation; an associate change does.
  Credential c;
  c.publicValue = kj::str("x");
  c.secretValue = pw("s");
  vault->runNow(vault->save(s.principal, 0, "imap", kj::mv(c))).value();
  EXPECT_EQ(env->generation(), before);
  AssociateUpdate rename;
  rename.name = kj::str("renamed");
  vault->runNow(vault->setAssociate(root, other.id, kj::mv(rename))).value();
  EXPECT_GT(env->generation(), before);
  EXPECT_EQ(identity->current(s).value().name, "user");
  EXPECT_EQ(s.generation, env->generation());
}

}  // namespace
}  // namespace credvault::core

namespace credvault::core {
namespace {

// Health is open to anyone; the daemon's figures only to system users and front ends.
TEST(Policy, HealthForAnyoneMetricsForSystemUsersAndFrontEnds) {
  Principal nobody;  // method NONE: a uid mapped to no one
  EXPECT_EQ(decide(nobody, Operation::HEALTH, 0), "full");
  EXPECT_EQ(decide(nobody, Operation::METRICS, 0), "not-authenticated");

  Principal frontEnd;  // the gateway's uid: no associate, but a configured front end
  frontEnd.frontEnd = true;
  EXPECT_EQ(decide(frontEnd, Operation::METRICS, 0), "full");
  EXPECT_EQ(decide(frontEnd, Operation::GET, 7), "not-authenticated");  // nothing more

  Principal user;
  user.method = AuthMethod::PEER_CREDENTIALS;
  user.associateId = 7;
  EXPECT_EQ(decide(user, Operation::METRICS, 0), "permission-denied");
  user.userAdmin = true;
  EXPECT_EQ(decide(user, Operation::METRICS, 0), "permission-denied");

  Principal system;
  system.method = AuthMethod::PASSWORD;
  system.kind = Kind::SYSTEM;
  EXPECT_EQ(decide(system, Operation::METRICS, 0), "full");
  system.partnerApp = true;
  EXPECT_EQ(decide(system, Operation::METRICS, 0), "permission-denied");
}

}  // namespace
}  // namespace credvault::core
