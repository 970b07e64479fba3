#include "group-commit.h"

#include <kj/debug.h>
#include <kj/time.h>

namespace credvault::daemon {

namespace {
constexpr kj::Duration MAX_COMMIT_WAIT = 4 * kj::MILLISECONDS;
}  // namespace

GroupCommitter::GroupCommitter(store::Store& env, kj::Maybe<StoreHealth&> health)
    : env_(env), health_(health) {
  thread_ = kj::heap<kj::Thread>([this]() { writerLoop(); });
}

GroupCommitter::~GroupCommitter() noexcept(false) {
  queue_.lockExclusive()->stopping = true;
  thread_ = nullptr;  // joins after the queue is drained
}

void GroupCommitter::enqueue(kj::Own<Item> item) {
  auto lock = queue_.lockExclusive();
  KJ_REQUIRE(!lock->stopping, "the vault is shutting down");
  lock->items.add(kj::mv(item));
}

void GroupCommitter::writerLoop() {
  const kj::MonotonicClock& clock = kj::systemPreciseMonotonicClock();
  // After a commit, the clients it answered are about to send their next write. Taken
  // without them, the next batch commits while they queue behind it, and many clients
  // settle into cohorts that take turns, each waiting for the others' commits
  // (docs/performance.md §6). So the next batch waits for them: until it holds as many
  // writes as were committed plus those that queued meanwhile, or until a quarter of the
  // commit's own time (at most MAX_COMMIT_WAIT) after it ended. A lone client is back before that
  // and never waits; an idle daemon's first write finds the deadline long past.
  size_t want = 0;
  kj::TimePoint deadline = kj::origin<kj::TimePoint>();
  for (;;) {
    kj::Vector<kj::Own<Item>> batch;
    bool stopping = false;
    auto take = [&](Queue& q) {
      for (auto& item : q.items) batch.add(kj::mv(item));
      q.items.clear();
      stopping = q.stopping;
    };
    queue_.when([](const Queue& q) { return !q.items.empty() || q.stopping; }, take);
    if (batch.empty() && stopping) return;
    auto now = clock.now();
    if (!stopping && batch.size() < want && now < deadline) {
      queue_.when(
          [&](const Queue& q) { return batch.size() + q.items.size() >= want || q.stopping; }, take,
          deadline - now);
    }
    auto started = clock.now();
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                  env_.write([&](store::WriteTxn& txn) {
                    for (auto& item : batch) item->run(txn);
                  });
                })) {
      KJ_IF_MAYBE(h, health_) {
        if (store::isStorageFailure(*e)) {
          h->failed(e->getDescription().slice(sizeof(store::STORAGE_FAILURE_PREFIX) - 1));
        }
      }
      for (auto& item : batch) item->failAll(*e);
      want = 0;
      continue;
    }
    KJ_IF_MAYBE(h, health_) { h->succeeded(); }
    auto ended = clock.now();
    want = batch.size() + queue_.lockShared()->items.size();
    deadline = ended + kj::min((ended - started) / 4, MAX_COMMIT_WAIT);
    {
      auto s = stats_.lockExclusive();
      ++s->commits;
      s->ops += batch.size();
    }
    for (auto& item : batch) item->complete();
  }
}

}  // namespace credvault::daemon
