// Tests for core/vault.h on a real LMDB environment in a temporary directory: the
// permission table of DESIGN.md §3, upsert by (associate, type, public value), keeping the
// stored secret, every limit at the bound and one past it, bad input changing nothing,
// tampered and moved records, a wrong master key, restart persistence, data key rotation,
// associate administration, and the database file holding no plaintext.

#include "core/vault.h"
#include "core/validate.h"
#include "core/codec.h"
#include "core/limits.h"
#include "crypto/password.h"
#include "test-util.h"
#include "tests/support/vault-world.h"

#include <kj/exception.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace credvault::core {
namespace {

using testing::FakeClock;
using testing::TempDir;

std::string repeat(const std::string& unit, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; i++) out += unit;
  return out;
}

kj::String ks(const std::string& s) {
  return kj::heapString(s.data(), s.size());
}

std::string text(kj::ArrayPtr<const char> s) {
  return std::string(s.begin(), s.size());
}

Credential cred(const std::string& pub, kj::Maybe<std::string> secret,
                const std::string& comment = "") {
  Credential c;
  c.publicValue = ks(pub);
  c.comment = ks(comment);
  KJ_IF_MAYBE(s, secret) {
    c.secretValue = crypto::Secret::copyOf(kj::arrayPtr(s->data(), s->size()).asBytes());
  }
  return c;
}

kj::Maybe<std::string> none() {
  return nullptr;
}
kj::Maybe<std::string> some(const std::string& s) {
  return s;
}

// "<withheld>" when the vault returned no SecretValue.
std::string secretOf(const Credential& c) {
  KJ_IF_MAYBE(s, c.secretValue) { return text(s->revealChars()); }
  return "<withheld>";
}

Principal principalOf(const Associate& a) {
  return support::principalOf(a, AuthMethod::PEER_CREDENTIALS);
}

// uid 0 without an associate: a system user with no credentials of its own.
constexpr auto root = &support::rootPrincipal;

using support::readFile;  // everything a vault file could leak, for the plaintext scan

class VaultTest : public ::testing::Test {
 protected:
  TempDir dir;
  FakeClock clock;
  // std::unique_ptr: the fixture's destructor must stay noexcept (kj::Own's is not).
  std::unique_ptr<crypto::Secret> masterKeyHolder =
      std::make_unique<crypto::Secret>(crypto::Secret::random(32));
  const crypto::Secret& masterKey = *masterKeyHolder;
  support::TestStore where{dir.path()};  // LMDB here, or PostgreSQL (CREDVAULT_TEST_STORE)
  support::StoreHandle env;
  std::unique_ptr<Vault> vault;

  void SetUp() override { open(); }
  void TearDown() override { close(); }

  void open() { open(masterKey); }
  void open(const crypto::Secret& key) {
    env = where.open();
    VaultOptions options;
    options.passwordParams = crypto::minimalPasswordParams();
    vault = std::make_unique<Vault>(*env, crypto::Secret::copyOf(key.reveal()), clock, options);
  }
  void close() {
    vault = nullptr;
    env = nullptr;
  }
  void reopen() {
    close();
    open();
  }

  Result<Associate> tryAdd(const std::string& name, Kind kind = Kind::USER, bool userAdmin = false,
                           kj::Maybe<uint32_t> uid = nullptr,
                           kj::Maybe<std::string> password = nullptr) {
    NewAssociate na;
    na.name = ks(name);
    na.kind = kind;
    na.userAdmin = userAdmin;
    na.unixUid = uid;
    KJ_IF_MAYBE(pw, password) { na.password = crypto::Secret::copyOf(kj::StringPtr(pw->c_str())); }
    return vault->runNow(vault->addAssociate(root(), kj::mv(na)));
  }
  // The same where the test expects it to be accepted.
  Associate add(const std::string& name, Kind kind = Kind::USER, bool userAdmin = false,
                kj::Maybe<uint32_t> uid = nullptr, kj::Maybe<std::string> password = nullptr) {
    return tryAdd(name, kind, userAdmin, uid, kj::mv(password)).value();
  }

  Result<bool> save(const Principal& who, int32_t target, const std::string& type, Credential c) {
    return vault->runNow(vault->save(who, target, type.c_str(), kj::mv(c)));
  }
  Result<bool> remove(const Principal& who, int32_t target, const std::string& type,
                      const std::string& pub) {
    return vault->runNow(vault->remove(who, target, type.c_str(), pub.c_str()));
  }
  Result<kj::Array<Credential>> get(const Principal& who, int32_t target, const std::string& type) {
    return vault->get(who, target, type.c_str());
  }

  // A printable summary of everything an associate has under a type (system view).
  std::string dump(int32_t id, const std::string& type) {
    std::string out;
    for (auto& c : get(root(), id, type).value()) {
      out += text(c.publicValue) + "|" + secretOf(c) + "|" + text(c.comment) + "|" +
             std::to_string(c.validFrom) + "|" + std::to_string(c.validTo) + "|" +
             (c.isActive ? "1" : "0") + "\n";
    }
    return out;
  }

  store::Table rawTable(const char* name) { return env->table(name); }

  // The raw (key, value) rows of the credentials table whose key starts with the
  // associate's id.
  std::vector<std::pair<std::vector<kj::byte>, std::vector<kj::byte>>> rawCredentials(int32_t id) {
    auto table = rawTable("credentials");
    kj::byte prefix[4];
    store::putBe32(prefix, id);
    std::vector<std::pair<std::vector<kj::byte>, std::vector<kj::byte>>> out;
    auto txn = env->read();
    txn.scan(table, prefix, [&](auto key, auto value) {
      out.push_back({std::vector<kj::byte>(key.begin(), key.end()),
                     std::vector<kj::byte>(value.begin(), value.end())});
      return true;
    });
    return out;
  }

  void rawPut(const char* tableName, const std::vector<kj::byte>& key,
              const std::vector<kj::byte>& value) {
    auto table = rawTable(tableName);
    env->write([&](store::WriteTxn& txn) {
      txn.put(table, kj::arrayPtr(key.data(), key.size()),
              kj::arrayPtr(value.data(), value.size()));
    });
  }
};

// ---- the permission table (DESIGN.md §3) -------------------------------------------------

TEST_F(VaultTest, AccessTable) {
  Principal user;
  user.associateId = 5;
  user.method = AuthMethod::PEER_CREDENTIALS;
  EXPECT_EQ(accessTo(user, 5), Access::FULL);
  EXPECT_EQ(accessTo(user, 6), Access::NONE);
  user.userAdmin = true;
  EXPECT_EQ(accessTo(user, 5), Access::FULL);
  EXPECT_EQ(accessTo(user, 6), Access::MANAGE);
  user.userAdmin = false;
  user.kind = Kind::SYSTEM;
  EXPECT_EQ(accessTo(user, 6), Access::FULL);
  user.partnerApp = true;
  EXPECT_EQ(accessTo(user, 5), Access::NONE);
  EXPECT_EQ(accessTo(user, 6), Access::NONE);
  Principal nobody;
  EXPECT_EQ(accessTo(nobody, 0), Access::NONE);
  EXPECT_EQ(accessTo(nobody, 1), Access::NONE);
}

TEST_F(VaultTest, UserHasFullAccessToOwnCredentials) {
  auto alice = principalOf(add("alice"));
  auto def = vault->createDefault(alice).value();
  EXPECT_TRUE(def.isActive);
  EXPECT_EQ(def.validFrom, 0);
  EXPECT_EQ(def.validTo, 0);
  EXPECT_EQ(secretOf(def), "");

  EXPECT_TRUE(save(alice, 0, "imap", cred("alice@example.com", some("pw1"), "work")).value());
  auto list = get(alice, 0, "imap").value();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(text(list[0].publicValue), "alice@example.com");
  EXPECT_EQ(secretOf(list[0]), "pw1");
  EXPECT_EQ(text(list[0].comment), "work");
  // Naming oneself explicitly is the same as the own list.
  list = get(alice, alice.associateId, "imap").value();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(secretOf(list[0]), "pw1");
  EXPECT_TRUE(
      save(alice, alice.associateId, "smtp", cred("alice@example.com", some("pw2"))).value());
  EXPECT_TRUE(remove(alice, 0, "imap", "alice@example.com").value());
  EXPECT_TRUE(remove(alice, alice.associateId, "smtp", "alice@example.com").value());
  EXPECT_EQ(get(alice, 0, "imap").value().size(), 0u);
  EXPECT_EQ(get(alice, 0, "smtp").value().size(), 0u);
}

