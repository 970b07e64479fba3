// Tests for daemon/audit.h: the JSON record (every key, what clients send escaped into one
// valid line), the file (mode 0600, appends across reopen and rotation), failure handling
// (fail closed and fail open, recovery that writes the kept records, rate-limited
// complaints without record content) and the one-line error at start.

#include "daemon/audit.h"
#include "tests/support/capture-stderr.h"
#include "tests/support/clock.h"
#include "tests/support/temp-dir.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <gtest/gtest.h>
#include <kj/exception.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string>
#include <utility>
#include <vector>

namespace credvault::daemon {
namespace {

// Log lines must reach stderr, where the complaint tests count them, even when the tests run
// inside a systemd service. log.c++ decides at its first line, so before any test runs.
[[maybe_unused]] const bool NOT_UNDER_JOURNALD = (unsetenv("JOURNAL_STREAM"), true);

constexpr int64_t DEC_1_2026_0600 = 1796104800;  // 2026-12-01T06:00:00Z, seconds since 1970

AuditRecord sample() {
  AuditRecord r;
  r.time = kj::UNIX_EPOCH + DEC_1_2026_0600 * kj::SECONDS + 123456789 * kj::NANOSECONDS;
  r.operation = "get";
  r.result = "ok";
  r.peerUid = 1000;
  r.peerPid = 4242;
  r.authMethod = "ticket";
  r.associateId = 7;
  r.targetAssociateId = 9;
  r.type = "imap";
  r.publicValueHmac = "00ff";
  r.clientAddress = "192.0.2.1";
  r.requestId = "req-1";
  return r;
}

// Structure is checked with capnp's parser. Decoded strings are checked with the strict reader
// below: capnp 0.9.2 reads the hex letters of a \u escape wrongly (\u00e9 as U+0049; fixed
// upstream in capnproto/capnproto#1552, 0.10.3) and does not join surrogate pairs.
kj::Own<capnp::MallocMessageBuilder> parse(kj::StringPtr text) {
  auto message = kj::heap<capnp::MallocMessageBuilder>();
  capnp::JsonCodec codec;
  codec.decodeRaw(text, message->initRoot<capnp::JsonValue>());
  return message;
}

capnp::JsonValue::Reader root(kj::Own<capnp::MallocMessageBuilder>& message) {
  return message->getRoot<capnp::JsonValue>().asReader();
}

capnp::JsonValue::Reader field(capnp::JsonValue::Reader object, kj::StringPtr name) {
  for (auto f : object.getObject()) {
    if (f.getName() == name) return f.getValue();
  }
  ADD_FAILURE() << "no key " << name.cStr();
  return {};
}

// One flat JSON object as an audit line has it: keys with string, number or null values.
// Strict: a raw control character, an unknown escape or a lone surrogate is an error.
class FlatObject {
 public:
  explicit FlatObject(kj::StringPtr text) : s_(text.begin(), text.size()) {
    expect('{');
    if (peek() != '}') {
      do {
        auto key = string();
        expect(':');
        values_.emplace_back(key, value());
      } while (accept(','));
    }
    expect('}');
    if (pos_ != s_.size()) fail("text after the object");
  }

  bool valid() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  size_t size() const { return values_.size(); }
  const std::string& key(size_t i) const { return values_[i].first; }
  // The decoded string, the number's text, or "null".
  std::string operator[](const std::string& key) const {
    for (auto& kv : values_) {
      if (kv.first == key) return kv.second;
    }
    ADD_FAILURE() << "no key " << key;
    return "";
  }

 private:
  std::string s_;
  size_t pos_ = 0;
  std::string error_;
  std::vector<std::pair<std::string, std::string>> values_;

