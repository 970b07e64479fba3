// Tests for crypto/aead.h: sealing records, and refusing everything that was not sealed
// under this key and this associated data.

#include "crypto/aead.h"

#include <gtest/gtest.h>
#include <kj/exception.h>
#include <string.h>
#include <string>

namespace credvault::crypto {
namespace {

kj::ArrayPtr<const kj::byte> bytesOf(const char* text) {
  return kj::StringPtr(text).asBytes();
}

bool contains(kj::ArrayPtr<const kj::byte> haystack, kj::ArrayPtr<const kj::byte> needle) {
  if (needle.size() > haystack.size()) return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); i++) {
    if (memcmp(haystack.begin() + i, needle.begin(), needle.size()) == 0) return true;
  }
  return false;
}

TEST(Seal, RoundTripsThroughOpen) {
  auto key = Secret::random(KEY_BYTES);
  auto sealed = seal(key, bytesOf("imap password"), bytesOf("v1|key 1|assoc 7|imap|bob"));
  KJ_IF_MAYBE(plain, open(key, sealed, bytesOf("v1|key 1|assoc 7|imap|bob"))) {
    EXPECT_TRUE(plain->equals(bytesOf("imap password")));
  } else {
    FAIL() << "a freshly sealed value did not open";
  }
}

TEST(Seal, OutputIsNoncePlusCiphertextPlusTagAndHidesThePlaintext) {
  auto key = Secret::random(KEY_BYTES);
  auto plain = bytesOf("a rather recognisable secret value");
  auto sealed = seal(key, plain, nullptr);
  EXPECT_EQ(sealed.size(), plain.size() + SEAL_OVERHEAD);
  EXPECT_FALSE(contains(sealed, plain));
  EXPECT_FALSE(contains(sealed, bytesOf("recognisable")));
}

TEST(Seal, SealingTwiceGivesDifferentOutputs) {
  // A random nonce per seal: equal secrets must not be recognisable as equal on disk.
  auto key = Secret::random(KEY_BYTES);
  auto a = seal(key, bytesOf("same"), bytesOf("ad"));
  auto b = seal(key, bytesOf("same"), bytesOf("ad"));
  ASSERT_EQ(a.size(), b.size());
  EXPECT_NE(memcmp(a.begin(), b.begin(), NONCE_BYTES), 0);
  EXPECT_NE(memcmp(a.begin(), b.begin(), a.size()), 0);
}

TEST(Seal, EmptyPlaintextRoundTrips) {
  auto key = Secret::random(KEY_BYTES);
  auto sealed = seal(key, nullptr, bytesOf("ad"));
  EXPECT_EQ(sealed.size(), SEAL_OVERHEAD);
  KJ_IF_MAYBE(plain, open(key, sealed, bytesOf("ad"))) {
    EXPECT_TRUE(plain->empty());
  } else {
    FAIL() << "empty plaintext did not open";
  }
  EXPECT_TRUE(open(key, sealed, bytesOf("other")) == nullptr);
}

TEST(Seal, LargePlaintextRoundTrips) {
  auto key = Secret::random(KEY_BYTES);
  auto big = kj::heapArray<kj::byte>(1 << 20);
  for (size_t i = 0; i < big.size(); i++) big[i] = kj::byte(i * 31 + 7);
  auto sealed = seal(key, big, bytesOf("ad"));
  KJ_IF_MAYBE(plain, open(key, sealed, bytesOf("ad"))) {
    EXPECT_TRUE(plain->equals(big));
  } else {
    FAIL() << "large plaintext did not open";
  }
}

TEST(Seal, RefusesAKeyOfTheWrongSize) {
  auto shortKey = Secret::random(KEY_BYTES - 1);
  EXPECT_THROW(seal(shortKey, bytesOf("x"), nullptr), kj::Exception);
  auto key = Secret::random(KEY_BYTES);
  auto sealed = seal(key, bytesOf("x"), nullptr);
  EXPECT_THROW(open(Secret::random(KEY_BYTES + 1), sealed, nullptr), kj::Exception);
}

TEST(Open, FailsWithTheWrongKey) {
  auto key = Secret::random(KEY_BYTES);
  auto other = Secret::random(KEY_BYTES);
  auto sealed = seal(key, bytesOf("secret"), bytesOf("ad"));
  EXPECT_TRUE(open(other, sealed, bytesOf("ad")) == nullptr);
}

