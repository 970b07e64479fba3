// credvaultd — conversions between core's model and the wire schema.

#pragma once

#include "core/model.h"
#include "core/error.h"
#include "ipc/credvault.capnp.h"
#include "ipc/errors.h"

namespace credvault::daemon {

core::Credential fromWire(rpc::Credential::Reader in);
void toWire(const core::Credential& in, rpc::Credential::Builder out);
// At least the words a List(Credential) takes once toWire has filled it with `list` (the list,
// each struct, its texts and carried fields), for an answer's size hint: without one capnp
// starts every answer with an 8 KiB segment, calloc'd and, when freed, wiped again
// (docs/performance.md §13).
uint64_t wireWords(kj::ArrayPtr<const core::Credential> list);
void toWire(const core::Associate& in, rpc::Associate::Builder out);
void toWire(const core::Principal& in, rpc::Principal::Builder out);
core::Kind fromWire(rpc::Kind kind);

// core's codes are the wire's (core/error.h): one cast, checked here for every code.
constexpr rpc::ErrorCode toWire(core::ErrorCode code) {
  return static_cast<rpc::ErrorCode>(code);
}
static_assert(toWire(core::ErrorCode::INTERNAL) == rpc::ErrorCode::INTERNAL &&
                  toWire(core::ErrorCode::NOT_AUTHENTICATED) == rpc::ErrorCode::NOT_AUTHENTICATED &&
                  toWire(core::ErrorCode::PERMISSION_DENIED) == rpc::ErrorCode::PERMISSION_DENIED &&
                  toWire(core::ErrorCode::INVALID_ARGUMENT) == rpc::ErrorCode::INVALID_ARGUMENT &&
                  toWire(core::ErrorCode::NOT_FOUND) == rpc::ErrorCode::NOT_FOUND &&
                  toWire(core::ErrorCode::LIMIT_EXCEEDED) == rpc::ErrorCode::LIMIT_EXCEEDED &&
                  toWire(core::ErrorCode::UNAVAILABLE) == rpc::ErrorCode::UNAVAILABLE &&
                  toWire(core::ErrorCode::INTEGRITY) == rpc::ErrorCode::INTEGRITY &&
                  toWire(core::ErrorCode::CONFLICT) == rpc::ErrorCode::CONFLICT &&
                  toWire(core::ErrorCode::THROTTLED) == rpc::ErrorCode::THROTTLED,
              "core::ErrorCode must keep rpc::ErrorCode's ordinals");
static_assert(static_cast<size_t>(core::ErrorCode::THROTTLED) + 1 == ipc::ERROR_CODE_COUNT,
              "core::ErrorCode and ipc::ERRORS list the same codes");

}  // namespace credvault::daemon
