#include "pg-connection.h"

#include <libpq-fe.h>
#include <kj/debug.h>
#include <string.h>

namespace credvault::store::pg {

namespace {

constexpr Oid INT2 = 21, INT4 = 23, INT8 = 20, BYTEA = 17, TEXT = 25, XID8 = 5069;

// Prepared on every pooled connection. Parameters and results are binary: table numbers are
// big-endian int2, keys and values raw bytea (bytea orders by memcmp, then length: LMDB's
// key order).
struct Prepared {
  const char* name;
  const char* sql;
  int nParams;
  Oid types[4];
};
constexpr Prepared PREPARED[] = {
    {"get", "SELECT value FROM credvault_kv WHERE tbl = $1 AND key = $2", 2, {INT2, BYTEA}},
    // Upsert, answering whether the key existed (for the table's entry count): the CTE
    // reads the statement's snapshot, taken before the insert. No other writer runs
    // meanwhile (the writer lock), so the answer is exact.
    {"put",
     "WITH old AS (SELECT 1 FROM credvault_kv WHERE tbl = $1 AND key = $2), "
     "up AS (INSERT INTO credvault_kv (tbl, key, value) VALUES ($1, $2, $3) "
     "ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value) "
     "SELECT count(*) FROM old",
     3,
     {INT2, BYTEA, BYTEA}},
    {"del", "DELETE FROM credvault_kv WHERE tbl = $1 AND key = $2", 2, {INT2, BYTEA}},
    {"scan_from",
     "SELECT key, value FROM credvault_kv WHERE tbl = $1 AND key >= $2 ORDER BY key LIMIT $3",
     3,
     {INT2, BYTEA, INT4}},
    {"scan_from_to",
     "SELECT key, value FROM credvault_kv WHERE tbl = $1 AND key >= $2 AND key < $3 "
     "ORDER BY key LIMIT $4",
     4,
     {INT2, BYTEA, BYTEA, INT4}},
    {"scan_after",
     "SELECT key, value FROM credvault_kv WHERE tbl = $1 AND key > $2 ORDER BY key LIMIT $3",
     3,
     {INT2, BYTEA, INT4}},
    {"scan_after_to",
     "SELECT key, value FROM credvault_kv WHERE tbl = $1 AND key > $2 AND key < $3 "
     "ORDER BY key LIMIT $4",
     4,
     {INT2, BYTEA, BYTEA, INT4}},
    {"count", "SELECT entries FROM credvault_tables WHERE tbl = $1", 1, {INT2}},
    {"add_count",
     "UPDATE credvault_tables SET entries = entries + $2 WHERE tbl = $1",
     2,
     {INT2, INT8}},
    // Writers are serialised across every daemon on this database (docs/design.md
    // "PostgreSQL backend"); the transaction id lets a commit whose answer was lost be
    // looked up after reconnecting.
    {"write_lock",
     "SELECT pg_advisory_xact_lock(7165064886127834113), pg_current_xact_id()",
     0,
     {}},
    // The payload names the sending store, whose listener ignores its own notifications (its
    // Store::write moves the generation itself after the commit).
    {"bump",
     "WITH g AS (UPDATE credvault_generation SET generation = generation + 1 "
     "RETURNING generation) SELECT pg_notify('credvault_generation', $1) FROM g",
     1,
     {TEXT}},
    {"xact_status", "SELECT pg_xact_status($1)", 1, {XID8}},
    {"add_table",
     "INSERT INTO credvault_tables (tbl, name) SELECT coalesce(max(tbl), 0) + 1, $1 "
     "FROM credvault_tables ON CONFLICT (name) DO NOTHING",
     1,
     {TEXT}},
    {"table_id", "SELECT tbl FROM credvault_tables WHERE name = $1", 1, {TEXT}},
    {"size",
     "SELECT pg_total_relation_size('credvault_kv') + pg_total_relation_size('credvault_tables')"
     " + pg_total_relation_size('credvault_generation')",
     0,
     {}},
};

// libpq's message: its first line, without the trailing newline.
kj::String firstLine(const char* message) {
  if (message == nullptr) return kj::str("(no message)");
  const char* end = strchr(message, '\n');
  size_t n = end == nullptr ? strlen(message) : size_t(end - message);
  return kj::heapString(message, n);
}

// The line of libpq's connection failure `message` that says the server refused the login,
// or null when it says something else (unreachable, starting, too many connections). libpq
// has no SQLSTATE for a failed connection: these are the server's (28P01, 28000, 3D000,
// 42501) and libpq's own texts in English; a server that words them in another language
// (lc_messages) is taken for unavailable, as before.
kj::Maybe<kj::String> loginRefusal(const char* message) {
  static constexpr const char* PHRASES[] = {
      "password authentication failed",  // 28P01: wrong password, or no such role
      "authentication failed for user",  // 28000: peer, ident, cert, ...
      "no pg_hba.conf entry",            // 28000
      "pg_hba.conf rejects connection",  // 28000
      "does not exist",                  // 28000 role, 3D000 database
      "permission denied for database",  // 42501: no CONNECT privilege
      "no password supplied",            // libpq: the server asked, no passfile entry
  };
  if (message == nullptr) return nullptr;
  for (const char* line = message; *line != '\0';) {
    const char* end = strchr(line, '\n');
    size_t n = end == nullptr ? strlen(line) : size_t(end - line);
    auto text = kj::heapString(line, n);
    for (auto phrase : PHRASES) {
      if (strstr(text.cStr(), phrase) != nullptr) return kj::mv(text);
    }
    if (end == nullptr) break;
    line = end + 1;
  }
  return nullptr;
}

}  // namespace

bool isLoginRefused(const kj::Exception& e) {
  return strstr(e.getDescription().cStr(), LOGIN_REFUSED) != nullptr;
}

// ---------------------------------------------------------------------------------------

Result& Result::operator=(Result&& other) noexcept {
  if (r_ != nullptr) PQclear(r_);
  r_ = other.r_;
  other.r_ = nullptr;
  return *this;
}
Result::~Result() noexcept {
  if (r_ != nullptr) PQclear(r_);
}
int Result::rows() const {
  return PQntuples(r_);
}
kj::ArrayPtr<const kj::byte> Result::bytes(int row, int col) const {
  return {reinterpret_cast<const kj::byte*>(PQgetvalue(r_, row, col)),
          size_t(PQgetlength(r_, row, col))};
}
bool Result::isNull(int row, int col) const {
  return PQgetisnull(r_, row, col);
}
int64_t Result::int64(int row, int col) const {
  auto b = bytes(row, col);
  KJ_REQUIRE(b.size() == 8, "PostgreSQL answered an unexpected integer");
  return int64_t(getBe64(b.begin()));
}
kj::StringPtr Result::commandStatus() const {
  return PQcmdStatus(r_);
}
kj::StringPtr Result::affected() const {
  return PQcmdTuples(r_);
}

// ---------------------------------------------------------------------------------------

bool isUnavailableState(kj::StringPtr state) {
  return state.startsWith("08") || state == "57P01" || state == "57P02" || state == "57P03" ||
         state == "53300" || state == "25006";
}

void pgFailure(PGconn* conn, PGresult* result, kj::StringPtr what) {
  const char* state = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
  if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD || state == nullptr) {
    throwStorageFailure(what, kj::str("the database server closed the connection (",
                                      firstLine(PQerrorMessage(conn)), ")"));
  }
  kj::StringPtr s = state;
  if (s == "40001" || s == "40P01") throw RerunTransaction();
  // The primary message only: DETAIL and CONTEXT may quote a row's values.
  const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  auto message = firstLine(primary);
  if (isUnavailableState(s)) {
    throwStorageFailure(
        what, kj::str("the database server cannot serve now: ", message, " (SQLSTATE ", s, ")"));
  }
  kj::throwFatalException(
      kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                    kj::str("PostgreSQL refused ", what, ": ", message, " (SQLSTATE ", s, ")")));
}

