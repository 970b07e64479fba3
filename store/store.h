// credvault — the storage interface: named tables of byte keys and byte values, in
// transactions. Moves bytes; knows nothing of crypto or of records.
//
// Two backends implement it and hold exactly the same bytes: the embedded LMDB environment
// (store/env.h, the default) and PostgreSQL (store/postgres.h, for several hosts). Core seals
// every value before it reaches a table, so a backend only ever sees ciphertext, keyed hashes
// and big-endian counters.
//
// The model is LMDB's: tables are opened by name at start; a read transaction sees one
// consistent snapshot; write transactions are serialised (one at a time, across every process
// that shares the store) and run through Store::write(), which may run the body more than
// once (LMDB reruns it after growing the map, PostgreSQL after a serialization failure or a
// lost connection before commit), so a body must have no effects outside its transaction.
// Views returned by get() stay valid until the transaction ends; views passed to a scan's
// visitor only until the visitor returns.
//
// Thread-safety: a Store may be used from any thread; a transaction belongs to the thread
// that opened it. Never logs.

#pragma once

#include <kj/array.h>
#include <kj/debug.h>
#include <kj/exception.h>
#include <kj/function.h>
#include <kj/memory.h>
#include <kj/string.h>
#include <exception>
#include <stdint.h>
#include <type_traits>

namespace credvault::store {

// Storage failures the operator must fix (no space, I/O error, read-only file system, the
// database server unreachable) are thrown as kj::Exception of type OVERLOADED whose
// description starts with this prefix, so that the layers above can tell them from bugs
// without knowing the backend (isStorageFailure()).
constexpr const char STORAGE_FAILURE_PREFIX[] = "storage: ";
bool isStorageFailure(const kj::Exception& e);
// The kind of a storage failure, for messages and health reports.
enum class StorageFailure { NONE, NO_SPACE, IO_ERROR, READ_ONLY, ENVIRONMENT_FAILED, UNAVAILABLE };
StorageFailure storageFailureOf(const kj::Exception& e);
// Throws a storage failure: `message` is the operator-facing text (it must start with one of
// the phrases storageFailureOf() knows), `what` the operation that met it.
[[noreturn]] void throwStorageFailure(kj::StringPtr what, kj::StringPtr message);

struct Table {
  unsigned int dbi;  // the backend's handle (LMDB dbi; PostgreSQL table number)
};

// Thrown by a backend inside a write transaction when the whole transaction must be run again
// (LMDB's map is full; PostgreSQL reported a serialization failure). Caught by Store::write()
// and passed through nested transactions; bodies must not swallow it.
struct RerunTransaction {};
struct MapFull : RerunTransaction {};

// One backend's transaction. A ReadTxn or WriteTxn owns one; destroying it without commit()
// aborts. Read methods are const: a backend that must keep results alive for the views it
// hands out (PostgreSQL) keeps them in mutable members.
class TxnBackend {
 public:
  virtual ~TxnBackend() noexcept(false) = default;
  virtual kj::Maybe<kj::ArrayPtr<const kj::byte>> get(Table table,
                                                      kj::ArrayPtr<const kj::byte> key) const = 0;
  virtual void scan(
      Table table, kj::ArrayPtr<const kj::byte> prefix,
      kj::FunctionParam<bool(kj::ArrayPtr<const kj::byte> key, kj::ArrayPtr<const kj::byte> value)>
          visit) const = 0;
  virtual uint64_t count(Table table) const = 0;
  virtual void put(Table table, kj::ArrayPtr<const kj::byte> key,
                   kj::ArrayPtr<const kj::byte> value) = 0;
  virtual bool del(Table table, kj::ArrayPtr<const kj::byte> key) = 0;
  // A child transaction (LMDB nested transaction, PostgreSQL savepoint) of this write
  // transaction; this one is not used until the child is committed or destroyed.
  virtual kj::Own<TxnBackend> beginNested() = 0;
  virtual void commit() = 0;
};

class ReadTxn {
 public:
  explicit ReadTxn(kj::Own<TxnBackend> backend) : backend_(kj::mv(backend)) {}
  KJ_DISALLOW_COPY(ReadTxn);
  ReadTxn(ReadTxn&&) noexcept = default;

  kj::Maybe<kj::ArrayPtr<const kj::byte>> get(Table table, kj::ArrayPtr<const kj::byte> key) const {
    return backend_->get(table, key);
  }
  // Visits keys starting with `prefix` in byte order until `visit` returns false.
  void scan(
      Table table, kj::ArrayPtr<const kj::byte> prefix,
      kj::FunctionParam<bool(kj::ArrayPtr<const kj::byte> key, kj::ArrayPtr<const kj::byte> value)>
          visit) const {
    backend_->scan(table, prefix, visit);
  }
  uint64_t count(Table table) const { return backend_->count(table); }

  // For backends only (the LMDB environment reaches its MDB_txn through it).
  const TxnBackend& backend() const { return *backend_; }

 protected:
  kj::Own<TxnBackend> backend_;
};

class WriteTxn : public ReadTxn {
 public:
  // `moveGeneration` is shared with nested transactions; null for a new top-level one.
  explicit WriteTxn(kj::Own<TxnBackend> backend, kj::Maybe<bool&> moveGeneration = nullptr);
  WriteTxn(WriteTxn&&) noexcept = default;

