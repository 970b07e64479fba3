// credvaultd — Admin.backupTo: a snapshot streamed into the client's ByteSink.
//
// The daemon (which may run as root) never creates a backup where a client names: it sends
// the bytes, and the client writes them where it likes, as itself.
//
// How: the snapshot is first written (on a BlockingPool thread, never on the event loop)
// into an anonymous spool file in the state directory — O_TMPFILE, so it has no name, is
// never visible to anyone, and is gone with its descriptor, even if the daemon dies — then
// read back in chunks of BACKUP_CHUNK_BYTES and sent with ByteSink.write, a streaming call,
// so Cap'n Proto's flow control bounds what is in flight to a window, whatever the backup's
// size. Spooling rather than piping the copy straight into the sink keeps the LMDB side
// independent of the client: mdb_env_copyfd2 holds a read transaction (pinning old pages)
// and blocks map growth (every writer that meets MDB_MAP_FULL) until the copy is written,
// which must take disk time, not however long a client takes to drain a stream. The price
// is disk space for one compacted copy, checked before starting.
//
// Cancellation: when the call is cancelled (the client disconnected) or the sink fails, the
// promise chain is dropped and with it the spool descriptor; a copy still running on the
// pool finishes and then drops its descriptor too. No thread waits on the client.

#pragma once

#include "blocking-pool.h"
#include "group-commit.h"
#include "ipc/credvault.capnp.h"
#include <kj/async.h>
#include <kj/function.h>

namespace credvault::daemon {

constexpr size_t BACKUP_CHUNK_BYTES = 64 * 1024;

struct BackupSource {
  // Where the spool file is made: the state directory (same file system as the database,
  // private to the daemon).
  kj::StringPtr spoolDirectory;
  // The largest the snapshot can be (the database's used bytes): the backup is refused as
  // `unavailable` unless the spool's file system has twice that free, so the copy never
  // takes the space the live database needs to grow.
  uint64_t sizeBound;
  // Writes the snapshot to the descriptor (core::Vault::backup), or refuses to; runs on a
  // pool thread.
  kj::Function<kj::Maybe<core::Refusal>(int fd)> write;
};

// Writes the snapshot, streams it into `sink`, calls sink.done(), and resolves to the
// number of bytes sent. The outcome's error is the refusal, when one is expected
// (`unavailable` for lack of space, or on field "sink" when the client's connection broke
// mid-stream; `invalidArgument` on field "sink" when the sink refused a call); its failure
// is anything unexpected (to be logged, answered as `internal`).
kj::Promise<Outcome<uint64_t>> streamBackup(BlockingPool& pool, BackupSource source,
                                            rpc::ByteSink::Client sink);

}  // namespace credvault::daemon
