// Tests for ipc/buffered-stream.h: reads served from one inner read, messages split across
// reads, EOF with bytes in the buffer, writes of one turn in one inner write and in order,
// a failed write reaching every waiting write and the reader, and Cap'n Proto RPC over a
// real socketpair with fewer inner reads than messages.

#include "ipc/buffered-stream.h"
#include "ipc/forwarding-stream.h"
#include "ipc/credvault.capnp.h"

#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <capnp/serialize-async.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>
#include <kj/debug.h>
#include <sys/socket.h>
#include <unistd.h>
#include <string>

namespace credvault::ipc {
namespace {

kj::Array<kj::byte> bytesOf(kj::StringPtr text) {
  return kj::heapArray<kj::byte>(text.asBytes());
}

std::string textOf(kj::ArrayPtr<const kj::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// An in-memory AsyncIoStream. Each inner read returns the bytes of one chunk at most (as a
// socket returns what one send delivered) unless minBytes asks for more; EOF follows the last
// chunk. Writes are recorded one string per call, and can be held or failed.
class FakeStream final : public kj::AsyncIoStream {
 public:
  kj::Vector<kj::Array<kj::byte>> chunks;
  size_t nextChunk = 0;
  size_t offset = 0;
  size_t reads = 0;
  bool blockReads = false;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<size_t>>> blockedRead;

  kj::Vector<std::string> writes;
  bool holdWrites = false;
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> heldWrites;
  size_t writesAtShutdown = SIZE_MAX;

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    ++reads;
    if (blockReads) {
      auto paf = kj::newPromiseAndFulfiller<size_t>();
      blockedRead = kj::mv(paf.fulfiller);
      return kj::mv(paf.promise);
    }
    auto* dst = static_cast<kj::byte*>(buffer);
    size_t done = 0;
    while (nextChunk < chunks.size() && (done == 0 || done < minBytes) && done < maxBytes) {
      auto& chunk = chunks[nextChunk];
      size_t n = kj::min(chunk.size() - offset, maxBytes - done);
      memcpy(dst + done, chunk.begin() + offset, n);
      done += n;
      offset += n;
      if (offset == chunk.size()) {
        ++nextChunk;
        offset = 0;
      }
    }
    return done;
  }

  kj::Promise<void> write(const void* buffer, size_t size) override {
    auto piece = kj::arrayPtr(static_cast<const kj::byte*>(buffer), size);
    return write(kj::arrayPtr(&piece, 1));
  }

  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    std::string all;
    for (auto& piece : pieces) all += textOf(piece);
    writes.add(kj::mv(all));
    if (!holdWrites) return kj::READY_NOW;
    auto paf = kj::newPromiseAndFulfiller<void>();
    heldWrites.add(kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }

  kj::Promise<void> whenWriteDisconnected() override { return kj::NEVER_DONE; }
  void shutdownWrite() override { writesAtShutdown = writes.size(); }
};

struct Fixture {
  kj::EventLoop loop;
  kj::WaitScope waitScope{loop};
};

// A serialized message whose root is an Error carrying `text`.
kj::Array<kj::byte> messageBytes(kj::StringPtr text) {
  capnp::MallocMessageBuilder builder;
  builder.initRoot<rpc::Error>().setMessage(text);
  auto words = capnp::messageToFlatArray(builder);
  return kj::heapArray<kj::byte>(words.asBytes());
}

std::string messageText(capnp::MessageReader& reader) {
  return reader.getRoot<rpc::Error>().getMessage().cStr();
}

TEST(BufferedStream, ServesSeveralMessagesFromOneRead) {
  Fixture f;
  auto inner = kj::heap<FakeStream>();
  auto& fake = *inner;
  kj::Vector<kj::byte> all;
  for (auto text : {"one", "two", "three"}) all.addAll(messageBytes(text));
  fake.chunks.add(all.releaseAsArray());
  BufferedStream stream(kj::mv(inner));

  for (auto text : {"one", "two", "three"}) {
    auto reader = capnp::readMessage(stream).wait(f.waitScope);
    EXPECT_EQ(messageText(*reader), text);
  }
  EXPECT_EQ(fake.reads, 1u);  // without the buffer: two per message
}

TEST(BufferedStream, JoinsAMessageSplitAcrossReads) {
  Fixture f;
  auto inner = kj::heap<FakeStream>();
  auto& fake = *inner;
  auto message = messageBytes("split across many small reads");
  for (size_t i = 0; i < message.size(); i += 3) {
    fake.chunks.add(kj::heapArray<kj::byte>(message.slice(i, kj::min(i + 3, message.size()))));
  }
  BufferedStream stream(kj::mv(inner));

  auto reader = capnp::readMessage(stream).wait(f.waitScope);
  EXPECT_EQ(messageText(*reader), "split across many small reads");
  EXPECT_EQ(fake.reads, (message.size() + 2) / 3);
}

TEST(BufferedStream, ReadsBodiesLargerThanTheBufferDirectly) {
  Fixture f;
  auto inner = kj::heap<FakeStream>();
  auto& fake = *inner;
  std::string big(1000, 'x');
  big[999] = 'y';
  auto message = messageBytes(big.c_str());
  fake.chunks.add(kj::heapArray<kj::byte>(message.slice(0, 8)));  // the segment table
  fake.chunks.add(kj::heapArray<kj::byte>(message.slice(8, message.size())));
  BufferedStream stream(kj::mv(inner), 64);

  auto reader = capnp::readMessage(stream).wait(f.waitScope);
  EXPECT_EQ(messageText(*reader), big);
  EXPECT_EQ(fake.reads, 2u);
}

TEST(BufferedStream, ReturnsTheBufferedBytesAtEof) {
  Fixture f;
  auto inner = kj::heap<FakeStream>();
  inner->chunks.add(bytesOf("hello"));
  BufferedStream stream(kj::mv(inner));

  kj::byte buffer[8];
  EXPECT_EQ(stream.tryRead(buffer, 2, 2).wait(f.waitScope), 2u);
  EXPECT_EQ(textOf(kj::arrayPtr(buffer, 2)), "he");
  // Three bytes left in the buffer, then EOF: fewer than minBytes says so.
  EXPECT_EQ(stream.tryRead(buffer, 8, 8).wait(f.waitScope), 3u);
  EXPECT_EQ(textOf(kj::arrayPtr(buffer, 3)), "llo");
  EXPECT_EQ(stream.tryRead(buffer, 1, 8).wait(f.waitScope), 0u);
}

TEST(BufferedStream, TruncatedMessageFailsAsDisconnected) {
  Fixture f;
  auto inner = kj::heap<FakeStream>();
  auto message = messageBytes("cut short");
  inner->chunks.add(kj::heapArray<kj::byte>(message.slice(0, message.size() - 4)));
  BufferedStream stream(kj::mv(inner));

  KJ_IF_MAYBE(e,
              kj::runCatchingExceptions([&]() { capnp::readMessage(stream).wait(f.waitScope); })) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::DISCONNECTED) << e->getDescription().cStr();
  } else {
    ADD_FAILURE() << "a truncated message was read";
  }
}

