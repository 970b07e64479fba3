#include "audit.h"
#include "log.h"

#include "base/utf8.h"

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <kj/debug.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

namespace credvault::daemon {

namespace {

constexpr char HEX[] = "0123456789abcdef";
constexpr char ELLIPSIS[] = "\xe2\x80\xa6";  // U+2026, marks a value cut at the limit

kj::String describeErrno(int error) {
  char buffer[128];
  // GNU strerror_r: returns a pointer to the text, in `buffer` or a static string.
  return kj::heapString(strerror_r(error, buffer, sizeof(buffer)));
}

// The prefix of `s` that fits AUDIT_MAX_FIELD_BYTES, not cutting a UTF-8 sequence in two.
// (A view, not a StringPtr: the prefix has no NUL after it.)
kj::ArrayPtr<const char> clipped(kj::StringPtr s, bool& cut) {
  cut = s.size() > AUDIT_MAX_FIELD_BYTES;
  if (!cut) return s.asArray();
  return s.asArray().slice(0, base::utf8::boundaryAtOrBefore(s, AUDIT_MAX_FIELD_BYTES));
}

void addEscape(kj::Vector<char>& out, uint32_t codePoint) {
  char escape[] = {'\\',
                   'u',
                   HEX[(codePoint >> 12) & 0xf],
                   HEX[(codePoint >> 8) & 0xf],
                   HEX[(codePoint >> 4) & 0xf],
                   HEX[codePoint & 0xf]};
  out.addAll(escape, escape + sizeof(escape));
}

void addJsonString(kj::Vector<char>& out, kj::StringPtr value) {
  if (value.size() == 0) {
    out.addAll(kj::StringPtr("null"));
    return;
  }
  bool cut;
  auto s = clipped(value, cut);
  out.add('"');
  for (size_t i = 0; i < s.size();) {
    uint32_t c;
    size_t length = base::utf8::decodeAt(s, i, c);
    if (length == 0) {
      // Not text: replaced rather than copied, so the line stays valid JSON (and UTF-8).
      addEscape(out, 0xfffd);
      ++i;
      continue;
    }
    if (c == '"' || c == '\\') {
      out.add('\\');
      out.add(static_cast<char>(c));
    } else if (c == '\n') {
      out.addAll(kj::StringPtr("\\n"));
    } else if (c == '\r') {
      out.addAll(kj::StringPtr("\\r"));
    } else if (c == '\t') {
      out.addAll(kj::StringPtr("\\t"));
    } else if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029) {
      // Valid JSON unescaped except below 0x20, but tools that split on Unicode line breaks
      // (NEL, LS, PS) or show control characters to a terminal would see more than one line.
      addEscape(out, c);
    } else {
      out.addAll(s.begin() + i, s.begin() + i + length);
    }
    i += length;
  }
  if (cut) out.addAll(kj::StringPtr(ELLIPSIS));
  out.add('"');
}

void addKey(kj::Vector<char>& out, kj::StringPtr key) {
  if (out.size() > 1) out.add(',');  // after the opening brace: not the first key
  out.add('"');
  out.addAll(key);
  out.addAll(kj::StringPtr("\":"));
}

// RFC 3339, UTC, microseconds: "2026-12-01T06:00:00.123456Z".
kj::String rfc3339(kj::Date time) {
  constexpr int64_t NS_PER_SECOND = 1000000000;
  int64_t ns = (time - kj::UNIX_EPOCH) / kj::NANOSECONDS;
  int64_t seconds = ns / NS_PER_SECOND;
  int64_t fraction = ns % NS_PER_SECOND;
  if (fraction < 0) {  // before 1970: floor, so the fraction counts forward from a second
    fraction += NS_PER_SECOND;
    --seconds;
  }
  time_t t = static_cast<time_t>(seconds);
  struct tm tm;
  KJ_ASSERT(gmtime_r(&t, &tm) != nullptr);
  char buffer[96];  // room for any int in every field, so that nothing can be cut
  snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           static_cast<int>(fraction / 1000));
  return kj::heapString(buffer);
}

void closeFd(int fd) {
  // close() on a write-only file only reports earlier writeback errors, and Linux releases
  // the descriptor either way: there is nothing to retry.
  if (fd >= 0) ::close(fd);
}

