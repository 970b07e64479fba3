// credvault-gateway SOAP — WSDL documents served at ?wsdl.
//
// One per service (User, SoPrincipal) and version: document/literal, a SOAP 1.1
// BasicHttpBinding with the SuperOffice request headers (ApplicationToken, Credentials,
// TimeZone) and response headers (ExceptionInfo, ExtraInfo, Succeeded, TimeZone) declared
// as soap:header parts, as SuperOffice's own WSDL does — so generated clients (zeep, .NET
// svcutil) can set them. Only what credvault serves is described: the seven
// UntrustedCredentials operations, and AuthenticateUsernamePassword.

#pragma once

#include <kj/string.h>

namespace credvault::soap {

// `ns`: the service namespace; `location`: the absolute URL of the endpoint.
kj::String userWsdl(kj::StringPtr ns, kj::StringPtr location);
kj::String principalWsdl(kj::StringPtr ns, kj::StringPtr location);

}  // namespace credvault::soap
