// credvaultd — group commit.
//
// Writes from every connection are queued to one writer thread. It takes everything that
// is queued, runs each op in a nested transaction of one LMDB write transaction (a failing
// op undoes only itself), commits durably once, and only then resolves each op's promise
// on the event loop thread that submitted it. So concurrent saves share one fsync, and
// nothing is acknowledged before it is on disk. Stopping drains the queue first.

#pragma once

#include "core/vault.h"
#include "store-health.h"
#include <kj/async.h>
#include <kj/mutex.h>
#include <kj/thread.h>
#include <kj/vector.h>

namespace credvault::daemon {

// The result of a queued write: a value, or the VaultError that refused it, or an
// unexpected failure (logged by the caller, reported as an internal error).
template<typename T>
struct Outcome {
  kj::Maybe<T> value;
  kj::Maybe<core::VaultError> error;
  kj::Maybe<kj::Exception> failure;
};

struct CommitStats {
  uint64_t commits = 0;
  uint64_t ops = 0;
};

class GroupCommitter {
 public:
  // `health` (optional, must outlive the committer) hears every commit's outcome.
  explicit GroupCommitter(store::Environment& env, kj::Maybe<StoreHealth&> health = nullptr);
  ~GroupCommitter() noexcept(false);  // drains the queue, then joins the writer
  KJ_DISALLOW_COPY(GroupCommitter);

  template<typename T>
  kj::Promise<Outcome<T>> submit(core::WriteOp<T> op);

  CommitStats stats() const { return *stats_.lockShared(); }
  // Writes queued for the next commit.
  size_t queued() const { return queue_.lockShared()->items.size(); }

 private:
  class Item {
   public:
    virtual ~Item() noexcept(false) = default;
    virtual void run(store::WriteTxn& txn) = 0;  // may run again if the map had to grow
    virtual void complete() = 0;                 // after the commit, on the writer thread
    virtual void failAll(const kj::Exception& e) = 0;
  };

  template<typename T>
  class TypedItem final : public Item {
   public:
    TypedItem(core::WriteOp<T> op, kj::Own<kj::CrossThreadPromiseFulfiller<Outcome<T>>> f)
        : op_(kj::mv(op)), fulfiller_(kj::mv(f)) {}
    void run(store::WriteTxn& txn) override {
      outcome_ = Outcome<T>();
      auto failure = txn.nested([&](store::WriteTxn& inner) {
        try {
          outcome_.value = op_(inner);
        } catch (const core::VaultError& e) {
          outcome_.error = e;
          throw;  // undo this op's changes
        }
      });
      KJ_IF_MAYBE(f, failure) {
        if (outcome_.error == nullptr) outcome_.failure = kj::mv(*f);
      }
    }
    void complete() override { fulfiller_->fulfill(kj::mv(outcome_)); }
    void failAll(const kj::Exception& e) override {
      Outcome<T> o;
      o.failure = kj::cp(e);
      fulfiller_->fulfill(kj::mv(o));
    }

   private:
    core::WriteOp<T> op_;
    kj::Own<kj::CrossThreadPromiseFulfiller<Outcome<T>>> fulfiller_;
    Outcome<T> outcome_;
  };

  struct Queue {
    kj::Vector<kj::Own<Item>> items;
    bool stopping = false;
  };

  store::Environment& env_;
  kj::Maybe<StoreHealth&> health_;
  kj::MutexGuarded<Queue> queue_;
  kj::MutexGuarded<CommitStats> stats_;
  kj::Own<kj::Thread> thread_;

  void enqueue(kj::Own<Item> item);
  void writerLoop();
};

template<typename T>
kj::Promise<Outcome<T>> GroupCommitter::submit(core::WriteOp<T> op) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<Outcome<T>>();
  enqueue(kj::heap<TypedItem<T>>(kj::mv(op), kj::mv(paf.fulfiller)));
  return kj::mv(paf.promise);
}

}  // namespace credvault::daemon
