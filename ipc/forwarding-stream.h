// credvault — a stream that passes every call to another one.
//
// For wrappers that change one or two things of a stream and pass the rest on: the gateway's
// PrefixedStream (frontends/http/tls.c++: the byte read to tell TLS from plain HTTP, returned
// first) and tests' streams that count calls or stop reading. A subclass overrides what it
// changes and calls inner() for the rest.
//
// Forwarded: reads, writes, whenWriteDisconnected, shutdownWrite, abortRead and the socket
// options and names. Not forwarded, so that they go through this stream's own reads and
// writes (KJ's defaults): pumpTo, tryPumpFrom, tryGetLength; nor getFd or ancillary messages.
// Thread-compatible, like the stream it wraps.

#pragma once

#include <kj/async-io.h>

namespace credvault::ipc {

class ForwardingStream : public kj::AsyncIoStream {
 public:
  explicit ForwardingStream(kj::Own<kj::AsyncIoStream> inner) : inner_(kj::mv(inner)) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    return inner_->tryRead(buffer, minBytes, maxBytes);
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    return inner_->write(buffer, size);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner_->write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner_->whenWriteDisconnected(); }
  void shutdownWrite() override { inner_->shutdownWrite(); }
  void abortRead() override { inner_->abortRead(); }
  void getsockopt(int level, int option, void* value, kj::uint* length) override {
    inner_->getsockopt(level, option, value, length);
  }
  void setsockopt(int level, int option, const void* value, kj::uint length) override {
    inner_->setsockopt(level, option, value, length);
  }
  void getsockname(struct sockaddr* addr, kj::uint* length) override {
    inner_->getsockname(addr, length);
  }
  void getpeername(struct sockaddr* addr, kj::uint* length) override {
    inner_->getpeername(addr, length);
  }

 protected:
  kj::AsyncIoStream& inner() { return *inner_; }

 private:
  kj::Own<kj::AsyncIoStream> inner_;
};

}  // namespace credvault::ipc
