// Holding the group committer's writer thread, for tests that need writes queued behind it.

#pragma once

#include "daemon/group-commit.h"
#include <kj/mutex.h>
#include <unistd.h>

namespace credvault::daemon::testing {

// Holds the group committer's writer thread inside a write transaction until opened, so
// that writes queued meanwhile commit, in order, in the next batch.
struct WriterGate {
  kj::MutexGuarded<bool> open{false};
  kj::MutexGuarded<bool> entered{false};
};

inline kj::Promise<Outcome<bool>> holdWriter(GroupCommitter& committer, WriterGate& gate) {
  return committer.submit<bool>([&gate](store::WriteTxn&) -> bool {
    *gate.entered.lockExclusive() = true;
    gate.open.when([](const bool& o) { return o; }, [](bool&) {});
    return true;
  });
}

// Until the writer is inside the held transaction.
inline void waitEntered(WriterGate& gate) {
  while (!*gate.entered.lockShared()) usleep(1000);
}

}  // namespace credvault::daemon::testing
