#include "buffered-stream.h"

#include <kj/debug.h>
#include <string.h>

namespace credvault::ipc {

BufferedStream::BufferedStream(kj::Own<kj::AsyncIoStream> inner, size_t readBufferBytes)
    : inner_(kj::mv(inner)), readBuffer_(kj::heapArray<kj::byte>(readBufferBytes)), tasks_(*this) {
  KJ_REQUIRE(readBufferBytes > 0);
}

BufferedStream::~BufferedStream() noexcept(false) {
  explicit_bzero(readBuffer_.begin(), readBuffer_.size());
}

void BufferedStream::Batch::wipe() {
  if (copied.size() > 0) explicit_bzero(copied.begin(), copied.size());
}

// ---------------------------------------------------------------------------------------
// Reading

kj::Promise<size_t> BufferedStream::tryRead(void* buffer, size_t minBytes, size_t maxBytes) {
  // Every read asks the backlog, the second of each message included. What the previous
  // message started (its call, dispatched one turn after it was read) has run by the time capnp
  // asks for the next message's body: a read served from the buffer resolves at once, but
  // capnp's continuation is queued behind the events already queued (breadth-first). So a
  // long call's weight stops the next request before its body is read, without a turn of our
  // own per message (an evalLater before each buffered message did the same and cost ~2k
  // instructions per Get at 64 in flight; docs/performance.md §14, perf-11).
  return gatedRead(static_cast<kj::byte*>(buffer), minBytes, maxBytes);
}

kj::Promise<size_t> BufferedStream::gatedRead(kj::byte* dst, size_t minBytes, size_t maxBytes) {
  KJ_IF_MAYBE(e, error_) { return kj::cp(*e); }
  if (timer_ != nullptr && backlogged()) {
    backlogWait_ = true;
    return readCanceler_.wrap(whenBacklogDrains()).then([this, dst, minBytes, maxBytes]() {
      // The wait was ours, not the peer's: its clocks start again.
      backlogWait_ = false;
      messageStart_ = lastActivity_ = timer_->now();
      if (frames_.inMessage()) wake();
      return readFromBuffer(dst, minBytes, maxBytes, 0);
    });
  }
  return readFromBuffer(dst, minBytes, maxBytes, 0);
}

kj::Promise<size_t> BufferedStream::readFromBuffer(kj::byte* dst, size_t minBytes, size_t maxBytes,
                                                   size_t done) {
  size_t n = kj::min(readEnd_ - readStart_, maxBytes - done);
  if (n > 0) {
    memcpy(dst + done, readBuffer_.begin() + readStart_, n);
    readStart_ += n;
    done += n;
  }
  if (done >= minBytes) return done;

  // The buffer is empty.
  // Everything buffered was handed out: wipe it (it may be a secret in transit).
  explicit_bzero(readBuffer_.begin(), readEnd_);
  readStart_ = readEnd_ = 0;
  if (maxBytes - done >= readBuffer_.size()) {
    // A large message body: straight into the caller's memory, as the buffer would only add a
    // copy.
    return innerRead(dst + done, minBytes - done, maxBytes - done).then([done](size_t m) {
      return done + m;
    });
  }
  // minBytes 1: whatever the kernel has, so the next messages cost no system call.
  return innerRead(readBuffer_.begin(), 1, readBuffer_.size())
      .then([this, dst, minBytes, maxBytes, done](size_t m) -> kj::Promise<size_t> {
        if (m == 0) return done;  // EOF: fewer than minBytes says so
        readEnd_ = m;
        return readFromBuffer(dst, minBytes, maxBytes, done);
      });
}

kj::Promise<size_t> BufferedStream::innerRead(kj::byte* dst, size_t minBytes, size_t maxBytes) {
  auto read = inner_->tryRead(dst, minBytes, maxBytes);
  if (timer_ == nullptr) return readCanceler_.wrap(kj::mv(read));
  return readCanceler_.wrap(read.then([this, dst](size_t m) -> kj::Promise<size_t> {
    bool wasIn = frames_.inMessage();
    bool completed = frames_.feed(kj::arrayPtr(dst, m));
    auto now = timer_->now();
    lastActivity_ = now;
    if ((completed || !wasIn) && frames_.inMessage()) {
      messageStart_ = now;
      wake();
    }
    // Refused on its segment table, before the reader allocates.
    if (frames_.largestDeclared() > limits_.maxMessageBytes) {
      return limitException("message-too-large",
                            "the peer sent a message past the transport limit");
    }
    return m;
  }));
}

// The earliest deadline that applies now, if any.
kj::Maybe<BufferedStream::Deadline> BufferedStream::deadline() {
  kj::Maybe<Deadline> best;
  auto consider = [&](kj::TimePoint at, kj::StringPtr which, kj::StringPtr why) {
    KJ_IF_MAYBE(b, best) {
      if (b->at <= at) return;
    }
    best = Deadline{at, which, why};
  };
  if (writing_.get() != nullptr) {
    consider(writeStart_ + limits_.writeTimeout, "write-timeout",
             "the peer did not read its answers in time");
  }
  if (backlogWait_) return best;
  if (frames_.inMessage()) {
    consider(messageStart_ + limits_.messageTimeout, "message-timeout",
             "the peer did not finish sending a message in time");
  } else KJ_IF_MAYBE(idle, limits_.idleTimeout) {
    // Answers being written, or still being worked on, are traffic too.
    bool busy = false;
    KJ_IF_MAYBE(calls, callsInProgress_) { busy = (*calls)(); }
    if (writing_.get() == nullptr && !busy) {
      consider(lastActivity_ + *idle, "idle-timeout", "the connection was idle for too long");
    }
  }
  return best;
}

kj::Promise<void> BufferedStream::arm(kj::TimePoint at) {
  return timer_->atTime(at).then([this]() { return watch(); });
}

// Fails the stream if a deadline has passed; otherwise returns the next wake-up.
kj::Promise<void> BufferedStream::watch() {
  if (error_ != nullptr) return kj::READY_NOW;
  auto now = timer_->now();
  auto next = deadline();
  KJ_IF_MAYBE(d, next) {
    if (d->at <= now) {
      fail(limitException(d->which, d->why));
      return kj::READY_NOW;
    }
  }
  if (writing_.get() != nullptr || frames_.inMessage() || backlogWait_) {
    // A deadline that starts meanwhile is at least 8 steps away: met exactly.
    sleeping_ = false;
    auto at = now + period_;
    KJ_IF_MAYBE(d, next) {
      if (d->at < at) at = d->at;
    }
    return arm(at);
  }
  // Nothing in progress: the next message or write wakes the watcher (wake()).
  sleeping_ = true;
  KJ_IF_MAYBE(d, next) { return arm(d->at); }
  // No deadline (calls in progress, or no idle limit): look again after a while, in case the
  // calls ended without an answer to write.
  KJ_IF_MAYBE(idle, limits_.idleTimeout) { return arm(now + *idle); }
  return kj::NEVER_DONE;
}

void BufferedStream::wake() {
  if (!sleeping_ || timer_ == nullptr || error_ != nullptr) return;
  sleeping_ = false;
  watcher_ = arm(timer_->now() + period_);
}

kj::Exception BufferedStream::limitException(kj::StringPtr which, kj::StringPtr description) {
  if (limitReached_ == nullptr) limitReached_ = which;
  return kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
                       kj::heapString(description));
}

