#include "blocking-pool.h"
#include "log.h"
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

namespace credvault::daemon {

BlockingPool::BlockingPool(size_t threads, int niceness) {
  for (size_t i = 0; i < threads; i++) {
    threads_.add(kj::heap<kj::Thread>([this, niceness]() {
      // Linux keeps a nice value per thread: PRIO_PROCESS with a thread id sets this one.
      if (niceness != 0 && ::setpriority(PRIO_PROCESS, ::gettid(), niceness) != 0) {
        int error = errno;
        logf(Level::WARNING, "could not lower a background thread's priority",
             LogField{"ERRNO", kj::str(strerror(error))});
      }
      workerLoop();
    }));
  }
}

BlockingPool::~BlockingPool() noexcept(false) {
  queue_.lockExclusive()->stopping = true;
  threads_.clear();  // each join waits for its worker to drain the queue
}

size_t BlockingPool::queued() const {
  return queue_.lockShared()->queued;
}

bool BlockingPool::enqueue(kj::Function<void()> job, const Lane& lane) {
  auto lock = queue_.lockExclusive();
  KJ_REQUIRE(!lock->stopping, "the vault is shutting down");
  // Caps first: a refused job leaves no empty queue behind (take() relies on none).
  UidQueue* u = nullptr;
  for (auto& candidate : lock->uids) {
    if (candidate.uid == lane.uid) u = &candidate;
  }
  size_t forUid = u == nullptr ? 0 : u->queued;
  if (forUid >= lane.maxPerUid) return false;
  ClientQueue* c = nullptr;
  if (u != nullptr) {
    for (auto& candidate : u->clients) {
      if (candidate.client == lane.client) c = &candidate;
    }
  }
  size_t forClient = c == nullptr ? 0 : c->jobs.size();
  if (forClient >= lane.maxPerClient) return false;
  if (u == nullptr) {
    lock->uids.push_back(UidQueue{lane.uid, {}, 0, 0});
    u = &lock->uids.back();
  }
  if (c == nullptr) {
    u->clients.push_back(ClientQueue{kj::heapString(lane.client), {}});
    c = &u->clients.back();
  }
  c->jobs.push_back(kj::mv(job));
  ++u->queued;
  ++lock->queued;
  return true;
}

kj::Maybe<kj::Function<void()>> BlockingPool::take(Queue& q) {
  if (q.queued == 0) return nullptr;
  // Queues of uids and clients are removed when they run empty, so every one holds a job.
  if (q.next >= q.uids.size()) q.next = 0;
  size_t ui = q.next;
  auto& u = q.uids[ui];
  if (u.next >= u.clients.size()) u.next = 0;
  size_t ci = u.next;
  auto& c = u.clients[ci];
  auto job = kj::mv(c.jobs.front());
  c.jobs.pop_front();
  --u.queued;
  --q.queued;
  if (c.jobs.empty()) {
    u.clients.erase(u.clients.begin() + ci);  // the next client slides into `ci`
  } else {
    u.next = ci + 1;
  }
  if (u.clients.empty()) {
    q.uids.erase(q.uids.begin() + ui);  // the next uid slides into `ui`
  } else {
    q.next = ui + 1;
  }
  return kj::mv(job);
}

void BlockingPool::workerLoop() {
  for (;;) {
    kj::Maybe<kj::Function<void()>> job;
    bool stop = queue_.when([](const Queue& q) { return q.queued > 0 || q.stopping; },
                            [&](Queue& q) {
                              job = take(q);
                              return job == nullptr;  // empty: stopping
                            });
    KJ_IF_MAYBE(j, job) { (*j)(); }
    if (stop) return;
  }
}

}  // namespace credvault::daemon
