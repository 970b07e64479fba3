#include "store.h"

#include <kj/debug.h>

namespace credvault::store {

namespace {

constexpr const char META_TABLE[] = "meta";
constexpr const char SCHEMA_KEY[] = "schema-version";

uint32_t checkedVersion(kj::ArrayPtr<const kj::byte> found, uint32_t version) {
  KJ_REQUIRE(found.size() == 4, "schema version record is damaged");
  uint32_t stored = getBe32(found.begin());
  KJ_REQUIRE(stored <= version,
             "the database was written by a newer credvault; refusing to open it", stored, version);
  return stored;
}

}  // namespace

bool isStorageFailure(const kj::Exception& e) {
  return e.getType() == kj::Exception::Type::OVERLOADED &&
         e.getDescription().startsWith(STORAGE_FAILURE_PREFIX);
}

StorageFailure storageFailureOf(const kj::Exception& e) {
  if (!isStorageFailure(e)) return StorageFailure::NONE;
  auto d = e.getDescription();
  if (d.startsWith("storage: no space")) return StorageFailure::NO_SPACE;
  if (d.startsWith("storage: I/O")) return StorageFailure::IO_ERROR;
  if (d.startsWith("storage: the vault's file system is read-only")) {
    return StorageFailure::READ_ONLY;
  }
  if (d.startsWith("storage: the database server")) return StorageFailure::UNAVAILABLE;
  return StorageFailure::ENVIRONMENT_FAILED;
}

void throwStorageFailure(kj::StringPtr what, kj::StringPtr message) {
  kj::throwFatalException(kj::Exception(kj::Exception::Type::OVERLOADED, __FILE__, __LINE__,
                                        kj::str(STORAGE_FAILURE_PREFIX, message, " (", what, ")")));
}

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

WriteTxn::WriteTxn(kj::Own<TxnBackend> backend, kj::Maybe<bool&> moveGeneration)
    : ReadTxn(kj::mv(backend)) {
  KJ_IF_MAYBE(flag, moveGeneration) {
    moveGeneration_ = flag;
  } else {
    ownedFlag_ = kj::heap<bool>(false);
    moveGeneration_ = ownedFlag_.get();
  }
}

kj::Maybe<kj::Exception> WriteTxn::nested(kj::FunctionParam<void(WriteTxn&)> body) {
  return nestedKeepIf([&](WriteTxn& inner) {
    body(inner);
    return true;
  });
}

kj::Maybe<kj::Exception> WriteTxn::nestedKeepIf(kj::FunctionParam<bool(WriteTxn&)> body) {
  WriteTxn inner(backend_->beginNested(), *moveGeneration_);
  std::exception_ptr rerun;
  bool keep = false;
  auto failure = kj::runCatchingExceptions([&]() {
    try {
      keep = body(inner);
    } catch (const RerunTransaction&) { rerun = std::current_exception(); }
  });
  // The whole transaction must run again (after a bigger map, a new snapshot).
  if (rerun) std::rethrow_exception(rerun);
  // On failure (or when the body declines) inner's destructor aborts the child only.
  KJ_IF_MAYBE(e, failure) return kj::mv(*e);
  if (keep) inner.commit();
  return nullptr;
}

// ---------------------------------------------------------------------------------------

Table Store::metaTable() {
  KJ_IF_MAYBE(t, meta_) { return *t; }
  auto t = table(META_TABLE);
  meta_ = t;
  return t;
}

uint32_t Store::checkSchema(uint32_t version) {
  auto key = kj::StringPtr(SCHEMA_KEY).asBytes();
  auto meta = metaTable();
  if (readOnly()) {
    auto txn = read();
    auto found =
        KJ_REQUIRE_NONNULL(txn.get(meta, key), "the database is damaged: it has no schema version");
    return checkedVersion(found, version);
  }
  return write([&](WriteTxn& txn) -> uint32_t {
    kj::byte buf[4];
    putBe32(buf, version);
    KJ_IF_MAYBE(found, txn.get(meta, key)) {
      uint32_t stored = checkedVersion(*found, version);
      if (stored < version) txn.put(meta, key, buf);
      return stored;
    }
    txn.put(meta, key, buf);
    return 0;
  });
}

uint32_t Store::checkSchemaOnly(uint32_t version) {
  auto key = kj::StringPtr(SCHEMA_KEY).asBytes();
  kj::Maybe<Table> meta = meta_;
  if (meta == nullptr)
    meta = readOnly() ? existingTable(META_TABLE) : kj::Maybe<Table>(metaTable());
  KJ_IF_MAYBE(m, meta) {
    auto txn = read();
    KJ_IF_MAYBE(found, txn.get(*m, key)) { return checkedVersion(*found, version); }
  }
  KJ_REQUIRE(!readOnly(), "the database is damaged: it has no schema version; restore a backup");
  return 0;
}

void Store::setSchemaVersion(WriteTxn& txn, uint32_t version) {
  // checkSchemaOnly() opened the table before any write transaction began.
  auto meta = KJ_REQUIRE_NONNULL(meta_, "checkSchemaOnly() must run before setSchemaVersion()");
  kj::byte buf[4];
  putBe32(buf, version);
  txn.put(meta, kj::StringPtr(SCHEMA_KEY).asBytes(), buf);
}

}  // namespace credvault::store
