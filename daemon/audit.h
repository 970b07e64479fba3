// credvaultd — the audit trail: one record per RPC call, reads included.
//
// Every call that reaches the daemon's choke point (rpc-server.c++) ends in exactly one
// AuditRecord: who (peer uid and pid, authentication method, acting associate), what
// (operation, target associate, credential type, a keyed hash of the public value), how it
// ended (result code) and, for calls that came through the gateway, the gateway's client
// address and request id. Records go to journald (fixed MESSAGE_ID, CREDVAULT_AUDIT_*
// fields) and, when `audit_log = PATH` is set, as one JSON object per line to that file.
//
// Security invariant: a record never holds a secret, password, ticket, token, comment or
// public value in clear — the public value appears only as the HMAC the vault computes
// (Vault::auditHash), which an administrator reproduces with `credvaultctl audit-hash`.
//
// Failure: when the file cannot be written the log says so (rate-limited) and, in the
// default fail-closed mode, the daemon refuses calls (`unavailable`) until a write succeeds
// again — as Vault does when no audit device can record a request.
//
// Thread-compatible: used from the event loop thread only.

#pragma once

#include <kj/string.h>
#include <kj/time.h>
#include <kj/filesystem.h>

namespace credvault::daemon {

struct AuditRecord {
  kj::Date time = kj::UNIX_EPOCH;
  kj::StringPtr operation;      // "get", "save", "associate-add", "authenticate-password", ...
  kj::StringPtr result;         // "ok" or an error code name ("permission-denied")
  uint32_t peerUid = 0;
  uint32_t peerPid = 0;
  kj::StringPtr authMethod;     // "none", "peer", "password", "ticket", "token"
  int32_t associateId = 0;      // the acting associate; 0 when none
  int32_t targetAssociateId = 0;  // the associate acted on; 0 when none or not applicable
  kj::StringPtr type;           // credential type; empty when none
  kj::StringPtr publicValueHmac;  // lower-case hex; empty when the call names no value
  kj::StringPtr clientAddress;  // from a front end; empty otherwise
  kj::StringPtr requestId;      // from a front end; empty otherwise
};

enum class AuditFailureMode {
  REFUSE,  // fail closed: calls are answered `unavailable` while the file cannot be written
  LOG,     // fail open: the failure is logged, calls go on
};

struct AuditOptions {
  kj::Maybe<kj::String> path;  // JSON Lines file; null: journald only
  bool journal = true;         // records to journald (sd_journal_send)
  AuditFailureMode onFailure = AuditFailureMode::REFUSE;
};

class AuditLog {
 public:
  // Opens (creating, mode 0600, append-only) the file when one is configured. Throws with an
  // operator-facing message when it cannot be opened at start.
  explicit AuditLog(AuditOptions options);
  ~AuditLog() noexcept(false);
  KJ_DISALLOW_COPY(AuditLog);

  // Writes one record. Returns false when the configured file could not be written.
  bool write(const AuditRecord& record);

  // Whether a call may proceed: true unless fail-closed and the last write failed (then it
  // tries to reopen the file first, so a fixed disk lets calls through again).
  bool accepting();

  // Reopens the file (after log rotation; SIGHUP).
  void reopen();

  AuditFailureMode failureMode() const { return options_.onFailure; }

 private:
  AuditOptions options_;
  int fd_ = -1;
  bool failing_ = false;
  kj::Date lastComplaint_ = kj::UNIX_EPOCH;
};

// The record as one JSON object (no trailing newline); exposed for tests.
kj::String auditJson(const AuditRecord& record);

}  // namespace credvault::daemon
