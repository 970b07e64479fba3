// credvaultctl — maintenance: backup, audit-hash, verify, rotate-key,
// change-master-key.

#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

namespace credvault::ctl {

namespace {

// The backup file while it is partial, for the signal handler below (the one global: a
// handler has nowhere else to look).
const char* volatile partialBackup = nullptr;

// Ctrl-C, a hangup or a kill while a backup is written must not leave a truncated file that
// looks like a backup. unlink() is async-signal-safe; then die of the same signal.
void removePartialBackup(int sig) {
  const char* path = partialBackup;
  if (path != nullptr) unlink(path);
  signal(sig, SIG_DFL);
  raise(sig);
}

// Makes a new file's name durable, like its content.
void syncDirectoryOf(kj::StringPtr path) {
  kj::String dir;
  KJ_IF_MAYBE(slash, path.findLast('/')) {
    dir = *slash == 0 ? kj::str("/") : kj::heapString(path.slice(0, *slash));
  } else {
    dir = kj::str(".");
  }
  int fd = open(dir.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: the file itself is synced
  fsync(fd);
  close(fd);
}

// The daemon resolves paths itself, in its own working directory: send absolute ones.
kj::String absolutePath(kj::StringPtr path) {
  if (path.startsWith("/")) return kj::heapString(path);
  char cwd[4096];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) {
    fprintf(stderr, "credvaultctl: cannot resolve %s: %s\n", path.cStr(), strerror(errno));
    throw ExitWith{LOCAL};
  }
  return kj::str(cwd, "/", path);
}

// Where `backup` puts what the daemon streams: an open descriptor, written as it arrives.
// A failed write is remembered (errno) and refused to the daemon, which then stops.
class FileSink final : public rpc::ByteSink::Server {
 public:
  explicit FileSink(int fd) : fd_(fd) {}

  uint64_t written() const { return written_; }
  bool finished() const { return done_; }
  kj::Maybe<int> error() const { return error_; }
  // From now on every call is refused (the descriptor is about to be closed).
  void close() { closed_ = true; }

 protected:
  kj::Promise<void> write(WriteContext context) override {
    KJ_REQUIRE(!closed_ && !done_ && error_ == nullptr, "the backup sink is closed");
    auto data = context.getParams().getData();
    while (data.size() > 0) {
      ssize_t n = ::write(fd_, data.begin(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        error_ = errno;
        // The text goes to the daemon: no path, no detail.
        KJ_FAIL_REQUIRE("the client could not write the backup");
      }
      data = data.slice(n, data.size());
      written_ += n;
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext) override {
    KJ_REQUIRE(!closed_ && error_ == nullptr, "the backup sink is closed");
    done_ = true;
    return kj::READY_NOW;
  }

 private:
  int fd_;
  uint64_t written_ = 0;
  bool done_ = false;
  bool closed_ = false;
  kj::Maybe<int> error_;
};

}  // namespace

// ---- maintenance ------------------------------------------------------------------------

kj::MainFunc Ctl::backupCmd() {
  auto& b = command("backup FILE [--force]",
                    "Streams a consistent snapshot of the vault into FILE, written as you (mode "
                    "0600); - writes to stdout (not a terminal). An existing FILE is refused "
                    "unless --force, which writes a new file next to it and renames it over FILE "
                    "only once the whole snapshot is on disk. System users only.");
  flag(b, "force", "Replace FILE if it exists (atomically, when the backup is complete).");
  arg(b, "FILE");
  return run(b, [this]() { return backup(args_[0]); });
}

// The daemon streams the snapshot, we write it as ourselves. A file we created is removed
// again unless the whole snapshot reached the disk.
int Ctl::backup(kj::StringPtr target) {
  bool toStdout = target == "-";
  kj::StringPtr shown = toStdout ? kj::StringPtr("standard output") : target;
  int fd = STDOUT_FILENO;
  kj::String writing = kj::heapString(target);  // the file being written
  if (toStdout) {
    if (stdoutIsTerminal()) {
      localError(
          "refusing to write a backup to a terminal; redirect standard output or name "
          "a FILE");
    }
  } else {
    struct stat st;
    bool exists = lstat(target.cStr(), &st) == 0;
    if (exists && !has("force")) {
      localError(kj::str(target, " exists; choose a new name, or give --force to replace it"));
    }
    if (exists && S_ISDIR(st.st_mode)) localError(kj::str(target, " is a directory"));
    if (exists) writing = kj::str(target, ".partial-", getpid());
    fd = open(writing.cStr(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST) { localError(kj::str(writing, " exists; choose a new name")); }
      localError(kj::str("cannot create ", writing, ": ", strerror(errno)));
    }
  }
  bool kept = false;
  if (!toStdout) {
    partialBackup = writing.cStr();
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, removePartialBackup);
  }
  KJ_DEFER({
    if (!toStdout) {
      partialBackup = nullptr;
      if (fd >= 0) close(fd);
      if (!kept) unlink(writing.cStr());
    }
  });

