// credvault — field validation. Throws VaultError (invalid-argument / limit-exceeded) that
// names the field; never echoes the value.

#pragma once

#include "model.h"
#include <kj/string.h>

namespace credvault::core {

// Number of code points if `text` is valid UTF-8 (no overlongs, no surrogates), else null.
kj::Maybe<size_t> utf8Length(kj::ArrayPtr<const char> text);

// Valid UTF-8, at most `maxChars` code points, no control characters (tab/newline allowed
// only when `multiline`).
void checkText(kj::StringPtr field, kj::ArrayPtr<const char> text, size_t maxChars,
               bool multiline = false);

void checkType(kj::ArrayPtr<const char> type);
void checkCredential(const Credential& credential);
void checkAssociateName(kj::ArrayPtr<const char> name);
void checkPassword(const crypto::Secret& password);
void checkTicks(kj::StringPtr field, Ticks ticks);

// Lower-cases ASCII letters: names are unique case-insensitively (see docs/limits.md).
kj::String foldName(kj::ArrayPtr<const char> name);

}  // namespace credvault::core
