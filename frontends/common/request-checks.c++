#include "request-checks.h"
#include "operations.h"

#include "frontends/limits.h"

namespace credvault::frontends {

bool isValidUtf8(kj::StringPtr text) {
  auto* p = reinterpret_cast<const unsigned char*>(text.begin());
  auto* end = reinterpret_cast<const unsigned char*>(text.end());
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      if (c == 0) return false;
      ++p;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
      min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
      min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
      min = 0x10000;
    } else
      return false;
    if (static_cast<size_t>(end - p) < len) return false;
    for (size_t i = 1; i < len; i++) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += len;
  }
  return true;
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
