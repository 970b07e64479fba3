// credvault-gateway SOAP — envelopes: reading requests, writing responses and faults.
//
// Reads SOAP 1.1 and 1.2 envelopes with any prefixes; the SuperOffice request headers
// (ApplicationToken, Credentials/Ticket, TimeZone) may sit in <Header> or, as in
// SuperOffice's own published examples, directly under <Envelope>. Writes responses in the
// layout of those examples (prefixes SOAP-ENV, xsi, xsd, NetServerServicesNN1/2, and the
// service's own prefix), in the SOAP version of the request. Never logs; fault texts never
// quote request content.

#pragma once

#include "frontends/xml/reader.h"
#include "frontends/xml/writer.h"

#include <kj/arena.h>
#include <kj/one-of.h>

namespace credvault::soap {

using kj::uint;

constexpr kj::StringPtr SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"_kj;
constexpr kj::StringPtr SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"_kj;
constexpr kj::StringPtr SUPEROFFICE_NS_BASE = "http://www.superoffice.net/ws/crm/NetServer/"_kj;

enum class SoapVersion { V11, V12 };

kj::StringPtr envelopeNamespace(SoapVersion v);
kj::StringPtr contentType(
    SoapVersion v);  // "text/xml; charset=utf-8" / "application/soap+xml; ..."

// The SuperOffice service a URL addresses: ServicesNN and User or SoPrincipal.
struct ServiceAddress {
  uint version;           // 75, 80..88
  kj::StringPtr service;  // "User" or "SoPrincipal"
  kj::String ns;          // http://www.superoffice.net/ws/crm/NetServer/ServicesNN
};

struct Envelope {
  SoapVersion version;
  const xml::Element* operation;  // the single child of Body
  kj::Maybe<kj::StringPtr> ticket;
  kj::Maybe<kj::StringPtr> appToken;
};

struct Fault {
  SoapVersion version;
  enum Code { SENDER, RECEIVER, VERSION_MISMATCH, MUST_UNDERSTAND } code;
  kj::String reason;  // fixed text; never request content
};

// Checks the envelope structure and collects the SuperOffice headers for `serviceNs`.
kj::OneOf<Envelope, Fault> readEnvelope(const xml::Document& document, kj::StringPtr serviceNs,
                                        SoapVersion guess);

// The HTTP status a fault is sent with: 500 for SOAP 1.1 (WS-I BP), 400 for a SOAP 1.2
// Sender fault, 500 otherwise.
uint faultHttpStatus(const Fault& fault);
kj::Array<kj::byte> writeFault(const Fault& fault);

// Writes a response envelope in the published layout. Usage: construct, optionally
// header() ... endHeader(), then body() ... finish().
class ResponseWriter {
 public:
  // `servicePrefix`: "User" or "SoPrincipal" — the prefix bound to the service namespace.
  ResponseWriter(SoapVersion version, const ServiceAddress& address);

  xml::XmlWriter& xml() { return writer_; }
  kj::StringPtr prefix() const { return prefix_; }
  // A qualified name in the service namespace: q("Response") -> "User:Response".
  kj::StringPtr q(kj::StringPtr local);

  void beginHeader();
  void endHeader();
  void beginBody();
  // Closes Body and Envelope; returns the document (null when a value was lossy).
  kj::Maybe<kj::Array<kj::byte>> finish();

  // Indentation in the style of the published examples.
  void newline(uint depth);

 private:
  SoapVersion version_;
  kj::StringPtr prefix_;
  xml::XmlWriter writer_;
  kj::Arena names_;  // qualified names handed out by q(); one allocation per ~1 KiB
};

}  // namespace credvault::soap
