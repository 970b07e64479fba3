// libFuzzer target: the REST frontend's request reading, without a daemon:
// rest::bodyKind, rest::bindRequest (JSON, XML and form bodies plus the query string) and
// rest::callerFrom (the Authorization header).
//
// Input, newline-separated: the operation ("GetUntrustedCredentials", any case; another word
// picks one by its length), the Content-Type, the query string, the Authorization header,
// then the body. Checks: refusals are 400, 401 or 415 with a message; every message is valid
// UTF-8 (it is sent in a JSON body); a bound request has the operation asked for.

#include "frontends/common/operations.h"
#include "frontends/rest/auth.h"
#include "frontends/rest/binding.h"
#include "frontends/rest/form.h"
#include "tests/fuzz/fuzz-util.h"

#include <kj/debug.h>

namespace credvault::rest {
namespace {

using frontends::Op;

void checkError(const RestError& e, kj::ArrayPtr<const uint> statuses) {
  bool known = false;
  for (uint s : statuses) known = known || e.status == s;
  KJ_ASSERT(known, e.status);
  KJ_ASSERT(e.message.size() > 0 && e.detail.size() > 0);
  KJ_ASSERT(frontends::isValidUtf8(e.message) && frontends::isValidUtf8(e.detail));
  KJ_IF_MAYBE(f, e.field) { KJ_ASSERT(frontends::isValidUtf8(*f)); }
}

void fuzzOne(const uint8_t* data, size_t size) {
  fuzz::Fields fields(data, size);
  auto opName = kj::heapString(fields.line());
  auto contentType = kj::heapString(fields.line());
  auto queryText = fields.line();
  auto authorization = kj::heapString(fields.line());
  auto body = fields.rest();

  Op op = static_cast<Op>(opName.size() % frontends::OP_COUNT);
  KJ_IF_MAYBE(o, frontends::opFromName(opName, true)) { op = *o; }

  http::HttpRequest request;
  request.method = "POST";
  request.path = "/api/v1/Agents/User/X";
  request.peer = "192.0.2.7:5000";
  request.client = "192.0.2.7";  // as the server sets it (no trusted proxy in front)
  if (contentType.size() > 0) request.headers.add(http::HttpHeader{"Content-Type", contentType});
  if (authorization.size() > 0) {
    request.headers.add(http::HttpHeader{"Authorization", authorization});
  }
  request.body = http::WipedBytes(kj::heapArray(body.asBytes()));

  static const uint BINDING_STATUSES[] = {400, 415};
  auto kind = bodyKind(request);
  KJ_IF_MAYBE(e, kind.tryGet<RestError>()) { checkError(*e, BINDING_STATUSES); }

  // As routes.c++ does: a query string that does not parse is a 400 before binding.
  auto query = parseForm(queryText);
  KJ_IF_MAYBE(e, query.tryGet<FormError>()) {
    KJ_ASSERT(e->message.size() > 0);
  } else {
    auto bound = bindRequest(op, request, query.get<FormData>());
    KJ_IF_MAYBE(e, bound.tryGet<RestError>()) {
      checkError(*e, BINDING_STATUSES);
      KJ_ASSERT(op != Op::CREATE_DEFAULT);
    } else {
      auto& r = bound.get<frontends::OpRequest>();
      KJ_ASSERT(r.op == op);
      if (!frontends::opHasAssociate(op)) { KJ_ASSERT(r.associateId == 0); }
      frontends::validate(r);
    }
  }

  static const uint AUTH_STATUSES[] = {401};
  auto caller = callerFrom(request);
  KJ_IF_MAYBE(e, caller.tryGet<RestError>()) {
    checkError(*e, AUTH_STATUSES);
  } else {
    auto& c = caller.get<frontends::Caller>();
    KJ_ASSERT(c.clientAddress == "192.0.2.7");
    if (c.kind == frontends::Caller::PASSWORD) {
      KJ_ASSERT(c.userName.findFirst(':') == nullptr);
    } else {
      KJ_ASSERT(c.secret.size() > 0);
    }
    frontends::validate(c);
  }
}

}  // namespace
}  // namespace credvault::rest

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credvault::fuzz::runOne([&]() { credvault::rest::fuzzOne(data, size); });
  return 0;
}