TEST(Open, FailsWithDifferentAssociatedData) {
  // A record moved to another associate, type or public value must not open.
  auto key = Secret::random(KEY_BYTES);
  auto sealed = seal(key, bytesOf("secret"), bytesOf("assoc 7|imap|bob"));
  EXPECT_TRUE(open(key, sealed, bytesOf("assoc 8|imap|bob")) == nullptr);
  EXPECT_TRUE(open(key, sealed, bytesOf("assoc 7|smtp|bob")) == nullptr);
  EXPECT_TRUE(open(key, sealed, bytesOf("assoc 7|imap|bo")) == nullptr);
  EXPECT_TRUE(open(key, sealed, bytesOf("assoc 7|imap|bob ")) == nullptr);
  EXPECT_TRUE(open(key, sealed, nullptr) == nullptr);
  EXPECT_TRUE(open(key, sealed, bytesOf("assoc 7|imap|bob")) != nullptr);
}

TEST(Open, FailsWhenAnyByteIsFlipped) {
  // Every position: nonce, ciphertext and tag.
  auto key = Secret::random(KEY_BYTES);
  auto sealed = seal(key, bytesOf("sixteen byte msg"), bytesOf("ad"));
  for (size_t i = 0; i < sealed.size(); i++) {
    for (kj::byte bit : {kj::byte(0x01), kj::byte(0x80)}) {
      auto damaged = kj::heapArray<kj::byte>(sealed.asPtr());
      damaged[i] ^= bit;
      EXPECT_TRUE(open(key, damaged, bytesOf("ad")) == nullptr)
          << "opened with byte " << i << " xor " << int(bit);
    }
  }
}

TEST(Open, FailsOnTruncatedInput) {
  auto key = Secret::random(KEY_BYTES);
  auto sealed = seal(key, bytesOf("some secret"), bytesOf("ad"));
  for (size_t len = 0; len < sealed.size(); len++) {
    EXPECT_TRUE(open(key, sealed.slice(0, len), bytesOf("ad")) == nullptr)
        << "opened a prefix of " << len << " bytes";
    EXPECT_TRUE(open(key, sealed.slice(sealed.size() - len, sealed.size()), bytesOf("ad")) ==
                nullptr)
        << "opened a suffix of " << len << " bytes";
  }
}

TEST(Open, FailsWithAnAppendedByte) {
  auto key = Secret::random(KEY_BYTES);
  auto sealed = seal(key, bytesOf("some secret"), bytesOf("ad"));
  auto longer = kj::heapArray<kj::byte>(sealed.size() + 1);
  memcpy(longer.begin(), sealed.begin(), sealed.size());
  longer[sealed.size()] = 0;
  EXPECT_TRUE(open(key, longer, bytesOf("ad")) == nullptr);
}

TEST(Open, FailsOnAllZeroInputOfEveryShortLength) {
  auto key = Secret::random(KEY_BYTES);
  for (size_t len = 0; len <= SEAL_OVERHEAD + 8; len++) {
    auto zeros = kj::heapArray<kj::byte>(len);
    memset(zeros.begin(), 0, len);
    EXPECT_TRUE(open(key, zeros, nullptr) == nullptr) << len;
  }
}

TEST(KeyedHash, IsDeterministicPerKeyAndDiffersAcrossKeys) {
  auto key = Secret::random(KEY_BYTES);
  auto a = keyedHash(key, bytesOf("7T:ticket"));
  auto b = keyedHash(key, bytesOf("7T:ticket"));
  auto c = keyedHash(key, bytesOf("7T:ticket2"));
  auto d = keyedHash(Secret::random(KEY_BYTES), bytesOf("7T:ticket"));
  ASSERT_EQ(a.size(), MAC_BYTES);
  EXPECT_EQ(memcmp(a.begin(), b.begin(), MAC_BYTES), 0);
  EXPECT_NE(memcmp(a.begin(), c.begin(), MAC_BYTES), 0);
  EXPECT_NE(memcmp(a.begin(), d.begin(), MAC_BYTES), 0);
}

TEST(KeyedHash, RefusesAKeyThatIsTooShort) {
  EXPECT_THROW(keyedHash(Secret::random(8), bytesOf("x")), kj::Exception);
}

TEST(DeriveKey, IsDeterministicAndSeparatesIdsAndContexts) {
  auto master = Secret::random(KEY_BYTES);
  auto a = deriveKey(master, 1, "tickets_");
  auto b = deriveKey(master, 1, "tickets_");
  auto c = deriveKey(master, 2, "tickets_");
  auto d = deriveKey(master, 1, "indexkey");
  ASSERT_EQ(a.size(), KEY_BYTES);
  EXPECT_TRUE(a.equals(b));
  EXPECT_FALSE(a.equals(c));
  EXPECT_FALSE(a.equals(d));
  EXPECT_FALSE(a.equals(master));
}

}  // namespace
}  // namespace credvault::crypto
