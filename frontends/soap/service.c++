#include "service.h"

#include "frontends/soap/principal.h"
#include "frontends/soap/user.h"
#include "frontends/soap/wsdl.h"

#include <kj/debug.h>

namespace credvault::soap {

using frontends::Failure;
using http::HttpRequest;
using http::HttpResponse;

bool isServedVersion(uint version) {
  return version == 75 || (version >= 80 && version <= 88);
}

kj::Maybe<ServiceAddress> parseServicePath(kj::StringPtr rest, uint& versionSeen) {
  versionSeen = 0;
  if (!http::startsWithIgnoreCase(rest, "Services")) return nullptr;
  size_t i = 8;
  uint version = 0;
  size_t digits = 0;
  while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9' && digits < 4) {
    version = version * 10 + static_cast<uint>(rest[i] - '0');
    ++i;
    ++digits;
  }
  if (digits == 0 || i >= rest.size() || rest[i] != '/') return nullptr;
  versionSeen = version;
  kj::StringPtr name = rest.slice(i + 1);
  kj::StringPtr service;
  if (http::equalsIgnoreCase(name, "User.svc")) {
    service = "User";
  } else if (http::equalsIgnoreCase(name, "SoPrincipal.svc")) {
    service = "SoPrincipal";
  } else {
    return nullptr;
  }
  if (!isServedVersion(version)) return nullptr;
  return ServiceAddress{version, service, kj::str(SUPEROFFICE_NS_BASE, "Services", version)};
}

namespace {

HttpResponse faultResponse(const Fault& fault, uint status, kj::StringPtr note) {
  auto body = writeFault(fault);
  auto r = HttpResponse::make(status, contentType(fault.version), body.asChars());
  r.note = kj::str(note);
  return r;
}

HttpResponse faultResponse(SoapVersion v, Fault::Code code, kj::StringPtr reason, uint status,
                           kj::StringPtr note) {
  return faultResponse(Fault{v, code, kj::heapString(reason)}, status, note);
}

HttpResponse soapResponse(SoapVersion v, kj::Array<kj::byte> body, kj::String note) {
  HttpResponse r;
  r.status = 200;
  r.contentType = kj::str(contentType(v));
  r.body = http::WipedBytes(kj::mv(body));
  r.note = kj::mv(note);
  return r;
}

kj::String noteFor(const ServiceAddress& a, kj::StringPtr op, kj::Maybe<const Failure&> failure) {
  KJ_IF_MAYBE(f, failure) { return kj::str(a.service, ".", op, " ", ipc::errorCodeName(f->code)); }
  return kj::str(a.service, ".", op, " ok");
}

// Renders a User.svc response; a value XML cannot carry turns into a failure response.
HttpResponse userResponse(SoapVersion v, const ServiceAddress& address, frontends::Op op,
                          const frontends::OpResult& result) {
  {
    ResponseWriter w(v, address);
    writeResultHeaders(w, result.failure);
    w.beginBody();
    writeUserResponse(w, op, result);
    KJ_IF_MAYBE(body, w.finish()) {
      return soapResponse(v, kj::mv(*body),
                          noteFor(address, frontends::opName(op), result.failure));
    }
  }
  frontends::OpResult failed;
  failed.failure = frontends::makeFailure(
      rpc::ErrorCode::INTERNAL, "", "A stored value contains characters that XML cannot represent");
  ResponseWriter w(v, address);
  writeResultHeaders(w, failed.failure);
  w.beginBody();
  writeUserResponse(w, op, failed);
  return soapResponse(v, KJ_ASSERT_NONNULL(w.finish()),
                      noteFor(address, frontends::opName(op), failed.failure));
}

HttpResponse loginResponse(SoapVersion v, const ServiceAddress& address,
                           const frontends::LoginResult& result) {
  // A wrong name or password is not an exception in SuperOffice: AuthenticationSucceeded
  // says false. Other failures (throttled, daemon down) also carry ExceptionInfo.
  kj::Maybe<const Failure&> exception;
  KJ_IF_MAYBE(f, result.failure) {
    if (f->code != rpc::ErrorCode::NOT_AUTHENTICATED) exception = *f;
  }
  ResponseWriter w(v, address);
  writeResultHeaders(w, exception);
  w.beginBody();
  writeLoginResponse(w, result);
  auto note = noteFor(address, "AuthenticateUsernamePassword", result.failure);
  KJ_IF_MAYBE(body, w.finish()) { return soapResponse(v, kj::mv(*body), kj::mv(note)); }
  return faultResponse(v, Fault::RECEIVER, "The response cannot be represented in XML", 500, note);
}

kj::StringPtr unquote(kj::StringPtr s, kj::String& storage) {
  if (s.size() >= 2 && s[0] == '"' && s[s.size() - 1] == '"') {
    storage = kj::heapString(s.slice(1).begin(), s.size() - 2);
    return storage;
  }
  return s;
}

}  // namespace

