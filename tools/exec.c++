// credvaultctl — exec: a command run with secrets in its environment, never on its
// command line.

#include "ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

namespace credvault::ctl {

// ---- exec --------------------------------------------------------------------------------

kj::MainFunc Ctl::execCmd() {
  auto& b =
      command("exec --env NAME=TYPE:PUBLIC... -- COMMAND [ARG...]",
              "Runs COMMAND with each secret in its environment variable NAME (never on a command "
              "line), in place of credvaultctl: COMMAND's exit status is the exit status. Each "
              "TYPE:PUBLIC must name exactly one of your credentials (TYPE ends at the first ':'). "
              "If COMMAND cannot be run: exit 126 (not executable) or 127 (not found), as env(1).");
  b.addOptionWithArg(
      {"env"},
      [this](kj::StringPtr v) -> Validity {
        KJ_IF_MAYBE(eq, v.findFirst('=')) {
          auto name = v.slice(0, *eq);
          bool ok = *eq > 0 && !(name[0] >= '0' && name[0] <= '9');
          for (char c : name) {
            ok = ok && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '_');
          }
          if (!ok) return kj::str("NAME must be letters, digits and _, not starting with a digit");
          auto rest = v.slice(*eq + 1);
          KJ_IF_MAYBE(colon, rest.findFirst(':')) {
            if (*colon == 0) return kj::str("expected NAME=TYPE:PUBLIC");
            for (auto& e : envs_) {
              if (e.startsWith(kj::str(v.slice(0, *eq + 1)))) return kj::str("NAME given twice");
            }
            envs_.add(kj::heapString(v));
            return true;
          }
        }
        return kj::str("expected NAME=TYPE:PUBLIC");
      },
      "<NAME=TYPE:PUBLIC>", "Put this credential's secret into variable NAME (repeatable).");
  b.expectOneOrMoreArgs("COMMAND", [this](kj::StringPtr v) -> Validity {
    args_.add(kj::heapString(v));
    return true;
  });
  return run(b, [this]() -> int {
    if (envs_.size() == 0) usage("give at least one --env NAME=TYPE:PUBLIC");
    auto& l = link();
    auto s = l.session();
    for (auto& e : envs_) {
      auto eq = KJ_ASSERT_NONNULL(e.findFirst('='));
      auto name = kj::heapString(e.slice(0, eq));
      auto rest = e.slice(eq + 1);
      auto colon = KJ_ASSERT_NONNULL(rest.findFirst(':'));
      auto type = kj::heapString(rest.slice(0, colon));
      auto pub = rest.slice(colon + 1);
      auto req = s.getRequest();
      req.setType(type);
      auto r = l.wait(req.send());
      l.check(r);
      bool found = false;
      for (auto c : r.getCredentials()) {
        if (c.getPublicValue() != pub) continue;
        if (!c.hasSecretValue()) {
          failWith(format(), PERMISSION_DENIED, "permission-denied",
                   kj::str("the secret for ", name, " is withheld"));
        }
        auto secret = kj::heapString(c.getSecretValue());
        if (secret.size() != strlen(secret.cStr())) {
          failWith(format(), INVALID_ARGUMENT, "invalid-argument",
                   kj::str("the secret for ", name,
                           " holds a NUL byte; it cannot be an "
                           "environment variable"));
        }
        setenv(name.cStr(), secret.cStr(), 1);
        wipeString(secret);
        found = true;
      }
      if (!found) {
        failWith(format(), NOT_FOUND, "not-found",
                 kj::str("no credential for ", name, " (type ", type, " with that public value)"));
      }
    }
    // Nothing of ours is left open for COMMAND: the socket is close-on-exec. Nor does it
    // inherit our authority: a ticket in the environment is a bearer credential for every
    // secret of its associate, and COMMAND was given only the ones named.
    unsetenv("CREDVAULT_TICKET");
    auto argv = kj::heapArray<char*>(args_.size() + 1);
    for (auto i : kj::indices(args_)) argv[i] = args_[i].begin();
    argv[args_.size()] = nullptr;
    fflush(stdout);
    execvp(argv[0], argv.begin());
    int err = errno;
    fprintf(stderr, "credvaultctl: cannot run %s: %s\n", argv[0], strerror(err));
    return err == ENOENT ? 127 : 126;
  });
}

}  // namespace credvault::ctl
