// credvaultd — a small pool of threads for work that must not block the event loop.
//
// Argon2id verification takes ~0.1 s and 64 MiB at the default parameters; run on the
// event-loop thread it would stall every connection. Jobs queue here and run on
// `threads` workers (so at most that many hashes, and that much memory, at once); the
// promise resolves on the submitting thread's event loop. A VaultError thrown by a job is
// carried back typed, like GroupCommitter's outcomes.

#pragma once

#include "group-commit.h"
#include <kj/async.h>
#include <kj/function.h>
#include <kj/mutex.h>
#include <kj/thread.h>
#include <kj/vector.h>

namespace credvault::daemon {

class BlockingPool {
 public:
  explicit BlockingPool(size_t threads);
  ~BlockingPool() noexcept(false);  // finishes queued jobs, then joins
  KJ_DISALLOW_COPY(BlockingPool);

  template<typename T>
  kj::Promise<Outcome<T>> run(kj::Function<T()> job);

 private:
  struct Queue {
    kj::Vector<kj::Function<void()>> jobs;
    bool stopping = false;
  };
  kj::MutexGuarded<Queue> queue_;
  kj::Vector<kj::Own<kj::Thread>> threads_;

  void enqueue(kj::Function<void()> job);
  void workerLoop();
};

template<typename T>
kj::Promise<Outcome<T>> BlockingPool::run(kj::Function<T()> job) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<Outcome<T>>();
  enqueue([job = kj::mv(job), fulfiller = kj::mv(paf.fulfiller)]() mutable {
    Outcome<T> outcome;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                  try {
                    outcome.value = job();
                  } catch (const core::VaultError& e) { outcome.error = e; }
                })) {
      outcome.failure = kj::mv(*e);
    }
    fulfiller->fulfill(kj::mv(outcome));
  });
  return kj::mv(paf.promise);
}

}  // namespace credvault::daemon