size_t BufferedStream::unsentBytes() const {
  return queued_.size + (writing_.get() != nullptr ? writing_->size : 0);
}

bool BufferedStream::backlogged() {
  size_t bytes = unsentBytes();
  KJ_IF_MAYBE(upstream, queuedUpstream_) { bytes += (*upstream)(); }
  return bytes > limits_.maxBacklogBytes;
}

kj::Promise<void> BufferedStream::whenBacklogDrains() {
  if (!backlogged()) return kj::READY_NOW;
  // Woken when a batch has been written; the caller's queue shrinks a few turns after that
  // (its write continuations), so a short timer catches what the wake-up was too early for.
  auto paf = kj::newPromiseAndFulfiller<void>();
  drained_ = kj::mv(paf.fulfiller);
  return paf.promise.exclusiveJoin(timer_->afterDelay(5 * kj::MILLISECONDS))
      .then([]() { return kj::evalLater([]() {}); })
      .then([this]() { return whenBacklogDrains(); });
}

void BufferedStream::enforce(kj::Timer& timer, Limits limits, kj::Function<size_t()> queuedUpstream,
                             kj::Maybe<kj::Function<bool()>> callsInProgress) {
  timer_ = &timer;
  limits_ = limits;
  queuedUpstream_ = kj::mv(queuedUpstream);
  callsInProgress_ = kj::mv(callsInProgress);
  messageStart_ = lastActivity_ = timer.now();
  auto shortest = kj::min(limits_.messageTimeout, limits_.writeTimeout);
  KJ_IF_MAYBE(idle, limits_.idleTimeout) { shortest = kj::min(shortest, *idle); }
  period_ = kj::max(shortest / 8, 1 * kj::MILLISECONDS);
  watcher_ = watch();
}

