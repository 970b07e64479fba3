// credvaultctl — reading secrets: from a descriptor (pipes, files), or from a person at a
// terminal without echo. Every buffer that held a secret is wiped.

#pragma once

#include <kj/string.h>

namespace credvault::ctl {

// A failure to read (the caller reports it, exit LOCAL).
struct ReadFailed {
  kj::String message;
};
// Input past the limit (exit LIMIT_EXCEEDED, before anything is sent).
struct TooLong {};

// Reads all of `fd` up to `limit` bytes; one trailing newline (and a CR before it) is
// dropped, as echo and heredocs add one.
kj::String readSecret(int fd, size_t limit);

// Reads one line (at most `limit` bytes) from `fd`, without its newline. Null at end of input.
kj::Maybe<kj::String> readLine(int fd, size_t limit);

// Asks for a secret on the terminal that stdin is, echo off; `confirm`: asks twice and
// insists that both agree (up to three tries). The prompts go to stderr.
kj::String promptSecret(kj::StringPtr prompt, bool confirm, size_t limit);

bool stdinIsTerminal();
bool stdoutIsTerminal();

void wipeString(kj::String& s);

}  // namespace credvault::ctl
