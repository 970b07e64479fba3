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

// The result of a queued write (or of a job on a BlockingPool): a value, or the refusal the
// op returned, or a failure: anything it threw (a storage failure, damaged data, a bug; the
// caller answers it as setInternal does).
template<typename T>
struct Outcome {
  kj::Maybe<T> value;
  kj::Maybe<core::Refusal> error;
  kj::Maybe<kj::Exception> failure;
};

// `from`'s refusal or failure, passed on as the outcome of a step that will not run; null
// when `from` has a value.
template<typename B, typename A>
kj::Maybe<Outcome<B>> passOn(Outcome<A>& from) {
  Outcome<B> out;
  KJ_IF_MAYBE(e, from.error) {
    out.error = kj::mv(*e);
    return kj::mv(out);
  }
  KJ_IF_MAYBE(f, from.failure) {
    out.failure = kj::mv(*f);
    return kj::mv(out);
  }
  return nullptr;
}

struct CommitStats {
  uint64_t commits = 0;
  uint64_t ops = 0;
};

class GroupCommitter {
 public:
  // `health` (optional, must outlive the committer) hears every commit's outcome.
  explicit GroupCommitter(store::Store& env, kj::Maybe<StoreHealth&> health = nullptr);
  ~GroupCommitter() noexcept(false);  // drains the queue, then joins the writer
  KJ_DISALLOW_COPY(GroupCommitter);

  // An op may return a plain value or a core::Result<T>: a returned refusal undoes that op's
  // changes (its nested transaction is aborted) and leaves the rest of the batch alone, as an
  // op that throws does.
  template<typename T>
  kj::Promise<Outcome<typename core::IsResult<T>::Value>> submit(core::WriteOp<T> op);
  // A checked write (core::CheckedWrite): refused before it was queued, its refusal is the
  // outcome at once; else its op is queued as above.
  template<typename T>
  kj::Promise<Outcome<T>> submit(core::CheckedWrite<T> write) {
    if (!write.ok()) {
      Outcome<T> refused;
      refused.error = write.takeRefusal();
      return kj::mv(refused);
    }
    return submit(kj::mv(write).value());
  }

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
    TypedItem(core::WriteOp<core::Result<T>> op,
              kj::Own<kj::CrossThreadPromiseFulfiller<Outcome<T>>> f)
        : op_(kj::mv(op)), fulfiller_(kj::mv(f)) {}
    void run(store::WriteTxn& txn) override {
      outcome_ = Outcome<T>();
      auto failure = txn.nestedKeepIf([&](store::WriteTxn& inner) {
        auto result = op_(inner);
        if (result.ok()) {
          outcome_.value = kj::mv(result).value();
          return true;
        }
        outcome_.error = result.takeRefusal();
        return false;  // undo this op's changes
      });
      KJ_IF_MAYBE(f, failure) { outcome_.failure = kj::mv(*f); }
    }
    void complete() override { fulfiller_->fulfill(kj::mv(outcome_)); }
    void failAll(const kj::Exception& e) override {
      Outcome<T> o;
      o.failure = kj::cp(e);
      fulfiller_->fulfill(kj::mv(o));
    }

   private:
    core::WriteOp<core::Result<T>> op_;
    kj::Own<kj::CrossThreadPromiseFulfiller<Outcome<T>>> fulfiller_;
    Outcome<T> outcome_;
  };

  struct Queue {
    kj::Vector<kj::Own<Item>> items;
    bool stopping = false;
  };

  store::Store& env_;
  kj::Maybe<StoreHealth&> health_;
  kj::MutexGuarded<Queue> queue_;
  kj::MutexGuarded<CommitStats> stats_;
  kj::Own<kj::Thread> thread_;

  void enqueue(kj::Own<Item> item);
  void writerLoop();
};

template<typename T>
kj::Promise<Outcome<typename core::IsResult<T>::Value>> GroupCommitter::submit(
    core::WriteOp<T> op) {
  using Value = typename core::IsResult<T>::Value;
  auto paf = kj::newPromiseAndCrossThreadFulfiller<Outcome<Value>>();
  if constexpr (core::IsResult<T>::value) {
    enqueue(kj::heap<TypedItem<Value>>(kj::mv(op), kj::mv(paf.fulfiller)));
  } else {
    core::WriteOp<core::Result<T>> checked =
        [op = kj::mv(op)](store::WriteTxn& txn) mutable -> core::Result<T> { return op(txn); };
    enqueue(kj::heap<TypedItem<T>>(kj::mv(checked), kj::mv(paf.fulfiller)));
  }
  return kj::mv(paf.promise);
}

}  // namespace credvault::daemon
