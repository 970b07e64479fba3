// credvaultd — logging at the edge.
//
// Structured: a message plus fields journald can index (CREDVAULT_OP, CREDVAULT_UID,
// CREDVAULT_ASSOCIATE, CREDVAULT_RESULT, CREDVAULT_FIELD). Under systemd ($JOURNAL_STREAM)
// entries go to the journal natively; otherwise one line on stderr. Callers pass ids,
// uids, operation names and error codes only — never a secret, password, ticket, public
// value or comment.

#pragma once

#include <kj/string.h>
#include <kj/array.h>

namespace credvault::daemon {

enum class Level { CRITICAL = 2, ERROR = 3, WARNING = 4, NOTICE = 5, INFO = 6, DEBUG = 7 };

struct LogField {
  kj::StringPtr name;  // without the CREDVAULT_ prefix, e.g. "OP"
  kj::String value;
};

// What reaches a log line: printable UTF-8 only and at most `maxBytes` (plus a marker). Control
// characters, backslashes, C1 controls and bytes that are not UTF-8 become \xNN / \\ / \u00NN;
// a longer text is cut at a character boundary and ends in "...[N bytes cut]". log() applies
// it to every message and field, so text from a client (exception text quoting its bytes, a
// name) cannot forge lines, hide in terminals or flood the journal.
kj::String escapeForLog(kj::ArrayPtr<const char> text, size_t maxBytes);
constexpr size_t MAX_LOG_MESSAGE_BYTES = 2048;
constexpr size_t MAX_LOG_FIELD_BYTES = 512;

void setLogLevel(Level level);
// Whether this process runs under journald ($JOURNAL_STREAM): entries then go to the journal
// natively. Decided once, at the first call.
bool logsToJournal();
bool logEnabled(Level level);
void log(Level level, kj::StringPtr message, kj::ArrayPtr<const LogField> fields = nullptr);

template<typename... Fields>
void logf(Level level, kj::StringPtr message, Fields&&... fields) {
  if (!logEnabled(level)) return;
  LogField array[] = {kj::fwd<Fields>(fields)...};
  log(level, message, array);
}

inline void logf(Level level, kj::StringPtr message) {
  log(level, message);
}

}  // namespace credvault::daemon