TEST_F(VaultTest, UserIsDeniedOthersCredentials) {
  auto alice = principalOf(add("alice"));
  auto bob = principalOf(add("bob"));
  ASSERT_TRUE(save(bob, 0, "imap", cred("bob@example.com", some("bobsecret"), "b")).value());
  auto before = dump(bob.associateId, "imap");

  EXPECT_VAULT_ERROR(get(alice, bob.associateId, "imap"), ErrorCode::PERMISSION_DENIED, "");
  EXPECT_VAULT_ERROR(save(alice, bob.associateId, "imap", cred("bob@example.com", some("x"))),
                     ErrorCode::PERMISSION_DENIED, "");
  EXPECT_VAULT_ERROR(save(alice, bob.associateId, "imap", cred("new", some("x"))),
                     ErrorCode::PERMISSION_DENIED, "");
  EXPECT_VAULT_ERROR(remove(alice, bob.associateId, "imap", "bob@example.com"),
                     ErrorCode::PERMISSION_DENIED, "");
  EXPECT_VAULT_ERROR(vault->listAssociates(alice), ErrorCode::PERMISSION_DENIED, "");
  NewAssociate na;
  na.name = kj::str("mallory");
  EXPECT_VAULT_ERROR(vault->addAssociate(alice, kj::mv(na)), ErrorCode::PERMISSION_DENIED, "");
  EXPECT_VAULT_ERROR(vault->setAssociate(alice, alice.associateId, {}),
                     ErrorCode::PERMISSION_DENIED, "");
  EXPECT_VAULT_ERROR(vault->removeAssociate(alice, bob.associateId), ErrorCode::PERMISSION_DENIED,
                     "");
  EXPECT_VAULT_ERROR(vault->rotateDataKey(alice), ErrorCode::PERMISSION_DENIED, "");
  {
    int devNull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    ASSERT_GE(devNull, 0);
    KJ_DEFER(::close(devNull));
    EXPECT_VAULT_ERROR(vault->backup(alice, devNull), ErrorCode::PERMISSION_DENIED, "");
  }
  EXPECT_VAULT_ERROR(
      vault->setPassword(alice, bob.associateId, crypto::Secret::copyOf(kj::StringPtr("pw"))),
      ErrorCode::PERMISSION_DENIED, "");
  // An unknown associate looks the same as a forbidden one to a plain user.
  EXPECT_VAULT_ERROR(get(alice, 999, "imap"), ErrorCode::PERMISSION_DENIED, "");
  EXPECT_EQ(dump(bob.associateId, "imap"), before);
}

TEST_F(VaultTest, UserAdminManagesOthersButNeverReadsTheirSecrets) {
  auto admin = principalOf(add("admin", Kind::USER, true));
  auto bob = principalOf(add("bob"));
  ASSERT_TRUE(save(bob, 0, "imap", cred("bob@example.com", some("bobsecret"), "mine")).value());

  // Another's list: yes, SecretValue withheld, everything else intact.
  auto list = get(admin, bob.associateId, "imap").value();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(text(list[0].publicValue), "bob@example.com");
  EXPECT_EQ(text(list[0].comment), "mine");
  EXPECT_EQ(list[0].secretValue, nullptr);

  // May set a secret for another, never read it back.
  EXPECT_TRUE(
      save(admin, bob.associateId, "smtp", cred("bob@smtp", some("set-by-admin"), "a")).value());
  list = get(admin, bob.associateId, "smtp").value();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].secretValue, nullptr);
  list = get(bob, 0, "smtp").value();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(secretOf(list[0]), "set-by-admin");

  // A save without SecretValue keeps the owner's secret; the admin changes the rest.
  EXPECT_FALSE(
      save(admin, bob.associateId, "imap", cred("bob@example.com", none(), "admin's")).value());
  list = get(bob, 0, "imap").value();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(secretOf(list[0]), "bobsecret");
  EXPECT_EQ(text(list[0].comment), "admin's");

  // Remove for another.
  EXPECT_TRUE(remove(admin, bob.associateId, "smtp", "bob@smtp").value());
  EXPECT_EQ(get(bob, 0, "smtp").value().size(), 0u);

  // Own credentials: full.
  EXPECT_TRUE(save(admin, 0, "imap", cred("admin@example.com", some("adminsecret"))).value());
  list = get(admin, 0, "imap").value();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(secretOf(list[0]), "adminsecret");

  // May list associates, but not administer them.
  EXPECT_EQ(vault->listAssociates(admin).value().size(), 2u);
  NewAssociate na;
  na.name = kj::str("eve");
  EXPECT_VAULT_ERROR(vault->addAssociate(admin, kj::mv(na)), ErrorCode::PERMISSION_DENIED, "");
  AssociateUpdate up;
  up.userAdmin = true;
  EXPECT_VAULT_ERROR(vault->setAssociate(admin, bob.associateId, kj::mv(up)),
                     ErrorCode::PERMISSION_DENIED, "");
  EXPECT_VAULT_ERROR(vault->removeAssociate(admin, bob.associateId), ErrorCode::PERMISSION_DENIED,
                     "");
  EXPECT_VAULT_ERROR(vault->rotateDataKey(admin), ErrorCode::PERMISSION_DENIED, "");
  EXPECT_VAULT_ERROR(
      vault->setPassword(admin, bob.associateId, crypto::Secret::copyOf(kj::StringPtr("pw"))),
      ErrorCode::PERMISSION_DENIED, "");
  // A user admin on an unknown associate: not found (it may manage every associate).
  EXPECT_VAULT_ERROR(get(admin, 999, "imap"), ErrorCode::NOT_FOUND, "associateId");
}

TEST_F(VaultTest, SystemUserMayDoEverything) {
  auto sys = principalOf(add("svc", Kind::SYSTEM));
  auto bob = principalOf(add("bob"));
  ASSERT_TRUE(save(bob, 0, "imap", cred("bob@example.com", some("bobsecret"))).value());
  for (auto* who : {&sys, static_cast<Principal*>(nullptr)}) {
    Principal r = root();
    const Principal& p = who == nullptr ? r : *who;
    auto list = get(p, bob.associateId, "imap").value();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(secretOf(list[0]), "bobsecret");
    EXPECT_TRUE(save(p, bob.associateId, "smtp", cred("x", some("by-system"))).value());
    list = get(p, bob.associateId, "smtp").value();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(secretOf(list[0]), "by-system");
    EXPECT_TRUE(remove(p, bob.associateId, "smtp", "x").value());
    EXPECT_EQ(vault->listAssociates(p).value().size(), 2u);
  }
  // The system associate has own credentials too.
  EXPECT_TRUE(save(sys, 0, "imap", cred("svc", some("svcsecret"))).value());
  EXPECT_EQ(secretOf(get(sys, 0, "imap").value()[0]), "svcsecret");
}

TEST_F(VaultTest, PrincipalWithoutAssociate) {
  auto bob = principalOf(add("bob"));
  ASSERT_TRUE(save(bob, 0, "imap", cred("bob@example.com", some("s"))).value());
  // Root unmapped: no credentials of its own, must name an associate.
  EXPECT_VAULT_ERROR(get(root(), 0, "imap"), ErrorCode::NOT_FOUND, "associateId");
  EXPECT_VAULT_ERROR(save(root(), 0, "imap", cred("x", some("s"))), ErrorCode::NOT_FOUND,
                     "associateId");
  EXPECT_VAULT_ERROR(remove(root(), 0, "imap", "x"), ErrorCode::NOT_FOUND, "associateId");
  // No associate, not system, not authenticated: nothing.
  Principal nobody;
  EXPECT_VAULT_ERROR(vault->createDefault(nobody), ErrorCode::NOT_AUTHENTICATED, "");
  EXPECT_VAULT_ERROR(get(nobody, 0, "imap"), ErrorCode::NOT_FOUND, "associateId");
  EXPECT_VAULT_ERROR(get(nobody, bob.associateId, "imap"), ErrorCode::PERMISSION_DENIED, "");
  EXPECT_VAULT_ERROR(save(nobody, bob.associateId, "imap", cred("x", some("s"))),
                     ErrorCode::PERMISSION_DENIED, "");
  EXPECT_VAULT_ERROR(remove(nobody, bob.associateId, "imap", "bob@example.com"),
                     ErrorCode::PERMISSION_DENIED, "");
  EXPECT_VAULT_ERROR(vault->listAssociates(nobody), ErrorCode::PERMISSION_DENIED, "");
  EXPECT_EQ(get(bob, 0, "imap").value().size(), 1u);
}

