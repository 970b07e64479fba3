// credvault — fewer system calls on the daemon link.
//
// Cap'n Proto 0.9.2's TwoPartyVatNetwork reads every message with two reads (the segment
// table, then the body) and writes every message with its own writev; a gateway request is
// five messages to the daemon and two back. BufferedStream sits between the network and the
// socket (docs/performance.md §12 has the figures):
//
//  - Reads are served from a buffer refilled with one read of as much as the kernel has, so a
//    message that arrived together with the previous one costs no system call.
//  - Writes below COPY_WRITE_LIMIT are copied into a batch and resolve at once; the batch goes
//    out with one writev on a later turn (evalLater), so the messages sent meanwhile share it.
//    They must resolve at once: capnp starts a message's write only when the previous write has
//    resolved, so writes that waited for the kernel could never share a batch. capnp uses the
//    promise only for that order and to learn of failures, which reach it through the read side
//    instead (below). Larger writes join the batch without a copy and resolve when it is written.
//
// capnp hands its queued messages over one per pass over the event queue (each write continues
// breadth-first), so a batch flushed after one pass would hold one message. holdFlushWhile()
// lets the flush wait while the network still has messages queued, a few passes at most.
//
// Backpressure: while a batch is with the kernel (its buffer was full), further writes join the
// next batch but resolve only when that is written, so the queue cannot grow without bound.
//
// Failures: a failed write rejects every write still waiting, every later write, the pending
// read and every later read. capnp turns a failed write into a failed read itself, but no longer
// sees the failure, as its write had resolved. Bytes still queued when the stream is destroyed
// are dropped; shutdownWrite() sends them first.
//
// Transport limits (enforce(), opt-in; the daemon's per-connection budget, docs/limits.md): the
// stream follows capnp's framing (segment table, then segments) in the bytes it receives, so it
// knows whether a message is in progress without trusting the peer's declared size.
//  - A message that declares more than `maxMessageBytes` fails the stream at once.
//  - A message must arrive whole within `messageTimeout` of its first byte: capnp allocates the
//    declared size as soon as it has read the segment table, so a half-sent message costs its
//    full size while it waits.
//  - With no message in progress and nothing being written, the connection may stay silent for
//    `idleTimeout` (null: for ever).
//  - A batch the kernel does not take within `writeTimeout` (the peer reads nothing) fails the
//    stream.
//  - While more than `maxBacklogBytes` wait to be written (here and in the caller's own queue),
//    reads wait: the peer's requests stay in the kernel until it reads its answers.
// A limit that is reached fails the stream with a DISCONNECTED exception; limitReached() says
// which. The time a read waited for the backlog does not count against the peer.
// One timer per stream watches every deadline (not one per read or write: at 64 calls in flight
// those cost ~10 % of the daemon's Get throughput). While something is in progress it wakes at
// the earliest deadline but at least every 1/8 of the shortest limit, so a deadline that starts
// meanwhile (at least 8 such periods away) is met exactly; with nothing in progress it sleeps
// until the idle deadline, and the next message or write wakes it.
//
// Not supported: passing file descriptors (this is an AsyncIoStream, not a capability stream)
// and ancillary messages, whose place in the byte stream reading ahead would lose.
// Thread-compatible: use it from the thread whose event loop created it.

#pragma once

#include <kj/async-io.h>
#include <kj/timer.h>
#include <kj/vector.h>

namespace credvault::ipc {

class BufferedStream final : public kj::AsyncIoStream, private kj::TaskSet::ErrorHandler {
 public:
  // Under load a refill brings a few KiB (the gateway's messages are 100-300 bytes); a larger
  // read goes straight into the caller's memory. 8 KiB per connection: 32 MiB at the daemon's
  // MAX_CONNECTIONS.
  static constexpr size_t DEFAULT_READ_BUFFER_BYTES = 8 * 1024;
  // Writes smaller than this are copied; larger ones are written from the caller's memory.
  static constexpr size_t COPY_WRITE_LIMIT = 64 * 1024;
  // Past this many queued bytes, writes wait for their batch even if none is being written.
  static constexpr size_t MAX_BATCH_BYTES = 256 * 1024;
  // The most passes over the event queue a flush waits for holdFlushWhile(): bounds the delay
  // a message can see under load (4 already gave most of the gain, docs/performance.md §12).
  static constexpr kj::uint MAX_FLUSH_DEFERRALS = 8;

