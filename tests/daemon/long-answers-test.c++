// The per-uid answer budget (docs/limits.md, "Long answers") seen from a well-behaved client:
// the real listener and service in-process (listener-fixture.h), a client that sends one long
// Get at a time and reads each answer whole before sending the next. It must never be answered
// `throttled`, nor have its requests left unread, however many such Gets it makes: what bounds
// a client that reads nothing (tests/integration/isolation-test.c++) must not catch one that
// reads everything. Also built as daemon-long-answers-offload (a store that may block, as
// PostgreSQL: the Get reads its list on a worker first).

#include "tests/daemon/listener-fixture.h"
#include "core/limits.h"
#include "ipc/forwarding-stream.h"

#include <gtest/gtest.h>
#include <string>

namespace credvault::daemon {
namespace {

using testing::ALICE_PW;
using testing::ALICE_UID;
using testing::STRANGER_UID;

// Past INLINE_GET_LIMIT, with full-size secrets: each answer is ~2.7 MiB, larger than it takes
// to stop a connection's reads (max_write_backlog, 4 MiB, with the long Get's weight).
constexpr size_t ENTRIES = INLINE_GET_LIMIT + 64;
// More than MAX_ANSWER_BYTES_PER_UID (and a gateway's 4x) holds at LONG_CALL_WEIGHT_BYTES each.
constexpr int SEQUENTIAL_GETS = 20;

// A client end that stops reading while `paused` (what the daemon sees of a client that sends
// and never reads): its reads wait until resume().
class PausableStream final : public ipc::ForwardingStream {
 public:
  explicit PausableStream(kj::Own<kj::AsyncIoStream> inner) : ForwardingStream(kj::mv(inner)) {}
  void pause() { paused_ = true; }
  void resume() {
    paused_ = false;
    KJ_IF_MAYBE(f, waiting_) { (*f)->fulfill(); }
    waiting_ = nullptr;
  }
  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    if (!paused_) return inner().tryRead(buffer, minBytes, maxBytes);
    auto paf = kj::newPromiseAndFulfiller<void>();
    waiting_ = kj::mv(paf.fulfiller);
    return paf.promise.then(
        [this, buffer, minBytes, maxBytes]() { return tryRead(buffer, minBytes, maxBytes); });
  }

 private:
  bool paused_ = false;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> waiting_;
};

class LongAnswersTest : public testing::ListenerFixture {
 protected:
  void storeLongList() {
    auto unguarded = d.unguarded();
    auto self = d.identity.byPeer({ALICE_UID, 1}).value();
    std::string secret(core::MAX_SECRET_BYTES, 's');
    d.env.write([&](store::WriteTxn& txn) {
      for (size_t i = 0; i < ENTRIES; ++i) {
        core::Credential c;
        c.publicValue = kj::str("bulk-", i, "@example.com");
        c.secretValue = crypto::Secret::copyOf(kj::StringPtr(secret.c_str()));
        d.vault.save(self.principal, 0, "bulk", kj::mv(c)).value()(txn).value();
      }
    });
  }

  // One Get of the long list, its answer read whole: "ok:<entries>", the error code's name,
  // or "no answer" when none came within 10 s (the connection's reads stopped).
  std::string longGet(rpc::Session::Client& s) {
    auto req = s.getRequest();
    req.setType("bulk");
    return req.send()
        .then([](auto r) -> std::string {
          if (r.hasError()) return ipc::errorCodeName(r.getError().getCode()).cStr();
          return "ok:" + std::to_string(r.getCredentials().size());
        })
        .exclusiveJoin(d.io.provider->getTimer().afterDelay(10 * kj::SECONDS).then([]() {
          return std::string("no answer");
        }))
        .wait(ws);
  }

  // What the listener counts against `uid` once nothing is left to write (a few turns after
  // the last answer was read).
  size_t settledAnswerBytes(uint32_t uid) {
    auto& bytesOf = KJ_ASSERT_NONNULL(d.service.answerBytesOf);
    for (int i = 0; i < 200 && bytesOf(uid) > 0; ++i) {
      d.io.provider->getTimer().afterDelay(1 * kj::MILLISECONDS).wait(ws);
    }
    return bytesOf(uid);
  }

