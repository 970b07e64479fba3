// libFuzzer target: daemon/config.h applyConfigFile, credvaultd.conf as an administrator (or
// a package's conffile merge) may leave it.
//
// Checks: bad content is refused with one line "PATH:LINE: message" (the daemon prints it and
// exits), never an exception or a crash; accepted content leaves every setting in its
// documented range.

#include "daemon/config.h"
#include "tests/fuzz/fuzz-util.h"

#include <kj/debug.h>

namespace credvault::daemon {
namespace {

void fuzzOne(kj::ArrayPtr<const char> input) {
  auto config = defaultConfig();
  auto content = kj::heapString(input);
  KJ_IF_MAYBE(error, applyConfigFile(config, "/etc/credvault/credvaultd.conf", content)) {
    KJ_ASSERT(error->startsWith("/etc/credvault/credvaultd.conf"), *error);
    KJ_ASSERT(error->findFirst('\n') == nullptr, *error);
    return;
  }
  KJ_ASSERT(config.socketMode <= 0777);
  KJ_ASSERT(config.passwordQueuePerUid >= 1 && config.passwordQueuePerUid <= 100000);
  KJ_ASSERT(config.passwordQueuePerClient >= 1 && config.passwordQueuePerClient <= 100000);
  KJ_ASSERT(config.ticketLifetimeSeconds >= 60 && config.ticketLifetimeSeconds <= 30 * 86400);
  KJ_ASSERT(config.drainTimeout <= 10 * kj::MINUTES);
  KJ_IF_MAYBE(path, config.auditLog) { KJ_ASSERT(path->startsWith("/")); }
}

}  // namespace
}  // namespace credvault::daemon

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credvault::fuzz::runOne([&]() {
    credvault::daemon::fuzzOne(kj::arrayPtr(reinterpret_cast<const char*>(data), size));
  });
  return 0;
}
