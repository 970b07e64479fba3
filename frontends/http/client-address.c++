#include "client-address.h"

#include "base/ascii.h"
#include "base/parse-int.h"

#include <string.h>

namespace credvault::http {

namespace {

// Splits a header value at commas outside quoted strings, trimming each element.
void splitList(kj::StringPtr value, kj::Vector<kj::String>& out) {
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i <= value.size(); i++) {
    char c = i < value.size() ? value[i] : ',';
    if (quoted) {
      if (c == '\\' && i + 1 < value.size()) {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.add(kj::heapString(base::trimOws(value.slice(start, i))));
      start = i + 1;
    }
  }
}

// The node of a Forwarded element's "for" parameter, unquoted; "" when it has none.
kj::String forwardedFor(kj::StringPtr element) {
  size_t i = 0;
  while (i < element.size()) {
    while (i < element.size() && (base::isOws(element[i]) || element[i] == ';')) ++i;
    size_t nameStart = i;
    while (i < element.size() && element[i] != '=' && element[i] != ';') ++i;
    kj::String name = kj::heapString(element.begin() + nameStart, i - nameStart);
    if (i >= element.size() || element[i] != '=') continue;
    ++i;
    kj::Vector<char> value;
    if (i < element.size() && element[i] == '"') {
      ++i;
      while (i < element.size() && element[i] != '"') {
        if (element[i] == '\\' && i + 1 < element.size()) ++i;
        value.add(element[i++]);
      }
      ++i;
    } else {
      while (i < element.size() && element[i] != ';') value.add(element[i++]);
    }
    if (equalsIgnoreCase(name, "for")) {
      value.add('\0');
      return kj::String(value.releaseAsArray());
    }
  }
  return kj::str();
}

}  // namespace

bool Cidr::contains(const IpAddress& address) const {
  if (address.v6 != base.v6) return false;
  uint full = prefix / 8;
  if (memcmp(address.bytes, base.bytes, full) != 0) return false;
  uint bits = prefix % 8;
  if (bits == 0) return true;
  kj::byte mask = static_cast<kj::byte>(0xff << (8 - bits));
  return (address.bytes[full] & mask) == (base.bytes[full] & mask);
}

kj::OneOf<kj::Vector<Cidr>, kj::String> parseCidrList(kj::StringPtr text) {
  kj::Vector<Cidr> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (base::isOws(text[i]) || text[i] == ',')) ++i;
    size_t start = i;
    while (i < text.size() && !base::isOws(text[i]) && text[i] != ',') ++i;
    if (i == start) break;
    auto element = kj::heapString(text.begin() + start, i - start);
    auto bad = [&]() { return kj::str("'", element, "' is not an address or ADDR/PREFIX"); };
    kj::String addressText;
    bool hasPrefix = false;
    uint prefix = 0;
    KJ_IF_MAYBE(slash, element.findFirst('/')) {
      addressText = kj::heapString(element.begin(), *slash);
      kj::StringPtr digits = element.slice(*slash + 1);
      if (digits.size() > 3) return bad();
      KJ_IF_MAYBE(p, base::unsignedOrNull(digits, 128)) {
        hasPrefix = true;
        prefix = static_cast<uint>(*p);
      } else {
        return bad();
      }
    } else {
      addressText = kj::heapString(element);
    }
    Cidr cidr;
    KJ_IF_MAYBE(a, IpAddress::parse(addressText)) {
      cidr.base = *a;
    } else {
      return bad();
    }
    uint max = cidr.base.v6 ? 128 : 32;
    cidr.prefix = hasPrefix ? prefix : max;
    if (cidr.prefix > max) return bad();
    out.add(cidr);
  }
  return kj::mv(out);
}

bool TrustedProxies::contains(const IpAddress& address) const {
  for (auto& c : list_) {
    if (c.contains(address)) return true;
  }
  return false;
}

bool TrustedProxies::contains(kj::StringPtr address) const {
  if (list_.size() == 0) return false;
  KJ_IF_MAYBE(a, IpAddress::parse(address)) { return contains(*a); }
  return false;
}

TrustedProxies TrustedProxies::clone() const {
  kj::Vector<Cidr> copy;
  for (auto& c : list_) copy.add(c);
  return TrustedProxies(kj::mv(copy));
}

kj::String addressOfPeer(kj::StringPtr peer) {
  KJ_IF_MAYBE(a, base::parseEndpoint(peer)) { return a->toString(); }
  return kj::str();
}

kj::String clientAddress(const HttpRequest& request, kj::StringPtr peerAddress,
                         const TrustedProxies& trusted) {
  if (!trusted.contains(peerAddress)) return kj::heapString(peerAddress);
  kj::Vector<kj::String> hops;  // nearest client first ... nearest to us last
  bool forwarded = false;
  for (auto& h : request.headers) {
    if (equalsIgnoreCase(h.name, "Forwarded")) forwarded = true;
  }
  for (auto& h : request.headers) {
    if (forwarded && equalsIgnoreCase(h.name, "Forwarded")) {
      kj::Vector<kj::String> elements;
      splitList(h.value, elements);
      for (auto& e : elements) hops.add(forwardedFor(e));
    } else if (!forwarded && equalsIgnoreCase(h.name, "X-Forwarded-For")) {
      splitList(h.value, hops);
    }
  }
  kj::String result = kj::heapString(peerAddress);
  for (size_t i = hops.size(); i > 0; i--) {
    KJ_IF_MAYBE(a, base::parseEndpoint(hops[i - 1])) {
      result = a->toString();
      if (!trusted.contains(*a)) break;
    } else {
      break;
    }
  }
  return result;
}

}  // namespace credvault::http
