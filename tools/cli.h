// credvaultctl — the command line: kj::MainBuilder with one sub-command per command, a
// process context that turns usage errors into exit 2 (with the command's usage), and the
// options every command shares (--socket, --format/--json).
//
// Nothing here connects: a command's options and arguments are all parsed, and refused,
// before its body opens the socket.

#pragma once

#include <stdint.h>
#include "exit-codes.h"
#include "output.h"

#include <kj/main.h>
#include <kj/string.h>

namespace credvault::ctl {

// Ends the command with this exit code (its message, if any, is already printed).
struct ExitWith {
  int code;
};

class CliContext final : public kj::ProcessContext {
 public:
  kj::StringPtr getProgramName() override { return "credvaultctl"; }
  [[noreturn]] void exit() override;
  void warning(kj::StringPtr message) override;
  void error(kj::StringPtr message) override;
  [[noreturn]] void exitError(kj::StringPtr message) override;
  [[noreturn]] void exitInfo(kj::StringPtr message) override;
  void increaseLoggingVerbosity() override {}

  // The synopsis of the command being parsed, printed with a usage error.
  kj::StringPtr synopsis;
};

// A value given once: a second --flag is refused (the old parser silently kept the first).
template<typename T>
kj::MainBuilder::Validity setOnce(kj::Maybe<T>& slot, T value) {
  if (slot != nullptr) return kj::str("given twice");
  slot = kj::mv(value);
  return true;
}

struct Common {
  kj::Maybe<kj::String> socket;
  kj::Maybe<Format> format;

  kj::MainBuilder::Validity setSocket(kj::StringPtr path);
  kj::MainBuilder::Validity setFormat(kj::StringPtr name);
  kj::MainBuilder::Validity setJson();
  Format formatOr(Format dflt = Format::TEXT) const;

  // Adds --socket, --format and --json to `builder`.
  kj::MainBuilder& addTo(kj::MainBuilder& builder);
};

// Parses a positive int32 ("--associate 12"), with a message for the option's error.
kj::MainBuilder::Validity parseId(kj::StringPtr text, kj::Maybe<int32_t>& slot);

}  // namespace credvault::ctl
