// The group committer on its own, over a real LMDB environment in a temporary directory:
// writes queued together share one durable commit, a refused write undoes only itself, a
// commit that fails answers every caller in its batch with the failure (and acknowledges
// none of them), and nothing acknowledged is missing after the environment is reopened.

#include "daemon/group-commit.h"
#include "tests/daemon/writer-gate.h"
#include "tests/support/temp-dir.h"

#include <gtest/gtest.h>
#include <kj/async.h>
#include <memory>
#include <string>

namespace credvault::daemon {
namespace {

using testing::holdWriter;
using testing::waitEntered;
using testing::WriterGate;

kj::ArrayPtr<const kj::byte> bytes(kj::StringPtr s) {
  return s.asBytes();
}

// A committer on an environment of its own, with the event loop its promises resolve on.
struct Rig {
  explicit Rig(store::Options options = {}) : options(options) { open(); }
  ~Rig() noexcept(false) { close(); }

  kj::EventLoop loop;
  kj::WaitScope ws{loop};
  support::TempDir dir{"credvault-commit-test"};
  store::Options options;
  std::unique_ptr<store::Environment> env;
  store::Table table;
  std::unique_ptr<GroupCommitter> committer;

  void open() {
    env = std::make_unique<store::Environment>(dir.path(), options);
    table = env->table("things");
    committer = std::make_unique<GroupCommitter>(*env);
  }
  void close() {
    committer = nullptr;  // drains what is queued
    env = nullptr;
  }

