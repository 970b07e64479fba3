// credvault — the vault's typed errors.
//
// Core reports a refused or failed operation by throwing VaultError with a code the RPC
// layer maps 1:1 onto rpc::ErrorCode, the field at fault, and a message for humans.
// Security invariant: messages and fields never carry a secret, password, ticket, public
// value or comment — only names of fields, ids and limits.

#pragma once

#include <kj/string.h>
#include <exception>
#include <stdint.h>

namespace credvault::core {

// The values are rpc::ErrorCode's ordinals (ipc/credvault.capnp): core may not see ipc/, so the
// daemon converts with a cast that static_asserts every value (daemon/rpc-convert.h), and the
// names, messages and statuses of each code live once, in ipc/errors.h.
enum class ErrorCode : uint16_t {
  INTERNAL = 0,
  NOT_AUTHENTICATED = 1,
  PERMISSION_DENIED = 2,
  INVALID_ARGUMENT = 3,
  NOT_FOUND = 4,
  LIMIT_EXCEEDED = 5,
  UNAVAILABLE = 6,
  INTEGRITY = 7,
  CONFLICT = 8,
  THROTTLED = 9,
};

class VaultError : public std::exception {
 public:
  VaultError(ErrorCode code, kj::StringPtr field, kj::String message)
      : code_(code), field_(kj::heapString(field)), message_(kj::mv(message)) {}
  VaultError(ErrorCode code, kj::StringPtr field, kj::String message, uint32_t retryAfterSeconds)
      : code_(code),
        field_(kj::heapString(field)),
        message_(kj::mv(message)),
        retryAfterSeconds_(retryAfterSeconds) {}
  VaultError(const VaultError& other)
      : code_(other.code_),
        field_(kj::heapString(other.field_)),
        message_(kj::heapString(other.message_)),
        retryAfterSeconds_(other.retryAfterSeconds_) {}

  ErrorCode code() const { return code_; }
  kj::StringPtr field() const { return field_; }
  kj::StringPtr message() const { return message_; }
  const char* what() const noexcept override { return message_.cStr(); }
  // THROTTLED: seconds until an attempt can succeed (HTTP Retry-After); 0 when not said.
  uint32_t retryAfterSeconds() const { return retryAfterSeconds_; }

 private:
  ErrorCode code_;
  kj::String field_;
  kj::String message_;
  uint32_t retryAfterSeconds_ = 0;
};

[[noreturn]] void fail(ErrorCode code, kj::StringPtr field, kj::String message);

template<typename... Params>
[[noreturn]] void invalid(kj::StringPtr field, Params&&... message) {
  fail(ErrorCode::INVALID_ARGUMENT, field, kj::str(kj::fwd<Params>(message)...));
}

}  // namespace credvault::core
