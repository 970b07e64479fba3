#include "masterkey.h"
#include "aead.h"

#include <sodium.h>
#include <kj/debug.h>
#include <kj/encoding.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>

namespace credvault::crypto {

namespace {

constexpr size_t MAX_KEY_FILE = 256;

// Reads a small file into secret memory; returns null if it does not exist.
kj::Maybe<Secret> readSmallFile(kj::StringPtr path, bool requirePrivate) {
  int fd = ::open(path.cStr(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    int error = errno;
    if (error == ENOENT) return nullptr;
    KJ_FAIL_SYSCALL("open(master key)", error, path);
  }
  KJ_DEFER(::close(fd));
  struct stat st;
  KJ_SYSCALL(fstat(fd, &st), path);
  KJ_REQUIRE(S_ISREG(st.st_mode), "master key is not a regular file", path);
  if (requirePrivate) {
    KJ_REQUIRE((st.st_mode & 077) == 0,
               "master key file is accessible to group or others; chmod 600 it", path);
    KJ_REQUIRE(st.st_uid == geteuid(), "master key file is owned by another user", path);
  }
  KJ_REQUIRE(st.st_size > 0 && static_cast<size_t>(st.st_size) <= MAX_KEY_FILE,
             "master key file has the wrong size (expected 32 raw bytes or base64)", path);
  Secret buf(st.st_size);
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n;
    KJ_SYSCALL(n = ::read(fd, buf.revealMut().begin() + got, buf.size() - got), path);
    if (n == 0) break;
    got += n;
  }
  KJ_REQUIRE(got == buf.size(), "master key file changed while reading", path);
  return kj::mv(buf);
}

}  // namespace

kj::Maybe<Secret> parseMasterKey(kj::ArrayPtr<const kj::byte> content) {
  if (content.size() == KEY_BYTES) return Secret::copyOf(content);
  // Base64 form, tolerating one trailing newline.
  size_t len = content.size();
  while (len > 0 && (content[len - 1] == '\n' || content[len - 1] == '\r')) --len;
  Secret decoded(KEY_BYTES);
  size_t written = 0;
  const char* end = nullptr;
  int rc = sodium_base642bin(decoded.revealMut().begin(), decoded.size(),
                             reinterpret_cast<const char*>(content.begin()), len, nullptr, &written,
                             &end, sodium_base64_VARIANT_ORIGINAL);
  if (rc != 0 || written != KEY_BYTES ||
      end != reinterpret_cast<const char*>(content.begin()) + len) {
    return nullptr;
  }
  return kj::mv(decoded);
}

Secret createKeyFile(kj::StringPtr path) {
  auto key = Secret::random(KEY_BYTES);
  size_t encodedLen = sodium_base64_ENCODED_LEN(KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
  Secret text(encodedLen);  // includes NUL; replaced by a newline below
  sodium_bin2base64(reinterpret_cast<char*>(text.revealMut().begin()), encodedLen,
                    key.reveal().begin(), KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
  text.revealMut()[encodedLen - 1] = '\n';

  int fd;
  KJ_SYSCALL(fd = ::open(path.cStr(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600),
             "creating master key file", path);
  bool ok = false;
  KJ_DEFER({
    ::close(fd);
    if (!ok) ::unlink(path.cStr());
  });
  auto bytes = text.reveal();
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n;
    KJ_SYSCALL(n = ::write(fd, bytes.begin() + done, bytes.size() - done), path);
    done += n;
  }
  KJ_SYSCALL(fsync(fd), path);
  ok = true;
  return key;
}

LoadedMasterKey loadMasterKey(const MasterKeyOptions& options) {
  init();
  KJ_IF_MAYBE(dir, options.credentialsDirectory) {
    auto path = kj::str(*dir, "/credvault.key");
    // systemd owns the credentials directory and its modes; do not second-guess them.
    KJ_IF_MAYBE(content, readSmallFile(path, false)) {
      KJ_IF_MAYBE(key, parseMasterKey(content->reveal())) {
        return {kj::mv(*key), kj::str("systemd credential ", path), false};
      }
      KJ_FAIL_REQUIRE("systemd credential credvault.key is not a 32-byte key or its base64", path);
    }
  }
  KJ_IF_MAYBE(content, readSmallFile(options.keyFile, true)) {
    KJ_IF_MAYBE(key, parseMasterKey(content->reveal())) {
      return {kj::mv(*key), kj::str("key file ", options.keyFile), false};
    }
    KJ_FAIL_REQUIRE("master key file is not a 32-byte key or its base64", options.keyFile);
  }
  KJ_REQUIRE(options.createIfMissing,
             "no master key: neither $CREDENTIALS_DIRECTORY/credvault.key nor the key file "
             "exists (create one with `credvaultd --generate-key`)",
             options.keyFile);
  auto key = createKeyFile(options.keyFile);
  return {kj::mv(key), kj::str("key file ", options.keyFile, " (generated)"), true};
}

}  // namespace credvault::crypto
