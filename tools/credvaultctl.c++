// credvaultctl — the command-line client. Talks to credvaultd over its socket as the
// calling user (the daemon identifies us by SO_PEERCRED). Secrets come from stdin, a file or
// a terminal prompt without echo, never from the command line; they are printed only by
// `get`, only when the daemon returned them, and handed to `exec`'s command only in its
// environment. Exit codes: exit-codes.h (and docs/credvaultctl.md, credvaultctl(1)).
//
// Each command is a kj::MainBuilder sub-command (cli.h): all of its options and arguments
// are parsed, and refused with exit 2, before it connects.
//
// The commands are tools/ctl.h's Ctl (one file per group); this file only runs one.

#include "ctl.h"

#include <stdio.h>

int main(int argc, char** argv) {
  using namespace credvault::ctl;
  CliContext context;
  Ctl ctl(context);
  auto params = kj::heapArray<kj::StringPtr>(argc > 0 ? argc - 1 : 0);
  for (int i = 1; i < argc; i++) params[i - 1] = argv[i];
  try {
    auto main = ctl.getMain();
    main("credvaultctl", params);
  } catch (const ExitWith& e) {
    fflush(stdout);
    return e.code;
  } catch (const kj::Exception& e) {
    fprintf(stderr, "credvaultctl: %s\n", e.getDescription().cStr());
    return INTERNAL;
  }
  fflush(stdout);
  return ctl.exitCode;
}
