// libFuzzer target: core/validate.h, the checks every client string passes.
//
// The input is cut into fields (type, public value, comment, name, secret). Checks: a check
// either passes or returns a Refusal naming a field (and never throws); utf8Length
// agrees with "the check of a UTF-8 text passes"; foldName is idempotent and keeps valid
// UTF-8 valid; an accepted credential respects the documented limits.

#include "core/validate.h"
#include "core/limits.h"
#include "core/error.h"
#include "tests/fuzz/fuzz-util.h"

#include <kj/debug.h>

namespace credvault::core {
namespace {

bool accepted(kj::Maybe<Refusal> refusal) {
  KJ_IF_MAYBE(r, refusal) {
    KJ_ASSERT(r->code == ErrorCode::INVALID_ARGUMENT || r->code == ErrorCode::LIMIT_EXCEEDED,
              r->message);
    KJ_ASSERT(r->message.size() > 0);
    KJ_ASSERT(r->field.size() > 0);
    return false;
  }
  return true;
}

void fuzzOne(const uint8_t* data, size_t size) {
  fuzz::Fields fields(data, size);
  auto type = kj::heapString(fields.line());
  auto publicValue = kj::heapString(fields.line());
  auto comment = kj::heapString(fields.line());
  auto name = kj::heapString(fields.line());
  auto secret = fields.rest();

  auto length = utf8Length(publicValue);
  if (accepted(checkText("publicValue", publicValue, MAX_PUBLIC_VALUE_CHARS))) {
    auto n = KJ_ASSERT_NONNULL(length);
    KJ_ASSERT(n <= MAX_PUBLIC_VALUE_CHARS);
  }
  accepted(checkType(type));
  if (accepted(checkAssociateName(name))) {
    auto folded = foldName(name);
    KJ_ASSERT(utf8Length(folded) != nullptr);
    KJ_ASSERT(foldName(folded) == folded, "foldName is not idempotent");
  }
  Credential c;
  c.publicValue = kj::heapString(publicValue);
  c.comment = kj::heapString(comment);
  c.secretValue = crypto::Secret::copyOf(kj::arrayPtr(secret.begin(), secret.size()).asBytes());
  c.validFrom = size > 0 ? int64_t(data[0]) << 56 : 0;
  c.isActive = true;
  if (accepted(checkCredential(c))) {
    KJ_ASSERT(KJ_ASSERT_NONNULL(utf8Length(c.comment)) <= MAX_COMMENT_CHARS);
    KJ_ASSERT(secret.size() <= MAX_SECRET_BYTES);
  }
}

}  // namespace
}  // namespace credvault::core

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credvault::fuzz::runOne([&]() { credvault::core::fuzzOne(data, size); });
  return 0;
}