  void fail(const char* what) {
    if (error_.empty()) error_ = std::string(what) + " at byte " + std::to_string(pos_);
    pos_ = s_.size();
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool accept(char c) {
    if (peek() != c || pos_ >= s_.size()) return false;
    ++pos_;
    return true;
  }
  void expect(char c) {
    if (!accept(c)) fail("unexpected character");
  }
  uint32_t hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
      char c = peek();
      ++pos_;
      if (c >= '0' && c <= '9') {
        v = v * 16 + (c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v = v * 16 + (c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v = v * 16 + (c - 'A' + 10);
      } else {
        fail("bad \\u escape");
        return 0;
      }
    }
    return v;
  }
  static void addUtf8(std::string& out, uint32_t c) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xe0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  std::string string() {
    std::string out;
    expect('"');
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (static_cast<uint8_t>(c) < 0x20) return fail("raw control character"), out;
      if (c != '\\') {
        out += c;
        continue;
      }
      char e = s_[pos_++];
      static const char FROM[] = "\"\\/bfnrt", TO[] = "\"\\/\b\f\n\r\t";
      if (e != 'u') {
        const char* at = e == '\0' ? nullptr : strchr(FROM, e);
        if (at == nullptr) return fail("unknown escape"), out;
        out += TO[at - FROM];
        continue;
      }
      uint32_t c1 = hex4();
      if (c1 >= 0xdc00 && c1 <= 0xdfff) return fail("lone low surrogate"), out;
      if (c1 >= 0xd800 && c1 <= 0xdbff) {
        if (!accept('\\') || !accept('u')) return fail("lone high surrogate"), out;
        uint32_t c2 = hex4();
        if (c2 < 0xdc00 || c2 > 0xdfff) return fail("lone high surrogate"), out;
        c1 = 0x10000 + ((c1 - 0xd800) << 10) + (c2 - 0xdc00);
      }
      addUtf8(out, c1);
    }
    expect('"');
    return out;
  }
  std::string value() {
    if (peek() == '"') return string();
    if (s_.compare(pos_, 4, "null") == 0) {
      pos_ += 4;
      return "null";
    }
    size_t start = pos_;
    accept('-');
    while (peek() >= '0' && peek() <= '9') ++pos_;
    if (pos_ == start || (pos_ == start + 1 && s_[start] == '-')) fail("not a value");
    return s_.substr(start, pos_ - start);
  }
};

// A line as the daemon wrote it: one JSON object, no raw control byte.
void expectOneLine(kj::StringPtr line) {
  for (char c : line) {
    EXPECT_GE(static_cast<uint8_t>(c), 0x20u) << "raw control byte in " << line.cStr();
  }
}

using support::FakeClock;
using support::readFile;
using support::TempDir;

kj::Vector<kj::String> linesOf(kj::StringPtr path) {
  auto text = readFile(path);
  kj::Vector<kj::String> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); i++) {
    if (text[i] == '\n') {
      lines.add(kj::heapString(text.data() + start, i - start));
      start = i + 1;
    }
  }
  EXPECT_EQ(start, text.size()) << "the file does not end with a newline";
  return lines;
}

std::string requestIdOf(kj::StringPtr line) {
  FlatObject object(line);
  EXPECT_TRUE(object.valid()) << object.error() << ": " << line.cStr();
  return object["request_id"];
}

AuditOptions fileOptions(kj::StringPtr path, AuditFailureMode mode = AuditFailureMode::REFUSE) {
  AuditOptions options;
  options.path = kj::heapString(path);
  options.journal = false;
  options.onFailure = mode;
  return options;
}

bool haveDevFull() {
  return access("/dev/full", W_OK) == 0;
}

using support::CaptureStderr;

// ---------------------------------------------------------------------------------------
// The record as JSON

TEST(AuditJson, HasEveryKeyInOrder) {
  auto line = auditJson(sample());
  EXPECT_EQ(line,
            "{\"time\":\"2026-12-01T06:00:00.123456Z\",\"operation\":\"get\",\"result\":\"ok\","
            "\"peer_uid\":1000,\"peer_pid\":4242,\"auth_method\":\"ticket\",\"associate_id\":7,"
            "\"target_associate_id\":9,\"type\":\"imap\",\"public_value_hmac\":\"00ff\","
            "\"client_address\":\"192.0.2.1\",\"request_id\":\"req-1\"}");

  const char* keys[] = {"time",     "operation",         "result",         "peer_uid",
                        "peer_pid", "auth_method",       "associate_id",   "target_associate_id",
                        "type",     "public_value_hmac", "client_address", "request_id"};
  FlatObject object(line);
  ASSERT_TRUE(object.valid()) << object.error();
  ASSERT_EQ(object.size(), 12u);
  for (size_t i = 0; i < 12; i++) EXPECT_EQ(object.key(i), keys[i]);

  auto message = parse(line);  // and a second, independent parser agrees
  auto json = root(message);
  ASSERT_EQ(json.which(), capnp::JsonValue::OBJECT);
  ASSERT_EQ(json.getObject().size(), 12u);
  for (size_t i = 0; i < 12; i++) EXPECT_EQ(json.getObject()[i].getName(), keys[i]);
  EXPECT_EQ(field(json, "time").getString(), "2026-12-01T06:00:00.123456Z");
  EXPECT_EQ(field(json, "peer_uid").getNumber(), 1000);
  EXPECT_EQ(field(json, "peer_pid").getNumber(), 4242);
  EXPECT_EQ(field(json, "associate_id").getNumber(), 7);
  EXPECT_EQ(field(json, "target_associate_id").getNumber(), 9);
  EXPECT_EQ(field(json, "client_address").getString(), "192.0.2.1");
}

