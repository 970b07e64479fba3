#include "env.h"

#include <lmdb.h>
#include <kj/debug.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>
#include <mutex>
#include <kj/vector.h>
#include <errno.h>

namespace credvault::store {

namespace {

// The one place LMDB error codes become exceptions. MDB_MAP_FULL becomes MapFull so that
// write() can grow the map; a full disk, an I/O error, a read-only file system and an
// environment LMDB gave up on are storage failures (isStorageFailure); everything else is a
// KJ failure naming the operation.
void check(int rc, const char* what) {
  if (rc == MDB_SUCCESS) return;
  if (rc == MDB_MAP_FULL) throw MapFull();
  switch (rc) {
    case ENOSPC:
    case EDQUOT:
      throwStorageFailure(what, "no space left on the vault's file system; free some and retry");
    case EIO:
      throwStorageFailure(
          what, "I/O error on the vault's file system; check the disk and the kernel log");
    case EROFS:
      throwStorageFailure(what, "the vault's file system is read-only");
    case MDB_PANIC:
      throwStorageFailure(what,
                          "the database environment failed after an earlier write error; restart "
                          "credvaultd once the file system is healthy");
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_BAD_TXN:
    case MDB_BAD_VALSIZE:
    case MDB_BAD_DBI:
      kj::throwFatalException(
          kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                        kj::str("LMDB found a damaged page (", mdb_strerror(rc), ") in ", what,
                                "; restore a backup (docs/operations.md)")));
  }
  if (rc > 0) KJ_FAIL_SYSCALL(what, rc);
  KJ_FAIL_ASSERT("LMDB error", what, mdb_strerror(rc));
}

MDB_val val(kj::ArrayPtr<const kj::byte> bytes) {
  return MDB_val{bytes.size(), const_cast<kj::byte*>(bytes.begin())};
}

kj::ArrayPtr<const kj::byte> view(const MDB_val& v) {
  return {static_cast<const kj::byte*>(v.mv_data), v.mv_size};
}

// ---------------------------------------------------------------------------------------

}  // namespace

// An LMDB transaction. The resize lock (shared) keeps the map size put while it is open; a
// nested transaction shares its parent's lock and holds none of its own. A read transaction
// from Environment::read() is reset and given back to it (`recycle`) instead of aborted.
class LmdbTxn final : public TxnBackend {
 public:
  LmdbTxn(MDB_txn* txn, std::shared_lock<std::shared_mutex> lock, Environment* recycle = nullptr)
      : txn_(txn), lock_(kj::mv(lock)), recycle_(recycle) {}
  ~LmdbTxn() noexcept(false) {
    if (txn_ == nullptr) return;
    if (recycle_ != nullptr) {
      recycle_->recycle(txn_);  // under the resize lock still (lock_ goes after)
    } else {
      mdb_txn_abort(txn_);  // abort unless committed
    }
  }
  KJ_DISALLOW_COPY(LmdbTxn);

  MDB_txn* handle() const { return txn_; }

