// credvault-gateway HTTP layer — who the client is: the peer's address, or, behind a trusted
// reverse proxy, the address the proxy forwarded.
//
// Forwarding headers are client input: anyone can send `X-Forwarded-For: 10.0.0.1`. They are
// read only when the TCP peer is in `trusted_proxies`, and then from the right: each trusted
// hop is skipped and the first untrusted one is the client (nginx's realip with
// real_ip_recursive on). `Forwarded` (RFC 7239, `for=`) wins over `X-Forwarded-For` when both
// are present. An element that is not an IP address (`unknown`, an obfuscated `_name`) ends
// the walk at the last address read. Pure functions; never logs.

#pragma once

#include "base/address.h"
#include "frontends/http/message.h"

#include <kj/one-of.h>
#include <kj/string.h>
#include <kj/vector.h>

namespace credvault::http {

// An IPv4 or IPv6 address in binary form (base/address.h): IpAddress::parse() reads a bare
// address, IPv4-mapped IPv6 addresses as IPv4; toString() is the canonical text.
using base::IpAddress;

// ADDR or ADDR/PREFIX ("10.0.0.0/8", "::1", "2001:db8::/32").
struct Cidr {
  IpAddress base;
  uint prefix = 0;
  bool contains(const IpAddress& address) const;
};

// Parses "ADDR[/PREFIX] ..." (whitespace- or comma-separated); an error message (naming the
// bad element) or the list.
kj::OneOf<kj::Vector<Cidr>, kj::String> parseCidrList(kj::StringPtr text);

class TrustedProxies {
 public:
  TrustedProxies() = default;
  explicit TrustedProxies(kj::Vector<Cidr> list) : list_(kj::mv(list)) {}
  bool contains(const IpAddress& address) const;
  bool contains(kj::StringPtr address) const;
  bool empty() const { return list_.size() == 0; }
  TrustedProxies clone() const;

 private:
  kj::Vector<Cidr> list_;
};

// The canonical address of a peer name: "203.0.113.5" from "203.0.113.5:4711", "::1" from
// "[::1]:80" (base::parseEndpoint); "" for a peer that is no IP endpoint ("unix", a test's
// name), which then has no address.
kj::String addressOfPeer(kj::StringPtr peer);

// The client's address for `request`, whose TCP peer address is `peerAddress` (from
// addressOfPeer): the peer itself unless it is a trusted proxy that forwarded one.
kj::String clientAddress(const HttpRequest& request, kj::StringPtr peerAddress,
                         const TrustedProxies& trusted);

}  // namespace credvault::http
