#include "base/address.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <string>

namespace credvault::base {
namespace {

// The canonical text of parseEndpoint(text), or "(none)".
std::string endpoint(kj::StringPtr text) {
  KJ_IF_MAYBE(a, parseEndpoint(text)) { return a->toString().cStr(); }
  return "(none)";
}

std::string bare(kj::StringPtr text) {
  KJ_IF_MAYBE(a, IpAddress::parse(text)) { return a->toString().cStr(); }
  return "(none)";
}

TEST(Address, BareAddressesInCanonicalForm) {
  EXPECT_EQ(bare("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(bare("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
  EXPECT_EQ(bare("::ffff:192.0.2.1"), "192.0.2.1");  // IPv4-mapped reads as IPv4
  EXPECT_EQ(bare("::FFFF:c000:0201"), "192.0.2.1");
  EXPECT_EQ(bare("::1"), "::1");
  EXPECT_EQ(bare("::"), "::");
  EXPECT_FALSE(KJ_ASSERT_NONNULL(IpAddress::parse("::ffff:192.0.2.1"_kj)).v6);
  EXPECT_TRUE(KJ_ASSERT_NONNULL(IpAddress::parse("::192.0.2.1"_kj)).v6);  // not mapped
  EXPECT_TRUE(KJ_ASSERT_NONNULL(IpAddress::parse("192.0.2.1"_kj)) ==
              KJ_ASSERT_NONNULL(IpAddress::parse("::ffff:192.0.2.1"_kj)));
  for (kj::StringPtr bad :
       {""_kj, "192.0.2.256"_kj, "192.0.2"_kj, "192.0.2.1.5"_kj, "0x7f.0.0.1"_kj, "[::1]"_kj,
        "01.2.3.4"_kj, "fe80::1%eth0"_kj, "unknown"_kj, "localhost"_kj, " 192.0.2.1"_kj}) {
    EXPECT_EQ(bare(bad), "(none)") << bad.cStr();
  }
  // A valid address (0:0:0:0:0:0:1:80), not ::1 with a port.
  EXPECT_TRUE(KJ_ASSERT_NONNULL(IpAddress::parse("::1:80"_kj)) !=
              KJ_ASSERT_NONNULL(IpAddress::parse("::1"_kj)));
  // Longer than any address: refused before inet_pton sees it.
  EXPECT_EQ(bare(kj::str(kj::repeat('1', 100))), "(none)");
}

TEST(Address, EndpointsWithAndWithoutPorts) {
  struct Case {
    kj::StringPtr text;
    kj::StringPtr address;
  } cases[] = {
      {"192.0.2.1", "192.0.2.1"},
      {"192.0.2.1:4711", "192.0.2.1"},
      {"192.0.2.1:65535", "192.0.2.1"},
      {"[2001:db8::1]", "2001:db8::1"},
      {"[2001:DB8::1]:80", "2001:db8::1"},
      {"2001:db8::1", "2001:db8::1"},  // bare IPv6: all of it is the address
      {"::1", "::1"},
      {"[::ffff:192.0.2.1]:80", "192.0.2.1"},
      {"[192.0.2.1]:80", "192.0.2.1"},
      {"192.0.2.1:_hidden", "192.0.2.1"},  // RFC 7239 obfuscated port
      {"[2001:db8::1]:_a.b-c", "2001:db8::1"},
  };
  for (auto& c : cases) EXPECT_EQ(endpoint(c.text), c.address.cStr()) << c.text.cStr();
}

TEST(Address, EndpointGarbageIsNoAddress) {
  for (kj::StringPtr bad : {""_kj,
                            "unix"_kj,
                            "test"_kj,
                            "unknown"_kj,
                            "_hidden"_kj,
                            "192.0.2.1:"_kj,
                            "192.0.2.1:65536"_kj,
                            "192.0.2.1:123456"_kj,
                            "192.0.2.1:8x"_kj,
                            "192.0.2.1:_"_kj,
                            "192.0.2.1:_a b"_kj,
                            "[2001:db8::1]:"_kj,
                            "[2001:db8::1]x"_kj,
                            "[2001:db8::1]:99999"_kj,
                            "[2001:db8::1"_kj,
                            "2001:db8::1]"_kj,
                            "[]"_kj,
                            "[]:80"_kj,
                            "[fe80::1%eth0]:80"_kj,
                            "fe80::1%eth0"_kj,
                            "[[::1]]"_kj,
                            "192.0.2.1 :80"_kj,
                            "host.example:80"_kj}) {
    EXPECT_EQ(endpoint(bad), "(none)") << bad.cStr();
  }
  EXPECT_EQ(endpoint(kj::str("[", kj::repeat('0', 60), "::1]")), "(none)");  // > 64 bytes
}

TEST(Address, PortsAtTheirEdges) {
  EXPECT_TRUE(isEndpointPort("0"_kj));
  EXPECT_TRUE(isEndpointPort("65535"_kj));
  EXPECT_TRUE(isEndpointPort("00080"_kj));
  EXPECT_FALSE(isEndpointPort("65536"_kj));
  EXPECT_FALSE(isEndpointPort("000080"_kj));
  EXPECT_FALSE(isEndpointPort(""_kj));
  EXPECT_FALSE(isEndpointPort("-1"_kj));
}

}  // namespace
}  // namespace credvault::base
