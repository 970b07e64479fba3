#include "env.h"

#include <lmdb.h>
#include <kj/debug.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>
#include <mutex>

namespace credvault::store {

namespace {

constexpr const char META_TABLE[] = "meta";
constexpr const char SCHEMA_KEY[] = "schema-version";

// The one place LMDB error codes become exceptions. MDB_MAP_FULL becomes MapFull so that
// write() can grow the map; everything else is a KJ failure naming the operation.
void check(int rc, const char* what) {
  if (rc == MDB_SUCCESS) return;
  if (rc == MDB_MAP_FULL) throw MapFull();
  if (rc > 0) KJ_FAIL_SYSCALL(what, rc);
  KJ_FAIL_ASSERT("LMDB error", what, mdb_strerror(rc));
}

MDB_val val(kj::ArrayPtr<const kj::byte> bytes) {
  return MDB_val{bytes.size(), const_cast<kj::byte*>(bytes.begin())};
}

kj::ArrayPtr<const kj::byte> view(const MDB_val& v) {
  return {static_cast<const kj::byte*>(v.mv_data), v.mv_size};
}

}  // namespace

void putBe32(kj::byte* out, uint32_t v) {
  out[0] = v >> 24;
  out[1] = v >> 16;
  out[2] = v >> 8;
  out[3] = v;
}
uint32_t getBe32(const kj::byte* in) {
  return (uint32_t(in[0]) << 24) | (uint32_t(in[1]) << 16) | (uint32_t(in[2]) << 8) | in[3];
}
void putBe64(kj::byte* out, uint64_t v) {
  putBe32(out, v >> 32);
  putBe32(out + 4, uint32_t(v));
}
uint64_t getBe64(const kj::byte* in) {
  return (uint64_t(getBe32(in)) << 32) | getBe32(in + 4);
}

// ---------------------------------------------------------------------------------------

ReadTxn::ReadTxn(MDB_txn* txn, std::shared_lock<std::shared_mutex> lock)
    : txn_(txn), lock_(kj::mv(lock)) {}

ReadTxn::ReadTxn(ReadTxn&& other) noexcept : txn_(other.txn_), lock_(kj::mv(other.lock_)) {
  other.txn_ = nullptr;
}

ReadTxn::~ReadTxn() noexcept(false) {
  if (txn_ != nullptr) mdb_txn_abort(txn_);  // abort unless committed
}

kj::Maybe<kj::ArrayPtr<const kj::byte>> ReadTxn::get(Table table,
                                                     kj::ArrayPtr<const kj::byte> key) const {
  MDB_val k = val(key), v;
  int rc = mdb_get(txn_, table.dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return nullptr;
  check(rc, "mdb_get");
  return view(v);
}

void ReadTxn::scan(
    Table table, kj::ArrayPtr<const kj::byte> prefix,
    kj::FunctionParam<bool(kj::ArrayPtr<const kj::byte>, kj::ArrayPtr<const kj::byte>)> visit)
    const {
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

uint64_t ReadTxn::count(Table table) const {
  MDB_stat st;
  check(mdb_stat(txn_, table.dbi, &st), "mdb_stat");
  return st.ms_entries;
}

WriteTxn::WriteTxn(MDB_txn* txn, std::shared_lock<std::shared_mutex> lock)
    : ReadTxn(txn, kj::mv(lock)) {}

void WriteTxn::put(Table table, kj::ArrayPtr<const kj::byte> key,
                   kj::ArrayPtr<const kj::byte> value) {
  MDB_val k = val(key), v = val(value);
  check(mdb_put(txn_, table.dbi, &k, &v, 0), "mdb_put");
}

bool WriteTxn::del(Table table, kj::ArrayPtr<const kj::byte> key) {
  MDB_val k = val(key);
  int rc = mdb_del(txn_, table.dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, "mdb_del");
  return true;
}

kj::Maybe<kj::Exception> WriteTxn::nested(kj::FunctionParam<void(WriteTxn&)> body) {
  MDB_txn* child;
  check(mdb_txn_begin(mdb_txn_env(txn_), txn_, 0, &child), "mdb_txn_begin(nested)");
  // The child shares the parent's lock; give it an empty one.
  WriteTxn inner(child, std::shared_lock<std::shared_mutex>());
  bool mapFull = false;
  auto failure = kj::runCatchingExceptions([&]() {
    try {
      body(inner);
    } catch (const MapFull&) { mapFull = true; }
  });
  if (*inner.moveGeneration_) *moveGeneration_ = true;
  // The whole transaction must be rerun with a bigger map.
  if (mapFull) throw MapFull();
  // On failure inner's destructor aborts the child only.
  KJ_IF_MAYBE(e, failure) return kj::mv(*e);
  inner.commit();
  return nullptr;
}

void WriteTxn::commit() {
  MDB_txn* txn = txn_;
  txn_ = nullptr;  // committed or failed, the handle is gone either way
  check(mdb_txn_commit(txn), "mdb_txn_commit");
}

// ---------------------------------------------------------------------------------------

Environment::Environment(kj::StringPtr dir, Options options)
    : dir_(kj::heapString(dir)), options_(options), mapSize_(options.initialMapSize) {
  check(mdb_env_create(&env_), "mdb_env_create");
  KJ_ON_SCOPE_FAILURE(mdb_env_close(env_); env_ = nullptr);
  check(mdb_env_set_maxdbs(env_, options.maxTables), "mdb_env_set_maxdbs");
  check(mdb_env_set_maxreaders(env_, 512), "mdb_env_set_maxreaders");
  unsigned flags = MDB_NOTLS;
  if (!options.durable) flags |= MDB_NOSYNC;
  // LMDB gives a new environment its own default map size (1 MiB), which must not override
  // a smaller configured one; only an existing environment's size is kept.
  bool existed = ::access(kj::str(dir, "/data.mdb").cStr(), F_OK) == 0;
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
  if (env_ != nullptr) mdb_env_close(env_);
}

Table Environment::table(kj::StringPtr name) {
  return write([&](WriteTxn& txn) {
    MDB_dbi dbi;
    check(mdb_dbi_open(txn.txn_, name.cStr(), MDB_CREATE, &dbi), "mdb_dbi_open");
    return Table{dbi};
  });
}

ReadTxn Environment::read() {
  std::shared_lock<std::shared_mutex> lock(resize_);
  MDB_txn* txn;
  check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin(read)");
  return ReadTxn(txn, kj::mv(lock));
}

WriteTxn Environment::beginWrite() {
  std::shared_lock<std::shared_mutex> lock(resize_);
  MDB_txn* txn;
  check(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin(write)");
  return WriteTxn(txn, kj::mv(lock));
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

uint32_t Environment::checkSchema(uint32_t version) {
  auto meta = table(META_TABLE);
  auto key = kj::StringPtr(SCHEMA_KEY).asBytes();
  return write([&](WriteTxn& txn) -> uint32_t {
    KJ_IF_MAYBE(found, txn.get(meta, key)) {
      KJ_REQUIRE(found->size() == 4, "schema version record is damaged");
      uint32_t onDisk = getBe32(found->begin());
      KJ_REQUIRE(onDisk <= version,
                 "the database was written by a newer credvault; refusing to open it", onDisk,
                 version);
      if (onDisk < version) {
        kj::byte buf[4];
        putBe32(buf, version);
        txn.put(meta, key, buf);
      }
      return onDisk;
    }
    kj::byte buf[4];
    putBe32(buf, version);
    txn.put(meta, key, buf);
    return 0;
  });
}

Stats Environment::stats() {
  MDB_envinfo info;
  MDB_stat st;
  check(mdb_env_info(env_, &info), "mdb_env_info");
  check(mdb_env_stat(env_, &st), "mdb_env_stat");
  return {info.me_mapsize, (info.me_last_pgno + 1) * uint64_t(st.ms_psize), info.me_numreaders};
}

}  // namespace credvault::store
