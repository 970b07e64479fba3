// credvaultd — a small pool of threads for work that must not block the event loop.
//
// Argon2id verification takes ~0.1 s and 64 MiB at the default parameters; run on the
// event-loop thread it would stall every connection. Jobs queue here and run on
// `threads` workers (so at most that many hashes, and that much memory, at once); the
// promise resolves on the submitting thread's event loop. A job returns its value or a
// core::Result<T>; a returned refusal is carried back typed (anything thrown as a failure), like
// GroupCommitter's outcomes.
//
// Fair share: every job names its lane — the peer uid, and for a front end that speaks for
// many clients (a gateway uid) also the client. Workers take jobs round-robin across uids,
// then round-robin across that uid's clients, so one uid's flood delays another uid's job
// by at most one job per busy uid, not by the length of the flood. A lane or uid already at
// its cap of queued jobs gets `throttled` at once instead of a place in the queue.

#pragma once

#include "group-commit.h"
#include <kj/async.h>
#include <kj/function.h>
#include <kj/mutex.h>
#include <kj/thread.h>
#include <kj/vector.h>
#include <deque>
#include <vector>

namespace credvault::daemon {

struct Lane {
  uint32_t uid = 0;
  kj::StringPtr client;            // empty: the uid itself
  size_t maxPerUid = SIZE_MAX;     // jobs queued (not yet running) for this uid
  size_t maxPerClient = SIZE_MAX;  // jobs queued for this (uid, client)
};

// Runs `job` here and now, and types what came of it: its value, its refusal, or the exception
// it threw (a storage failure, damaged data, a bug).
template<typename T>
Outcome<T> runToOutcome(kj::Function<core::Result<T>()>& job) {
  Outcome<T> outcome;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                auto result = job();
                if (result.ok()) {
                  outcome.value = kj::mv(result).value();
                } else {
                  outcome.error = result.takeRefusal();
                }
              })) {
    outcome.failure = kj::mv(*e);
  }
  return outcome;
}

class BlockingPool {
 public:
  // `niceness` > 0 runs the workers below the event loop's priority (background work such as
  // backups: a compile, a copy or a verification on them yields the CPU to a woken event
  // loop at once instead of sharing it). Raising niceness needs no privilege.
  explicit BlockingPool(size_t threads, int niceness = 0);
  ~BlockingPool() noexcept(false);  // finishes queued jobs, then joins
  KJ_DISALLOW_COPY(BlockingPool);

  template<typename T>
  kj::Promise<Outcome<T>> run(kj::Function<core::Result<T>()> job, const Lane& lane = Lane());

  // Jobs queued and not yet running (for tests and status).
  size_t queued() const;
  // Worker threads (jobs that may run at once).
  size_t workers() const { return threads_.size(); }

 private:
  struct ClientQueue {
    kj::String client;
    std::deque<kj::Function<void()>> jobs;
  };
  struct UidQueue {
    uint32_t uid;
    std::vector<ClientQueue> clients;
    size_t next = 0;  // round-robin position among clients
    size_t queued = 0;
  };
  struct Queue {
    std::vector<UidQueue> uids;
    size_t next = 0;  // round-robin position among uids
    size_t queued = 0;
    bool stopping = false;
  };
  kj::MutexGuarded<Queue> queue_;
  kj::Vector<kj::Own<kj::Thread>> threads_;

  // False when the lane is at a cap (the job is not queued).
  bool enqueue(kj::Function<void()> job, const Lane& lane);
  static kj::Maybe<kj::Function<void()>> take(Queue& q);
  void workerLoop();
};

template<typename T>
kj::Promise<Outcome<T>> BlockingPool::run(kj::Function<core::Result<T>()> job, const Lane& lane) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<Outcome<T>>();
  bool queued = enqueue(
      [job = kj::mv(job), fulfiller = kj::mv(paf.fulfiller)]() mutable {
        fulfiller->fulfill(runToOutcome(job));
      },
      lane);
  if (!queued) {
    Outcome<T> refused;
    auto r = core::refuse(core::ErrorCode::THROTTLED, "",
                          kj::str("too many requests of this kind are waiting; retry in 1 s"));
    r.retryAfterSeconds = 1;
    refused.error = kj::mv(r);
    return kj::mv(refused);
  }
  return kj::mv(paf.promise);
}

}  // namespace credvault::daemon