bool BufferedStream::FrameTracker::feed(kj::ArrayPtr<const kj::byte> bytes) {
  auto le32 = [](const kj::byte* p) -> uint64_t {
    return uint64_t(p[0]) | uint64_t(p[1]) << 8 | uint64_t(p[2]) << 16 | uint64_t(p[3]) << 24;
  };
  bool completed = false;
  size_t i = 0;
  while (i < bytes.size()) {
    if (skip_ > 0) {
      size_t k = kj::min(skip_, bytes.size() - i);
      skip_ -= k;
      i += k;
      if (skip_ == 0) completed = true;
    } else if (tableLeft_ > 0) {
      entry_[entryHave_++] = bytes[i++];
      if (entryHave_ == 4) {
        entryHave_ = 0;
        bodyWords_ += le32(entry_);
        largest_ = kj::max(largest_, bodyWords_ * 8);
        if (--tableLeft_ == 0) {
          skip_ = pad_ + bodyWords_ * 8;
          if (skip_ == 0) completed = true;
        }
      }
    } else {
      word_[have_++] = bytes[i++];
      if (have_ == 8) {
        have_ = 0;
        uint64_t segments = le32(word_) + 1;
        bodyWords_ = le32(word_ + 4);
        largest_ = kj::max(largest_, bodyWords_ * 8);
        tableLeft_ = segments - 1;
        // The table (count and sizes, 4 bytes each) is padded to a whole word.
        pad_ = segments % 2 == 0 ? 4 : 0;
        if (tableLeft_ == 0) {
          skip_ = pad_ + bodyWords_ * 8;
          if (skip_ == 0) completed = true;
        }
      }
    }
  }
  return completed;
}

void BufferedStream::abortRead() {
  inner_->abortRead();
}

void BufferedStream::registerAncillaryMessageHandler(
    kj::Function<void(kj::ArrayPtr<kj::AncillaryMessage>)> fn) {
  // Control messages belong to a place in the byte stream, which reading ahead loses.
  KJ_UNIMPLEMENTED("BufferedStream does not pass ancillary messages (file descriptors)");
}

// ---------------------------------------------------------------------------------------
// Writing

kj::Promise<void> BufferedStream::write(const void* buffer, size_t size) {
  auto piece = kj::arrayPtr(static_cast<const kj::byte*>(buffer), size);
  return write(kj::arrayPtr(&piece, 1));
}

