// credvault — IP addresses of peers and clients, read one way everywhere.
//
// Two places name a client by address: the gateway's socket peer ("192.0.2.1:4711",
// "[2001:db8::1]:80", from getpeername) and a trusted proxy's forwarding headers
// (X-Forwarded-For elements, RFC 7239 `for=` nodes). Both become the throttle key, the
// password-queue lane and the audit trail's client_address, so both are read by
// parseEndpoint() and written by IpAddress::toString(): one canonical text per address
// (lower-case, shortest IPv6 form; an IPv4-mapped IPv6 address is its IPv4 address).
//
// The accepted forms and the refusals (docs/base.md, "Client addresses"):
//   - "192.0.2.1", "192.0.2.1:80", "[2001:db8::1]", "[2001:db8::1]:80", "2001:db8::1"
//     (and "[192.0.2.1]", "[192.0.2.1]:80");
//   - a port is 1-5 digits up to 65535, or an RFC 7239 obfuscated port ("_abc");
//   - refused: an empty or bad port ("192.0.2.1:", ":99999"), anything after "]" but a port,
//     a zone id ("fe80::1%eth0": local to one host, not a client's identity), an IPv4 address
//     in any form but dotted quad with no leading zeros, names ("unknown", "_hidden",
//     "localhost", "unix"), and more than 64 bytes.
// Pure functions; never throws; no DNS.

#pragma once

#include <arpa/inet.h>
#include <kj/string.h>
#include <string.h>

namespace credvault::base {

// An IPv4 or IPv6 address in binary form.
struct IpAddress {
  bool v6 = false;
  kj::byte bytes[16] = {};  // network order; IPv4: the first 4, the rest zero

  // A bare address: "203.0.113.5" or "2001:db8::1" (no brackets, no port, no zone id).
  // IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are read as IPv4. Null for anything else.
  static kj::Maybe<IpAddress> parse(kj::ArrayPtr<const char> text) {
    char copy[INET6_ADDRSTRLEN];
    if (text.size() == 0 || text.size() >= sizeof(copy)) return nullptr;
    memcpy(copy, text.begin(), text.size());
    copy[text.size()] = '\0';
    IpAddress out;
    if (inet_pton(AF_INET, copy, out.bytes) == 1) return out;
    if (inet_pton(AF_INET6, copy, out.bytes) != 1) return nullptr;
    static const kj::byte MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(out.bytes, MAPPED, 12) == 0) {
      memmove(out.bytes, out.bytes + 12, 4);
      memset(out.bytes + 4, 0, 12);
      return out;
    }
    out.v6 = true;
    return out;
  }

  template<size_t N>
  static kj::Maybe<IpAddress> parse(const char (&literal)[N]) {
    return parse(kj::StringPtr(literal));
  }

  // The canonical text ("192.0.2.1", "2001:db8::1"): inet_ntop's.
  kj::String toString() const {
    char text[INET6_ADDRSTRLEN] = "";
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, text, sizeof(text));
    return kj::heapString(text);
  }

  bool operator==(const IpAddress& other) const {
    return v6 == other.v6 && memcmp(bytes, other.bytes, sizeof(bytes)) == 0;
  }
  bool operator!=(const IpAddress& other) const { return !(*this == other); }
};

// True for a port after an address: 1-5 digits up to 65535, or RFC 7239's obfport
// ("_" followed by letters, digits, '.', '_' or '-').
inline bool isEndpointPort(kj::ArrayPtr<const char> port) {
  if (port.size() == 0) return false;
  if (port[0] == '_') {
    if (port.size() == 1) return false;
    for (char c : port.slice(1, port.size())) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-';
      if (!ok) return false;
    }
    return true;
  }
  if (port.size() > 5) return false;
  uint32_t value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  return value <= 65535;
}

constexpr size_t MAX_ENDPOINT_TEXT = 64;

// The address of an endpoint written as above (a socket peer name or a forwarded node);
// the port, when there is one, is checked and dropped. Null for anything else.
inline kj::Maybe<IpAddress> parseEndpoint(kj::ArrayPtr<const char> text) {
  if (text.size() == 0 || text.size() > MAX_ENDPOINT_TEXT) return nullptr;
  if (text[0] == '[') {
    size_t close = 1;
    while (close < text.size() && text[close] != ']') ++close;
    if (close == text.size()) return nullptr;
    auto rest = text.slice(close + 1, text.size());
    if (rest.size() > 0 && (rest[0] != ':' || !isEndpointPort(rest.slice(1, rest.size())))) {
      return nullptr;
    }
    // "[192.0.2.1]" is read too, as the gateway always has (lenient, and unambiguous).
    return IpAddress::parse(text.slice(1, close));
  }
  size_t colons = 0, lastColon = 0;
  for (size_t i = 0; i < text.size(); i++) {
    if (text[i] == ':') ++colons, lastColon = i;
  }
  if (colons == 1) {
    // IPv4 with a port: IPv6 needs at least two colons, and brackets to carry a port.
    if (!isEndpointPort(text.slice(lastColon + 1, text.size()))) return nullptr;
    KJ_IF_MAYBE(a, IpAddress::parse(text.slice(0, lastColon))) {
      if (!a->v6) return *a;
    }
    return nullptr;
  }
  return IpAddress::parse(text);
}

}  // namespace credvault::base
