#include "config.h"

#include <kj/debug.h>

namespace credvault::frontends {

namespace {

kj::Maybe<uint64_t> number(kj::StringPtr text, uint64_t min, uint64_t max) {
  if (text.size() == 0 || text.size() > 12) return nullptr;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return nullptr;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v < min || v > max) return nullptr;
  return v;
}

bool isPrefixChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
         c == '-' || c == '_' || c == '.';
}

kj::String trimmed(const char* begin, const char* end) {
  while (begin < end && (*begin == ' ' || *begin == '\t' || *begin == '\r')) ++begin;
  while (end > begin && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) --end;
  return kj::heapString(begin, end - begin);
}

}  // namespace

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
  KJ_IF_MAYBE(v, o.maxBody) { maxBody = *v; }
  KJ_IF_MAYBE(v, o.maxConnections) { maxConnections = *v; }
  KJ_IF_MAYBE(v, o.idleTimeoutSeconds) { idleTimeoutSeconds = *v; }
  KJ_IF_MAYBE(v, o.headerTimeoutSeconds) { headerTimeoutSeconds = *v; }
  KJ_IF_MAYBE(v, o.accessLog) { accessLog = *v; }
}

void GatewaySettings::applyTo(http::HttpLimits& limits) const {
  KJ_IF_MAYBE(v, maxBody) { limits.maxBodyBytes = *v; }
  KJ_IF_MAYBE(v, maxConnections) { limits.maxConnections = *v; }
  KJ_IF_MAYBE(v, idleTimeoutSeconds) { limits.idleTimeout = *v * kj::SECONDS; }
  KJ_IF_MAYBE(v, headerTimeoutSeconds) { limits.headerTimeout = *v * kj::SECONDS; }
}

kj::OneOf<GatewaySettings, kj::String> parseSettings(kj::StringPtr text) {
  GatewaySettings settings;
  uint line = 0;
  const char* p = text.begin();
  const char* end = text.end();
  while (p < end) {
    ++line;
    const char* eol = p;
    while (eol < end && *eol != '\n') ++eol;
    const char* stop = p;
    while (stop < eol && *stop != '#') ++stop;
    auto content = trimmed(p, stop);
    p = eol < end ? eol + 1 : end;
    if (content.size() == 0) continue;
    KJ_IF_MAYBE(eq, content.findFirst('=')) {
      auto key = trimmed(content.begin(), content.begin() + *eq);
      auto value = trimmed(content.begin() + *eq + 1, content.end());
      KJ_IF_MAYBE(error, settings.set(key, value)) { return kj::str("line ", line, ": ", *error); }
    } else {
      return kj::str("line ", line, ": expected \"key = value\"");
    }
  }
  return kj::mv(settings);
}

}  // namespace credvault::frontends
