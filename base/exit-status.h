// credvault — the exit statuses of credvaultd and credvault-gateway when they cannot start.
//
// From sysexits.h, whose names systemd shows ("status=78/CONFIG"), so `systemctl status`
// already says which kind of problem it is; docs/operations.md lists each with the one-line
// message that accompanies it. A bug (an unexpected exception) keeps KJ's report with its
// stack trace and exits 1.

#pragma once

namespace credvault::base {

constexpr int EXIT_BAD_KEY = 65;        // DATAERR: the master key is missing, malformed or wrong
constexpr int EXIT_UNAVAILABLE = 69;    // UNAVAILABLE: an address or socket path is taken
constexpr int EXIT_CANNOT_CREATE = 73;  // CANTCREAT: a file or directory cannot be created
constexpr int EXIT_NO_PERMISSION = 77;  // NOPERM: a file, directory or port the user may not use
constexpr int EXIT_CONFIG = 78;         // CONFIG: the configuration file or a setting

}  // namespace credvault::base