  struct Limits {
    kj::Duration messageTimeout = 10 * kj::SECONDS;
    kj::Maybe<kj::Duration> idleTimeout = 600 * kj::SECONDS;  // null: never
    kj::Duration writeTimeout = 30 * kj::SECONDS;
    size_t maxBacklogBytes = 4 << 20;
    // Segment bytes of one incoming message (capnp's own limit, traversalLimitInWords, also
    // caps what the caller may send, so it cannot be the place for a small one).
    uint64_t maxMessageBytes = uint64_t(1) << 20;
  };

  // Takes `inner` over. Take the peer's identity (SO_PEERCRED) from the AuthenticatedStream
  // first: getsockopt() and getpeername() are forwarded, but this is not an AuthenticatedStream.
  explicit BufferedStream(kj::Own<kj::AsyncIoStream> inner,
                          size_t readBufferBytes = DEFAULT_READ_BUFFER_BYTES);
  ~BufferedStream() noexcept(false);
  KJ_DISALLOW_COPY(BufferedStream);

  // While `moreComing()` is true (for capnp: TwoPartyVatNetwork::getCurrentQueueCount() > 0)
  // a flush waits one more pass over the event queue, at most MAX_FLUSH_DEFERRALS. It is not
  // asked while a write waits for the batch, as the writer is then held up. `moreComing` must
  // stay callable while the stream lives.
  void holdFlushWhile(kj::Function<bool()> moreComing);

  // Applies `limits`, timed by `timer`. `queuedUpstream()` is what the caller holds for this
  // stream and has not yet written (for capnp: TwoPartyVatNetwork::getCurrentQueueSize()).
  // `callsInProgress()`, when given, says the peer is waiting for answers the caller is still
  // working on (a queued password check, a commit): such a connection is not idle. Both must
  // outlive the stream. Call before the first read.
  void enforce(kj::Timer& timer, Limits limits, kj::Function<size_t()> queuedUpstream,
               kj::Maybe<kj::Function<bool()>> callsInProgress = nullptr);

  // Bytes written to this stream that the peer has not yet taken (queued here or being
  // written); the caller's own queue is not included.
  size_t unsentBytes() const;

  // After the stream failed because of a limit: which one ("message-timeout", "idle-timeout",
  // "write-timeout", "message-too-large"); null otherwise. For the caller's log.
  kj::Maybe<kj::StringPtr> limitReached() const { return limitReached_; }

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override;
  kj::Promise<void> write(const void* buffer, size_t size) override;
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override;
  kj::Promise<void> whenWriteDisconnected() override;
  void shutdownWrite() override;
  void abortRead() override;
  void registerAncillaryMessageHandler(
      kj::Function<void(kj::ArrayPtr<kj::AncillaryMessage>)> fn) override;

  void getsockopt(int level, int option, void* value, kj::uint* length) override;
  void setsockopt(int level, int option, const void* value, kj::uint length) override;
  void getsockname(struct sockaddr* addr, kj::uint* length) override;
  void getpeername(struct sockaddr* addr, kj::uint* length) override;
  // getFd() is deliberately not forwarded: using the descriptor directly would bypass the
  // buffered bytes.

 private:
  // Bytes for one writev, in order: copied bytes, with borrowed pieces spliced in.
  struct Batch {
    struct Borrowed {
      size_t at;  // goes before copied[at]
      kj::ArrayPtr<const kj::byte> bytes;
    };
    kj::Vector<kj::byte> copied;
    kj::Vector<Borrowed> borrowed;
    // Writes that resolve (or fail) with this batch.
    kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> waiters;
    size_t size = 0;

    // The link carries passwords and secret values: copied bytes are wiped when the batch
    // is dropped or replaced (as the gateway wipes its HTTP buffers).
    Batch() = default;
    Batch(Batch&&) = default;
    Batch& operator=(Batch&& other) {
      wipe();
      copied = kj::mv(other.copied);
      borrowed = kj::mv(other.borrowed);
      waiters = kj::mv(other.waiters);
      size = other.size;
      return *this;
    }
    ~Batch() noexcept(false) { wipe(); }
    void wipe();