TEST(BufferedStream, WritesOfOneTurnGoOutTogetherInOrder) {
  Fixture f;
  auto inner = kj::heap<FakeStream>();
  auto& fake = *inner;
  BufferedStream stream(kj::mv(inner));

  auto a = stream.write("a", 1);
  kj::ArrayPtr<const kj::byte> pieces[] = {kj::StringPtr("b").asBytes(),
                                           kj::StringPtr("cd").asBytes()};
  auto bcd = stream.write(pieces);
  auto e = stream.write("e", 1);
  EXPECT_EQ(fake.writes.size(), 0u);  // nothing before the end of the turn

  a.wait(f.waitScope);
  bcd.wait(f.waitScope);
  e.wait(f.waitScope);
  f.waitScope.poll();
  ASSERT_EQ(fake.writes.size(), 1u);
  EXPECT_EQ(fake.writes[0], "abcde");
}

TEST(BufferedStream, LargeWriteGoesInOrderAndWaitsForItsBatch) {
  Fixture f;
  auto inner = kj::heap<FakeStream>();
  auto& fake = *inner;
  fake.holdWrites = true;
  BufferedStream stream(kj::mv(inner));

  std::string big(BufferedStream::COPY_WRITE_LIMIT, 'L');
  auto before = stream.write("<", 1);
  auto large = stream.write(big.data(), big.size());
  auto after = stream.write(">", 1);
  EXPECT_TRUE(before.poll(f.waitScope));  // copied: resolves at once
  EXPECT_FALSE(large.poll(f.waitScope));  // written from the caller's memory
  ASSERT_EQ(fake.writes.size(), 1u);
  EXPECT_EQ(fake.writes[0], "<" + big + ">");

  fake.heldWrites[0]->fulfill();
  EXPECT_TRUE(large.poll(f.waitScope));
  EXPECT_TRUE(after.poll(f.waitScope));
}

