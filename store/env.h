// credvault — the LMDB backend of the storage interface (store/store.h). Moves bytes; knows
// nothing of crypto or of records.
//
// One environment per state directory, named tables opened at start, RAII transactions
// that abort unless committed. Views returned by a transaction point into the map and die
// with the transaction. Write transactions run through Store::write(), which grows the map
// and reruns the body when LMDB reports MDB_MAP_FULL, and commits durably.
// Thread-safety: read transactions may run on any thread (MDB_NOTLS); writes are
// serialised by LMDB. Never logs.

#pragma once

#include "store.h"
#include <kj/array.h>
#include <kj/exception.h>
#include <kj/function.h>
#include <kj/string.h>
#include <kj/mutex.h>
#include <kj/vector.h>
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

// The embedded default: one LMDB environment in a state directory.
class Environment final : public Store {
 public:
  // Opens (creating if needed) the environment in directory `dir`.
  Environment(kj::StringPtr dir, Options options = {});
  ~Environment() noexcept(false);
  KJ_DISALLOW_COPY(Environment);

  kj::StringPtr backendName() const override { return "lmdb"; }
  kj::StringPtr location() const override { return dir_; }
  bool mayBlock() const override { return false; }
  kj::Maybe<Environment&> lmdb() override { return *this; }

  Table table(kj::StringPtr name) override;
  kj::Maybe<Table> existingTable(kj::StringPtr name) override;
  bool readOnly() const override { return options_.readOnly; }
  ReadTxn read() override;
  StoreStats stats() override;

  // A consistent snapshot of the whole environment, compacted (mdb_env_copyfd2 with
  // MDB_CP_COMPACT), written to `fd` from its current position while readers and writers
  // continue. `fd` stays open and is not synced; it may be a file or a pipe. Holds a read
  // transaction and blocks map growth until the copy is written, so give it a descriptor
  // that keeps up (a local file), not one a client drains at its own pace.
  void backup(int fd);
  // The same into a new file `path` (which must not exist; mode 0600), synced. For tests and
  // offline tools: the daemon never writes where a client names.
  void backup(kj::StringPtr path);

  kj::StringPtr directory() const { return dir_; }

  // Walks every page of every table (the free-page list, the table directory, each named
  // table) with a cursor, touching every key and value, and checks each table's entry count
  // against its header. Calls `onTable` before each table, so that a caller that runs this in
  // a child process can tell which table a crash happened in. Throws a storage failure or a
  // KJ failure naming the table for what LMDB reports; may crash on a damaged page (run it in
  // a child process: see daemon/verify).
  kj::Array<TableWalk> walk(kj::FunctionParam<void(kj::StringPtr table)> onTable);

 protected:
  void runWrite(kj::FunctionParam<void(WriteTxn&)> body) override;

 private:
  MDB_env* env_ = nullptr;
  kj::String dir_;
  Options options_;
  uint64_t mapSize_;
  std::shared_mutex resize_;  // shared: any open txn; exclusive: changing the map size

  // Read transactions are reused (mdb_txn_reset, then mdb_txn_renew by the next read()): a new
  // one costs a calloc of ~1 KiB, freed and wiped again at its end, on every Get
  // (docs/performance.md §14, perf-11). MDB_NOTLS lets any thread renew one; each keeps its
  // reader slot while idle, so at most MAX_IDLE_READERS are kept.
  static constexpr size_t MAX_IDLE_READERS = 8;
  kj::MutexGuarded<kj::Vector<MDB_txn*>> idleReaders_;
  friend class LmdbTxn;
  void recycle(MDB_txn* txn);

  WriteTxn beginWrite();
  void grow();
};

}  // namespace credvault::store