TEST_F(VaultTest, PartnerAppIsDeniedEverything) {
  auto sysAssoc = add("svc", Kind::SYSTEM);
  auto alice = principalOf(add("alice", Kind::USER, true));
  ASSERT_TRUE(save(alice, 0, "imap", cred("alice", some("s"))).value());
  const std::string message = "User management is not allowed for partner apps";
  Principal bases[] = {principalOf(sysAssoc), clonePrincipal(alice)};
  for (auto& base : bases) {
    Principal partner = clonePrincipal(base);
    partner.partnerApp = true;
    partner.method = AuthMethod::TICKET;
    auto check = [&](auto&& body) {
      auto caught = testing::catchRefusal(body);
      ASSERT_TRUE(caught.thrown);
      EXPECT_EQ(caught.code, ErrorCode::PERMISSION_DENIED);
      EXPECT_EQ(caught.message, message);
    };
    check([&]() { return vault->createDefault(partner); });
    check([&]() { return get(partner, 0, "imap"); });
    check([&]() { return get(partner, alice.associateId, "imap"); });
    check([&]() { return save(partner, 0, "imap", cred("p", some("s"))); });
    check([&]() { return save(partner, alice.associateId, "imap", cred("p", some("s"))); });
    check([&]() { return remove(partner, 0, "imap", "alice"); });
    check([&]() { return remove(partner, alice.associateId, "imap", "alice"); });
    EXPECT_VAULT_ERROR(vault->listAssociates(partner), ErrorCode::PERMISSION_DENIED, "");
    NewAssociate na;
    na.name = kj::str("x");
    EXPECT_VAULT_ERROR(vault->addAssociate(partner, kj::mv(na)), ErrorCode::PERMISSION_DENIED, "");
  }
  EXPECT_EQ(dump(alice.associateId, "imap"), "alice|s||0|0|1\n");
}

// ---- upsert, keep-secret, remove ----------------------------------------------------------

TEST_F(VaultTest, SaveUpsertsByAssociateTypeAndPublicValue) {
  auto alice = principalOf(add("alice"));
  auto bob = principalOf(add("bob"));
  EXPECT_TRUE(save(alice, 0, "imap", cred("a@x", some("one"), "first")).value());
  EXPECT_FALSE(save(alice, 0, "imap", cred("a@x", some("two"), "second")).value());
  EXPECT_EQ(dump(alice.associateId, "imap"), "a@x|two|second|0|0|1\n");
  EXPECT_EQ(vault->counts().credentials, 1u);

  // Another public value, another type (case-sensitive), another associate: new entries.
  EXPECT_TRUE(save(alice, 0, "imap", cred("b@x", some("three"))).value());
  EXPECT_TRUE(save(alice, 0, "IMAP", cred("a@x", some("four"))).value());
  EXPECT_TRUE(save(alice, 0, "smtp", cred("a@x", some("five"))).value());
  EXPECT_TRUE(save(bob, 0, "imap", cred("a@x", some("six"))).value());
  EXPECT_EQ(vault->counts().credentials, 5u);
  auto imap = get(alice, 0, "imap").value();
  ASSERT_EQ(imap.size(), 2u);
  EXPECT_EQ(get(alice, 0, "IMAP").value().size(), 1u);
  EXPECT_EQ(secretOf(get(alice, 0, "IMAP").value()[0]), "four");
  EXPECT_EQ(secretOf(get(bob, 0, "imap").value()[0]), "six");
  // A type that is a prefix of another does not see the other's entries.
  EXPECT_EQ(get(alice, 0, "ima").value().size(), 0u);
  EXPECT_EQ(get(alice, 0, "imap2").value().size(), 0u);

  // Every field is replaced.
  Credential c = cred("a@x", some("seven"), "third");
  c.validFrom = UNIX_EPOCH_TICKS;
  c.validTo = UNIX_EPOCH_TICKS + 10 * TICKS_PER_SECOND;
  c.isActive = false;
  EXPECT_FALSE(save(alice, 0, "imap", kj::mv(c)).value());
  auto expect = std::string("a@x|seven|third|") + std::to_string(UNIX_EPOCH_TICKS) + "|" +
                std::to_string(UNIX_EPOCH_TICKS + 10 * TICKS_PER_SECOND) + "|0\n";
  auto d = dump(alice.associateId, "imap");
  EXPECT_NE(d.find(expect), std::string::npos) << d;
}

TEST_F(VaultTest, NullSecretKeepsStoredSecretButEmptyReplacesIt) {
  auto alice = principalOf(add("alice"));
  ASSERT_TRUE(save(alice, 0, "imap", cred("a@x", some("keep-me"), "c1")).value());
  EXPECT_FALSE(save(alice, 0, "imap", cred("a@x", none(), "c2")).value());
  EXPECT_EQ(dump(alice.associateId, "imap"), "a@x|keep-me|c2|0|0|1\n");
  // Kept across a restart too (the secret was resealed, not lost).
  reopen();
  EXPECT_EQ(dump(alice.associateId, "imap"), "a@x|keep-me|c2|0|0|1\n");
  EXPECT_FALSE(save(alice, 0, "imap", cred("a@x", some(""), "c3")).value());
  EXPECT_EQ(dump(alice.associateId, "imap"), "a@x||c3|0|0|1\n");
  // A new entry without a secret has the empty secret.
  EXPECT_TRUE(save(alice, 0, "imap", cred("b@x", none())).value());
  auto list = get(alice, 0, "imap").value();
  ASSERT_EQ(list.size(), 2u);
  for (auto& c : list) EXPECT_NE(c.secretValue, nullptr);
}

TEST_F(VaultTest, EmptyTypeIsAnOrdinaryType) {
  // Allowed on purpose (docs/limits.md): SuperOffice clients send <Type></Type>.
  auto alice = principalOf(add("alice"));
  EXPECT_TRUE(save(alice, 0, "", cred("a@x", some("empty-type"))).value());
  EXPECT_TRUE(save(alice, 0, "imap", cred("a@x", some("imap-type"))).value());
  EXPECT_EQ(dump(alice.associateId, ""), "a@x|empty-type||0|0|1\n");
  EXPECT_EQ(dump(alice.associateId, "imap"), "a@x|imap-type||0|0|1\n");
  EXPECT_TRUE(remove(alice, 0, "", "a@x").value());
  EXPECT_EQ(get(alice, 0, "").value().size(), 0u);
  EXPECT_EQ(get(alice, 0, "imap").value().size(), 1u);
}

TEST_F(VaultTest, RemoveDeletesByNaturalKey) {
  auto alice = principalOf(add("alice"));
  ASSERT_TRUE(save(alice, 0, "imap", cred("a@x", some("1"))).value());
  ASSERT_TRUE(save(alice, 0, "imap", cred("b@x", some("2"))).value());
  ASSERT_TRUE(save(alice, 0, "smtp", cred("a@x", some("3"))).value());
  EXPECT_FALSE(remove(alice, 0, "imap", "c@x").value());
  EXPECT_FALSE(remove(alice, 0, "IMAP", "a@x").value());
  EXPECT_TRUE(remove(alice, 0, "imap", "a@x").value());
  EXPECT_FALSE(remove(alice, 0, "imap", "a@x").value());
  EXPECT_EQ(dump(alice.associateId, "imap"), "b@x|2||0|0|1\n");
  EXPECT_EQ(dump(alice.associateId, "smtp"), "a@x|3||0|0|1\n");
  EXPECT_EQ(vault->counts().credentials, 2u);
  // Limits apply to remove's arguments too.
  EXPECT_VAULT_ERROR(remove(alice, 0, "imap", repeat("p", MAX_PUBLIC_VALUE_CHARS + 1)),
                     ErrorCode::LIMIT_EXCEEDED, "publicValue");
  EXPECT_VAULT_ERROR(remove(alice, 0, repeat("t", MAX_TYPE_CHARS + 1), "b@x"),
                     ErrorCode::LIMIT_EXCEEDED, "type");
  EXPECT_VAULT_ERROR(remove(alice, 0, "imap", "b\xff"), ErrorCode::INVALID_ARGUMENT, "publicValue");
}

// ---- limits and bad input -----------------------------------------------------------------

