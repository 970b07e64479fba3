// The store tests open: LMDB in a directory (the default), or PostgreSQL when the environment
// variable CREDVAULT_TEST_STORE is "postgresql" (a fresh database of the test binary's own
// server, tests/support/postgres.h). meson runs core's tests once per backend (tests/core).
// Tests of what only LMDB has (page walks, data.mdb damage, map growth, file backups) skip
// on PostgreSQL with a reason.

#pragma once

#include "store/env.h"
#include <kj/memory.h>
#include <kj/string.h>
#include <string>

namespace credvault::support {

bool testStoreIsPostgres();
// GTEST_SKIP()s the calling test on PostgreSQL, saying why.
#define CREDVAULT_SKIP_ON_POSTGRES(why) \
  if (::credvault::support::testStoreIsPostgres()) GTEST_SKIP() << "LMDB only: " << why

// Every row of the PostgreSQL database `conninfo` (credvault_kv's keys and values, as stored)
// and the test server's log: what a plaintext scan greps.
std::string everyStoredByteOf(kj::StringPtr conninfo);

// Where one test's store lives. Opening it again after closing is a restart.
class TestStore {
 public:
  // `dir`: the test's directory (LMDB's state directory). On PostgreSQL, creates the database.
  explicit TestStore(kj::StringPtr dir);
  KJ_DISALLOW_COPY(TestStore);

  kj::Own<store::Store> open(const store::Options& lmdbOptions = {}) const;
  // PostgreSQL's connection string (without a password: the test server trusts its socket).
  kj::StringPtr conninfo() const { return conninfo_; }
  // Everything the store could leak, concatenated: what a plaintext scan greps. LMDB:
  // data.mdb as it is on disk; PostgreSQL: every row of credvault_kv and the server's log.
  std::string everyStoredByte() const;

 private:
  kj::String dir_;
  kj::String conninfo_;
};

// A kj::Own<store::Store> that tests can hold where std::unique_ptr was (noexcept fixtures).
class StoreHandle {
 public:
  StoreHandle() = default;
  ~StoreHandle() noexcept {}  // kj::Own's may throw; gtest fixtures must not
  StoreHandle& operator=(kj::Own<store::Store> s) {
    own_ = kj::mv(s);
    ptr_ = own_.get();
    return *this;
  }
  StoreHandle& operator=(decltype(nullptr)) {
    own_ = nullptr;
    ptr_ = nullptr;
    return *this;
  }
  store::Store* operator->() const { return ptr_; }
  store::Store& operator*() const { return *ptr_; }
  store::Store* get() const { return ptr_; }
  explicit operator bool() const { return ptr_ != nullptr; }

 private:
  kj::Own<store::Store> own_;
  store::Store* ptr_ = nullptr;  // own_, without kj::Own's constness
};

}  // namespace credvault::support
