// credvault-gateway REST — responses: content negotiation, dates, $select, JSON and XML.
//
// JSON is written in PascalCase in the carrier's field order, as SuperOffice's WebAPI writes
// it (with "TableRight": null and "FieldProperties": {}). XML follows ASP.NET Web API's
// DataContract layout: <UntrustedCredentials> / <ArrayOfUntrustedCredentials> in namespace
// http://schemas.datacontract.org/2004/07/SuperOffice.CRM.Services, null as i:nil="true",
// errors as <Error><Message/><MessageDetail/></Error>.
//
// Dates are written as .NET writes a UTC DateTime: "2024-05-01T12:00:00Z", with up to seven
// fractional digits and trailing zeros dropped ("…:00.5Z"); DateTime.MinValue (0, open-ended)
// as "0001-01-01T00:00:00Z": every date carries its offset, as OpenAPI's date-time requires.
//
// Response bodies may hold secrets: they are built in wiped buffers. A value that cannot be
// carried (invalid UTF-8, or a character XML 1.0 forbids) makes the whole response a 500
// rather than an altered secret. Never logs.

#pragma once

#include "frontends/common/operations.h"
#include "frontends/http/message.h"
#include "frontends/rest/form.h"

namespace credvault::rest {

using kj::uint;

enum class Format { JSON, XML };

struct Negotiated {
  Format format = Format::JSON;
  kj::StringPtr contentType = "application/json; charset=utf-8";
};

// From Accept: the acceptable type with the highest q (ties: the first listed) among
// application/json, text/json, application/xml, text/xml (and */*, application/*, text/*,
// application/*+json); JSON when Accept is absent or names nothing supported (as ASP.NET
// falls back to its first formatter).
Negotiated negotiate(const http::HttpRequest& request);

// .NET ticks as described above.
kj::String formatDate(int64_t ticks);

// $select: a comma-separated list of carrier properties, case-insensitive; the others are
// written as null. Unknown names are ignored; "a/b" selects "a".
struct Selection {
  bool all = true;
  bool fields[8] = {};  // index by CarrierField
};
enum CarrierField {
  VALID_FROM,
  VALID_TO,
  COMMENT,
  SECRET_VALUE,
  PUBLIC_VALUE,
  IS_ACTIVE,
  TABLE_RIGHT,
  FIELD_PROPERTIES
};
Selection parseSelect(kj::Maybe<kj::StringPtr> select);

// 200 with one carrier (CreateDefault) or an array of them (Get*).
http::HttpResponse renderCredentials(const Negotiated& n,
                                     capnp::List<rpc::Credential>::Reader credentials, bool asList,
                                     const Selection& selection);

// An error body {"Message": …, "MessageDetail": …} (or <Error>) with `status`.
http::HttpResponse renderError(const Negotiated& n, uint status, kj::StringPtr message,
                               kj::StringPtr detail);

// Any JSON value written by the caller, as a response.
http::HttpResponse jsonResponse(uint status, http::WipedBytes body);

}  // namespace credvault::rest