TEST(BufferedStream, WritesWaitWhileABatchIsBeingWritten) {
  Fixture f;
  auto inner = kj::heap<FakeStream>();
  auto& fake = *inner;
  fake.holdWrites = true;
  BufferedStream stream(kj::mv(inner));

  stream.write("1", 1).wait(f.waitScope);
  f.waitScope.poll();
  ASSERT_EQ(fake.writes.size(), 1u);  // "1" is with the inner stream, which is not done

  auto second = stream.write("2", 1);
  auto third = stream.write("3", 1);
  EXPECT_FALSE(second.poll(f.waitScope));
  EXPECT_EQ(fake.writes.size(), 1u);

  fake.heldWrites[0]->fulfill();
  f.waitScope.poll();
  ASSERT_EQ(fake.writes.size(), 2u);
  EXPECT_EQ(fake.writes[1], "23");
  fake.heldWrites[1]->fulfill();
  EXPECT_TRUE(second.poll(f.waitScope));
  EXPECT_TRUE(third.poll(f.waitScope));
}

TEST(BufferedStream, FailedWriteReachesEveryWaitingWriteLaterWritesAndTheReader) {
  Fixture f;
  auto inner = kj::heap<FakeStream>();
  auto& fake = *inner;
  fake.holdWrites = true;
  fake.blockReads = true;
  BufferedStream stream(kj::mv(inner));

  kj::byte buffer[8];
  auto read = stream.tryRead(buffer, 1, sizeof(buffer));
  stream.write("1", 1).wait(f.waitScope);
  f.waitScope.poll();
  ASSERT_EQ(fake.writes.size(), 1u);
  std::string big(BufferedStream::COPY_WRITE_LIMIT, 'L');
  kj::Vector<kj::Promise<void>> waiting;
  waiting.add(stream.write("2", 1));
  waiting.add(stream.write(big.data(), big.size()));
  waiting.add(stream.write("3", 1));

  fake.heldWrites[0]->reject(KJ_EXCEPTION(DISCONNECTED, "peer went away"));
  auto failure = [&](kj::Promise<void>& p) -> std::string {
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { p.wait(f.waitScope); })) {
      return e->getDescription().cStr();
    }
    return "";
  };
  for (auto& p : waiting) EXPECT_EQ(failure(p), "peer went away");
  auto later = stream.write("4", 1);
  EXPECT_EQ(failure(later), "peer went away");
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { read.wait(f.waitScope); })) {
    EXPECT_EQ(std::string(e->getDescription().cStr()), "peer went away");
    EXPECT_EQ(e->getType(), kj::Exception::Type::DISCONNECTED);
  } else {
    ADD_FAILURE() << "the pending read did not fail";
  }
  EXPECT_EQ(fake.writes.size(), 1u);  // nothing is written after the failure
}

TEST(BufferedStream, ShutdownWriteSendsQueuedBytesFirst) {
  Fixture f;
  auto inner = kj::heap<FakeStream>();
  auto& fake = *inner;
  BufferedStream stream(kj::mv(inner));

  auto written = stream.write("last words", 10);
  stream.shutdownWrite();
  EXPECT_EQ(fake.writesAtShutdown, SIZE_MAX);
  EXPECT_TRUE(written.poll(f.waitScope));
  f.waitScope.poll();
  ASSERT_EQ(fake.writes.size(), 1u);
  EXPECT_EQ(fake.writesAtShutdown, 1u);

  // Nothing queued: at once.
  BufferedStream idle(kj::heap<FakeStream>());
  idle.shutdownWrite();
}

TEST(BufferedStream, FlushWaitsWhileTheWriterHasMoreButNotForever) {
  Fixture f;
  auto inner = kj::heap<FakeStream>();
  auto& fake = *inner;
  BufferedStream stream(kj::mv(inner));
  int asked = 0;
  stream.holdFlushWhile([&]() { return ++asked < 3; });

  stream.write("x", 1).wait(f.waitScope);
  f.waitScope.poll();
  EXPECT_EQ(asked, 3);
  EXPECT_EQ(fake.writes.size(), 1u);

  // A writer that always says "more" is flushed after MAX_FLUSH_DEFERRALS passes anyway.
  asked = 0;
  stream.holdFlushWhile([&]() {
    ++asked;
    return true;
  });
  stream.write("y", 1).wait(f.waitScope);
  f.waitScope.poll();
  EXPECT_EQ(asked, static_cast<int>(BufferedStream::MAX_FLUSH_DEFERRALS));
  ASSERT_EQ(fake.writes.size(), 2u);
  EXPECT_EQ(fake.writes[1], "y");
}

TEST(BufferedStream, RefusesAncillaryMessages) {
  Fixture f;
  BufferedStream stream(kj::heap<FakeStream>());
  KJ_IF_MAYBE(e, kj::runCatchingExceptions(
                     [&]() { stream.registerAncillaryMessageHandler([](auto) {}); })) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::UNIMPLEMENTED);
  } else {
    ADD_FAILURE() << "ancillary messages were accepted";
  }
}

