#include "envelope.h"

#include <kj/debug.h>
#include <string.h>

namespace credvault::soap {

kj::StringPtr envelopeNamespace(SoapVersion v) {
  return v == SoapVersion::V11 ? SOAP11_NS : SOAP12_NS;
}

kj::StringPtr contentType(SoapVersion v) {
  return v == SoapVersion::V11 ? "text/xml; charset=utf-8"_kj
                               : "application/soap+xml; charset=utf-8"_kj;
}

namespace {

Fault fault(SoapVersion v, Fault::Code code, kj::StringPtr reason) {
  return Fault{v, code, kj::heapString(reason)};
}

bool isTrue(kj::StringPtr s) {
  return s == "1" || s == "true";
}

}  // namespace

kj::OneOf<Envelope, Fault> readEnvelope(const xml::Document& document, kj::StringPtr serviceNs,
                                        SoapVersion guess) {
  const xml::Element& root = document.root();
  SoapVersion v;
  if (root.is(SOAP11_NS, "Envelope")) {
    v = SoapVersion::V11;
  } else if (root.is(SOAP12_NS, "Envelope")) {
    v = SoapVersion::V12;
  } else if (root.local == "Envelope") {
    return fault(guess, Fault::VERSION_MISMATCH,
                 "The Envelope is not in a SOAP 1.1 or SOAP 1.2 namespace");
  } else {
    return fault(guess, Fault::SENDER, "The document is not a SOAP Envelope");
  }
  kj::StringPtr envNs = envelopeNamespace(v);

  Envelope env{v, nullptr, nullptr, nullptr};
  const xml::Element* body = nullptr;
  size_t appTokens = 0, credentials = 0, headers = 0;

  // SuperOffice headers are accepted both in <Header> and directly under <Envelope>.
  auto takeHeader = [&](const xml::Element& h) -> kj::Maybe<Fault> {
    if (h.ns == serviceNs) {
      if (h.local == "ApplicationToken") {
        if (++appTokens > 1)
          return fault(v, Fault::SENDER, "ApplicationToken appears more than once");
        if (!h.isNil()) env.appToken = h.text;
      } else if (h.local == "Credentials") {
        if (++credentials > 1) return fault(v, Fault::SENDER, "Credentials appears more than once");
        if (h.count(serviceNs, "Ticket") > 1) {
          return fault(v, Fault::SENDER, "Credentials/Ticket appears more than once");
        }
        KJ_IF_MAYBE(t, h.child(serviceNs, "Ticket")) {
          if (!t->isNil()) env.ticket = t->text;
        }
      }
      // TimeZone and anything else of ours: not needed (dates are UTC).
      return nullptr;
    }
    if (h.ns.startsWith(SUPEROFFICE_NS_BASE) &&
        (h.local == "ApplicationToken" || h.local == "Credentials")) {
      return fault(v, Fault::SENDER,
                   kj::str("The ", h.local, " header is in another service version's namespace"));
    }
    KJ_IF_MAYBE(mu, h.attribute(envNs, "mustUnderstand")) {
      if (isTrue(*mu)) {
        return fault(v, Fault::MUST_UNDERSTAND, "A header marked mustUnderstand is not understood");
      }
    }
    return nullptr;
  };

  for (auto* child : root.children) {
    if (child->is(envNs, "Header")) {
      if (++headers > 1 || body != nullptr) {
        return fault(v, Fault::SENDER, "Header must appear once, before Body");
      }
      for (auto* h : child->children) {
        KJ_IF_MAYBE(f, takeHeader(*h)) { return kj::mv(*f); }
      }
    } else if (child->is(envNs, "Body")) {
      if (body != nullptr) return fault(v, Fault::SENDER, "Body appears more than once");
      body = child;
    } else if (child->ns == SOAP11_NS || child->ns == SOAP12_NS) {
      return fault(v, Fault::SENDER, "Unexpected SOAP element in Envelope");
    } else {
      KJ_IF_MAYBE(f, takeHeader(*child)) { return kj::mv(*f); }
    }
  }
  if (body == nullptr) return fault(v, Fault::SENDER, "The Envelope has no Body");
  if (body->children.size() == 0) return fault(v, Fault::SENDER, "The Body is empty");
  if (body->children.size() > 1) {
    return fault(v, Fault::SENDER, "The Body must contain exactly one operation");
  }
  env.operation = body->children[0];
  return kj::mv(env);
}

uint faultHttpStatus(const Fault& f) {
  if (f.version == SoapVersion::V11) return 500;
  return f.code == Fault::RECEIVER ? 500 : 400;
}

kj::Array<kj::byte> writeFault(const Fault& f) {
  xml::XmlWriter w(1024);
  w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  w.start("SOAP-ENV:Envelope").attr("xmlns:SOAP-ENV", envelopeNamespace(f.version));
  w.raw("\n ");
  w.start("SOAP-ENV:Body").raw("\n  ");
  w.start("SOAP-ENV:Fault").raw("\n   ");
  if (f.version == SoapVersion::V11) {
    kj::StringPtr code;
    switch (f.code) {
      case Fault::SENDER:
        code = "SOAP-ENV:Client";
        break;
      case Fault::RECEIVER:
        code = "SOAP-ENV:Server";
        break;
      case Fault::VERSION_MISMATCH:
        code = "SOAP-ENV:VersionMismatch";
        break;
      case Fault::MUST_UNDERSTAND:
        code = "SOAP-ENV:MustUnderstand";
        break;
    }
    w.start("faultcode").text(code).end().raw("\n   ");
    w.start("faultstring").attr("xml:lang", "en").text(f.reason).end().raw("\n  ");
  } else {
    kj::StringPtr code;
    switch (f.code) {
      case Fault::SENDER:
        code = "SOAP-ENV:Sender";
        break;
      case Fault::RECEIVER:
        code = "SOAP-ENV:Receiver";
        break;
      case Fault::VERSION_MISMATCH:
        code = "SOAP-ENV:VersionMismatch";
        break;
      case Fault::MUST_UNDERSTAND:
        code = "SOAP-ENV:MustUnderstand";
        break;
    }
    w.start("SOAP-ENV:Code").raw("\n    ");
    w.start("SOAP-ENV:Value").text(code).end().raw("\n   ");
    w.end().raw("\n   ");
    w.start("SOAP-ENV:Reason").raw("\n    ");
    w.start("SOAP-ENV:Text").attr("xml:lang", "en").text(f.reason).end().raw("\n   ");
    w.end().raw("\n  ");
  }
  w.end().raw("\n ");  // Fault
  w.end().raw("\n");   // Body
  w.end().raw("\n");   // Envelope
  return w.finish();
}

// ---- ResponseWriter -------------------------------------------------------------------------

ResponseWriter::ResponseWriter(SoapVersion version, const ServiceAddress& address)
    : version_(version), prefix_(address.service), writer_(4096), names_(1024) {
  auto& w = writer_;
  w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  w.start("SOAP-ENV:Envelope");
  w.rawAttributes(kj::str("\n xmlns:SOAP-ENV=\"", envelopeNamespace(version), "\""));
  w.rawAttributes(version == SoapVersion::V11
                      ? "\n xmlns:SOAP-ENC=\"http://schemas.xmlsoap.org/soap/encoding/\""
                      : "\n xmlns:SOAP-ENC=\"http://www.w3.org/2003/05/soap-encoding\"");
  w.rawAttributes(
      "\n xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
      "\n xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"");
  auto nn = kj::str("NetServerServices", address.version);
  if (address.service == "SoPrincipal") {
    w.rawAttributes(
        kj::str("\n xmlns:", nn,
                "2=\"http://schemas.datacontract.org/2004/07/System.Security.Cryptography\""
                "\n xmlns:",
                nn,
                "3=\"http://schemas.microsoft.com/2003/10/Serialization/Arrays\""
                "\n xmlns:",
                nn, "1=\"http://schemas.microsoft.com/2003/10/Serialization/\""));
  } else {
    w.rawAttributes(kj::str("\n xmlns:", nn,
                            "2=\"http://schemas.microsoft.com/2003/10/Serialization/Arrays\""
                            "\n xmlns:",
                            nn, "1=\"http://schemas.microsoft.com/2003/10/Serialization/\""));
  }
  w.rawAttributes(kj::str("\n xmlns:", prefix_, "=\"", address.ns, "\""));
}

kj::StringPtr ResponseWriter::q(kj::StringPtr local) {
  size_t n = prefix_.size() + 1 + local.size();
  auto chars = names_.allocateArray<char>(n + 1);
  memcpy(chars.begin(), prefix_.begin(), prefix_.size());
  chars[prefix_.size()] = ':';
  memcpy(chars.begin() + prefix_.size() + 1, local.begin(), local.size());
  chars[n] = '\0';
  return kj::StringPtr(chars.begin(), n);
}

void ResponseWriter::newline(uint depth) {
  static constexpr char SPACES[] = "\n                ";
  writer_.rawBytes(kj::arrayPtr(SPACES, kj::min<size_t>(depth, sizeof(SPACES) - 2) + 1));
}

void ResponseWriter::beginHeader() {
  newline(1);
  writer_.start("SOAP-ENV:Header");
}

void ResponseWriter::endHeader() {
  newline(1);
  writer_.end();
}

void ResponseWriter::beginBody() {
  newline(1);
  writer_.start("SOAP-ENV:Body");
}

kj::Maybe<kj::Array<kj::byte>> ResponseWriter::finish() {
  newline(1);
  writer_.end();  // Body
  writer_.raw("\n");
  writer_.end();  // Envelope
  writer_.raw("\n");
  auto out = writer_.finish();
  if (writer_.lossy()) {
    explicit_bzero(out.begin(), out.size());
    return nullptr;
  }
  return kj::mv(out);
}

}  // namespace credvault::soap
