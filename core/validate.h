// credvault — field validation. Each check returns null when the value passes, else the
// Refusal (invalid-argument / limit-exceeded) that names the field; never echoes the value.

#pragma once

#include "error.h"
#include "model.h"
#include <kj/string.h>

namespace credvault::core {

// Number of code points if `text` is valid UTF-8 (no overlongs, no surrogates), else null.
kj::Maybe<size_t> utf8Length(kj::ArrayPtr<const char> text);

// Valid UTF-8, at most `maxChars` code points, no control characters (tab/newline allowed
// only when `multiline`).
[[nodiscard]] kj::Maybe<Refusal> checkText(kj::StringPtr field, kj::ArrayPtr<const char> text,
                                           size_t maxChars, bool multiline = false);

[[nodiscard]] kj::Maybe<Refusal> checkType(kj::ArrayPtr<const char> type);
[[nodiscard]] kj::Maybe<Refusal> checkCredential(const Credential& credential);
[[nodiscard]] kj::Maybe<Refusal> checkAssociateName(kj::ArrayPtr<const char> name);
[[nodiscard]] kj::Maybe<Refusal> checkPassword(const crypto::Secret& password);
[[nodiscard]] kj::Maybe<Refusal> checkTicks(kj::StringPtr field, Ticks ticks);

// Lower-cases ASCII letters: names are unique case-insensitively (see docs/limits.md).
kj::String foldName(kj::ArrayPtr<const char> name);

}  // namespace credvault::core
