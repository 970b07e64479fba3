// credvault — the LMDB layer. Moves bytes; knows nothing of crypto or of records.
//
// One environment per state directory, named tables opened at start, RAII transactions
// that abort unless committed. Views returned by a transaction point into the map and die
// with the transaction. Write transactions run through Environment::write(), which grows
// the map and reruns the body when LMDB reports MDB_MAP_FULL, and commits durably.
// Thread-safety: read transactions may run on any thread (MDB_NOTLS); writes are
// serialised by LMDB. Never logs.

#pragma once

#include <kj/array.h>
#include <kj/exception.h>
#include <kj/function.h>
#include <kj/string.h>
#include <kj/mutex.h>
#include <shared_mutex>
#include <type_traits>

typedef struct MDB_env MDB_env;
typedef struct MDB_txn MDB_txn;

namespace credvault::store {

struct Options {
  uint64_t initialMapSize = uint64_t(256) << 20;  // grows on demand, doubling
  uint64_t maxMapSize = uint64_t(1) << 40;        // refuse to grow past this
  unsigned maxTables = 16;
  bool durable = true;  // false only for benchmarks' in-memory ceiling
  // Opens an existing environment for reading only (verification): nothing is created or
  // written, table() opens existing tables only, checkSchema() only checks.
  bool readOnly = false;
};

// Storage failures the operator must fix (no space, I/O error, read-only file system) are
// thrown as kj::Exception of type OVERLOADED whose description starts with this prefix, so
// that the layers above can tell them from bugs without knowing LMDB (isStorageFailure()).
constexpr const char STORAGE_FAILURE_PREFIX[] = "storage: ";
bool isStorageFailure(const kj::Exception& e);
// The kind of a storage failure, for messages and health reports.
enum class StorageFailure { NONE, NO_SPACE, IO_ERROR, READ_ONLY, ENVIRONMENT_FAILED };
StorageFailure storageFailureOf(const kj::Exception& e);

// What a state directory's data.mdb looks like before LMDB maps it. LMDB trusts the file:
// one shorter than its meta page says is mapped past its end and the first read there dies of
// SIGBUS; an empty one is silently initialised as a new database. Reads the two meta pages
// only (never maps the file).
struct DataFileState {
  bool exists = false;
  uint64_t fileBytes = 0;
  uint32_t pageSize = 0;
  uint64_t lastPage = 0;  // of the newest valid meta page
  uint64_t txnId = 0;
  // Null when the file can be opened; else why not, for one operator-facing line.
  kj::Maybe<kj::String> problem;
};
DataFileState inspectDataFile(kj::StringPtr dir);

// One named table's walk (Environment::walk).
struct TableWalk {
  kj::String name;
  uint64_t entries = 0;  // visited by the cursor
  uint64_t stated = 0;   // what the table's header says (mdb_stat)
};

struct Table {
  unsigned int dbi;
};

// Thrown by put() when the map is full; caught by Environment::write(), which grows the
// map and reruns the transaction body. Bodies must not swallow it.
struct MapFull {};

class ReadTxn {
 public:
  KJ_DISALLOW_COPY(ReadTxn);
  ReadTxn(ReadTxn&& other) noexcept;
  ~ReadTxn() noexcept(false);

  kj::Maybe<kj::ArrayPtr<const kj::byte>> get(Table table, kj::ArrayPtr<const kj::byte> key) const;
  // Visits keys starting with `prefix` in byte order until `visit` returns false.
  void scan(
      Table table, kj::ArrayPtr<const kj::byte> prefix,
      kj::FunctionParam<bool(kj::ArrayPtr<const kj::byte> key, kj::ArrayPtr<const kj::byte> value)>
          visit) const;
  uint64_t count(Table table) const;

 protected:
  friend class Environment;
  ReadTxn(MDB_txn* txn, std::shared_lock<std::shared_mutex> lock);
  MDB_txn* txn_;
  std::shared_lock<std::shared_mutex> lock_;
};

class WriteTxn : public ReadTxn {
 public:
  WriteTxn(WriteTxn&&) noexcept = default;
  void put(Table table, kj::ArrayPtr<const kj::byte> key, kj::ArrayPtr<const kj::byte> value);
  // Returns whether the key existed.
  bool del(Table table, kj::ArrayPtr<const kj::byte> key);
  // Runs `body` in a nested transaction: if it throws (other than MapFull), only its
  // changes are undone and the exception is returned; the outer transaction goes on.
  kj::Maybe<kj::Exception> nested(kj::FunctionParam<void(WriteTxn&)> body);
  // The same, where `body` also decides: its changes are kept only when it returns true (an
  // operation that returned a refusal leaves nothing behind, without throwing).
  kj::Maybe<kj::Exception> nestedKeepIf(kj::FunctionParam<bool(WriteTxn&)> body);

  // Asks the environment to move its generation (Environment::generation) once this
  // transaction has committed. A nested body that marks and then fails still moves it: a
  // spurious move only costs readers a re-read.
  void moveGenerationOnCommit() { *moveGeneration_ = true; }

