#include "group-commit.h"

#include <kj/debug.h>

namespace credvault::daemon {

GroupCommitter::GroupCommitter(store::Environment& env) : env_(env) {
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
  for (;;) {
    kj::Vector<kj::Own<Item>> batch;
    {
      auto lock = queue_.when([](const Queue& q) { return !q.items.empty() || q.stopping; },
                              [&](Queue& q) {
                                batch = kj::mv(q.items);
                                q.items = kj::Vector<kj::Own<Item>>();
                                return q.stopping;
                              });
      if (batch.empty() && lock) return;
    }
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                  env_.write([&](store::WriteTxn& txn) {
                    for (auto& item : batch) item->run(txn);
                  });
                })) {
      for (auto& item : batch) item->failAll(*e);
      continue;
    }
    {
      auto s = stats_.lockExclusive();
      ++s->commits;
      s->ops += batch.size();
    }
    for (auto& item : batch) item->complete();
  }
}

}  // namespace credvault::daemon
