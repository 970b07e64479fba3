// Tests for crypto/keyring.h: data keys wrapped under a master key, rotation and re-wrapping.

#include "crypto/keyring.h"
#include "crypto/aead.h"

#include <gtest/gtest.h>
#include <kj/encoding.h>
#include <kj/exception.h>
#include <string.h>
#include <string>

namespace credvault::crypto {
namespace {

Secret copy(const Secret& s) {
  return Secret::copyOf(s.reveal());
}

const Secret& found(const Keyring& ring, uint32_t id) {
  KJ_IF_MAYBE(k, ring.find(id)) { return *k; }
  ADD_FAILURE() << "key " << id << " is not in the keyring";
  static const Secret none;
  return none;
}

TEST(Keyring, KeyCreatedInOneKeyringLoadsInAnotherWithTheSameMasterKey) {
  auto master = Secret::random(KEY_BYTES);
  Keyring first(copy(master));
  auto wrapped = first.create(1);

  Keyring second(copy(master));
  EXPECT_TRUE(second.find(1) == nullptr);
  ASSERT_TRUE(second.load(1, wrapped));
  EXPECT_EQ(found(second, 1).size(), KEY_BYTES);
  EXPECT_TRUE(found(second, 1).equals(found(first, 1)));
}

TEST(Keyring, WrappedKeyDoesNotRevealTheKey) {
  Keyring ring(Secret::random(KEY_BYTES));
  auto wrapped = ring.create(1);
  auto key = found(ring, 1).reveal();
  EXPECT_EQ(wrapped.size(), KEY_BYTES + SEAL_OVERHEAD);
  for (size_t i = 0; i + 8 <= wrapped.size(); i++) {
    EXPECT_NE(memcmp(wrapped.begin() + i, key.begin(), 8), 0);
  }
}

TEST(Keyring, DataKeysSealAndOpenRecordsAcrossRestarts) {
  auto master = Secret::random(KEY_BYTES);
  Keyring before(copy(master));
  auto wrapped = before.create(1);
  auto sealed = seal(found(before, 1), kj::StringPtr("pw").asBytes(), nullptr);

  Keyring after(copy(master));
  ASSERT_TRUE(after.load(1, wrapped));
  KJ_IF_MAYBE(plain, open(found(after, 1), sealed, nullptr)) {
    EXPECT_TRUE(plain->equals(kj::StringPtr("pw").asBytes()));
  } else {
    FAIL() << "record did not open after reloading its key";
  }
}

TEST(Keyring, LoadWithTheWrongMasterKeyReturnsFalseAndChangesNothing) {
  Keyring writer(Secret::random(KEY_BYTES));
  auto wrapped1 = writer.create(1);
  auto wrapped2 = writer.create(2);

  Keyring reader(Secret::random(KEY_BYTES));
  auto mine = reader.create(1);
  const kj::byte* before = found(reader, 1).reveal().begin();
  auto beforeCopy = copy(found(reader, 1));

  EXPECT_FALSE(reader.load(1, wrapped1));
  EXPECT_FALSE(reader.load(2, wrapped2));
  EXPECT_TRUE(reader.find(2) == nullptr);
  EXPECT_EQ(found(reader, 1).reveal().begin(), before);
  EXPECT_TRUE(found(reader, 1).equals(beforeCopy));
  EXPECT_EQ(reader.currentId(), 1u);
}

TEST(Keyring, LoadRefusesAWrappedKeyStoredUnderAnotherId) {
  // The id is bound into the wrapping: swapping key records in the database is detected.
  auto master = Secret::random(KEY_BYTES);
  Keyring writer(copy(master));
  auto wrapped = writer.create(1);

  Keyring reader(copy(master));
  EXPECT_FALSE(reader.load(2, wrapped));
  EXPECT_FALSE(reader.load(INDEX_KEY_ID, wrapped));
  EXPECT_TRUE(reader.find(2) == nullptr);
  EXPECT_EQ(reader.currentId(), 0u);
}

TEST(Keyring, LoadRefusesDamagedOrTruncatedRecords) {
  auto master = Secret::random(KEY_BYTES);
  Keyring writer(copy(master));
  auto wrapped = writer.create(1);

  Keyring reader(copy(master));
  auto damaged = kj::heapArray<kj::byte>(wrapped.asPtr());
  damaged[damaged.size() / 2] ^= 1;
  EXPECT_FALSE(reader.load(1, damaged));
  EXPECT_FALSE(reader.load(1, wrapped.slice(0, wrapped.size() - 1)));
  EXPECT_FALSE(reader.load(1, nullptr));
  EXPECT_TRUE(reader.find(1) == nullptr);
}

// The associated data Keyring binds a wrapped key to (label + big-endian id), rebuilt here
// to forge records that open correctly but do not hold a key.
kj::Array<kj::byte> wrapAdFor(uint32_t id) {
  auto ad = kj::heapArray<kj::byte>(20);
  memcpy(ad.begin(), "credvault-key-v1", 16);
  ad[16] = id >> 24;
  ad[17] = id >> 16;
  ad[18] = id >> 8;
  ad[19] = id;
  return ad;
}

TEST(Keyring, LoadRefusesAWrappedValueThatIsNotA32ByteKey) {
  auto master = Secret::random(KEY_BYTES);
  Keyring reader(copy(master));
  // Control: a 32-byte key sealed this way is accepted, so the forgery below is well-formed.
  ASSERT_TRUE(reader.load(1, seal(master, Secret::random(KEY_BYTES).reveal(), wrapAdFor(1))));
  EXPECT_FALSE(reader.load(2, seal(master, Secret::random(16).reveal(), wrapAdFor(2))));
  EXPECT_FALSE(reader.load(2, seal(master, nullptr, wrapAdFor(2))));
  EXPECT_TRUE(reader.find(2) == nullptr);
  EXPECT_EQ(reader.currentId(), 1u);
}

TEST(Keyring, CurrentIdIsTheNewestDataKey) {
  Keyring ring(Secret::random(KEY_BYTES));
  EXPECT_EQ(ring.currentId(), 0u);
  ring.create(INDEX_KEY_ID);
  EXPECT_EQ(ring.currentId(), 0u);  // the index key is not a data key
  ring.create(1);
  EXPECT_EQ(ring.currentId(), 1u);
  ring.create(3);
  EXPECT_EQ(ring.currentId(), 3u);
  ring.create(2);  // an older id added later does not become current
  EXPECT_EQ(ring.currentId(), 3u);
}

TEST(Keyring, CurrentIdAfterLoadingInAnyOrderIsTheHighest) {
  auto master = Secret::random(KEY_BYTES);
  Keyring writer(copy(master));
  auto w0 = writer.create(INDEX_KEY_ID);
  auto w1 = writer.create(1);
  auto w2 = writer.create(2);
  auto w7 = writer.create(7);

  Keyring reader(copy(master));
  ASSERT_TRUE(reader.load(7, w7));
  ASSERT_TRUE(reader.load(1, w1));
  ASSERT_TRUE(reader.load(INDEX_KEY_ID, w0));
  ASSERT_TRUE(reader.load(2, w2));
  EXPECT_EQ(reader.currentId(), 7u);
}

TEST(Keyring, ForgetDropsAKeyAndCurrentIdFallsBackToTheNewestLeft) {
  Keyring ring(Secret::random(KEY_BYTES));
  ring.create(INDEX_KEY_ID);
  ring.create(1);
  ring.create(2);
  ring.forget(2);  // e.g. its wrapped form could not be stored
  EXPECT_TRUE(ring.find(2) == nullptr);
  EXPECT_EQ(ring.currentId(), 1u);
  ring.forget(INDEX_KEY_ID);
  EXPECT_EQ(ring.currentId(), 1u);
  EXPECT_THROW(ring.indexKey(), kj::Exception);
  ring.forget(1);
  EXPECT_EQ(ring.currentId(), 0u);
  ring.create(2);  // the id can be used again
  EXPECT_EQ(ring.currentId(), 2u);
}

TEST(Keyring, CreateRefusesAnIdInUse) {
  Keyring ring(Secret::random(KEY_BYTES));
  ring.create(1);
  auto before = copy(found(ring, 1));
  EXPECT_THROW(ring.create(1), kj::Exception);
  EXPECT_TRUE(found(ring, 1).equals(before));
}

TEST(Keyring, EachCreatedKeyIsDifferent) {
  Keyring ring(Secret::random(KEY_BYTES));
  ring.create(1);
  ring.create(2);
  EXPECT_FALSE(found(ring, 1).equals(found(ring, 2)));
}

TEST(Keyring, IndexKeyIsKeyZero) {
  Keyring ring(Secret::random(KEY_BYTES));
  EXPECT_THROW(ring.indexKey(), kj::Exception);
  ring.create(1);
  EXPECT_THROW(ring.indexKey(), kj::Exception);
  ring.create(INDEX_KEY_ID);
  EXPECT_TRUE(ring.indexKey().equals(found(ring, INDEX_KEY_ID)));
  EXPECT_FALSE(ring.indexKey().equals(found(ring, 1)));
}

TEST(Keyring, RefusesAMasterKeyOfTheWrongSize) {
  EXPECT_THROW(Keyring{Secret::random(16)}, kj::Exception);
  EXPECT_THROW(Keyring{Secret()}, kj::Exception);
  Keyring ring(Secret::random(KEY_BYTES));
  ring.create(1);
  EXPECT_THROW(ring.wrapUnder(1, Secret::random(31)), kj::Exception);
  EXPECT_THROW(ring.replaceMasterKey(Secret::random(33)), kj::Exception);
}

TEST(Keyring, WrapUnderRefusesAnUnknownId) {
  Keyring ring(Secret::random(KEY_BYTES));
  EXPECT_THROW(ring.wrapUnder(5, Secret::random(KEY_BYTES)), kj::Exception);
}

TEST(Keyring, RewrapUnderANewMasterKeyThenReplaceIt) {
  auto oldMaster = Secret::random(KEY_BYTES);
  auto newMaster = Secret::random(KEY_BYTES);
  Keyring ring(copy(oldMaster));
  auto old0 = ring.create(INDEX_KEY_ID);
  auto old1 = ring.create(1);
  auto old2 = ring.create(2);

  // Re-wrap every key (what core/ stores before switching), then adopt the new master key.
  auto new0 = ring.wrapUnder(INDEX_KEY_ID, newMaster);
  auto new1 = ring.wrapUnder(1, newMaster);
  auto new2 = ring.wrapUnder(2, newMaster);
  ring.replaceMasterKey(copy(newMaster));

  // The keys themselves did not change, so existing records still open.
  Keyring restarted(copy(newMaster));
  ASSERT_TRUE(restarted.load(INDEX_KEY_ID, new0));
  ASSERT_TRUE(restarted.load(1, new1));
  ASSERT_TRUE(restarted.load(2, new2));
  EXPECT_TRUE(found(restarted, 1).equals(found(ring, 1)));
  EXPECT_TRUE(found(restarted, 2).equals(found(ring, 2)));
  EXPECT_TRUE(restarted.indexKey().equals(ring.indexKey()));
  EXPECT_EQ(restarted.currentId(), 2u);

  // The old records no longer open under the new master key, nor the new under the old.
  EXPECT_FALSE(restarted.load(1, old1));
  Keyring oldRing(copy(oldMaster));
  EXPECT_FALSE(oldRing.load(1, new1));
  EXPECT_TRUE(oldRing.load(1, old1));

  // Keys created after the switch are wrapped under the new master key.
  auto new3 = ring.create(3);
  EXPECT_TRUE(restarted.load(3, new3));
  EXPECT_FALSE(oldRing.load(3, new3));
  (void)old0;
  (void)old2;
}

TEST(Keyring, FingerprintIsStableShortHexAndTellsKeysApart) {
  auto a = Secret::random(KEY_BYTES);
  auto b = Secret::random(KEY_BYTES);
  auto fa = Keyring::fingerprint(a);
  EXPECT_EQ(fa.size(), 16u);
  for (char c : fa) EXPECT_TRUE(strchr("0123456789abcdef", c) != nullptr) << c;
  EXPECT_STREQ(fa.cStr(), Keyring::fingerprint(copy(a)).cStr());
  EXPECT_STRNE(fa.cStr(), Keyring::fingerprint(b).cStr());

  // It is not simply a piece of the key.
  auto hex = kj::encodeHex(a.reveal());
  EXPECT_EQ(std::string(hex.cStr()).find(fa.cStr()), std::string::npos);
}

}  // namespace
}  // namespace credvault::crypto
