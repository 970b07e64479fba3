#include "render.h"

#include "base/ascii.h"
#include "base/ticks.h"

#include "frontends/rest/json.h"
#include "frontends/xml/writer.h"
#include "ipc/client.h"

#include <kj/debug.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

namespace credvault::rest {

namespace {

constexpr kj::StringPtr XML_NS =
    "http://schemas.datacontract.org/2004/07/SuperOffice.CRM.Services"_kj;
constexpr kj::StringPtr XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"_kj;

using base::equalsIgnoreCase;

// A copy of [b, e) without surrounding blanks.
kj::String trimmed(const char* b, const char* e) {
  return kj::heapString(base::trimOws(kj::arrayPtr(b, e)));
}

// q of one Accept element ("type/sub;q=0.5"); 1 when absent, -1 when malformed.
double qualityOf(kj::StringPtr params) {
  double q = 1;
  const char* p = params.begin();
  const char* end = params.end();
  while (p < end) {
    const char* semi = static_cast<const char*>(memchr(p, ';', end - p));
    const char* stop = semi == nullptr ? end : semi;
    auto param = trimmed(p, stop);
    if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
      auto text = kj::heapString(param.slice(2));
      char* rest = nullptr;
      q = strtod(text.cStr(), &rest);
      if (rest == text.cStr() || *rest != '\0' || q < 0 || q > 1) return -1;
    }
    if (semi == nullptr) break;
    p = semi + 1;
  }
  return q;
}

const char* const CARRIER_NAMES[8] = {"ValidFrom",   "ValidTo",  "Comment",    "SecretValue",
                                      "PublicValue", "IsActive", "TableRight", "FieldProperties"};

bool selected(const Selection& s, CarrierField f) {
  return s.all || s.fields[f];
}

void writeJsonCarrier(JsonWriter& w, rpc::Credential::Reader c, const Selection& s) {
  w.beginObject();
  auto date = [&](CarrierField f, int64_t ticks) {
    w.key(CARRIER_NAMES[f]);
    if (selected(s, f))
      w.string(formatDate(ticks));
    else
      w.null();
  };
  auto text = [&](CarrierField f, kj::StringPtr value) {
    w.key(CARRIER_NAMES[f]);
    if (selected(s, f))
      w.string(value);
    else
      w.null();
  };
  date(VALID_FROM, c.getValidFrom());
  date(VALID_TO, c.getValidTo());
  text(COMMENT, c.getComment());
  // A withheld secret (null: another associate's, read by a userAdmin) is blank, as
  // SuperOffice leaves it.
  text(SECRET_VALUE, c.getSecretValue());
  text(PUBLIC_VALUE, c.getPublicValue());
  w.key(CARRIER_NAMES[IS_ACTIVE]);
  if (selected(s, IS_ACTIVE))
    w.boolean(c.getIsActive());
  else
    w.null();
  w.key(CARRIER_NAMES[TABLE_RIGHT]).null();
  w.key(CARRIER_NAMES[FIELD_PROPERTIES]);
  if (selected(s, FIELD_PROPERTIES))
    w.raw("{}");
  else
    w.null();
  w.endObject();
}

void writeXmlCarrier(xml::XmlWriter& w, kj::StringPtr element, bool root, rpc::Credential::Reader c,
                     const Selection& s) {
  w.start(element);
  if (root) {
    w.attr("xmlns:i", XSI_NS);
    w.attr("xmlns", XML_NS);
  }
  auto field = [&](CarrierField f, kj::StringPtr value) {
    if (selected(s, f)) {
      w.start(CARRIER_NAMES[f]).text(value).end();
    } else {
      w.start(CARRIER_NAMES[f]).attr("i:nil", "true").endEmpty();
    }
  };
  field(VALID_FROM, formatDate(c.getValidFrom()));
  field(VALID_TO, formatDate(c.getValidTo()));
  field(COMMENT, c.getComment());
  field(SECRET_VALUE, c.getSecretValue());  // withheld (null): blank
  field(PUBLIC_VALUE, c.getPublicValue());
  field(IS_ACTIVE, c.getIsActive() ? "true" : "false");
  w.start(CARRIER_NAMES[TABLE_RIGHT]).attr("i:nil", "true").endEmpty();
  if (selected(s, FIELD_PROPERTIES)) {
    w.start(CARRIER_NAMES[FIELD_PROPERTIES]).endEmpty();
  } else {
    w.start(CARRIER_NAMES[FIELD_PROPERTIES]).attr("i:nil", "true").endEmpty();
  }
  w.end();
}

http::HttpResponse withBody(uint status, kj::StringPtr contentType, http::WipedBytes body) {
  http::HttpResponse r;
  r.status = status;
  r.contentType = kj::str(contentType);
  r.body = kj::mv(body);
  return r;
}

http::HttpResponse unrepresentable(const Negotiated& n) {
  return renderError(n, 500, "An error has occurred.",
                     "A stored value cannot be represented in the requested format.");
}

}  // namespace

