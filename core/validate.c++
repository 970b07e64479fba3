#include "validate.h"
#include "error.h"
#include "limits.h"

#include "base/utf8.h"

namespace credvault::core {

void damaged(kj::String message) {
  kj::throwFatalException(kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                                        kj::str(INTEGRITY_FAILURE_PREFIX, message)));
}

bool isIntegrityFailure(const kj::Exception& e) {
  return e.getType() == kj::Exception::Type::FAILED &&
         e.getDescription().startsWith(INTEGRITY_FAILURE_PREFIX);
}

kj::StringPtr integrityMessage(const kj::Exception& e) {
  KJ_REQUIRE(isIntegrityFailure(e), "not an integrity failure");
  return e.getDescription().slice(sizeof(INTEGRITY_FAILURE_PREFIX) - 1);
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

kj::Maybe<Refusal> checkText(kj::StringPtr field, kj::ArrayPtr<const char> text, size_t maxChars,
                             bool multiline) {
  KJ_IF_MAYBE(len, utf8Length(text)) {
    if (*len > maxChars) {
      return refuse(ErrorCode::LIMIT_EXCEEDED, field,
                    kj::str(field, " is ", *len, " characters long; the limit is ", maxChars));
    }
  } else {
    return invalidArgument(field, field, " is not valid UTF-8");
  }
  for (char c : text) {
    unsigned char u = c;
    if (u < 0x20 || u == 0x7F) {
      if (multiline && (c == '\n' || c == '\t' || c == '\r')) continue;
      return invalidArgument(field, field, " contains a control character");
    }
  }
  return nullptr;
}

kj::Maybe<Refusal> checkType(kj::ArrayPtr<const char> type) {
  // An empty Type is allowed on purpose: SuperOffice's published examples send
  // <Type></Type> and expect success (docs/limits.md; the gateway's seed tests). Lead's
  // decision — do not refuse it here.
  return checkText("type", type, MAX_TYPE_CHARS);
}

kj::Maybe<Refusal> checkTicks(kj::StringPtr field, Ticks ticks) {
  if (ticks < 0 || ticks > MAX_TICKS) {
    return invalidArgument(field, field, " is outside 0001-01-01 .. 9999-12-31");
  }
  return nullptr;
}

kj::Maybe<Refusal> checkCredential(const Credential& c) {
  KJ_IF_MAYBE(r, checkText("publicValue", c.publicValue, MAX_PUBLIC_VALUE_CHARS)) {
    return kj::mv(*r);
  }
  KJ_IF_MAYBE(r, checkText("comment", c.comment, MAX_COMMENT_CHARS, true)) { return kj::mv(*r); }
  KJ_IF_MAYBE(r, c.carried.check()) { return kj::mv(*r); }
  KJ_IF_MAYBE(r, checkTicks("validFrom", c.validFrom)) { return kj::mv(*r); }
  KJ_IF_MAYBE(r, checkTicks("validTo", c.validTo)) { return kj::mv(*r); }
  if (c.validFrom != 0 && c.validTo != 0 && c.validTo < c.validFrom) {
    return invalidArgument("validTo", "validTo is before validFrom");
  }
  KJ_IF_MAYBE(secret, c.secretValue) {
    if (secret->size() > MAX_SECRET_BYTES) {
      return refuse(ErrorCode::LIMIT_EXCEEDED, "secretValue",
                    kj::str("secretValue is ", secret->size(), " bytes long; the limit is ",
                            MAX_SECRET_BYTES));
    }
    if (utf8Length(secret->revealChars()) == nullptr) {
      return invalidArgument("secretValue", "secretValue is not valid UTF-8");
    }
  }
  return nullptr;
}

kj::Maybe<Refusal> checkAssociateName(kj::ArrayPtr<const char> name) {
  if (name.size() == 0) return invalidArgument("name", "name is empty");
  KJ_IF_MAYBE(r, checkText("name", name, MAX_NAME_CHARS)) { return kj::mv(*r); }
  if (name[0] == ' ' || name[name.size() - 1] == ' ') {
    return invalidArgument("name", "name begins or ends with a space");
  }
  return nullptr;
}

kj::Maybe<Refusal> checkPassword(const crypto::Secret& password) {
  if (password.size() < MIN_PASSWORD_CHARS) return invalidArgument("password", "password is empty");
  if (password.size() > MAX_PASSWORD_BYTES) {
    return refuse(ErrorCode::LIMIT_EXCEEDED, "password",
                  kj::str("password is longer than ", MAX_PASSWORD_BYTES, " bytes"));
  }
  if (utf8Length(password.revealChars()) == nullptr) {
    return invalidArgument("password", "password is not valid UTF-8");
  }
  return nullptr;
}

kj::String foldName(kj::ArrayPtr<const char> name) {
  auto out = kj::heapString(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = c - 'A' + 'a';
  }
  return out;
}

}  // namespace credvault::core