 private:
  friend class Environment;
  WriteTxn(MDB_txn* txn, std::shared_lock<std::shared_mutex> lock);
  void commit();
  kj::Own<bool> moveGeneration_ = kj::heap<bool>(false);  // shared with nested transactions
};

struct Stats {
  uint64_t mapSize;
  uint64_t usedBytes;  // last page number × page size
  uint32_t readers;
};

class Environment {
 public:
  // Opens (creating if needed) the environment in directory `dir`.
  Environment(kj::StringPtr dir, Options options = {});
  ~Environment() noexcept(false);
  KJ_DISALLOW_COPY(Environment);

  // Opens or creates a named table. Call at start, before concurrent use. Read-only: opens an
  // existing table, and fails naming it when there is none.
  Table table(kj::StringPtr name);
  // Opens an existing table (null when there is none); never creates one.
  kj::Maybe<Table> existingTable(kj::StringPtr name);
  bool readOnly() const { return options_.readOnly; }

  ReadTxn read();

  // Runs `body` in a write transaction and commits it (durably unless Options::durable is
  // false). On MDB_MAP_FULL the transaction is aborted, the map doubled, and `body` run
  // again, so `body` must have no effects outside the transaction.
  template<typename Func>
  auto write(Func&& body) -> decltype(body(kj::instance<WriteTxn&>()));

  // A consistent snapshot of the whole environment, compacted (mdb_env_copyfd2 with
  // MDB_CP_COMPACT), written to `fd` from its current position while readers and writers
  // continue. `fd` stays open and is not synced; it may be a file or a pipe. Holds a read
  // transaction and blocks map growth until the copy is written, so give it a descriptor
  // that keeps up (a local file), not one a client drains at its own pace.
  void backup(int fd);
  // The same into a new file `path` (which must not exist; mode 0600), synced. For tests and
  // offline tools: the daemon never writes where a client names.
  void backup(kj::StringPtr path);

  // Schema version in table "meta": stores `version` on a new environment; refuses one
  // written by a newer version; returns the version found (0 on a new environment).
  uint32_t checkSchema(uint32_t version);
  // The same without storing anything: the version found (0 on a new environment), after
  // refusing a newer one. The caller stores the new version with setSchemaVersion() in the
  // transaction that migrates the data, so a crash never leaves a new version on old data.
  uint32_t checkSchemaOnly(uint32_t version);
  void setSchemaVersion(WriteTxn& txn, uint32_t version);

  Stats stats();
  kj::StringPtr directory() const { return dir_; }

  // Walks every page of every table (the free-page list, the table directory, each named
  // table) with a cursor, touching every key and value, and checks each table's entry count
  // against its header. Calls `onTable` before each table, so that a caller that runs this in
  // a child process can tell which table a crash happened in. Throws a storage failure or a
  // KJ failure naming the table for what LMDB reports; may crash on a damaged page (run it in
  // a child process: see daemon/verify).
  kj::Array<TableWalk> walk(kj::FunctionParam<void(kj::StringPtr table)> onTable);

  // A counter moved after every commit whose transaction asked for it. A reader that caches
  // state derived from the database reads the generation *before* it opens the read
  // transaction that fills the cache, and trusts the cache only while the generation is
  // unchanged: a commit that completed after the read began has moved it by then. Counts
  // commits of this process only (one daemon per state directory).
  uint64_t generation() const { return __atomic_load_n(&generation_, __ATOMIC_ACQUIRE); }

 private:
  MDB_env* env_ = nullptr;
  kj::String dir_;
  Options options_;
  uint64_t mapSize_;
  std::shared_mutex resize_;  // shared: any open txn; exclusive: changing the map size
  // Atomic through the builtins: <atomic> cannot be included where core/limits.h shadows
  // <limits.h>.
  uint64_t generation_ = 1;

  WriteTxn beginWrite();
  void grow();
};

template<typename Func>
auto Environment::write(Func&& body) -> decltype(body(kj::instance<WriteTxn&>())) {
  for (;;) {
    try {
      auto txn = beginWrite();
      if constexpr (std::is_void_v<decltype(body(txn))>) {
        body(txn);
        txn.commit();
        if (*txn.moveGeneration_) __atomic_fetch_add(&generation_, 1, __ATOMIC_RELEASE);
        return;
      } else {
        auto result = body(txn);
        txn.commit();
        if (*txn.moveGeneration_) __atomic_fetch_add(&generation_, 1, __ATOMIC_RELEASE);
        return result;
      }
    } catch (const MapFull&) { grow(); }
  }
}

// Big-endian integer keys, so byte order is numeric order.
void putBe32(kj::byte* out, uint32_t v);
uint32_t getBe32(const kj::byte* in);
void putBe64(kj::byte* out, uint64_t v);
uint64_t getBe64(const kj::byte* in);

}  // namespace credvault::store
