// What a test asks of an exception: the description of the one a body throws (a test failure
// when it throws none), and whether a text holds a part. KJ and gtest only.

#pragma once

#include <gtest/gtest.h>
#include <kj/exception.h>
#include <string>

namespace credvault::support {

// The description of the exception `func` throws, or "" (and a test failure) if none.
template<typename Func>
std::string failureOf(Func&& func) {
  KJ_IF_MAYBE(e, kj::runCatchingExceptions(kj::fwd<Func>(func))) {
    return e->getDescription().cStr();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

inline bool has(const std::string& text, const char* part) {
  return text.find(part) != std::string::npos;
}

}  // namespace credvault::support
