// credvault — the vault's typed errors.
//
// An expected refusal (not found, permission denied, invalid argument, limit exceeded,
// conflict, throttled, not authenticated) is a value: a Refusal, returned as a Result<T> or,
// by a check with nothing to return, as kj::Maybe<Refusal> (null = passed). Its code maps 1:1
// onto rpc::ErrorCode; it names the field at fault and carries a message for humans. Every
// public call of core (Vault, Authenticator, Identity, the checks and the policy) returns its
// refusals; nothing in core throws one, and nothing catches one.
//
// What is thrown (docs/design.md "Errors"):
//   - bugs: KJ_REQUIRE/KJ_ASSERT;
//   - storage failures (store::isStorageFailure): a failing disk is not the request's fault,
//     surfaces from any LMDB call and must abort the whole transaction;
//   - damaged data (isIntegrityFailure, below): a record that fails authentication or does
//     not decode is found deep inside decoding and scans, has nothing to do with the request,
//     and must stop the read or write it was found in; threading a result through every
//     decoder would make each a place to forget it.
// The daemon answers the last two `unavailable` and `integrity` at the one place every
// exception lands, and anything else `internal`.
// Security invariant: messages and fields never carry a secret, password, ticket, public
// value or comment — only names of fields, ids and limits.

#pragma once

#include <kj/debug.h>
#include <kj/one-of.h>
#include <kj/string.h>
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

// An expected "no" to a request.
struct Refusal {
  ErrorCode code;
  kj::String field;  // the argument at fault ("publicValue"), or ""
  kj::String message;
  uint32_t retryAfterSeconds = 0;  // THROTTLED: seconds until an attempt can succeed; 0 = not said

  Refusal clone() const {
    return {code, kj::heapString(field), kj::heapString(message), retryAfterSeconds};
  }
};

inline Refusal refuse(ErrorCode code, kj::StringPtr field, kj::String message) {
  return {code, kj::heapString(field), kj::mv(message)};
}
template<typename... Params>
Refusal invalidArgument(kj::StringPtr field, Params&&... message) {
  return refuse(ErrorCode::INVALID_ARGUMENT, field, kj::str(kj::fwd<Params>(message)...));
}

// A value, or the Refusal that stands in for it. Test with ok() or refused() before taking
// either; taking the wrong one is a bug (KJ_REQUIRE, naming the refusal's message: where a
// refusal cannot happen, as for a bench acting as root, value() alone is the assertion).
template<typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(kj::mv(value)) {}
  Result(Refusal refusal) : v_(kj::mv(refusal)) {}

  bool ok() const { return v_.template is<T>(); }
  kj::Maybe<const Refusal&> refused() const {
    if (ok()) return nullptr;
    return v_.template get<Refusal>();
  }
  T& value() & {
    KJ_REQUIRE(ok(), "value() of a refused Result", v_.template get<Refusal>().message);
    return v_.template get<T>();
  }
  T value() && { return kj::mv(value()); }
  Refusal takeRefusal() {
    KJ_REQUIRE(!ok(), "takeRefusal() of a Result that holds a value");
    return kj::mv(v_.template get<Refusal>());
  }

 private:
  kj::OneOf<T, Refusal> v_;
};

// Returns the refusal of a failed check (a kj::Maybe<Refusal>) from the enclosing function,
// whose return type a Refusal converts to (a Result<T>, a kj::Maybe<Refusal>); goes on when
// the check passed.
#define CV_REFUSE_IF(check)                                          \
  do {                                                               \
    KJ_IF_MAYBE(cvRefusal_, check) { return ::kj::mv(*cvRefusal_); } \
  } while (false)

// A reference to a value that lives elsewhere (as kj::Maybe<T&>), or the Refusal.
template<typename T>
class [[nodiscard]] Result<T&> {
 public:
  Result(T& value) : v_(&value) {}
  Result(Refusal refusal) : v_(kj::mv(refusal)) {}

  bool ok() const { return v_.template is<T*>(); }
  kj::Maybe<const Refusal&> refused() const {
    if (ok()) return nullptr;
    return v_.template get<Refusal>();
  }
  T& value() const {
    KJ_REQUIRE(ok(), "value() of a refused Result", v_.template get<Refusal>().message);
    return *v_.template get<T*>();
  }
  Refusal takeRefusal() {
    KJ_REQUIRE(!ok(), "takeRefusal() of a Result that holds a value");
    return kj::mv(v_.template get<Refusal>());
  }

 private:
  kj::OneOf<T*, Refusal> v_;
};

// Whether T is a Result, and the type of its value (T itself when it is not).
template<typename T>
struct IsResult {
  static constexpr bool value = false;
  using Value = T;
};
template<typename T>
struct IsResult<Result<T>> {
  static constexpr bool value = true;
  using Value = T;
};

// Damaged data (a record that fails authentication or does not decode, an index that
// disagrees with the records it points to): thrown, never returned (see the header comment),
// as a kj::Exception (FAILED) whose description is INTEGRITY_FAILURE_PREFIX + the message,
// so that it crosses nested transactions, worker threads and promises as any exception does
// and the daemon tells it from a bug by its prefix, as it tells a storage failure
// (store::isStorageFailure). The message names tables and record kinds, never a value.
constexpr const char INTEGRITY_FAILURE_PREFIX[] = "integrity: ";
[[noreturn]] void damaged(kj::String message);
bool isIntegrityFailure(const kj::Exception& e);
// The message of an integrity failure, without its prefix.
kj::StringPtr integrityMessage(const kj::Exception& e);

}  // namespace credvault::core
