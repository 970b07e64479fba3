// A store for the daemon's tests that says it may block (as PostgreSQL does) and counts every
// transaction opened on the event loop's thread: the in-process daemon tests run on it to prove
// that no handler, identity re-check, listing or status reads or writes the store on the loop
// (rpc-server.h, SHORT_READS_PER_UID). It keeps the records in the test's real store.

#pragma once

#include "store/env.h"
#include <gtest/gtest.h>
#include <pthread.h>

namespace credvault::daemon::testing {

class LoopGuardStore final : public store::Store {
 public:
  explicit LoopGuardStore(store::Store& inner) : inner_(inner) {}

  // From now on, a transaction on the calling thread (the event loop's) is a violation.
  void arm() {
    loop_ = pthread_self();
    __atomic_store_n(&armed_, true, __ATOMIC_RELEASE);
  }
  void disarm() { __atomic_store_n(&armed_, false, __ATOMIC_RELEASE); }
  uint64_t violations() const { return __atomic_load_n(&violations_, __ATOMIC_ACQUIRE); }
  // Transactions opened on other threads (the workers, the group committer).
  uint64_t offLoop() const { return __atomic_load_n(&offLoop_, __ATOMIC_ACQUIRE); }

  kj::StringPtr backendName() const override { return "loop-guard"; }
  kj::StringPtr location() const override { return inner_.location(); }
  bool mayBlock() const override { return true; }
  // Like PostgreSQL: no file to back up or walk.
  kj::Maybe<store::Environment&> lmdb() override { return nullptr; }
  store::Table table(kj::StringPtr name) override { return inner_.table(name); }
  kj::Maybe<store::Table> existingTable(kj::StringPtr name) override {
    return inner_.existingTable(name);
  }
  bool readOnly() const override { return inner_.readOnly(); }
  store::ReadTxn read() override {
    check("a read transaction");
    return inner_.read();
  }
  store::StoreStats stats() override {
    check("stats");
    return inner_.stats();
  }

 protected:
  void runWrite(kj::FunctionParam<void(store::WriteTxn&)> body) override {
    check("a write transaction");
    inner_.write([&](store::WriteTxn& txn) { body(txn); });
  }

 private:
  store::Store& inner_;
  pthread_t loop_{};
  bool armed_ = false;
  uint64_t violations_ = 0;
  uint64_t offLoop_ = 0;

  void check(const char* what) {
    if (__atomic_load_n(&armed_, __ATOMIC_ACQUIRE) && pthread_equal(pthread_self(), loop_)) {
      __atomic_fetch_add(&violations_, 1, __ATOMIC_ACQ_REL);
      ADD_FAILURE() << what << " ran on the event loop's thread with a store that may block";
    } else {
      __atomic_fetch_add(&offLoop_, 1, __ATOMIC_ACQ_REL);
    }
  }
};

}  // namespace credvault::daemon::testing
