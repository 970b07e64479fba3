// Opens tests/fixtures/vault-schema2 (written by the schema-2 release, positional credential
// records) with this release: read-only as `credvaultd --verify` does, then for writing, which
// upgrades it to schema 3 in one transaction; every credential, secret, password, ticket and
// token reads back exactly before and after, and again after a restart. No root needed.

#include "core/auth.h"
#include "core/credential-record.h"
#include "core/vault.h"
#include "crypto/password.h"
#include "test-util.h"
#include "tests/support/vault-world.h"

#include <kj/encoding.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace credvault::core {
namespace {

using testing::FakeClock;
using testing::TempDir;

std::string fixture(const char* name) {
  return std::string(CREDVAULT_FIXTURES) + "/vault-schema2/" + name;
}

std::string slurp(const std::string& path) {
  auto text = support::readFile(kj::StringPtr(path.c_str()), "<missing>");
  EXPECT_NE(text, "<missing>") << path;
  return text;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// "token cvt_…" lines of issued.txt.
std::map<std::string, std::string> issued() {
  std::map<std::string, std::string> out;
  std::istringstream in(slurp(fixture("issued.txt")));
  std::string name, value;
  while (in >> name >> value) out[name] = value;
  return out;
}

// associate|type|public|secret|comment|from|to|active, as the schema-2 release wrote them
// (tests/fixtures/make-vault-schema2.c++).
const std::vector<std::string> EXPECTED = {
    "alice|imap|alice@example.com|imap-secret-1|work mail|638396640000000000|640577376000000000|1",
    "alice|imap|alice@home.example|||0|0|1",
    "alice|ssh|alice@build-01|Zürich ☃ pass|Zürich office ☃|0|640577376000000000|0",
    "bob|api|bob-key|0123456789012345678901234567890123456789012345678901234567890123456789|"
    "exactly 70 characters of secret|0|0|1",
    "bob|imap|bob@example.com|bob-imap||638396640000000000|0|1",
    "svc-backup|backup|s3://bucket|AKIA-fixture-secret|nightly|0|0|1",
};

constexpr auto root = &support::rootPrincipal;

class UpgradeTest : public ::testing::Test {
 protected:
  TempDir dir;
  FakeClock clock;  // the generator's clock: its ticket is still valid
  std::unique_ptr<crypto::Secret> masterKey;

  void SetUp() override {
    auto key = trim(slurp(fixture("master.key")));
    auto raw = kj::decodeBase64(kj::StringPtr(key.c_str()));
    ASSERT_FALSE(raw.hadErrors);
    masterKey = std::make_unique<crypto::Secret>(crypto::Secret::copyOf(raw));
    // A copy: the checked-in file stays as the old release wrote it.
    auto data = slurp(fixture("data.mdb"));
    ASSERT_GT(data.size(), 0u);
    support::writeFile(dir / "data.mdb", kj::StringPtr(data.c_str(), data.size()));
  }

  std::unique_ptr<Vault> openVault(store::Environment& env) {
    VaultOptions options;
    options.passwordParams = crypto::minimalPasswordParams();
    return std::make_unique<Vault>(env, crypto::Secret::copyOf(masterKey->reveal()), clock,
                                   options);
  }

  // Every credential with its secret, through the system principal's listing and Get.
  std::vector<std::string> everything(Vault& vault) {
    std::vector<std::string> out;
    for (auto& a : vault.listAssociates(root()).value()) {
      std::map<std::string, bool> types;
      for (auto& e : vault.list(root(), a.id, "").value()) types[e.type.cStr()] = true;
      for (auto& t : types) {
        for (auto& c : vault.get(root(), a.id, t.first.c_str()).value()) {
          auto& s = KJ_ASSERT_NONNULL(c.secretValue);
          out.push_back(std::string(a.name.cStr()) + "|" + t.first + "|" + c.publicValue.cStr() +
                        "|" + std::string(s.revealChars().begin(), s.size()) + "|" +
                        c.comment.cStr() + "|" + std::to_string(c.validFrom) + "|" +
                        std::to_string(c.validTo) + "|" + (c.isActive ? "1" : "0"));
        }
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // How many credential records are in each layout.
  std::pair<size_t, size_t> layouts(Vault& vault, store::Environment& env) {
    size_t current = 0, old = 0;
    auto table = env.table("credentials");
    auto txn = env.read();
    txn.scan(table, nullptr, [&](auto key, auto value) {
      auto plain = vault.openValue("credential", key, value);
      (isCurrentCredentialRecord(plain.reveal()) ? current : old)++;
      return true;
    });
    return {current, old};
  }

  void expectLoginsWork(Vault& vault) {
    Authenticator auth(vault, clock, {});
    auto names = issued();
    EXPECT_TRUE(auth.validateToken(names["token"].c_str()) != nullptr);
    KJ_IF_MAYBE(a, auth.validateTicket(names["ticket"].c_str())) {
      EXPECT_EQ(a->name, "alice");
    } else {
      ADD_FAILURE() << "the schema-2 ticket no longer opens";
    }
    EXPECT_TRUE(vault.verifyPassword("alice", crypto::Secret::copyOf("alice-password"_kj)) !=
                nullptr);
    EXPECT_TRUE(vault.verifyPassword("alice", crypto::Secret::copyOf("wrong"_kj)) == nullptr);
  }
};

TEST_F(UpgradeTest, ReadOnlyViewReadsTheOldLayoutWithoutChangingIt) {
  store::Options options;
  options.readOnly = true;
  store::Environment env(dir.path(), options);
  auto vault = openVault(env);
  EXPECT_EQ(everything(*vault), EXPECTED);
  EXPECT_EQ(layouts(*vault, env), std::make_pair(size_t(0), EXPECTED.size()));
  auto report = vault->verify([](kj::StringPtr) {});
  EXPECT_EQ(report.credentials, EXPECTED.size());
  EXPECT_EQ(report.associates, 3u);
}

TEST_F(UpgradeTest, OpeningForWritingUpgradesEveryRecordAndKeepsEverything) {
  {
    store::Environment env(dir.path());
    auto vault = openVault(env);
    EXPECT_EQ(env.checkSchemaOnly(Vault::SCHEMA_VERSION), Vault::SCHEMA_VERSION);
    EXPECT_EQ(layouts(*vault, env), std::make_pair(EXPECTED.size(), size_t(0)));
    EXPECT_EQ(everything(*vault), EXPECTED);
    expectLoginsWork(*vault);
    EXPECT_EQ(vault->verify([](kj::StringPtr) {}).credentials, EXPECTED.size());
    EXPECT_EQ(vault->counts().credentials, EXPECTED.size());

    // The upgraded vault works as a new one: saving without a secret keeps the stored one.
    auto alice = KJ_ASSERT_NONNULL(vault->findAssociateByName("alice"));
    Credential c;
    c.publicValue = kj::str("alice@example.com");
    c.comment = kj::str("changed");
    vault->runNow(vault->save(root(), alice.id, "imap", kj::mv(c))).value();
    auto list = vault->get(root(), alice.id, "imap").value();
    bool found = false;
    for (auto& e : list) {
      if (e.publicValue == "alice@example.com") {
        found = true;
        EXPECT_EQ(e.comment, "changed");
        EXPECT_TRUE(
            KJ_ASSERT_NONNULL(e.secretValue).equals(crypto::Secret::copyOf("imap-secret-1"_kj)));
      }
    }
    EXPECT_TRUE(found);
  }
  // After a restart: nothing left to upgrade, everything still there.
  store::Environment env(dir.path());
  auto vault = openVault(env);
  EXPECT_EQ(layouts(*vault, env).second, 0u);
  auto all = everything(*vault);
  EXPECT_EQ(all.size(), EXPECTED.size());
  expectLoginsWork(*vault);
}

TEST_F(UpgradeTest, TheWrongMasterKeyStillRefusesTheOldVault) {
  masterKey = std::make_unique<crypto::Secret>(crypto::Secret::random(32));
  store::Environment env(dir.path());
  EXPECT_ANY_THROW(openVault(env));
  // Refused before anything was written: still the old schema.
  EXPECT_EQ(env.checkSchemaOnly(Vault::SCHEMA_VERSION), 2u);
}

}  // namespace
}  // namespace credvault::core
