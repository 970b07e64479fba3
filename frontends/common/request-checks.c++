#include "request-checks.h"
#include "operations.h"

#include "base/utf8.h"
#include "frontends/limits.h"

#include <string.h>

namespace credvault::frontends {

bool isValidUtf8(kj::StringPtr text) {
  return base::utf8::isValid(text) && memchr(text.begin(), '\0', text.size()) == nullptr;
}

size_t countCodePoints(kj::StringPtr text) {
  size_t n = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++n;
  }
  return n;
}

namespace {

kj::Maybe<Failure> checkText(kj::StringPtr text, kj::StringPtr field, size_t maxChars) {
  if (!isValidUtf8(text)) {
    return makeFailure(rpc::ErrorCode::INVALID_ARGUMENT, field,
                       kj::str(field, " is not valid UTF-8 text"));
  }
  if (countCodePoints(text) > maxChars) {
    return makeFailure(rpc::ErrorCode::LIMIT_EXCEEDED, field,
                       kj::str(field, " is longer than ", maxChars, " characters"));
  }
  return nullptr;
}

}  // namespace

kj::Maybe<Failure> validate(const OpRequest& request) {
  if (request.op != Op::CREATE_DEFAULT) {
    KJ_IF_MAYBE(f, checkText(request.type, "Type", SO_MAX_TYPE_CHARS)) { return kj::mv(*f); }
  }
  if (opHasCredential(request.op)) {
    auto c = request.credential();
    KJ_IF_MAYBE(f, checkText(c.getComment(), "Comment", SO_MAX_COMMENT_CHARS)) {
      return kj::mv(*f);
    }
    KJ_IF_MAYBE(f, checkText(c.getPublicValue(), "PublicValue", SO_MAX_PUBLIC_VALUE_CHARS)) {
      return kj::mv(*f);
    }
    if (c.hasSecretValue()) {
      KJ_IF_MAYBE(f, checkText(c.getSecretValue(), "SecretValue", SO_MAX_SECRET_VALUE_CHARS)) {
        return kj::mv(*f);
      }
    }
    if (c.getValidFrom() < 0 || c.getValidFrom() > ipc::MAX_TICKS) {
      return makeFailure(rpc::ErrorCode::INVALID_ARGUMENT, "ValidFrom",
                         "ValidFrom is out of range");
    }
    if (c.getValidTo() < 0 || c.getValidTo() > ipc::MAX_TICKS) {
      return makeFailure(rpc::ErrorCode::INVALID_ARGUMENT, "ValidTo", "ValidTo is out of range");
    }
  }
  if (opHasPublicValue(request.op)) {
    KJ_IF_MAYBE(f, checkText(request.publicValue, "PublicValue", SO_MAX_PUBLIC_VALUE_CHARS)) {
      return kj::mv(*f);
    }
  }
  return nullptr;
}

}  // namespace credvault::frontends
