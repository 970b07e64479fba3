// credvault-gateway SOAP — User.svc: the seven UntrustedCredentials operations.
//
// Reading is lenient where WCF is (element order, unknown elements and xsi:type are not
// checked) and strict where a silent default would surprise (a duplicated element, a
// malformed number, date or boolean, a missing Type or Credentials is an error naming the
// element). Writing follows the published examples (element order, namespace prefixes,
// dateTime as "2021-03-25T21:36:23Z", "0001-01-01T00:00:00" for DateTime.MinValue, empty
// elements for the void operations, withheld secrets as "") except for their xsi:type
// attributes: like WCF's DataContractSerializer, which the real NetServer uses, values of
// declared types carry none (clients such as node-soap read an attributed element as an
// object rather than a value).

#pragma once

#include "frontends/common/operations.h"
#include "frontends/soap/envelope.h"

namespace credvault::soap {

kj::OneOf<frontends::OpRequest, frontends::Failure> readUserOperation(const xml::Element& op,
                                                                      frontends::Op which,
                                                                      kj::StringPtr ns);

// <User:OpResponse>...</User:OpResponse> for a result (on failure: an empty response).
void writeUserResponse(ResponseWriter& w, frontends::Op op, const frontends::OpResult& result);

// The response headers SuperOffice sends: ExceptionInfo (on failure) and Succeeded.
void writeResultHeaders(ResponseWriter& w, kj::Maybe<const frontends::Failure&> failure);

// xsd:dateTime as SuperOffice writes it.
kj::String formatDateTime(int64_t ticks);
// Reads xsd:dateTime (offsets converted to UTC; no offset = UTC); "" is not a date.
kj::Maybe<int64_t> parseDateTime(kj::StringPtr text);

}  // namespace credvault::soap
