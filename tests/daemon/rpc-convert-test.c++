// Tests for daemon/rpc-convert.h: the wire form of credentials keeps the difference between
// an absent SecretValue (keep / withheld) and an empty one, and error codes map 1:1.

#include "daemon/rpc-convert.h"
#include "core/credential-record.h"
#include "core/validate.h"

#include <gtest/gtest.h>
#include <capnp/message.h>
#include <capnp/dynamic.h>
#include <kj/vector.h>
#include <string>

namespace credvault::daemon {
namespace {

TEST(RpcConvert, AbsentSecretIsNotEmptySecret) {
  capnp::MallocMessageBuilder message;
  auto wire = message.initRoot<rpc::Credential>();
  wire.setPublicValue("p@example.test");
  wire.setComment("c");
  wire.setValidFrom(1);
  wire.setValidTo(2);
  wire.setIsActive(false);
  auto absent = fromWire(wire.asReader());
  EXPECT_EQ(absent.secretValue, nullptr);
  EXPECT_EQ(absent.publicValue, "p@example.test");
  EXPECT_EQ(absent.comment, "c");
  EXPECT_EQ(absent.validFrom, 1);
  EXPECT_EQ(absent.validTo, 2);
  EXPECT_FALSE(absent.isActive);

  wire.setSecretValue("");
  auto empty = fromWire(wire.asReader());
  ASSERT_NE(empty.secretValue, nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(empty.secretValue).size(), 0u);

  wire.setSecretValue("s3cret");
  auto set = fromWire(wire.asReader());
  EXPECT_TRUE(KJ_ASSERT_NONNULL(set.secretValue).equals("s3cret"_kj.asBytes()));
}

TEST(RpcConvert, ToWireRoundTrip) {
  core::Credential c;
  c.publicValue = kj::str("pub");
  c.comment = kj::str("comment");
  c.validFrom = 10;
  c.validTo = 20;
  c.isActive = true;
  capnp::MallocMessageBuilder message;
  auto wire = message.initRoot<rpc::Credential>();
  toWire(c, wire);
  EXPECT_FALSE(wire.hasSecretValue());  // withheld stays absent on the wire
  c.secretValue = crypto::Secret();
  capnp::MallocMessageBuilder message2;
  auto wire2 = message2.initRoot<rpc::Credential>();
  toWire(c, wire2);
  EXPECT_TRUE(wire2.hasSecretValue());
  EXPECT_EQ(wire2.getSecretValue(), "");
  auto back = fromWire(wire2.asReader());
  EXPECT_EQ(back.publicValue, "pub");
  EXPECT_EQ(back.comment, "comment");
  EXPECT_EQ(back.validFrom, 10);
  EXPECT_EQ(back.validTo, 20);
  EXPECT_TRUE(back.isActive);
}

// A value for each field of the wire credential that is not its default and passes core's
// checks: text "v-<name>", booleans flipped, integers valid ticks in field order (so validTo
// follows validFrom). Written over the schema, so a new field is covered without a new test.
void fillEveryField(capnp::DynamicStruct::Builder wire) {
  int64_t ticks = 638'396'640'000'000'000;
  for (auto field : wire.getSchema().getFields()) {
    auto name = field.getProto().getName();
    switch (field.getType().which()) {
      case capnp::schema::Type::TEXT:
        wire.set(field, capnp::Text::Reader(kj::str("v-", name)));
        break;
      case capnp::schema::Type::BOOL:
        wire.set(field, !wire.get(field).as<bool>());
        break;
      case capnp::schema::Type::INT64:
        wire.set(field, ticks + int64_t(field.getIndex()));
        break;
      case capnp::schema::Type::INT8:
      case capnp::schema::Type::INT16:
      case capnp::schema::Type::INT32:
      case capnp::schema::Type::UINT8:
      case capnp::schema::Type::UINT16:
      case capnp::schema::Type::UINT32:
      case capnp::schema::Type::UINT64:
        wire.set(field, uint64_t(field.getIndex()) + 1);
        break;
      case capnp::schema::Type::ENUM:
        wire.set(field, capnp::DynamicEnum(field.getType().asEnum(), 1));
        break;
      default:
        ADD_FAILURE() << "the test cannot fill wire field " << name.cStr();
    }
  }
}

std::string show(capnp::DynamicValue::Reader v) {
  switch (v.getType()) {
    case capnp::DynamicValue::TEXT:
      return std::string("\"") + v.as<capnp::Text>().cStr() + "\"";
    case capnp::DynamicValue::BOOL:
      return v.as<bool>() ? "true" : "false";
    case capnp::DynamicValue::INT:
      return std::to_string(v.as<int64_t>());
    case capnp::DynamicValue::UINT:
      return std::to_string(v.as<uint64_t>());
    case capnp::DynamicValue::FLOAT:
      return std::to_string(v.as<double>());
    case capnp::DynamicValue::ENUM:
      return "enum " + std::to_string(v.as<capnp::DynamicEnum>().getRaw());
    default:
      return "?";
  }
}

// Every field of the wire credential, each set, comes back the same after wire -> core ->
// sealed record plaintext -> core -> wire: the fields core names (copied by hand) and the ones it
// carries (core/carried-fields.h) alike. A field that is on the wire and not stored fails here.
TEST(RpcConvert, EveryWireFieldSurvivesTheStoredRecord) {
  capnp::MallocMessageBuilder in;
  capnp::DynamicStruct::Builder wire = in.initRoot<rpc::Credential>();
  fillEveryField(wire);
  auto c = fromWire(wire.asReader().as<rpc::Credential>());
  EXPECT_EQ(core::checkCredential(c), nullptr);
  auto plain = core::encodeCredentialRecord("imap", c);
  auto stored = core::decodeCredentialRecord(plain.reveal(), true);
  EXPECT_EQ(stored.type, "imap");
  capnp::MallocMessageBuilder out;
  capnp::DynamicStruct::Builder back = out.initRoot<rpc::Credential>();
  toWire(stored.credential, back.as<rpc::Credential>());
  for (auto field : wire.getSchema().getFields()) {
    EXPECT_EQ(show(back.asReader().get(field)), show(wire.asReader().get(field)))
        << field.getProto().getName().cStr();
  }
}

// Each carried Text field is refused one past the $maxChars its stored schema gives, by name,
// and accepted at it; a control character is refused.
TEST(RpcConvert, CarriedTextFieldsAreCheckedAtTheirLimit) {
  for (auto field : core::CarriedFields::fields()) {
    KJ_IF_MAYBE(limit, core::CarriedFields::maxChars(field)) {
      auto name = field.getProto().getName();
      auto with = [&](std::string value) {
        capnp::MallocMessageBuilder message;
        capnp::DynamicStruct::Builder wire = message.initRoot<rpc::Credential>();
        wire.set(name, capnp::Text::Reader(value.c_str()));
        return core::checkCredential(fromWire(wire.asReader().as<rpc::Credential>()));
      };
      std::string euros;
      for (size_t i = 0; i < *limit; i++) euros += "\xe2\x82\xac";
      EXPECT_EQ(with(euros), nullptr) << name.cStr();
      auto over = with(euros + "x");
      ASSERT_NE(over, nullptr) << name.cStr();
      EXPECT_EQ(KJ_ASSERT_NONNULL(over).code, core::ErrorCode::LIMIT_EXCEEDED);
      EXPECT_EQ(KJ_ASSERT_NONNULL(over).field, name);
      auto control = with("one\ntwo");
      ASSERT_NE(control, nullptr) << name.cStr();
      EXPECT_EQ(KJ_ASSERT_NONNULL(control).code, core::ErrorCode::INVALID_ARGUMENT);
    }
  }
}

// The answer's size hint (wireWords) holds the whole list, so an answer is one segment of
// about its own size: checked with every wire field set (carried ones included), texts of
// lengths around a word boundary, with and without secrets, and for an empty list.
TEST(RpcConvert, TheSizeHintHoldsTheWholeList) {
  auto answerFits = [](kj::ArrayPtr<const core::Credential> list) {
    uint64_t words = 1 + capnp::sizeInWords<rpc::Session::GetResults>() + wireWords(list);
    capnp::MallocMessageBuilder message(words, capnp::AllocationStrategy::FIXED_SIZE);
    auto out = message.initRoot<rpc::Session::GetResults>().initCredentials(list.size());
    for (auto i : kj::indices(list)) toWire(list[i], out[i]);
    return message.getSegmentsForOutput().size() == 1;
  };
  EXPECT_TRUE(answerFits(nullptr));
  kj::Vector<core::Credential> list;
  for (size_t n = 0; n < 20; ++n) {
    capnp::MallocMessageBuilder in;
    capnp::DynamicStruct::Builder wire = in.initRoot<rpc::Credential>();
    fillEveryField(wire);
    auto text = std::string(n, 'x');
    wire.set("comment", capnp::Text::Reader(text.c_str()));
    wire.set("publicValue", capnp::Text::Reader(text.c_str()));
    auto c = fromWire(wire.asReader().as<rpc::Credential>());
    if (n % 3 == 0) c.secretValue = nullptr;  // withheld
    if (n % 3 == 1) c.secretValue = crypto::Secret::copyOf(kj::StringPtr(text.c_str()).asBytes());
    list.add(kj::mv(c));
    EXPECT_TRUE(answerFits(list.asPtr())) << n + 1 << " entries";
    EXPECT_TRUE(answerFits(list.asPtr().slice(n, n + 1))) << "entry " << n;
  }
}

TEST(RpcConvert, ErrorCodesMapOneToOne) {
  using C = core::ErrorCode;
  using R = rpc::ErrorCode;
  std::pair<C, R> pairs[] = {
      {C::INTERNAL, R::INTERNAL},
      {C::NOT_AUTHENTICATED, R::NOT_AUTHENTICATED},
      {C::PERMISSION_DENIED, R::PERMISSION_DENIED},
      {C::INVALID_ARGUMENT, R::INVALID_ARGUMENT},
      {C::NOT_FOUND, R::NOT_FOUND},
      {C::LIMIT_EXCEEDED, R::LIMIT_EXCEEDED},
      {C::UNAVAILABLE, R::UNAVAILABLE},
      {C::INTEGRITY, R::INTEGRITY},
      {C::CONFLICT, R::CONFLICT},
      {C::THROTTLED, R::THROTTLED},
  };
  for (auto [c, r] : pairs) EXPECT_EQ(toWire(c), r);
}

TEST(RpcConvert, Associates) {
  core::Associate a;
  a.id = 7;
  a.name = kj::str("alice");
  a.kind = core::Kind::SYSTEM;
  a.userAdmin = true;
  a.passwordHash = kj::str("$argon2id$...");
  capnp::MallocMessageBuilder message;
  auto wire = message.initRoot<rpc::Associate>();
  toWire(a, wire);
  EXPECT_EQ(wire.getAssociateId(), 7);
  EXPECT_EQ(wire.getUnixUid(), -1);
  EXPECT_EQ(wire.getKind(), rpc::Kind::SYSTEM);
  EXPECT_TRUE(wire.getHasPassword());
  a.unixUid = 4294967294u;
  toWire(a, wire);
  EXPECT_EQ(wire.getUnixUid(), 4294967294ll);
  EXPECT_EQ(fromWire(rpc::Kind::USER), core::Kind::USER);
  EXPECT_EQ(fromWire(rpc::Kind::SYSTEM), core::Kind::SYSTEM);
}

}  // namespace
}  // namespace credvault::daemon
