// Helpers shared by the core tests: a way to assert on the refusal an expression returns
// (temporary directories and clocks come from tests/support/).

#pragma once

#include "core/error.h"
#include "ipc/errors.h"
#include "tests/support/clock.h"
#include "tests/support/temp-dir.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/string.h>
#include <string>
#include <type_traits>

namespace credvault::core::testing {

using support::FakeClock;
using support::TempDir;

// What `body` was refused with, if anything.
struct Caught {
  bool thrown = false;
  ErrorCode code = ErrorCode::INTERNAL;
  std::string field;
  std::string message;
};

inline void record(Caught& c, const Refusal& r) {
  c.thrown = true;
  c.code = r.code;
  c.field = r.field.cStr();
  c.message = r.message.cStr();
}

// The refusal `body` returns (a check's kj::Maybe<Refusal>, a Result<T>), or the integrity
// failure it throws, read as the `integrity` refusal the daemon answers it with; `thrown` is
// false when it did neither. Any other exception propagates (the test fails).
template<typename Func>
Caught catchRefusal(Func&& body) {
  Caught c;
  try {
    using R = decltype(body());
    if constexpr (std::is_same_v<R, kj::Maybe<Refusal>>) {
      KJ_IF_MAYBE(r, body()) { record(c, *r); }
    } else if constexpr (IsResult<R>::value) {
      auto result = body();
      KJ_IF_MAYBE(r, result.refused()) { record(c, *r); }
    } else {
      body();
    }
  } catch (const kj::Exception& e) {
    // Damaged data is thrown (core/error.h); anything else is not a refusal.
    if (!isIntegrityFailure(e)) throw;
    c.thrown = true;
    c.code = ErrorCode::INTEGRITY;
    c.message = integrityMessage(e).cStr();
  }
  return c;
}

// The code's name as the wire knows it (core's values are rpc::ErrorCode's, core/error.h).
inline std::string codeName(ErrorCode code) {
  return ipc::errorCodeName(static_cast<rpc::ErrorCode>(code)).cStr();
}

// Asserts that `expr` is refused (returns or throws) with `code` (and, when non-empty, `field`).
#define EXPECT_VAULT_ERROR(expr, code_, field_)                                               \
  do {                                                                                        \
    auto caught_ =                                                                            \
        ::credvault::core::testing::catchRefusal([&]() -> decltype(auto) { return (expr); }); \
    EXPECT_TRUE(caught_.thrown) << #expr << " was not refused";                               \
    if (caught_.thrown) {                                                                     \
      EXPECT_EQ(::credvault::core::testing::codeName(caught_.code),                           \
                ::credvault::core::testing::codeName(code_))                                  \
          << #expr << ": " << caught_.message;                                                \
      if (std::string(field_).size() > 0) { EXPECT_EQ(caught_.field, std::string(field_)); }  \
    }                                                                                         \
  } while (false)

// Asserts that `expr` is neither refused nor throws.
#define EXPECT_ACCEPTED(expr)                                                                 \
  do {                                                                                        \
    auto caught_ =                                                                            \
        ::credvault::core::testing::catchRefusal([&]() -> decltype(auto) { return (expr); }); \
    EXPECT_FALSE(caught_.thrown) << #expr << ": " << caught_.message;                         \
  } while (false)

}  // namespace credvault::core::testing