SoapService::SoapService(frontends::VaultLink& link, kj::StringPtr publicUrl,
                         xml::XmlLimits xmlLimits)
    : link_(link), publicUrl_(kj::heapString(publicUrl)), xmlLimits_(xmlLimits) {}

void SoapService::addRoutes(http::Router& router) {
  static const kj::StringPtr METHODS[] = {"GET", "POST"};
  // SOAP's credentials are inside the body: it cannot be authenticated before it is read,
  // so it is bounded by what a legitimate request needs (frontends/limits.h).
  http::BodyPolicy body;
  body.maxBytes = maxBodyBytes_;
  body.check =
      http::BeforeBody([this](HttpRequest& request, kj::StringPtr, kj::Maybe<uint64_t> length) {
        KJ_IF_MAYBE(l, length) {
          if (*l > maxBodyBytes_) {
            SoapVersion v =
                request.mediaType() == "application/soap+xml" ? SoapVersion::V12 : SoapVersion::V11;
            return kj::Maybe<HttpResponse>(faultResponse(
                v, Fault::SENDER,
                kj::str("The request is too large: the limit is ", maxBodyBytes_, " bytes"), 413,
                "body-too-large"));
          }
        }
        return kj::Maybe<HttpResponse>(nullptr);
      });
  router.under(
      "/Remote/", METHODS,
      [this, &router](HttpRequest& request, kj::StringPtr rest) {
        return handle(request, rest, router.prefix());
      },
      kj::mv(body));
}

kj::Promise<HttpResponse> SoapService::handle(HttpRequest& request, kj::StringPtr rest,
                                              kj::StringPtr urlPrefix) {
  SoapVersion guess =
      request.mediaType() == "application/soap+xml" ? SoapVersion::V12 : SoapVersion::V11;
  uint version = 0;
  auto address = parseServicePath(rest, version);
  ServiceAddress* a;
  KJ_IF_MAYBE(found, address) {
    a = found;
  } else {
    if (version != 0 && !isServedVersion(version)) {
      return faultResponse(
          guess, Fault::SENDER,
          kj::str("Services", version, " is not a supported service version (75 and 80 to 88 are)"),
          404, "unknown-version");
    }
    return faultResponse(guess, Fault::SENDER,
                         "No such service: credvault serves User.svc and SoPrincipal.svc", 404,
                         "unknown-service");
  }
  if (request.method == "GET" || request.method == "HEAD") {
    KJ_IF_MAYBE(q, request.query) {
      if (http::startsWithIgnoreCase(*q, "wsdl") || http::startsWithIgnoreCase(*q, "singlewsdl")) {
        return wsdl(request, *a, urlPrefix);
      }
    }
    auto page = kj::str("<html><body><p>credvault: SuperOffice ", a->service, " service, Services",
                        a->version,
                        ". POST SOAP envelopes here; the WSDL is at <a href=\"?wsdl\">?wsdl</a>."
                        "</p></body></html>\n");
    return HttpResponse::make(200, "text/html; charset=utf-8", page);
  }
  return call(request, kj::mv(*a));
}

HttpResponse SoapService::wsdl(const HttpRequest& request, const ServiceAddress& address,
                               kj::StringPtr urlPrefix) {
  // public_url when configured; else our own address as the kernel reports it ("localhost"
  // when the request came over something else, a Unix socket or a test's pipe).
  kj::String base;
  if (publicUrl_.size() > 0) {
    base = kj::heapString(publicUrl_);
  } else {
    base = kj::str(request.secure ? "https://" : "http://",
                   request.local.size() > 0 ? request.local : "localhost"_kj);
  }
  auto location =
      kj::str(base, urlPrefix, "/Remote/Services", address.version, "/", address.service, ".svc");
  auto key = kj::str(address.version, address.service);
  auto& entry = wsdlCache_.findOrCreate(key, [&]() {
    return kj::HashMap<kj::String, CachedWsdl>::Entry{kj::mv(key),
                                                      CachedWsdl{kj::str(), kj::str()}};
  });
  if (entry.location != location) {
    entry.text = address.service == "User" ? userWsdl(address.ns, location)
                                           : principalWsdl(address.ns, location);
    entry.location = kj::mv(location);
  }
  auto r = HttpResponse::make(200, "text/xml; charset=utf-8", entry.text);
  r.note = kj::str(address.service, ".wsdl");
  return r;
}