kj::Maybe<kj::String> conninfoProblem(kj::StringPtr conninfo) {
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.cStr(), &err);
  if (options == nullptr) {
    if (err != nullptr) PQfreemem(err);
    // libpq's message quotes the string, which may hold what must not be logged.
    return kj::str(
        "the PostgreSQL connection string cannot be parsed; check its syntax "
        "(key=value pairs or a postgresql:// URI)");
  }
  KJ_DEFER(PQconninfoFree(options));
  for (auto* o = options; o->keyword != nullptr; ++o) {
    if (strcmp(o->keyword, "password") == 0 && o->val != nullptr && o->val[0] != '\0') {
      return kj::str(
          "the PostgreSQL connection string holds a password; remove it and give the password "
          "in a passfile or a systemd credential instead (docs/operations.md)");
    }
  }
  return nullptr;
}

kj::String describeConninfo(kj::StringPtr conninfo) {
  PQconninfoOption* options = PQconninfoParse(conninfo.cStr(), nullptr);
  if (options == nullptr) return kj::str("PostgreSQL");
  KJ_DEFER(PQconninfoFree(options));
  kj::StringPtr host, db, service;
  for (auto* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (strcmp(o->keyword, "host") == 0) host = o->val;
    if (strcmp(o->keyword, "dbname") == 0) db = o->val;
    if (strcmp(o->keyword, "service") == 0) service = o->val;
  }
  if (service != nullptr) return kj::str("PostgreSQL service ", service);
  return kj::str("PostgreSQL database ", db == nullptr ? "(default)" : db, " on ",
                 host == nullptr ? "(default host)" : host);
}

