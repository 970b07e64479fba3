// The blocking pool's fair share: round-robin across uids, then across a uid's clients, and
// per-uid and per-client caps that refuse (throttled) instead of queueing without bound.

#include "daemon/blocking-pool.h"

#include <gtest/gtest.h>
#include <kj/async.h>
#include <kj/mutex.h>

#include <string>
#include <vector>

namespace credvault::daemon {
namespace {

// A pool of one worker, held busy until release(), recording the order jobs ran in.
struct Harness {
  kj::EventLoop loop;
  kj::WaitScope ws{loop};
  BlockingPool pool{1};
  kj::MutexGuarded<bool> gate{false};
  kj::MutexGuarded<std::vector<std::string>> ran;
  kj::Vector<kj::Promise<Outcome<int>>> pending;

  Harness() {
    // Occupies the only worker until release().
    pending.add(pool.run<int>([this]() {
      gate.when([](bool open) { return open; }, [](bool&) {});
      return 0;
    }));
  }
  void release() { *gate.lockExclusive() = true; }

  bool submit(uint32_t uid, kj::StringPtr client, const std::string& name, size_t perUid = 100,
              size_t perClient = 100) {
    Lane lane;
    lane.uid = uid;
    lane.client = client;
    lane.maxPerUid = perUid;
    lane.maxPerClient = perClient;
    auto promise = pool.run<int>(
        [this, name]() {
          ran.lockExclusive()->push_back(name);
          return 1;
        },
        lane);
    // A refused job is answered at once, without running.
    auto outcome = kj::mv(promise);
    if (outcome.poll(ws)) {
      auto o = outcome.wait(ws);
      KJ_IF_MAYBE(e, o.error) {
        EXPECT_EQ(e->code, core::ErrorCode::THROTTLED);
        return false;
      }
      return true;
    }
    pending.add(kj::mv(outcome));
    return true;
  }

  std::vector<std::string> finish() {
    release();
    kj::joinPromises(pending.releaseAsArray()).wait(ws);
    return *ran.lockShared();
  }
};

TEST(BlockingPool, ServesUidsInTurnNotInArrivalOrder) {
  Harness h;
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(h.submit(1000, "", "flood-" + std::to_string(i)));
  ASSERT_TRUE(h.submit(2000, "", "alice"));
  auto order = h.finish();
  ASSERT_EQ(order.size(), 7u);
  // The flood's first job, then alice: one job per busy uid, not six.
  EXPECT_EQ(order[0], "flood-0");
  EXPECT_EQ(order[1], "alice");
}

TEST(BlockingPool, ServesAGatewaysClientsInTurn) {
  Harness h;
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(h.submit(900, "198.51.100.1", "bot-" + std::to_string(i)));
  ASSERT_TRUE(h.submit(900, "203.0.113.5", "user"));
  ASSERT_TRUE(h.submit(1000, "", "local"));
  auto order = h.finish();
  ASSERT_EQ(order.size(), 7u);
  // Uids take turns (gateway, local, gateway, ...), and within the gateway its clients do.
  EXPECT_EQ(order[0], "bot-0");
  EXPECT_EQ(order[1], "local");
  EXPECT_EQ(order[2], "user");
}

TEST(BlockingPool, RefusesPastTheCapsAtOnce) {
  Harness h;
  // A local uid is one client of its own: its cap is the per-uid one.
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(h.submit(1000, "", "q", 8, 8)) << i;
  EXPECT_FALSE(h.submit(1000, "", "q", 8, 8)) << "one past the per-uid cap";
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(h.submit(900, "c", "g", 256, 4)) << i;
  EXPECT_FALSE(h.submit(900, "c", "g", 256, 4)) << "one past the per-client cap";
  EXPECT_TRUE(h.submit(900, "other", "g", 256, 4)) << "another client of the gateway";
  EXPECT_TRUE(h.submit(2000, "", "alice", 8, 8)) << "another uid";
  auto order = h.finish();
  std::string all;
  for (auto& n : order) all += n + " ";
  EXPECT_EQ(order.size(), 8u + 4u + 1u + 1u) << all;
}

TEST(BlockingPool, CarriesARefusalTypedAndAnyOtherExceptionAsAFailure) {
  kj::EventLoop loop;
  kj::WaitScope ws(loop);
  BlockingPool pool(2);
  auto refused = pool.run<int>([]() -> core::Result<int> {
    return core::refuse(core::ErrorCode::NOT_AUTHENTICATED, "", kj::str("wrong password"));
  });
  auto broken = pool.run<int>([]() -> int { KJ_FAIL_REQUIRE("a bug in the job"); });
  auto fine = pool.run<int>([]() { return 7; });
  auto r = refused.wait(ws);
  ASSERT_TRUE(r.error != nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(r.error).code, core::ErrorCode::NOT_AUTHENTICATED);
  EXPECT_TRUE(r.value == nullptr && r.failure == nullptr);
  auto b = broken.wait(ws);
  EXPECT_TRUE(b.failure != nullptr && b.value == nullptr && b.error == nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(fine.wait(ws).value), 7);
}

TEST(BlockingPool, StoppingRunsAndAnswersEveryQueuedJob) {
  kj::EventLoop loop;
  kj::WaitScope ws(loop);
  auto pool = kj::heap<BlockingPool>(1);
  kj::MutexGuarded<int> ran(0);
  kj::Vector<kj::Promise<Outcome<int>>> pending;
  for (int i = 0; i < 20; ++i) {
    pending.add(pool->run<int>([&ran, i]() {
      ++*ran.lockExclusive();
      return i;
    }));
  }
  pool = nullptr;  // finishes the queue, then joins
  EXPECT_EQ(*ran.lockShared(), 20);
  auto outcomes = kj::joinPromises(pending.releaseAsArray()).wait(ws);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(KJ_ASSERT_NONNULL(outcomes[i].value), i);
}

}  // namespace
}  // namespace credvault::daemon