kj::Promise<HttpResponse> SoapService::call(HttpRequest& request, ServiceAddress address) {
  auto media = request.mediaType();
  SoapVersion guess = media == "application/soap+xml" ? SoapVersion::V12 : SoapVersion::V11;
  if (media != "text/xml" && media != "application/soap+xml" && media != "application/xml" &&
      media != "") {
    return faultResponse(guess, Fault::SENDER,
                         "Unsupported Content-Type: use text/xml (SOAP 1.1) or "
                         "application/soap+xml (SOAP 1.2)",
                         415, "unsupported-media-type");
  }

  auto parsed = xml::parse(request.body.chars(), xmlLimits_);
  KJ_IF_MAYBE(error, parsed.tryGet<xml::ParseError>()) {
    return faultResponse(guess, Fault::SENDER,
                         kj::str("The request is not a readable XML document: ", error->message),
                         guess == SoapVersion::V11 ? 500 : 400, "unreadable-xml");
  }
  auto& document = parsed.get<xml::Document>();
  auto envelopeOrFault = readEnvelope(document, address.ns, guess);
  KJ_IF_MAYBE(fault, envelopeOrFault.tryGet<Fault>()) {
    return faultResponse(*fault, faultHttpStatus(*fault), "bad-envelope");
  }
  auto& env = envelopeOrFault.get<Envelope>();
  SoapVersion v = env.version;
  const xml::Element& op = *env.operation;

  if (op.ns != address.ns) {
    return faultResponse(
        v, Fault::SENDER,
        kj::str("The operation element is not in this service's namespace, ", address.ns),
        v == SoapVersion::V11 ? 500 : 400, "wrong-namespace");
  }
  bool isUser = address.service == "User";
  frontends::Op which = frontends::Op::GET;
  if (isUser) {
    KJ_IF_MAYBE(o, frontends::opFromName(op.local)) {
      which = *o;
    } else {
      return faultResponse(v, Fault::SENDER,
                           "The operation is not supported: User.svc serves the seven "
                           "UntrustedCredentials operations",
                           v == SoapVersion::V11 ? 500 : 400, "unknown-operation");
    }
  } else if (op.local != "AuthenticateUsernamePassword") {
    return faultResponse(v, Fault::SENDER,
                         "The operation is not supported: SoPrincipal.svc serves "
                         "AuthenticateUsernamePassword",
                         v == SoapVersion::V11 ? 500 : 400, "unknown-operation");
  }

  // The action, when the client states one, must name the operation in the Body.
  kj::Maybe<kj::String> actionParameter;
  kj::Maybe<kj::StringPtr> action;
  if (v == SoapVersion::V11) {
    action = request.header("SOAPAction");
  } else {
    actionParameter = request.contentTypeParameter("action");
    KJ_IF_MAYBE(a, actionParameter) { action = a->asPtr(); }
  }
  KJ_IF_MAYBE(a, action) {
    kj::String storage;
    kj::StringPtr actual = unquote(*a, storage);
    auto expected = kj::str(address.ns, "/", address.service, "/", op.local);
    if (actual.size() > 0 && !http::equalsIgnoreCase(actual, expected)) {
      return faultResponse(v, Fault::SENDER,
                           "The SOAP action does not match the operation in the Body",
                           v == SoapVersion::V11 ? 500 : 400, "action-mismatch");
    }
  }

  kj::Maybe<kj::StringPtr> appToken = env.appToken;
  if (isUser) {
    frontends::Caller caller;
    caller.kind = frontends::Caller::TICKET;
    KJ_IF_MAYBE(t, env.ticket) { caller.secret = frontends::SensitiveText(*t); }
    KJ_IF_MAYBE(t, appToken) { caller.appToken = kj::heapString(*t); }
    caller.clientAddress = kj::heapString(request.client);
    caller.requestId = kj::heapString(request.id.str());
    auto requestOrFailure = readUserOperation(op, which, address.ns);
    KJ_IF_MAYBE(f, requestOrFailure.tryGet<Failure>()) {
      // A missing ticket outranks a malformed argument.
      frontends::OpResult result;
      KJ_IF_MAYBE(authFailure, frontends::validate(caller)) {
        result.failure = kj::mv(*authFailure);
      } else {
        result.failure = kj::mv(*f);
      }
      return userResponse(v, address, which, result);
    }
    return frontends::perform(link_, caller, kj::mv(requestOrFailure.get<frontends::OpRequest>()))
        .then([v, address = kj::mv(address), which](frontends::OpResult&& result) {
          return userResponse(v, address, which, result);
        });
  }

  auto loginOrFailure = readLogin(op, address.ns);
  KJ_IF_MAYBE(f, loginOrFailure.tryGet<Failure>()) {
    frontends::LoginResult result;
    result.failure = kj::mv(*f);
    return loginResponse(v, address, result);
  }
  auto& login = loginOrFailure.get<LoginRequest>();
  return frontends::login(link_, login.userName, login.password, appToken, request.client,
                          request.id.str())
      .then([v, address = kj::mv(address)](frontends::LoginResult&& result) {
        return loginResponse(v, address, result);
      });
}

}  // namespace credvault::soap
