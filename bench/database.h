// credvault-bench — the daemon's store when it is PostgreSQL (--storage postgresql): a
// throw-away PostgreSQL 15 started the way the tests start theirs (tests/support/postgres.h:
// initdb in a temporary directory, a unix socket only, fsync on, run as `nobody` under root),
// one fresh database per daemon set (synchronous_commit on: every commit waits for its WAL
// flush), and what the bench reads about it from outside: the server's settings, the CPU time
// of all its processes and its WAL position.

#pragma once

#include <kj/memory.h>
#include <kj/string.h>
#include <stdint.h>
#include <sys/types.h>

namespace credvault::support {
class PostgresServer;
}

namespace credvault::bench {

class Database {
 public:
  // Starts the server (about a second); fails with its log when it cannot.
  Database();
  ~Database() noexcept(false);
  KJ_DISALLOW_COPY(Database);

  // A new, empty database with durable commits; its libpq connection string.
  kj::String freshDatabase();
  // One line: version and the settings that decide what a commit costs.
  kj::String describe();
  // CPU time of the postmaster and every process it started (backends, WAL writer,
  // checkpointer, ...), all threads, in ns.
  uint64_t cpuNs() const;

  // The server's WAL position in bytes (pg_current_wal_lsn()), for deltas around a row.
  uint64_t walBytes();

 private:
  support::PostgresServer& server_;
  pid_t postmaster_ = -1;
};

}  // namespace credvault::bench
