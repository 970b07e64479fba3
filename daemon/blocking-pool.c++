#include "blocking-pool.h"

namespace credvault::daemon {

BlockingPool::BlockingPool(size_t threads) {
  for (size_t i = 0; i < threads; i++) {
    threads_.add(kj::heap<kj::Thread>([this]() { workerLoop(); }));
  }
}

BlockingPool::~BlockingPool() noexcept(false) {
  queue_.lockExclusive()->stopping = true;
  threads_.clear();  // each join waits for its worker to drain the queue
}

void BlockingPool::enqueue(kj::Function<void()> job) {
  auto lock = queue_.lockExclusive();
  KJ_REQUIRE(!lock->stopping, "the vault is shutting down");
  lock->jobs.add(kj::mv(job));
}

void BlockingPool::workerLoop() {
  for (;;) {
    kj::Maybe<kj::Function<void()>> job;
    bool stop = queue_.when([](const Queue& q) { return !q.jobs.empty() || q.stopping; },
                            [&](Queue& q) {
                              if (q.jobs.empty()) return true;
                              job = kj::mv(q.jobs.front());
                              // Shift the rest down: queues are short (bounded by logins
                              // in flight), so this is cheaper than a deque here.
                              kj::Vector<kj::Function<void()>> rest;
                              for (size_t i = 1; i < q.jobs.size(); i++) {
                                rest.add(kj::mv(q.jobs[i]));
                              }
                              q.jobs = kj::mv(rest);
                              return false;
                            });
    KJ_IF_MAYBE(j, job) { (*j)(); }
    if (stop) return;
  }
}

}  // namespace credvault::daemon
