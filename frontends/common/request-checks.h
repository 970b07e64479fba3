// credvault-gateway — SuperOffice's limits on an operation's request, checked before it is sent.
//
// SecretValue 70, PublicValue 238, Comment 255 characters (SuperOffice's own limits, stricter
// than the daemon's), valid UTF-8, dates in range. The daemon checks everything again; these
// answer a SuperOffice client the way SuperOffice would.

#pragma once

#include "frontends/common/failure.h"

namespace credvault::frontends {

struct OpRequest;

// Null when the request may be sent.
kj::Maybe<Failure> validate(const OpRequest& request);

// Number of Unicode code points in valid UTF-8 text.
size_t countCodePoints(kj::StringPtr text);
bool isValidUtf8(kj::StringPtr text);

}  // namespace credvault::frontends
