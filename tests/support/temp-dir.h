// Temporary directories and whole-file reads and writes, for every test in the tree.
//
// One TempDir per test (or fixture): a fresh directory under $TMPDIR (default /tmp), removed
// with everything in it when the TempDir is destroyed, unless CREDVAULT_KEEP_TEST_DIR is set
// (to look at what a failing test left). Header-only and KJ-only, so tests of every layer can
// use it (base and crypto tests included).

#pragma once

#include <kj/debug.h>
#include <kj/string.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string>

namespace credvault::support {

class TempDir {
 public:
  // `label` names the directory (to tell tests' leftovers apart); `mode` is set regardless of
  // the umask: 0700, or 0755 where other uids must reach a socket in it.
  explicit TempDir(kj::StringPtr label = "credvault-test", mode_t mode = 0700) {
    const char* base = getenv("TMPDIR");
    auto pattern = kj::str(base != nullptr && *base != '\0' ? base : "/tmp", "/", label, "-XXXXXX");
    KJ_REQUIRE(mkdtemp(pattern.begin()) != nullptr, "mkdtemp failed", pattern, strerror(errno));
    path_ = kj::mv(pattern);
    KJ_SYSCALL(chmod(path_.cStr(), mode), path_);
  }
  ~TempDir() noexcept {
    if (getenv("CREDVAULT_KEEP_TEST_DIR") != nullptr) return;
    // Tests take permissions away to provoke failures: give them back to every directory
    // first (top down), then remove everything (bottom up).
    nftw(
        path_.cStr(),
        [](const char* p, const struct stat* st, int type, struct FTW*) {
          if (type == FTW_D || type == FTW_DNR) chmod(p, st->st_mode | S_IRWXU);
          return 0;
        },
        16, FTW_PHYS);
    nftw(
        path_.cStr(),
        [](const char* p, const struct stat*, int, struct FTW*) {
          ::remove(p);
          return 0;
        },
        16, FTW_DEPTH | FTW_PHYS);
  }
  KJ_DISALLOW_COPY(TempDir);

  kj::StringPtr path() const { return path_; }
  kj::String operator/(kj::StringPtr name) const { return kj::str(path_, "/", name); }
  // A new subdirectory (for a second environment, a state directory, ...).
  kj::String subdir(kj::StringPtr name, mode_t mode = 0700) const {
    auto p = kj::str(path_, "/", name);
    KJ_SYSCALL(mkdir(p.cStr(), mode), p);
    KJ_SYSCALL(chmod(p.cStr(), mode), p);
    return p;
  }

 private:
  kj::String path_;
};

// The whole file, or `missing` when it cannot be opened.
inline std::string readFile(kj::StringPtr path, kj::StringPtr missing = "") {
  int fd = ::open(path.cStr(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return missing;
  std::string out;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buffer, n);
  }
  ::close(fd);
  return out;
}

// Creates or replaces `path` with `content`, with `mode` regardless of the umask.
inline void writeFile(kj::StringPtr path, kj::ArrayPtr<const kj::byte> content,
                      mode_t mode = 0600) {
  int fd;
  KJ_SYSCALL(fd = ::open(path.cStr(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode), path);
  KJ_DEFER(::close(fd));
  KJ_SYSCALL(fchmod(fd, mode), path);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n;
    KJ_SYSCALL(n = ::write(fd, content.begin() + done, content.size() - done), path);
    done += n;
  }
}
inline void writeFile(kj::StringPtr path, kj::StringPtr text, mode_t mode = 0600) {
  writeFile(path, text.asBytes(), mode);
}

}  // namespace credvault::support
