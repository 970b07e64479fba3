// credvault-gateway — a Cap'n Proto message that wipes its segments when destroyed.
//
// Holds a carrier that may contain a SecretValue: the rpc::Credential a SOAP or REST binder
// fills for Save (sent to the daemon as it is), and the list a Get returns (rendered from
// as it is). The gateway has no libsodium, so this is explicit_bzero over every segment, as
// SensitiveText does for strings. Built on first use; move-only.

#pragma once

#include <capnp/any.h>
#include <capnp/message.h>
#include <kj/memory.h>

namespace credvault::frontends {

class WipedMessage {
 public:
  // `firstSegmentWords`: the size of the first segment (one heap block); a message that
  // outgrows it gets further segments, wiped too.
  explicit WipedMessage(size_t firstSegmentWords = 128) : firstWords_(firstSegmentWords) {}
  ~WipedMessage() noexcept(false);
  WipedMessage(WipedMessage&&) = default;
  WipedMessage& operator=(WipedMessage&&) = delete;
  KJ_DISALLOW_COPY(WipedMessage);

  // The root (initialised empty on first use). Reading a root that was never set gives the
  // struct's defaults.
  template<typename T>
  typename T::Builder root() {
    return builder().getRoot<T>();
  }
  template<typename T>
  typename T::Reader read() const {
    return const_cast<WipedMessage*>(this)->builder().getRoot<T>().asReader();
  }

 private:
  size_t firstWords_;
  kj::Array<capnp::word> first_;  // declared before message_: outlives it
  kj::Own<capnp::MallocMessageBuilder> message_;

  capnp::MessageBuilder& builder();
};

}  // namespace credvault::frontends
