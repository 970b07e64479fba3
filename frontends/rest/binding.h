// credvault-gateway REST — request bodies (JSON, XML, form) bound to an operation's parameters.
//
// Binds the way ASP.NET Web API binds SuperOffice's agent parameters: property names match
// ASCII case-insensitively; unknown properties are ignored (SuperOffice's carriers carry
// TableRight and FieldProperties, which a client may send back); a simple parameter
// (AssociateId, Type, PublicValue) may also come from the query string when the body does
// not carry it. Where ASP.NET would coerce, this binder refuses with a 400 naming the field
// ("Credentials.IsActive must be true or false, not a string"):
//   - JSON types are checked (a number is not a string, "5" is not an integer);
//   - XML and form values are text and are parsed (xsd:int, xsd:boolean, ISO 8601 dates);
//   - Type (and PublicValue for Remove) must be present; Save needs a Credentials object;
//   - AssociateId absent means 0, the caller (SuperOffice's convention);
//   - in Credentials: SecretValue absent or null keeps the stored secret; an absent or null
//     date is DateTime.MinValue (open-ended); other absent fields take .NET defaults.
// Dates are ISO 8601, with or without fractional seconds and offset (no offset = UTC).
// Messages never quote a value. Never logs.

#pragma once

#include "frontends/common/operations.h"
#include "frontends/http/message.h"
#include "frontends/rest/form.h"

#include <kj/one-of.h>

namespace credvault::rest {

using kj::uint;

// An HTTP-level answer other than success: status, ASP.NET-style Message and MessageDetail.
struct RestError {
  uint status;
  kj::String message;
  kj::String detail;
  kj::Maybe<kj::String> field;     // e.g. "Credentials.SecretValue", for tests and docs
  uint32_t retryAfterSeconds = 0;  // 429: sent as Retry-After
};

RestError badRequest(kj::StringPtr detail, kj::Maybe<kj::StringPtr> field = nullptr);

// Which body parser a Content-Type selects.
enum class BodyKind { NONE, JSON, XML, FORM };
// From the media type and charset; 415 for anything else (or a charset other than UTF-8).
// An empty body needs no Content-Type.
kj::OneOf<BodyKind, RestError> bodyKind(const http::HttpRequest& request);

// Parses `request`'s body and the query string, and binds the parameters of `op`.
kj::OneOf<frontends::OpRequest, RestError> bindRequest(frontends::Op op,
                                                       const http::HttpRequest& request,
                                                       const FormData& query);

}  // namespace credvault::rest
