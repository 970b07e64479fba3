// Tests for frontends/process: the gateway's hardening at start.

#include "frontends/process.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>

namespace credvault::frontends {
namespace {

TEST(HardenProcess, TurnsOffCoreDumpsAndDumpability) {
  // The test process itself: what it checks cannot be seen from outside without root (see
  // the gateway integration test for the running gateway).
  EXPECT_TRUE(hardenProcess() == nullptr);
  EXPECT_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
  struct rlimit core;
  ASSERT_EQ(getrlimit(RLIMIT_CORE, &core), 0);
  EXPECT_EQ(core.rlim_cur, 0u);
  EXPECT_EQ(core.rlim_max, 0u);
  // Again: lowering a limit to what it is and clearing a cleared flag both succeed.
  EXPECT_TRUE(hardenProcess() == nullptr);
}

}  // namespace
}  // namespace credvault::frontends
