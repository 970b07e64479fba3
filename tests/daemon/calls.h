// For the in-process daemon tests that moved out of the root-only integration suite (the
// permission table row by row, bad input): a client's calls as strings (tests/support/rpc-calls.h)
// and a check that nothing a test sent is in what the daemon wrote (its database file, its audit
// trail, its log lines), as the integration fixtures check their daemon's.

#pragma once

#include "tests/support/rpc-calls.h"
#include "tests/support/temp-dir.h"

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace credvault::daemon::testing {

using support::Entry;
using support::errorOf;
using support::fill;
using support::getFor;
using support::removeFor;
using support::saveFor;

// What a test sent and the daemon must never write in clear: remembered strings are looked for
// in the files and the log text given to check(). Strings shorter than 10 bytes are looked for
// in the log only (in a database file they could occur by chance).
class LeakCheck {
 public:
  void remember(const std::string& s) { sensitive_.push_back(s); }
  size_t remembered() const { return sensitive_.size(); }

  // A test failure for every remembered string found; also when `log` is empty (nothing was
  // captured, so the scan would prove nothing) or a file is missing.
  void check(const std::vector<std::string>& files, const std::string& log) const {
    EXPECT_FALSE(log.empty()) << "no log lines were captured: the leak check proves nothing";
    for (auto& s : sensitive_) {
      EXPECT_EQ(log.find(s), std::string::npos) << "\"" << s << "\" is in the daemon's log";
    }
    for (auto& f : files) {
      auto content = support::readFile(f.c_str(), "<missing>");
      EXPECT_NE(content, "<missing>") << f;
      for (auto& s : sensitive_) {
        if (s.size() < 10) continue;
        EXPECT_EQ(content.find(s), std::string::npos) << "\"" << s << "\" is in " << f;
      }
    }
  }

 private:
  std::vector<std::string> sensitive_;
};

}  // namespace credvault::daemon::testing
