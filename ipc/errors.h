// credvault — the one table of error codes and how every client presents them.
//
// A refusal travels as rpc::Error (credvault.capnp): a code, the field at fault and a message.
// Everything that turns a code into something else reads this table: the daemon's log and
// audit (`name`), the gateway's SOAP ExceptionInfo and REST problem answers, credvaultctl's
// exit status. Adding a code is one row here plus the enum in credvault.capnp (and
// core::ErrorCode, whose values the daemon static_asserts to equal these; docs/design.md,
// "Errors"). tests/ipc/errors-test.c++ checks every row against what the clients document.
//
// An unknown code (from a newer daemon) reads as `internal`, as a client that does not know
// a code must treat it.

#pragma once

#include "ipc/credvault.capnp.h"

#include <kj/string.h>
#include <stdint.h>

namespace credvault::ipc {

struct ErrorInfo {
  rpc::ErrorCode code;
  // Stable lower-case name ("permission-denied"): logs, audit records, credvaultctl's JSON.
  kj::StringPtr name;
  // What the gateway says when the daemon sent no message (SOAP Message, REST detail).
  kj::StringPtr defaultMessage;
  // REST: the HTTP status and the problem's "Message" (ASP.NET Web API wording).
  uint16_t httpStatus;
  kj::StringPtr httpMessage;
  // REST: the answer names the field at fault ("Credentials.SecretValue") when there is one.
  bool httpNamesField;
  // REST: sends Retry-After (the daemon's retryAfterSeconds, at least 1).
  bool httpRetryAfter;
  // SOAP: ExceptionInfo/ExceptionType, SuperOffice's exception class names.
  kj::StringPtr soapExceptionType;
  // credvaultctl's exit status (tools/exit-codes.h names them).
  int exitCode;
};

// Indexed by the code's ordinal: ERRORS[i].code == i (checked at compile time below).
constexpr ErrorInfo ERRORS[] = {
    {.code = rpc::ErrorCode::INTERNAL,
     .name = "internal"_kj,
     .defaultMessage = "Internal error"_kj,
     .httpStatus = 500,
     .httpMessage = "An error has occurred."_kj,
     .httpNamesField = false,
     .httpRetryAfter = false,
     .soapExceptionType = "SoServerException"_kj,
     .exitCode = 10},
    {.code = rpc::ErrorCode::NOT_AUTHENTICATED,
     .name = "not-authenticated"_kj,
     .defaultMessage = "Not authenticated"_kj,
     .httpStatus = 401,
     .httpMessage = "Authorization has been denied for this request."_kj,
     .httpNamesField = false,
     .httpRetryAfter = false,
     .soapExceptionType = "SoSecurityException"_kj,
     .exitCode = 12},
    {.code = rpc::ErrorCode::PERMISSION_DENIED,
     .name = "permission-denied"_kj,
     .defaultMessage = "Permission denied"_kj,
     .httpStatus = 403,
     .httpMessage = "The caller is not allowed to do this."_kj,
     .httpNamesField = false,
     .httpRetryAfter = false,
     .soapExceptionType = "SoAccessDeniedException"_kj,
     .exitCode = 3},
    {.code = rpc::ErrorCode::INVALID_ARGUMENT,
     .name = "invalid-argument"_kj,
     .defaultMessage = "Invalid argument"_kj,
     .httpStatus = 400,
     .httpMessage = "The request is invalid."_kj,
     .httpNamesField = true,
     .httpRetryAfter = false,
     .soapExceptionType = "ArgumentException"_kj,
     .exitCode = 4},
    {.code = rpc::ErrorCode::NOT_FOUND,
     .name = "not-found"_kj,
     .defaultMessage = "Not found"_kj,
     .httpStatus = 404,
     .httpMessage = "Not found."_kj,
     .httpNamesField = false,
     .httpRetryAfter = false,
     .soapExceptionType = "SoNotFoundException"_kj,
     .exitCode = 5},
    {.code = rpc::ErrorCode::LIMIT_EXCEEDED,
     .name = "limit-exceeded"_kj,
     .defaultMessage = "Limit exceeded"_kj,
     .httpStatus = 400,
     .httpMessage = "The request is invalid."_kj,
     .httpNamesField = true,
     .httpRetryAfter = false,
     .soapExceptionType = "ArgumentOutOfRangeException"_kj,
     .exitCode = 6},
    {.code = rpc::ErrorCode::UNAVAILABLE,
     .name = "unavailable"_kj,
     .defaultMessage = "The credential vault is unavailable"_kj,
     .httpStatus = 503,
     .httpMessage = "The credential vault is unavailable."_kj,
     .httpNamesField = false,
     .httpRetryAfter = true,
     .soapExceptionType = "SoServerUnavailableException"_kj,
     .exitCode = 7},
    {.code = rpc::ErrorCode::INTEGRITY,
     .name = "integrity"_kj,
     .defaultMessage = "A stored record failed verification"_kj,
     .httpStatus = 500,
     .httpMessage = "An error has occurred."_kj,
     .httpNamesField = false,
     .httpRetryAfter = false,
     .soapExceptionType = "SoIntegrityException"_kj,
     .exitCode = 8},
    {.code = rpc::ErrorCode::CONFLICT,
     .name = "conflict"_kj,
     .defaultMessage = "Conflict"_kj,
     .httpStatus = 409,
     .httpMessage = "Conflict."_kj,
     .httpNamesField = false,
     .httpRetryAfter = false,
     .soapExceptionType = "SoConflictException"_kj,
     .exitCode = 9},
    {.code = rpc::ErrorCode::THROTTLED,
     .name = "throttled"_kj,
     .defaultMessage = "Too many attempts; try again later"_kj,
     .httpStatus = 429,
     .httpMessage = "Too many failed attempts; try again later."_kj,
     .httpNamesField = false,
     .httpRetryAfter = true,
     .soapExceptionType = "SoThrottledException"_kj,
     .exitCode = 11},
};

constexpr size_t ERROR_CODE_COUNT = sizeof(ERRORS) / sizeof(ERRORS[0]);

namespace _ {
constexpr bool errorsInOrder() {
  for (size_t i = 0; i < ERROR_CODE_COUNT; i++) {
    if (static_cast<size_t>(ERRORS[i].code) != i) return false;
  }
  return true;
}
}  // namespace _
static_assert(_::errorsInOrder(), "ERRORS must list every code in ordinal order");

// The row for `code`; `internal`'s for a code this build does not know.
constexpr const ErrorInfo& errorInfo(rpc::ErrorCode code) {
  auto i = static_cast<size_t>(code);
  return i < ERROR_CODE_COUNT ? ERRORS[i] : ERRORS[0];
}

// Stable lower-case names of error codes ("permission-denied"), for messages and JSON.
constexpr kj::StringPtr errorCodeName(rpc::ErrorCode code) {
  return errorInfo(code).name;
}

}  // namespace credvault::ipc
