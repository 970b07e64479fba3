#include "config.h"
#include "credvault-config.h"

#include <kj/debug.h>
#include <stdlib.h>
#include <errno.h>

namespace credvault::daemon {

namespace {

uint64_t parseNumber(kj::StringPtr key, kj::StringPtr value, int base = 10) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = strtoull(value.cStr(), &end, base);
  KJ_REQUIRE(errno == 0 && end != value.cStr() && *end == '\0' && value[0] != '-',
             "configuration value is not a number", key, value);
  return n;
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
  auto n = parseNumber(key, digits);
  KJ_REQUIRE(n <= 7 * 86400 * 1000ull, "configuration duration out of range", key, value);
  return int64_t(n) * unit;
}

kj::String trim(kj::ArrayPtr<const char> s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return kj::heapString(s.slice(b, e));
}

}  // namespace

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

void applySetting(Config& c, kj::StringPtr key, kj::StringPtr value) {
  if (key == "state_dir") {
    c.stateDir = kj::heapString(value);
  } else if (key == "socket") {
    c.socket = kj::heapString(value);
  } else if (key == "key_file") {
    c.keyFile = kj::heapString(value);
  } else if (key == "socket_mode") {
    auto mode = parseNumber(key, value, 8);
    KJ_REQUIRE(mode <= 0777, "socket_mode must be an octal mode like 0666", value);
    c.socketMode = mode;
  } else if (key == "system_uids") {
    c.systemUids.clear();
    kj::String copy = kj::heapString(value);
    size_t start = 0;
    for (size_t i = 0; i <= copy.size(); i++) {
      if (i == copy.size() || copy[i] == ',' || copy[i] == ' ') {
        auto item = trim(copy.slice(start, i));
        if (item.size() > 0) {
          auto uid = parseNumber(key, item);
          KJ_REQUIRE(uid < UINT32_MAX, "uid out of range", item);
          c.systemUids.add(uid);
        }
        start = i + 1;
      }
    }
  } else if (key == "gateway_uids") {
    // uids or user names, resolved at start (the gateway's user is made by sysusers.d, so
    // its uid differs from host to host).
    c.gatewayUids.clear();
    kj::String copy = kj::heapString(value);
    size_t start = 0;
    for (size_t i = 0; i <= copy.size(); i++) {
      if (i == copy.size() || copy[i] == ',' || copy[i] == ' ') {
        auto item = trim(copy.slice(start, i));
        if (item.size() > 0) c.gatewayUids.add(kj::mv(item));
        start = i + 1;
      }
    }
    c.gatewayUidsSet = true;
  } else if (key == "password_queue_per_uid") {
    c.passwordQueuePerUid = parseNumber(key, value);
    KJ_REQUIRE(c.passwordQueuePerUid >= 1 && c.passwordQueuePerUid <= 100000,
               "password_queue_per_uid must be between 1 and 100000", value);
  } else if (key == "password_queue_per_client") {
    c.passwordQueuePerClient = parseNumber(key, value);
    KJ_REQUIRE(c.passwordQueuePerClient >= 1 && c.passwordQueuePerClient <= 100000,
               "password_queue_per_client must be between 1 and 100000", value);
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
      KJ_FAIL_REQUIRE("log_level must be error, warning, notice, info or debug", value);
  } else if (key == "mode") {
    if (value == "onsite")
      c.onlineMode = false;
    else if (value == "online")
      c.onlineMode = true;
    else
      KJ_FAIL_REQUIRE("mode must be onsite or online", value);
  } else if (key == "ticket_lifetime") {
    c.ticketLifetimeSeconds = parseNumber(key, value);
    KJ_REQUIRE(c.ticketLifetimeSeconds >= 60 && c.ticketLifetimeSeconds <= 30 * 86400,
               "ticket_lifetime must be between 60 seconds and 30 days", value);
  } else if (key == "expiry_warning_days") {
    uint64_t days = parseNumber(key, value);
    KJ_REQUIRE(days <= 3650, "expiry_warning_days must be between 0 (off) and 3650", value);
    c.expiryWarningDays = days;
  } else if (key == "password_ops_limit") {
    c.password.opsLimit = parseNumber(key, value);
    KJ_REQUIRE(c.password.opsLimit >= 1 && c.password.opsLimit <= 64,
               "password_ops_limit must be between 1 and 64", value);
  } else if (key == "password_mem_limit") {
    c.password.memLimit = parseNumber(key, value);
    KJ_REQUIRE(c.password.memLimit >= 8192 && c.password.memLimit <= (size_t(4) << 30),
               "password_mem_limit must be between 8192 bytes and 4 GiB", value);
  } else if (key == "audit_log") {
    if (value.size() == 0) {
      c.auditLog = nullptr;  // so that `--set audit_log=` turns off a file set in the config
    } else {
      // The daemon's working directory is not the operator's: a relative path would land
      // somewhere nobody looks.
      KJ_REQUIRE(value[0] == '/', "audit_log must be an absolute path (or empty for none)", value);
      c.auditLog = kj::heapString(value);
    }
  } else if (key == "audit_failure") {
    if (value == "refuse")
      c.auditFailure = AuditFailureMode::REFUSE;
    else if (value == "log")
      c.auditFailure = AuditFailureMode::LOG;
    else
      KJ_FAIL_REQUIRE("audit_failure must be refuse or log", value);
  } else if (key == "message_timeout") {
    auto d = parseDuration(key, value);
    KJ_REQUIRE(d >= 100 * kj::MILLISECONDS && d <= 10 * kj::MINUTES,
               "message_timeout must be between 100ms and 10m", value);
    c.transport.messageTimeout = d;
  } else if (key == "idle_timeout") {
    auto d = parseDuration(key, value);
    if (d == 0 * kj::SECONDS) {
      c.transport.idleTimeout = nullptr;  // never
    } else {
      KJ_REQUIRE(d >= 100 * kj::MILLISECONDS, "idle_timeout must be 0 (never) or at least 100ms",
                 value);
      c.transport.idleTimeout = d;
    }
  } else if (key == "write_timeout") {
    auto d = parseDuration(key, value);
    KJ_REQUIRE(d >= 100 * kj::MILLISECONDS && d <= 10 * kj::MINUTES,
               "write_timeout must be between 100ms and 10m", value);
    c.transport.writeTimeout = d;
  } else if (key == "max_write_backlog") {
    auto n = parseNumber(key, value);
    KJ_REQUIRE(n >= (64 << 10) && n <= (uint64_t(1) << 30),
               "max_write_backlog must be between 65536 bytes and 1 GiB", value);
    c.transport.maxBacklogBytes = n;
  } else if (key == "verify_on_start") {
    // Skipping verification is a decision an operator writes down; see docs/operations.md.
    if (value == "true" || value == "yes")
      c.verifyOnStart = true;
    else if (value == "false" || value == "no")
      c.verifyOnStart = false;
    else
      KJ_FAIL_REQUIRE("verify_on_start must be true or false", value);
  } else if (key == "drain_timeout") {
    auto d = parseDuration(key, value);
    KJ_REQUIRE(d >= 0 * kj::SECONDS && d <= 10 * kj::MINUTES,
               "drain_timeout must be between 0 and 10m", value);
    c.drainTimeout = d;
  } else {
    KJ_FAIL_REQUIRE("unknown configuration key", key);
  }
}

void applyConfigFile(Config& config, kj::StringPtr path, kj::StringPtr content) {
  size_t lineNo = 0, start = 0;
  for (size_t i = 0; i <= content.size(); i++) {
    if (i < content.size() && content[i] != '\n') continue;
    ++lineNo;
    auto line = trim(content.slice(start, i));
    start = i + 1;
    if (line.size() == 0 || line[0] == '#') continue;
    KJ_IF_MAYBE(eq, line.findFirst('=')) {
      auto key = trim(line.slice(0, *eq));
      auto value = trim(line.slice(*eq + 1, line.size()));
      KJ_CONTEXT(path, lineNo);
      applySetting(config, key, value);
    } else {
      KJ_FAIL_REQUIRE("configuration line is not `key = value`", path, lineNo);
    }
  }
}

}  // namespace credvault::daemon
