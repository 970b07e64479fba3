// Authentication in core: passwords (throttling, cache, rehash), tickets (expiry with the
// test's clock, revocation, password change, deactivation, removal), API tokens, partner
// application tokens in both modes, and nothing of it in clear in the LMDB file.

#include "core/auth.h"
#include "core/throttle.h"
#include "core/limits.h"
#include "crypto/aead.h"
#include "test-util.h"
#include "tests/support/vault-world.h"

#include <fstream>
#include <memory>
#include <iterator>
#include <string>

namespace credvault::core {
namespace {

using testing::FakeClock;
using testing::TempDir;

crypto::Secret pw(kj::StringPtr s) {
  return crypto::Secret::copyOf(s);
}

class AuthTest : public ::testing::Test {
 protected:
  support::VaultWorld world;
  TempDir& dir = world.dir;
  FakeClock& clock = world.clock;
  std::unique_ptr<Vault>& vault = world.vault;
  std::unique_ptr<Authenticator>& auth = world.auth;
  Principal& root = world.root;
  Associate alice;

  void open(bool online = false) {
    world.authOptions.onlineMode = online;
    world.authOptions.ticketLifetimeSeconds = 3600;
    world.open();
  }

  void SetUp() override {
    open();
    NewAssociate na;
    na.name = kj::str("Alice");
    na.password = pw("correct horse");
    alice = vault->runNow(vault->addAssociate(root, kj::mv(na))).value();
  }

  Result<Associate> login(kj::StringPtr name, kj::StringPtr password, kj::StringPtr client = "c1") {
    kj::Maybe<kj::String> rehash;
    auto p = pw(password);
    return auth->checkPassword(name, p, client, rehash);
  }

  Principal as(const Associate& a) {
    Principal p;
    p.associateId = a.id;
    p.name = kj::heapString(a.name);
    p.method = AuthMethod::PASSWORD;
    return p;
  }

  // Everything the store could leak (data.mdb, or PostgreSQL's rows and log).
  std::string file() { return world.where.everyStoredByte(); }
};

// The throttle's rules, with failures counted in this process (an LMDB vault) and in the
// store (a store shared by several hosts: core/throttle.h).
class ThrottleTest : public AuthTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    world.authOptions.failuresInStore = GetParam();
    AuthTest::SetUp();
  }
};
INSTANTIATE_TEST_SUITE_P(Books, ThrottleTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "InStore" : "InMemory"; });

TEST_F(AuthTest, PasswordLoginIgnoresNameCaseAndRefusesWrongPasswordsAlike) {
  EXPECT_EQ(login("alice", "correct horse").value().id, alice.id);
  auto wrong = testing::catchRefusal([&]() { return login("Alice", "wrong", "c2"); });
  auto unknown = testing::catchRefusal([&]() { return login("mallory", "wrong", "c3"); });
  ASSERT_TRUE(wrong.thrown && unknown.thrown);
  EXPECT_EQ(wrong.code, ErrorCode::NOT_AUTHENTICATED);
  EXPECT_EQ(unknown.code, ErrorCode::NOT_AUTHENTICATED);
  EXPECT_EQ(wrong.message, unknown.message);  // the answer does not tell names apart
}

TEST_F(AuthTest, MalformedLoginInputIsRefusedWithoutDamage) {
  EXPECT_VAULT_ERROR(login("", "x"), ErrorCode::NOT_AUTHENTICATED, "");
  EXPECT_VAULT_ERROR(login("a\xff", "x"), ErrorCode::NOT_AUTHENTICATED, "");
  EXPECT_VAULT_ERROR(login("alice", kj::str(kj::repeat('x', 2000))), ErrorCode::NOT_AUTHENTICATED,
                     "");
  EXPECT_EQ(login("alice", "correct horse").value().id, alice.id);
}

