// Tests for core/validate.h and core/codec.h: UTF-8 counting, every field limit at the bound
// and one past it, control characters, ticks, names, passwords; the record codec's round
// trip and its refusal of truncated input.

#include "core/codec.h"
#include "core/limits.h"
#include "core/validate.h"
#include "test-util.h"

#include <string>

namespace credvault::core {
namespace {

using testing::catchRefusal;

std::string repeat(const std::string& unit, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; i++) out += unit;
  return out;
}

kj::ArrayPtr<const char> chars(const std::string& s) {
  return {s.data(), s.size()};
}

Credential cred(const std::string& pub = "user@example.com") {
  Credential c;
  c.publicValue = kj::heapString(pub.data(), pub.size());
  c.comment = kj::heapString("");
  return c;
}

TEST(Utf8Length, CountsCodePoints) {
  EXPECT_EQ(KJ_ASSERT_NONNULL(utf8Length(chars(""))), 0u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(utf8Length(chars("abc"))), 3u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(utf8Length(chars("\xc3\xa9"))), 1u);          // é
  EXPECT_EQ(KJ_ASSERT_NONNULL(utf8Length(chars("\xe2\x82\xac"))), 1u);      // €
  EXPECT_EQ(KJ_ASSERT_NONNULL(utf8Length(chars("\xf0\x9f\x94\x91"))), 1u);  // 🔑
  EXPECT_EQ(KJ_ASSERT_NONNULL(utf8Length(chars("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91"))), 4u);
  EXPECT_EQ(KJ_ASSERT_NONNULL(utf8Length(chars("\xf4\x8f\xbf\xbf"))), 1u);  // U+10FFFF
  EXPECT_EQ(KJ_ASSERT_NONNULL(utf8Length(chars("\xed\x9f\xbf"))), 1u);      // U+D7FF
  EXPECT_EQ(KJ_ASSERT_NONNULL(utf8Length(chars("\xee\x80\x80"))), 1u);      // U+E000
}

TEST(Utf8Length, RejectsInvalid) {
  const char* bad[] = {
      "\x80",                  // lone continuation
      "\xc3",                  // truncated 2-byte
      "\xe2\x82",              // truncated 3-byte
      "\xf0\x9f\x94",          // truncated 4-byte
      "\xc3\x28",              // bad continuation
      "\xc0\xaf",              // overlong '/'
      "\xe0\x80\xaf",          // overlong 3-byte
      "\xf0\x80\x80\xaf",      // overlong 4-byte
      "\xed\xa0\x80",          // surrogate U+D800
      "\xed\xbf\xbf",          // surrogate U+DFFF
      "\xf4\x90\x80\x80",      // U+110000
      "\xf8\x88\x80\x80\x80",  // 5-byte form
      "\xff",
      "abc\xfe",
  };
  for (auto s : bad) { EXPECT_EQ(utf8Length(chars(s)), nullptr) << "accepted invalid UTF-8"; }
}

TEST(CheckText, BoundAndOnePast) {
  EXPECT_ACCEPTED(checkText("f", chars(repeat("a", 10)), 10));
  EXPECT_VAULT_ERROR(checkText("f", chars(repeat("a", 11)), 10), ErrorCode::LIMIT_EXCEEDED, "f");
  // Multi-byte characters count as one each.
  EXPECT_ACCEPTED(checkText("f", chars(repeat("\xf0\x9f\x94\x91", 10)), 10));
  EXPECT_VAULT_ERROR(checkText("f", chars(repeat("\xf0\x9f\x94\x91", 11)), 10),
                     ErrorCode::LIMIT_EXCEEDED, "f");
}

TEST(CheckText, ControlCharacters) {
  for (int c = 0; c < 0x20; c++) {
    std::string s = "a";
    s += char(c);
    s += "b";
    bool allowedMultiline = c == '\n' || c == '\t' || c == '\r';
    EXPECT_VAULT_ERROR(checkText("f", chars(s), 100), ErrorCode::INVALID_ARGUMENT, "f");
    auto caught = catchRefusal([&]() { return checkText("f", chars(s), 100, true); });
    EXPECT_EQ(caught.thrown, !allowedMultiline) << "control character " << c;
  }
  EXPECT_VAULT_ERROR(checkText("f", chars("a\x7f"), 100, true), ErrorCode::INVALID_ARGUMENT, "f");
  EXPECT_VAULT_ERROR(checkText("f", chars("a\xff"), 100), ErrorCode::INVALID_ARGUMENT, "f");
}

TEST(CheckText, MessagesNeverEchoTheValue) {
  auto caught = catchRefusal([&]() {
    return checkText("comment", chars(repeat("sEcReTcOmMeNt", 30)), MAX_COMMENT_CHARS);
  });
  ASSERT_TRUE(caught.thrown);
  EXPECT_EQ(caught.message.find("sEcReT"), std::string::npos);
  caught = catchRefusal([&]() { return checkText("comment", chars("sEcReT\x01"), 10); });
  ASSERT_TRUE(caught.thrown);
  EXPECT_EQ(caught.message.find("sEcReT"), std::string::npos);
}

TEST(CheckCredential, EveryLimit) {
  {
    auto c = cred(repeat("p", MAX_PUBLIC_VALUE_CHARS));
    EXPECT_ACCEPTED(checkCredential(c));
    c = cred(repeat("p", MAX_PUBLIC_VALUE_CHARS + 1));
    EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::LIMIT_EXCEEDED, "publicValue");
    c = cred(repeat("\xc3\xa9", MAX_PUBLIC_VALUE_CHARS));
    EXPECT_ACCEPTED(checkCredential(c));
    c = cred(repeat("\xc3\xa9", MAX_PUBLIC_VALUE_CHARS + 1));
    EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::LIMIT_EXCEEDED, "publicValue");
    c = cred("a\nb");
    EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::INVALID_ARGUMENT, "publicValue");
    c = cred("a\xc3");
    EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::INVALID_ARGUMENT, "publicValue");
  }
  {
    auto c = cred();
    c.comment = kj::str(repeat("c", MAX_COMMENT_CHARS).c_str());
    EXPECT_ACCEPTED(checkCredential(c));
    c.comment = kj::str(repeat("c", MAX_COMMENT_CHARS + 1).c_str());
    EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::LIMIT_EXCEEDED, "comment");
    c.comment = kj::str(repeat("\xe2\x82\xac", MAX_COMMENT_CHARS).c_str());
    EXPECT_ACCEPTED(checkCredential(c));
    c.comment = kj::str(repeat("\xe2\x82\xac", MAX_COMMENT_CHARS + 1).c_str());
    EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::LIMIT_EXCEEDED, "comment");
    c.comment = kj::str("line one\nline two\ttab");
    EXPECT_ACCEPTED(checkCredential(c));
    c.comment = kj::str("bell\x07");
    EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::INVALID_ARGUMENT, "comment");
  }
  {
    auto c = cred();
    c.secretValue = crypto::Secret::copyOf(kj::StringPtr(repeat("s", MAX_SECRET_BYTES).c_str()));
    EXPECT_ACCEPTED(checkCredential(c));
    c.secretValue =
        crypto::Secret::copyOf(kj::StringPtr(repeat("s", MAX_SECRET_BYTES + 1).c_str()));
    EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::LIMIT_EXCEEDED, "secretValue");
    // The secret limit is in bytes: 2048 four-byte characters are exactly 8192 bytes.
    c.secretValue = crypto::Secret::copyOf(
        kj::StringPtr(repeat("\xf0\x9f\x94\x91", MAX_SECRET_BYTES / 4).c_str()));
    EXPECT_ACCEPTED(checkCredential(c));
    c.secretValue = crypto::Secret::copyOf(
        kj::StringPtr((repeat("\xf0\x9f\x94\x91", MAX_SECRET_BYTES / 4) + "x").c_str()));
    EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::LIMIT_EXCEEDED, "secretValue");
    c.secretValue = crypto::Secret::copyOf(kj::StringPtr("bad\xc0\xaf"));
    EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::INVALID_ARGUMENT, "secretValue");
    c.secretValue = crypto::Secret();
    EXPECT_ACCEPTED(checkCredential(c));  // "" is a valid secret
  }
}

