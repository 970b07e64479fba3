#include "process.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

namespace credvault::frontends {

kj::Maybe<kj::String> hardenProcess() {
  struct rlimit none = {0, 0};
  if (setrlimit(RLIMIT_CORE, &none) != 0) {
    int error = errno;
    // A seccomp filter may refuse the call where the service manager already set the limit
    // (LimitCORE=0): what matters is the limit, not who set it.
    struct rlimit current;
    if (getrlimit(RLIMIT_CORE, &current) != 0 || current.rlim_cur != 0 || current.rlim_max != 0) {
      return kj::str("cannot turn off core dumps (setrlimit RLIMIT_CORE): ", strerror(error));
    }
  }
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return kj::str("cannot make the process non-dumpable (prctl PR_SET_DUMPABLE): ",
                   strerror(errno));
  }
  return nullptr;
}

}  // namespace credvault::frontends
