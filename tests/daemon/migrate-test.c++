// Tests for daemon/migrate.h: a vault copied from one store to another keeps every credential
// (sealed as it was, opened with the same master key), a destination that holds a vault is
// refused unless replaced, and a wrong key writes nothing. LMDB to LMDB here; the PostgreSQL
// round trip is in tests/integration/multi-host-test.

#include "daemon/migrate.h"
#include "store/env.h"
#include "tests/support/vault-world.h"

#include <gtest/gtest.h>
#include <string>

namespace credvault::daemon {
namespace {

constexpr size_t CREDENTIALS = 40;

kj::String secretOf(size_t i) {
  return kj::str("migrated-Secret-", i, "-d41f");
}

// A source vault: two associates (one with a password), credentials with secrets, a ticket.
void fill(support::VaultWorld& w) {
  auto alice = w.add("alice", core::Kind::USER, false, uint32_t(1001), "alice-Pw-1");
  w.add("sys", core::Kind::SYSTEM);
  auto who = support::principalOf(alice);
  for (size_t i = 0; i < CREDENTIALS; ++i) {
    core::Credential c;
    c.publicValue = kj::str("user", i, "@example.com");
    c.secretValue = crypto::Secret::copyOf(secretOf(i));
    c.isActive = true;
    w.vault->runNow(w.vault->save(who, 0, "imap", kj::mv(c))).value();
  }
  w.auth->flushCache();
  w.vault->runNow(w.auth->issueTicket(alice));
}

// Every credential of alice's, opened from `store` under `key`.
void expectEveryCredential(store::Store& store, kj::ArrayPtr<const kj::byte> key) {
  core::Vault vault(store, crypto::Secret::copyOf(key), kj::systemPreciseCalendarClock());
  auto alice = KJ_ASSERT_NONNULL(vault.findAssociateByName("alice"));
  auto list = vault.get(support::principalOf(alice), 0, "imap").value();
  ASSERT_EQ(list.size(), CREDENTIALS);
  size_t found = 0;
  for (auto& c : list) {
    for (size_t i = 0; i < CREDENTIALS; ++i) {
      if (c.publicValue == kj::str("user", i, "@example.com")) {
        auto& secret = KJ_ASSERT_NONNULL(c.secretValue);
        EXPECT_EQ(kj::str(secret.reveal().asChars()), secretOf(i));
        ++found;
      }
    }
  }
  EXPECT_EQ(found, CREDENTIALS);
  KJ_ASSERT_NONNULL(vault.findAssociateByName("sys"));
}

TEST(Migrate, AnLmdbVaultCopiedToAnotherKeepsEveryCredential) {
  support::VaultWorld source;
  source.open();
  fill(source);
  source.close();
  store::Options readOnly;
  readOnly.readOnly = true;
  store::Environment from(source.dir.path(), readOnly);

  support::TempDir destDir("credvault-migrate");
  store::Environment to(destDir.path());
  auto report = migrateStore(from, to, crypto::Secret::copyOf(source.master.asPtr()), false);
  EXPECT_EQ(report.verified.credentials, CREDENTIALS);
  EXPECT_EQ(report.verified.associates, 2u);
  uint64_t tickets = 0, keys = 0;
  for (auto& t : report.tables) {
    if (t.name == "tickets") tickets = t.records;
    if (t.name == "keys") keys = t.records;
  }
  EXPECT_EQ(tickets, 1u);
  EXPECT_GE(keys, 2u);  // the index key and the data key, wrapped as they were
  expectEveryCredential(to, source.master);

  // The records are the same bytes (sealed as they are, not re-sealed).
  auto a = from.read();
  auto b = to.read();
  auto credentials = KJ_ASSERT_NONNULL(from.existingTable("credentials"));
  auto copied = KJ_ASSERT_NONNULL(to.existingTable("credentials"));
  size_t same = 0;
  a.scan(credentials, nullptr, [&](auto key, auto value) {
    auto other = KJ_ASSERT_NONNULL(b.get(copied, key));
    EXPECT_TRUE(other == value);
    ++same;
    return true;
  });
  EXPECT_EQ(same, CREDENTIALS);
}

TEST(Migrate, ADestinationThatHoldsAVaultIsRefusedUnlessReplaced) {
  support::VaultWorld source;
  source.open();
  fill(source);
  support::VaultWorld other;  // another vault, another key, where the copy should go
  other.open();
  other.add("someone-else");
  other.close();
  store::Environment to(other.dir.path());
  auto key = crypto::Secret::copyOf(source.master.asPtr());
  try {
    migrateStore(*source.env, to, key, false);
    ADD_FAILURE() << "a non-empty destination was overwritten";
  } catch (MigrationRefused& r) {
    EXPECT_NE(std::string(r.message.cStr()).find("already holds a vault"), std::string::npos)
        << r.message.cStr();
  }
  {
    // Unchanged: its own key still opens it, with its own associate.
    core::Vault still(to, crypto::Secret::copyOf(other.master.asPtr()),
                      kj::systemPreciseCalendarClock());
    EXPECT_TRUE(still.findAssociateByName("someone-else") != nullptr);
  }
  auto report = migrateStore(*source.env, to, key, true);
  EXPECT_EQ(report.verified.credentials, CREDENTIALS);
  expectEveryCredential(to, source.master);
  core::Vault replaced(to, crypto::Secret::copyOf(source.master.asPtr()),
                       kj::systemPreciseCalendarClock());
  EXPECT_TRUE(replaced.findAssociateByName("someone-else") == nullptr);
}

TEST(Migrate, AWrongKeyIsRefusedBeforeAnythingIsWritten) {
  support::VaultWorld source;
  source.open();
  fill(source);
  support::TempDir destDir("credvault-migrate");
  store::Environment to(destDir.path());
  try {
    migrateStore(*source.env, to, crypto::Secret::random(crypto::KEY_BYTES), false);
    ADD_FAILURE() << "a wrong key was accepted";
  } catch (MigrationRefused& r) {
    EXPECT_NE(std::string(r.message.cStr()).find("master key does not open"), std::string::npos);
  }
  EXPECT_TRUE(to.existingTable("credentials") == nullptr ||
              to.read().count(KJ_ASSERT_NONNULL(to.existingTable("credentials"))) == 0);
}

}  // namespace
}  // namespace credvault::daemon
