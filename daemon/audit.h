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
#include <kj/async.h>
#include <kj/vector.h>

namespace credvault::daemon {

// The journald MESSAGE_ID of every audit record: `journalctl MESSAGE_ID=<this>`. Generated
// once (systemd-id128 new) and never to be changed: operators' queries and alerts name it.
constexpr char AUDIT_MESSAGE_ID[] = "b859a4384e924584b97c40e46a54c7de";

// Longest string field (in bytes, before escaping) a record carries; longer values are cut
// at a UTF-8 boundary and end in "…". Calls that fail validation are audited too, with what
// the client sent, and a client must not be able to fill the disk (and so, fail-closed,
// stop the vault) with one huge type. Valid values never reach it: core::MAX_TYPE_CHARS is
// 64 code points (at most 256 bytes); client address and request id are at most 64 bytes.
constexpr size_t AUDIT_MAX_FIELD_BYTES = 256;

struct AuditRecord {
  kj::Date time = kj::UNIX_EPOCH;
  kj::StringPtr operation;  // "get", "save", "associate-add", "authenticate-password", ...
  kj::StringPtr result;     // "ok" or an error code name ("permission-denied")
  uint32_t peerUid = 0;
  uint32_t peerPid = 0;
  kj::StringPtr authMethod;       // "none", "peer", "password", "ticket", "token"
  int32_t associateId = 0;        // the acting associate; 0 when none
  int32_t targetAssociateId = 0;  // the associate acted on; 0 when none or not applicable
  kj::StringPtr type;             // credential type; empty when none
  kj::StringPtr publicValueHmac;  // lower-case hex; empty when the call names no value
  kj::StringPtr clientAddress;    // from a front end; empty otherwise
  kj::StringPtr requestId;        // from a front end; empty otherwise
};

enum class AuditFailureMode {
  REFUSE,  // fail closed: calls are answered `unavailable` while the file cannot be written
  LOG,     // fail open: the failure is logged, calls go on
};

struct AuditOptions {
  kj::Maybe<kj::String> path;  // JSON Lines file; null: journald only
  bool journal = true;         // records to journald, when the daemon runs under journald
  AuditFailureMode onFailure = AuditFailureMode::REFUSE;
};

class AuditLog {
 public:
  // Opens (creating, mode 0600, append-only) the file when one is configured. Throws with an
  // operator-facing message when it cannot be opened at start. `clock` paces the complaints
  // about a failing file (at most one ERROR per COMPLAINT_INTERVAL).
  explicit AuditLog(AuditOptions options,
                    const kj::MonotonicClock& clock = kj::systemCoarseMonotonicClock());
  ~AuditLog() noexcept(false);
  KJ_DISALLOW_COPY(AuditLog);

  // Writes one record. Returns false when the configured file could not be written; the
  // record is then kept (up to MAX_PENDING records) and written, in order, as soon as the
  // file can be written again. The journal copy does not depend on the file.
  bool write(const AuditRecord& record);

  // The same, batched: the record joins those of every other call that ends in this turn of
  // the event loop, and the batch is written with one write(2) when the loop has nothing else
  // queued (a write per call cost 20-35 % of a Get's daemon CPU). Resolves once the batch is
  // written (true) or could not be (false; the records are kept as with write()). Needs the event
  // loop; the daemon answers a call only after its record's promise resolves.
  kj::Promise<bool> writeSoon(const AuditRecord& record);

  // Whether a call may proceed: true unless fail-closed and the last write failed. Then it
  // reopens the file and writes the kept records: true only when that succeeded, so a
  // fixed disk lets calls through again and a full one does not (opening a full disk's file
  // succeeds, so a successful reopen alone proves nothing).
  bool accepting();

  // Reopens the file (after log rotation; SIGHUP). When the path cannot be opened, says so
  // and keeps writing to the file opened before, which is better than losing records.
  void reopen();

  AuditFailureMode failureMode() const { return options_.onFailure; }

  static constexpr size_t MAX_PENDING = 1024;
  static constexpr kj::Duration COMPLAINT_INTERVAL = 10 * kj::SECONDS;

 private:
  AuditOptions options_;
  const kj::MonotonicClock& clock_;
  bool journal_;
  int fd_ = -1;
  bool failing_ = false;
  bool partialLine_ = false;        // the file may end in part of a record (short write)
  kj::Vector<kj::String> pending_;  // lines not yet in the file, oldest first
  uint64_t lost_ = 0;               // records dropped since failing began (pending_ full)
  kj::Maybe<kj::TimePoint> lastComplaint_;
  // The batch of writeSoon(): lines and whom to tell, written by flushBatch() at the end of
  // the event-loop turn.
  kj::Vector<char> batch_;
  size_t batchRecords_ = 0;
  kj::Vector<kj::Own<kj::PromiseFulfiller<bool>>> batchWaiters_;
  bool flushScheduled_ = false;
  struct FlushErrors final : public kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&& e) override;
  };
  FlushErrors flushErrors_;
  kj::Own<kj::TaskSet> flushes_;  // made on first use: needs the event loop

  void flushBatch();

  int appendLine(kj::StringPtr line);
  int reopenFile();
  bool recover();
  void keep(kj::String line);
  void complainAboutWriting(int error);
  void complain(kj::StringPtr what, int error, kj::StringPtr consequence);
  void sendToJournal(const AuditRecord& record);
};

// The record as one JSON object (no trailing newline); exposed for tests. ASCII except for
// valid UTF-8, which is passed through: C0 and C1 control characters, DEL, U+2028 and
// U+2029 are escaped and each byte that is not part of valid UTF-8 becomes \ufffd, so a
// record is one line of valid JSON whatever a client sent.
kj::String auditJson(const AuditRecord& record);

}  // namespace credvault::daemon