TEST_F(VaultTest, EveryLimitAtTheBoundAndOnePast) {
  auto alice = principalOf(add("alice"));
  int n = 0;
  auto ok = [&](const std::string& type, Credential c) {
    auto saved = save(alice, 0, type, kj::mv(c));
    KJ_IF_MAYBE(r, saved.refused()) { ADD_FAILURE() << "case " << n << ": " << r->message.cStr(); }
    ++n;
  };
  auto before = [&]() { return vault->counts().credentials; };

  // At the bound: stored and read back intact.
  auto pub = repeat("p", MAX_PUBLIC_VALUE_CHARS);
  auto pubMb = repeat("\xe2\x82\xac", MAX_PUBLIC_VALUE_CHARS);  // 3 bytes each
  auto comment = repeat("c", MAX_COMMENT_CHARS);
  auto commentMb = repeat("\xf0\x9f\x94\x91", MAX_COMMENT_CHARS);  // 4 bytes each
  auto secret = repeat("s", MAX_SECRET_BYTES);
  auto type = repeat("t", MAX_TYPE_CHARS);
  auto typeMb = repeat("\xc3\xa9", MAX_TYPE_CHARS);
  ok("imap", cred(pub, some("x"), comment));
  ok("imap", cred(pubMb, some(secret), commentMb));
  ok(type, cred("a", some("x")));
  ok(typeMb, cred("a", some("x")));
  auto list = get(alice, 0, "imap").value();
  ASSERT_EQ(list.size(), 2u);
  bool sawMb = false;
  for (auto& c : list) {
    if (text(c.publicValue) == pubMb) {
      sawMb = true;
      EXPECT_EQ(text(c.comment), commentMb);
      EXPECT_EQ(secretOf(c), secret);
    } else {
      EXPECT_EQ(text(c.publicValue), pub);
      EXPECT_EQ(text(c.comment), comment);
    }
  }
  EXPECT_TRUE(sawMb);
  EXPECT_EQ(get(alice, 0, type).value().size(), 1u);
  EXPECT_EQ(get(alice, 0, typeMb).value().size(), 1u);

  // One past: refused, naming the field, nothing stored.
  auto count = before();
  auto snapshot = dump(alice.associateId, "imap");
  EXPECT_VAULT_ERROR(save(alice, 0, "imap", cred(pub + "p", some("x"))), ErrorCode::LIMIT_EXCEEDED,
                     "publicValue");
  EXPECT_VAULT_ERROR(save(alice, 0, "imap", cred(pubMb + "\xe2\x82\xac", some("x"))),
                     ErrorCode::LIMIT_EXCEEDED, "publicValue");
  EXPECT_VAULT_ERROR(save(alice, 0, "imap", cred("a", some("x"), comment + "c")),
                     ErrorCode::LIMIT_EXCEEDED, "comment");
  EXPECT_VAULT_ERROR(save(alice, 0, "imap", cred("a", some("x"), commentMb + "\xf0\x9f\x94\x91")),
                     ErrorCode::LIMIT_EXCEEDED, "comment");
  EXPECT_VAULT_ERROR(save(alice, 0, "imap", cred("a", some(secret + "s"))),
                     ErrorCode::LIMIT_EXCEEDED, "secretValue");
  EXPECT_VAULT_ERROR(save(alice, 0, type + "t", cred("a", some("x"))), ErrorCode::LIMIT_EXCEEDED,
                     "type");
  EXPECT_VAULT_ERROR(save(alice, 0, typeMb + "\xc3\xa9", cred("a", some("x"))),
                     ErrorCode::LIMIT_EXCEEDED, "type");
  EXPECT_VAULT_ERROR(get(alice, 0, type + "t"), ErrorCode::LIMIT_EXCEEDED, "type");
  // Replacing an existing entry with an oversized field leaves it as it was.
  EXPECT_VAULT_ERROR(save(alice, 0, "imap", cred(pub, some(secret + "s"), "changed")),
                     ErrorCode::LIMIT_EXCEEDED, "secretValue");
  EXPECT_EQ(before(), count);
  EXPECT_EQ(dump(alice.associateId, "imap"), snapshot);
}

TEST_F(VaultTest, BadInputIsRefusedAndChangesNothing) {
  auto alice = principalOf(add("alice"));
  ASSERT_TRUE(save(alice, 0, "imap", cred("a@x", some("orig"), "orig")).value());
  auto snapshot = dump(alice.associateId, "imap");
  auto count = vault->counts().credentials;

  struct Case {
    const char* what;
    std::string type;
    Credential c;
    ErrorCode code;
    const char* field;
  };
  auto withDates = [](Ticks from, Ticks to) {
    auto c = cred("a@x", some("changed"), "changed");
    c.validFrom = from;
    c.validTo = to;
    return c;
  };
  std::vector<Case> cases;
  cases.push_back({"invalid UTF-8 public", "imap", cred("a@x\xc3", some("s")),
                   ErrorCode::INVALID_ARGUMENT, "publicValue"});
  cases.push_back({"invalid UTF-8 comment", "imap", cred("a@x", some("s"), "\xed\xa0\x80"),
                   ErrorCode::INVALID_ARGUMENT, "comment"});
  cases.push_back({"invalid UTF-8 secret", "imap", cred("a@x", some("\xc0\xaf")),
                   ErrorCode::INVALID_ARGUMENT, "secretValue"});
  cases.push_back({"invalid UTF-8 type", "im\xff", cred("a@x", some("s")),
                   ErrorCode::INVALID_ARGUMENT, "type"});
  cases.push_back({"control char in public", "imap", cred("a@x\n", some("s")),
                   ErrorCode::INVALID_ARGUMENT, "publicValue"});
  cases.push_back({"NUL in public", "imap", cred(std::string("a@x\0y", 5), some("s")),
                   ErrorCode::INVALID_ARGUMENT, "publicValue"});
  cases.push_back({"control char in comment", "imap", cred("a@x", some("s"), "esc\x1b[0m"),
                   ErrorCode::INVALID_ARGUMENT, "comment"});
  cases.push_back({"DEL in comment", "imap", cred("a@x", some("s"), "del\x7f"),
                   ErrorCode::INVALID_ARGUMENT, "comment"});
  cases.push_back({"control char in type", "im\x01p", cred("a@x", some("s")),
                   ErrorCode::INVALID_ARGUMENT, "type"});
  cases.push_back({"validTo before validFrom", "imap",
                   withDates(UNIX_EPOCH_TICKS + 1, UNIX_EPOCH_TICKS), ErrorCode::INVALID_ARGUMENT,
                   "validTo"});
  cases.push_back(
      {"validFrom negative", "imap", withDates(-1, 0), ErrorCode::INVALID_ARGUMENT, "validFrom"});
  cases.push_back({"validFrom past 9999", "imap", withDates(MAX_TICKS + 1, 0),
                   ErrorCode::INVALID_ARGUMENT, "validFrom"});
  cases.push_back({"validTo past 9999", "imap", withDates(0, MAX_TICKS + 1),
                   ErrorCode::INVALID_ARGUMENT, "validTo"});
  cases.push_back({"validTo INT64_MIN", "imap", withDates(0, INT64_MIN),
                   ErrorCode::INVALID_ARGUMENT, "validTo"});
  for (auto& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_VAULT_ERROR(save(alice, 0, c.type, kj::mv(c.c)), c.code, c.field);
  }
  // Dates at the edges are fine.
  EXPECT_ACCEPTED(save(alice, 0, "edge", withDates(MAX_TICKS, MAX_TICKS)));
  EXPECT_ACCEPTED(save(alice, 0, "edge", withDates(0, MAX_TICKS)));
  EXPECT_ACCEPTED(save(alice, 0, "edge", withDates(1, 1)));
  // A negative target is invalid (0 is the caller: SuperOffice's AssociateId 0).
  EXPECT_EQ(get(alice, 0, "imap").value().size(),
            get(alice, alice.associateId, "imap").value().size());
  EXPECT_VAULT_ERROR(get(alice, -5, "imap"), ErrorCode::INVALID_ARGUMENT, "associateId");
  EXPECT_VAULT_ERROR(save(alice, -5, "imap", cred("n@x", some("s"))), ErrorCode::INVALID_ARGUMENT,
                     "associateId");
  EXPECT_VAULT_ERROR(remove(alice, -5, "imap", "n@x"), ErrorCode::INVALID_ARGUMENT, "associateId");

  EXPECT_EQ(dump(alice.associateId, "imap"), snapshot);
  EXPECT_EQ(vault->counts().credentials, count + 1);  // only the "edge" entry
}

TEST_F(VaultTest, UnknownAssociateIsNotFound) {
  auto bob = principalOf(add("bob"));
  auto count = vault->counts();
  EXPECT_VAULT_ERROR(get(root(), 999, "imap"), ErrorCode::NOT_FOUND, "associateId");
  EXPECT_VAULT_ERROR(save(root(), 999, "imap", cred("x", some("s"))), ErrorCode::NOT_FOUND,
                     "associateId");
  EXPECT_VAULT_ERROR(remove(root(), 999, "imap", "x"), ErrorCode::NOT_FOUND, "associateId");
  EXPECT_VAULT_ERROR(vault->runNow(vault->removeAssociate(root(), 999)), ErrorCode::NOT_FOUND,
                     "associateId");
  EXPECT_VAULT_ERROR(vault->runNow(vault->setAssociate(root(), 999, {})), ErrorCode::NOT_FOUND,
                     "associateId");
  EXPECT_EQ(vault->findAssociate(999), nullptr);
  EXPECT_EQ(vault->findAssociate(0), nullptr);
  EXPECT_EQ(vault->findAssociate(-1), nullptr);
  EXPECT_EQ(vault->findAssociateByName("nobody"), nullptr);
  EXPECT_EQ(vault->findAssociateByUid(12345), nullptr);
  EXPECT_EQ(vault->counts().credentials, count.credentials);
  EXPECT_EQ(vault->counts().associates, count.associates);
  EXPECT_EQ(bob.associateId, 1);
}

// A store whose first write lets another daemon create the vault first: two hosts starting on
// one empty database at the same moment (issue 17). The later one must adopt the keys the
// first one stored, never seal with keys of its own that the other host cannot open.
class SecondDaemonFirst final : public store::Store {
 public:
  SecondDaemonFirst(store::Store& inner, kj::Function<void()> before)
      : inner_(inner), before_(kj::mv(before)) {}
  kj::StringPtr backendName() const override { return inner_.backendName(); }
  kj::StringPtr location() const override { return inner_.location(); }
  bool mayBlock() const override { return inner_.mayBlock(); }
  store::Table table(kj::StringPtr name) override { return inner_.table(name); }
  kj::Maybe<store::Table> existingTable(kj::StringPtr name) override {
    return inner_.existingTable(name);
  }
  bool readOnly() const override { return inner_.readOnly(); }
  store::ReadTxn read() override { return inner_.read(); }
  store::StoreStats stats() override { return inner_.stats(); }

