#include "postgres.h"

#include "pg-connection.h"
#include <libpq-fe.h>
#include <kj/debug.h>
#include <kj/map.h>
#include <kj/mutex.h>
#include <kj/thread.h>
#include <kj/vector.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <mutex>
#include <string>
#include <unordered_map>

namespace credvault::store {

namespace {

using pg::Connection;
using pg::Param;
using pg::Result;
using pg::Statement;
using Bytes = kj::ArrayPtr<const kj::byte>;

// Session-level lock held while the relations are created or migrated; the writer lock
// (pg-connection.c++ "write_lock") is another key.
constexpr const char SCHEMA_LOCK[] = "7165064886127834114";
constexpr const char CHANNEL[] = "credvault_generation";
// Reruns of one write transaction after a serialization failure or deadlock (another
// session than ours is involved: ours are serialised by the writer lock) or a connection
// lost before COMMIT.
constexpr unsigned MAX_RERUNS = 8;
// Scans read pages of rows, growing: a visitor that stops early reads little, a long scan
// holds at most one page.
constexpr int32_t FIRST_PAGE = 16;
constexpr int32_t MAX_PAGE = 1024;
// Puts a transaction queues before it sends them without waiting for a read (a bulk copy
// writes without reading): bounds the memory and the size of one round trip.
constexpr size_t MAX_QUEUED_PUTS = 256;
// How long an idle pooled connection may keep a finished read transaction open before the
// listener sends its COMMIT (a busy pool sends it with the connection's next statement).
constexpr int COMMIT_FLUSH_MS = 2;

// Schema version 1: every table of the store in one relation, its rows' bytes as LMDB holds
// them. Values are ciphertext: EXTERNAL storage keeps TOAST from trying to compress them.
constexpr const char CREATE_V1[] = R"(
BEGIN;
CREATE TABLE credvault_schema (version integer NOT NULL);
CREATE TABLE credvault_tables (
  tbl smallint PRIMARY KEY,
  name text NOT NULL UNIQUE,
  entries bigint NOT NULL DEFAULT 0);
CREATE TABLE credvault_kv (
  tbl smallint NOT NULL,
  key bytea NOT NULL,
  value bytea NOT NULL,
  PRIMARY KEY (tbl, key));
ALTER TABLE credvault_kv ALTER COLUMN value SET STORAGE EXTERNAL;
CREATE TABLE credvault_generation (generation bigint NOT NULL);
INSERT INTO credvault_generation VALUES (1);
INSERT INTO credvault_schema VALUES (1);
COMMIT;
)";

[[noreturn]] void operatorFailure(kj::String message) {
  kj::throwFatalException(
      kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::mv(message)));
}

uint64_t monotonicMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

bool lostConnection(const kj::Exception& e) {
  return storageFailureOf(e) == StorageFailure::UNAVAILABLE;
}

// The smallest key greater than every key that starts with `prefix`, or null when there is
// none (an empty prefix, or one of 0xff bytes only).
kj::Maybe<kj::Array<kj::byte>> successor(Bytes prefix) {
  size_t n = prefix.size();
  while (n > 0 && prefix[n - 1] == 0xff) --n;
  if (n == 0) return nullptr;
  auto out = kj::heapArray<kj::byte>(prefix.slice(0, n));
  ++out[n - 1];
  return kj::mv(out);
}

class PostgresStore;
class PgTxn;

// A statement waiting in a session for the next round trip: plain SQL whose answer nobody
// reads (BEGIN, SAVEPOINT, RELEASE, ROLLBACK TO), or a put, whose answer (whether the key
// existed) only moves the entry count of its table at the level `level` (a savepoint's
// number; 0 the top level) once it arrives.
struct Queued {
  kj::String sql;  // empty for a put
  unsigned table = 0;
  kj::Array<kj::byte> key, value;
  unsigned level = 0;
  bool lent = false;  // get() handed out a view of `value`: it must outlive the round trip

  bool isPut() const { return sql.size() == 0; }
};

// One top-level transaction's connection. Statements that need no answer of their own
// (BEGIN, the writer lock, SAVEPOINT, RELEASE) and puts wait in `pending` and go, in order,
// with the next statement that needs an answer (a read, a delete, the commit), in the same
// round trip: a batch of saves costs a round trip per read, its writes ride along.
//
// The puts queued since the last such statement (all of one level) wait apart, in `held`,
// one per key: a put of a key held there replaces the held value (the last write wins, and
// the server never sees the ones before: 10,000 saves of one associate in one transaction
// rewrite its counter 10,000 times, and each row version PostgreSQL keeps makes the next
// lookup of that row longer). A get or delete of another key goes without them (its answer
// does not depend on them); a get of a held key is answered from `held`; a delete of a held
// key drops it and deletes on the server (where the key may exist from before); scans,
// counts, the next SAVEPOINT/RELEASE/ROLLBACK TO and the commit send them first. Held puts
// are bounded like queued ones (MAX_QUEUED_PUTS).
struct Session {
  Session(PostgresStore& store, bool write);
  ~Session() noexcept(false);
  KJ_DISALLOW_COPY(Session);

