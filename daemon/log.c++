#include "log.h"

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

void log(Level level, kj::StringPtr message, kj::ArrayPtr<const LogField> fields) {
  if (!logEnabled(level)) return;
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