  auto& l = link();
  auto owned = kj::heap<FileSink>(fd);
  FileSink& sink = *owned;
  rpc::ByteSink::Client client = kj::mv(owned);
  // The daemon holds a reference to the sink: whatever it does later, no write lands.
  KJ_DEFER(sink.close());
  auto req = l.admin().backupToRequest();
  req.setSink(client);
  auto r = l.wait(req.send());
  sink.close();
  KJ_IF_MAYBE(err, sink.error()) {
    localError(kj::str("cannot write ", shown, ": ", strerror(*err)));
  }
  l.check(r);
  if (!sink.finished() || sink.written() != r.getBytes()) {
    failWith(format(), UNAVAILABLE, "unavailable",
             kj::str("the backup stream ended early (", sink.written(), " of ", r.getBytes(),
                     " bytes)"));
  }
  // A pipe or socket cannot be synced; a file must be.
  if (fsync(fd) != 0 && (toStdout ? (errno != EINVAL && errno != EROFS) : true)) {
    localError(kj::str("cannot write ", shown, ": ", strerror(errno)));
  }
  if (toStdout) return OK;
  int closing = fd;
  fd = -1;
  if (close(closing) != 0) localError(kj::str("cannot write ", writing, ": ", strerror(errno)));
  if (writing != target) {
    if (rename(writing.cStr(), target.cStr()) != 0) {
      localError(kj::str("cannot replace ", target, ": ", strerror(errno)));
    }
  }
  syncDirectoryOf(target);
  partialBackup = nullptr;
  kept = true;
  if (format() == Format::TEXT) {
    printf("backup of %llu bytes written to %s\n", (unsigned long long)sink.written(),
           target.cStr());
    return OK;
  }
  Row row;
  row.str("File", "FILE", target).num("Bytes", "BYTES", sink.written());
  print(kj::arrayPtr(&row, 1), true);
  return OK;
}

kj::MainFunc Ctl::auditHashCmd() {
  auto& b = command("audit-hash VALUE",
                    "Prints the keyed hash under which audit records name the public value VALUE; "
                    "- reads VALUE from stdin. System users.");
  arg(b, "VALUE");
  return run(b, [this]() {
    // A public value is not a secret, but `-` keeps it out of the process list and history.
    auto value = args_[0] == "-" ? readSecretFrom(STDIN_FILENO, "Public value", false, 4096)
                                 : kj::heapString(args_[0]);
    KJ_DEFER(wipeString(value));
    auto& l = link();
    auto req = l.admin().auditHashRequest();
    req.setValue(value);
    auto r = l.wait(req.send());
    l.check(r);
    if (format() == Format::TEXT) {
      printf("%s\n", r.getHmac().cStr());
      return OK;
    }
    Row row;
    row.str("Hmac", "HMAC", r.getHmac());
    print(kj::arrayPtr(&row, 1), true);
    return OK;
  });
}

kj::MainFunc Ctl::verifyCmd() {
  auto& b = command(
      "verify",
      "Has the running daemon walk every table and page of its vault, open every sealed record and "
      "check the counts and indexes against the records (in a child process, on a snapshot; "
      "clients are served meanwhile). Exit 8 (integrity) when the vault is damaged. System users.");
  return run(b, [this]() {
    auto& l = link();
    auto r = l.wait(l.admin().verifyRequest().send());
    auto report = r.getReport();
    bool damaged =
        r.hasError() && r.getError().getCode() == rpc::ErrorCode::INTEGRITY && report.hasProblem();
    // Text shows damage as any other error (one line on stderr); json and tsv show the
    // report with its Problem, so a script reads what was checked either way.
    if (!damaged || format() == Format::TEXT) l.check(r);
    if (format() == Format::TEXT) {
      printf(
          "verified %llu credentials of %llu associates (%llu entries in %llu tables) in "
          "%llu ms\n",
          (unsigned long long)report.getCredentials(), (unsigned long long)report.getAssociates(),
          (unsigned long long)report.getEntries(), (unsigned long long)report.getTables(),
          (unsigned long long)report.getDurationMs());
      return OK;
    }
    kj::Maybe<kj::ArrayPtr<const char>> problem;
    if (report.hasProblem()) problem = report.getProblem().asArray();
    Row row;
    row.boolean("Ok", "OK", !damaged);
    row.num("Tables", "TABLES", report.getTables());
    row.num("Entries", "ENTRIES", report.getEntries());
    row.num("Associates", "ASSOCIATES", report.getAssociates());
    row.num("Credentials", "CREDENTIALS", report.getCredentials());
    row.num("DurationMs", "MS", report.getDurationMs());
    row.maybeStr("Problem", "PROBLEM", problem, "-");
    print(kj::arrayPtr(&row, 1), true);
    if (damaged) {
      fprintf(stderr, "credvaultctl: integrity: %s\n", r.getError().getMessage().cStr());
      return INTEGRITY;
    }
    return OK;
  });
}

kj::MainFunc Ctl::rotateKeyCmd() {
  auto& b = command("rotate-key", "Adds a data key; new records are sealed with it. System users.");
  return run(b, [this]() {
    auto& l = link();
    auto r = l.wait(l.admin().rotateDataKeyRequest().send());
    l.check(r);
    if (format() == Format::TEXT) {
      printf("new data key %u\n", r.getKeyId());
      return OK;
    }
    Row row;
    row.num("DataKeyId", "DATA-KEY", r.getKeyId());
    print(kj::arrayPtr(&row, 1), true);
    return OK;
  });
}

kj::MainFunc Ctl::changeMasterKeyCmd() {
  auto& b = command("change-master-key FILE",
                    "Re-wraps every data key under the key in FILE (the daemon reads it). System "
                    "users. See docs/operations.md.");
  arg(b, "FILE");
  return run(b, [this]() {
    auto path = absolutePath(args_[0]);
    auto& l = link();
    auto req = l.admin().changeMasterKeyRequest();
    req.setKeyFile(path);
    auto r = l.wait(req.send());
    l.check(r);
    if (format() == Format::TEXT) {
      printf("all keys re-wrapped; new master key fingerprint %s\n", r.getFingerprint().cStr());
      return OK;
    }
    Row row;
    row.str("Fingerprint", "FINGERPRINT", r.getFingerprint());
    print(kj::arrayPtr(&row, 1), true);
    return OK;
  });
}

}  // namespace credvault::ctl
