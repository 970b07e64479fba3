// Tests for crypto/password.h: Argon2id hashes, verification and rehash detection. Uses the
// minimal parameters so the suite stays fast; one test checks the defaults are not minimal.

#include "crypto/password.h"

#include <gtest/gtest.h>
#include <string>

namespace credvault::crypto {
namespace {

Secret pw(const char* text) {
  return Secret::copyOf(kj::StringPtr(text));
}

TEST(Password, VerifyAcceptsTheHashedPassword) {
  auto hash = hashPassword(pw("correct horse"), minimalPasswordParams());
  EXPECT_TRUE(verifyPassword(hash, pw("correct horse")));
}

TEST(Password, VerifyRejectsAnyOtherPassword) {
  auto hash = hashPassword(pw("correct horse"), minimalPasswordParams());
  EXPECT_FALSE(verifyPassword(hash, pw("correct horsE")));
  EXPECT_FALSE(verifyPassword(hash, pw("correct hors")));
  EXPECT_FALSE(verifyPassword(hash, pw("correct horse ")));
  EXPECT_FALSE(verifyPassword(hash, pw("")));
}

TEST(Password, PasswordsWithEmbeddedNulAreComparedInFull) {
  kj::byte a[] = {'a', 0, 'b'};
  kj::byte b[] = {'a', 0, 'c'};
  auto hash = hashPassword(Secret::copyOf(kj::arrayPtr(a, 3)), minimalPasswordParams());
  EXPECT_TRUE(verifyPassword(hash, Secret::copyOf(kj::arrayPtr(a, 3))));
  EXPECT_FALSE(verifyPassword(hash, Secret::copyOf(kj::arrayPtr(b, 3))));
  EXPECT_FALSE(verifyPassword(hash, Secret::copyOf(kj::arrayPtr(a, 1))));
}

TEST(Password, EmptyPasswordHashesAndOnlyMatchesItself) {
  auto hash = hashPassword(Secret(), minimalPasswordParams());
  EXPECT_TRUE(verifyPassword(hash, Secret()));
  EXPECT_FALSE(verifyPassword(hash, pw("x")));
}

TEST(Password, HashIsASaltedArgon2idStringWithoutThePassword) {
  auto a = hashPassword(pw("hunter2hunter2"), minimalPasswordParams());
  auto b = hashPassword(pw("hunter2hunter2"), minimalPasswordParams());
  std::string text = a.cStr();
  EXPECT_EQ(text.rfind("$argon2id$", 0), 0u) << text;
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
  EXPECT_STRNE(a.cStr(), b.cStr()) << "two hashes of one password are equal: no salt";
  EXPECT_TRUE(verifyPassword(b, pw("hunter2hunter2")));
}

TEST(Password, VerifyRejectsMalformedHashes) {
  auto hash = hashPassword(pw("pw"), minimalPasswordParams());
  std::string truncated(hash.cStr(), hash.size() - 4);
  EXPECT_FALSE(verifyPassword("", pw("pw")));
  EXPECT_FALSE(verifyPassword("pw", pw("pw")));
  EXPECT_FALSE(verifyPassword("$argon2id$", pw("pw")));
  EXPECT_FALSE(verifyPassword(truncated.c_str(), pw("pw")));
}

TEST(Password, NeedsRehashOnlyWhenTheParametersChange) {
  auto params = minimalPasswordParams();
  auto hash = hashPassword(pw("pw"), params);
  EXPECT_FALSE(passwordNeedsRehash(hash, params));

  auto moreTime = params;
  moreTime.opsLimit += 1;
  EXPECT_TRUE(passwordNeedsRehash(hash, moreTime));
  auto moreMemory = params;
  moreMemory.memLimit *= 2;
  EXPECT_TRUE(passwordNeedsRehash(hash, moreMemory));
  EXPECT_TRUE(passwordNeedsRehash(hash, defaultPasswordParams()));

  // After rehashing with the new parameters, no further rehash is asked for.
  auto rehashed = hashPassword(pw("pw"), moreTime);
  EXPECT_FALSE(passwordNeedsRehash(rehashed, moreTime));
  EXPECT_TRUE(verifyPassword(rehashed, pw("pw")));
}

TEST(Password, NeedsRehashForAMalformedHash) {
  EXPECT_TRUE(passwordNeedsRehash("", minimalPasswordParams()));
  EXPECT_TRUE(passwordNeedsRehash("$2y$10$notargon", minimalPasswordParams()));
}

TEST(Password, DefaultParametersAreMuchCostlierThanTheTestOnes) {
  auto def = defaultPasswordParams();
  auto min = minimalPasswordParams();
  EXPECT_GE(def.opsLimit, 2u);
  EXPECT_GE(def.memLimit, size_t(64) << 20);
  EXPECT_GT(def.memLimit, min.memLimit);
}

}  // namespace
}  // namespace credvault::crypto
