// credvaultd — verification of a vault in a child process.
//
// A damaged LMDB page can make LMDB follow a wild pointer (SIGSEGV, SIGBUS) or abort on one of
// its assertions; no check inside the serving process can catch that. So the walk runs in a
// forked child on a read-only view of the database, telling the parent which table it is in
// before it reads it: a crash there names the table, and the daemon refuses the vault with
// one line instead of dying on the first client's read.

#pragma once

#include "crypto/secret.h"
#include "core/vault.h"
#include <kj/string.h>
#include <kj/time.h>

namespace credvault::daemon {

struct VerifyResult {
  bool ok = false;
  bool damaged = true;  // when not ok: a verdict on the data (else e.g. a wrong master key)
  kj::String message;   // the refusal (one line) when not ok; a summary when ok
  core::VerifyReport report;
  kj::Duration took = 0 * kj::NANOSECONDS;
};

// Verifies the vault in `dir` under `masterKey` in a child process and waits for it (blocks:
// from a running daemon, call it on a worker thread, never on the event loop).
//
// At start it runs before any thread exists. Admin.verify also calls it from the running,
// multi-threaded daemon (on the maintenance pool), which is safe because the child does only
// this: it opens its own read-only LMDB environment (MDB_NOTLS, its own lock-file slot; it never
// touches the parent's environment, transactions, sockets or logs), walks it, writes a few lines
// to a pipe and leaves by _exit (no atexit handlers, no destructors of the parent's objects).
// The only shared state it uses is the heap, whose locks glibc resets in the child at fork; the
// master key is copied by the caller before the fork, so no lock of the vault is taken in the
// child. Whatever the walk meets (SIGSEGV, SIGBUS, LMDB's abort) ends the child only.
VerifyResult verifyInChild(kj::StringPtr dir, const crypto::Secret& masterKey);

// Verifies `vault` in this process: every record opened, every index and count checked
// (core::Vault::verify), without LMDB's page walk. For a store that cannot crash the process
// on damaged data (PostgreSQL: a damaged page is the server's error, reported as an
// exception). Blocks for one read of every table (~4 s per million credentials): at start
// before serving, else on a worker thread.
//
// Without a page walk to count them, the report's tables and entries are the vault's tables
// (vaultTables(), daemon/migrate.h) in the store and their entries, counted in one snapshot
// after the check.
VerifyResult verifyInProcess(core::Vault& vault);

}  // namespace credvault::daemon