    kj::Array<kj::ArrayPtr<const kj::byte>> pieces() const;
  };

  // Follows capnp's stream framing in the bytes received: whether a message is in progress.
  class FrameTracker {
   public:
    // True when `bytes` completed at least one message.
    bool feed(kj::ArrayPtr<const kj::byte> bytes);
    bool inMessage() const { return have_ > 0 || tableLeft_ > 0 || skip_ > 0; }
    // The most segment bytes any message has declared so far (as much of its table as came).
    uint64_t largestDeclared() const { return largest_; }

   private:
    kj::byte word_[8];
    kj::uint have_ = 0;       // bytes of the first word (segment count, first size)
    uint64_t tableLeft_ = 0;  // segment sizes still to come
    kj::byte entry_[4];
    kj::uint entryHave_ = 0;
    uint64_t pad_ = 0;
    uint64_t bodyWords_ = 0;
    uint64_t skip_ = 0;  // padding and body bytes still to come
    uint64_t largest_ = 0;
  };

  kj::Own<kj::AsyncIoStream> inner_;
  kj::Array<kj::byte> readBuffer_;
  size_t readStart_ = 0;
  size_t readEnd_ = 0;
  // Cancels the pending inner read when a write fails.
  kj::Canceler readCanceler_;

  Batch queued_;
  // The batch the inner stream is writing, null when none.
  kj::Own<Batch> writing_;
  bool flushScheduled_ = false;
  kj::uint deferrals_ = 0;
  kj::Maybe<kj::Function<bool()>> moreComing_;
  bool shutdownRequested_ = false;
  bool shutdownDone_ = false;
  kj::Maybe<kj::Exception> error_;
  // enforce(): null timer when no limits apply.
  kj::Timer* timer_ = nullptr;
  Limits limits_;
  kj::Maybe<kj::Function<size_t()>> queuedUpstream_;
  FrameTracker frames_;
  kj::Maybe<kj::Function<bool()>> callsInProgress_;
  kj::TimePoint messageStart_ = kj::origin<kj::TimePoint>();
  kj::TimePoint lastActivity_ = kj::origin<kj::TimePoint>();
  kj::TimePoint writeStart_ = kj::origin<kj::TimePoint>();  // of the batch being written
  bool backlogWait_ = false;  // a read waits for the backlog: the peer's clocks stand still
  kj::Duration period_ = kj::SECONDS;  // the watcher's longest step while something is in progress
  bool sleeping_ = true;               // the watcher waits for the idle deadline, or nothing
  // Cancels the inner write when the stream fails (a write timeout), before its batch goes.
  kj::Canceler writeCanceler_;
  // A read waiting for the backlog to drain: woken when a batch has been written.
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> drained_;
  kj::Maybe<kj::StringPtr> limitReached_;
  // The deadline watcher (enforce()).
  kj::Promise<void> watcher_ = nullptr;

  // Last member: destroyed first, cancelling the flush and the inner write that use the rest.
  kj::TaskSet tasks_;

  kj::Promise<size_t> readFromBuffer(kj::byte* dst, size_t minBytes, size_t maxBytes, size_t done);
  kj::Promise<size_t> gatedRead(kj::byte* dst, size_t minBytes, size_t maxBytes);
  kj::Promise<size_t> innerRead(kj::byte* dst, size_t minBytes, size_t maxBytes);
  struct Deadline {
    kj::TimePoint at;
    kj::StringPtr which;  // limitReached()
    kj::StringPtr why;    // the exception's description
  };
  kj::Maybe<Deadline> deadline();
  kj::Promise<void> arm(kj::TimePoint at);
  kj::Promise<void> watch();
  void wake();
  bool backlogged();
  kj::Promise<void> whenBacklogDrains();
  kj::Exception limitException(kj::StringPtr which, kj::StringPtr description);
  void scheduleFlush();
  void flushEvent();
  void flush();
  void fail(kj::Exception&& exception);
  void taskFailed(kj::Exception&& exception) override;
};

}  // namespace credvault::ipc
