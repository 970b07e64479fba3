// A real, throw-away PostgreSQL 15 for tests of the PostgreSQL backend: initdb into a temporary
// directory, the server listening on a unix socket in it only (no TCP), fsync on (durability
// is under test), run as an unprivileged user (`nobody` when the tests run as root, as CI
// does; the developer otherwise). Stopped and removed when the test binary exits; killed with
// the binary if that dies (PR_SET_PDEATHSIG).
//
// One server per test binary (started on first use, about a second), a fresh database per
// test (freshDatabase()), so tests stay independent and starting stays cheap.
//
// Not thread-safe: call from the test's main thread.

#pragma once

#include <kj/string.h>
#include <sys/types.h>
#include <string>

namespace credvault::support {

class PostgresServer {
 public:
  // The binary's server, started on first call. Throws when PostgreSQL 15 is not installed
  // (see available()).
  static PostgresServer& instance();
  // Whether /usr/lib/postgresql/15/bin holds initdb and postgres (scripts/deps.sh installs
  // them); tests skip with this reason when it does not.
  static bool available();

  ~PostgresServer() noexcept(false);

  // A conninfo for a new, empty database of its own (CREATE DATABASE ... TEMPLATE template0).
  // `durable` false: commits there do not wait for the WAL flush (synchronous_commit = off),
  // for tests of logic rather than of durability, which commit thousands of times.
  kj::String freshDatabase(bool durable = true);
  // The conninfo for an existing database.
  kj::String conninfo(kj::StringPtr database) const;
  kj::StringPtr socketDir() const { return dir_; }
  // The data directory (pg_hba.conf, postgresql.conf).
  kj::StringPtr dataDir() const { return dataDir_; }
  // Runs `statement` in `database` as the superuser; the first column of each row, joined by
  // newlines.
  std::string sql(kj::StringPtr database, kj::StringPtr statement) const;
  // The server's log so far (for scans for secrets).
  std::string log() const;

  // Fast shutdown (SIGINT: clients are disconnected, everything committed is kept).
  void stop();
  // SIGKILL of the postmaster (a crash; recovery replays the WAL at the next start).
  void kill();
  // Starts a stopped or killed server on the same data directory.
  void start();
  void restart() {
    stop();
    start();
  }
  bool running() const { return pid_ > 0; }

 private:
  PostgresServer();
  kj::String dir_;  // the socket directory and, under it, the data directory
  kj::String dataDir_;
  uid_t uid_;
  gid_t gid_;
  pid_t pid_ = -1;
  unsigned databases_ = 0;

  // Runs `argv` as the server's user, stdout/stderr to `log`; returns the child's pid.
  pid_t spawn(kj::ArrayPtr<const kj::StringPtr> argv, kj::StringPtr log, bool dieWithUs);
  void waitReady();
};

}  // namespace credvault::support
