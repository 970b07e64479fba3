// credvaultctl's exit codes: the one list that the command, its --help, the docs and the
// tests use. Codes 3-12 are the daemon's typed errors, whose numbers live in the error table
// (ipc/errors.h; 3-11 as since 0.1, 12 (not authenticated) was 2 before 0.2); 2 is a usage
// error (as getopt tools and systemd's use it).

#pragma once

#include "ipc/errors.h"

#include <stdint.h>
#include <kj/common.h>

namespace credvault::ctl {

// The daemon's typed errors take their status from the one error table (ipc/errors.h).
constexpr int exitFor(rpc::ErrorCode code) {
  return ipc::errorInfo(code).exitCode;
}

enum Exit : int {
  OK = 0,
  LOCAL = 1,  // a local failure: a file that exists or cannot be written, a terminal, …
  USAGE = 2,  // the command line is wrong; nothing was sent to the daemon
  PERMISSION_DENIED = exitFor(rpc::ErrorCode::PERMISSION_DENIED),
  INVALID_ARGUMENT = exitFor(rpc::ErrorCode::INVALID_ARGUMENT),
  NOT_FOUND = exitFor(rpc::ErrorCode::NOT_FOUND),
  LIMIT_EXCEEDED = exitFor(rpc::ErrorCode::LIMIT_EXCEEDED),
  // The daemon answered "unavailable", or the connection broke.
  UNAVAILABLE = exitFor(rpc::ErrorCode::UNAVAILABLE),
  INTEGRITY = exitFor(rpc::ErrorCode::INTEGRITY),
  CONFLICT = exitFor(rpc::ErrorCode::CONFLICT),
  INTERNAL = exitFor(rpc::ErrorCode::INTERNAL),
  THROTTLED = exitFor(rpc::ErrorCode::THROTTLED),
  NOT_AUTHENTICATED = exitFor(rpc::ErrorCode::NOT_AUTHENTICATED),
  NO_SOCKET = 13,        // nothing at the socket path: wrong --socket, or not installed
  NOT_RUNNING = 14,      // the socket exists but nobody accepts: the daemon is stopped
  SOCKET_DENIED = 15,    // the socket (or a directory on its path) does not let us in
  AMBIGUOUS = 16,        // get --field: several credentials match
  STORAGE_FAILING = 17,  // `unavailable` naming the store: disk full or I/O error
};

struct ExitInfo {
  int code;
  const char* meaning;
};

constexpr ExitInfo EXIT_CODES[] = {
    {OK, "success"},
    {LOCAL, "local error (a file exists or cannot be written, no terminal, ...)"},
    {USAGE, "usage error (nothing was sent to the daemon)"},
    {PERMISSION_DENIED, "permission denied"},
    {INVALID_ARGUMENT, "invalid argument"},
    {NOT_FOUND, "not found"},
    {LIMIT_EXCEEDED, "limit exceeded"},
    {UNAVAILABLE, "daemon unavailable, or the connection broke"},
    {INTEGRITY, "integrity error (a stored record failed authentication)"},
    {CONFLICT, "conflict (e.g. a name that is taken)"},
    {INTERNAL, "internal error (see the daemon's log)"},
    {THROTTLED, "throttled (too many failed logins; retry later)"},
    {NOT_AUTHENTICATED, "not authenticated (uid not mapped, bad ticket or password)"},
    {NO_SOCKET, "no socket at the path (wrong --socket, or credvaultd not installed)"},
    {NOT_RUNNING, "credvaultd is not running (the socket refuses connections)"},
    {SOCKET_DENIED, "the socket does not let this user connect"},
    {AMBIGUOUS, "get --field: several credentials match; name one with --public"},
    {STORAGE_FAILING, "the daemon's storage is failing (disk full or I/O error)"},
};

}  // namespace credvault::ctl