TEST_P(ThrottleTest, FailuresAreThrottledWithGrowingDelaysThatEnd) {
  for (int i = 0; i < 3; i++) {
    EXPECT_VAULT_ERROR(login("alice", "bad"), ErrorCode::NOT_AUTHENTICATED, "");
  }
  EXPECT_VAULT_ERROR(login("alice", "bad"), ErrorCode::NOT_AUTHENTICATED, "");
  // Now blocked: even the right password is refused until the delay passes.
  EXPECT_VAULT_ERROR(login("alice", "correct horse"), ErrorCode::THROTTLED, "");
  clock.advance(1500 * kj::MILLISECONDS);
  EXPECT_VAULT_ERROR(login("alice", "bad"), ErrorCode::NOT_AUTHENTICATED, "");
  clock.advance(1500 * kj::MILLISECONDS);
  EXPECT_VAULT_ERROR(login("alice", "correct horse"), ErrorCode::THROTTLED, "");  // 2 s now
  clock.advance(61 * kj::SECONDS);  // never longer than the cap
  EXPECT_EQ(login("alice", "correct horse").value().id, alice.id);
  // Success forgave the name: a single failure afterwards is not throttled.
  EXPECT_VAULT_ERROR(login("alice", "bad"), ErrorCode::NOT_AUTHENTICATED, "");
  EXPECT_EQ(login("alice", "correct horse").value().id, alice.id);
}

TEST_P(ThrottleTest, AnAttackersFailuresNeverLockTheOwnerOut) {
  // Someone guesses alice's password from their own address, far past every free attempt.
  for (int i = 0; i < 12; i++) {
    clock.advance(61 * kj::SECONDS);  // waiting out every delay: the worst case for us
    auto c = testing::catchRefusal([&]() { return login("alice", "guess", "evil"); });
    EXPECT_TRUE(c.thrown);
  }
  EXPECT_VAULT_ERROR(login("alice", "guess", "evil"), ErrorCode::THROTTLED, "");
  // Alice, from her own address, gets in at once.
  EXPECT_EQ(login("alice", "correct horse", "home").value().id, alice.id);
}

TEST_P(ThrottleTest, TheAccountBrakeStopsOnlyClientsThatFailedBefore) {
  // A distributed guesser: 30 addresses, one guess each (none reaches a per-client limit).
  for (int i = 0; i < 30; i++) {
    EXPECT_VAULT_ERROR(login("alice", "guess", kj::str("bot-", i)), ErrorCode::NOT_AUTHENTICATED,
                       "");
  }
  // The account is under attack now: an address that has failed gets no more hashes for it,
  // even with the right password (the guesser cannot tell a hit) ...
  EXPECT_VAULT_ERROR(login("alice", "correct horse", "bot-3"), ErrorCode::THROTTLED, "");
  EXPECT_VAULT_ERROR(login("alice", "guess-2", "bot-4"), ErrorCode::THROTTLED, "");
  // ... while a clean address — alice at home — is let through.
  EXPECT_EQ(login("alice", "correct horse", "home").value().id, alice.id);
  // And it ends: an hour later the brake is off.
  clock.advance(3601 * kj::SECONDS);
  EXPECT_EQ(login("alice", "correct horse", "bot-3").value().id, alice.id);
}

TEST_P(ThrottleTest, OneClientSprayingNamesIsThrottledPerClient) {
  for (int i = 0; i < 16; i++) {
    EXPECT_VAULT_ERROR(login(kj::str("user", i), "bad", "attacker"), ErrorCode::NOT_AUTHENTICATED,
                       "");
  }
  EXPECT_VAULT_ERROR(login("alice", "correct horse", "attacker"), ErrorCode::THROTTLED, "");
  EXPECT_EQ(login("alice", "correct horse", "someone-else").value().id, alice.id);
}

// Two daemons on one shared store (here: two authenticators on one vault) count the same
// failures: an attacker gains nothing by spreading guesses over hosts. The book holds no name
// or client address in clear, and entries idle for an hour are swept.
TEST_F(AuthTest, FailuresCountedInTheStoreAddUpAcrossHostsAndAreSwept) {
  world.authOptions.failuresInStore = true;
  world.open();
  Authenticator other(*vault, clock, world.authOptions);
  auto loginAt = [&](Authenticator& host, kj::StringPtr password) {
    kj::Maybe<kj::String> rehash;
    auto p = pw(password);
    return host.checkPassword("alice", p, "guesser-10.9.8.7", rehash);
  };
  // Two guesses on each host: four in all, past the three free ones.
  for (int i = 0; i < 2; i++) {
    EXPECT_VAULT_ERROR(loginAt(*auth, "bad"), ErrorCode::NOT_AUTHENTICATED, "");
    EXPECT_VAULT_ERROR(loginAt(other, "bad"), ErrorCode::NOT_AUTHENTICATED, "");
  }
  EXPECT_VAULT_ERROR(loginAt(*auth, "correct horse"), ErrorCode::THROTTLED, "");
  EXPECT_VAULT_ERROR(loginAt(other, "correct horse"), ErrorCode::THROTTLED, "");

  auto text = file();
  EXPECT_EQ(text.find("guesser-10.9.8.7"), std::string::npos);
  EXPECT_EQ(text.find("alice\nguesser"), std::string::npos);

  StoreThrottleBook book(*vault);
  int64_t now = (clock.now() - kj::UNIX_EPOCH) / kj::MILLISECONDS;
  EXPECT_EQ(book.sweep(now), 0u);                           // all fresh
  EXPECT_EQ(book.sweep(now + THROTTLE_MEMORY_MS + 1), 3u);  // (name, client), client, name
  clock.advance(2 * kj::SECONDS);
  EXPECT_EQ(loginAt(other, "correct horse").value().id, alice.id);
}