  void expectNeverThrottled(rpc::Session::Client s, uint32_t uid) {
    auto expected = "ok:" + std::to_string(ENTRIES);
    for (int i = 0; i < SEQUENTIAL_GETS; ++i) {
      ASSERT_EQ(longGet(s), expected) << "long Get " << i + 1 << " of " << SEQUENTIAL_GETS;
    }
    // Nothing is still counted once every answer has been read.
    EXPECT_EQ(settledAnswerBytes(uid), 0u);
  }
};

TEST_F(LongAnswersTest, AClientThatReadsEachLongAnswerBeforeTheNextIsNeverThrottled) {
  storeLongList();
  auto& c = dial(ALICE_UID);
  auto r = c.vault.sessionRequest().send().wait(ws);
  ASSERT_FALSE(r.hasError());
  expectNeverThrottled(r.getSession(), ALICE_UID);
}

TEST_F(LongAnswersTest, AGatewayClientThatReadsEachLongAnswerBeforeTheNextIsNeverThrottled) {
  // Through a gateway uid (its long Gets also counted per client address).
  storeLongList();
  auto ticket = password(STRANGER_UID, "alice", ALICE_PW, true).ticket;
  auto& c = dial(STRANGER_UID);
  auto req = c.vault.authenticateTicketRequest();
  req.setTicket(ticket);
  req.setClientAddress("203.0.113.7");
  auto r = req.send().wait(ws);
  ASSERT_FALSE(r.hasError());
  expectNeverThrottled(r.getSession(), STRANGER_UID);
  EXPECT_EQ(d.service.longGetsByClient.size(), 0u);
}

TEST_F(LongAnswersTest, AClientThatStopsReadingIsStillHeldToTheBudget) {
  // The other side of the accounting: the same connection pipelines long Gets and reads
  // nothing; the daemon stops reading its requests (back-pressure) instead of opening them all,
  // and once the client reads again every Get is answered and nothing stays counted.
  constexpr int PIPELINED = 12;
  storeLongList();
  auto inner = receiver->connect(ALICE_UID);
  auto pausable = kj::heap<PausableStream>(kj::mv(inner));
  auto& gate = *pausable;
  auto& c = dial(kj::mv(pausable));
  auto r = c.vault.sessionRequest().send().wait(ws);
  ASSERT_FALSE(r.hasError());
  auto s = r.getSession();
  gate.pause();
  int answered = 0, ok = 0;  // answered with the list; the rest `throttled`
  kj::Vector<kj::Promise<void>> gets;
  for (int i = 0; i < PIPELINED; ++i) {
    auto req = s.getRequest();
    req.setType("bulk");
    gets.add(req.send()
                 .then([&](auto r) {
                   ++answered;
                   if (!r.hasError()) {
                     ++ok;
                   } else {
                     EXPECT_EQ(r.getError().getCode(), rpc::ErrorCode::THROTTLED);
                   }
                 })
                 .eagerlyEvaluate(nullptr));
  }
  auto& bytesOf = KJ_ASSERT_NONNULL(d.service.answerBytesOf);
  size_t most = 0;
  for (int i = 0; i < 300; ++i) {
    d.io.provider->getTimer().afterDelay(1 * kj::MILLISECONDS).wait(ws);
    most = kj::max(most, bytesOf(ALICE_UID));
  }
  EXPECT_EQ(answered, 0);
  EXPECT_GT(most, 0u);
  int throttled = 0;
#ifndef CREDVAULT_TEST_LOOP_GUARD
  // A long Get's weight counts from the moment its request is read, so the connection's reads
  // stop after one or two: their weight (or one's answer and the next's weight), not twelve.
  EXPECT_LE(most, 2 * LONG_CALL_WEIGHT_BYTES);
#else
  // With a store that may block, a Get is known to be long only after the worker's read, so
  // several are read before their weight counts; the uid's places (LONG_GETS_PER_UID) and
  // answer budget bound them, and the rest are answered `throttled`.
  EXPECT_LE(most, MAX_ANSWER_BYTES_PER_UID + LONG_CALL_WEIGHT_BYTES + (4 << 20));
#endif
  gate.resume();
  kj::joinPromises(gets.releaseAsArray())
      .exclusiveJoin(d.io.provider->getTimer().afterDelay(30 * kj::SECONDS).then([]() {
        ADD_FAILURE() << "the pipelined Gets were not all answered";
      }))
      .wait(ws);
  EXPECT_EQ(answered, PIPELINED);
  throttled = PIPELINED - ok;
#ifndef CREDVAULT_TEST_LOOP_GUARD
  EXPECT_EQ(throttled, 0);  // one connection: back-pressure, not `throttled`
#else
  EXPECT_GE(ok, int(LONG_GETS_PER_UID));
#endif
  printf("[long-answers] %d pipelined, unread: at most %.1f MiB counted; %d answered, %d refused\n",
         PIPELINED, most / 1048576.0, ok, throttled);
  EXPECT_EQ(settledAnswerBytes(ALICE_UID), 0u);
}

}  // namespace
}  // namespace credvault::daemon
