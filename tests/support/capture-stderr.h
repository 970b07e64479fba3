// Everything written to stderr while a CaptureStderr lives: where the daemon's log lines go
// outside journald (daemon/log.h), so tests can count them or scan them for secrets. A test
// binary that captures should unset $JOURNAL_STREAM before its first log line (log.c++
// decides once where lines go). KJ-only.

#pragma once

#include <kj/debug.h>
#include <stdio.h>
#include <unistd.h>
#include <string>

namespace credvault::support {

class CaptureStderr {
 public:
  CaptureStderr() {
    fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    file_ = tmpfile();
    KJ_ASSERT(saved_ >= 0 && file_ != nullptr);
    dup2(fileno(file_), STDERR_FILENO);
  }
  ~CaptureStderr() noexcept {
    fflush(stderr);
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    fclose(file_);
  }
  KJ_DISALLOW_COPY(CaptureStderr);

  std::string text() {
    fflush(stderr);
    std::string out;
    char buffer[4096];
    ssize_t n;
    for (off_t at = 0; (n = pread(fileno(file_), buffer, sizeof(buffer), at)) > 0; at += n) {
      out.append(buffer, n);
    }
    return out;
  }
  size_t count(const std::string& needle) {
    auto all = text();
    size_t n = 0;
    for (size_t at = all.find(needle); at != std::string::npos; at = all.find(needle, at + 1)) {
      ++n;
    }
    return n;
  }

 private:
  int saved_;
  FILE* file_;
};

}  // namespace credvault::support