 protected:
  void runWrite(kj::FunctionParam<void(store::WriteTxn&)> body) override {
    KJ_IF_MAYBE(f, before_) {
      auto run = kj::mv(*f);
      before_ = nullptr;
      run();
    }
    inner_.write([&](store::WriteTxn& txn) { body(txn); });
  }

 private:
  store::Store& inner_;
  kj::Maybe<kj::Function<void()>> before_;
};

TEST_F(VaultTest, TwoDaemonsCreatingOneVaultAtOnceAgreeOnItsKeys) {
  TempDir fresh;
  support::TestStore place(fresh.path());
  auto shared = place.open();
  VaultOptions options;
  options.passwordParams = crypto::minimalPasswordParams();
  std::unique_ptr<Vault> first;
  // The later daemon looked for keys and found none; then the first one created the vault.
  SecondDaemonFirst racing(*shared, [&]() {
    first = std::make_unique<Vault>(*shared, crypto::Secret::copyOf(masterKey.reveal()), clock,
                                    options);
  });
  Vault second(racing, crypto::Secret::copyOf(masterKey.reveal()), clock, options);
  ASSERT_TRUE(first != nullptr);
  auto owner = first
                   ->runNow(first->addAssociate(root(),
                                                [] {
                                                  NewAssociate na;
                                                  na.name = kj::str("race-owner");
                                                  return na;
                                                }()))
                   .value();
  Credential c;
  c.publicValue = kj::str("race@example.org");
  c.secretValue = crypto::Secret::copyOf(kj::StringPtr("race-secret-4471"));
  first->runNow(first->save(root(), owner.id, "imap", kj::mv(c))).value();
  // What one host sealed, the other opens, and the keyed hashes agree.
  auto got = second.get(root(), owner.id, "imap").value();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(got[0].secretValue).reveal().asChars(), "race-secret-4471"_kj);
  EXPECT_EQ(first->auditHash("x"), second.auditHash("x"));
}

TEST_F(VaultTest, CredentialsPerAssociateLimit) {
  // Core's bound, the same on every store. On PostgreSQL the 10,000 saves rewrite one counter
  // 10,000 times in one transaction: the store sends only its last value of each batch of
  // queued writes (store/postgres.c++), else each rewrite leaves a row version the next lookup
  // walks (about a minute). The time is printed, not asserted.
  auto alice = principalOf(add("alice"));
  // Fill to the bound in one transaction (one fsync).
  auto started = std::chrono::steady_clock::now();
  env->write([&](store::WriteTxn& txn) {
    for (size_t i = 0; i < MAX_CREDENTIALS_PER_ASSOCIATE; i++) {
      auto op = vault->save(alice, 0, "bulk", cred(std::to_string(i), some("s"))).value();
      EXPECT_TRUE(op(txn).value());
    }
  });
  printf("[ timing ] %zu saves of one associate in one transaction on %s: %lld ms\n",
         size_t(MAX_CREDENTIALS_PER_ASSOCIATE), env->backendName().cStr(),
         (long long)std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - started)
             .count());
  EXPECT_EQ(vault->counts().credentials, MAX_CREDENTIALS_PER_ASSOCIATE);
  EXPECT_VAULT_ERROR(save(alice, 0, "other", cred("one-more", some("s"))),
                     ErrorCode::LIMIT_EXCEEDED, "");
  // Replacing an existing entry is still allowed at the bound; removing frees a slot.
  EXPECT_FALSE(save(alice, 0, "bulk", cred("0", some("t"))).value());
  EXPECT_TRUE(remove(alice, 0, "bulk", "1").value());
  EXPECT_TRUE(save(alice, 0, "other", cred("one-more", some("s"))).value());
  EXPECT_EQ(vault->counts().credentials, MAX_CREDENTIALS_PER_ASSOCIATE);
  // Another associate is not affected.
  auto bob = principalOf(add("bob"));
  EXPECT_TRUE(save(bob, 0, "bulk", cred("0", some("s"))).value());
}

// ---- integrity ----------------------------------------------------------------------------

TEST_F(VaultTest, TamperedRecordIsAnIntegrityError) {
  auto alice = principalOf(add("alice"));
  ASSERT_TRUE(save(alice, 0, "imap", cred("a@x", some("secret"), "c")).value());
  auto rows = rawCredentials(alice.associateId);
  ASSERT_EQ(rows.size(), 1u);
  auto [key, value] = rows[0];
  // Flip one bit at several places: header, nonce, ciphertext, tag.
  for (size_t pos :
       {size_t(0), size_t(1), size_t(4), size_t(10), value.size() / 2, value.size() - 1}) {
    SCOPED_TRACE(pos);
    auto tampered = value;
    tampered[pos] ^= 0x01;
    rawPut("credentials", key, tampered);
    EXPECT_VAULT_ERROR(get(alice, 0, "imap"), ErrorCode::INTEGRITY, "");
    EXPECT_VAULT_ERROR(get(root(), alice.associateId, "imap"), ErrorCode::INTEGRITY, "");
    // A keep-secret save must open the old record: integrity again, nothing written.
    EXPECT_VAULT_ERROR(save(alice, 0, "imap", cred("a@x", none(), "new")), ErrorCode::INTEGRITY,
                       "");
    EXPECT_EQ(rawCredentials(alice.associateId)[0].second, tampered);
  }
  // Truncated and empty records.
  rawPut("credentials", key, std::vector<kj::byte>(value.begin(), value.begin() + 20));
  EXPECT_VAULT_ERROR(get(alice, 0, "imap"), ErrorCode::INTEGRITY, "");
  rawPut("credentials", key, {});
  EXPECT_VAULT_ERROR(get(alice, 0, "imap"), ErrorCode::INTEGRITY, "");
  // Restored, it opens again.
  rawPut("credentials", key, value);
  EXPECT_EQ(dump(alice.associateId, "imap"), "a@x|secret|c|0|0|1\n");
  // A replacing save with a new secret overwrites a damaged record (the owner's way out).
  auto tampered = value;
  tampered.back() ^= 0x80;
  rawPut("credentials", key, tampered);
  EXPECT_FALSE(save(alice, 0, "imap", cred("a@x", some("fresh"))).value());
  EXPECT_EQ(dump(alice.associateId, "imap"), "a@x|fresh||0|0|1\n");
  // And remove works on a damaged record.
  rawPut("credentials", key, tampered);
  EXPECT_TRUE(remove(alice, 0, "imap", "a@x").value());
}

TEST_F(VaultTest, TamperedAssociateRecordIsAnIntegrityError) {
  auto alice = add("alice", Kind::USER, false, 60001u);
  auto table = rawTable("associates");
  kj::byte key[4];
  store::putBe32(key, alice.id);
  std::vector<kj::byte> value;
  {
    auto txn = env->read();
    auto v = KJ_ASSERT_NONNULL(txn.get(table, key));
    value.assign(v.begin(), v.end());
  }
  auto tampered = value;
  tampered[value.size() - 3] ^= 0x10;
  rawPut("associates", std::vector<kj::byte>(key, key + 4), tampered);
  EXPECT_VAULT_ERROR(vault->findAssociate(alice.id), ErrorCode::INTEGRITY, "");
  EXPECT_VAULT_ERROR(vault->findAssociateByUid(60001), ErrorCode::INTEGRITY, "");
  EXPECT_VAULT_ERROR(vault->findAssociateByName("alice"), ErrorCode::INTEGRITY, "");
  EXPECT_VAULT_ERROR(get(root(), alice.id, "imap"), ErrorCode::INTEGRITY, "");
  // An associate record moved under another id fails to open.
  auto bob = add("bob");
  kj::byte bobKey[4];
  store::putBe32(bobKey, bob.id);
  rawPut("associates", std::vector<kj::byte>(bobKey, bobKey + 4), value);
  EXPECT_VAULT_ERROR(vault->findAssociate(bob.id), ErrorCode::INTEGRITY, "");
}