TEST(ThrottleRules, FreeAttemptsThenDoublingDelaysUpToTheCapForgottenAfterAnHour) {
  ThrottleState s;
  for (int i = 0; i < 3; i++) s = afterFailure(s, 3, 60'000, 1000);
  EXPECT_EQ(s.failures, 3u);
  EXPECT_EQ(s.blockedUntilMs, 0);
  s = afterFailure(s, 3, 60'000, 1000);
  EXPECT_EQ(s.blockedUntilMs, 2000);  // 1 s
  s = afterFailure(s, 3, 60'000, 1000);
  EXPECT_EQ(s.blockedUntilMs, 3000);  // 2 s
  for (int i = 0; i < 30; i++) s = afterFailure(s, 3, 60'000, 1000);
  EXPECT_EQ(s.blockedUntilMs, 61'000);  // never past the cap
  s = afterFailure(s, 3, 60'000, 1000 + THROTTLE_MEMORY_MS + 1);
  EXPECT_EQ(s.failures, 1u);  // an hour later the count starts again
}

// Both books answer an entry idle for an hour as none, and their sweep deletes it.
TEST_P(ThrottleTest, AnEntryIdleForAnHourIsNoneAndIsSwept) {
  for (int i = 0; i < 2; i++) {
    EXPECT_VAULT_ERROR(login("alice", "bad", "idle-client"), ErrorCode::NOT_AUTHENTICATED, "");
  }
  EXPECT_EQ(auth->sweepFailures(), 0u);
  clock.advance(3601 * kj::SECONDS);
  EXPECT_EQ(auth->sweepFailures(), 3u);  // (name, client), client, name
  EXPECT_EQ(auth->sweepFailures(), 0u);
  EXPECT_EQ(auth->failuresInStore(), GetParam());
}

TEST_F(AuthTest, CachedVerificationEndsWithThePassword) {
  EXPECT_EQ(login("alice", "correct horse").value().id, alice.id);
  EXPECT_EQ(login("alice", "correct horse").value().id, alice.id);  // cache hit
  vault->runNow(vault->setPassword(root, alice.id, pw("new password"))).value();
  EXPECT_VAULT_ERROR(login("alice", "correct horse"), ErrorCode::NOT_AUTHENTICATED, "");
  EXPECT_EQ(login("alice", "new password").value().id, alice.id);
}

TEST_F(AuthTest, LoginRehashesWhenParametersChange) {
  // Store a hash made with other (stronger) parameters, then log in.
  crypto::PasswordParams other = crypto::minimalPasswordParams();
  other.opsLimit += 1;
  auto hash = crypto::hashPassword(pw("correct horse"), other);
  vault->runNow(vault->replacePasswordHash(alice.id, kj::mv(hash), alice.credentialEpoch));
  kj::Maybe<kj::String> rehash;
  auto p = pw("correct horse");
  auto a = auth->checkPassword("alice", p, "c", rehash).value();
  KJ_IF_MAYBE(h, rehash) {
    EXPECT_TRUE(vault->runNow(auth->storeRehash(a.id, kj::mv(*h), a.credentialEpoch)));
  } else {
    ADD_FAILURE() << "no rehash offered";
  }
  auto stored = KJ_ASSERT_NONNULL(vault->findAssociate(alice.id));
  EXPECT_FALSE(crypto::passwordNeedsRehash(stored.passwordHash, vault->passwordParams()));
  EXPECT_EQ(stored.credentialEpoch, alice.credentialEpoch);  // tickets live on
}

TEST_F(AuthTest, TicketsLookRightValidateAndExpire) {
  auto t = vault->runNow(auth->issueTicket(alice));
  EXPECT_TRUE(t.ticket.startsWith("7T:"));
  EXPECT_GE(t.ticket.size(), 3u + 44u);  // base64 of 32 bytes
  auto info = KJ_ASSERT_NONNULL(auth->validateTicket(t.ticket));
  EXPECT_EQ(info.id, alice.id);
  clock.advance(3599 * kj::SECONDS);
  EXPECT_TRUE(auth->validateTicket(t.ticket) != nullptr);
  clock.advance(2 * kj::SECONDS);
  EXPECT_TRUE(auth->validateTicket(t.ticket) == nullptr);
}

TEST_F(AuthTest, MalformedTicketsAreUnknownTickets) {
  for (auto bad : {"", "7T:", "7T:nope", "XX:abcd", "7T:\xff\xfe"}) {
    EXPECT_TRUE(auth->validateTicket(bad) == nullptr) << bad;
  }
  EXPECT_TRUE(auth->validateTicket(kj::str("7T:", kj::repeat('A', 5000))) == nullptr);
}

TEST_F(AuthTest, TicketAndTokenLengthsAtTheSharedLimitAndOnePast) {
  // base/field-limits.h: the gateway refuses the same lengths (tests/frontends/soap-test.c++).
  // At the limit a well-formed value is looked up; one past it is unknown without a lookup.
  auto sized = [](kj::StringPtr prefix, size_t size) {
    return kj::str(prefix, kj::repeat('A', size - prefix.size()));
  };
  EXPECT_TRUE(auth->ticketKey(sized("7T:", MAX_TICKET_BYTES)) != nullptr);
  EXPECT_TRUE(auth->ticketKey(sized("7T:", MAX_TICKET_BYTES + 1)) == nullptr);
  EXPECT_TRUE(auth->tokenKey(sized("cvt_", MAX_TOKEN_BYTES)) != nullptr);
  EXPECT_TRUE(auth->tokenKey(sized("cvt_", MAX_TOKEN_BYTES + 1)) == nullptr);
  // A name of MAX_NAME_BYTES is checked like any wrong login; one byte more is refused before.
  EXPECT_VAULT_ERROR(login(kj::str(kj::repeat('n', MAX_NAME_BYTES)), "x"),
                     ErrorCode::NOT_AUTHENTICATED, "");
  EXPECT_VAULT_ERROR(login(kj::str(kj::repeat('n', MAX_NAME_BYTES + 1)), "x"),
                     ErrorCode::NOT_AUTHENTICATED, "");
}

TEST_F(AuthTest, TicketsSurviveRestartAndDieOnRevocationPasswordDeactivationRemoval) {
  auto t1 = vault->runNow(auth->issueTicket(alice)).ticket;
  auto t2 = vault->runNow(auth->issueTicket(alice)).ticket;
  open();
  EXPECT_TRUE(auth->validateTicket(t1) != nullptr);
  EXPECT_TRUE(vault->runNow(auth->revokeTicket(t1)));
  EXPECT_TRUE(auth->validateTicket(t1) == nullptr);
  EXPECT_TRUE(auth->validateTicket(t2) != nullptr);  // one by one

  vault->runNow(vault->setPassword(root, alice.id, pw("changed"))).value();
  EXPECT_TRUE(auth->validateTicket(t2) == nullptr);

  alice = KJ_ASSERT_NONNULL(vault->findAssociate(alice.id));
  auto t3 = vault->runNow(auth->issueTicket(alice)).ticket;
  AssociateUpdate off;
  off.active = false;
  vault->runNow(vault->setAssociate(root, alice.id, kj::mv(off))).value();
  EXPECT_TRUE(auth->validateTicket(t3) == nullptr);
  AssociateUpdate on;
  on.active = true;
  vault->runNow(vault->setAssociate(root, alice.id, kj::mv(on))).value();
  EXPECT_TRUE(auth->validateTicket(t3) == nullptr);  // reactivation does not revive it

  alice = KJ_ASSERT_NONNULL(vault->findAssociate(alice.id));
  auto t4 = vault->runNow(auth->issueTicket(alice)).ticket;
  vault->runNow(vault->removeAssociate(root, alice.id)).value();
  EXPECT_TRUE(auth->validateTicket(t4) == nullptr);
}

TEST_F(AuthTest, ApiTokensAreShownOnceListedWithoutValueAndRevocable) {
  auto me = as(alice);
  auto issued = vault->runNow(auth->createToken(me, 0, "ci", 0)).value();
  EXPECT_TRUE(issued.token.startsWith("cvt_"));
  auto info = KJ_ASSERT_NONNULL(auth->validateToken(issued.token));
  EXPECT_EQ(info.associateId, alice.id);
  auto list = auth->listTokens(me, 0).value();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name, "ci");
  EXPECT_VAULT_ERROR(vault->runNow(auth->createToken(me, 0, "ci", 0)), ErrorCode::CONFLICT, "name");
  EXPECT_VAULT_ERROR(auth->createToken(me, 0, "", 0), ErrorCode::INVALID_ARGUMENT, "name");
  EXPECT_VAULT_ERROR(auth->createToken(me, 0, "old", 1), ErrorCode::INVALID_ARGUMENT, "expires");

  // Another user may not manage Alice's tokens.
  NewAssociate nb;
  nb.name = kj::str("bob");
  auto bob = vault->runNow(vault->addAssociate(root, kj::mv(nb))).value();
  EXPECT_VAULT_ERROR(auth->listTokens(as(bob), alice.id), ErrorCode::PERMISSION_DENIED, "");

  EXPECT_TRUE(vault->runNow(auth->revokeToken(me, 0, "ci")).value());
  EXPECT_TRUE(auth->validateToken(issued.token) == nullptr);
  EXPECT_FALSE(vault->runNow(auth->revokeToken(me, 0, "ci")).value());
}

TEST_F(AuthTest, ApiTokensExpire) {
  int64_t now = (clock.now() - kj::UNIX_EPOCH) / kj::SECONDS;
  auto issued = vault->runNow(auth->createToken(as(alice), 0, "short", now + 60)).value();
  EXPECT_TRUE(auth->validateToken(issued.token) != nullptr);
  clock.advance(61 * kj::SECONDS);
  EXPECT_TRUE(auth->validateToken(issued.token) == nullptr);
}

TEST_F(AuthTest, OnsiteIgnoresApplicationTokens) {
  EXPECT_FALSE(auth->checkApplication(nullptr).value());
  EXPECT_FALSE(auth->checkApplication(kj::StringPtr("whatever")).value());
}

TEST_F(AuthTest, OnlineNeedsAKnownApplicationTokenAndMarksPartnerApps) {
  auto app = vault->runNow(auth->addApplication(root, "crm-sync")).value();
  open(true);
  EXPECT_VAULT_ERROR(auth->checkApplication(nullptr), ErrorCode::NOT_AUTHENTICATED, "");
  EXPECT_VAULT_ERROR(auth->checkApplication(kj::StringPtr("cva_unknown")),
                     ErrorCode::NOT_AUTHENTICATED, "");
  EXPECT_TRUE(auth->checkApplication(kj::StringPtr(app.token)).value());

  auto partner = as(alice);
  partner.partnerApp = true;
  auto c = testing::catchRefusal([&]() { return vault->get(partner, 0, "imap"); });
  ASSERT_TRUE(c.thrown);
  EXPECT_EQ(c.code, ErrorCode::PERMISSION_DENIED);
  EXPECT_EQ(c.message, "User management is not allowed for partner apps");

  EXPECT_TRUE(vault->runNow(auth->removeApplication(root, "crm-sync")).value());
  EXPECT_VAULT_ERROR(auth->checkApplication(kj::StringPtr(app.token)), ErrorCode::NOT_AUTHENTICATED,
                     "");
}

TEST_F(AuthTest, OnlySystemUsersRegisterApplications) {
  EXPECT_VAULT_ERROR(auth->addApplication(as(alice), "x"), ErrorCode::PERMISSION_DENIED, "");
  EXPECT_VAULT_ERROR(auth->listApplications(as(alice)), ErrorCode::PERMISSION_DENIED, "");
}

TEST_F(AuthTest, NoTicketTokenOrPasswordInTheFile) {
  auto ticket = vault->runNow(auth->issueTicket(alice)).ticket;
  auto token = vault->runNow(auth->createToken(as(alice), 0, "ci", 0)).value().token;
  auto app = vault->runNow(auth->addApplication(root, "crm-sync")).value().token;
  world.close();
  auto bytes = file();
  ASSERT_GT(bytes.size(), 0u);
  for (auto needle :
       {ticket.cStr(), ticket.cStr() + 3, token.cStr(), app.cStr(), "correct horse", "crm-sync"}) {
    EXPECT_EQ(bytes.find(needle), std::string::npos) << needle;
  }
}

}  // namespace
}  // namespace credvault::core