TEST(CheckCredential, Dates) {
  auto c = cred();
  c.validFrom = 0;
  c.validTo = 0;
  EXPECT_ACCEPTED(checkCredential(c));
  c.validFrom = MAX_TICKS;
  c.validTo = MAX_TICKS;
  EXPECT_ACCEPTED(checkCredential(c));
  c.validFrom = MAX_TICKS + 1;
  c.validTo = 0;
  EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::INVALID_ARGUMENT, "validFrom");
  c.validFrom = -1;
  EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::INVALID_ARGUMENT, "validFrom");
  c.validFrom = 0;
  c.validTo = MAX_TICKS + 1;
  EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::INVALID_ARGUMENT, "validTo");
  c.validTo = INT64_MIN;
  EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::INVALID_ARGUMENT, "validTo");
  // A window: to before from is refused, equal is fine, an open end either side is fine.
  c.validFrom = UNIX_EPOCH_TICKS + 100;
  c.validTo = UNIX_EPOCH_TICKS + 99;
  EXPECT_VAULT_ERROR(checkCredential(c), ErrorCode::INVALID_ARGUMENT, "validTo");
  c.validTo = UNIX_EPOCH_TICKS + 100;
  EXPECT_ACCEPTED(checkCredential(c));
  c.validTo = 0;
  EXPECT_ACCEPTED(checkCredential(c));
  c.validFrom = 0;
  c.validTo = UNIX_EPOCH_TICKS;
  EXPECT_ACCEPTED(checkCredential(c));
}

