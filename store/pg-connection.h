// credvault — one libpq connection of the PostgreSQL backend (store/postgres.h), in pipeline
// mode: statements are queued and sent together with one Sync, so that a transaction's BEGIN,
// its writer lock and its first statement cost one round trip, and a read transaction's
// COMMIT goes first in the connection's next round trip (deferCommit()).
//
// The one place libpq's and the server's errors become exceptions (pgFailure()): a lost
// connection or a server that is down, starting or shutting down is a storage failure whose
// message starts "the database server" (StorageFailure::UNAVAILABLE); a serialization
// failure or deadlock is RerunTransaction; anything else is a KJ failure naming the
// operation with the server's primary message and SQLSTATE, never its DETAIL (which may
// quote values) and never a parameter.
//
// Thread-safety: a connection is used by one thread at a time (the pool hands it out).
// Never logs.

#pragma once

#include "store.h"
#include <kj/array.h>
#include <kj/string.h>
#include <kj/vector.h>

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace credvault::store::pg {

// Owns a PGresult.
class Result {
 public:
  Result() = default;
  explicit Result(PGresult* r) : r_(r) {}
  Result(Result&& other) noexcept : r_(other.r_) { other.r_ = nullptr; }
  Result& operator=(Result&& other) noexcept;
  ~Result() noexcept;
  KJ_DISALLOW_COPY(Result);

  PGresult* get() const { return r_; }
  int rows() const;
  // Field `col` of row `row`, as the bytes the server sent (binary format).
  kj::ArrayPtr<const kj::byte> bytes(int row, int col) const;
  bool isNull(int row, int col) const;
  int64_t int64(int row, int col) const;  // a binary int8
  kj::StringPtr commandStatus() const;
  kj::StringPtr affected() const;  // PQcmdTuples

 private:
  PGresult* r_ = nullptr;
};

// A statement's parameter: bytes sent in binary format.
struct Param {
  kj::ArrayPtr<const kj::byte> bytes;
  static Param of(kj::ArrayPtr<const kj::byte> b) { return {b}; }
};

// A statement to send: a prepared statement's name (prepared on every connection, see
// PREPARED in pg-connection.c++) with its parameters, or plain SQL without parameters.
struct Statement {
  kj::StringPtr prepared;  // or null
  kj::StringPtr sql;       // when `prepared` is null
  kj::ArrayPtr<const Param> params;
};

// Connection parameters: the operator's connection string, expanded by libpq, with our
// defaults (connect and keepalive timeouts) that it may override, and a passfile.
struct ConnectParams {
  kj::String conninfo;
  kj::Maybe<kj::String> passFile;
};

// Whether a connection string can be used: null, or the one operator line that says why
// not (it holds a password; it cannot be parsed). Never quotes the string.
kj::Maybe<kj::String> conninfoProblem(kj::StringPtr conninfo);
// "database NAME on HOST" or "service NAME", for messages (never a password).
kj::String describeConninfo(kj::StringPtr conninfo);

class Connection {
 public:
  // Connects (blocking, bounded by connect_timeout). Throws the storage failure "the
  // database server cannot be reached" when it cannot.
  explicit Connection(const ConnectParams& params, bool pipeline = true);
  ~Connection() noexcept;
  KJ_DISALLOW_COPY(Connection);

  PGconn* handle() const { return conn_; }
  // False once the connection was lost or a pipeline was left in an unknown state; the pool
  // then replaces it.
  bool usable() const;

  // Sends `statements` and one Sync, waits, and returns one result per statement. Throws
  // (pgFailure) for the first statement that failed; the others then failed too. `what`
  // names the operation for messages.
  kj::Array<Result> run(kj::ArrayPtr<const Statement> statements, kj::StringPtr what);
  // Sends `statements` and a Sync without waiting for the answers; the next run() reads
  // and discards them first (for an aborted write transaction's ROLLBACK).
  void send(kj::ArrayPtr<const Statement> statements);
  // A read-only transaction's end: its COMMIT is not sent now but first in the next run() or
  // send(), in the same round trip (a read-only COMMIT makes nothing durable, only ends the
  // snapshot), or by flushCommit() when the connection idles.
  void deferCommit();
  bool owesCommit() const { return owesCommit_; }
  // Sends the owed COMMIT now, without waiting (an idle connection must not keep a snapshot:
  // it holds back vacuum, and idle_in_transaction_session_timeout would end the session).
  void flushCommit();
  // In normal (non-pipeline) mode only: plain SQL, possibly several statements; the last
  // result.
  Result exec(kj::StringPtr sql, kj::StringPtr what);

 private:
  PGconn* conn_ = nullptr;
  bool pipeline_;
  bool broken_ = false;
  bool owesCommit_ = false;
  unsigned unreadSyncs_ = 0;

  void queue(const Statement& s);
  void sync();
  void drain();
  [[noreturn]] void lost(kj::StringPtr what);
};

// The words of the storage failure (StorageFailure::UNAVAILABLE) thrown when the server
// refuses the login: a wrong or missing password, an unknown role or database, no pg_hba.conf
// entry, no CONNECT privilege. Followed by libpq's line in parentheses (never a password).
constexpr const char LOGIN_REFUSED[] = "the database server refused the login";
// Whether `e` is that failure: a configuration error that retrying does not fix.
bool isLoginRefused(const kj::Exception& e);

// Throws the exception for a failed result (or a lost connection when `result` is null).
[[noreturn]] void pgFailure(PGconn* conn, PGresult* result, kj::StringPtr what);
// Whether SQLSTATE `state` means the server cannot serve now (connection exception, shutting
// down, starting up, too many connections, a read-only standby after a failover).
bool isUnavailableState(kj::StringPtr state);

}  // namespace credvault::store::pg
