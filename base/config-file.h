// credvault — the one configuration dialect of credvaultd and credvault-gateway.
//
// A file is lines of `key = value`. `#` starts a comment anywhere on a line, after a value
// too (`log_level = info  # default`), so a value cannot contain `#`. Blank lines are ignored;
// spaces and tabs around keys and values are not part of them; CRLF line ends and a UTF-8
// byte order mark are accepted. Keys are lower-case letters, digits and '_'. A key may
// appear more than once: what that means is the setting's business (most replace, `listen`
// adds up).
//
// Errors are one line, `ORIGIN:LINE: message` for a file and `ORIGIN: message` for a command
// line's `--set key=value`, so an editor or a person can go straight to the line. An unknown
// key is refused with the nearest known one as a suggestion. Messages never repeat a value
// (a URL may carry a password): only keys, which are ours.
//
// Pure: no I/O, no logging. The caller reads the file and reports the error.

#pragma once

#include <kj/function.h>
#include <kj/string.h>

namespace credvault::base {

// Applies one setting whose key is known; returns what is wrong with the value, or null.
using ApplySetting =
    kj::FunctionParam<kj::Maybe<kj::String>(kj::StringPtr key, kj::StringPtr value)>;

// Files larger than this are refused (a configuration file is a few KiB).
constexpr size_t MAX_CONFIG_FILE_BYTES = 1 << 20;

// Reads `text`, the content of `origin` (a path), in order: each line's key is checked
// against `keys`, then handed to `apply`. Stops at the first error and returns it as
// "ORIGIN:LINE: message"; null when every line was applied.
kj::Maybe<kj::String> readConfigText(kj::StringPtr origin, kj::StringPtr text,
                                     kj::ArrayPtr<const kj::StringPtr> keys, ApplySetting apply);

// One `key=value` (a `--set` option) read exactly as a line of a file; errors are
// "ORIGIN: message" (origin e.g. "--set").
kj::Maybe<kj::String> readConfigSetting(kj::StringPtr origin, kj::StringPtr keyValue,
                                        kj::ArrayPtr<const kj::StringPtr> keys, ApplySetting apply);

// One setting given as key and value by a program (no comment stripping, no trimming):
// the same key checks; the message without origin, or null.
kj::Maybe<kj::String> applyConfigKey(kj::StringPtr key, kj::StringPtr value,
                                     kj::ArrayPtr<const kj::StringPtr> keys, ApplySetting apply);

// The known key nearest to `key` (edit distance at most 2, or one is a prefix of the
// other), for "did you mean"; null when none is close.
kj::Maybe<kj::StringPtr> nearestKey(kj::StringPtr key, kj::ArrayPtr<const kj::StringPtr> keys);

}  // namespace credvault::base
