// credvault-bench — what the command line chose (bench/main.c++ parses it).

#pragma once

#include <kj/string.h>
#include <kj/vector.h>
#include <stdint.h>

namespace credvault::bench {

struct Options {
  kj::String credvaultd;  // absolute path once parsed: children run from /
  double duration = 3;
  double warmup = 0.5;
  double passwordSeconds = 2;
  uint32_t rssCredentials = 100000;
  kj::String tmpdir;
  kj::Maybe<kj::String> daemonLogLevel;
  kj::Vector<kj::String> daemonSettings;  // --daemon-set KEY=VALUE, passed as --set
  kj::Vector<kj::String> only;
  kj::Vector<uint64_t> backupCredentials;  // vault sizes for the "backup" section
  // Where the daemons of get, save, auth, biglist and rss keep their records, in the order
  // run: "lmdb" (the default) and/or "postgresql" (bench/database.h).
  kj::Vector<kj::String> storages;
  // Daemons sharing one vault in the get and save sections (2 needs postgresql); clients are
  // spread across them.
  unsigned daemons = 1;

  bool wants(kj::StringPtr section) const {
    // Minutes per size: run only when named.
    if (section == "backup" && only.empty()) return false;
    if (only.empty()) return true;
    for (auto& s : only)
      if (s == section) return true;
    return false;
  }
};

}  // namespace credvault::bench
