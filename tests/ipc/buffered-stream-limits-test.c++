// Tests for BufferedStream::enforce() (ipc/buffered-stream.h), over a real socketpair and the
// real timer with short limits: a half-sent message is cut off after the message timeout, a
// slow but whole one is not; a silent connection between messages obeys the idle timeout
// (never, when unset), but not while the peer waits for answers being worked on; reads wait while
// the write backlog is over the cap and resume when it drains; a peer that reads nothing fails the
// stream after the write timeout.

#include "ipc/buffered-stream.h"

#include <capnp/message.h>
#include <capnp/serialize-async.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>
#include <kj/debug.h>

namespace credvault::ipc {
namespace {

using Limits = BufferedStream::Limits;

// A message of `segments` segments of `words` words each (a capnp message with far-pointer
// landing pads would be the natural multi-segment case; raw frames are enough for framing).
kj::Array<kj::byte> frame(uint32_t segments, uint32_t words) {
  size_t tableWords = (segments + 2) / 2;  // count + sizes, 4 bytes each, padded to a word
  auto out = kj::heapArray<kj::byte>((tableWords + size_t(segments) * words) * 8);
  memset(out.begin(), 0, out.size());
  auto put = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; i++) out[at + i] = (v >> (8 * i)) & 0xff;
  };
  put(0, segments - 1);
  for (uint32_t s = 0; s < segments; s++) put(4 + 4 * s, words);
  return out;
}

struct Link {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::TwoWayPipe pipe = io.provider->newTwoWayPipe();
  BufferedStream stream{kj::mv(pipe.ends[0])};
  kj::AsyncIoStream& peer = *pipe.ends[1];
  size_t upstream = 0;
  bool callsInProgress = false;

  explicit Link(Limits limits) {
    stream.enforce(
        io.provider->getTimer(), limits, [this]() { return upstream; },
        kj::Function<bool()>([this]() { return callsInProgress; }));
  }
  kj::Timer& timer() { return io.provider->getTimer(); }
  void send(kj::ArrayPtr<const kj::byte> bytes) {
    peer.write(bytes.begin(), bytes.size()).wait(io.waitScope);
  }

  // Reads `n` bytes; "ok", or the exception's type and the limit reached, or "pending" when
  // nothing happened within `within`.
  std::string read(size_t n, kj::Duration within) {
    auto buffer = kj::heapArray<kj::byte>(n);
    auto result = stream.read(buffer.begin(), n)
                      .then([]() -> std::string { return "ok"; },
                            [this](kj::Exception&& e) -> std::string {
                              std::string out = e.getType() == kj::Exception::Type::DISCONNECTED
                                                    ? "disconnected"
                                                    : "failed";
                              KJ_IF_MAYBE(which, stream.limitReached()) {
                                out += std::string(" ") + which->cStr();
                              }
                              return out;
                            })
                      .exclusiveJoin(timer().afterDelay(within).then(
                          []() -> std::string { return "pending"; }));
    return result.wait(io.waitScope);
  }
};

Limits shortLimits() {
  Limits l;
  l.messageTimeout = 200 * kj::MILLISECONDS;
  l.idleTimeout = nullptr;
  l.writeTimeout = 200 * kj::MILLISECONDS;
  l.maxBacklogBytes = 64 * 1024;
  return l;
}

TEST(BufferedStreamLimits, HalfSentMessageFailsAfterTheMessageTimeout) {
  Link link(shortLimits());
  auto message = frame(1, 1000);
  link.send(message.slice(0, message.size() - 8));
  auto start = link.timer().now();
  // Within 10 s (200 ms on a quiet host): not never.
  EXPECT_EQ(link.read(message.size(), 10 * kj::SECONDS), "disconnected message-timeout");
  EXPECT_GE(link.timer().now() - start, 150 * kj::MILLISECONDS);
}

TEST(BufferedStreamLimits, SlowDripDoesNotExtendTheMessageTimeout) {
  Link link(shortLimits());
  auto message = frame(1, 1000);
  // A byte every 60 ms: each read makes progress, the message as a whole is late.
  link.send(message.slice(0, 16));
  auto buffer = kj::heapArray<kj::byte>(message.size());
  auto reading = link.stream.read(buffer.begin(), message.size());
  std::string outcome = "pending";
  auto done = reading.then([&]() { outcome = "ok"; }, [&](kj::Exception&&) { outcome = "failed"; })
                  .eagerlyEvaluate(nullptr);
  for (size_t i = 16; i < 40 && outcome == "pending"; i++) {
    link.timer().afterDelay(60 * kj::MILLISECONDS).wait(link.io.waitScope);
    link.send(message.slice(i, i + 1));
  }
  link.timer().afterDelay(100 * kj::MILLISECONDS).wait(link.io.waitScope);
  EXPECT_EQ(outcome, "failed");
  EXPECT_EQ(KJ_ASSERT_NONNULL(link.stream.limitReached()), "message-timeout");
}

