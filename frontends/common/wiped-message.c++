#include "wiped-message.h"

#include <string.h>

namespace credvault::frontends {

capnp::MessageBuilder& WipedMessage::builder() {
  if (message_.get() == nullptr) {
    first_ = kj::heapArray<capnp::word>(firstWords_);
    memset(first_.begin(), 0, first_.asBytes().size());  // MallocMessageBuilder requires zeros
    message_ = kj::heap<capnp::MallocMessageBuilder>(first_);
  }
  return *message_;
}

WipedMessage::~WipedMessage() noexcept(false) {
  if (message_.get() == nullptr) return;
  for (auto segment : message_->getSegmentsForOutput()) {
    explicit_bzero(const_cast<capnp::word*>(segment.begin()), segment.asBytes().size());
  }
  message_ = nullptr;
  if (first_.size() > 0) explicit_bzero(first_.begin(), first_.asBytes().size());
}

}  // namespace credvault::frontends
