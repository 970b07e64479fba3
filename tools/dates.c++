#include "dates.h"
#include "base/parse-int.h"
#include "ipc/client.h"

#include <time.h>

namespace credvault::ctl {

kj::Maybe<int64_t> parseDuration(kj::StringPtr text) {
  if (text.size() < 2) return nullptr;
  int64_t unit;
  switch (text[text.size() - 1]) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    case 'w':
      unit = 7 * 86400;
      break;
    default:
      return nullptr;
  }
  int64_t n;
  KJ_IF_MAYBE(v, base::unsignedOrNull(text.slice(0, text.size() - 1), 1'000'000'000)) {
    n = static_cast<int64_t>(*v);
  } else {
    return nullptr;
  }
  int64_t seconds = n * unit;
  // Past 10,000 years nothing is representable anyway.
  if (seconds == 0 || seconds > 10'000LL * 366 * 86400) return nullptr;
  return seconds;
}

kj::Maybe<int64_t> parseDate(kj::StringPtr text, int64_t now) {
  if (text == "none") return int64_t(0);
  if (text.startsWith("+")) {
    KJ_IF_MAYBE(s, parseDuration(text.slice(1))) {
      // From the current whole second: "+90d" is a date a person reads back, not a fraction.
      int64_t t = now - now % TICKS_PER_SECOND + *s * TICKS_PER_SECOND;
      if (t > ipc::MAX_TICKS) return nullptr;
      return t;
    }
    return nullptr;
  }
  KJ_IF_MAYBE(t, ipc::parseTicks(text)) {
    // 0001-01-01T00:00:00 is .NET's "unset": refuse it as a date rather than open silently.
    if (*t <= 0) return nullptr;
    return *t;
  }
  return nullptr;
}

kj::String formatDate(int64_t ticks, kj::StringPtr open) {
  if (ticks == 0) return kj::heapString(open);
  return kj::str(ipc::formatTicks(ticks), "Z");
}

kj::String formatUnix(int64_t unixSeconds) {
  return formatDate(unixSeconds * TICKS_PER_SECOND + UNIX_EPOCH_TICKS);
}

int64_t nowTicks() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return UNIX_EPOCH_TICKS + int64_t(ts.tv_sec) * TICKS_PER_SECOND + ts.tv_nsec / 100;
}

kj::StringPtr validityState(bool isActive, int64_t validFrom, int64_t validTo, int64_t now) {
  bool expired = validTo != 0 && validTo <= now;
  bool early = !expired && validFrom != 0 && validFrom > now;
  if (!isActive) {
    return expired ? "inactive,expired" : early ? "inactive,not-yet-valid" : "inactive";
  }
  return expired ? "expired" : early ? "not-yet-valid" : "active";
}

}  // namespace credvault::ctl