kj::Promise<void> BufferedStream::write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) {
  KJ_IF_MAYBE(e, error_) { return kj::cp(*e); }
  KJ_REQUIRE(!shutdownRequested_, "write after shutdownWrite()");
  size_t size = 0;
  for (auto& piece : pieces) size += piece.size();
  if (size == 0) return kj::READY_NOW;

  // Only the descriptors of borrowed pieces are kept, so `pieces` itself may go at once.
  bool borrow = size >= COPY_WRITE_LIMIT;
  for (auto& piece : pieces) {
    if (piece.size() == 0) continue;
    if (borrow) {
      queued_.borrowed.add(Batch::Borrowed{queued_.copied.size(), piece});
    } else {
      queued_.copied.addAll(piece);
    }
  }
  queued_.size += size;
  scheduleFlush();

  // A copied write may resolve now: its bytes no longer depend on the caller. It waits for its
  // batch when the caller's memory is used, and for backpressure when the kernel is not taking
  // bytes as fast as they come (a batch is still being written) or the queue is long.
  if (borrow || writing_.get() != nullptr || queued_.size > MAX_BATCH_BYTES) {
    auto paf = kj::newPromiseAndFulfiller<void>();
    queued_.waiters.add(kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }
  return kj::READY_NOW;
}

void BufferedStream::scheduleFlush() {
  // While a batch is being written, its completion starts the next one.
  if (flushScheduled_ || writing_.get() != nullptr) return;
  flushScheduled_ = true;
  // evalLater runs after the events queued now, so what they send joins the batch; flushEvent()
  // may wait a few passes more (holdFlushWhile).
  deferrals_ = 0;
  tasks_.add(kj::evalLater([this]() { flushEvent(); }));
}

void BufferedStream::flushEvent() {
  KJ_IF_MAYBE(more, moreComing_) {
    // A write that waits for this batch holds the writer up: then nothing more is coming.
    if (deferrals_ < MAX_FLUSH_DEFERRALS && queued_.waiters.empty() && (*more)()) {
      ++deferrals_;
      tasks_.add(kj::evalLater([this]() { flushEvent(); }));
      return;
    }
  }
  flushScheduled_ = false;
  flush();
}

void BufferedStream::holdFlushWhile(kj::Function<bool()> moreComing) {
  moreComing_ = kj::mv(moreComing);
}

void BufferedStream::flush() {
  if (writing_.get() != nullptr || error_ != nullptr) return;
  if (queued_.size == 0) {
    if (shutdownRequested_ && !shutdownDone_) {
      shutdownDone_ = true;
      inner_->shutdownWrite();
    }
    return;
  }
  writing_ = kj::heap<Batch>(kj::mv(queued_));
  queued_ = Batch();
  auto pieces = writing_->pieces();
  auto promise = kj::evalNow([&]() { return inner_->write(pieces); });
  if (timer_ != nullptr) {
    // The watcher fails the stream when the kernel does not take the batch in time.
    writeStart_ = lastActivity_ = timer_->now();
    promise = writeCanceler_.wrap(kj::mv(promise));
    wake();
  }
  tasks_.add(promise.attach(kj::mv(pieces))
                 .then(
                     [this]() {
                       auto done = kj::mv(writing_);
                       for (auto& waiter : done->waiters) waiter->fulfill();
                       if (timer_ != nullptr) lastActivity_ = timer_->now();
                       KJ_IF_MAYBE(d, drained_) {
                         (*d)->fulfill();
                         drained_ = nullptr;
                       }
                       // What was queued meanwhile has waited long enough: write it now.
                       flush();
                     },
                     [this](kj::Exception&& e) { fail(kj::mv(e)); }));
}

kj::Array<kj::ArrayPtr<const kj::byte>> BufferedStream::Batch::pieces() const {
  kj::Vector<kj::ArrayPtr<const kj::byte>> out(borrowed.size() * 2 + 1);
  size_t pos = 0;
  for (auto& b : borrowed) {
    if (b.at > pos) out.add(copied.asPtr().slice(pos, b.at));
    out.add(b.bytes);
    pos = b.at;
  }
  if (copied.size() > pos) out.add(copied.asPtr().slice(pos, copied.size()));
  return out.releaseAsArray();
}

void BufferedStream::fail(kj::Exception&& exception) {
  if (error_ == nullptr) error_ = kj::cp(exception);
  KJ_IF_MAYBE(e, error_) {
    if (writing_.get() != nullptr) {
      for (auto& waiter : writing_->waiters) waiter->reject(kj::cp(*e));
    }
    for (auto& waiter : queued_.waiters) waiter->reject(kj::cp(*e));
    // The failed write is over (cancelled first: it reads the batch); flush() writes nothing
    // more after an error.
    writeCanceler_.cancel(*e);
    writing_ = nullptr;
    queued_ = Batch();
    // capnp already saw its write succeed; it must learn of the failure from its read.
    readCanceler_.cancel(*e);
  }
}

void BufferedStream::taskFailed(kj::Exception&& exception) {
  fail(kj::mv(exception));
}

void BufferedStream::shutdownWrite() {
  shutdownRequested_ = true;
  if (shutdownDone_ || error_ != nullptr) return;
  if (writing_.get() == nullptr && queued_.size == 0) {
    shutdownDone_ = true;
    inner_->shutdownWrite();
  }
  // Otherwise flush() shuts down after the last batch.
}

kj::Promise<void> BufferedStream::whenWriteDisconnected() {
  return inner_->whenWriteDisconnected();
}

// ---------------------------------------------------------------------------------------
// Socket queries go to the socket.

void BufferedStream::getsockopt(int level, int option, void* value, kj::uint* length) {
  inner_->getsockopt(level, option, value, length);
}

void BufferedStream::setsockopt(int level, int option, const void* value, kj::uint length) {
  inner_->setsockopt(level, option, value, length);
}

void BufferedStream::getsockname(struct sockaddr* addr, kj::uint* length) {
  inner_->getsockname(addr, length);
}

void BufferedStream::getpeername(struct sockaddr* addr, kj::uint* length) {
  inner_->getpeername(addr, length);
}

}  // namespace credvault::ipc
