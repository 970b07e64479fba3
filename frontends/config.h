// credvault-gateway — settings from /etc/credvault/gateway.conf and the command line.
//
// File format: base/config-file.h's (credvaultd's too): one "key = value" per line, '#'
// starts a comment anywhere, blank lines ignored; errors "FILE:LINE: message".
// Keys: vault_socket, listen (repeatable), prefix, public_url, max_body, max_connections,
// max_connections_per_address, max_body_buffer, max_answer_buffer, max_soap_body (bytes),
// idle_timeout, header_timeout, body_timeout, write_timeout (seconds), trusted_proxies
// (ADDR[/PREFIX] list; repeatable, lines add up), access_log (yes/no). Command-line options win:
// a setting given on the command line replaces the file's (all of the file's `listen`
// lines are replaced by the command line's --listen options, if any).

#pragma once

#include "frontends/http/client-address.h"
#include "frontends/http/parser.h"

#include <kj/one-of.h>
#include <kj/string.h>
#include <kj/vector.h>

namespace credvault::frontends {

using kj::uint;

struct GatewaySettings {
  kj::Maybe<kj::String> vaultSocket;
  kj::Vector<kj::String> listen;
  kj::Maybe<kj::String> prefix;
  // The URL clients reach the gateway's "/" by, as checkPublicUrl() normalises it; "" = not
  // set (the WSDL then names the address the request arrived on).
  kj::Maybe<kj::String> publicUrl;
  kj::Maybe<uint64_t> maxBody;
  kj::Maybe<uint64_t> maxConnections;
  kj::Maybe<uint64_t> idleTimeoutSeconds;
  kj::Maybe<uint64_t> headerTimeoutSeconds;
  kj::Maybe<bool> accessLog;
  kj::Maybe<uint64_t> maxConnectionsPerAddress;
  kj::Maybe<uint64_t> maxBodyBuffer;
  kj::Maybe<uint64_t> maxAnswerBuffer;
  kj::Maybe<uint64_t> maxSoapBody;
  kj::Maybe<uint64_t> bodyTimeoutSeconds;
  kj::Maybe<uint64_t> writeTimeoutSeconds;
  kj::Maybe<kj::Vector<http::Cidr>> trustedProxies;  // null: not set
  // TLS (docs/gateway.md): PEM files; a relative path names a systemd credential
  // ($CREDENTIALS_DIRECTORY, LoadCredential=). Both or neither.
  kj::Maybe<kj::String> tlsCertificate;
  kj::Maybe<kj::String> tlsKey;
  // Plain HTTP on an address that is not loopback (behind a TLS-terminating proxy): must be
  // asked for.
  kj::Maybe<bool> plainHttp;
  // Prometheus /metrics on its own address (plain HTTP, loopback unless plain_http); "" off.
  kj::Maybe<kj::String> metricsListen;

  // Applies one setting; returns an error message or null.
  kj::Maybe<kj::String> set(kj::StringPtr key, kj::StringPtr value);
  // `key=value` from the command line (--set), read as a line of the file would be; errors
  // are "ORIGIN: message" (an unknown key with a suggestion).
  kj::Maybe<kj::String> setOption(kj::StringPtr origin, kj::StringPtr keyValue);
  // `override`'s settings replace ours where given.
  void overrideWith(GatewaySettings&& override);
  // Applies the limits to `limits`.
  void applyTo(http::HttpLimits& limits) const;
  // trusted_proxies as a list (empty when not set).
  http::TrustedProxies trusted() const;
};

// public_url: "http" or "https", "://", a host name, IPv4 address or [IPv6] literal, an
// optional port (1..65535) and path (letters, digits, / - _ . ~); no user name, query or
// fragment; at most 200 bytes. Returns one line saying what is wrong (never the value: it
// might hold a password, as in "https://user:pw@host"), or null after setting `normalized`
// to the URL with scheme and host lower-cased and trailing slashes removed.
kj::Maybe<kj::String> checkPublicUrl(kj::StringPtr url, kj::String& normalized);

// Every setting name (for "did you mean" and the documentation test).
kj::ArrayPtr<const kj::StringPtr> gatewayKeys();

// Parses the configuration file text of `origin` (its path); errors name the file and line
// ("/etc/credvault/gateway.conf:3: unknown setting 'x' (did you mean 'y'?)").
kj::OneOf<GatewaySettings, kj::String> parseSettings(kj::StringPtr text,
                                                     kj::StringPtr origin = "gateway.conf");

constexpr kj::StringPtr DEFAULT_LISTEN = "127.0.0.1:8080"_kj;

}  // namespace credvault::frontends
