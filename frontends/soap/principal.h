// credvault-gateway SOAP — SoPrincipal.svc: AuthenticateUsernamePassword.
//
// Answers AuthenticateResponse with the principal fields credvault has (associate id and
// name, user type, role type), Credentials/Ticket and AuthenticationSucceeded. A wrong
// name or password gives AuthenticationSucceeded=false, Response and Credentials nil — no
// ticket and no hint which of the two was wrong.

#pragma once

#include "frontends/common/operations.h"
#include "frontends/soap/envelope.h"

namespace credvault::soap {

struct LoginRequest {
  kj::String userName;
  frontends::SensitiveText password;
};

kj::OneOf<LoginRequest, frontends::Failure> readLogin(const xml::Element& op, kj::StringPtr ns);

void writeLoginResponse(ResponseWriter& w, const frontends::LoginResult& result);

}  // namespace credvault::soap