TEST(BufferedStreamLimits, WholeMessagesInTimeAndSilenceBetweenThemAreFine) {
  Link link(shortLimits());
  // Multi-segment (odd and even counts: the table's padding differs) and empty messages.
  auto a = frame(3, 5), b = frame(2, 7), c = frame(1, 0);
  link.send(a.slice(0, 10));
  // A pause well inside the message timeout (a loaded host may stretch it).
  link.timer().afterDelay(20 * kj::MILLISECONDS).wait(link.io.waitScope);
  link.send(a.slice(10, a.size()));
  EXPECT_EQ(link.read(a.size(), 1 * kj::SECONDS), "ok");
  link.send(b);
  link.send(c);
  EXPECT_EQ(link.read(b.size() + c.size(), 1 * kj::SECONDS), "ok");
  // Between messages only the idle timeout applies, and there is none.
  EXPECT_EQ(link.read(8, 600 * kj::MILLISECONDS), "pending");
  EXPECT_EQ(link.stream.limitReached(), nullptr);
}

TEST(BufferedStreamLimits, IdleConnectionFailsAfterTheIdleTimeout) {
  auto limits = shortLimits();
  limits.idleTimeout = 300 * kj::MILLISECONDS;
  Link link(limits);
  auto m = frame(1, 2);
  link.send(m);
  EXPECT_EQ(link.read(m.size(), 1 * kj::SECONDS), "ok");
  auto start = link.timer().now();
  EXPECT_EQ(link.read(8, 2 * kj::SECONDS), "disconnected idle-timeout");
  EXPECT_GE(link.timer().now() - start, 250 * kj::MILLISECONDS);
}

TEST(BufferedStreamLimits, ConnectionWaitingForItsAnswersIsNotIdle) {
  auto limits = shortLimits();
  limits.idleTimeout = 300 * kj::MILLISECONDS;
  Link link(limits);
  auto m = frame(1, 2);
  link.send(m);
  EXPECT_EQ(link.read(m.size(), 1 * kj::SECONDS), "ok");
  // A call is being worked on (a queued password check, a commit): silence is the daemon's.
  link.callsInProgress = true;
  EXPECT_EQ(link.read(8, 1 * kj::SECONDS), "pending");
  EXPECT_EQ(link.stream.limitReached(), nullptr);
  // Answered, and the peer stays silent: now it is idle.
  link.callsInProgress = false;
  EXPECT_EQ(link.read(8, 2 * kj::SECONDS), "disconnected idle-timeout");
}

TEST(BufferedStreamLimits, ReadsWaitWhileTheBacklogIsOverTheCapAndResume) {
  Link link(shortLimits());
  auto m = frame(1, 2);
  link.send(m);
  link.send(m);
  // At the cap reads go on; one byte past it they wait.
  link.upstream = 64 * 1024;
  EXPECT_EQ(link.read(m.size(), 1 * kj::SECONDS), "ok");
  link.upstream = 64 * 1024 + 1;
  auto buffer = kj::heapArray<kj::byte>(m.size());
  bool done = false;
  auto reading = link.stream.read(buffer.begin(), m.size())
                     .then([&]() { done = true; })
                     .eagerlyEvaluate(nullptr);
  // Longer than the message timeout: waiting for our own backlog is not the peer's fault.
  link.timer().afterDelay(400 * kj::MILLISECONDS).wait(link.io.waitScope);
  EXPECT_FALSE(done);
  link.upstream = 0;
  for (int i = 0; i < 5000 && !done; ++i) {
    link.timer().afterDelay(1 * kj::MILLISECONDS).wait(link.io.waitScope);
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(link.stream.limitReached(), nullptr);
}

TEST(BufferedStreamLimits, PeerThatReadsNothingFailsAfterTheWriteTimeout) {
  Link link(shortLimits());
  // More than the socket buffers hold: the write cannot finish while the peer reads nothing.
  auto big = kj::heapArray<kj::byte>(16 << 20);
  memset(big.begin(), 'x', big.size());
  std::string outcome = "pending";
  auto writing = link.stream.write(big.begin(), big.size())
                     .then([&]() { outcome = "ok"; },
                           [&](kj::Exception&& e) {
                             outcome = e.getType() == kj::Exception::Type::DISCONNECTED
                                           ? "disconnected"
                                           : "failed";
                           })
                     .eagerlyEvaluate(nullptr);
  // The pending read learns of it too (capnp notices failures on its read side).
  EXPECT_EQ(link.read(8, 2 * kj::SECONDS), "disconnected write-timeout");
  link.timer().afterDelay(10 * kj::MILLISECONDS).wait(link.io.waitScope);
  EXPECT_EQ(outcome, "disconnected");
}

TEST(BufferedStreamLimits, PeerThatReadsInTimeKeepsTheConnection) {
  // 4 MiB is many socket buffers: the batch is taken only as the peer reads. The write timeout
  // is wider here than in the others, as a loaded host may take longer than 200 ms to copy it.
  auto limits = shortLimits();
  limits.writeTimeout = 3 * kj::SECONDS;
  Link link(limits);
  auto big = kj::heapArray<kj::byte>(4 << 20);
  memset(big.begin(), 'x', big.size());
  auto writing = link.stream.write(big.begin(), big.size());
  auto sink = kj::heapArray<kj::byte>(big.size());
  bool read =
      link.peer.read(sink.begin(), sink.size())
          .then([]() { return true; })
          .exclusiveJoin(link.timer().afterDelay(20 * kj::SECONDS).then([]() { return false; }))
          .wait(link.io.waitScope);
  ASSERT_TRUE(read) << "the peer did not receive the batch: "
                    << KJ_ASSERT_NONNULL(link.stream.limitReached()).cStr();
  writing.wait(link.io.waitScope);
  EXPECT_EQ(link.stream.limitReached(), nullptr);
}

}  // namespace
}  // namespace credvault::ipc