  kj::Promise<Outcome<bool>> put(kj::StringPtr key, kj::String value) {
    auto k = kj::heapString(key);
    return committer->submit<bool>(
        [this, k = kj::mv(k), value = kj::mv(value)](store::WriteTxn& txn) {
          txn.put(table, bytes(k), bytes(value));
          return true;
        });
  }
  // Puts "k<i>" = "v<i>" for i < n.
  kj::Vector<kj::Promise<Outcome<bool>>> puts(int n) {
    kj::Vector<kj::Promise<Outcome<bool>>> pending;
    for (int i = 0; i < n; ++i) pending.add(put(kj::str("k", i), kj::str("v", i)));
    return pending;
  }
  // The value under `key` as the store has it now, or "<absent>".
  std::string get(kj::StringPtr key) {
    auto txn = env->read();
    KJ_IF_MAYBE(v, txn.get(table, bytes(key))) {
      return std::string(reinterpret_cast<const char*>(v->begin()), v->size());
    }
    return "<absent>";
  }
};

TEST(GroupCommit, WritesQueuedTogetherShareOneCommitAndAllAreAnswered) {
  Rig rig;
  WriterGate gate;
  auto held = holdWriter(*rig.committer, gate);
  waitEntered(gate);
  auto pending = rig.puts(20);
  EXPECT_EQ(rig.committer->queued(), 20u);
  *gate.open.lockExclusive() = true;
  held.wait(rig.ws);
  for (auto& outcome : kj::joinPromises(pending.releaseAsArray()).wait(rig.ws)) {
    EXPECT_TRUE(outcome.value != nullptr);
    EXPECT_TRUE(outcome.error == nullptr && outcome.failure == nullptr);
  }
  auto stats = rig.committer->stats();
  EXPECT_EQ(stats.commits, 2u) << "the held write, then the twenty together";
  EXPECT_EQ(stats.ops, 21u);
}

TEST(GroupCommit, NothingAcknowledgedIsMissingAfterReopening) {
  Rig rig;
  auto outcomes = kj::joinPromises(rig.puts(50).releaseAsArray()).wait(rig.ws);
  rig.close();
  rig.open();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(outcomes[i].value != nullptr) << i;
    EXPECT_EQ(rig.get(kj::str("k", i)), kj::str("v", i).cStr());
  }
}

TEST(GroupCommit, StoppingCommitsAndAnswersWhatIsQueued) {
  Rig rig;
  WriterGate gate;
  auto held = holdWriter(*rig.committer, gate);
  waitEntered(gate);
  auto pending = rig.puts(10);
  *gate.open.lockExclusive() = true;
  rig.committer = nullptr;  // the destructor drains the queue before joining
  held.wait(rig.ws);
  for (auto& outcome : kj::joinPromises(pending.releaseAsArray()).wait(rig.ws)) {
    EXPECT_TRUE(outcome.value != nullptr);
  }
  for (int i = 0; i < 10; ++i) EXPECT_EQ(rig.get(kj::str("k", i)), kj::str("v", i).cStr());
}

TEST(GroupCommit, ARefusedWriteUndoesOnlyItselfAndItsBatchCommits) {
  Rig rig;
  WriterGate gate;
  auto held = holdWriter(*rig.committer, gate);
  waitEntered(gate);
  auto first = rig.put("before", kj::str("1"));
  auto refused =
      rig.committer->submit<core::Result<bool>>([&](store::WriteTxn& txn) -> core::Result<bool> {
        txn.put(rig.table, bytes("refused"), bytes("half-written"));
        return core::refuse(core::ErrorCode::CONFLICT, "name", kj::str("already taken"));
      });
  auto broken = rig.committer->submit<bool>([&](store::WriteTxn& txn) -> bool {
    txn.put(rig.table, bytes("broken"), bytes("half-written"));
    KJ_FAIL_REQUIRE("a bug in one write");
  });
  auto last = rig.put("after", kj::str("2"));
  *gate.open.lockExclusive() = true;
  held.wait(rig.ws);

  auto r = refused.wait(rig.ws);
  ASSERT_TRUE(r.error != nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(r.error).code, core::ErrorCode::CONFLICT);
  EXPECT_TRUE(r.value == nullptr && r.failure == nullptr);
  auto b = broken.wait(rig.ws);
  ASSERT_TRUE(b.failure != nullptr) << "an unexpected exception is that write's failure";
  EXPECT_TRUE(b.value == nullptr && b.error == nullptr);
  EXPECT_TRUE(first.wait(rig.ws).value != nullptr);
  EXPECT_TRUE(last.wait(rig.ws).value != nullptr);
  EXPECT_EQ(rig.committer->stats().commits, 2u);

  EXPECT_EQ(rig.get("before"), "1");
  EXPECT_EQ(rig.get("after"), "2");
  EXPECT_EQ(rig.get("refused"), "<absent>");
  EXPECT_EQ(rig.get("broken"), "<absent>");
}

TEST(GroupCommit, ACommitThatFailsAnswersEveryCallerAndAcknowledgesNone) {
  // A map that may not grow: one write too large for it fails the whole commit.
  store::Options small;
  small.initialMapSize = 1 << 20;
  small.maxMapSize = 1 << 20;
  Rig rig(small);
  WriterGate gate;
  auto held = holdWriter(*rig.committer, gate);
  waitEntered(gate);
  auto a = rig.put("a", kj::str("small"));
  auto big = rig.put("big", kj::heapString(std::string(4 << 20, 'x').c_str()));
  auto c = rig.put("c", kj::str("small"));
  *gate.open.lockExclusive() = true;
  held.wait(rig.ws);
  for (auto* p : {&a, &big, &c}) {
    auto outcome = p->wait(rig.ws);
    EXPECT_TRUE(outcome.value == nullptr) << "acknowledged a write that was not committed";
    EXPECT_TRUE(outcome.failure != nullptr);
  }
  EXPECT_EQ(rig.get("a"), "<absent>");
  EXPECT_EQ(rig.get("c"), "<absent>");
  // The committer goes on: the next write commits.
  EXPECT_TRUE(rig.put("d", kj::str("later")).wait(rig.ws).value != nullptr);
  rig.close();
  rig.open();
  EXPECT_EQ(rig.get("d"), "later");
  EXPECT_EQ(rig.get("a"), "<absent>");
}

}  // namespace
}  // namespace credvault::daemon
