#include "masterkey.h"
#include "aead.h"

#include <sodium.h>
#include <kj/debug.h>
#include <kj/encoding.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>

namespace credvault::crypto {

namespace {

constexpr size_t MAX_KEY_FILE = 256;

// A problem the operator fixes: the description is exactly `message` (no KJ expression or
// parameter list), one sentence with the path and what to do. The daemon prints it as the
// one line of a failed start.
[[noreturn]] void keyProblem(kj::String message) {
  kj::throwFatalException(
      kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::mv(message)));
}

kj::String unreadable(kj::StringPtr what, kj::StringPtr path, int error) {
  if (error == ELOOP) {
    return kj::str("the ", what, " ", path,
                   " is a symbolic link; point key_file at the file itself");
  }
  return kj::str(
      "cannot read the ", what, " ", path, ": ", strerror(error),
      error == EACCES ? "; make it readable by the daemon's user only (chmod 600, chown)" : "");
}

// Reads a small file into secret memory; returns null if it does not exist.
kj::Maybe<Secret> readSmallFile(kj::StringPtr path, bool requirePrivate) {
  kj::StringPtr what = requirePrivate ? "master key file" : "systemd credential";
  int fd = ::open(path.cStr(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    int error = errno;
    if (error == ENOENT) return nullptr;
    keyProblem(unreadable(what, path, error));
  }
  KJ_DEFER(::close(fd));
  struct stat st;
  if (fstat(fd, &st) != 0) keyProblem(unreadable(what, path, errno));
  if (!S_ISREG(st.st_mode)) {
    keyProblem(
        kj::str("the ", what, " ", path, " is not a regular file; point key_file at the key file"));
  }
  if (requirePrivate) {
    if ((st.st_mode & 077) != 0) {
      keyProblem(
          kj::str("the master key file ", path, " is accessible to group or others; chmod 600 it"));
    }
    if (st.st_uid != geteuid()) {
      keyProblem(kj::str("the master key file ", path, " is owned by uid ", st.st_uid,
                         ", not by the daemon's uid ", geteuid(),
                         "; chown it to the daemon's user"));
    }
  }
  if (st.st_size <= 0 || static_cast<size_t>(st.st_size) > MAX_KEY_FILE) {
    keyProblem(kj::str("the ", what, " ", path,
                       " has the wrong size (expected 32 raw bytes or base64); restore the key "
                       "this vault was created with"));
  }
  Secret buf(st.st_size);
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::read(fd, buf.revealMut().begin() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) keyProblem(unreadable(what, path, errno));
    if (n == 0) break;
    got += n;
  }
  if (got != buf.size()) {
    keyProblem(kj::str("the ", what, " ", path, " changed while it was read; start again"));
  }
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

  int fd = ::open(path.cStr(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int error = errno;
    keyProblem(kj::str("cannot create the master key file ", path, ": ", strerror(error),
                       error == EEXIST   ? "; it exists already (a key is never replaced)"
                       : error == EACCES ? "; its directory must be writable by this user"
                                         : ""));
  }
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
      keyProblem(kj::str("the systemd credential ", path,
                         " is not a 32-byte key or its base64; check LoadCredential(Encrypted)= "
                         "in the unit"));
    }
  }
  KJ_IF_MAYBE(content, readSmallFile(options.keyFile, true)) {
    KJ_IF_MAYBE(key, parseMasterKey(content->reveal())) {
      return {kj::mv(*key), kj::str("key file ", options.keyFile), false};
    }
    keyProblem(kj::str("the master key file ", options.keyFile,
                       " is not a 32-byte key or its base64; restore the key this vault was "
                       "created with"));
  }
  if (!options.createIfMissing) {
    keyProblem(
        kj::str("no master key: neither $CREDENTIALS_DIRECTORY/credvault.key nor the key "
                "file ",
                options.keyFile, " exists; create one with `credvaultd --generate-key ",
                options.keyFile, "` (or start with --create-key for a new vault)"));
  }
  auto key = createKeyFile(options.keyFile);
  return {kj::mv(key), kj::str("key file ", options.keyFile, " (generated)"), true};
}

}  // namespace credvault::crypto