TEST_F(VaultTest, RecordCopiedToAnotherKeyFailsToOpen) {
  auto alice = principalOf(add("alice"));
  auto bob = principalOf(add("bob"));
  ASSERT_TRUE(save(alice, 0, "imap", cred("shared", some("alice-secret"))).value());
  ASSERT_TRUE(save(alice, 0, "imap", cred("other", some("alice-other"))).value());
  ASSERT_TRUE(save(bob, 0, "imap", cred("shared", some("bob-secret"))).value());
  auto aliceRows = rawCredentials(alice.associateId);
  auto bobRows = rawCredentials(bob.associateId);
  ASSERT_EQ(aliceRows.size(), 2u);
  ASSERT_EQ(bobRows.size(), 1u);

  // Alice's record under Bob's key (same type and public value, other associate).
  for (auto& row : aliceRows) {
    rawPut("credentials", bobRows[0].first, row.second);
    EXPECT_VAULT_ERROR(get(bob, 0, "imap"), ErrorCode::INTEGRITY, "");
    EXPECT_VAULT_ERROR(get(root(), bob.associateId, "imap"), ErrorCode::INTEGRITY, "");
  }
  rawPut("credentials", bobRows[0].first, bobRows[0].second);
  EXPECT_EQ(secretOf(get(bob, 0, "imap").value()[0]), "bob-secret");

  // One of Alice's records under her other key (same associate, other public value).
  rawPut("credentials", aliceRows[1].first, aliceRows[0].second);
  EXPECT_VAULT_ERROR(get(alice, 0, "imap"), ErrorCode::INTEGRITY, "");
  rawPut("credentials", aliceRows[1].first, aliceRows[1].second);
  EXPECT_EQ(get(alice, 0, "imap").value().size(), 2u);

  // A record under a key of another type.
  ASSERT_TRUE(save(alice, 0, "smtp", cred("shared", some("smtp-secret"))).value());
  std::vector<kj::byte> smtpKey;
  for (auto& row : rawCredentials(alice.associateId)) {
    bool known = false;
    for (auto& a : aliceRows) known = known || a.first == row.first;
    if (!known) smtpKey = row.first;
  }
  ASSERT_FALSE(smtpKey.empty());
  rawPut("credentials", smtpKey, aliceRows[0].second);
  EXPECT_VAULT_ERROR(get(alice, 0, "smtp"), ErrorCode::INTEGRITY, "");
}

TEST_F(VaultTest, WrongMasterKeyRefusesToOpen) {
  auto alice = principalOf(add("alice"));
  ASSERT_TRUE(save(alice, 0, "imap", cred("a@x", some("s"))).value());
  close();
  auto wrong = crypto::Secret::random(32);
  bool threw = false;
  try {
    open(wrong);
  } catch (const kj::Exception& e) {
    threw = true;
    auto text = std::string(e.getDescription().cStr());
    EXPECT_NE(text.find("wrong master key"), std::string::npos) << text;
    EXPECT_NE(text.find("Refusing to start"), std::string::npos) << text;
  }
  EXPECT_TRUE(threw);
  close();
  // Nothing was changed by the failed attempt.
  open();
  EXPECT_EQ(dump(alice.associateId, "imap"), "a@x|s||0|0|1\n");
}

// ---- persistence, keys, associates -------------------------------------------------------

TEST_F(VaultTest, RestartPersistence) {
  auto alice = add("alice", Kind::USER, true, 60001u, some("pw"));
  auto bob = add("bob", Kind::SYSTEM, false, 60002u);
  ASSERT_TRUE(save(principalOf(alice), 0, "imap", cred("a@x", some("s1"), "c1")).value());
  ASSERT_TRUE(save(principalOf(bob), 0, "imap", cred("b@x", some("s2"), "c2")).value());
  auto counts = vault->counts();
  reopen();
  EXPECT_EQ(vault->counts().credentials, counts.credentials);
  EXPECT_EQ(vault->counts().associates, counts.associates);
  EXPECT_EQ(vault->counts().dataKeyId, counts.dataKeyId);
  EXPECT_EQ(dump(alice.id, "imap"), "a@x|s1|c1|0|0|1\n");
  EXPECT_EQ(dump(bob.id, "imap"), "b@x|s2|c2|0|0|1\n");
  auto a = KJ_ASSERT_NONNULL(vault->findAssociateByUid(60001));
  EXPECT_EQ(a.id, alice.id);
  EXPECT_EQ(a.name, "alice");
  EXPECT_TRUE(a.userAdmin);
  EXPECT_EQ(a.kind, Kind::USER);
  EXPECT_EQ(KJ_ASSERT_NONNULL(vault->findAssociateByName("BOB")).kind, Kind::SYSTEM);
  EXPECT_NE(vault->verifyPassword("alice", crypto::Secret::copyOf(kj::StringPtr("pw"))), nullptr);
  // Ids keep counting after a restart.
  EXPECT_EQ(add("carol").id, bob.id + 1);
}

TEST_F(VaultTest, RotateDataKey) {
  auto alice = principalOf(add("alice"));
  ASSERT_TRUE(save(alice, 0, "imap", cred("old", some("old-secret"))).value());
  EXPECT_EQ(vault->counts().dataKeyId, 1u);
  auto rowsBefore = rawCredentials(alice.associateId);
  ASSERT_EQ(rowsBefore.size(), 1u);
  EXPECT_EQ(store::getBe32(rowsBefore[0].second.data() + 1), 1u);

  EXPECT_EQ(vault->rotateDataKey(root()).value(), 2u);
  EXPECT_EQ(vault->counts().dataKeyId, 2u);
  ASSERT_TRUE(save(alice, 0, "imap", cred("new", some("new-secret"))).value());
  auto rows = rawCredentials(alice.associateId);
  ASSERT_EQ(rows.size(), 2u);
  for (auto& row : rows) {
    uint32_t keyId = store::getBe32(row.second.data() + 1);
    if (row.first == rowsBefore[0].first) {
      EXPECT_EQ(keyId, 1u);  // untouched
    } else {
      EXPECT_EQ(keyId, 2u);  // sealed with the new key
    }
  }
  auto check = [&]() {
    std::string d = dump(alice.associateId, "imap");
    EXPECT_NE(d.find("old|old-secret|"), std::string::npos) << d;
    EXPECT_NE(d.find("new|new-secret|"), std::string::npos) << d;
  };
  check();
  reopen();
  check();
  EXPECT_EQ(vault->counts().dataKeyId, 2u);
  // Re-saving an old record moves it to the new key (keep-secret path included).
  ASSERT_FALSE(save(alice, 0, "imap", cred("old", none(), "resealed")).value());
  for (auto& row : rawCredentials(alice.associateId)) {
    EXPECT_EQ(store::getBe32(row.second.data() + 1), 2u);
  }
  EXPECT_NE(dump(alice.associateId, "imap").find("old|old-secret|resealed"), std::string::npos);
  // Rotating again, and a key id unknown to the ring, is an integrity error.
  EXPECT_EQ(vault->rotateDataKey(root()).value(), 3u);
  auto row = rawCredentials(alice.associateId)[0];
  store::putBe32(row.second.data() + 1, 77);
  rawPut("credentials", row.first, row.second);
  EXPECT_VAULT_ERROR(get(alice, 0, "imap"), ErrorCode::INTEGRITY, "");
}

TEST_F(VaultTest, RemoveAssociateRemovesItsCredentials) {
  auto alice = add("alice", Kind::USER, false, 60001u);
  auto bob = principalOf(add("bob"));
  auto a = principalOf(alice);
  for (int i = 0; i < 5; i++) {
    ASSERT_TRUE(save(a, 0, i % 2 ? "imap" : "smtp", cred(std::to_string(i), some("s"))).value());
  }
  ASSERT_TRUE(save(bob, 0, "imap", cred("bob", some("b"))).value());
  EXPECT_EQ(vault->counts().credentials, 6u);
  EXPECT_EQ(vault->runNow(vault->removeAssociate(root(), alice.id)).value(), 5u);
  EXPECT_EQ(vault->counts().credentials, 1u);
  EXPECT_EQ(vault->counts().associates, 1u);
  EXPECT_EQ(rawCredentials(alice.id).size(), 0u);
  EXPECT_EQ(vault->findAssociate(alice.id), nullptr);
  EXPECT_EQ(vault->findAssociateByName("alice"), nullptr);
  EXPECT_EQ(vault->findAssociateByUid(60001), nullptr);
  EXPECT_EQ(dump(bob.associateId, "imap"), "bob|b||0|0|1\n");
  // The old principal now names a missing associate.
  EXPECT_VAULT_ERROR(save(a, 0, "imap", cred("x", some("s"))), ErrorCode::NOT_FOUND, "associateId");
  // Name and uid are free again; the new associate gets a new id and nothing of the old.
  auto again = add("ALICE", Kind::USER, false, 60001u);
  EXPECT_NE(again.id, alice.id);
  EXPECT_EQ(get(principalOf(again), 0, "imap").value().size(), 0u);
  EXPECT_EQ(get(principalOf(again), 0, "smtp").value().size(), 0u);
  // Its per-associate counter started from zero.
  EXPECT_TRUE(save(principalOf(again), 0, "imap", cred("x", some("s"))).value());
}

