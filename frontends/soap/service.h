// credvault-gateway SOAP — the HTTP endpoint /Remote/ServicesNN/{User,SoPrincipal}.svc.
//
// NN is 75 or 80..88; each version answers in its own namespace
// http://www.superoffice.net/ws/crm/NetServer/ServicesNN. POST carries a SOAP 1.1 or 1.2
// envelope (answered in the same version); GET ?wsdl serves the WSDL. Failed operations are
// HTTP 200 with Succeeded=false and ExceptionInfo in the response header, as SuperOffice
// answers; an envelope that cannot be read, an unknown operation or version, is a SOAP
// Fault. Each operation is one round trip to credvaultd (see common/operations.h).
//
// The WSDL's soap:address is the configured public URL, else the address the request arrived
// on — never the request's Host header, which the client chooses: a WSDL that names a host
// an attacker picked (and a cache or proxy that keeps it) would send the next client's
// tickets there.
//
// Holds no state between requests except a cache of rendered WSDL. Never logs: the
// outcome goes to the access log through HttpResponse::note (operation and error name).

#pragma once

#include "frontends/limits.h"

#include "frontends/common/operations.h"
#include "frontends/http/router.h"
#include "frontends/soap/envelope.h"

#include <kj/map.h>

namespace credvault::soap {

// The service versions served: 75 and 80..88.
bool isServedVersion(uint version);

// "Services86/User.svc" (case-insensitive) -> the address, or null.
kj::Maybe<ServiceAddress> parseServicePath(kj::StringPtr rest, uint& versionSeen);

class SoapService {
 public:
  // `publicUrl`: "" or a URL checked by frontends::checkPublicUrl ("https://vault.example.com"),
  // which stands for the gateway's "/": the URL prefix and service path are appended.
  SoapService(frontends::VaultLink& link, kj::StringPtr publicUrl = "",
              xml::XmlLimits xmlLimits = {});
  KJ_DISALLOW_COPY(SoapService);

  // Routes "/Remote/..." (GET and POST) to this service.
  void addRoutes(http::Router& router);
  // The largest SOAP request body (413 above it, before it is read); set before addRoutes().
  void setMaxBodyBytes(size_t bytes) { maxBodyBytes_ = bytes; }

  kj::Promise<http::HttpResponse> handle(http::HttpRequest& request, kj::StringPtr rest,
                                         kj::StringPtr urlPrefix);

 private:
  http::HttpResponse wsdl(const http::HttpRequest& request, const ServiceAddress& address,
                          kj::StringPtr urlPrefix);
  kj::Promise<http::HttpResponse> call(http::HttpRequest& request, ServiceAddress address);

  frontends::VaultLink& link_;
  kj::String publicUrl_;
  xml::XmlLimits xmlLimits_;
  size_t maxBodyBytes_ = frontends::DEFAULT_MAX_SOAP_BODY_BYTES;
  struct CachedWsdl {
    kj::String location;
    kj::String text;
  };
  kj::HashMap<kj::String, CachedWsdl> wsdlCache_;
};

}  // namespace credvault::soap
