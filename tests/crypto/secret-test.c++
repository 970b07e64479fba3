// Tests for crypto/secret.h: the move-only secret buffer, its redaction and comparison.

#include "crypto/secret.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/exception.h>
#include <string.h>
#include <string>

namespace credvault::crypto {
namespace {

kj::ArrayPtr<const kj::byte> bytesOf(const char* text) {
  return kj::StringPtr(text).asBytes();
}

TEST(Secret, DefaultConstructedIsEmpty) {
  Secret s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.reveal().size(), 0u);
}

TEST(Secret, SizedConstructorIsZeroFilled) {
  Secret s(48);
  ASSERT_EQ(s.size(), 48u);
  EXPECT_FALSE(s.empty());
  for (kj::byte b : s.reveal()) EXPECT_EQ(b, 0);
}

TEST(Secret, CopyOfHoldsTheSameBytesInItsOwnMemory) {
  kj::byte source[] = {1, 2, 3, 4, 5};
  auto s = Secret::copyOf(kj::arrayPtr(source, sizeof(source)));
  source[0] = 99;  // the secret is a copy, not a view
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s.reveal()[0], 1);
  EXPECT_EQ(s.reveal()[4], 5);
  EXPECT_NE(s.reveal().begin(), source);
}

TEST(Secret, CopyOfTextHoldsTheCharactersWithoutTerminator) {
  auto s = Secret::copyOf("hunter2"_kj);
  ASSERT_EQ(s.size(), 7u);
  EXPECT_EQ(std::string(s.revealChars().begin(), s.revealChars().size()), "hunter2");
}

TEST(Secret, RevealMutWritesThrough) {
  Secret s(3);
  s.revealMut()[1] = 0x42;
  EXPECT_EQ(s.reveal()[1], 0x42);
}

TEST(Secret, MoveConstructionTransfersBytesAndEmptiesSource) {
  auto a = Secret::copyOf("s3cret"_kj);
  const kj::byte* where = a.reveal().begin();
  Secret b(kj::mv(a));
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.reveal().begin(), nullptr);
  ASSERT_EQ(b.size(), 6u);
  EXPECT_EQ(b.reveal().begin(), where);  // moved, not copied: no second copy to wipe
  EXPECT_TRUE(b.equals(bytesOf("s3cret")));
}

TEST(Secret, MoveAssignmentReplacesOldValueAndEmptiesSource) {
  auto a = Secret::copyOf("new"_kj);
  auto b = Secret::copyOf("old value"_kj);
  b = kj::mv(a);
  EXPECT_TRUE(a.empty());
  EXPECT_TRUE(b.equals(bytesOf("new")));
}

TEST(Secret, SelfMoveAssignmentKeepsTheValue) {
  auto a = Secret::copyOf("keep me"_kj);
  Secret& alias = a;
  a = kj::mv(alias);
  EXPECT_TRUE(a.equals(bytesOf("keep me")));
}

TEST(Secret, MovedFromSecretCanBeReassigned) {
  auto a = Secret::copyOf("one"_kj);
  Secret b(kj::mv(a));
  a = Secret::copyOf("two"_kj);
  EXPECT_TRUE(a.equals(bytesOf("two")));
  EXPECT_TRUE(b.equals(bytesOf("one")));
}

TEST(Secret, RandomSecretsHaveTheRequestedSizeAndDiffer) {
  auto a = Secret::random(32);
  auto b = Secret::random(32);
  ASSERT_EQ(a.size(), 32u);
  ASSERT_EQ(b.size(), 32u);
  EXPECT_FALSE(a.equals(b));
  EXPECT_FALSE(a.equals(Secret(32)));  // not all zero
  EXPECT_TRUE(Secret::random(0).empty());
}

TEST(Secret, PrintsRedactedThroughKjStr) {
  auto s = Secret::copyOf("hunter2"_kj);
  EXPECT_STREQ(kj::str(s).cStr(), "<redacted>");
  auto line = kj::str("password=", s, ";");
  EXPECT_STREQ(line.cStr(), "password=<redacted>;");
  EXPECT_EQ(std::string(line.cStr()).find("hunter2"), std::string::npos);
}

TEST(Secret, IsRedactedInKjExceptionMessages) {
  // KJ sends exception text to RPC peers and logs; a secret passed by mistake must not leak.
  auto s = Secret::copyOf("hunter2"_kj);
  auto failure = kj::runCatchingExceptions([&]() { KJ_FAIL_REQUIRE("bad input", s); });
  KJ_IF_MAYBE(e, failure) {
    std::string text = e->getDescription().cStr();
    EXPECT_NE(text.find("<redacted>"), std::string::npos) << text;
    EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
  } else {
    ADD_FAILURE() << "KJ_FAIL_REQUIRE did not throw";
  }
}

TEST(Secret, EqualsComparesContentsAndLength) {
  auto a = Secret::copyOf("abcdef"_kj);
  EXPECT_TRUE(a.equals(Secret::copyOf("abcdef"_kj)));
  EXPECT_FALSE(a.equals(Secret::copyOf("abcdeg"_kj)));
  EXPECT_FALSE(a.equals(Secret::copyOf("abcde"_kj)));    // prefix
  EXPECT_FALSE(a.equals(Secret::copyOf("abcdefg"_kj)));  // extension
  EXPECT_FALSE(a.equals(Secret()));
  EXPECT_TRUE(Secret().equals(Secret()));
  EXPECT_TRUE(a.equals(bytesOf("abcdef")));
  EXPECT_FALSE(a.equals(bytesOf("Abcdef")));
}

TEST(ConstantTimeEquals, RequiresSameLengthAndBytes) {
  EXPECT_TRUE(constantTimeEquals(bytesOf("token"), bytesOf("token")));
  EXPECT_FALSE(constantTimeEquals(bytesOf("token"), bytesOf("tokem")));
  EXPECT_FALSE(constantTimeEquals(bytesOf("token"), bytesOf("tok")));
  EXPECT_FALSE(constantTimeEquals(bytesOf(""), bytesOf("x")));
  EXPECT_TRUE(constantTimeEquals(bytesOf(""), bytesOf("")));
}

TEST(Wipe, ZeroesByteBuffers) {
  kj::byte buf[16];
  memset(buf, 0xAB, sizeof(buf));
  wipe(kj::arrayPtr(buf, sizeof(buf)));
  for (kj::byte b : buf) EXPECT_EQ(b, 0);
}

TEST(Wipe, ZeroesCharBuffers) {
  char buf[] = "password";
  wipe(kj::arrayPtr(buf, sizeof(buf) - 1));
  for (size_t i = 0; i + 1 < sizeof(buf); i++) EXPECT_EQ(buf[i], 0);
}

TEST(Wipe, AcceptsEmptyBuffers) {
  wipe(kj::ArrayPtr<kj::byte>());
  wipe(kj::ArrayPtr<char>());
}

}  // namespace
}  // namespace credvault::crypto
