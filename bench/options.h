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
