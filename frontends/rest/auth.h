// credvault-gateway REST — the Authorization and SO-AppToken headers.
//
// Schemes are matched case-insensitively: "Basic" (base64 of user:password, on-site),
// "SoTicket" (a ticket, 7T:…; SuperOffice documents it as SOTicket, clients send any case),
// "Bearer" (an API token). The gateway only reads them; the daemon decides whether they are
// valid, so a wrong password and a revoked ticket both come back from it as 401. Decoded
// passwords are wiped. Never logs.

#pragma once

#include "frontends/common/operations.h"
#include "frontends/http/message.h"
#include "frontends/rest/binding.h"

namespace credvault::rest {

// The Authorization and SO-AppToken headers as a Caller; 401 when there are none or they
// cannot be read (the daemon judges whether they are valid). The caller carries the client's
// address and the request id for the daemon's throttling and audit records.
kj::OneOf<frontends::Caller, RestError> callerFrom(const http::HttpRequest& request);

}  // namespace credvault::rest
