#include "config.h"
#include "base/ascii.h"
#include "base/config-file.h"
#include "base/parse-int.h"
#include "credvault-config.h"

#include <kj/debug.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

namespace credvault::daemon {

namespace {

// A setting's value is wrong: the message says what is expected (never the value).
struct BadValue {
  kj::String message;
};

[[noreturn]] void bad(kj::String message) {
  throw BadValue{kj::mv(message)};
}

uint64_t parseNumber(kj::StringPtr key, kj::StringPtr value, unsigned radix = 10) {
  KJ_IF_MAYBE(n, base::unsignedOrNull(value, UINT64_MAX, radix)) { return *n; }
  bad(kj::str(key, " must be a whole number", radix == 8 ? " (octal)" : ""));
}

// "10" or "10s" (seconds), "500ms", "10m": the timeouts' unit is the second, milliseconds are
// for tests.
kj::Duration parseDuration(kj::StringPtr key, kj::StringPtr value) {
  kj::StringPtr digits = value;
  kj::Duration unit = kj::SECONDS;
  kj::String copy;
  auto strip = [&](kj::StringPtr suffix, kj::Duration u) {
    if (digits.size() > suffix.size() && digits.endsWith(suffix)) {
      copy = kj::heapString(digits.slice(0, digits.size() - suffix.size()));
      digits = copy;
      unit = u;
      return true;
    }
    return false;
  };
  strip("ms", kj::MILLISECONDS) || strip("s", kj::SECONDS) || strip("m", kj::MINUTES);
  KJ_IF_MAYBE(n, base::unsignedOrNull(digits, 7 * 86400 * 1000ull)) { return int64_t(*n) * unit; }
  bad(kj::str(key, " must be a duration such as 30, 30s, 500ms or 5m"));
}

kj::String trim(kj::ArrayPtr<const char> s) {
  return kj::heapString(base::trimSpace(s));
}

// Items of a list separated by commas and/or spaces.
kj::Vector<kj::String> listItems(kj::StringPtr value) {
  kj::Vector<kj::String> items;
  size_t start = 0;
  for (size_t i = 0; i <= value.size(); i++) {
    if (i == value.size() || value[i] == ',' || value[i] == ' ' || value[i] == '\t') {
      auto item = trim(value.slice(start, i));
      if (item.size() > 0) items.add(kj::mv(item));
      start = i + 1;
    }
  }
  return items;
}

void applyKnown(Config& c, kj::StringPtr key, kj::StringPtr value) {
  if (key == "state_dir") {
    if (value.size() == 0) bad(kj::str("state_dir needs a directory"));
    c.stateDir = kj::heapString(value);
  } else if (key == "socket") {
    if (value.size() == 0) bad(kj::str("socket needs a path"));
    c.socket = kj::heapString(value);
  } else if (key == "key_file") {
    if (value.size() == 0) bad(kj::str("key_file needs a path"));
    c.keyFile = kj::heapString(value);
  } else if (key == "socket_mode") {
    auto mode = parseNumber(key, value, 8);
    if (mode > 0777) bad(kj::str("socket_mode must be an octal mode like 0666"));
    c.socketMode = mode;
  } else if (key == "system_uids") {
    c.systemUids.clear();
    for (auto& item : listItems(value)) {
      auto uid = parseNumber(key, item);
      if (uid >= UINT32_MAX) bad(kj::str("system_uids: a uid is below 4294967295"));
      c.systemUids.add(uid);
    }
  } else if (key == "gateway_uids") {
    // uids or user names, resolved at start (the gateway's user is made by sysusers.d, so
    // its uid differs from host to host).
    c.gatewayUids = listItems(value);
    c.gatewayUidsSet = true;
  } else if (key == "password_queue_per_uid") {
    c.passwordQueuePerUid = parseNumber(key, value);
    if (c.passwordQueuePerUid < 1 || c.passwordQueuePerUid > 100000) {
      bad(kj::str("password_queue_per_uid must be between 1 and 100000"));
    }
  } else if (key == "password_queue_per_client") {
    c.passwordQueuePerClient = parseNumber(key, value);
    if (c.passwordQueuePerClient < 1 || c.passwordQueuePerClient > 100000) {
      bad(kj::str("password_queue_per_client must be between 1 and 100000"));
    }
  } else if (key == "log_level") {
    if (value == "error")
      c.logLevel = Level::ERROR;
    else if (value == "warning")
      c.logLevel = Level::WARNING;
    else if (value == "notice")
      c.logLevel = Level::NOTICE;
    else if (value == "info")
      c.logLevel = Level::INFO;
    else if (value == "debug")
      c.logLevel = Level::DEBUG;
    else
      bad(kj::str("log_level must be error, warning, notice, info or debug"));
  } else if (key == "mode") {
    if (value == "onsite")
      c.onlineMode = false;
    else if (value == "online")
      c.onlineMode = true;
    else
      bad(kj::str("mode must be onsite or online"));
  } else if (key == "ticket_lifetime") {
    auto n = parseNumber(key, value);
    if (n < 60 || n > 30 * 86400) {
      bad(kj::str("ticket_lifetime must be between 60 seconds and 30 days (2592000)"));
    }
    c.ticketLifetimeSeconds = n;
  } else if (key == "expiry_warning_days") {
    auto days = parseNumber(key, value);
    if (days > 3650) bad(kj::str("expiry_warning_days must be between 0 (off) and 3650"));
    c.expiryWarningDays = days;
  } else if (key == "password_ops_limit") {
    auto n = parseNumber(key, value);
    if (n < 1 || n > 64) bad(kj::str("password_ops_limit must be between 1 and 64"));
    c.password.opsLimit = n;
  } else if (key == "password_mem_limit") {
    auto n = parseNumber(key, value);
    if (n < 8192 || n > (uint64_t(4) << 30)) {
      bad(kj::str("password_mem_limit must be between 8192 bytes and 4 GiB"));
    }
    c.password.memLimit = n;
  } else if (key == "audit_log") {
    if (value.size() == 0) {
      c.auditLog = nullptr;  // so that `--set audit_log=` turns off a file set in the config
    } else {
      // The daemon's working directory is not the operator's: a relative path would land
      // somewhere nobody looks.
      if (value[0] != '/') bad(kj::str("audit_log must be an absolute path (or empty for none)"));
      c.auditLog = kj::heapString(value);
    }
  } else if (key == "audit_failure") {
    if (value == "refuse")
      c.auditFailure = AuditFailureMode::REFUSE;
    else if (value == "log")
      c.auditFailure = AuditFailureMode::LOG;
    else
      bad(kj::str("audit_failure must be refuse or log"));
  } else if (key == "message_timeout") {
    auto d = parseDuration(key, value);
    if (d < 100 * kj::MILLISECONDS || d > 10 * kj::MINUTES) {
      bad(kj::str("message_timeout must be between 100ms and 10m"));
    }
    c.transport.messageTimeout = d;
  } else if (key == "idle_timeout") {
    auto d = parseDuration(key, value);
    if (d == 0 * kj::SECONDS) {
      c.transport.idleTimeout = nullptr;  // never
    } else {
      if (d < 100 * kj::MILLISECONDS) {
        bad(kj::str("idle_timeout must be 0 (never) or at least 100ms"));
      }
      c.transport.idleTimeout = d;
    }
  } else if (key == "write_timeout") {
    auto d = parseDuration(key, value);
    if (d < 100 * kj::MILLISECONDS || d > 10 * kj::MINUTES) {
      bad(kj::str("write_timeout must be between 100ms and 10m"));
    }
    c.transport.writeTimeout = d;
  } else if (key == "max_write_backlog") {
    auto n = parseNumber(key, value);
    if (n < (64 << 10) || n > (uint64_t(1) << 30)) {
      bad(kj::str("max_write_backlog must be between 65536 bytes and 1 GiB"));
    }
    c.transport.maxBacklogBytes = n;
  } else if (key == "verify_on_start") {
    // Skipping verification is a decision an operator writes down; see docs/operations.md.
    if (value == "true" || value == "yes")
      c.verifyOnStart = true;
    else if (value == "false" || value == "no")
      c.verifyOnStart = false;
    else
      bad(kj::str("verify_on_start must be true or false"));
  } else if (key == "storage") {
    if (value == "lmdb")
      c.storage = Storage::LMDB;
    else if (value == "postgresql")
      c.storage = Storage::POSTGRESQL;
    else
      bad(kj::str("storage must be lmdb or postgresql"));
  } else if (key == "postgresql") {
    if (value.size() == 0)
      bad(kj::str("postgresql needs a libpq connection string or service=NAME"));
    // The value is not repeated: it may be exactly the password we refuse to keep here.
    if (conninfoHasPassword(value)) {
      bad(
          kj::str("postgresql must not hold a password; put it in the systemd credential "
                  "credvault.pgpass or a libpq passfile (docs/operations.md)"));
    }
    c.postgresql = kj::heapString(value);
  } else if (key == "postgresql_connections") {
    auto n = parseNumber(key, value);
    if (n < 1 || n > 64) bad(kj::str("postgresql_connections must be between 1 and 64"));
    c.postgresqlConnections = n;
  } else if (key == "drain_timeout") {
    auto d = parseDuration(key, value);
    if (d < 0 * kj::SECONDS || d > 10 * kj::MINUTES) {
      bad(kj::str("drain_timeout must be between 0 and 10m"));
    }
    c.drainTimeout = d;
  } else {
    bad(kj::str("unknown setting '", key, "'"));
  }
}

// For readConfigText/readConfigSetting: the message for a known key's bad value, or null.
kj::Maybe<kj::String> applyChecked(Config& c, kj::StringPtr key, kj::StringPtr value) {
  try {
    applyKnown(c, key, value);
  } catch (BadValue& e) { return kj::mv(e.message); }
  return nullptr;
}

}  // namespace

bool conninfoHasPassword(kj::StringPtr conninfo) {
  auto text = base::trimSpace(conninfo);
  auto startsWith = [&](kj::StringPtr prefix) {
    return text.size() >= prefix.size() && memcmp(text.begin(), prefix.begin(), prefix.size()) == 0;
  };
  if (startsWith("postgresql://") || startsWith("postgres://")) {
    // postgresql://[user[:password]@][host][/dbname][?param=value&...]
    size_t start = startsWith("postgresql://") ? 13 : 11;
    size_t end = start;
    while (end < text.size() && text[end] != '/' && text[end] != '?') ++end;
    auto authority = text.slice(start, end);
    for (size_t i = 0; i < authority.size(); i++) {
      if (authority[i] != '@') continue;
      for (size_t j = 0; j < i; j++) {
        if (authority[j] == ':') return true;  // user:password@
      }
    }
    size_t query = end;
    while (query < text.size() && text[query] != '?') ++query;
    size_t i = query + 1;
    while (i < text.size()) {
      size_t next = i;
      while (next < text.size() && text[next] != '&') ++next;
      auto param = text.slice(i, next);
      static const char NAME[] = "password=";
      if (param.size() >= sizeof(NAME) - 1 && memcmp(param.begin(), NAME, sizeof(NAME) - 1) == 0) {
        return true;
      }
      i = next + 1;
    }
    return false;
  }
  // keyword = value pairs, values optionally in single quotes with backslash escapes. Keywords
  // are matched as libpq does (exactly, lower case).
  size_t i = 0;
  auto skipSpace = [&]() {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n')) ++i;
  };
  while (true) {
    skipSpace();
    if (i >= text.size()) return false;
    size_t keyStart = i;
    while (i < text.size() && text[i] != '=' && text[i] != ' ' && text[i] != '\t' &&
           text[i] != '\n') {
      ++i;
    }
    auto keyword = text.slice(keyStart, i);
    if (keyword.size() == 8 && memcmp(keyword.begin(), "password", 8) == 0) return true;
    skipSpace();
    if (i >= text.size() || text[i] != '=') return false;  // malformed: libpq refuses it
    ++i;
    skipSpace();
    if (i < text.size() && text[i] == '\'') {
      ++i;
      while (i < text.size() && text[i] != '\'') {
        if (text[i] == '\\') ++i;
        ++i;
      }
      ++i;
    } else {
      while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != '\n') {
        if (text[i] == '\\') ++i;
        ++i;
      }
    }
  }
}

