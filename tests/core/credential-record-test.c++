// Tests for core/credential-record.h: the current layout round-trips every field (secrets
// included, exactly), the positional layout of schema-2 releases still decodes, a record
// written by a later release with fields this one does not know decodes, and damaged
// plaintext is an integrity failure (core/error.h), never a crash or another exception.

#include "core/credential-record.h"
#include "core/model.h"
#include "core/limits.h"
#include "tests/core/credential-record-next.capnp.h"
#include "test-util.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <string.h>
#include <string>

namespace credvault::core {
namespace {

Credential sample(kj::Maybe<kj::StringPtr> secret) {
  Credential c;
  c.validFrom = 638'396'640'000'000'000;
  c.validTo = MAX_TICKS;
  c.comment = kj::str("Zürich office ☃");
  c.publicValue = kj::str("alice@example.com");
  c.isActive = false;
  KJ_IF_MAYBE(s, secret) { c.secretValue = crypto::Secret::copyOf(*s); }
  return c;
}

std::string secretOf(const Credential& c) {
  KJ_IF_MAYBE(s, c.secretValue) { return std::string(s->revealChars().begin(), s->size()); }
  return "<none>";
}

void expectSame(const CredentialRecord& r, const Credential& c, kj::StringPtr type) {
  EXPECT_EQ(r.type, type);
  EXPECT_EQ(r.credential.publicValue, c.publicValue);
  EXPECT_EQ(r.credential.comment, c.comment);
  EXPECT_EQ(r.credential.validFrom, c.validFrom);
  EXPECT_EQ(r.credential.validTo, c.validTo);
  EXPECT_EQ(r.credential.isActive, c.isActive);
}

TEST(CredentialRecord, RoundTripsEveryFieldAndTheSecretExactly) {
  for (kj::StringPtr secret : {"s3cr\xc3\xa9t"_kj, ""_kj, "x"_kj, "exactly8"_kj}) {
    auto c = sample(secret);
    auto plain = encodeCredentialRecord("imap", c);
    EXPECT_TRUE(isCurrentCredentialRecord(plain.reveal()));
    EXPECT_EQ(plain.size() % 8, 0u);
    auto r = decodeCredentialRecord(plain.reveal(), true);
    expectSame(r, c, "imap");
    EXPECT_EQ(secretOf(r.credential), std::string(secret.cStr()));
    // Without the secret nothing of it is copied out.
    EXPECT_TRUE(decodeCredentialRecord(plain.reveal(), false).credential.secretValue == nullptr);
  }
}

TEST(CredentialRecord, AbsentSecretIsStoredEmpty) {
  auto c = sample(nullptr);
  auto r = decodeCredentialRecord(encodeCredentialRecord("t", c).reveal(), true);
  EXPECT_EQ(secretOf(r.credential), "");
}

TEST(CredentialRecord, FieldsAtTheirLimitsFitOneSecretSegment) {
  Credential c;
  std::string longText(MAX_COMMENT_CHARS * 4, 'c');
  c.comment = kj::heapString(longText.data(), longText.size());
  c.publicValue = kj::heapString(longText.data(), MAX_PUBLIC_VALUE_CHARS);
  std::string secret(MAX_SECRET_BYTES, 's');
  c.secretValue = crypto::Secret::copyOf(kj::StringPtr(secret.c_str()));
  std::string type(MAX_TYPE_CHARS, 't');
  auto r = decodeCredentialRecord(encodeCredentialRecord(type.c_str(), c).reveal(), true);
  EXPECT_EQ(std::string(r.type.cStr()), type);
  EXPECT_EQ(secretOf(r.credential), secret);
  EXPECT_EQ(r.credential.comment.size(), longText.size());
}

TEST(CredentialRecord, PositionalRecordsOfSchema2StillDecode) {
  auto c = sample("old-secret"_kj);
  auto plain = encodePositionalCredentialRecord("ssh", c);
  EXPECT_FALSE(isCurrentCredentialRecord(plain.reveal()));
  auto r = decodeCredentialRecord(plain.reveal(), true);
  expectSame(r, c, "ssh");
  EXPECT_EQ(secretOf(r.credential), "old-secret");
}

// What a later release writes: the header, then its own wider struct.
crypto::Secret encodeNext(kj::StringPtr type, const Credential& c, kj::StringPtr label) {
  capnp::MallocMessageBuilder message;
  auto b = message.initRoot<next::Credential>();
  b.setType(type);
  b.setPublicValue(c.publicValue);
  b.setValidFrom(c.validFrom);
  b.setValidTo(c.validTo);
  b.setIsActive(c.isActive);
  b.setComment(c.comment);
  KJ_IF_MAYBE(s, c.secretValue) { b.setSecretValue(s->reveal()); }
  b.setLabel(label);
  b.setRotatedAt(42);
  auto flat = capnp::messageToFlatArray(message);
  crypto::Secret out(8 + flat.asBytes().size());
  out.revealMut()[0] = 0x02;
  memcpy(out.revealMut().begin() + 8, flat.asBytes().begin(), flat.asBytes().size());
  return out;
}

TEST(CredentialRecord, FieldsOfALaterReleaseAreSkipped) {
  auto c = sample("future-secret"_kj);
  auto plain = encodeNext("imap", c, "a label this release does not know");
  auto r = decodeCredentialRecord(plain.reveal(), true);
  expectSame(r, c, "imap");
  EXPECT_EQ(secretOf(r.credential), "future-secret");
}

void expectIntegrity(kj::ArrayPtr<const kj::byte> plain) {
  auto caught = testing::catchRefusal([&]() { decodeCredentialRecord(plain, true); });
  EXPECT_TRUE(caught.thrown);
  EXPECT_EQ(caught.code, ErrorCode::INTEGRITY) << caught.message;
  // The message says what is wrong, never what the record holds.
  EXPECT_EQ(caught.message.find("damaged-secret"), std::string::npos);
}

TEST(CredentialRecord, DamagedRecordsAreIntegrityErrorsNeverCrashes) {
  auto good = encodeCredentialRecord("imap", sample("damaged-secret"_kj));
  auto bytes = good.reveal();
  expectIntegrity(nullptr);
  kj::byte unknownLayout[16] = {0x07};
  expectIntegrity(unknownLayout);
  // Every truncation, and every single-byte change of the header and segment table.
  for (size_t n = 0; n < bytes.size(); n++) expectIntegrity(bytes.slice(0, n));
  for (size_t i = 1; i < 16; i++) {
    auto copy = crypto::Secret::copyOf(bytes);
    copy.revealMut()[i] ^= 0x40;
    auto caught = testing::catchRefusal([&]() { decodeCredentialRecord(copy.reveal(), true); });
    if (caught.thrown) { EXPECT_EQ(caught.code, ErrorCode::INTEGRITY) << i; }
  }
  // Every bit flipped anywhere: decodes to something or is INTEGRITY, nothing else.
  for (size_t i = 0; i < bytes.size(); i++) {
    for (int bit = 0; bit < 8; bit++) {
      auto copy = crypto::Secret::copyOf(bytes);
      copy.revealMut()[i] ^= kj::byte(1 << bit);
      auto caught = testing::catchRefusal([&]() { decodeCredentialRecord(copy.reveal(), true); });
      if (caught.thrown) EXPECT_EQ(caught.code, ErrorCode::INTEGRITY) << i << ":" << bit;
    }
  }
  // A pointer that claims far more than the record holds.
  auto copy = crypto::Secret::copyOf(bytes);
  copy.revealMut()[8 + 4] = 0xff;  // segment size
  expectIntegrity(copy.reveal());
  // A positional record cut short.
  auto old = encodePositionalCredentialRecord("imap", sample("damaged-secret"_kj));
  expectIntegrity(old.reveal().slice(0, old.size() - 3));
}

}  // namespace
}  // namespace credvault::core