int openAuditFile(kj::StringPtr path) {
  int fd;
  do {
    fd = ::open(path.cStr(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

}  // namespace

kj::String auditJson(const AuditRecord& r) {
  kj::Vector<char> out(512);
  out.add('{');
  auto number = [&](kj::StringPtr key, auto value) {
    addKey(out, key);
    out.addAll(kj::str(value));
  };
  auto string = [&](kj::StringPtr key, kj::StringPtr value) {
    addKey(out, key);
    addJsonString(out, value);
  };
  string("time", rfc3339(r.time));
  string("operation", r.operation);
  string("result", r.result);
  number("peer_uid", r.peerUid);
  number("peer_pid", r.peerPid);
  string("auth_method", r.authMethod);
  number("associate_id", r.associateId);
  if (r.targetAssociateId == 0) {
    addKey(out, "target_associate_id");
    out.addAll(kj::StringPtr("null"));
  } else {
    number("target_associate_id", r.targetAssociateId);
  }
  string("type", r.type);
  string("public_value_hmac", r.publicValueHmac);
  string("client_address", r.clientAddress);
  string("request_id", r.requestId);
  out.add('}');
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

AuditLog::AuditLog(AuditOptions options, const kj::MonotonicClock& clock)
    : options_(kj::mv(options)), clock_(clock), journal_(options_.journal && logsToJournal()) {
  KJ_IF_MAYBE(path, options_.path) {
    fd_ = openAuditFile(*path);
    if (fd_ < 0) {
      // Built by hand, not with KJ_REQUIRE, so the description is exactly this one line.
      kj::throwFatalException(
          kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                        kj::str("cannot open the audit log ", *path, ": ", describeErrno(errno),
                                "; fix the path or remove audit_log")));
    }
  }
}

AuditLog::~AuditLog() noexcept(false) {
  flushes_ = nullptr;
  if (batch_.size() > 0) appendLine(kj::heapString(batch_.asPtr()));  // at shutdown
  closeFd(fd_);
}

kj::Promise<bool> AuditLog::writeSoon(const AuditRecord& record) {
  if (journal_) sendToJournal(record);
  if (options_.path == nullptr) return true;
  batch_.addAll(auditJson(record));
  batch_.add('\n');
  ++batchRecords_;
  auto paf = kj::newPromiseAndFulfiller<bool>();
  batchWaiters_.add(kj::mv(paf.fulfiller));
  if (!flushScheduled_) {
    flushScheduled_ = true;
    if (flushes_.get() == nullptr) flushes_ = kj::heap<kj::TaskSet>(flushErrors_);
    // evalLast: once the loop has nothing else queued, so every call ending in this pass joins
    // the batch (evalLater made batches so small that a Get cost 40 % more daemon CPU).
    flushes_->add(kj::evalLast([this]() { flushBatch(); }));
  }
  return kj::mv(paf.promise);
}

void AuditLog::flushBatch() {
  flushScheduled_ = false;
  auto text = kj::heapString(batch_.asPtr());
  batch_.clear();
  size_t records = batchRecords_;
  batchRecords_ = 0;
  auto waiters = kj::mv(batchWaiters_);
  batchWaiters_ = kj::Vector<kj::Own<kj::PromiseFulfiller<bool>>>();
  bool ok = true;
  if (failing_ && !recover()) {
    ok = false;
  } else {
    int error = appendLine(text);
    if (error != 0) {
      failing_ = true;
      complainAboutWriting(error);
      ok = false;
    }
  }
  if (!ok) {
    // Kept line by line, so MAX_PENDING counts records.
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') {
        keep(kj::heapString(text.slice(start, i + 1)));
        start = i + 1;
      }
    }
  }
  (void)records;
  for (auto& w : waiters) w->fulfill(kj::cp(ok));
}

void AuditLog::FlushErrors::taskFailed(kj::Exception&& e) {
  logf(Level::ERROR, kj::str("writing the audit batch failed: ", e.getDescription()));
}

bool AuditLog::write(const AuditRecord& record) {
  if (journal_) sendToJournal(record);
  if (options_.path == nullptr) return true;

  auto line = kj::str(auditJson(record), '\n');
  if (failing_ && !recover()) {
    keep(kj::mv(line));
    return false;
  }
  int error = appendLine(line);
  if (error != 0) {
    failing_ = true;
    keep(kj::mv(line));
    complainAboutWriting(error);
    return false;
  }
  return true;
}

bool AuditLog::accepting() {
  if (!failing_ || options_.onFailure == AuditFailureMode::LOG) return true;
  return recover();
}

void AuditLog::reopen() {
  if (options_.path == nullptr) return;
  int error = reopenFile();
  if (error != 0) {
    complain("cannot reopen the audit log", error, "still writing to the file opened before");
  }
}

// Opens the path again and, only when that worked, closes the file opened before. Returns 0
// or errno.
int AuditLog::reopenFile() {
  int fd = openAuditFile(KJ_ASSERT_NONNULL(options_.path));
  if (fd < 0) return errno;
  closeFd(fd_);
  fd_ = fd;
  // A fresh file (the old one rotated away) cannot end in part of an earlier record.
  struct stat st;
  if (fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) partialLine_ = false;
  return 0;
}

// One write(2) per record, so that records never interleave (O_APPEND). Returns 0 or errno.
int AuditLog::appendLine(kj::StringPtr line) {
  // After a short write the file ends in a fragment: a newline first ends it there, so that
  // only the fragment is lost to a line-by-line reader, not this record too.
  auto text = partialLine_ ? kj::str('\n', line) : kj::heapString(line);
  size_t written = 0;
  while (written < text.size()) {
    ssize_t n = ::write(fd_, text.begin() + written, text.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      int error = errno;
      if (written > 0) partialLine_ = text[written - 1] != '\n';
      return error;
    }
    // A short write (the disk filled up under us) is followed by one that reports why.
    written += n;
  }
  partialLine_ = false;
  return 0;
}

// Reopens the file and writes the records kept while it failed, oldest first. True when the
// file is writable again (then no record is pending).
bool AuditLog::recover() {
  // A path that cannot be opened now is no reason to stop: the file opened before may take
  // the records, and if it does not, the complaint below says why.
  reopenFile();
  size_t done = 0;
  int error = 0;
  while (done < pending_.size()) {
    error = appendLine(pending_[done]);
    if (error != 0) break;
    ++done;
  }
  if (done > 0) {
    kj::Vector<kj::String> rest(pending_.size() - done);
    for (size_t i = done; i < pending_.size(); i++) rest.add(kj::mv(pending_[i]));
    pending_ = kj::mv(rest);
  }
  if (error != 0) {
    complainAboutWriting(error);
    return false;
  }

  failing_ = false;
  auto path = KJ_ASSERT_NONNULL(options_.path).asPtr();
  logf(lost_ > 0 ? Level::WARNING : Level::NOTICE,
       kj::str("the audit log ", path, " can be written again"),
       LogField{"AUDIT_LOG", kj::heapString(path)}, LogField{"AUDIT_WRITTEN_LATE", kj::str(done)},
       LogField{"AUDIT_LOST", kj::str(lost_)});
  lost_ = 0;
  lastComplaint_ = nullptr;  // a new failure is reported at once
  return true;
}

void AuditLog::keep(kj::String line) {
  // Oldest first: in fail-closed mode those are the calls that ran; later ones were refused.
  if (pending_.size() < MAX_PENDING) {
    pending_.add(kj::mv(line));
  } else {
    ++lost_;
  }
}

void AuditLog::complainAboutWriting(int error) {
  complain("cannot write the audit log", error,
           options_.onFailure == AuditFailureMode::REFUSE
               ? "calls are refused until it can be written (audit_failure = refuse)"
               : "calls go on (audit_failure = log)");
}

// Rate-limited ERROR. Names the file and the reason, never a record's content.
void AuditLog::complain(kj::StringPtr what, int error, kj::StringPtr consequence) {
  auto now = clock_.now();
  KJ_IF_MAYBE(last, lastComplaint_) {
    if (now - *last < COMPLAINT_INTERVAL) return;
  }
  lastComplaint_ = now;
  auto path = KJ_ASSERT_NONNULL(options_.path).asPtr();
  logf(Level::ERROR, kj::str(what, " ", path, ": ", describeErrno(error), "; ", consequence),
       LogField{"AUDIT_LOG", kj::heapString(path)}, LogField{"ERRNO", kj::str(error)},
       LogField{"AUDIT_PENDING", kj::str(pending_.size())}, LogField{"AUDIT_LOST", kj::str(lost_)});
}

void AuditLog::sendToJournal(const AuditRecord& r) {
  kj::Vector<kj::String> fields(16);
  fields.add(kj::str("MESSAGE_ID=", AUDIT_MESSAGE_ID));
  fields.add(kj::str("MESSAGE=audit ", r.operation, " ", r.result));
  fields.add(kj::str("PRIORITY=", static_cast<int>(Level::INFO)));
  fields.add(kj::str("SYSLOG_IDENTIFIER=credvaultd"));
  auto add = [&](kj::StringPtr name, kj::StringPtr value) {
    if (value.size() == 0) return;
    // journald keeps any bytes (newlines included: sd_journal_sendv frames them), so only
    // the length is bounded here.
    bool cut;
    auto text = clipped(value, cut);
    fields.add(kj::str("CREDVAULT_AUDIT_", name, "=", text, cut ? ELLIPSIS : ""));
  };
  add("OPERATION", r.operation);
  add("RESULT", r.result);
  add("PEER_UID", kj::str(r.peerUid));
  add("PEER_PID", kj::str(r.peerPid));
  add("AUTH_METHOD", r.authMethod);
  add("ASSOCIATE_ID", kj::str(r.associateId));
  if (r.targetAssociateId != 0) add("TARGET_ASSOCIATE_ID", kj::str(r.targetAssociateId));
  add("TYPE", r.type);
  add("PUBLIC_VALUE_HMAC", r.publicValueHmac);
  add("CLIENT_ADDRESS", r.clientAddress);
  add("REQUEST_ID", r.requestId);
  kj::Vector<struct iovec> iov(fields.size());
  for (auto& f : fields) iov.add(iovec{const_cast<char*>(f.begin()), f.size()});
  // Best effort, like every journal entry (journald itself drops under its rate limit): the
  // file is the trail that fails closed.
  sd_journal_sendv(iov.begin(), iov.size());
}

}  // namespace credvault::daemon
