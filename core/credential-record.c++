#include "credential-record.h"
#include "codec.h"
#include "error.h"
#include "core/credential-record.capnp.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/debug.h>
#include <string.h>

namespace credvault::core {

namespace {

constexpr kj::byte LAYOUT_POSITIONAL = 0x00;
constexpr kj::byte LAYOUT_CAPNP = 0x02;
constexpr size_t HEADER_BYTES = 8;  // keeps the capnp message word-aligned after the header
constexpr size_t WORD = sizeof(capnp::word);

[[noreturn]] void damaged(kj::StringPtr why) {
  core::damaged(kj::str("a stored credential record is damaged (", why, ")"));
}

size_t textWords(size_t bytes) {
  return (bytes + 1 + WORD - 1) / WORD;  // capnp Text keeps a NUL
}
size_t dataWords(size_t bytes) {
  return (bytes + WORD - 1) / WORD;
}

CredentialRecord decodePositional(kj::ArrayPtr<const kj::byte> plain, bool withSecret) {
  Decoder d(plain);
  CredentialRecord out;
  out.type = d.text();
  out.credential.publicValue = d.text();
  out.credential.validFrom = d.u64();
  out.credential.validTo = d.u64();
  out.credential.isActive = d.u8() != 0;
  out.credential.comment = d.text();
  auto secret = d.bytes();
  if (withSecret) out.credential.secretValue = crypto::Secret::copyOf(secret);
  return out;
}

kj::String textOf(capnp::Text::Reader t) {
  return kj::heapString(t.begin(), t.size());
}

CredentialRecord decodeCapnp(kj::ArrayPtr<const kj::byte> plain, bool withSecret) {
  if (plain.size() < HEADER_BYTES + 2 * WORD || plain.size() % WORD != 0) damaged("length");
  for (size_t i = 1; i < HEADER_BYTES; i++) {
    if (plain[i] != 0) damaged("header");
  }
  auto body = plain.slice(HEADER_BYTES, plain.size());
  // Sealed plaintext comes from sodium memory, whose blocks are word-aligned for word-sized
  // lengths; a Secret copy would be too, so an unaligned buffer is a bug, not bad data.
  KJ_REQUIRE(reinterpret_cast<uintptr_t>(body.begin()) % alignof(capnp::word) == 0,
             "credential record plaintext is not word-aligned");
  auto words = kj::arrayPtr(reinterpret_cast<const capnp::word*>(body.begin()), body.size() / WORD);

  CredentialRecord out;
  kj::Maybe<crypto::Secret> secret;
  auto problem = kj::runCatchingExceptions([&]() {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = words.size();  // no amplification past the record itself
    options.nestingLimit = 4;
    capnp::FlatArrayMessageReader message(words, options);
    if (message.getEnd() != words.end()) KJ_FAIL_REQUIRE("trailing bytes after the message");
    auto r = message.getRoot<stored::Credential>();
    out.type = textOf(r.getType());
    out.credential.publicValue = textOf(r.getPublicValue());
    out.credential.validFrom = r.getValidFrom();
    out.credential.validTo = r.getValidTo();
    out.credential.isActive = r.getIsActive();
    out.credential.comment = textOf(r.getComment());
    out.credential.carried = CarriedFields::readFrom(r);
    auto s = r.getSecretValue();
    if (withSecret) secret = crypto::Secret::copyOf(kj::arrayPtr(s.begin(), s.size()));
  });
  // The exception's text describes the bytes, never their content; it is not passed on.
  if (problem != nullptr) damaged("malformed");
  out.credential.secretValue = kj::mv(secret);
  return out;
}

}  // namespace

crypto::Secret encodeCredentialRecord(kj::StringPtr type, const Credential& c,
                                      kj::Maybe<const crypto::Secret&> keptSecret) {
  kj::ArrayPtr<const kj::byte> secret;
  KJ_IF_MAYBE(s, c.secretValue) { secret = s->reveal(); }
  KJ_IF_MAYBE(s, keptSecret) { secret = s->reveal(); }
  // The whole message in one segment of Secret memory: the root pointer, the struct (its
  // data and pointer sections, whatever fields the schema has) and the blobs, the carried
  // fields' included. capnp allocates nothing else while it fits.
  auto shape = capnp::Schema::from<stored::Credential>().getProto().getStruct();
  size_t words = 1 + shape.getDataWordCount() + shape.getPointerCount() + textWords(type.size()) +
                 textWords(c.publicValue.size()) + textWords(c.comment.size()) +
                 dataWords(secret.size()) + c.carried.words();
  crypto::Secret segment(words * WORD + alignof(capnp::word));  // zero-filled
  auto raw = segment.revealMut();
  size_t skew = reinterpret_cast<uintptr_t>(raw.begin()) % alignof(capnp::word);
  auto first = kj::arrayPtr(
      reinterpret_cast<capnp::word*>(raw.begin() + (skew == 0 ? 0 : alignof(capnp::word) - skew)),
      words);
  capnp::MallocMessageBuilder message(first, capnp::AllocationStrategy::FIXED_SIZE);
  auto b = message.initRoot<stored::Credential>();
  b.setType(type);
  b.setPublicValue(c.publicValue);
  b.setValidFrom(c.validFrom);
  b.setValidTo(c.validTo);
  b.setIsActive(c.isActive);
  b.setComment(c.comment);
  b.setSecretValue(secret);
  c.carried.writeTo(b);

  auto segments = message.getSegmentsForOutput();
  KJ_ASSERT(segments.size() == 1 && segments[0].begin() == first.begin(),
            "a credential record outgrew its sodium segment");
  auto used = segments[0].asBytes();
  crypto::Secret out(HEADER_BYTES + WORD + used.size());
  auto o = out.revealMut();
  o[0] = LAYOUT_CAPNP;  // the rest of the header stays zero
  // Segment table of a one-segment message, little-endian: (count - 1) = 0, then the size in
  // words (bytes HEADER_BYTES .. +3 stay zero).
  size_t size = segments[0].size();
  for (size_t i = 0; i < 4; i++) o[HEADER_BYTES + 4 + i] = static_cast<kj::byte>(size >> (8 * i));
  memcpy(o.begin() + HEADER_BYTES + WORD, used.begin(), used.size());
  return out;
}

CredentialRecord decodeCredentialRecord(kj::ArrayPtr<const kj::byte> plain, bool withSecret) {
  if (plain.size() == 0) damaged("empty");
  switch (plain[0]) {
    case LAYOUT_POSITIONAL:
      return decodePositional(plain, withSecret);
    case LAYOUT_CAPNP:
      return decodeCapnp(plain, withSecret);
  }
  damaged("unknown layout");
}

bool isCurrentCredentialRecord(kj::ArrayPtr<const kj::byte> plain) {
  return plain.size() > 0 && plain[0] == LAYOUT_CAPNP;
}

crypto::Secret encodePositionalCredentialRecord(kj::StringPtr type, const Credential& c) {
  return encodeSecret([&](Encoder& e) {
    e.text(type);
    e.text(c.publicValue);
    e.u64(c.validFrom);
    e.u64(c.validTo);
    e.u8(c.isActive);
    e.text(c.comment);
    KJ_IF_MAYBE(s, c.secretValue) {
      e.bytes(s->reveal());
    } else {
      e.bytes(nullptr);
    }
  });
}

}  // namespace credvault::core