  kj::Maybe<kj::ArrayPtr<const kj::byte>> get(Table table,
                                              kj::ArrayPtr<const kj::byte> key) const override {
    MDB_val k = val(key), v;
    int rc = mdb_get(txn_, table.dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return nullptr;
    check(rc, "mdb_get");
    return view(v);
  }

  void scan(Table table, kj::ArrayPtr<const kj::byte> prefix,
            kj::FunctionParam<bool(kj::ArrayPtr<const kj::byte>, kj::ArrayPtr<const kj::byte>)>
                visit) const override {
    MDB_cursor* cursor;
    check(mdb_cursor_open(txn_, table.dbi, &cursor), "mdb_cursor_open");
    KJ_DEFER(mdb_cursor_close(cursor));
    MDB_val k = val(prefix), v;
    int rc = mdb_cursor_get(cursor, &k, &v, prefix.size() == 0 ? MDB_FIRST : MDB_SET_RANGE);
    while (rc == MDB_SUCCESS) {
      auto key = view(k);
      // memcmp() must not see the null pointer of an empty prefix, even for zero bytes.
      if (key.size() < prefix.size() ||
          (prefix.size() > 0 && memcmp(key.begin(), prefix.begin(), prefix.size()) != 0)) {
        return;
      }
      if (!visit(key, view(v))) return;
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    if (rc != MDB_NOTFOUND) check(rc, "mdb_cursor_get");
  }

  uint64_t count(Table table) const override {
    MDB_stat st;
    check(mdb_stat(txn_, table.dbi, &st), "mdb_stat");
    return st.ms_entries;
  }

  void put(Table table, kj::ArrayPtr<const kj::byte> key,
           kj::ArrayPtr<const kj::byte> value) override {
    MDB_val k = val(key), v = val(value);
    check(mdb_put(txn_, table.dbi, &k, &v, 0), "mdb_put");
  }

  bool del(Table table, kj::ArrayPtr<const kj::byte> key) override {
    MDB_val k = val(key);
    int rc = mdb_del(txn_, table.dbi, &k, nullptr);
    if (rc == MDB_NOTFOUND) return false;
    check(rc, "mdb_del");
    return true;
  }

  kj::Own<TxnBackend> beginNested() override {
    MDB_txn* child;
    check(mdb_txn_begin(mdb_txn_env(txn_), txn_, 0, &child), "mdb_txn_begin(nested)");
    return kj::heap<LmdbTxn>(child, std::shared_lock<std::shared_mutex>());
  }

  void commit() override {
    MDB_txn* txn = txn_;
    txn_ = nullptr;  // committed or failed, the handle is gone either way
    check(mdb_txn_commit(txn), "mdb_txn_commit");
  }

 private:
  MDB_txn* txn_;
  std::shared_lock<std::shared_mutex> lock_;
  Environment* recycle_;
};

namespace {

MDB_txn* handleOf(const ReadTxn& txn) {
  return static_cast<const LmdbTxn&>(txn.backend()).handle();
}

}  // namespace

// ---------------------------------------------------------------------------------------

Environment::Environment(kj::StringPtr dir, Options options)
    : dir_(kj::heapString(dir)), options_(options), mapSize_(options.initialMapSize) {
  check(mdb_env_create(&env_), "mdb_env_create");
  KJ_ON_SCOPE_FAILURE(mdb_env_close(env_); env_ = nullptr);
  check(mdb_env_set_maxdbs(env_, options.maxTables), "mdb_env_set_maxdbs");
  check(mdb_env_set_maxreaders(env_, 512), "mdb_env_set_maxreaders");
  unsigned flags = MDB_NOTLS;
  if (!options.durable) flags |= MDB_NOSYNC;
  if (options.readOnly) flags |= MDB_RDONLY;
  // LMDB gives a new environment its own default map size (1 MiB), which must not override
  // a smaller configured one; only an existing environment's size is kept.
  bool existed = ::access(kj::str(dir, "/data.mdb").cStr(), F_OK) == 0;
  KJ_REQUIRE(existed || !options.readOnly, "there is no database to open", dir);
  int rc = mdb_env_open(env_, dir.cStr(), flags, 0600);
  if (rc == MDB_VERSION_MISMATCH || rc == MDB_INVALID) {
    KJ_FAIL_REQUIRE("the state directory does not hold an LMDB database this build can read", dir,
                    mdb_strerror(rc));
  }
  check(rc, "mdb_env_open");
  // An existing environment may already be bigger than our initial size.
  MDB_envinfo info;
  check(mdb_env_info(env_, &info), "mdb_env_info");
  if (existed && info.me_mapsize > mapSize_) mapSize_ = info.me_mapsize;
  check(mdb_env_set_mapsize(env_, mapSize_), "mdb_env_set_mapsize");
}

Environment::~Environment() noexcept(false) {
  for (auto* txn : *idleReaders_.lockExclusive()) mdb_txn_abort(txn);
  if (env_ != nullptr) mdb_env_close(env_);
}

void Environment::recycle(MDB_txn* txn) {
  // Reset: the snapshot is released (writers may reuse its pages), the reader slot is kept.
  mdb_txn_reset(txn);
  {
    auto idle = idleReaders_.lockExclusive();
    if (idle->size() < MAX_IDLE_READERS) {
      idle->add(txn);
      return;
    }
  }
  mdb_txn_abort(txn);
}

Table Environment::table(kj::StringPtr name) {
  if (options_.readOnly) {
    KJ_IF_MAYBE(t, existingTable(name)) { return *t; }
    KJ_FAIL_REQUIRE("the database is damaged: a table is missing; restore a backup", name);
  }
  return write([&](WriteTxn& txn) {
    MDB_dbi dbi;
    check(mdb_dbi_open(handleOf(txn), name.cStr(), MDB_CREATE, &dbi), "mdb_dbi_open");
    return Table{dbi};
  });
}

kj::Maybe<Table> Environment::existingTable(kj::StringPtr name) {
  std::shared_lock<std::shared_mutex> lock(resize_);
  MDB_txn* txn;
  check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin(read)");
  MDB_dbi dbi;
  int rc = mdb_dbi_open(txn, name.cStr(), 0, &dbi);
  if (rc == MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return nullptr;
  }
  if (rc != MDB_SUCCESS) mdb_txn_abort(txn);
  check(rc, "mdb_dbi_open");
  // Committing a read transaction keeps the handles it opened.
  check(mdb_txn_commit(txn), "mdb_txn_commit(read)");
  return Table{dbi};
}

ReadTxn Environment::read() {
  std::shared_lock<std::shared_mutex> lock(resize_);
  MDB_txn* txn = nullptr;
  {
    auto idle = idleReaders_.lockExclusive();
    if (idle->size() > 0) {
      txn = idle->back();
      idle->removeLast();
    }
  }
  // A renewed transaction reads the newest snapshot, as a new one does.
  if (txn != nullptr && mdb_txn_renew(txn) != MDB_SUCCESS) {
    mdb_txn_abort(txn);
    txn = nullptr;
  }
  if (txn == nullptr) {
    check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin(read)");
  }
  return ReadTxn(kj::heap<LmdbTxn>(txn, kj::mv(lock), this));
}

void Environment::runWrite(kj::FunctionParam<void(WriteTxn&)> body) {
  for (;;) {
    try {
      auto txn = beginWrite();
      body(txn);
      txn.commit();
      return;
    } catch (const MapFull&) { grow(); }
  }
}

WriteTxn Environment::beginWrite() {
  std::shared_lock<std::shared_mutex> lock(resize_);
  MDB_txn* txn;
  check(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin(write)");
  return WriteTxn(kj::heap<LmdbTxn>(txn, kj::mv(lock)));
}

void Environment::grow() {
  std::unique_lock<std::shared_mutex> lock(resize_);  // waits for open transactions
  KJ_REQUIRE(mapSize_ < options_.maxMapSize, "database reached its maximum size",
             options_.maxMapSize);
  uint64_t next = kj::min(mapSize_ * 2, options_.maxMapSize);
  check(mdb_env_set_mapsize(env_, next), "mdb_env_set_mapsize");
  mapSize_ = next;
}

void Environment::backup(kj::StringPtr path) {
  int fd;
  KJ_SYSCALL(fd = ::open(path.cStr(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600),
             "creating backup file", path);
  bool ok = false;
  KJ_DEFER({
    ::close(fd);
    if (!ok) ::unlink(path.cStr());
  });
  backup(fd);
  KJ_SYSCALL(fsync(fd), path);
  ok = true;
}

void Environment::backup(int fd) {
  // The copy's read transaction needs the map size to stay put, as any transaction does.
  std::shared_lock<std::shared_mutex> lock(resize_);
  check(mdb_env_copyfd2(env_, fd, MDB_CP_COMPACT), "mdb_env_copyfd2");
}

kj::Array<TableWalk> Environment::walk(kj::FunctionParam<void(kj::StringPtr)> onTable) {
  auto txn = read();
  MDB_envinfo info;
  check(mdb_env_info(env_, &info), "mdb_env_info");
  uint64_t lastPage = info.me_last_pgno;
  kj::Vector<TableWalk> out;
  // Every byte of every key and value goes through here, so a page the cursor reaches is
  // read whole (an overflow page too), not just its header.
  volatile uint64_t sink = 0;
  auto touch = [&](const MDB_val& v) {
    auto p = static_cast<const kj::byte*>(v.mv_data);
    uint64_t acc = 0;
    for (size_t i = 0; i < v.mv_size; i += 64) acc += p[i];
    if (v.mv_size > 0) acc += p[v.mv_size - 1];
    sink = sink + acc;
  };
  auto walkOne = [&](MDB_dbi dbi, kj::StringPtr name, bool freeList) {
    onTable(name);
    MDB_stat st;
    check(mdb_stat(handleOf(txn), dbi, &st), kj::str("mdb_stat(", name, ")").cStr());
    MDB_cursor* cursor;
    check(mdb_cursor_open(handleOf(txn), dbi, &cursor), "mdb_cursor_open");
    KJ_DEFER(mdb_cursor_close(cursor));
    MDB_val k, v;
    uint64_t n = 0;
    int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    while (rc == MDB_SUCCESS) {
      touch(k);
      touch(v);
      if (freeList) {
        // A list of free page numbers: a count, then the pages; each must lie in the file.
        KJ_REQUIRE(v.mv_size >= sizeof(size_t) && v.mv_size % sizeof(size_t) == 0,
                   "the database is damaged: a free-page record is malformed; restore a backup");
        size_t count;
        memcpy(&count, v.mv_data, sizeof(size_t));
        KJ_REQUIRE(count == v.mv_size / sizeof(size_t) - 1,
                   "the database is damaged: a free-page record is malformed; restore a backup");
        for (size_t i = 1; i <= count; ++i) {
          size_t page;
          memcpy(&page, static_cast<const kj::byte*>(v.mv_data) + i * sizeof(size_t),
                 sizeof(size_t));
          KJ_REQUIRE(page > 1 && page <= lastPage,
                     "the database is damaged: the free-page list names a page outside the "
                     "file; restore a backup");
        }
      }
      ++n;
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    if (rc != MDB_NOTFOUND) check(rc, kj::str("table ", name).cStr());
    out.add(TableWalk{kj::heapString(name), n, st.ms_entries});
  };
  walkOne(0, "(free pages)", true);
  walkOne(1, "(table directory)", false);
  // The directory's keys are the names of the named tables.
  kj::Vector<kj::String> names;
  {
    MDB_cursor* cursor;
    check(mdb_cursor_open(handleOf(txn), 1, &cursor), "mdb_cursor_open");
    KJ_DEFER(mdb_cursor_close(cursor));
    MDB_val k, v;
    int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    while (rc == MDB_SUCCESS) {
      names.add(kj::heapString(static_cast<const char*>(k.mv_data), k.mv_size));
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    if (rc != MDB_NOTFOUND) check(rc, "reading the table directory");
  }
  for (auto& name : names) {
    MDB_dbi dbi;
    int rc = mdb_dbi_open(handleOf(txn), name.cStr(), 0, &dbi);
    if (rc == MDB_INCOMPATIBLE || rc == MDB_NOTFOUND) {
      KJ_FAIL_REQUIRE("damaged page: the table directory is malformed; restore a backup", name);
    }
    check(rc, "mdb_dbi_open");
    walkOne(dbi, name, false);
  }
  (void)sink;
  return out.releaseAsArray();
}

namespace {

// LMDB 0.9's on-disk meta page (64-bit build): a 16-byte page header, then MDB_meta.
constexpr uint32_t LMDB_MAGIC = 0xBEEFC0DE;
constexpr uint32_t LMDB_DATA_VERSION = 1;
constexpr size_t PAGE_HEADER = 16;
constexpr uint16_t P_META = 0x08;
constexpr size_t META_BYTES = PAGE_HEADER + 136;

struct Meta {
  bool valid = false;
  uint32_t pageSize = 0;
  uint64_t lastPage = 0;
  uint64_t txnId = 0;
  uint64_t freeRoot = 0, mainRoot = 0;
};

template<typename T>
T at(const kj::byte* p, size_t offset) {
  T v;
  memcpy(&v, p + offset, sizeof(T));
  return v;
}

Meta parseMeta(const kj::byte* page, uint64_t pageNumber) {
  Meta m;
  if (at<uint64_t>(page, 0) != pageNumber) return m;
  if ((at<uint16_t>(page, 10) & P_META) == 0) return m;
  const kj::byte* meta = page + PAGE_HEADER;
  if (at<uint32_t>(meta, 0) != LMDB_MAGIC || at<uint32_t>(meta, 4) != LMDB_DATA_VERSION) return m;
  // mm_dbs[0] (free pages) at 24, mm_dbs[1] (main) at 72, each 48 bytes; md_pad of the first
  // holds the page size, md_root is the last field.
  m.pageSize = at<uint32_t>(meta, 24);
  m.freeRoot = at<uint64_t>(meta, 24 + 40);
  m.mainRoot = at<uint64_t>(meta, 72 + 40);
  m.lastPage = at<uint64_t>(meta, 120);
  m.txnId = at<uint64_t>(meta, 128);
  m.valid = m.pageSize >= 512 && m.pageSize <= 65536 && (m.pageSize & (m.pageSize - 1)) == 0;
  return m;
}

}  // namespace

DataFileState inspectDataFile(kj::StringPtr dir) {
  DataFileState out;
  auto path = kj::str(dir, "/data.mdb");
  int fd = ::open(path.cStr(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return out;
    KJ_FAIL_SYSCALL("open", errno, path);
  }
  KJ_DEFER(::close(fd));
  out.exists = true;
  struct stat st;
  KJ_SYSCALL(fstat(fd, &st), path);
  KJ_REQUIRE(S_ISREG(st.st_mode), "data.mdb is not a regular file", path);
  out.fileBytes = st.st_size;
  auto truncated = [&](kj::StringPtr why) {
    out.problem = kj::str("database empty or truncated (", path, ": ", why,
                          "): restore data.mdb from a backup (docs/operations.md)");
  };
  if (out.fileBytes == 0) {
    truncated("0 bytes");
    return out;
  }
  kj::byte first[META_BYTES];
  ssize_t n = pread(fd, first, sizeof(first), 0);
  if (n < ssize_t(sizeof(first))) {
    truncated(kj::str(out.fileBytes, " bytes, shorter than a database header"));
    return out;
  }
  Meta m0 = parseMeta(first, 0);
  // The second meta page sits one page in; without a valid first one, try the usual sizes.
  kj::Vector<uint32_t> sizes;
  if (m0.valid) sizes.add(m0.pageSize);
  for (uint32_t s : {4096u, 8192u, 16384u, 65536u}) sizes.add(s);
  Meta m1;
  for (auto size : sizes) {
    kj::byte second[META_BYTES];
    if (pread(fd, second, sizeof(second), size) == ssize_t(sizeof(second))) {
      m1 = parseMeta(second, 1);
      if (m1.valid && m1.pageSize == size) break;
      m1 = Meta();
    }
  }
  if (!m0.valid && !m1.valid) {
    out.problem = kj::str("database damaged (", path,
                          ": neither header page is valid): restore data.mdb from a backup "
                          "(docs/operations.md)");
    return out;
  }
  // LMDB uses the valid meta page with the higher transaction id.
  const Meta& m = !m1.valid || (m0.valid && m0.txnId >= m1.txnId) ? m0 : m1;
  out.pageSize = m.pageSize;
  out.lastPage = m.lastPage;
  out.txnId = m.txnId;
  uint64_t needed = (m.lastPage + 1) * uint64_t(m.pageSize);
  if (out.fileBytes < needed) {
    truncated(kj::str(out.fileBytes, " bytes where the database needs ", needed));
    return out;
  }
  constexpr uint64_t NO_PAGE = ~uint64_t(0);
  if ((m.freeRoot != NO_PAGE && m.freeRoot > m.lastPage) ||
      (m.mainRoot != NO_PAGE && m.mainRoot > m.lastPage)) {
    out.problem = kj::str("database damaged (", path,
                          ": its header points past its last page): restore data.mdb from a "
                          "backup (docs/operations.md)");
  }
  return out;
}

StoreStats Environment::stats() {
  MDB_envinfo info;
  MDB_stat st;
  check(mdb_env_info(env_, &info), "mdb_env_info");
  check(mdb_env_stat(env_, &st), "mdb_env_stat");
  StoreStats out;
  out.mapSize = info.me_mapsize;
  out.usedBytes = (info.me_last_pgno + 1) * uint64_t(st.ms_psize);
  out.readers = info.me_numreaders;
  return out;
}

}  // namespace credvault::store