Negotiated negotiate(const http::HttpRequest& request) {
  Negotiated best;
  KJ_IF_MAYBE(accept, request.header("Accept")) {
    double bestQ = 0;
    bool found = false;
    const char* p = accept->begin();
    const char* end = accept->end();
    while (p < end) {
      const char* comma = static_cast<const char*>(memchr(p, ',', end - p));
      const char* stop = comma == nullptr ? end : comma;
      auto item = trimmed(p, stop);
      kj::String typeCopy;
      kj::StringPtr params;
      KJ_IF_MAYBE(semi, item.findFirst(';')) {
        typeCopy = trimmed(item.begin(), item.begin() + *semi);
        params = item.slice(*semi + 1);
      } else {
        typeCopy = kj::heapString(item);
      }
      double q = qualityOf(params);
      kj::Maybe<Negotiated> candidate;
      if (equalsIgnoreCase(typeCopy, "application/json") || equalsIgnoreCase(typeCopy, "*/*") ||
          equalsIgnoreCase(typeCopy, "application/*") ||
          equalsIgnoreCase(typeCopy, "application/json-patch+json") ||
          equalsIgnoreCase(typeCopy, "application/merge-patch+json")) {
        candidate = Negotiated{Format::JSON, "application/json; charset=utf-8"};
      } else if (equalsIgnoreCase(typeCopy, "text/json")) {
        candidate = Negotiated{Format::JSON, "text/json; charset=utf-8"};
      } else if (equalsIgnoreCase(typeCopy, "application/xml")) {
        candidate = Negotiated{Format::XML, "application/xml; charset=utf-8"};
      } else if (equalsIgnoreCase(typeCopy, "text/xml") || equalsIgnoreCase(typeCopy, "text/*")) {
        candidate = Negotiated{Format::XML, "text/xml; charset=utf-8"};
      }
      KJ_IF_MAYBE(c, candidate) {
        if (q > 0 && (!found || q > bestQ)) {
          best = *c;
          bestQ = q;
          found = true;
        }
      }
      if (comma == nullptr) break;
      p = comma + 1;
    }
  }
  return best;
}

kj::String formatDate(int64_t ticks) {
  // DateTime.MinValue too carries its offset: OpenAPI's date-time (RFC 3339) requires one,
  // and .NET writes a UTC MinValue so as well.
  return kj::str(base::formatTicks(ticks, base::Fraction::TRIMMED), "Z");
}

Selection parseSelect(kj::Maybe<kj::StringPtr> select) {
  Selection s;
  KJ_IF_MAYBE(text, select) {
    s.all = false;
    const char* p = text->begin();
    const char* end = text->end();
    bool any = false;
    while (p <= end) {
      const char* comma = static_cast<const char*>(memchr(p, ',', end - p));
      const char* stop = comma == nullptr ? end : comma;
      const char* slash = static_cast<const char*>(memchr(p, '/', stop - p));
      if (slash != nullptr) stop = slash;
      auto copy = trimmed(p, stop);
      if (copy.size() > 0) any = true;
      for (int f = 0; f < 8; f++) {
        if (equalsIgnoreCase(copy, CARRIER_NAMES[f])) s.fields[f] = true;
      }
      if (comma == nullptr) break;
      p = comma + 1;
    }
    if (!any) s.all = true;  // "$select=" selects everything, as if absent
  }
  return s;
}

http::HttpResponse renderCredentials(const Negotiated& n, capnp::List<rpc::Credential>::Reader list,
                                     bool asList, const Selection& selection) {
  if (n.format == Format::JSON) {
    JsonWriter w;
    if (asList) w.beginArray();
    for (auto c : list) writeJsonCarrier(w, c, selection);
    if (asList) w.endArray();
    if (w.lossy()) return unrepresentable(n);
    return withBody(200, n.contentType, w.finish());
  }
  xml::XmlWriter w;
  if (asList) {
    w.start("ArrayOfUntrustedCredentials").attr("xmlns:i", XSI_NS).attr("xmlns", XML_NS);
    if (list.size() == 0) {
      w.endEmpty();
    } else {
      for (auto c : list) writeXmlCarrier(w, "UntrustedCredentials", false, c, selection);
      w.end();
    }
  } else {
    for (auto c : list) writeXmlCarrier(w, "UntrustedCredentials", true, c, selection);
  }
  if (w.lossy()) return unrepresentable(n);
  return withBody(200, n.contentType, http::WipedBytes(w.finish()));
}

http::HttpResponse renderError(const Negotiated& n, uint status, kj::StringPtr message,
                               kj::StringPtr detail) {
  if (n.format == Format::XML) {
    xml::XmlWriter w(256);
    w.start("Error").start("Message").text(message).end();
    if (detail.size() > 0) w.start("MessageDetail").text(detail).end();
    w.end();
    return withBody(status, n.contentType, http::WipedBytes(w.finish()));
  }
  JsonWriter w;
  w.beginObject().key("Message").string(message);
  if (detail.size() > 0) w.key("MessageDetail").string(detail);
  w.endObject();
  return withBody(status, n.contentType, w.finish());
}

http::HttpResponse jsonResponse(uint status, http::WipedBytes body) {
  return withBody(status, "application/json; charset=utf-8", kj::mv(body));
}

}  // namespace credvault::rest