TEST(CheckType, Limits) {
  EXPECT_ACCEPTED(checkType(chars(repeat("t", MAX_TYPE_CHARS))));
  EXPECT_VAULT_ERROR(checkType(chars(repeat("t", MAX_TYPE_CHARS + 1))), ErrorCode::LIMIT_EXCEEDED,
                     "type");
  EXPECT_ACCEPTED(checkType(chars(repeat("\xc3\xa9", MAX_TYPE_CHARS))));
  EXPECT_VAULT_ERROR(checkType(chars(repeat("\xc3\xa9", MAX_TYPE_CHARS + 1))),
                     ErrorCode::LIMIT_EXCEEDED, "type");
  EXPECT_VAULT_ERROR(checkType(chars("im\tap")), ErrorCode::INVALID_ARGUMENT, "type");
  EXPECT_VAULT_ERROR(checkType(chars("imap\xe2")), ErrorCode::INVALID_ARGUMENT, "type");
  // SuperOffice's published examples send an empty Type; it is a valid (if odd) name.
  EXPECT_ACCEPTED(checkType(chars("")));
}

TEST(CheckAssociateName, Limits) {
  EXPECT_ACCEPTED(checkAssociateName(chars(repeat("n", MAX_NAME_CHARS))));
  EXPECT_VAULT_ERROR(checkAssociateName(chars(repeat("n", MAX_NAME_CHARS + 1))),
                     ErrorCode::LIMIT_EXCEEDED, "name");
  EXPECT_ACCEPTED(checkAssociateName(chars(repeat("\xc3\xb8", MAX_NAME_CHARS))));
  EXPECT_VAULT_ERROR(checkAssociateName(chars(repeat("\xc3\xb8", MAX_NAME_CHARS + 1))),
                     ErrorCode::LIMIT_EXCEEDED, "name");
  EXPECT_VAULT_ERROR(checkAssociateName(chars("")), ErrorCode::INVALID_ARGUMENT, "name");
  EXPECT_VAULT_ERROR(checkAssociateName(chars(" lead")), ErrorCode::INVALID_ARGUMENT, "name");
  EXPECT_VAULT_ERROR(checkAssociateName(chars("trail ")), ErrorCode::INVALID_ARGUMENT, "name");
  EXPECT_VAULT_ERROR(checkAssociateName(chars("new\nline")), ErrorCode::INVALID_ARGUMENT, "name");
  EXPECT_VAULT_ERROR(checkAssociateName(chars("\xc3")), ErrorCode::INVALID_ARGUMENT, "name");
  EXPECT_ACCEPTED(checkAssociateName(chars("Ola Nordmann")));
}

