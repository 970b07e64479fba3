#include "failure.h"

#include "ipc/errors.h"

namespace credvault::frontends {

Failure makeFailure(rpc::ErrorCode code, kj::StringPtr field, kj::StringPtr message) {
  return Failure{code, kj::heapString(field), kj::heapString(message)};
}

namespace {

kj::String superOfficeFieldName(kj::StringPtr field) {
  // The daemon names schema fields ("secretValue"); SuperOffice clients know "SecretValue".
  auto out = kj::heapString(field);
  if (out.size() > 0 && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 32);
  return out;
}

}  // namespace

Failure failureFrom(rpc::Error::Reader error) {
  kj::StringPtr message = error.hasMessage() ? error.getMessage() : kj::StringPtr("");
  if (message.size() == 0) message = ipc::errorInfo(error.getCode()).defaultMessage;
  return Failure{error.getCode(),
                 superOfficeFieldName(error.hasField() ? error.getField() : kj::StringPtr("")),
                 kj::heapString(message), error.getRetryAfterSeconds()};
}

Failure failureFromException(const kj::Exception& e) {
  if (e.getType() == kj::Exception::Type::DISCONNECTED) {
    return makeFailure(rpc::ErrorCode::UNAVAILABLE, "", "The credential vault is unavailable");
  }
  if (e.getType() == kj::Exception::Type::OVERLOADED) {
    return makeFailure(rpc::ErrorCode::UNAVAILABLE, "", "The credential vault is overloaded");
  }
  return makeFailure(rpc::ErrorCode::INTERNAL, "", "Internal error");
}

}  // namespace credvault::frontends
