#include "log.h"

#include "base/utf8.h"

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <kj/vector.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <atomic>

namespace credvault::daemon {

namespace {
std::atomic<int> currentLevel{static_cast<int>(Level::INFO)};
}  // namespace

kj::String escapeForLog(kj::ArrayPtr<const char> text, size_t maxBytes) {
  kj::Vector<char> out(kj::min(text.size(), maxBytes) + 16);
  auto hex = [&](unsigned char c) {
    static const char digits[] = "0123456789abcdef";
    out.add('\\');
    out.add('x');
    out.add(digits[c >> 4]);
    out.add(digits[c & 15]);
  };
  size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(text.begin());
  size_t n = text.size();
  while (i < n) {
    if (out.size() >= maxBytes) break;
    unsigned char c = p[i];
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) {
        hex(c);
      } else if (c == '\\') {
        out.add('\\');
        out.add('\\');
      } else {
        out.add(c);
      }
      ++i;
      continue;
    }
    // A whole, shortest-form UTF-8 sequence of a scalar value, or each byte escaped.
    uint32_t cp;
    size_t len = base::utf8::decode(p + i, p + n, cp);
    if (len == 0) {
      hex(c);
      ++i;
      continue;
    }
    // C1 controls (terminals act on them), and the format characters that reorder or break
    // what an operator sees: bidirectional embeddings, overrides and isolates (U+202A–202E,
    // U+2066–2069, U+200E/200F, U+061C), line and paragraph separators (U+2028/2029).
    bool invisible = (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
                     (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f ||
                     cp == 0x061c || cp == 0x2028 || cp == 0x2029;
    if (invisible) {
      for (size_t k = 0; k < len; ++k) hex(p[i + k]);
    } else {
      for (size_t k = 0; k < len; ++k) out.add(p[i + k]);
    }
    i += len;
  }
  if (i < n) {
    auto tail = kj::str("...[", n - i, " bytes cut]");
    out.addAll(tail);
  }
  return kj::str(out.asPtr());
}

bool logsToJournal() {
  static const bool journal = getenv("JOURNAL_STREAM") != nullptr;
  return journal;
}

void setLogLevel(Level level) {
  currentLevel = static_cast<int>(level);
}
bool logEnabled(Level level) {
  return static_cast<int>(level) <= currentLevel;
}

void log(Level level, kj::StringPtr rawMessage, kj::ArrayPtr<const LogField> rawFields) {
  if (!logEnabled(level)) return;
  auto message = escapeForLog(rawMessage, MAX_LOG_MESSAGE_BYTES);
  kj::Vector<LogField> fields(rawFields.size());
  for (auto& f : rawFields)
    fields.add(LogField{f.name, escapeForLog(f.value, MAX_LOG_FIELD_BYTES)});
  if (logsToJournal()) {
    kj::Vector<kj::String> strings;
    strings.add(kj::str("MESSAGE=", message));
    strings.add(kj::str("PRIORITY=", static_cast<int>(level)));
    strings.add(kj::str("SYSLOG_IDENTIFIER=credvaultd"));
    for (auto& f : fields) strings.add(kj::str("CREDVAULT_", f.name, "=", f.value));
    kj::Vector<struct iovec> iov;
    for (auto& s : strings) iov.add(iovec{const_cast<char*>(s.begin()), s.size()});
    sd_journal_sendv(iov.begin(), iov.size());
    return;
  }
  auto line = kj::str("<", static_cast<int>(level), ">credvaultd: ", message);
  for (auto& f : fields) line = kj::str(line, " ", f.name, "=", f.value);
  fprintf(stderr, "%s\n", line.cStr());
}

}  // namespace credvault::daemon
