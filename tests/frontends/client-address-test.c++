// Tests for frontends/http/client-address: CIDR lists, and which address a request came from
// behind (trusted) proxies.

#include "frontends/http/client-address.h"

#include <gtest/gtest.h>
#include <kj/debug.h>

namespace credvault::http {
namespace {

TrustedProxies trust(kj::StringPtr list) {
  auto parsed = parseCidrList(list);
  return TrustedProxies(kj::mv(parsed.get<kj::Vector<Cidr>>()));
}

HttpRequest requestWith(std::initializer_list<std::pair<const char*, const char*>> headers) {
  HttpRequest r;
  for (auto& h : headers) r.headers.add(HttpHeader{h.first, h.second});
  return r;
}

TEST(IpAddress, ParsesBothFamiliesAndMapsIpv4InIpv6) {
  EXPECT_EQ(KJ_ASSERT_NONNULL(IpAddress::parse("192.0.2.1")).toString(), "192.0.2.1");
  EXPECT_EQ(KJ_ASSERT_NONNULL(IpAddress::parse("2001:DB8::1")).toString(), "2001:db8::1");
  EXPECT_EQ(KJ_ASSERT_NONNULL(IpAddress::parse("::ffff:192.0.2.1")).toString(), "192.0.2.1");
  EXPECT_TRUE(IpAddress::parse("") == nullptr);
  EXPECT_TRUE(IpAddress::parse("192.0.2.256") == nullptr);
  EXPECT_TRUE(IpAddress::parse("[::1]") == nullptr);
  EXPECT_TRUE(IpAddress::parse("unknown") == nullptr);
}

TEST(Cidr, PrefixesAtTheirBoundsAndOnePast) {
  auto t = trust("192.0.2.0/25 2001:db8::/127 10.0.0.0/0");
  EXPECT_TRUE(t.contains("192.0.2.127"));
  EXPECT_TRUE(t.contains("2001:db8::1"));
  EXPECT_FALSE(t.contains("2001:db8::2"));
  EXPECT_TRUE(t.contains("8.8.8.8"));  // /0: every IPv4 address
  EXPECT_FALSE(t.contains("::2"));     // ... but no IPv6 one
  auto narrow = trust("192.0.2.0/25");
  EXPECT_FALSE(narrow.contains("192.0.2.128"));
  EXPECT_TRUE(parseCidrList("0.0.0.0/32 ::/128").is<kj::Vector<Cidr>>());
  EXPECT_TRUE(parseCidrList("0.0.0.0/33").is<kj::String>());
  EXPECT_TRUE(parseCidrList("::/129").is<kj::String>());
  EXPECT_TRUE(parseCidrList("10.0.0.0/8x").is<kj::String>());
  EXPECT_EQ(parseCidrList(" 10.0.0.1 , ::1 ").get<kj::Vector<Cidr>>().size(), 2u);
}

TEST(ClientAddress, ForwardingHeadersAreIgnoredFromUntrustedPeers) {
  auto r = requestWith({{"X-Forwarded-For", "203.0.113.9"}, {"Forwarded", "for=203.0.113.8"}});
  EXPECT_EQ(clientAddress(r, "198.51.100.1", trust("127.0.0.1")), "198.51.100.1");
  EXPECT_EQ(clientAddress(r, "198.51.100.1", TrustedProxies()), "198.51.100.1");
}

TEST(ClientAddress, XForwardedForIsReadFromTheRightSkippingTrustedHops) {
  auto t = trust("127.0.0.1 10.0.0.0/8");
  auto r = requestWith({{"X-Forwarded-For", "1.1.1.1, 203.0.113.9, 10.0.0.5"}});
  EXPECT_EQ(clientAddress(r, "127.0.0.1", t), "203.0.113.9");  // not the spoofable 1.1.1.1
  // Several header lines are one list.
  auto two = requestWith({{"X-Forwarded-For", "203.0.113.9"}, {"X-Forwarded-For", "10.0.0.5"}});
  EXPECT_EQ(clientAddress(two, "127.0.0.1", t), "203.0.113.9");
  // Every hop trusted: the leftmost.
  auto all = requestWith({{"X-Forwarded-For", "10.0.0.7, 10.0.0.5"}});
  EXPECT_EQ(clientAddress(all, "127.0.0.1", t), "10.0.0.7");
  // Garbage stops the walk at the last address read.
  auto junk = requestWith({{"X-Forwarded-For", "203.0.113.9, junk, 10.0.0.5"}});
  EXPECT_EQ(clientAddress(junk, "127.0.0.1", t), "10.0.0.5");
  auto none = requestWith({});
  EXPECT_EQ(clientAddress(none, "127.0.0.1", t), "127.0.0.1");
}

TEST(ClientAddress, ForwardedWinsAndItsNodesAreUnquoted) {
  auto t = trust("127.0.0.1");
  auto r = requestWith({{"X-Forwarded-For", "198.51.100.1"},
                        {"Forwarded",
                         "for=192.0.2.60;proto=http;by=203.0.113.43, "
                         "For=\"[2001:db8:cafe::17]:4711\""}});
  EXPECT_EQ(clientAddress(r, "127.0.0.1", t), "2001:db8:cafe::17");
  auto port = requestWith({{"Forwarded", "for=\"192.0.2.43:47011\""}});
  EXPECT_EQ(clientAddress(port, "127.0.0.1", t), "192.0.2.43");
  auto hidden = requestWith({{"Forwarded", "for=_hidden, for=unknown"}});
  EXPECT_EQ(clientAddress(hidden, "127.0.0.1", t), "127.0.0.1");
  auto quotedComma = requestWith({{"Forwarded", "for=192.0.2.1;x=\"a,b\""}});
  EXPECT_EQ(clientAddress(quotedComma, "127.0.0.1", t), "192.0.2.1");
}

TEST(ClientAddress, PeerNamesLoseTheirPort) {
  EXPECT_EQ(addressOfPeer("192.0.2.1:4711"), "192.0.2.1");
  EXPECT_EQ(addressOfPeer("[::1]:80"), "::1");
  EXPECT_EQ(addressOfPeer("unix"), "");
  EXPECT_EQ(addressOfPeer(""), "");
}

}  // namespace
}  // namespace credvault::http
