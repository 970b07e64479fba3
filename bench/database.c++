#include "database.h"
#include "load.h"
#include "tests/support/postgres.h"

#include <libpq-fe.h>
#include <kj/debug.h>
#include <kj/vector.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace credvault::bench {

namespace {

// Runs `sql` on a new connection to `conninfo`; the text of each column of its one row.
kj::Vector<kj::String> queryRow(kj::StringPtr conninfo, kj::StringPtr sql) {
  PGconn* conn = PQconnectdb(conninfo.cStr());
  KJ_DEFER(PQfinish(conn));
  KJ_REQUIRE(PQstatus(conn) == CONNECTION_OK, "connecting to the bench's PostgreSQL",
             PQerrorMessage(conn));
  PGresult* r = PQexec(conn, sql.cStr());
  KJ_DEFER(PQclear(r));
  KJ_REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, sql, PQerrorMessage(conn));
  kj::Vector<kj::String> out;
  for (int c = 0; c < PQnfields(r); c++) out.add(kj::heapString(PQgetvalue(r, 0, c)));
  return out;
}

// The parent pid of `pid`, from /proc/PID/stat (field 4, after the command in parentheses).
pid_t parentOf(pid_t pid) {
  auto path = kj::str("/proc/", pid, "/stat");
  FILE* f = fopen(path.cStr(), "r");
  if (f == nullptr) return -1;
  char buf[512];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char* p = strrchr(buf, ')');
  if (p == nullptr) return -1;
  char state;
  int ppid;
  if (sscanf(p + 1, " %c %d", &state, &ppid) != 2) return -1;
  return ppid;
}

}  // namespace

Database::Database() : server_(support::PostgresServer::instance()) {
  // A backend's parent is the postmaster; asked while the backend still lives.
  PGconn* conn = PQconnectdb(server_.conninfo("postgres").cStr());
  KJ_DEFER(PQfinish(conn));
  KJ_REQUIRE(PQstatus(conn) == CONNECTION_OK, "connecting to the bench's PostgreSQL",
             PQerrorMessage(conn));
  postmaster_ = parentOf(pid_t(PQbackendPID(conn)));
  KJ_REQUIRE(postmaster_ > 1, "cannot find the PostgreSQL postmaster");
}

Database::~Database() noexcept(false) {}

kj::String Database::freshDatabase() {
  return server_.freshDatabase(true);
}

kj::String Database::describe() {
  auto r = queryRow(server_.conninfo("postgres"),
                    "SELECT current_setting('server_version'), current_setting('fsync'), "
                    "current_setting('synchronous_commit'), current_setting('wal_sync_method'), "
                    "current_setting('full_page_writes'), current_setting('shared_buffers'), "
                    "current_setting('max_wal_size'), current_setting('checkpoint_timeout'), "
                    "current_setting('max_connections')");
  return kj::str("PostgreSQL ", r[0], " on a unix socket in ", server_.socketDir(),
                 ", started by the bench: fsync=", r[1], " synchronous_commit=", r[2],
                 " wal_sync_method=", r[3], " full_page_writes=", r[4], " shared_buffers=", r[5],
                 " max_wal_size=", r[6], " checkpoint_timeout=", r[7], " max_connections=", r[8]);
}

uint64_t Database::cpuNs() const {
  uint64_t total = processCpuNs(postmaster_);
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return total;
  while (struct dirent* e = readdir(proc)) {
    char* end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    if (parentOf(pid_t(pid)) == postmaster_) total += processCpuNs(pid_t(pid));
  }
  closedir(proc);
  return total;
}

uint64_t Database::walBytes() {
  auto r =
      queryRow(server_.conninfo("postgres"), "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::text");
  return strtoull(r[0].cStr(), nullptr, 10);
}

}  // namespace credvault::bench
