// Tests for daemon/rpc-convert.h: the wire form of credentials keeps the difference between
// an absent SecretValue (keep / withheld) and an empty one, and error codes map 1:1.

#include "daemon/rpc-convert.h"

#include <gtest/gtest.h>
#include <capnp/message.h>

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
