// credvault-gateway — text that may be a password, ticket, token or secret.
//
// Move-only; wiped (explicit_bzero) when destroyed or reassigned; read only through the
// greppable reveal(). Has no stringifier, so it cannot reach KJ_LOG, KJ_REQUIRE or kj::str
// by accident. The gateway has no libsodium (it links ipc/ only), hence explicit_bzero.

#pragma once

#include <kj/string.h>
#include <string.h>

namespace credvault::frontends {

class SensitiveText {
 public:
  SensitiveText() : text_(kj::heapString("")) {}
  explicit SensitiveText(kj::StringPtr text) : text_(kj::heapString(text)) {}
  explicit SensitiveText(kj::String&& text) : text_(kj::mv(text)) {}
  SensitiveText(SensitiveText&& other) = default;
  SensitiveText& operator=(SensitiveText&& other) {
    wipe();
    text_ = kj::mv(other.text_);
    return *this;
  }
  ~SensitiveText() { wipe(); }

  kj::StringPtr reveal() const { return text_; }
  size_t size() const { return text_.size(); }
  SensitiveText clone() const { return SensitiveText(text_.asPtr()); }

 private:
  void wipe() {
    if (text_.size() > 0) explicit_bzero(text_.begin(), text_.size());
  }
  kj::String text_;
};

}  // namespace credvault::frontends