  void put(Table table, kj::ArrayPtr<const kj::byte> key, kj::ArrayPtr<const kj::byte> value) {
    backend_->put(table, key, value);
  }
  // Returns whether the key existed.
  bool del(Table table, kj::ArrayPtr<const kj::byte> key) { return backend_->del(table, key); }
  // Runs `body` in a nested transaction: if it throws (other than RerunTransaction), only its
  // changes are undone and the exception is returned; the outer transaction goes on.
  kj::Maybe<kj::Exception> nested(kj::FunctionParam<void(WriteTxn&)> body);
  // The same, where `body` also decides: its changes are kept only when it returns true (an
  // operation that returned a refusal leaves nothing behind, without throwing).
  kj::Maybe<kj::Exception> nestedKeepIf(kj::FunctionParam<bool(WriteTxn&)> body);

  // Asks the store to move its generation (Store::generation) once this transaction has
  // committed. A nested body that marks and then fails still moves it: a spurious move only
  // costs readers a re-read.
  void moveGenerationOnCommit() { *moveGeneration_ = true; }
  bool movesGeneration() const { return *moveGeneration_; }

  // Commits; for Store implementations (Store::write commits for everyone else).
  void commit() { backend_->commit(); }

 private:
  kj::Own<bool> ownedFlag_;
  bool* moveGeneration_;
};

// What a store reports for status and metrics.
struct StoreStats {
  uint64_t usedBytes = 0;  // on disk (LMDB: last page × page size; PostgreSQL: relation sizes)
  uint64_t mapSize = 0;    // LMDB only
  uint32_t readers = 0;    // open read transactions (LMDB reader slots; PostgreSQL: 0)
};

class Environment;

class Store {
 public:
  virtual ~Store() noexcept(false) = default;

  // "lmdb" or "postgresql", for messages and status.
  virtual kj::StringPtr backendName() const = 0;
  // Where the data lives, for operator messages: a directory, or the database's host/name
  // (never a password).
  virtual kj::StringPtr location() const = 0;
  // True when a read or write may wait on the network: the daemon then never runs one on its
  // event loop (PostgreSQL). LMDB reads of the page cache are answered inline.
  virtual bool mayBlock() const = 0;
  // The LMDB environment behind this store, for what only LMDB offers (page walk, file
  // backup, map statistics); null for other backends.
  virtual kj::Maybe<Environment&> lmdb() { return nullptr; }

  // Opens or creates a named table. Call at start, before concurrent use. Read-only: opens an
  // existing table, and fails naming it when there is none.
  virtual Table table(kj::StringPtr name) = 0;
  // Opens an existing table (null when there is none); never creates one.
  virtual kj::Maybe<Table> existingTable(kj::StringPtr name) = 0;
  virtual bool readOnly() const = 0;

  virtual ReadTxn read() = 0;

  // Runs `body` in a write transaction and commits it durably. The body may run more than
  // once (see the top of this file), so it must have no effects outside the transaction.
  template<typename Func>
  auto write(Func&& body) -> decltype(body(kj::instance<WriteTxn&>()));

  // Schema version in table "meta": stores `version` on a new store; refuses one written by a
  // newer version; returns the version found (0 on a new store).
  uint32_t checkSchema(uint32_t version);
  // The same without storing anything: the version found (0 on a new store), after refusing
  // a newer one. The caller stores the new version with setSchemaVersion() in the
  // transaction that migrates the data, so a crash never leaves a new version on old data.
  uint32_t checkSchemaOnly(uint32_t version);
  void setSchemaVersion(WriteTxn& txn, uint32_t version);

  virtual StoreStats stats() = 0;

  // A counter moved after every commit whose transaction asked for it. A reader that caches
  // state derived from the store reads the generation *before* it opens the read transaction
  // that fills the cache, and trusts the cache only while the generation is unchanged: a
  // commit that completed after the read began has moved it by then. A backend shared by
  // several daemons also moves it for the others' commits (PostgreSQL: LISTEN/NOTIFY).
  uint64_t generation() const { return __atomic_load_n(&generation_, __ATOMIC_ACQUIRE); }

 protected:
  // Begins a write transaction, runs `body`, commits. Reruns the whole transaction when the
  // body or the commit throws RerunTransaction (after the backend's remedy: growing the map,
  // reconnecting), up to the backend's limit.
  virtual void runWrite(kj::FunctionParam<void(WriteTxn&)> body) = 0;
  void moveGeneration() { __atomic_fetch_add(&generation_, 1, __ATOMIC_RELEASE); }

 private:
  // Atomic through the builtins: <atomic> cannot be included where core/limits.h shadows
  // <limits.h>.
  uint64_t generation_ = 1;
  kj::Maybe<Table> meta_;
  Table metaTable();
};

template<typename Func>
auto Store::write(Func&& body) -> decltype(body(kj::instance<WriteTxn&>())) {
  using R = decltype(body(kj::instance<WriteTxn&>()));
  bool moved = false;
  if constexpr (std::is_void_v<R>) {
    runWrite([&](WriteTxn& txn) {
      body(txn);
      moved = txn.movesGeneration();
    });
    if (moved) moveGeneration();
  } else {
    kj::Maybe<R> result;
    runWrite([&](WriteTxn& txn) {
      result = nullptr;
      result = body(txn);
      moved = txn.movesGeneration();
    });
    if (moved) moveGeneration();
    return kj::mv(KJ_ASSERT_NONNULL(result));
  }
}

// Big-endian integer keys, so byte order is numeric order.
void putBe32(kj::byte* out, uint32_t v);
uint32_t getBe32(const kj::byte* in);
void putBe64(kj::byte* out, uint64_t v);
uint64_t getBe64(const kj::byte* in);

}  // namespace credvault::store
