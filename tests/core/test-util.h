// Helpers shared by the core tests: a way to assert on the VaultError an expression throws
// (temporary directories and clocks come from tests/support/).

#pragma once

#include "core/error.h"
#include "tests/support/clock.h"
#include "tests/support/temp-dir.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/string.h>
#include <string>

namespace credvault::core::testing {

using support::FakeClock;
using support::TempDir;

// The VaultError `body` throws, or a failure if it throws none (or something else).
struct Caught {
  bool thrown = false;
  ErrorCode code = ErrorCode::INTERNAL;
  std::string field;
  std::string message;
};

template<typename Func>
Caught catchVaultError(Func&& body) {
  Caught c;
  try {
    body();
  } catch (const VaultError& e) {
    c.thrown = true;
    c.code = e.code();
    c.field = e.field().cStr();
    c.message = e.message().cStr();
  }
  return c;
}

inline std::string codeName(ErrorCode code) {
  return errorCodeName(code).cStr();
}

// Asserts that `expr` throws a VaultError with `code` (and, when non-empty, `field`).
#define EXPECT_VAULT_ERROR(expr, code_, field_)                                              \
  do {                                                                                       \
    auto caught_ = ::credvault::core::testing::catchVaultError([&]() { (void)(expr); });     \
    EXPECT_TRUE(caught_.thrown) << #expr << " did not throw a VaultError";                   \
    if (caught_.thrown) {                                                                    \
      EXPECT_EQ(::credvault::core::testing::codeName(caught_.code),                          \
                ::credvault::core::testing::codeName(code_))                                 \
          << #expr << ": " << caught_.message;                                               \
      if (std::string(field_).size() > 0) { EXPECT_EQ(caught_.field, std::string(field_)); } \
    }                                                                                        \
  } while (false)

}  // namespace credvault::core::testing