// ---------------------------------------------------------------------------------------

Connection::Connection(const ConnectParams& params, bool pipeline) : pipeline_(pipeline) {
  // Our defaults first; the operator's string (expanded from dbname) overrides them.
  kj::Vector<const char*> keys, values;
  auto add = [&](const char* k, const char* v) {
    keys.add(k);
    values.add(v);
  };
  add("connect_timeout", "10");
  add("keepalives_idle", "30");
  add("keepalives_interval", "10");
  add("keepalives_count", "3");
  add("fallback_application_name", "credvaultd");
  add("dbname", params.conninfo.cStr());
  KJ_IF_MAYBE(p, params.passFile) { add("passfile", p->cStr()); }
  keys.add(nullptr);
  values.add(nullptr);
  conn_ = PQconnectdbParams(keys.begin(), values.begin(), 1);
  KJ_ASSERT(conn_ != nullptr, "out of memory");
  if (PQstatus(conn_) != CONNECTION_OK) {
    kj::Maybe<kj::String> refusal = loginRefusal(PQerrorMessage(conn_));
    if (refusal == nullptr && PQconnectionNeedsPassword(conn_)) {
      refusal = firstLine(PQerrorMessage(conn_));
    }
    KJ_IF_MAYBE(r, refusal) {
      auto line = kj::mv(*r);
      PQfinish(conn_);
      conn_ = nullptr;
      // Still "the database server ...": while serving, a refused login (a password rotated
      // on the server first) answers unavailable like any other failure to connect; at start
      // the daemon tells it apart (isLoginRefused) as a configuration error.
      throwStorageFailure("connecting", kj::str(LOGIN_REFUSED, " (", line, ")"));
    }
    auto message = firstLine(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    throwStorageFailure("connecting", kj::str("the database server cannot be reached (", message,
                                              "); check that PostgreSQL runs and accepts the "
                                              "configured connection"));
  }
  KJ_ON_SCOPE_FAILURE({
    PQfinish(conn_);
    conn_ = nullptr;
  });
  // libpq prints the server's notices and asynchronous errors to stderr by default: the store
  // never logs (what matters reaches the caller as an exception).
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  // A daemon that stops mid-transaction (SIGSTOP, a hung host) must not hold the writer lock
  // of every host for ever.
  exec("SET idle_in_transaction_session_timeout = '60s'", "configuring the session");
  if (!pipeline_) return;
  KJ_ASSERT(PQenterPipelineMode(conn_) == 1, "cannot enter pipeline mode");
  for (auto& p : PREPARED) {
    KJ_ASSERT(PQsendPrepare(conn_, p.name, p.sql, p.nParams, p.types) == 1,
              firstLine(PQerrorMessage(conn_)));
  }
  sync();
  PGresult* r;
  bool failed = false;
  kj::String message;
  while ((r = PQgetResult(conn_)) == nullptr || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
    if (r == nullptr) {
      if (PQstatus(conn_) == CONNECTION_BAD) lost("preparing statements");
      continue;
    }
    if (PQresultStatus(r) != PGRES_COMMAND_OK && !failed) {
      failed = true;
      const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
      message = firstLine(primary == nullptr ? PQerrorMessage(conn_) : primary);
    }
    PQclear(r);
  }
  PQclear(r);
  KJ_REQUIRE(!failed, "the database does not hold the credvault schema this build expects",
             message);
}

Connection::~Connection() noexcept {
  if (conn_ != nullptr) PQfinish(conn_);
}

bool Connection::usable() const {
  return !broken_ && conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
}

void Connection::lost(kj::StringPtr what) {
  broken_ = true;
  throwStorageFailure(what, kj::str("the database server closed the connection (",
                                    firstLine(PQerrorMessage(conn_)), ")"));
}

void Connection::queue(const Statement& s) {
  const char* values[4];
  int lengths[4], formats[4] = {1, 1, 1, 1};
  KJ_ASSERT(s.params.size() <= 4);
  for (size_t i = 0; i < s.params.size(); ++i) {
    values[i] = reinterpret_cast<const char*>(s.params[i].bytes.begin());
    lengths[i] = int(s.params[i].bytes.size());
    // libpq sends a null pointer as SQL NULL; an empty key or value is not NULL.
    if (values[i] == nullptr) values[i] = "";
  }
  int ok = s.prepared != nullptr
               ? PQsendQueryPrepared(conn_, s.prepared.cStr(), int(s.params.size()), values,
                                     lengths, formats, 1)
               : PQsendQueryParams(conn_, s.sql.cStr(), 0, nullptr, nullptr, nullptr, nullptr, 1);
  if (ok != 1) lost("sending a statement");
}

void Connection::sync() {
  if (PQpipelineSync(conn_) != 1) lost("sending a statement");
  // Blocking connection: returns once everything is written.
  if (PQflush(conn_) != 0) lost("sending a statement");
}

void Connection::drain() {
  while (unreadSyncs_ > 0) {
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) {
      if (PQstatus(conn_) == CONNECTION_BAD) lost("finishing a read transaction");
      continue;
    }
    bool isSync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    if (isSync) --unreadSyncs_;
  }
}

