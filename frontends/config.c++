#include "config.h"
#include "base/parse-int.h"
#include "base/config-file.h"

#include <kj/debug.h>

namespace credvault::frontends {

namespace {

kj::Maybe<uint64_t> number(kj::StringPtr text, uint64_t min, uint64_t max) {
  if (text.size() > 12) return nullptr;
  KJ_IF_MAYBE(v, base::unsignedOrNull(text, max)) {
    if (*v >= min) return *v;
  }
  return nullptr;
}

bool isPrefixChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
         c == '-' || c == '_' || c == '.';
}

bool isUrlPathChar(char c) {
  return isPrefixChar(c) || c == '~';
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool isHostNameChar(char c) {
  c = lower(c);
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

bool isIpv6LiteralChar(char c) {
  c = lower(c);
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.';
}

}  // namespace

kj::Maybe<kj::String> checkPublicUrl(kj::StringPtr url, kj::String& normalized) {
  constexpr size_t MAX_PUBLIC_URL_BYTES = 200;
  if (url.size() > MAX_PUBLIC_URL_BYTES) {
    return kj::str("public_url is longer than ", MAX_PUBLIC_URL_BYTES, " bytes");
  }
  for (char c : url) {
    if (c == '?' || c == '#') return kj::str("public_url must not have a query or fragment");
    if (c == '@') return kj::str("public_url must not contain a user name or password");
  }
  kj::Vector<char> out(url.size() + 1);
  size_t i;
  if (http::startsWithIgnoreCase(url, "http://")) {
    i = 7;
  } else if (http::startsWithIgnoreCase(url, "https://")) {
    i = 8;
  } else {
    return kj::str("public_url must start with http:// or https://");
  }
  for (size_t k = 0; k < i; k++) out.add(lower(url[k]));

  // Host: a name or IPv4 address, or an IPv6 literal in brackets.
  size_t hostStart = i;
  if (i < url.size() && url[i] == '[') {
    out.add('[');
    ++i;
    while (i < url.size() && isIpv6LiteralChar(url[i])) out.add(lower(url[i++]));
    if (i >= url.size() || url[i] != ']' || i == hostStart + 1) {
      return kj::str("public_url has a malformed [IPv6] host");
    }
    out.add(']');
    ++i;
  } else {
    while (i < url.size() && isHostNameChar(url[i])) out.add(lower(url[i++]));
    if (i == hostStart) return kj::str("public_url needs a host name after the scheme");
    if (url[hostStart] == '.' || url[hostStart] == '-') {
      return kj::str("public_url has a malformed host name");
    }
  }

  if (i < url.size() && url[i] == ':') {
    ++i;
    size_t start = i;
    uint32_t port = 0;
    while (i < url.size() && url[i] >= '0' && url[i] <= '9' && i - start < 5) {
      port = port * 10 + static_cast<uint32_t>(url[i++] - '0');
    }
    if (i == start || port == 0 || port > 65535 || (i < url.size() && url[i] != '/')) {
      return kj::str("public_url has a port that is not a number from 1 to 65535");
    }
    out.add(':');
    out.addAll(url.slice(start).begin(), url.begin() + i);
  }

  if (i < url.size() && url[i] != '/') {
    return kj::str("public_url has a character a host name may not contain");
  }
  size_t pathEnd = url.size();
  while (pathEnd > i && url[pathEnd - 1] == '/') --pathEnd;
  for (size_t k = i; k < pathEnd; k++) {
    if (!isUrlPathChar(url[k])) {
      return kj::str("public_url's path may contain letters, digits, '/', '-', '_', '.', '~'");
    }
    out.add(url[k]);
  }
  out.add('\0');
  normalized = kj::String(out.releaseAsArray());
  return nullptr;
}

kj::Maybe<kj::String> GatewaySettings::set(kj::StringPtr key, kj::StringPtr value) {
  if (key == "vault_socket") {
    if (value.size() == 0) return kj::str("vault_socket needs a path");
    vaultSocket = kj::heapString(value);
  } else if (key == "listen") {
    if (value.size() == 0) return kj::str("listen needs an address:port");
    listen.add(kj::heapString(value));
  } else if (key == "prefix") {
    for (char c : value) {
      if (!isPrefixChar(c))
        return kj::str("prefix may contain letters, digits, '/', '-', '_', '.'");
    }
    prefix = kj::heapString(value);
  } else if (key == "public_url") {
    // Empty: not set, as the packaged file's commented-out default shows it.
    kj::String normalized = kj::str();
    if (value.size() > 0) {
      KJ_IF_MAYBE(error, checkPublicUrl(value, normalized)) { return kj::mv(*error); }
    }
    publicUrl = kj::mv(normalized);
  } else if (key == "max_body") {
    KJ_IF_MAYBE(v, number(value, 1024, uint64_t(1) << 30)) {
      maxBody = *v;
    } else
      return kj::str("max_body must be a number of bytes from 1024 to 1073741824");
  } else if (key == "max_connections") {
    KJ_IF_MAYBE(v, number(value, 1, 1000000)) {
      maxConnections = *v;
    } else
      return kj::str("max_connections must be a number from 1 to 1000000");
  } else if (key == "idle_timeout") {
    KJ_IF_MAYBE(v, number(value, 1, 3600)) {
      idleTimeoutSeconds = *v;
    } else
      return kj::str("idle_timeout must be seconds from 1 to 3600");
  } else if (key == "header_timeout") {
    KJ_IF_MAYBE(v, number(value, 1, 3600)) {
      headerTimeoutSeconds = *v;
    } else
      return kj::str("header_timeout must be seconds from 1 to 3600");
  } else if (key == "max_connections_per_address") {
    KJ_IF_MAYBE(v, number(value, 1, 1000000)) {
      maxConnectionsPerAddress = *v;
    } else
      return kj::str("max_connections_per_address must be a number from 1 to 1000000");
  } else if (key == "max_body_buffer" || key == "max_answer_buffer") {
    KJ_IF_MAYBE(v, number(value, 65536, uint64_t(1) << 36)) {
      (key == "max_body_buffer" ? maxBodyBuffer : maxAnswerBuffer) = *v;
    } else
      return kj::str(key, " must be a number of bytes from 65536 to 68719476736");
  } else if (key == "max_soap_body") {
    KJ_IF_MAYBE(v, number(value, 1024, uint64_t(1) << 30)) {
      maxSoapBody = *v;
    } else
      return kj::str("max_soap_body must be a number of bytes from 1024 to 1073741824");
  } else if (key == "body_timeout" || key == "write_timeout") {
    KJ_IF_MAYBE(v, number(value, 1, 3600)) {
      (key == "body_timeout" ? bodyTimeoutSeconds : writeTimeoutSeconds) = *v;
    } else
      return kj::str(key, " must be seconds from 1 to 3600");
  } else if (key == "trusted_proxies") {
    auto parsed = http::parseCidrList(value);
    KJ_IF_MAYBE(error, parsed.tryGet<kj::String>()) { return kj::str("trusted_proxies: ", *error); }
    // Several lines add up; an empty value clears the list.
    if (value.size() == 0) {
      trustedProxies = kj::Vector<http::Cidr>();
    } else {
      if (trustedProxies == nullptr) trustedProxies = kj::Vector<http::Cidr>();
      auto& list = KJ_ASSERT_NONNULL(trustedProxies);
      for (auto& c : parsed.get<kj::Vector<http::Cidr>>()) list.add(c);
    }
  } else if (key == "tls_certificate" || key == "tls_key") {
    // Empty: not set (the packaged file's commented-out default).
    auto& slot = key == "tls_key" ? tlsKey : tlsCertificate;
    if (value.size() == 0) {
      slot = kj::str();
    } else {
      slot = kj::heapString(value);
    }
  } else if (key == "metrics_listen") {
    metricsListen = kj::heapString(value);  // "" = off (the packaged default)
  } else if (key == "plain_http") {
    if (value == "yes" || value == "true")
      plainHttp = true;
    else if (value == "no" || value == "false")
      plainHttp = false;
    else
      return kj::str("plain_http must be yes or no");
  } else if (key == "access_log") {
    if (value == "yes" || value == "true")
      accessLog = true;
    else if (value == "no" || value == "false")
      accessLog = false;
    else
      return kj::str("access_log must be yes or no");
  } else {
    return kj::str("unknown key '", key, "'");
  }
  return nullptr;
}

void GatewaySettings::overrideWith(GatewaySettings&& o) {
  KJ_IF_MAYBE(v, o.vaultSocket) { vaultSocket = kj::mv(*v); }
  if (o.listen.size() > 0) listen = kj::mv(o.listen);
  KJ_IF_MAYBE(v, o.prefix) { prefix = kj::mv(*v); }
  KJ_IF_MAYBE(v, o.publicUrl) { publicUrl = kj::mv(*v); }
  KJ_IF_MAYBE(v, o.maxBody) { maxBody = *v; }
  KJ_IF_MAYBE(v, o.maxConnections) { maxConnections = *v; }
  KJ_IF_MAYBE(v, o.idleTimeoutSeconds) { idleTimeoutSeconds = *v; }
  KJ_IF_MAYBE(v, o.headerTimeoutSeconds) { headerTimeoutSeconds = *v; }
  KJ_IF_MAYBE(v, o.accessLog) { accessLog = *v; }
  KJ_IF_MAYBE(v, o.maxConnectionsPerAddress) { maxConnectionsPerAddress = *v; }
  KJ_IF_MAYBE(v, o.maxBodyBuffer) { maxBodyBuffer = *v; }
  KJ_IF_MAYBE(v, o.maxAnswerBuffer) { maxAnswerBuffer = *v; }
  KJ_IF_MAYBE(v, o.maxSoapBody) { maxSoapBody = *v; }
  KJ_IF_MAYBE(v, o.bodyTimeoutSeconds) { bodyTimeoutSeconds = *v; }
  KJ_IF_MAYBE(v, o.writeTimeoutSeconds) { writeTimeoutSeconds = *v; }
  KJ_IF_MAYBE(v, o.trustedProxies) { trustedProxies = kj::mv(*v); }
  KJ_IF_MAYBE(v, o.tlsCertificate) { tlsCertificate = kj::mv(*v); }
  KJ_IF_MAYBE(v, o.tlsKey) { tlsKey = kj::mv(*v); }
  KJ_IF_MAYBE(v, o.plainHttp) { plainHttp = *v; }
  KJ_IF_MAYBE(v, o.metricsListen) { metricsListen = kj::mv(*v); }
}

http::TrustedProxies GatewaySettings::trusted() const {
  kj::Vector<http::Cidr> list;
  KJ_IF_MAYBE(v, trustedProxies) {
    for (auto& c : *v) list.add(c);
  }
  return http::TrustedProxies(kj::mv(list));
}

void GatewaySettings::applyTo(http::HttpLimits& limits) const {
  KJ_IF_MAYBE(v, maxBody) { limits.maxBodyBytes = *v; }
  KJ_IF_MAYBE(v, maxConnections) { limits.maxConnections = *v; }
  KJ_IF_MAYBE(v, idleTimeoutSeconds) { limits.idleTimeout = *v * kj::SECONDS; }
  KJ_IF_MAYBE(v, headerTimeoutSeconds) { limits.headerTimeout = *v * kj::SECONDS; }
  KJ_IF_MAYBE(v, maxConnectionsPerAddress) { limits.maxConnectionsPerAddress = *v; }
  KJ_IF_MAYBE(v, maxBodyBuffer) { limits.maxBufferedBodyBytes = *v; }
  KJ_IF_MAYBE(v, maxAnswerBuffer) { limits.maxBufferedAnswerBytes = *v; }
  KJ_IF_MAYBE(v, bodyTimeoutSeconds) { limits.bodyTimeout = *v * kj::SECONDS; }
  KJ_IF_MAYBE(v, writeTimeoutSeconds) { limits.writeTimeout = *v * kj::SECONDS; }
}

const kj::StringPtr GATEWAY_KEYS[] = {
    "vault_socket",
    "listen",
    "prefix",
    "public_url",
    "max_body",
    "max_connections",
    "idle_timeout",
    "header_timeout",
    "max_connections_per_address",
    "max_body_buffer",
    "max_answer_buffer",
    "max_soap_body",
    "body_timeout",
    "write_timeout",
    "trusted_proxies",
    "access_log",
    "tls_certificate",
    "tls_key",
    "plain_http",
    "metrics_listen",
};

kj::ArrayPtr<const kj::StringPtr> gatewayKeys() {
  return GATEWAY_KEYS;
}

kj::OneOf<GatewaySettings, kj::String> parseSettings(kj::StringPtr text, kj::StringPtr origin) {
  GatewaySettings settings;
  KJ_IF_MAYBE(error, base::readConfigText(origin, text, gatewayKeys(),
                                          [&](kj::StringPtr key, kj::StringPtr value) {
                                            return settings.set(key, value);
                                          })) {
    return kj::mv(*error);
  }
  return kj::mv(settings);
}

kj::Maybe<kj::String> GatewaySettings::setOption(kj::StringPtr origin, kj::StringPtr keyValue) {
  return base::readConfigSetting(
      origin, keyValue, gatewayKeys(),
      [&](kj::StringPtr key, kj::StringPtr value) { return set(key, value); });
}

}  // namespace credvault::frontends
