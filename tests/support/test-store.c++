#include "test-store.h"

#include "store/postgres.h"
#include "tests/support/postgres.h"
#include "tests/support/temp-dir.h"
#include <libpq-fe.h>
#include <kj/debug.h>
#include <stdlib.h>

namespace credvault::support {

bool testStoreIsPostgres() {
  const char* which = getenv("CREDVAULT_TEST_STORE");
  return which != nullptr && kj::StringPtr(which) == "postgresql";
}

TestStore::TestStore(kj::StringPtr dir) : dir_(kj::heapString(dir)) {
  // What these tests assert is logic, not durability (tests/store/contract-test.c++ and the
  // daemon's crash tests have it), over thousands of commits: commits do not wait for fsync.
  if (testStoreIsPostgres()) conninfo_ = PostgresServer::instance().freshDatabase(false);
}

kj::Own<store::Store> TestStore::open(const store::Options& lmdbOptions) const {
  if (testStoreIsPostgres()) {
    store::PostgresOptions o;
    o.conninfo = kj::heapString(conninfo_);
    o.readOnly = lmdbOptions.readOnly;
    return store::openPostgres(kj::mv(o));
  }
  return kj::heap<store::Environment>(dir_, lmdbOptions);
}

std::string TestStore::everyStoredByte() const {
  if (!testStoreIsPostgres()) return readFile(kj::str(dir_, "/data.mdb"));
  return everyStoredByteOf(conninfo_);
}

std::string everyStoredByteOf(kj::StringPtr conninfo) {
  PGconn* conn = PQconnectdb(conninfo.cStr());
  KJ_DEFER(PQfinish(conn));
  KJ_REQUIRE(PQstatus(conn) == CONNECTION_OK, PQerrorMessage(conn));
  // Binary results: the bytes as stored, not an escaped rendering of them.
  PGresult* r = PQexecParams(conn, "SELECT key, value FROM credvault_kv", 0, nullptr, nullptr,
                             nullptr, nullptr, 1);
  KJ_DEFER(PQclear(r));
  KJ_REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK, PQerrorMessage(conn));
  std::string out;
  for (int i = 0; i < PQntuples(r); ++i) {
    for (int c = 0; c < 2; ++c) out.append(PQgetvalue(r, i, c), PQgetlength(r, i, c));
    out += '\n';
  }
  return out + PostgresServer::instance().log();
}

}  // namespace credvault::support