  PostgresStore& store;
  bool write;
  kj::Own<Connection> conn;
  bool begun = false;
  bool committed = false;
  kj::Vector<Queued> pending;
  size_t queuedPuts = 0;    // in `pending`
  kj::Vector<Queued> held;  // puts only, one per key; order does not matter (distinct keys)
  std::unordered_map<std::string, size_t> heldAt;  // readKey() -> index in `held`
  // Values get() handed out that are no longer queued (sent or replaced): they live as long
  // as the transaction, as a view from a read does.
  kj::Vector<kj::Array<kj::byte>> lentValues;
  // The levels not ended yet, by savepoint number (0: the top), for the entry counts of the
  // puts they queued.
  kj::HashMap<unsigned, PgTxn*> levels;
  kj::Maybe<uint64_t> xid;  // this write transaction's id, once begun
  kj::Vector<Result> kept;  // the results whose bytes get() handed out
  // A write transaction's reads, by table and key, until it writes that key or undoes a
  // savepoint: it holds the writer lock from its first statement, so no other credvault
  // writer changes a row meanwhile, and a second read of the same key (core re-reads the
  // associate the identity check just read) needs no round trip.
  struct Read {
    bool found;
    Bytes value;  // into `kept`
  };
  std::unordered_map<std::string, Read> reads;
  static std::string readKey(unsigned table, Bytes key) {
    std::string k;
    k.reserve(2 + key.size());
    k.push_back(char(table >> 8));
    k.push_back(char(table));
    k.append(reinterpret_cast<const char*>(key.begin()), key.size());
    return k;
  }
  unsigned savepoints = 0;
  bool moveGeneration = false;

  void queue(kj::String sql) {
    releaseHeld();
    pending.add(Queued{kj::mv(sql)});
  }
  bool putsPending() const { return queuedPuts > 0 || held.size() > 0; }
  size_t putsWaiting() const { return queuedPuts + held.size(); }
  void countQueuedPuts() {
    queuedPuts = 0;
    for (auto& q : pending) queuedPuts += q.isPut();
  }
  // The held put of `key`, or null.
  Queued* heldPut(const std::string& key) {
    auto it = heldAt.find(key);
    return it == heldAt.end() ? nullptr : &held[it->second];
  }
  // Keeps a value that get() may have handed out.
  void retire(Queued& q) {
    if (q.lent) lentValues.add(kj::mv(q.value));
  }
  // Removes the held put of `key` (which must be held).
  void dropHeld(const std::string& key);
  // Held puts join the ordered queue (before a statement that must follow them).
  void releaseHeld();
  // Drops the held puts of level `level` (an undone savepoint's).
  void dropHeldOf(unsigned level);
  // Sends what is pending (with the held puts unless `keepHeld`), then `statements`, and
  // waits: the answers to `statements`. `keepHeld` only for a statement whose answer does
  // not depend on the held puts (a get or delete of a key that is not held).
  kj::Array<Result> run(kj::ArrayPtr<const Statement> statements, kj::StringPtr what,
                        bool keepHeld = false);
  Result one(const Statement& s, kj::StringPtr what, bool keepHeld = false) {
    return kj::mv(run({&s, 1}, what, keepHeld)[0]);
  }
  void commit(kj::ArrayPtr<const Statement> extra);
};

class PgTxn final : public TxnBackend {
 public:
  // Top level.
  explicit PgTxn(kj::Own<Session> session)
      : owned_(kj::mv(session)), s_(*owned_), parent_(nullptr), savepoint_(0) {
    s_.levels.insert(0, this);
  }
  // Nested.
  PgTxn(Session& session, PgTxn& parent, unsigned savepoint)
      : s_(session), parent_(&parent), savepoint_(savepoint) {
    s_.levels.insert(savepoint_, this);
  }
  ~PgTxn() noexcept(false);
  KJ_DISALLOW_COPY(PgTxn);

  Session& session() const { return s_; }

  kj::Maybe<Bytes> get(Table table, Bytes key) const override;
  void scan(Table table, Bytes prefix,
            kj::FunctionParam<bool(Bytes key, Bytes value)> visit) const override;
  uint64_t count(Table table) const override;
  void put(Table table, Bytes key, Bytes value) override;
  bool del(Table table, Bytes key) override;
  kj::Own<TxnBackend> beginNested() override;
  void commit() override;

  void addDelta(unsigned table, int64_t d) {
    deltas_.upsert(table, d, [](int64_t& old, int64_t n) { old += n; });
  }

 private:
  kj::Own<Session> owned_;
  Session& s_;
  PgTxn* parent_;
  unsigned savepoint_;
  bool done_ = false;
  // Entry-count changes by table, applied at the top-level commit (credvault_tables.entries),
  // kept per level so that an undone savepoint takes its own back.
  kj::HashMap<unsigned, int64_t> deltas_;

  // Removes this level's SAVEPOINT if it never left the client and nothing was queued after
  // it; true if it did not.
  bool unsentSavepoint();
  // This level's end: it no longer takes entry counts.
  void ended() { s_.levels.erase(savepoint_); }
};

struct Be16 {
  kj::byte bytes[2];
  explicit Be16(unsigned v) : bytes{kj::byte(v >> 8), kj::byte(v)} {}
  Param param() const { return Param::of(bytes); }
};

class PostgresStore final : public Store {
 public:
  explicit PostgresStore(PostgresOptions options);
  ~PostgresStore() noexcept(false);
  KJ_DISALLOW_COPY(PostgresStore);

