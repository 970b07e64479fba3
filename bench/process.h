// credvault-bench — the processes it measures: starting and stopping credvaultd (and the
// bench's own child modes), and what is read about them from outside (/proc, the daemon's
// LMDB transaction id). Every child gets its own log file in the bench's directory; a
// child that fails at start fails the bench with that log.

#pragma once

#include "options.h"
#include "report.h"

#include <kj/memory.h>
#include <kj/string.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

typedef struct MDB_env MDB_env;

namespace credvault::bench {

// Runs argv[0] from / with stdout and stderr into `logPath`, as `uid` if it is not ours.
pid_t spawn(kj::ArrayPtr<const kj::String> argv, kj::StringPtr logPath, uid_t uid = getuid());
// Waits until `socketPath` accepts a connection, or fails with the child's log (30 s).
void waitForSocket(pid_t pid, kj::StringPtr socketPath, kj::StringPtr logPath);
// SIGTERM and wait; nothing for pid <= 0.
void stopProcess(pid_t pid);

// This binary's absolute path (children re-run it with an internal option).
kj::String selfExe();
// A whole (small) file, or "(cannot read PATH)".
kj::String readText(kj::StringPtr path);
Memory readMemory(pid_t pid);
// Removes `path` (absolute) and everything below it, if it exists.
void removeTree(kj::StringPtr path);

// A running credvaultd; stopped when destroyed.
struct Daemon {
  pid_t pid = -1;
  kj::String stateDir, socket, log;
  ~Daemon() { stopProcess(pid); }
};

// Starts credvaultd (o.credvaultd) on `stateDir` with a new key, its socket and log named
// `name` in `dir`, an empty config file, o's log level and settings, then `settings`.
// `cheapPasswords`: Argon2id at opslimit 1, 8 KiB, so logins measure the rest of the path.
// Run as another uid than root, that uid is made a system uid.
kj::Own<Daemon> startDaemon(const Options& o, kj::StringPtr dir, kj::StringPtr stateDir,
                            kj::StringPtr name, bool cheapPasswords = true,
                            kj::ArrayPtr<const kj::StringPtr> settings = nullptr);

// The last committed LMDB transaction id of the environment in `dir` (one per commit),
// read through a read-only environment of our own: the daemon's commits are counted
// without touching the daemon.
class TxnCounter {
 public:
  explicit TxnCounter(kj::StringPtr dir);
  ~TxnCounter();
  KJ_DISALLOW_COPY(TxnCounter);
  uint64_t lastTxnId();

 private:
  MDB_env* env_ = nullptr;
};

}  // namespace credvault::bench
