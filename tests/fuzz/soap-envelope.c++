// libFuzzer target: a SOAP request, from body bytes to an operation and back to a response,
// without a daemon: what SoapService::call() does up to frontends::perform(), then the
// rendering of a result that echoes what the client sent.
//
// Input, newline-separated: the Content-Type, the path below /Remote/ ("Services86/User.svc";
// anything else falls back to that), then the body. Steps: xml::parse, soap::readEnvelope,
// readUserOperation or readLogin, frontends::validate; on failure writeFault or a failure
// response. Checks: the gateway's own output (faults and responses) always parses and reads
// back as an envelope of the same SOAP version; a response that carries client text comes
// back with that text unchanged or is refused (lossy); a date that was read is written so
// that it reads back as the same instant.

#include "frontends/soap/envelope.h"
#include "frontends/soap/principal.h"
#include "frontends/soap/service.h"
#include "frontends/soap/user.h"
#include "tests/fuzz/fuzz-util.h"

#include <kj/debug.h>

namespace credvault::soap {
namespace {

using frontends::Failure;
using frontends::Op;
using frontends::OpRequest;
using frontends::OpResult;

// Our output must parse and read back as an envelope of version `v`; `visit` then gets the
// single child of its Body (the Fault, or the operation's response).
template<typename Visit>
void readBack(kj::ArrayPtr<const kj::byte> out, SoapVersion v, kj::StringPtr ns, Visit&& visit) {
  auto parsed = xml::parse(out.asChars());
  KJ_IF_MAYBE(error, parsed.tryGet<xml::ParseError>()) {
    KJ_FAIL_ASSERT("the gateway wrote XML it cannot read", error->message);
  }
  auto& doc = parsed.get<xml::Document>();
  // The other version as the guess: the envelope must say which it is.
  auto other = v == SoapVersion::V11 ? SoapVersion::V12 : SoapVersion::V11;
  auto env = readEnvelope(doc, ns, other);
  KJ_IF_MAYBE(fault, env.tryGet<Fault>()) {
    KJ_FAIL_ASSERT("the gateway wrote an envelope it refuses", fault->reason);
  }
  KJ_ASSERT(env.get<Envelope>().version == v);
  visit(*env.get<Envelope>().operation);
}

void checkFault(const Fault& fault, kj::StringPtr ns) {
  uint status = faultHttpStatus(fault);
  KJ_ASSERT(status == 400 || status == 500);
  auto out = writeFault(fault);
  readBack(out, fault.version, ns, [](const xml::Element& op) { KJ_ASSERT(op.local == "Fault"); });
}

// The text of the first descendant named `local`, in document order.
kj::Maybe<kj::StringPtr> find(const xml::Element& e, kj::StringPtr local) {
  for (auto* c : e.children) {
    if (c->local == local) return c->text;
    KJ_IF_MAYBE(t, find(*c, local)) { return *t; }
  }
  return nullptr;
}

void renderFailure(SoapVersion v, const ServiceAddress& address, Op op, Failure failure) {
  OpResult result;
  result.failure = kj::mv(failure);
  ResponseWriter w(v, address);
  writeResultHeaders(w, result.failure);
  w.beginBody();
  writeUserResponse(w, op, result);
  // Failure texts are fixed: they never make a response lossy.
  auto out = KJ_ASSERT_NONNULL(w.finish());
  readBack(out, v, address.ns, [](const xml::Element&) {});
}

// As if the daemon had stored the request's credential and handed it back.
void renderEcho(SoapVersion v, const ServiceAddress& address, const OpRequest& request) {
  OpResult result;
  result.initCredentials(1).setWithCaveats(0, request.credential());
  auto c = result.credentials()[0];
  Op op = frontends::opReturnsList(request.op) ? request.op : Op::GET;

  ResponseWriter w(v, address);
  writeResultHeaders(w, nullptr);
  w.beginBody();
  writeUserResponse(w, op, result);
  KJ_IF_MAYBE(out, w.finish()) {
    readBack(*out, v, address.ns, [&](const xml::Element& response) {
      if (c.hasSecretValue()) {
        KJ_ASSERT(KJ_ASSERT_NONNULL(find(response, "SecretValue")) == c.getSecretValue());
      }
      KJ_ASSERT(KJ_ASSERT_NONNULL(find(response, "Comment")) == c.getComment());
      KJ_ASSERT(KJ_ASSERT_NONNULL(find(response, "PublicValue")) == c.getPublicValue());
      auto from = KJ_ASSERT_NONNULL(parseDateTime(KJ_ASSERT_NONNULL(find(response, "ValidFrom"))));
      auto to = KJ_ASSERT_NONNULL(parseDateTime(KJ_ASSERT_NONNULL(find(response, "ValidTo"))));
      KJ_ASSERT(from == kj::max(c.getValidFrom(), int64_t(0)) &&
                    to == kj::max(c.getValidTo(), int64_t(0)),
                c.getValidFrom(), from, c.getValidTo(), to);
    });
  } else {
    // Refused only when some value cannot be carried by XML.
    bool allValid = xml::isValidXmlText(c.getComment().asArray()) &&
                    xml::isValidXmlText(c.getPublicValue().asArray());
    if (c.hasSecretValue()) {
      allValid = allValid && xml::isValidXmlText(c.getSecretValue().asArray());
    }
    KJ_ASSERT(!allValid, "a response was refused as lossy without reason");
  }
}

void renderLogin(SoapVersion v, const ServiceAddress& address, const LoginRequest& login) {
  frontends::LoginResult result;
  result.name = kj::str(login.userName);
  result.ticket = login.password.clone();
  ResponseWriter w(v, address);
  writeResultHeaders(w, nullptr);
  w.beginBody();
  writeLoginResponse(w, result);
  KJ_IF_MAYBE(out, w.finish()) {
    readBack(*out, v, address.ns, [&](const xml::Element& response) {
      KJ_ASSERT(KJ_ASSERT_NONNULL(find(response, "Associate")) == result.name);
      KJ_ASSERT(KJ_ASSERT_NONNULL(find(response, "Ticket")) == result.ticket.reveal());
    });
  }
}

void fuzzOne(const uint8_t* data, size_t size) {
  fuzz::Fields fields(data, size);
  auto contentType = kj::heapString(fields.line());
  auto path = kj::heapString(fields.line());
  auto body = fields.rest();

  http::HttpRequest request;
  request.method = "POST";
  request.path = "/Remote/Services86/User.svc";
  request.headers.add(http::HttpHeader{"Content-Type", contentType});
  auto media = request.mediaType();
  SoapVersion guess = media == "application/soap+xml" ? SoapVersion::V12 : SoapVersion::V11;
  request.contentTypeParameter("action");
  request.contentTypeParameter("charset");

  uint versionSeen = 0;
  auto address = parseServicePath(path, versionSeen);
  if (address == nullptr) {
    address = KJ_ASSERT_NONNULL(parseServicePath("Services86/User.svc", versionSeen));
  }
  auto& a = KJ_ASSERT_NONNULL(address);
  KJ_ASSERT(isServedVersion(a.version));

  auto parsed = xml::parse(body);
  KJ_IF_MAYBE(error, parsed.tryGet<xml::ParseError>()) {
    checkFault(Fault{guess, Fault::SENDER, kj::str("unreadable: ", error->message)}, a.ns);
    return;
  }
  auto& document = parsed.get<xml::Document>();
  auto envelopeOrFault = readEnvelope(document, a.ns, guess);
  KJ_IF_MAYBE(fault, envelopeOrFault.tryGet<Fault>()) {
    checkFault(*fault, a.ns);
    return;
  }
  auto& env = envelopeOrFault.get<Envelope>();
  KJ_ASSERT(env.operation != nullptr);
  const xml::Element& op = *env.operation;
  KJ_ASSERT(document.root().local == "Envelope");

  frontends::Caller caller;
  KJ_IF_MAYBE(t, env.ticket) { caller.secret = frontends::SensitiveText(*t); }
  KJ_IF_MAYBE(t, env.appToken) { caller.appToken = kj::heapString(*t); }
  auto callerFailure = frontends::validate(caller);

  if (op.ns != a.ns) {
    checkFault(Fault{env.version, Fault::SENDER, kj::str("wrong namespace")}, a.ns);
    return;
  }
  if (a.service == "User") {
    Op which;
    KJ_IF_MAYBE(o, frontends::opFromName(op.local)) {
      which = *o;
    } else {
      checkFault(Fault{env.version, Fault::SENDER, kj::str("unknown operation")}, a.ns);
      return;
    }
    auto requestOrFailure = readUserOperation(op, which, a.ns);
    KJ_IF_MAYBE(f, requestOrFailure.tryGet<Failure>()) {
      KJ_ASSERT(f->message.size() > 0);
      renderFailure(env.version, a, which, kj::mv(*f));
      return;
    }
    auto& req = requestOrFailure.get<OpRequest>();
    KJ_ASSERT(req.op == which);
    auto failure = frontends::validate(req);
    if (failure == nullptr) failure = kj::mv(callerFailure);
    KJ_IF_MAYBE(f, failure) {
      renderFailure(env.version, a, which, kj::mv(*f));
    } else {
      renderEcho(env.version, a, req);
    }
  } else {
    KJ_ASSERT(a.service == "SoPrincipal");
    if (op.local != "AuthenticateUsernamePassword") return;
    auto loginOrFailure = readLogin(op, a.ns);
    KJ_IF_MAYBE(f, loginOrFailure.tryGet<Failure>()) {
      renderFailure(env.version, a, Op::GET, kj::mv(*f));
      return;
    }
    renderLogin(env.version, a, loginOrFailure.get<LoginRequest>());
  }
}

}  // namespace
}  // namespace credvault::soap

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credvault::fuzz::runOne([&]() { credvault::soap::fuzzOne(data, size); });
  return 0;
}