  kj::StringPtr backendName() const override { return "postgresql"; }
  kj::StringPtr location() const override { return location_; }
  bool mayBlock() const override { return true; }
  Table table(kj::StringPtr name) override;
  kj::Maybe<Table> existingTable(kj::StringPtr name) override;
  bool readOnly() const override { return options_.readOnly; }
  ReadTxn read() override;
  StoreStats stats() override;

  kj::Own<Connection> lease();
  void giveBack(kj::Own<Connection> conn);
  kj::Own<Connection> connect() { return kj::heap<Connection>(params_); }
  // This store's name in its notifications.
  kj::StringPtr instance() const { return instance_; }

 protected:
  void runWrite(kj::FunctionParam<void(WriteTxn&)> body) override;

 private:
  PostgresOptions options_;
  pg::ConnectParams params_;
  kj::String location_;
  kj::String instance_;

  struct Pool {
    kj::Vector<kj::Own<Connection>> idle;
    unsigned open = 0;  // idle + leased + being opened
  };
  kj::MutexGuarded<Pool> pool_;
  std::mutex writer_;
  kj::MutexGuarded<kj::HashMap<kj::String, unsigned>> tables_;

  // The listener (other hosts' commits). While it is not listening, every transaction moves
  // the generation, so that no cache outlives a commit it could not hear of.
  bool listening_ = false;  // __atomic
  bool stopping_ = false;   // __atomic
  int wakeFd_ = -1;
  // Idle connections may owe a read transaction's COMMIT: the listener sends them after
  // COMMIT_FLUSH_MS unless a user took the connection first. Set (and the listener woken)
  // only on the change from false, so a busy pool costs one wake-up per period, not per read.
  bool commitsOwed_ = false;                 // __atomic
  kj::MutexGuarded<bool> firstAttemptDone_;  // the listener tried to connect once
  kj::Own<kj::Thread> listener_;

  void setUpSchema();
  void listen();
  // Sends the COMMITs idle connections owe (listener thread).
  void flushIdleCommits();
  // Reads the wake-up eventfd; true when the store is stopping.
  bool woken();
  bool isListening() const { return __atomic_load_n(&listening_, __ATOMIC_ACQUIRE); }
  void freshIfDeaf() {
    if (!isListening()) moveGeneration();
  }
};

// ---------------------------------------------------------------------------------------

