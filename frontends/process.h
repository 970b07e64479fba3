// credvault-gateway — process hardening at start.
//
// The gateway holds no keys, but every request passes through its memory: passwords,
// tickets, API tokens and the secrets the daemon hands back. A core file or a debugger
// attached by another process of the same user must not be a way to read them, so the
// gateway, like credvaultd, turns off core dumps (RLIMIT_CORE 0) and makes itself
// non-dumpable (PR_SET_DUMPABLE 0, which also keeps ptrace and /proc/PID/mem to root).
//
// A deliberate copy of the two calls in daemon/system.c++ hardenProcess(): frontends/ may not
// link daemon/, and two system calls do not justify a shared library (the daemon's version
// also sets its umask, which the gateway, creating no files, does not need).

#pragma once

#include <kj/common.h>
#include <kj/string.h>

namespace credvault::frontends {

// Null on success, else one line for the operator.
kj::Maybe<kj::String> hardenProcess();

}  // namespace credvault::frontends