// --- Over a real socketpair ---

// Counts the calls BufferedStream makes on the socket.
class CountingStream final : public ForwardingStream {
 public:
  explicit CountingStream(kj::Own<kj::AsyncIoStream> inner) : ForwardingStream(kj::mv(inner)) {}
  size_t reads = 0;
  size_t writes = 0;

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    ++reads;
    return ForwardingStream::tryRead(buffer, minBytes, maxBytes);
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    ++writes;
    return ForwardingStream::write(buffer, size);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    ++writes;
    return ForwardingStream::write(pieces);
  }
};

// Answers status() with a version that is large every tenth call.
class StatusVault final : public rpc::Vault::Server {
 public:
  uint32_t calls = 0;

 protected:
  kj::Promise<void> status(StatusContext context) override {
    auto status = context.getResults().initStatus();
    ++calls;
    status.setConnections(calls);
    if (calls % 10 == 0) {
      std::string big(100 * 1024, static_cast<char>('a' + calls / 10));
      status.setVersion(big.c_str());
    } else {
      status.setVersion("small");
    }
    return kj::READY_NOW;
  }
};

struct Side {
  Side(kj::Own<kj::AsyncIoStream> socket, capnp::rpc::twoparty::Side side)
      : counter(kj::heap<CountingStream>(kj::mv(socket))),
        counted(*counter),
        stream(kj::mv(counter)),
        network(stream, side) {
    stream.holdFlushWhile([this]() { return network.getCurrentQueueCount() > 0; });
  }
  kj::Own<CountingStream> counter;
  CountingStream& counted;
  BufferedStream stream;
  capnp::TwoPartyVatNetwork network;
};

TEST(BufferedStream, CarriesCapnpRpcOverASocketpairWithFewerSystemCalls) {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  Side server(kj::mv(pipe.ends[0]), capnp::rpc::twoparty::Side::SERVER);
  Side client(kj::mv(pipe.ends[1]), capnp::rpc::twoparty::Side::CLIENT);
  auto vault = kj::heap<StatusVault>();
  auto& impl = *vault;
  auto serverRpc = capnp::makeRpcServer(server.network, kj::mv(vault));
  auto clientRpc = capnp::makeRpcClient(client.network);
  capnp::word scratch[4];
  memset(scratch, 0, sizeof(scratch));
  capnp::MallocMessageBuilder hostIdMessage(scratch);
  auto hostId = hostIdMessage.getRoot<capnp::rpc::twoparty::VatId>();
  hostId.setSide(capnp::rpc::twoparty::Side::SERVER);
  auto cap = clientRpc.bootstrap(hostId).castAs<rpc::Vault>();

  constexpr uint32_t CALLS = 40;
  kj::Vector<kj::Promise<capnp::Response<rpc::Vault::StatusResults>>> calls;
  for (uint32_t i = 0; i < CALLS; i++) calls.add(cap.statusRequest().send());
  auto responses = kj::joinPromises(calls.releaseAsArray()).wait(io.waitScope);

  ASSERT_EQ(responses.size(), CALLS);
  for (uint32_t i = 0; i < CALLS; i++) {
    auto status = responses[i].getStatus();
    EXPECT_EQ(status.getConnections(), i + 1);  // answered in order
    if ((i + 1) % 10 == 0) {
      ASSERT_EQ(status.getVersion().size(), 100u * 1024);
      EXPECT_EQ(status.getVersion()[0], 'a' + (i + 1) / 10);
    } else {
      EXPECT_EQ(status.getVersion(), "small");
    }
  }
  EXPECT_EQ(impl.calls, CALLS);
  // Bootstrap, 40 calls and their Finish messages: two reads each without the buffer.
  EXPECT_LT(server.counted.reads, CALLS);
  EXPECT_LT(client.counted.writes, CALLS);
  EXPECT_LT(server.counted.writes, CALLS);
}

TEST(BufferedStream, ForwardsPeerCredentials) {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  BufferedStream stream(kj::mv(pipe.ends[0]));

  struct ucred cred;
  kj::uint length = sizeof(cred);
  stream.getsockopt(SOL_SOCKET, SO_PEERCRED, &cred, &length);
  ASSERT_EQ(length, sizeof(cred));
  EXPECT_EQ(cred.uid, getuid());
  EXPECT_EQ(cred.pid, getpid());
  int type = 0;
  length = sizeof(type);
  stream.getsockopt(SOL_SOCKET, SO_TYPE, &type, &length);
  EXPECT_EQ(type, SOCK_STREAM);
}

}  // namespace
}  // namespace credvault::ipc
