// credvaultd — configuration: defaults, then the config file, then the command line.
// The file format is base/config-file.h's (the gateway's too): `key = value` lines, `#`
// starts a comment anywhere. See credvaultd.conf(5).

#pragma once

#include "crypto/password.h"
#include "audit.h"
#include "log.h"
#include "ipc/buffered-stream.h"
#include <kj/string.h>
#include <kj/vector.h>

namespace credvault::daemon {

// Where the vault's records live (docs/operations.md, "Several hosts").
enum class Storage { LMDB, POSTGRESQL };

struct Config {
  // LMDB in the state directory (the embedded default), or a PostgreSQL database shared by
  // several hosts. Either way the state directory holds the socket, the lock and the key file.
  Storage storage = Storage::LMDB;
  // storage = postgresql: a libpq connection string or "service=NAME"; never a password
  // (refused when it holds one: the password comes from a passfile, see main.c++).
  kj::Maybe<kj::String> postgresql;
  uint32_t postgresqlConnections = 4;  // for transactions; one more listens for other hosts
  kj::String stateDir;
  kj::String socket;
  kj::Maybe<kj::String> keyFile;    // default: STATE_DIR/master.key
  uint32_t socketMode = 0666;       // every call is authorised by peer credentials
  kj::Vector<uint32_t> systemUids;  // besides uid 0
  // Front ends whose clientAddress is believed (throttle key, password queue lane, audit):
  // uids or user names. Unset: the user credvault-gateway, if it exists. uid 0 always.
  kj::Vector<kj::String> gatewayUids;
  bool gatewayUidsSet = false;
  // Password verifications waiting for a worker: per uid, and per client of a gateway uid
  // (a gateway uid's own cap is this × 64).
  uint32_t passwordQueuePerUid = 8;
  uint32_t passwordQueuePerClient = 4;
  Level logLevel = Level::INFO;
  bool createKey = false;   // create the key file when missing (embedded default)
  bool onlineMode = false;  // SuperOffice Online: partner app tokens are checked
  uint64_t ticketLifetimeSeconds = 8 * 3600;
  // A daily journald warning per active credential whose ValidTo falls within this many days
  // (or has passed); 0: no warnings (expiry.h).
  uint32_t expiryWarningDays = 14;
  crypto::PasswordParams password = crypto::defaultPasswordParams();
  kj::Maybe<kj::String> auditLog;  // absolute path of the JSON Lines audit file; null: none
  AuditFailureMode auditFailure = AuditFailureMode::REFUSE;
  // Per-connection transport budget: message_timeout, idle_timeout, write_timeout,
  // max_write_backlog (docs/limits.md).
  ipc::BufferedStream::Limits transport;
  // Verify the whole vault (every page, record, index and count) before serving; off only by
  // an explicit `verify_on_start = false` (docs/operations.md).
  bool verifyOnStart = true;
  // On SIGTERM: how long calls already received may take to be answered before the daemon
  // closes their connections anyway.
  kj::Duration drainTimeout = 10 * kj::SECONDS;

  kj::String keyFilePath() const;
  AuditOptions auditOptions() const;  // for AuditLog: the file, journald, the failure mode
};

Config defaultConfig();
// Whether a libpq connection string (key=value form or a postgresql:// URI) names a password.
bool conninfoHasPassword(kj::StringPtr conninfo);

// Every setting name, for "did you mean" and the documentation test.
kj::ArrayPtr<const kj::StringPtr> configKeys();
// Each returns one line saying what is wrong ("PATH:LINE: message", "ORIGIN: message",
// "message"), or null once applied. Messages never repeat a value.
kj::Maybe<kj::String> applyConfigFile(Config& config, kj::StringPtr path, kj::StringPtr content);
// `key=value` from the command line (`--set`), read as a line of the file would be.
kj::Maybe<kj::String> applyOption(Config& config, kj::StringPtr origin, kj::StringPtr keyValue);
kj::Maybe<kj::String> applySetting(Config& config, kj::StringPtr key, kj::StringPtr value);

}  // namespace credvault::daemon