TEST_F(VaultTest, AssociateNamesAreUniqueCaseInsensitively) {
  auto alice = add("Alice", Kind::USER, false, 60001u);
  EXPECT_VAULT_ERROR(tryAdd("alice"), ErrorCode::CONFLICT, "name");
  EXPECT_VAULT_ERROR(tryAdd("ALICE"), ErrorCode::CONFLICT, "name");
  EXPECT_VAULT_ERROR(tryAdd("other", Kind::USER, false, 60001u), ErrorCode::CONFLICT, "unixUid");
  EXPECT_EQ(KJ_ASSERT_NONNULL(vault->findAssociateByName("aLiCe")).id, alice.id);
  EXPECT_EQ(KJ_ASSERT_NONNULL(vault->findAssociateByName("aLiCe")).name, "Alice");
  auto bob = add("bob");
  // Renaming onto a taken name (any case) conflicts; a case-only rename of oneself is fine.
  AssociateUpdate up;
  up.name = kj::str("ALICE");
  EXPECT_VAULT_ERROR(vault->runNow(vault->setAssociate(root(), bob.id, kj::mv(up))),
                     ErrorCode::CONFLICT, "name");
  up = {};
  up.name = kj::str("ALICE");
  EXPECT_EQ(vault->runNow(vault->setAssociate(root(), alice.id, kj::mv(up))).value().name, "ALICE");
  EXPECT_EQ(KJ_ASSERT_NONNULL(vault->findAssociateByName("alice")).id, alice.id);
  // Moving a uid onto one that is taken conflicts; releasing and re-taking works.
  up = {};
  up.unixUid = kj::Maybe<uint32_t>(60001u);
  EXPECT_VAULT_ERROR(vault->runNow(vault->setAssociate(root(), bob.id, kj::mv(up))),
                     ErrorCode::CONFLICT, "unixUid");
  up = {};
  up.unixUid = kj::Maybe<uint32_t>(nullptr);
  vault->runNow(vault->setAssociate(root(), alice.id, kj::mv(up))).value();
  EXPECT_EQ(vault->findAssociateByUid(60001), nullptr);
  up = {};
  up.unixUid = kj::Maybe<uint32_t>(60001u);
  vault->runNow(vault->setAssociate(root(), bob.id, kj::mv(up))).value();
  EXPECT_EQ(KJ_ASSERT_NONNULL(vault->findAssociateByUid(60001)).id, bob.id);
  // Name limits.
  EXPECT_ACCEPTED(tryAdd(repeat("n", MAX_NAME_CHARS)));
  EXPECT_VAULT_ERROR(tryAdd(repeat("m", MAX_NAME_CHARS + 1)), ErrorCode::LIMIT_EXCEEDED, "name");
  EXPECT_ACCEPTED(tryAdd(repeat("\xc3\xa6", MAX_NAME_CHARS)));
  EXPECT_VAULT_ERROR(tryAdd(repeat("\xc3\xb8", MAX_NAME_CHARS + 1)), ErrorCode::LIMIT_EXCEEDED,
                     "name");
  EXPECT_VAULT_ERROR(tryAdd(""), ErrorCode::INVALID_ARGUMENT, "name");
  EXPECT_VAULT_ERROR(tryAdd("bad\xff"), ErrorCode::INVALID_ARGUMENT, "name");
  EXPECT_VAULT_ERROR(tryAdd("tab\there"), ErrorCode::INVALID_ARGUMENT, "name");
  EXPECT_EQ(vault->counts().associates, 4u);
}