const kj::StringPtr CONFIG_KEYS[] = {
    "state_dir",
    "socket",
    "key_file",
    "socket_mode",
    "system_uids",
    "gateway_uids",
    "password_queue_per_uid",
    "password_queue_per_client",
    "log_level",
    "mode",
    "ticket_lifetime",
    "password_ops_limit",
    "password_mem_limit",
    "audit_log",
    "audit_failure",
    "message_timeout",
    "idle_timeout",
    "write_timeout",
    "max_write_backlog",
    "expiry_warning_days",
    "verify_on_start",
    "drain_timeout",
    "storage",
    "postgresql",
    "postgresql_connections",
};

kj::ArrayPtr<const kj::StringPtr> configKeys() {
  return CONFIG_KEYS;
}

kj::String Config::keyFilePath() const {
  KJ_IF_MAYBE(k, keyFile) { return kj::heapString(*k); }
  return kj::str(stateDir, "/master.key");
}

AuditOptions Config::auditOptions() const {
  AuditOptions options;
  KJ_IF_MAYBE(path, auditLog) { options.path = kj::heapString(*path); }
  options.onFailure = auditFailure;
  return options;
}

Config defaultConfig() {
  Config c;
  c.stateDir = kj::heapString(CREDVAULT_DEFAULT_STATE_DIR);
  c.socket = kj::heapString(CREDVAULT_DEFAULT_SOCKET);
  return c;
}

kj::Maybe<kj::String> applySetting(Config& config, kj::StringPtr key, kj::StringPtr value) {
  return base::applyConfigKey(key, value, configKeys(), [&](kj::StringPtr k, kj::StringPtr v) {
    return applyChecked(config, k, v);
  });
}

kj::Maybe<kj::String> applyOption(Config& config, kj::StringPtr origin, kj::StringPtr keyValue) {
  return base::readConfigSetting(
      origin, keyValue, configKeys(),
      [&](kj::StringPtr k, kj::StringPtr v) { return applyChecked(config, k, v); });
}

kj::Maybe<kj::String> applyConfigFile(Config& config, kj::StringPtr path, kj::StringPtr content) {
  return base::readConfigText(path, content, configKeys(), [&](kj::StringPtr k, kj::StringPtr v) {
    return applyChecked(config, k, v);
  });
}

}  // namespace credvault::daemon
