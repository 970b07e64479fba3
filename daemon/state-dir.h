// credvaultd — the state directory: one daemon at a time, and a vault only where one belongs.
//
// Before the daemon touches its socket or its database it takes an exclusive lock on
// STATE_DIR/credvaultd.lock (flock, held until the process ends), so a second daemon on the
// same directory stops with one line instead of taking over the first one's socket. Then it
// decides what the directory holds: a database LMDB may map (inspected first: an empty or
// truncated data.mdb is refused, never initialised), nothing at all (a new vault, only with
// --create-key), or nothing where a vault was (refused: the marker file vault.created says
// a vault was created here). A new vault is built in STATE_DIR/.new-vault and renamed into
// place, so a crash during the first start leaves either no data.mdb or a complete one.

#pragma once

#include "store/env.h"
#include <kj/function.h>
#include <kj/memory.h>
#include <kj/string.h>

namespace credvault::daemon {

// Exit statuses of a refused start (credvaultd(8), docs/operations.md). 1 stays the status
// of other start-up problems (configuration, key).
constexpr int EXIT_DAMAGED = 65;   // EX_DATAERR: database empty, truncated or damaged
constexpr int EXIT_NO_VAULT = 66;  // EX_NOINPUT: no database where one should be
constexpr int EXIT_LOCKED = 75;    // EX_TEMPFAIL: another credvaultd uses the directory

// Thrown by the functions below; main prints the message as one line and exits with the code.
struct StartRefused {
  int exitCode;
  kj::String message;
};

class StateLock {
 public:
  explicit StateLock(int fd) : fd_(fd) {}
  ~StateLock();
  KJ_DISALLOW_COPY(StateLock);

 private:
  int fd_;
};

// Takes the directory's lock and writes this process's pid into the lock file. Throws
// StartRefused(EXIT_LOCKED) naming the holder's pid when another process has it.
kj::Own<StateLock> lockStateDirectory(kj::StringPtr dir);

enum class VaultPresence { EXISTS, NEW };

// What the directory holds. Throws StartRefused for an empty, truncated or damaged data.mdb
// (EXIT_DAMAGED), for a missing one where a vault was created (EXIT_NO_VAULT), and for a
// directory without a vault when `createAllowed` is false (EXIT_NO_VAULT).
VaultPresence checkStateDirectory(kj::StringPtr dir, bool createAllowed);

// Builds a new vault in DIR/.new-vault with `initialise` (which opens it and creates its
// keys), then renames its data.mdb into DIR and syncs the directory, and writes the marker.
void createVault(kj::StringPtr dir, kj::FunctionParam<void(store::Environment&)> initialise);

// Writes DIR/vault.created if it is missing (a vault of an earlier release gets it on its
// first start under this one).
void markVault(kj::StringPtr dir);

}  // namespace credvault::daemon