kj::Array<Result> Connection::run(kj::ArrayPtr<const Statement> statements, kj::StringPtr what) {
  KJ_REQUIRE(pipeline_, "connection not in pipeline mode");
  // Lost earlier in the same transaction (a write of a group-commit batch after another one
  // met the outage): unavailable like the first, never an internal error.
  if (broken_) throwStorageFailure(what, "the database server connection was lost");
  // Until every answer is read, the connection's state is unknown: a throw leaves it broken.
  broken_ = true;
  drain();
  // A read transaction's owed COMMIT goes first in the same Sync: it cannot fail but with
  // the connection (a read-only transaction that met an error answers ROLLBACK, not an
  // error); if it ever did, what follows is aborted and run() throws its error.
  bool withCommit = owesCommit_;
  owesCommit_ = false;
  if (withCommit) queue(Statement{nullptr, "COMMIT", {}});
  for (auto& s : statements) queue(s);
  sync();
  auto results = kj::heapArrayBuilder<Result>(statements.size());
  kj::Maybe<size_t> failedAt;
  Result failure;
  if (withCommit) {
    Result r(PQgetResult(conn_));
    if (r.get() == nullptr) lost(what);
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      if (PQstatus(conn_) == CONNECTION_BAD) lost(what);
      failedAt = size_t(0);
      failure = kj::mv(r);
    }
    for (;;) {
      PGresult* extra = PQgetResult(conn_);
      if (extra == nullptr) break;
      PQclear(extra);
    }
  }
  for (size_t i = 0; i < statements.size(); ++i) {
    Result r(PQgetResult(conn_));
    if (r.get() == nullptr) lost(what);
    auto status = PQresultStatus(r.get());
    if (status == PGRES_FATAL_ERROR || status == PGRES_PIPELINE_ABORTED ||
        status == PGRES_BAD_RESPONSE || status == PGRES_NONFATAL_ERROR) {
      if (PQstatus(conn_) == CONNECTION_BAD) lost(what);
      if (failedAt == nullptr && status != PGRES_PIPELINE_ABORTED) {
        failedAt = i;
        failure = kj::mv(r);
        r = Result();
      }
    }
    // Each statement's results end with a null.
    for (;;) {
      PGresult* extra = PQgetResult(conn_);
      if (extra == nullptr) break;
      PQclear(extra);
    }
    results.add(kj::mv(r));
  }
  for (;;) {
    Result r(PQgetResult(conn_));
    if (r.get() == nullptr) {
      if (PQstatus(conn_) == CONNECTION_BAD) lost(what);
      continue;
    }
    if (PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC) break;
  }
  broken_ = false;
  if (failedAt != nullptr) pgFailure(conn_, failure.get(), what);
  return results.finish();
}

void Connection::send(kj::ArrayPtr<const Statement> statements) {
  KJ_REQUIRE(pipeline_, "connection not in pipeline mode");
  if (broken_)
    throwStorageFailure("sending a statement", "the database server connection was lost");
  broken_ = true;
  drain();
  if (owesCommit_) queue(Statement{nullptr, "COMMIT", {}});
  owesCommit_ = false;
  for (auto& s : statements) queue(s);
  sync();
  ++unreadSyncs_;
  broken_ = false;
}

void Connection::deferCommit() {
  KJ_REQUIRE(pipeline_, "connection not in pipeline mode");
  owesCommit_ = true;
}

void Connection::flushCommit() {
  if (!owesCommit_ || broken_) return;
  send(nullptr);
}

Result Connection::exec(kj::StringPtr sql, kj::StringPtr what) {
  KJ_REQUIRE(!pipeline_ || PQpipelineStatus(conn_) == PQ_PIPELINE_OFF);
  Result r(PQexec(conn_, sql.cStr()));
  auto status = r.get() == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) { pgFailure(conn_, r.get(), what); }
  return r;
}

}  // namespace credvault::store::pg
