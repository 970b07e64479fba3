#include "validate.h"
#include "error.h"
#include "limits.h"

#include "base/utf8.h"

namespace credvault::core {

void fail(ErrorCode code, kj::StringPtr field, kj::String message) {
  throw VaultError(code, field, kj::mv(message));
}

kj::StringPtr errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::INTERNAL:
      return "internal";
    case ErrorCode::NOT_AUTHENTICATED:
      return "not-authenticated";
    case ErrorCode::PERMISSION_DENIED:
      return "permission-denied";
    case ErrorCode::INVALID_ARGUMENT:
      return "invalid-argument";
    case ErrorCode::NOT_FOUND:
      return "not-found";
    case ErrorCode::LIMIT_EXCEEDED:
      return "limit-exceeded";
    case ErrorCode::UNAVAILABLE:
      return "unavailable";
    case ErrorCode::INTEGRITY:
      return "integrity";
    case ErrorCode::CONFLICT:
      return "conflict";
    case ErrorCode::THROTTLED:
      return "throttled";
  }
  return "internal";
}

Principal clonePrincipal(const Principal& p) {
  Principal c;
  c.associateId = p.associateId;
  c.name = kj::heapString(p.name);
  c.kind = p.kind;
  c.userAdmin = p.userAdmin;
  c.method = p.method;
  c.partnerApp = p.partnerApp;
  c.frontEnd = p.frontEnd;
  c.uid = p.uid;
  c.pid = p.pid;
  return c;
}

kj::Maybe<size_t> utf8Length(kj::ArrayPtr<const char> text) {
  return base::utf8::countCodePoints(text);
}

void checkText(kj::StringPtr field, kj::ArrayPtr<const char> text, size_t maxChars,
               bool multiline) {
  KJ_IF_MAYBE(len, utf8Length(text)) {
    if (*len > maxChars) {
      fail(ErrorCode::LIMIT_EXCEEDED, field,
           kj::str(field, " is ", *len, " characters long; the limit is ", maxChars));
    }
  } else {
    invalid(field, field, " is not valid UTF-8");
  }
  for (char c : text) {
    unsigned char u = c;
    if (u < 0x20 || u == 0x7F) {
      if (multiline && (c == '\n' || c == '\t' || c == '\r')) continue;
      invalid(field, field, " contains a control character");
    }
  }
}

void checkType(kj::ArrayPtr<const char> type) {
  // An empty Type is allowed on purpose: SuperOffice's published examples send
  // <Type></Type> and expect success (docs/limits.md; the gateway's seed tests). Lead's
  // decision — do not refuse it here.
  checkText("type", type, MAX_TYPE_CHARS);
}

void checkTicks(kj::StringPtr field, Ticks ticks) {
  if (ticks < 0 || ticks > MAX_TICKS) {
    invalid(field, field, " is outside 0001-01-01 .. 9999-12-31");
  }
}

void checkCredential(const Credential& c) {
  checkText("publicValue", c.publicValue, MAX_PUBLIC_VALUE_CHARS);
  checkText("comment", c.comment, MAX_COMMENT_CHARS, true);
  checkTicks("validFrom", c.validFrom);
  checkTicks("validTo", c.validTo);
  if (c.validFrom != 0 && c.validTo != 0 && c.validTo < c.validFrom) {
    invalid("validTo", "validTo is before validFrom");
  }
  KJ_IF_MAYBE(secret, c.secretValue) {
    if (secret->size() > MAX_SECRET_BYTES) {
      fail(ErrorCode::LIMIT_EXCEEDED, "secretValue",
           kj::str("secretValue is ", secret->size(), " bytes long; the limit is ",
                   MAX_SECRET_BYTES));
    }
    if (utf8Length(secret->revealChars()) == nullptr) {
      invalid("secretValue", "secretValue is not valid UTF-8");
    }
  }
}

void checkAssociateName(kj::ArrayPtr<const char> name) {
  if (name.size() == 0) invalid("name", "name is empty");
  checkText("name", name, MAX_NAME_CHARS);
  if (name[0] == ' ' || name[name.size() - 1] == ' ') {
    invalid("name", "name begins or ends with a space");
  }
}

void checkPassword(const crypto::Secret& password) {
  if (password.size() < MIN_PASSWORD_CHARS) invalid("password", "password is empty");
  if (password.size() > MAX_PASSWORD_BYTES) {
    fail(ErrorCode::LIMIT_EXCEEDED, "password",
         kj::str("password is longer than ", MAX_PASSWORD_BYTES, " bytes"));
  }
  if (utf8Length(password.revealChars()) == nullptr) {
    invalid("password", "password is not valid UTF-8");
  }
}

kj::String foldName(kj::ArrayPtr<const char> name) {
  auto out = kj::heapString(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = c - 'A' + 'a';
  }
  return out;
}

}  // namespace credvault::core
