#include "log.h"

#include <stdio.h>
#include <unistd.h>

namespace credvault::frontends {

namespace {

void writeLine(kj::StringPtr line) {
  // One write(2) per line, so lines from concurrent processes do not interleave.
  const char* p = line.begin();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

void StderrLog::request(const http::AccessLogEntry& e) {
  if (!accessLines_ && e.status < 500) return;
  int64_t micros = e.duration / kj::MICROSECONDS;
  char duration[32];
  snprintf(duration, sizeof(duration), "%lld.%03lld", static_cast<long long>(micros / 1000),
           static_cast<long long>(micros % 1000));
  kj::StringPtr priority = e.status >= 500 ? "<4>" : "<6>";
  writeLine(kj::str(priority, e.method, " ", e.path, " ", e.status, " ", duration,
                    "ms client=", e.client.size() > 0 ? e.client : kj::StringPtr("-"),
                    " peer=", e.peer.size() > 0 ? e.peer : kj::StringPtr("-"),
                    " id=", e.requestId.size() > 0 ? e.requestId : kj::StringPtr("-"),
                    " in=", e.requestBodyBytes, " out=", e.responseBodyBytes,
                    e.note.size() > 0 ? " " : "", e.note, "\n"));
}

void StderrLog::error(kj::StringPtr what, const kj::Exception& exception) {
  // KJ exception texts never carry secrets in credvault (STYLE.md rule 2).
  writeLine(kj::str("<3>", what, ": ", exception.getDescription(), " (", exception.getFile(), ":",
                    exception.getLine(), ")\n"));
}

void StderrLog::info(kj::StringPtr message) {
  writeLine(kj::str("<6>", message, "\n"));
}
void StderrLog::warning(kj::StringPtr message) {
  writeLine(kj::str("<4>", message, "\n"));
}

}  // namespace credvault::frontends