TEST(CheckPassword, Limits) {
  EXPECT_ACCEPTED(checkPassword(crypto::Secret::copyOf(kj::StringPtr("x"))));
  EXPECT_ACCEPTED(checkPassword(
      crypto::Secret::copyOf(kj::StringPtr(repeat("p", MAX_PASSWORD_BYTES).c_str()))));
  EXPECT_VAULT_ERROR(checkPassword(crypto::Secret::copyOf(
                         kj::StringPtr(repeat("p", MAX_PASSWORD_BYTES + 1).c_str()))),
                     ErrorCode::LIMIT_EXCEEDED, "password");
  EXPECT_VAULT_ERROR(checkPassword(crypto::Secret()), ErrorCode::INVALID_ARGUMENT, "password");
  EXPECT_VAULT_ERROR(checkPassword(crypto::Secret::copyOf(kj::StringPtr("\xff"))),
                     ErrorCode::INVALID_ARGUMENT, "password");
}

TEST(FoldName, AsciiOnly) {
  EXPECT_EQ(foldName(chars("Alice")), "alice");
  EXPECT_EQ(foldName(chars("ALICE-01_x")), "alice-01_x");
  EXPECT_EQ(foldName(chars("\xc3\x98yvind")), "\xc3\x98yvind");  // Ø stays: ASCII fold only
}

TEST(Codec, RoundTrip) {
  auto secret = encodeSecret([](Encoder& e) {
    e.u8(7);
    e.u32(0xdeadbeef);
    e.u64(0x0102030405060708ull);
    e.text("hello"_kj);
    e.bytes(nullptr);
    e.text("\xf0\x9f\x94\x91"_kj);
  });
  EXPECT_EQ(secret.size(), 1u + 4 + 8 + 4 + 5 + 4 + 4 + 4);
  Decoder d(secret.reveal());
  EXPECT_EQ(d.u8(), 7);
  EXPECT_EQ(d.u32(), 0xdeadbeefu);
  EXPECT_EQ(d.u64(), 0x0102030405060708ull);
  EXPECT_EQ(d.text(), "hello");
  EXPECT_EQ(d.bytes().size(), 0u);
  EXPECT_EQ(d.text(), "\xf0\x9f\x94\x91");
  EXPECT_TRUE(d.done());

  auto plain = encodePlain([](Encoder& e) {
    e.u32(1);
    e.text("x"_kj);
  });
  EXPECT_EQ(plain.size(), 4u + 4 + 1);
  EXPECT_EQ(plain[3], 1);
}

TEST(Codec, TruncatedInputIsAnIntegrityError) {
  auto plain = encodePlain([](Encoder& e) {
    e.u32(3);
    e.text("abcdef"_kj);
  });
  for (size_t cut = 0; cut < plain.size(); cut++) {
    auto truncated = plain.slice(0, cut);
    EXPECT_VAULT_ERROR(([&]() {
                         Decoder d(truncated);
                         d.u32();
                         d.text();
                       }()),
                       ErrorCode::INTEGRITY, "");
  }
  // A length prefix that claims more than there is (e.g. 0xffffffff) does not overflow.
  kj::byte huge[] = {0xff, 0xff, 0xff, 0xff, 'a'};
  EXPECT_VAULT_ERROR(([&]() {
                       Decoder d(huge);
                       d.bytes();
                     }()),
                     ErrorCode::INTEGRITY, "");
  kj::byte empty[1] = {0};
  EXPECT_VAULT_ERROR(([&]() {
                       Decoder d(kj::arrayPtr(empty, size_t(0)));
                       d.u8();
                     }()),
                     ErrorCode::INTEGRITY, "");
}

}  // namespace
}  // namespace credvault::core