TEST_F(VaultTest, AssociateFieldsAndPasswords) {
  auto a = add("alice", Kind::USER, true, 60001u, some("correct horse"));
  EXPECT_EQ(a.id, 1);
  EXPECT_EQ(a.name, "alice");
  EXPECT_TRUE(a.userAdmin);
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.unixUid), 60001u);
  EXPECT_TRUE(a.active);
  EXPECT_EQ(a.createdUnix, 1'700'000'000);
  EXPECT_TRUE(a.passwordHash.startsWith("$argon2id$"));
  auto pw = [](const char* s) { return crypto::Secret::copyOf(kj::StringPtr(s)); };
  EXPECT_NE(vault->verifyPassword("alice", pw("correct horse")), nullptr);
  EXPECT_NE(vault->verifyPassword("ALICE", pw("correct horse")), nullptr);
  EXPECT_EQ(vault->verifyPassword("alice", pw("wrong")), nullptr);
  EXPECT_EQ(vault->verifyPassword("nobody", pw("correct horse")), nullptr);
  EXPECT_EQ(vault->verifyPassword("bad\xff", pw("x")), nullptr);
  // Password limits.
  EXPECT_VAULT_ERROR(tryAdd("p1", Kind::USER, false, nullptr, some("")),
                     ErrorCode::INVALID_ARGUMENT, "password");
  EXPECT_VAULT_ERROR(
      tryAdd("p2", Kind::USER, false, nullptr, some(repeat("x", MAX_PASSWORD_BYTES + 1))),
      ErrorCode::LIMIT_EXCEEDED, "password");
  // Deactivated: no password login, and the epoch moves on.
  clock.advance(5 * kj::SECONDS);
  AssociateUpdate up;
  up.active = false;
  auto b = vault->runNow(vault->setAssociate(root(), a.id, kj::mv(up))).value();
  EXPECT_FALSE(b.active);
  EXPECT_GT(b.credentialEpoch, a.credentialEpoch);
  EXPECT_EQ(b.modifiedUnix, 1'700'000'005);
  EXPECT_EQ(vault->verifyPassword("alice", pw("correct horse")), nullptr);
  // A user may set their own password; a new password bumps the epoch.
  up = {};
  up.active = true;
  vault->runNow(vault->setAssociate(root(), a.id, kj::mv(up))).value();
  EXPECT_TRUE(vault->runNow(vault->setPassword(principalOf(a), a.id, pw("new one"))).value());
  EXPECT_EQ(vault->verifyPassword("alice", pw("correct horse")), nullptr);
  EXPECT_NE(vault->verifyPassword("alice", pw("new one")), nullptr);
  EXPECT_GT(KJ_ASSERT_NONNULL(vault->findAssociate(a.id)).credentialEpoch, b.credentialEpoch);
}

TEST_F(VaultTest, BackupIsAConsistentCopy) {
  CREDVAULT_SKIP_ON_POSTGRES("a file backup (PostgreSQL is backed up with pg_dump)");
  auto alice = principalOf(add("alice"));
  ASSERT_TRUE(save(alice, 0, "imap", cred("a@x", some("s"), "c")).value());
  auto backupDir = dir / "backup";
  ASSERT_EQ(mkdir(backupDir.cStr(), 0700), 0);
  auto backupFile = kj::str(backupDir, "/data.mdb");
  {
    int fd = ::open(backupFile.cStr(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    KJ_DEFER(::close(fd));
    EXPECT_ACCEPTED(vault->backup(root(), fd));
  }
  // The copy opens with the same master key and holds the same data.
  close();
  {
    store::Environment copy(backupDir);
    VaultOptions options;
    options.passwordParams = crypto::minimalPasswordParams();
    Vault restored(copy, crypto::Secret::copyOf(masterKey.reveal()), clock, options);
    auto list = restored.get(alice, 0, "imap").value();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(secretOf(list[0]), "s");
  }
  open();
}

TEST_F(VaultTest, DatabaseFileHoldsNoPlaintext) {
  const std::string secret = "Zq7-SECRET-VALUE-4f1c9e";
  const std::string pub = "Zq7-public-value@example.org";
  const std::string comment = "Zq7 comment never in clear";
  const std::string password = "Zq7-associate-password";
  const std::string name = "zq7-unique-associate-name";
  const std::string type = "zq7-type-name";
  auto a = add(name, Kind::USER, false, 60123u, some(password));
  auto p = principalOf(a);
  ASSERT_TRUE(save(p, 0, type, cred(pub, some(secret), comment)).value());
  ASSERT_TRUE(save(p, 0, "imap", cred(pub + "2", some(secret + "2"), comment + "2")).value());
  // Replace and remove, so older page versions exist too.
  ASSERT_FALSE(save(p, 0, type, cred(pub, none(), comment)).value());
  ASSERT_TRUE(remove(p, 0, "imap", pub + "2").value());
  close();
  // data.mdb, or PostgreSQL's rows and its server log.
  auto data = where.everyStoredByte();
  ASSERT_GT(data.size(), 0u);
  for (auto& needle : {secret, pub, comment, password, name, type, std::string("Zq7")}) {
    EXPECT_EQ(data.find(needle), std::string::npos) << "found in the store: " << needle;
  }
  // Not as UTF-16 either (a careless encoder).
  std::string wide;
  for (char c : secret) {
    wide += c;
    wide += '\0';
  }
  EXPECT_EQ(data.find(wide), std::string::npos);
  open();
}

}  // namespace
}  // namespace credvault::core

namespace credvault::core {
namespace {

TEST_F(VaultTest, ChangeMasterKeyRewrapsOnlineAndRetiresTheOldKey) {
  auto alice = principalOf(add("alice"));
  ASSERT_TRUE(save(alice, 0, "imap", cred("a@x", some("kept-secret"))).value());
  vault->rotateDataKey(root()).value();  // two data keys and the index key to re-wrap
  ASSERT_TRUE(save(alice, 0, "imap", cred("b@x", some("second"))).value());
  auto fresh = crypto::Secret::random(32);
  EXPECT_VAULT_ERROR(vault->changeMasterKey(alice, crypto::Secret::copyOf(fresh.reveal())),
                     ErrorCode::PERMISSION_DENIED, "");
  EXPECT_ACCEPTED(vault->changeMasterKey(root(), crypto::Secret::copyOf(fresh.reveal())));
  // Still serving, and new records work under the new key.
  ASSERT_TRUE(save(alice, 0, "imap", cred("c@x", some("third"))).value());
  close();
  EXPECT_ANY_THROW(open());  // the old master key no longer opens the vault
  close();
  open(fresh);
  auto d = dump(alice.associateId, "imap");
  EXPECT_NE(d.find("a@x|kept-secret|"), std::string::npos) << d;
  EXPECT_NE(d.find("b@x|second|"), std::string::npos) << d;
  EXPECT_NE(d.find("c@x|third|"), std::string::npos) << d;
}

}  // namespace
}  // namespace credvault::core

// ---- verification and authenticated index values (issue 15) -------------------------------

namespace credvault::core {
namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class VaultVerifyTest : public VaultTest {
 protected:
  void fillSome() {
    for (int i = 0; i < 3; ++i) {
      auto a = add("v" + std::to_string(i), Kind::USER, false, uint32_t(7000 + i));
      for (int j = 0; j < 5; ++j) {
        Credential c;
        c.publicValue = kj::str("p", j, "@example.test");
        c.secretValue = crypto::Secret::copyOf(kj::StringPtr("verify-secret"));
        c.isActive = true;
        vault->runNow(vault->save(root(), a.id, "imap", kj::mv(c))).value();
      }
    }
  }
  store::Table table(const char* name) { return KJ_ASSERT_NONNULL(env->existingTable(name)); }
  // Rewrites the value of the first entry of `name` with `edit`.
  void editFirst(const char* name, kj::Function<void(kj::Array<kj::byte>&)> edit) {
    auto t = table(name);
    env->write([&](store::WriteTxn& txn) {
      kj::Array<kj::byte> key, value;
      txn.scan(t, nullptr, [&](auto k, auto v) {
        key = kj::heapArray(k);
        value = kj::heapArray(v);
        return false;
      });
      edit(value);
      txn.put(t, key, value);
    });
  }
  std::string verifyError() {
    auto caught = testing::catchRefusal([&]() { vault->verify([](kj::StringPtr) {}); });
    return testing::codeName(caught.code) + ": " + caught.message;
  }
};

TEST_F(VaultVerifyTest, ASoundVaultPassesAndIsCounted) {
  fillSome();
  std::vector<std::string> tables;
  auto r = vault->verify([&](kj::StringPtr t) { tables.push_back(t.cStr()); });
  EXPECT_EQ(r.associates, 3u);
  EXPECT_EQ(r.credentials, 15u);
  if (!support::testStoreIsPostgres()) {  // the page walk is LMDB's
    EXPECT_NE(std::find(tables.begin(), tables.end(), "credentials"), tables.end());
    EXPECT_NE(std::find(tables.begin(), tables.end(), "(free pages)"), tables.end());
  }
}

TEST_F(VaultVerifyTest, AnEditedCountIsAnIntegrityErrorInVerifyAndOnSave) {
  fillSome();
  editFirst("credential-counts", [](auto& v) { v[3] = 1; });  // 5 -> 1, MAC unchanged
  EXPECT_TRUE(contains(verifyError(), "integrity: a value in table credential-counts failed"))
      << verifyError();
  Credential c;
  c.publicValue = kj::str("new@example.test");
  c.isActive = true;
  auto caught = testing::catchRefusal(
      [&]() { return vault->runNow(vault->save(root(), 1, "imap", kj::mv(c))); });
  EXPECT_EQ(caught.code, ErrorCode::INTEGRITY);
}

TEST_F(VaultVerifyTest, ACountWithAValidFormatButTheWrongNumberIsFound) {
  fillSome();
  // A count copied from another associate: its MAC names the other key.
  auto t = table("credential-counts");
  env->write([&](store::WriteTxn& txn) {
    auto one = kj::heapArray(KJ_ASSERT_NONNULL(txn.get(t, be32(1))));
    txn.put(t, be32(2), one);
  });
  EXPECT_TRUE(contains(verifyError(), "credential-counts")) << verifyError();
}

TEST_F(VaultVerifyTest, IndexesThatDisagreeWithTheRecordsAreFound) {
  fillSome();
  // The name index of v0 pointing at v1: a login as v0 would be v1.
  auto t = table("associate-names");
  auto v0 = vault->indexHash("name", foldName(kj::StringPtr("v0")).asBytes());
  env->write([&](store::WriteTxn& txn) { txn.put(t, v0, be32(2)); });
  EXPECT_TRUE(contains(verifyError(), "associate-names")) << verifyError();
  auto caught = testing::catchRefusal([&]() { vault->findAssociateByName("v0"); });
  EXPECT_EQ(caught.code, ErrorCode::INTEGRITY);
}

TEST_F(VaultVerifyTest, ATamperedNextIdNeverHandsOutAnIdInUse) {
  fillSome();
  auto t = table("meta");
  auto key = kj::StringPtr("next-id").asBytes();
  // A well-formed value from an older state (next id 2) replayed: MAC valid, id in use.
  env->write([&](store::WriteTxn& txn) {
    auto stored = kj::heapArray(KJ_ASSERT_NONNULL(txn.get(t, key)));
    ASSERT_EQ(stored.size(), 20u);
    stored[3] = 2;
    txn.put(t, key, stored);
  });
  EXPECT_TRUE(contains(verifyError(), "meta")) << verifyError();
  auto caught = testing::catchRefusal([&]() { return tryAdd("intruder"); });
  EXPECT_EQ(caught.code, ErrorCode::INTEGRITY);
  EXPECT_EQ(
      vault->findAssociate(2).map([](auto& a) { return std::string(a.name.cStr()); }).orDefault(""),
      "v1");
}

TEST_F(VaultVerifyTest, AVersion1VaultIsMigratedOnOpen) {
  fillSome();
  // Make it look like release 1 wrote it: clear counts and next id, schema 1.
  auto counts = table("credential-counts");
  auto meta = table("meta");
  env->write([&](store::WriteTxn& txn) {
    for (uint32_t id = 1; id <= 3; ++id) txn.put(counts, be32(id), be32(5));
    txn.put(meta, kj::StringPtr("next-id").asBytes(), be32(4));
    env->setSchemaVersion(txn, 1);
  });
  reopen();
  EXPECT_EQ(vault->verify([](kj::StringPtr) {}).credentials, 15u);
  auto txn = env->read();
  EXPECT_EQ(KJ_ASSERT_NONNULL(txn.get(table("credential-counts"), be32(1))).size(), 20u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(txn.get(table("meta"), kj::StringPtr("next-id").asBytes())).size(),
            20u);
  EXPECT_EQ(add("v3").id, 4);
}

// A listing of every associate is capped in bytes as well as entries: characters of four
// bytes at the length limits make ~2 KiB per entry, and an uncapped answer could outgrow what
// credvaultctl reads. A narrower listing (one associate, one type) still answers.
TEST_F(VaultTest, ListAllStopsAtItsByteCapAndANarrowerListingAnswers) {
  // Core's bound, the same on every store (on PostgreSQL thousands of saves in one
  // transaction: see CredentialsPerAssociateLimit).
  auto a = add("wide-a");
  auto b = add("wide-b");
  std::string key = "\xF0\x9F\x94\x91";  // U+1F511, four bytes
  std::string wide, comment;
  for (size_t i = 0; i < MAX_PUBLIC_VALUE_CHARS - 8; i++) wide += key;
  for (size_t i = 0; i < MAX_COMMENT_CHARS; i++) comment += key;
  size_t perEntry = 1 + wide.size() + comment.size();
  size_t entries = MAX_LISTED_BYTES / perEntry + 2;
  ASSERT_LT(entries, 2 * MAX_CREDENTIALS_PER_ASSOCIATE);
  auto started = std::chrono::steady_clock::now();
  vault->environment().write([&](store::WriteTxn& txn) {
    for (size_t i = 0; i < entries; i++) {
      auto c = cred(std::to_string(i) + wide, std::string("s"), comment);
      vault->save(root(), i % 2 == 0 ? a.id : b.id, "t", kj::mv(c)).value()(txn).value();
    }
    return 0;
  });
  printf("[ timing ] %zu saves of two associates in one transaction on %s: %lld ms\n", entries,
         vault->environment().backendName().cStr(),
         (long long)std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - started)
             .count());
  EXPECT_VAULT_ERROR(vault->listAll(root(), ""), ErrorCode::LIMIT_EXCEEDED, "");
  EXPECT_EQ(vault->list(root(), a.id, "t").value().size(), (entries + 1) / 2);
  EXPECT_EQ(vault->listAll(root(), "other").value().size(), 0u);
}

}  // namespace
}  // namespace credvault::core