Session::Session(PostgresStore& store, bool write) : store(store), write(write) {
  conn = store.lease();
  if (write) {
    queue(kj::str("BEGIN"));
  } else {
    queue(kj::str("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  }
}

Session::~Session() noexcept(false) {
  if (conn.get() == nullptr) return;
  if (begun && !committed && conn->usable()) {
    if (write) {
      // An aborted write: nobody waits for the answer.
      Statement end{nullptr, "ROLLBACK", {}};
      kj::runCatchingExceptions([&]() { conn->send({&end, 1}); });
    } else {
      // A read transaction's end travels with the connection's next statement (or the
      // listener sends it when the connection idles): a read-only COMMIT makes nothing
      // durable, and this saves the server a wake-up per read transaction.
      conn->deferCommit();
    }
  }
  store.giveBack(kj::mv(conn));
}

void Session::dropHeld(const std::string& key) {
  auto it = heldAt.find(key);
  KJ_ASSERT(it != heldAt.end());
  size_t i = it->second;
  heldAt.erase(it);
  retire(held[i]);
  size_t last = held.size() - 1;
  if (i != last) {
    held[i] = kj::mv(held[last]);
    heldAt[readKey(held[i].table, held[i].key)] = i;
  }
  held.removeLast();
}

void Session::releaseHeld() {
  for (auto& q : held) pending.add(kj::mv(q));
  queuedPuts += held.size();
  held.clear();
  heldAt.clear();
}

void Session::dropHeldOf(unsigned level) {
  kj::Vector<Queued> keep;
  for (auto& q : held) {
    if (q.level == level) {
      retire(q);
    } else {
      keep.add(kj::mv(q));
    }
  }
  held = kj::mv(keep);
  heldAt.clear();
  for (size_t i = 0; i < held.size(); ++i) heldAt[readKey(held[i].table, held[i].key)] = i;
}

kj::Array<Result> Session::run(kj::ArrayPtr<const Statement> statements, kj::StringPtr what,
                               bool keepHeld) {
  if (!keepHeld) releaseHeld();
  for (unsigned attempt = 0;; ++attempt) {
    kj::Vector<Statement> all;
    bool withLock = write && !begun;
    // The writer lock right after BEGIN, before any queued write.
    size_t lockAt = SIZE_MAX;  // none (a Maybe here draws a false -Wmaybe-uninitialized)
    if (withLock) { KJ_ASSERT(pending.size() > 0 && !pending[0].isPut()); }
    // The puts' parameters (table number, key, value), and where their answers come.
    kj::Vector<kj::byte> tables;
    tables.reserve(pending.size() * 2);
    kj::Vector<Param> putParams;
    putParams.reserve(pending.size() * 3);
    kj::Vector<size_t> putAt;  // index in `all` of pending[i]'s statement, for each put
    for (size_t i = 0; i < pending.size(); ++i) {
      auto& q = pending[i];
      if (q.isPut()) {
        tables.add(kj::byte(q.table >> 8));
        tables.add(kj::byte(q.table));
        putAt.add(all.size());
        all.add(Statement{"put", nullptr, {}});
      } else {
        all.add(Statement{nullptr, q.sql, {}});
      }
      if (i == 0 && withLock) {
        lockAt = all.size();
        all.add(Statement{"write_lock", nullptr, {}});
      }
    }
    // Parameters point into `tables` and `pending`, complete now (no more reallocation).
    {
      size_t k = 0, t = 0;
      for (auto& q : pending) {
        if (!q.isPut()) continue;
        size_t first = putParams.size();
        putParams.add(Param::of(tables.asPtr().slice(t, t + 2)));
        putParams.add(Param::of(q.key));
        putParams.add(Param::of(q.value));
        all[putAt[k]].params = putParams.asPtr().slice(first, first + 3);
        ++k;
        t += 2;
      }
    }
    size_t skip = all.size();
    for (auto& s : statements) all.add(s);
    kj::Maybe<kj::Exception> failure;
    kj::Array<Result> results;
    // Once BEGIN was sent the server may hold a transaction, even if a later statement of
    // the same round trip failed: the end of the session must close it.
    bool wasBegun = begun;
    begun = true;
    try {
      results = conn->run(all, what);
    } catch (const kj::Exception& e) { failure = kj::cp(e); }
    KJ_IF_MAYBE(e, failure) {
      if (!lostConnection(*e) || conn->usable()) kj::throwFatalException(kj::mv(*e));
      // The connection is gone. Before the transaction began nothing is lost: one more try
      // on a new connection (the pool's idle ones die with a server restart unnoticed).
      if (!wasBegun && attempt == 0) {
        begun = false;
        conn = store.connect();
        continue;
      }
      // A write transaction runs again from the start on a new connection (Store::write);
      // a read transaction's snapshot is gone: the caller hears that the server is unavailable.
      if (write) throw RerunTransaction();
      kj::throwFatalException(kj::mv(*e));
    }
    // The puts' answers: a key that did not exist adds an entry to its level's count. A
    // value that get() handed out stays (and answers the next read of its key); the last
    // put of a key decides what a read remembers.
    {
      size_t k = 0;
      for (auto& q : pending) {
        if (!q.isPut()) continue;
        if (results[putAt[k]].int64(0, 0) == 0) {
          KJ_IF_MAYBE(level, levels.find(q.level)) {
            (*level)->addDelta(q.table, 1);
          } else {
            KJ_FAIL_ASSERT("a put's answer for a level that ended", q.level);
          }
        }
        if (q.lent) {
          reads[readKey(q.table, q.key)] = Read{true, q.value.asPtr()};
          lentValues.add(kj::mv(q.value));
        } else {
          reads.erase(readKey(q.table, q.key));
        }
        ++k;
      }
    }
    pending.clear();
    queuedPuts = 0;
    if (lockAt != SIZE_MAX) xid = uint64_t(results[lockAt].int64(0, 1));
    auto out = kj::heapArrayBuilder<Result>(statements.size());
    for (size_t i = skip; i < results.size(); ++i) out.add(kj::mv(results[i]));
    return out.finish();
  }
}

void Session::commit(kj::ArrayPtr<const Statement> extra) {
  if (!begun && extra.size() == 0) {
    committed = true;  // nothing was read or written
    return;
  }
  kj::Vector<Statement> all;
  for (auto& s : extra) all.add(s);
  all.add(Statement{nullptr, "COMMIT", {}});
  try {
    auto results = run(all, "committing");
    committed = true;
    // After a failed statement PostgreSQL answers COMMIT with ROLLBACK.
    if (results.back().commandStatus() != "COMMIT") {
      operatorFailure(kj::str("PostgreSQL rolled the transaction back instead of committing it"));
    }
    return;
  } catch (const RerunTransaction&) {
    // A serialization failure or deadlock on a live connection: the transaction is still
    // open there (the session's end rolls it back) and runs again.
    if (conn->usable()) throw;
    // Lost before or during COMMIT: see below.
    committed = true;
  }
  // The answer to COMMIT was lost with the connection. Ask a new connection what became of
  // this transaction id.
  auto unknown = [&]() {
    throwStorageFailure("committing",
                        "the database server connection was lost while committing; the "
                        "outcome of the write is unknown");
  };
  KJ_IF_MAYBE(id, xid) {
    kj::Maybe<kj::String> status;
    kj::runCatchingExceptions([&]() {
      auto fresh = store.connect();
      kj::byte buf[8];
      putBe64(buf, *id);
      Param p = Param::of(buf);
      Statement s{"xact_status", nullptr, {&p, 1}};
      auto r = fresh->run({&s, 1}, "asking for a commit's outcome");
      if (!r[0].isNull(0, 0)) {
        auto b = r[0].bytes(0, 0);
        status = kj::heapString(reinterpret_cast<const char*>(b.begin()), b.size());
      }
      store.giveBack(kj::mv(fresh));
    });
    KJ_IF_MAYBE(st, status) {
      if (*st == "committed") return;
      if (*st == "aborted") throw RerunTransaction();
    }
  }
  unknown();
}

// ---------------------------------------------------------------------------------------

PgTxn::~PgTxn() noexcept(false) {
  ended();
  if (done_ || parent_ == nullptr) return;
  // An undone savepoint: its changes and its entry counts go, and what was read may have
  // been its own writes. If its SAVEPOINT never left the client, nothing queued since did
  // either: all of it goes unsent.
  s_.reads.clear();
  // Its held puts go unsent (nested levels' puts were handed to it when they ended).
  s_.dropHeldOf(savepoint_);
  auto name = kj::str("SAVEPOINT s", savepoint_);
  for (size_t i = 0; i < s_.pending.size(); ++i) {
    if (!s_.pending[i].isPut() && s_.pending[i].sql == name) {
      for (size_t j = i; j < s_.pending.size(); ++j) s_.retire(s_.pending[j]);
      s_.pending.truncate(i);
      s_.countQueuedPuts();
      return;
    }
  }
  // Its queued puts would be undone with it: they go unsent.
  kj::Vector<Queued> keep;
  for (auto& q : s_.pending) {
    if (!(q.isPut() && q.level == savepoint_)) {
      keep.add(kj::mv(q));
    } else {
      s_.retire(q);
    }
  }
  s_.pending = kj::mv(keep);
  s_.countQueuedPuts();
  s_.queue(kj::str("ROLLBACK TO SAVEPOINT s", savepoint_));
  s_.queue(kj::str("RELEASE SAVEPOINT s", savepoint_));
}

bool PgTxn::unsentSavepoint() {
  auto name = kj::str("SAVEPOINT s", savepoint_);
  if (s_.pending.size() > 0 && !s_.pending.back().isPut() && s_.pending.back().sql == name) {
    s_.pending.removeLast();
    return true;
  }
  return false;
}

kj::Maybe<Bytes> PgTxn::get(Table table, Bytes key) const {
  std::string cacheKey;
  if (s_.write) {
    cacheKey = Session::readKey(table.dbi, key);
    if (Queued* q = s_.heldPut(cacheKey)) {
      q->lent = true;
      return Bytes(q->value.asPtr());
    }
    auto it = s_.reads.find(cacheKey);
    if (it != s_.reads.end()) {
      if (!it->second.found) return nullptr;
      return it->second.value;
    }
  }
  Be16 tbl(table.dbi);
  Param params[] = {tbl.param(), Param::of(key)};
  // Not held: the answer does not depend on the held puts, which stay held.
  auto r = s_.one(Statement{"get", nullptr, params}, "reading a record", true);
  if (r.rows() == 0) {
    if (s_.write) s_.reads[cacheKey] = Session::Read{false, nullptr};
    return nullptr;
  }
  auto value = r.bytes(0, 0);
  s_.kept.add(kj::mv(r));
  if (s_.write) s_.reads[cacheKey] = Session::Read{true, value};
  return value;
}

void PgTxn::scan(Table table, Bytes prefix,
                 kj::FunctionParam<bool(Bytes key, Bytes value)> visit) const {
  Be16 tbl(table.dbi);
  auto end = successor(prefix);
  kj::Array<kj::byte> after;
  bool first = true;
  int32_t limit = FIRST_PAGE;
  for (;;) {
    kj::byte limitBytes[4];
    putBe32(limitBytes, uint32_t(limit));
    kj::Vector<Param> params;
    params.add(tbl.param());
    params.add(Param::of(first ? prefix : after.asPtr()));
    KJ_IF_MAYBE(e, end) { params.add(Param::of(*e)); }
    params.add(Param::of(limitBytes));
    kj::StringPtr name = first ? (end == nullptr ? "scan_from" : "scan_from_to")
                               : (end == nullptr ? "scan_after" : "scan_after_to");
    auto page = s_.one(Statement{name, nullptr, params}, "scanning a table");
    int rows = page.rows();
    for (int i = 0; i < rows; ++i) {
      if (!visit(page.bytes(i, 0), page.bytes(i, 1))) return;
    }
    if (rows < limit) return;
    after = kj::heapArray(page.bytes(rows - 1, 0));
    first = false;
    limit = kj::min(limit * 4, MAX_PAGE);
  }
}

uint64_t PgTxn::count(Table table) const {
  Be16 tbl(table.dbi);
  Param p = tbl.param();
  auto r = s_.one(Statement{"count", nullptr, {&p, 1}}, "counting a table");
  int64_t n = r.rows() == 0 ? 0 : r.int64(0, 0);
  for (const PgTxn* t = this; t != nullptr; t = t->parent_) {
    KJ_IF_MAYBE(d, t->deltas_.find(table.dbi)) { n += *d; }
  }
  return uint64_t(n);
}

void PgTxn::put(Table table, Bytes key, Bytes value) {
  KJ_REQUIRE(s_.write, "put() in a read transaction");
  // Sent with the next statement that needs an answer; a failure then fails that statement
  // (in a batch, the next op's) and the transaction after it: nothing is acknowledged that
  // was not committed. A put has no error of its own op to report (short keys, values not
  // indexed).
  auto cacheKey = Session::readKey(table.dbi, key);
  s_.reads.erase(cacheKey);
  if (Queued* held = s_.heldPut(cacheKey)) {
    if (held->level == savepoint_) {
      // The last write wins: the held one is never sent. Its answer (whether the key
      // existed) is the new one's, at the same level.
      s_.retire(*held);
      held->value = kj::heapArray(value);
      held->lent = false;
      return;
    }
    // Held by another level (written while a child was open): keep the order instead.
    s_.releaseHeld();
  }
  Queued q;
  q.table = table.dbi;
  q.key = kj::heapArray(key);
  q.value = kj::heapArray(value);
  q.level = savepoint_;
  s_.heldAt[kj::mv(cacheKey)] = s_.held.size();
  s_.held.add(kj::mv(q));
  if (s_.putsWaiting() >= MAX_QUEUED_PUTS) s_.run(nullptr, "writing records");
}

bool PgTxn::del(Table table, Bytes key) {
  KJ_REQUIRE(s_.write, "del() in a read transaction");
  auto cacheKey = Session::readKey(table.dbi, key);
  s_.reads.erase(cacheKey);
  // A held put of the key at this level is dropped: it existed for this transaction, and
  // the server's row (if the key existed before the put) is deleted below. Its count: the
  // put was never counted, the delete counts only a row that the server had.
  bool wasHeld = false;
  if (Queued* held = s_.heldPut(cacheKey)) {
    if (held->level == savepoint_) {
      s_.dropHeld(cacheKey);
      wasHeld = true;
    } else {
      s_.releaseHeld();
    }
  }
  Be16 tbl(table.dbi);
  Param params[] = {tbl.param(), Param::of(key)};
  // The other held puts are of other keys: they stay held.
  auto r = s_.one(Statement{"del", nullptr, params}, "deleting a record", true);
  s_.reads[cacheKey] = Session::Read{false, nullptr};
  if (r.affected() != "1") return wasHeld;
  addDelta(table.dbi, -1);
  return true;
}

kj::Own<TxnBackend> PgTxn::beginNested() {
  KJ_REQUIRE(s_.write, "nested transaction in a read transaction");
  unsigned n = ++s_.savepoints;
  s_.queue(kj::str("SAVEPOINT s", n));
  return kj::heap<PgTxn>(s_, *this, n);
}

void PgTxn::commit() {
  KJ_REQUIRE(!done_, "transaction already committed");
  done_ = true;
  if (parent_ != nullptr) {
    if (!unsentSavepoint()) s_.queue(kj::str("RELEASE SAVEPOINT s", savepoint_));
    for (auto& d : deltas_) parent_->addDelta(d.key, d.value);
    // Its queued puts now count for the parent (held ones too, when its SAVEPOINT never
    // left the client: then nothing separates them from the parent's).
    for (auto& q : s_.pending) {
      if (q.isPut() && q.level == savepoint_) q.level = parent_->savepoint_;
    }
    for (auto& q : s_.held) {
      if (q.level == savepoint_) q.level = parent_->savepoint_;
    }
    ended();
    return;
  }
  // The entry counts need the queued puts' answers: they go first, in one round trip.
  if (s_.putsPending()) s_.run(nullptr, "writing records");
  // Entry counts and the generation move in the same transaction as the data.
  kj::Vector<kj::Array<kj::byte>> buffers;
  kj::Vector<kj::Array<Param>> params;
  kj::Vector<Statement> extra;
  for (auto& d : deltas_) {
    if (d.value == 0) continue;
    auto b = kj::heapArray<kj::byte>(10);
    b[0] = kj::byte(d.key >> 8);
    b[1] = kj::byte(d.key);
    putBe64(b.begin() + 2, uint64_t(d.value));
    auto p = kj::heapArray<Param>({Param::of(b.slice(0, 2)), Param::of(b.slice(2, 10))});
    extra.add(Statement{"add_count", nullptr, p});
    buffers.add(kj::mv(b));
    params.add(kj::mv(p));
  }
  Param sender = Param::of(s_.store.instance().asBytes());
  if (s_.moveGeneration) extra.add(Statement{"bump", nullptr, {&sender, 1}});
  s_.commit(extra);
}

// ---------------------------------------------------------------------------------------

PostgresStore::PostgresStore(PostgresOptions options)
    : options_(kj::mv(options)),
      params_{kj::heapString(options_.conninfo), nullptr},
      location_(pg::describeConninfo(options_.conninfo)) {
  {
    kj::byte id[8];
    KJ_SYSCALL(getentropy(id, sizeof(id)));
    instance_ = kj::str(getpid(), "-", getBe64(id));
  }
  KJ_IF_MAYBE(problem, pg::conninfoProblem(options_.conninfo)) {
    operatorFailure(kj::mv(*problem));
  }
  KJ_IF_MAYBE(p, options_.passFile) { params_.passFile = kj::heapString(*p); }
  // A write transaction may open a read: with one connection it would wait for itself.
  options_.connections = kj::max(options_.connections, 2u);
  setUpSchema();
  wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  KJ_SYSCALL(wakeFd_, "eventfd");
  listener_ = kj::heap<kj::Thread>([this]() { listen(); });
  // Open listening where the server answers, so that caches work from the first call (until
  // then every transaction moves the generation).
  firstAttemptDone_.when([](const bool& done) { return done; }, [](bool&) {});
}

PostgresStore::~PostgresStore() noexcept(false) {
  __atomic_store_n(&stopping_, true, __ATOMIC_RELEASE);
  if (wakeFd_ >= 0) {
    uint64_t one = 1;
    ssize_t n = ::write(wakeFd_, &one, sizeof(one));
    (void)n;
  }
  listener_ = nullptr;  // joins
  if (wakeFd_ >= 0) ::close(wakeFd_);
}

void PostgresStore::setUpSchema() {
  Connection c(params_, false);
  c.exec(kj::str("SELECT pg_advisory_lock(", SCHEMA_LOCK, ")"), "locking the schema");
  KJ_DEFER(kj::runCatchingExceptions([&]() {
    c.exec(kj::str("SELECT pg_advisory_unlock(", SCHEMA_LOCK, ")"), "unlocking the schema");
  }));
  auto exists = c.exec("SELECT to_regclass('credvault_schema') IS NOT NULL", "reading the schema");
  uint32_t version = 0;
  if (kj::StringPtr(PQgetvalue(exists.get(), 0, 0)) == "t") {
    auto v = c.exec("SELECT version FROM credvault_schema", "reading the schema version");
    KJ_REQUIRE(PQntuples(v.get()) == 1, "the credvault schema in PostgreSQL is damaged");
    version = uint32_t(atol(PQgetvalue(v.get(), 0, 0)));
  }
  if (version > POSTGRES_SCHEMA_VERSION) {
    operatorFailure(kj::str("the PostgreSQL database was written by a newer credvault (schema ",
                            version, "; this build knows up to ", POSTGRES_SCHEMA_VERSION,
                            "); upgrade credvault on this host"));
  }
  if (version == 0) {
    if (options_.readOnly) {
      operatorFailure(kj::str("there is no credvault vault in ", location_));
    }
    c.exec(CREATE_V1, "creating the schema");
    version = 1;
  }
  // Later versions migrate here, each in its own transaction, still under the lock.
  auto names = c.exec("SELECT name, tbl FROM credvault_tables", "reading the tables");
  auto tables = tables_.lockExclusive();
  for (int i = 0; i < PQntuples(names.get()); ++i) {
    tables->upsert(kj::heapString(PQgetvalue(names.get(), i, 0)),
                   unsigned(atoi(PQgetvalue(names.get(), i, 1))),
                   [](unsigned& old, unsigned n) { old = n; });
  }
}

kj::Own<Connection> PostgresStore::lease() {
  kj::Own<Connection> conn;
  bool opening = false;
  pool_.when([&](const Pool& p) { return !p.idle.empty() || p.open < options_.connections; },
             [&](Pool& p) {
               if (!p.idle.empty()) {
                 conn = kj::mv(p.idle.back());
                 p.idle.removeLast();
               } else {
                 ++p.open;
                 opening = true;
               }
             });
  if (conn.get() != nullptr && !conn->usable()) {
    conn = nullptr;
    opening = true;
  }
  if (opening) {
    KJ_ON_SCOPE_FAILURE(--pool_.lockExclusive()->open);
    conn = connect();
  }
  return conn;
}

void PostgresStore::giveBack(kj::Own<Connection> conn) {
  bool owes = false;
  {
    auto p = pool_.lockExclusive();
    if (conn->usable()) {
      owes = conn->owesCommit();
      p->idle.add(kj::mv(conn));
    } else {
      --p->open;
    }
  }
  if (owes && !__atomic_exchange_n(&commitsOwed_, true, __ATOMIC_ACQ_REL)) {
    uint64_t one = 1;
    ssize_t n = ::write(wakeFd_, &one, sizeof(one));
    (void)n;  // a full counter wakes the listener as well
  }
}

void PostgresStore::flushIdleCommits() {
  __atomic_store_n(&commitsOwed_, false, __ATOMIC_RELEASE);
  // Taken out of the pool while their COMMIT goes (a blocking write, and reading what the
  // connection's earlier sends answered), then given back.
  kj::Vector<kj::Own<Connection>> owing;
  {
    auto p = pool_.lockExclusive();
    kj::Vector<kj::Own<Connection>> keep;
    for (auto& c : p->idle) {
      if (c->owesCommit()) {
        owing.add(kj::mv(c));
      } else {
        keep.add(kj::mv(c));
      }
    }
    p->idle = kj::mv(keep);
  }
  for (auto& c : owing) {
    kj::runCatchingExceptions([&]() { c->flushCommit(); });  // a lost one is replaced
    giveBack(kj::mv(c));
  }
}

bool PostgresStore::woken() {
  uint64_t count;
  ssize_t n = ::read(wakeFd_, &count, sizeof(count));
  (void)n;
  return __atomic_load_n(&stopping_, __ATOMIC_ACQUIRE);
}

ReadTxn PostgresStore::read() {
  freshIfDeaf();
  return ReadTxn(kj::heap<PgTxn>(kj::heap<Session>(*this, false)));
}

void PostgresStore::runWrite(kj::FunctionParam<void(WriteTxn&)> body) {
  KJ_REQUIRE(!options_.readOnly, "the PostgreSQL store was opened read-only");
  freshIfDeaf();
  // One write transaction per process at a time: they would wait for the server's writer
  // lock anyway, and this way at most one pooled connection waits in a write, so a read that
  // a write body opens always finds a connection (with two or more in the pool).
  std::unique_lock<std::mutex> writer(writer_);
  for (unsigned attempt = 1;; ++attempt) {
    try {
      auto top = kj::heap<PgTxn>(kj::heap<Session>(*this, true));
      PgTxn& backend = *top;
      WriteTxn txn(kj::mv(top));
      body(txn);
      backend.session().moveGeneration = txn.movesGeneration();
      txn.commit();
      return;
    } catch (const RerunTransaction&) {
      if (attempt >= MAX_RERUNS) {
        throwStorageFailure("writing", "the database server kept failing the transaction");
      }
      usleep(1000 * attempt);
    }
  }
}

Table PostgresStore::table(kj::StringPtr name) {
  KJ_IF_MAYBE(t, existingTable(name)) { return *t; }
  if (options_.readOnly) {
    KJ_FAIL_REQUIRE("the database is damaged: a table is missing; restore a backup", name);
  }
  unsigned id = 0;
  runWrite([&](WriteTxn& txn) {
    auto& s = static_cast<const PgTxn&>(txn.backend()).session();
    Param p = Param::of(name.asBytes());
    Statement add{"add_table", nullptr, {&p, 1}};
    Statement find{"table_id", nullptr, {&p, 1}};
    Statement both[] = {add, find};
    auto r = s.run(both, "creating a table");
    KJ_ASSERT(r[1].rows() == 1);
    auto b = r[1].bytes(0, 0);
    KJ_ASSERT(b.size() == 2);
    id = (unsigned(b[0]) << 8) | b[1];
  });
  tables_.lockExclusive()->upsert(kj::heapString(name), id,
                                  [](unsigned& old, unsigned n) { old = n; });
  return Table{id};
}

kj::Maybe<Table> PostgresStore::existingTable(kj::StringPtr name) {
  {
    auto t = tables_.lockShared();
    KJ_IF_MAYBE(id, t->find(name)) { return Table{*id}; }
  }
  // Another host may have created it since we started.
  Session s(*this, false);
  Param p = Param::of(name.asBytes());
  auto r = s.one(Statement{"table_id", nullptr, {&p, 1}}, "looking up a table");
  if (r.rows() == 0) return nullptr;
  auto b = r.bytes(0, 0);
  unsigned id = (unsigned(b[0]) << 8) | b[1];
  tables_.lockExclusive()->upsert(kj::heapString(name), id,
                                  [](unsigned& old, unsigned n) { old = n; });
  return Table{id};
}

StoreStats PostgresStore::stats() {
  Session s(*this, false);
  auto r = s.one(Statement{"size", nullptr, {}}, "measuring the database");
  StoreStats out;
  out.usedBytes = uint64_t(r.int64(0, 0));
  return out;
}

void PostgresStore::listen() {
  unsigned backoffMs = 50;
  while (!__atomic_load_n(&stopping_, __ATOMIC_ACQUIRE)) {
    kj::Own<Connection> conn;
    kj::runCatchingExceptions([&]() {
      conn = kj::heap<Connection>(params_, false);
      conn->exec(kj::str("LISTEN ", CHANNEL), "listening for commits");
    });
    bool listening = conn.get() != nullptr && conn->usable();
    if (listening) {
      // Commits made while we were not listening went unheard.
      __atomic_store_n(&listening_, true, __ATOMIC_RELEASE);
      moveGeneration();
    }
    *firstAttemptDone_.lockExclusive() = true;
    if (listening) {
      backoffMs = 50;
      PGconn* pc = conn->handle();
      bool stop = false;
      uint64_t flushAt = 0;  // when owed COMMITs go (ms, monotonic); 0: none owed yet
      while (!stop && !__atomic_load_n(&stopping_, __ATOMIC_ACQUIRE)) {
        // Owed COMMITs go COMMIT_FLUSH_MS after the first was owed, whatever else wakes us.
        int timeout = -1;
        if (__atomic_load_n(&commitsOwed_, __ATOMIC_ACQUIRE)) {
          uint64_t now = monotonicMs();
          if (flushAt == 0) flushAt = now + COMMIT_FLUSH_MS;
          if (now >= flushAt) {
            flushAt = 0;
            flushIdleCommits();
            continue;
          }
          timeout = int(flushAt - now);
        }
        struct pollfd fds[2] = {{PQsocket(pc), POLLIN, 0}, {wakeFd_, POLLIN, 0}};
        int n = poll(fds, 2, timeout);
        if (n <= 0) continue;  // the flush's time, or EINTR
        if (fds[1].revents != 0) {
          stop = woken();
          continue;
        }
        if (fds[0].revents == 0) continue;
        if (PQconsumeInput(pc) == 0) break;  // lost
        bool any = false;
        while (PGnotify* note = PQnotifies(pc)) {
          if (note->extra == nullptr || instance_ != note->extra) any = true;
          PQfreemem(note);
        }
        if (any) moveGeneration();
        if (PQstatus(pc) == CONNECTION_BAD) break;
      }
      __atomic_store_n(&listening_, false, __ATOMIC_RELEASE);
      moveGeneration();
    }
    if (__atomic_load_n(&stopping_, __ATOMIC_ACQUIRE)) break;
    // Reconnect after a pause that grows to a second; the stop signal cuts it short. Owed
    // COMMITs go meanwhile (without a server they fail, and their connections are replaced).
    flushIdleCommits();
    uint64_t until = monotonicMs() + backoffMs;
    for (uint64_t now = monotonicMs(); now < until; now = monotonicMs()) {
      struct pollfd wake = {wakeFd_, POLLIN, 0};
      if (poll(&wake, 1, int(until - now)) > 0) {
        if (woken()) break;
        flushIdleCommits();
      }
    }
    backoffMs = kj::min(backoffMs * 2, 1000u);
  }
}

}  // namespace

kj::Own<Store> openPostgres(PostgresOptions options) {
  return kj::heap<PostgresStore>(kj::mv(options));
}

}  // namespace credvault::store
