// credvaultctl — dates and durations as people type them, and as every output prints them.
//
// Input: "2030-01-01" (midnight UTC), "2030-01-01T10:00:00Z" (or with an offset, converted
// to UTC; without one, UTC), "+90d" relative to now (units s, m, h, d, w), and "none" for
// an open end (.NET DateTime.MinValue, stored as 0). Output: ISO 8601 in UTC with "Z".

#pragma once

#include "base/ticks.h"

#include <stdint.h>
#include <kj/string.h>

namespace credvault::ctl {

using base::TICKS_PER_SECOND;
using base::UNIX_EPOCH_TICKS;

// Seconds in "90d", "12h", "30m", "45s", "2w"; null when malformed, zero or absurdly large.
kj::Maybe<int64_t> parseDuration(kj::StringPtr text);

// Ticks for one of the input forms above (`nowTicks` for the relative one); null when
// malformed or out of range.
kj::Maybe<int64_t> parseDate(kj::StringPtr text, int64_t nowTicks);

// "2030-01-01T10:00:00Z" (a fraction only when there is one). 0 (open) prints as `open`.
kj::String formatDate(int64_t ticks, kj::StringPtr open = "-");
kj::String formatUnix(int64_t unixSeconds);

int64_t nowTicks();

// Where a credential stands at `now`: "active", "expired", "not-yet-valid", "inactive", or
// "inactive,expired" / "inactive,not-yet-valid".
kj::StringPtr validityState(bool isActive, int64_t validFrom, int64_t validTo, int64_t now);

}  // namespace credvault::ctl