TEST(AuditJson, EmptyStringsAndNoTargetAreNull) {
  AuditRecord r;
  r.operation = "status";
  r.result = "ok";
  r.authMethod = "peer";
  r.peerUid = UINT32_MAX;
  r.associateId = -1;
  auto message = parse(auditJson(r));
  auto json = root(message);
  ASSERT_EQ(json.getObject().size(), 12u);
  EXPECT_EQ(field(json, "time").getString(), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(field(json, "peer_uid").getNumber(), 4294967295.0);
  EXPECT_EQ(field(json, "associate_id").getNumber(), -1);
  for (auto key :
       {"target_associate_id", "type", "public_value_hmac", "client_address", "request_id"}) {
    EXPECT_EQ(field(json, key).which(), capnp::JsonValue::NULL_) << key;
  }
  r.associateId = 0;  // only the target's 0 means "none"
  auto again = parse(auditJson(r));
  EXPECT_EQ(field(root(again), "associate_id").which(), capnp::JsonValue::NUMBER);
  EXPECT_EQ(field(root(again), "associate_id").getNumber(), 0);
}

TEST(AuditJson, TimeIsUtcWithMicroseconds) {
  auto timeOf = [](kj::Date date) {
    AuditRecord r;
    r.time = date;
    FlatObject object(auditJson(r));
    EXPECT_TRUE(object.valid()) << object.error();
    return object["time"];
  };
  auto dec1 = kj::UNIX_EPOCH + DEC_1_2026_0600 * kj::SECONDS;
  EXPECT_EQ(timeOf(dec1 + 999 * kj::NANOSECONDS), "2026-12-01T06:00:00.000000Z");
  EXPECT_EQ(timeOf(dec1 - 1 * kj::NANOSECONDS), "2026-12-01T05:59:59.999999Z");  // truncated
  EXPECT_EQ(timeOf(kj::UNIX_EPOCH - 1 * kj::MICROSECONDS), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(timeOf(kj::UNIX_EPOCH + 951782400 * kj::SECONDS), "2000-02-29T00:00:00.000000Z");
}

TEST(AuditJson, HostileStringsStayOneLineOfValidJson) {
  // A NUL, every escape JSON has, C0/DEL/C1 controls, Unicode line breaks, and byte
  // sequences that are not UTF-8: stray continuation, overlong '/', surrogate, truncated.
  const char typeBytes[] =
      "a\"b\\c\nd\re\tf\x01g\x7f"
      "h\0i"
      "\xc2\x85j\xe2\x80\xa8k\xe2\x80\xa9l"
      "\x80m\xc0\xafn\xed\xa0\x80o\xff"
      "p\xe2\x82";
  auto type = kj::heapString(typeBytes, sizeof(typeBytes) - 1);
  auto r = sample();
  r.type = type;
  r.clientAddress = "\",\"peer_uid\":0,\"x\":\"";  // an attempt to end the string, add keys
  r.requestId = "\xc3\x85se \xe2\x82\xac \xf0\x9f\x94\x91";  // "Åse € 🔑": valid, kept

  auto line = auditJson(r);
  expectOneLine(line);
  EXPECT_EQ(line.findFirst('\n'), nullptr);
  EXPECT_NE(std::string(line.cStr())
                .find("\"type\":\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u007fh\\u0000i"
                      "\\u0085j\\u2028k\\u2029l"
                      "\\ufffdm\\ufffd\\ufffdn\\ufffd\\ufffd\\ufffdo\\ufffdp\\ufffd\\ufffd\""),
            std::string::npos)
      << line.cStr();
  EXPECT_NE(
      std::string(line.cStr()).find("\"request_id\":\"\xc3\x85se \xe2\x82\xac \xf0\x9f\x94\x91\"}"),
      std::string::npos)
      << line.cStr();

  FlatObject object(line);
  ASSERT_TRUE(object.valid()) << object.error();
  ASSERT_EQ(object.size(), 12u);  // nothing injected
  EXPECT_EQ(object["peer_uid"], "1000");
  const std::string FFFD = "\xef\xbf\xbd";
  EXPECT_EQ(object["type"], std::string("a\"b\\c\nd\re\tf\x01g\x7fh\0i", 17) +
                                "\xc2\x85j\xe2\x80\xa8k\xe2\x80\xa9l" + FFFD + "m" + FFFD + FFFD +
                                "n" + FFFD + FFFD + FFFD + "o" + FFFD + "p" + FFFD + FFFD);
  EXPECT_EQ(object["client_address"], "\",\"peer_uid\":0,\"x\":\"");
  EXPECT_EQ(object["request_id"], "\xc3\x85se \xe2\x82\xac \xf0\x9f\x94\x91");

  auto message = parse(line);
  ASSERT_EQ(root(message).getObject().size(), 12u);
  EXPECT_EQ(field(root(message), "peer_uid").getNumber(), 1000);
}

TEST(AuditJson, CutsLongValuesAtACharacter) {
  const std::string ELLIPSIS = "\xe2\x80\xa6";
  auto typeOf = [](const AuditRecord& r) {
    FlatObject object(auditJson(r));
    EXPECT_TRUE(object.valid()) << object.error();
    return object["type"];
  };
  auto r = sample();
  auto atLimit = kj::heapString(std::string(AUDIT_MAX_FIELD_BYTES, 'x').c_str());
  r.type = atLimit;
  EXPECT_EQ(typeOf(r), std::string(AUDIT_MAX_FIELD_BYTES, 'x'));

  auto huge = kj::heapString(std::string(100000, 'y').c_str());
  r.type = huge;
  EXPECT_LT(auditJson(r).size(), AUDIT_MAX_FIELD_BYTES + 400);
  EXPECT_EQ(typeOf(r), std::string(AUDIT_MAX_FIELD_BYTES, 'y') + ELLIPSIS);

  // "é" (2 bytes) across the limit is dropped whole, not cut into an invalid byte.
  auto straddling = kj::str(std::string(AUDIT_MAX_FIELD_BYTES - 1, 'z').c_str(), "\xc3\xa9");
  r.type = straddling;
  EXPECT_EQ(typeOf(r), std::string(AUDIT_MAX_FIELD_BYTES - 1, 'z') + ELLIPSIS);
}

// ---------------------------------------------------------------------------------------
// The file

TEST(AuditLog, FileIsPrivateAndAppendsAcrossReopenAndRestart) {
  TempDir dir;
  auto path = (dir / "audit.log");
  mode_t old = umask(022);  // the file's mode must not depend on the umask
  {
    AuditLog log(fileOptions(path));
    auto r = sample();
    r.requestId = "one";
    EXPECT_TRUE(log.write(r));
    log.reopen();
    r.requestId = "two";
    EXPECT_TRUE(log.write(r));
  }
  umask(old);
  struct stat st;
  ASSERT_EQ(stat(path.cStr(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  {
    AuditLog log(fileOptions(path));  // a restart appends too
    auto r = sample();
    r.requestId = "three";
    EXPECT_TRUE(log.write(r));
    EXPECT_TRUE(log.accepting());
  }
  auto lines = linesOf(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(requestIdOf(lines[0]), "one");
  EXPECT_EQ(requestIdOf(lines[1]), "two");
  EXPECT_EQ(requestIdOf(lines[2]), "three");
  for (auto& line : lines) expectOneLine(line);
}

TEST(AuditLog, ReopenFollowsRotation) {
  TempDir dir;
  auto path = (dir / "audit.log");
  AuditLog log(fileOptions(path));
  auto r = sample();
  r.requestId = "before";
  EXPECT_TRUE(log.write(r));
  ASSERT_EQ(rename(path.cStr(), (dir / "audit.log.1").cStr()), 0);  // what logrotate does
  log.reopen();                                                     // then SIGHUP
  r.requestId = "after";
  EXPECT_TRUE(log.write(r));

  auto rotated = linesOf((dir / "audit.log.1"));
  ASSERT_EQ(rotated.size(), 1u);
  EXPECT_EQ(requestIdOf(rotated[0]), "before");
  auto current = linesOf(path);
  ASSERT_EQ(current.size(), 1u);
  EXPECT_EQ(requestIdOf(current[0]), "after");
  struct stat st;
  ASSERT_EQ(stat(path.cStr(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST(AuditLog, KeepsTheOldFileWhenReopenFails) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  TempDir dir;
  auto path = (dir / "audit.log");
  AuditLog log(fileOptions(path));
  ASSERT_EQ(rename(path.cStr(), (dir / "audit.log.1").cStr()), 0);
  ASSERT_EQ(chmod(dir.path().cStr(), 0500), 0);  // the new file cannot be created
  {
    CaptureStderr err;
    log.reopen();
    EXPECT_EQ(err.count("cannot reopen the audit log " + std::string(path.cStr()) +
                        ": Permission denied; still writing to the file opened before"),
              1u)
        << err.text();
  }
  EXPECT_TRUE(log.write(sample()));
  EXPECT_TRUE(log.accepting());
  ASSERT_EQ(chmod(dir.path().cStr(), 0700), 0);
  EXPECT_EQ(linesOf((dir / "audit.log.1")).size(), 1u);
}

TEST(AuditLog, JournalOnlyNeverFails) {
  AuditOptions options;
  options.journal = false;
  AuditLog log(kj::mv(options));
  log.reopen();
  EXPECT_TRUE(log.write(sample()));
  EXPECT_TRUE(log.accepting());
  EXPECT_EQ(log.failureMode(), AuditFailureMode::REFUSE);
}

// ---------------------------------------------------------------------------------------
// Failure

TEST(AuditLog, FullDiskRefusesCallsWhenFailClosed) {
  if (!haveDevFull()) GTEST_SKIP() << "no /dev/full";
  CaptureStderr err;
  AuditLog log(fileOptions("/dev/full"));
  EXPECT_TRUE(log.accepting());
  EXPECT_FALSE(log.write(sample()));
  EXPECT_FALSE(log.accepting());
  EXPECT_FALSE(log.accepting());  // reopening /dev/full succeeds; writing still does not
  EXPECT_FALSE(log.write(sample()));
  EXPECT_EQ(log.failureMode(), AuditFailureMode::REFUSE);
}

TEST(AuditLog, FullDiskLetsCallsThroughWhenFailOpen) {
  if (!haveDevFull()) GTEST_SKIP() << "no /dev/full";
  CaptureStderr err;
  AuditLog log(fileOptions("/dev/full", AuditFailureMode::LOG));
  EXPECT_FALSE(log.write(sample()));
  EXPECT_TRUE(log.accepting());
  EXPECT_FALSE(log.write(sample()));
  EXPECT_TRUE(log.accepting());
  EXPECT_EQ(log.failureMode(), AuditFailureMode::LOG);
  EXPECT_EQ(err.count("No space left on device; calls go on (audit_failure = log)"), 1u)
      << err.text();
}

TEST(AuditLog, RecoversAndWritesTheKeptRecordsFirst) {
  if (!haveDevFull()) GTEST_SKIP() << "no /dev/full";
  TempDir dir;
  auto path = (dir / "audit.log");
  ASSERT_EQ(symlink("/dev/full", path.cStr()), 0);  // a disk that is full until we say so
  CaptureStderr err;
  AuditLog log(fileOptions(path));
  auto r = sample();
  r.requestId = "ran";
  EXPECT_FALSE(log.write(r));
  EXPECT_FALSE(log.accepting());
  r.requestId = "refused";
  r.result = "unavailable";
  EXPECT_FALSE(log.write(r));

  ASSERT_EQ(unlink(path.cStr()), 0);  // space again: the next reopen makes a real file
  EXPECT_TRUE(log.accepting());
  EXPECT_EQ(err.count("can be written again"), 1u) << err.text();
  r.requestId = "next";
  r.result = "ok";
  EXPECT_TRUE(log.write(r));

  auto lines = linesOf(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(requestIdOf(lines[0]), "ran");
  EXPECT_EQ(requestIdOf(lines[1]), "refused");
  EXPECT_EQ(requestIdOf(lines[2]), "next");
}

TEST(AuditLog, KeepsAtMostMaxPendingRecords) {
  if (!haveDevFull()) GTEST_SKIP() << "no /dev/full";
  TempDir dir;
  auto path = (dir / "audit.log");
  ASSERT_EQ(symlink("/dev/full", path.cStr()), 0);
  CaptureStderr err;
  AuditLog log(fileOptions(path, AuditFailureMode::LOG));
  auto r = sample();
  for (size_t i = 0; i < AuditLog::MAX_PENDING + 5; i++) {
    auto id = kj::str(i);
    r.requestId = id;
    EXPECT_FALSE(log.write(r));
  }
  ASSERT_EQ(unlink(path.cStr()), 0);
  r.requestId = "after";
  EXPECT_TRUE(log.write(r));
  auto lines = linesOf(path);
  ASSERT_EQ(lines.size(), AuditLog::MAX_PENDING + 1);
  EXPECT_EQ(requestIdOf(lines[0]), "0");  // the oldest are kept: those calls ran
  EXPECT_EQ(requestIdOf(lines[AuditLog::MAX_PENDING - 1]),
            std::to_string(AuditLog::MAX_PENDING - 1));
  EXPECT_EQ(requestIdOf(lines[AuditLog::MAX_PENDING]), "after");
  EXPECT_EQ(err.count("AUDIT_LOST=5"), 1u) << err.text();
}

TEST(AuditLog, ComplainsAtMostOncePerIntervalWithoutRecordContent) {
  if (!haveDevFull()) GTEST_SKIP() << "no /dev/full";
  FakeClock clock;
  CaptureStderr err;
  AuditLog log(fileOptions("/dev/full"), clock.monotonic());
  auto r = sample();
  r.type = "marker-type";
  r.requestId = "marker-request";
  r.publicValueHmac = "feedface";
  const std::string complaint = "cannot write the audit log /dev/full: No space left on device";
  for (int i = 0; i < 3; i++) EXPECT_FALSE(log.write(r));
  EXPECT_FALSE(log.accepting());
  EXPECT_EQ(err.count(complaint), 1u) << err.text();
  clock.advance(9 * kj::SECONDS);
  EXPECT_FALSE(log.write(r));
  EXPECT_EQ(err.count(complaint), 1u) << err.text();
  clock.advance(1 * kj::SECONDS);
  EXPECT_FALSE(log.write(r));
  EXPECT_EQ(err.count(complaint), 2u) << err.text();
  EXPECT_EQ(err.count("; calls are refused until it can be written (audit_failure = refuse)"), 2u)
      << err.text();

  auto text = err.text();
  EXPECT_EQ(err.count("\n"), 2u) << text;  // one line each
  for (auto content : {"marker-type", "marker-request", "feedface", "192.0.2.1"}) {
    EXPECT_EQ(text.find(content), std::string::npos) << content;
  }
}

TEST(AuditLog, UnopenablePathThrowsOneOperatorLine) {
  auto failure = [](kj::StringPtr path) -> std::string {
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { AuditLog log(fileOptions(path)); })) {
      return e->getDescription().cStr();
    }
    return "";
  };
  EXPECT_EQ(failure("/nonexistent-credvault-dir/audit.log"),
            "cannot open the audit log /nonexistent-credvault-dir/audit.log: No such file or "
            "directory; fix the path or remove audit_log");
  TempDir dir;
  auto description = failure(dir.path());
  EXPECT_EQ(description, "cannot open the audit log " + std::string(dir.path().cStr()) +
                             ": Is a directory; fix the path or remove audit_log");
  EXPECT_EQ(description.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace credvault::daemon
