#include "routes.h"

#include "base/ascii.h"

#include "frontends/common/operations.h"
#include "frontends/limits.h"
#include "ipc/errors.h"
#include "frontends/rest/auth.h"
#include "frontends/rest/binding.h"
#include "frontends/rest/json.h"
#include "frontends/rest/render.h"

#include <kj/debug.h>

namespace credvault::rest {

using frontends::Op;
using frontends::OpResult;

namespace {

constexpr kj::StringPtr AGENT_PATH = "/api/v1/Agents/User"_kj;
constexpr kj::StringPtr OPENAPI_PATH = "/api/v1/openapi.json"_kj;
const kj::StringPtr ALL_OPS[] = {
    "CreateDefaultUntrustedCredentials"_kj,     "GetUntrustedCredentials"_kj,
    "GetUntrustedCredentialsForAssociate"_kj,   "SaveUntrustedCredentials"_kj,
    "SaveUntrustedCredentialsForAssociate"_kj,  "RemoveUntrustedCredentials"_kj,
    "RemoveUntrustedCredentialsForAssociate"_kj};

struct OpDoc {
  kj::StringPtr summary;
  kj::StringPtr parameters;  // JSON object: name -> type
  kj::StringPtr returns;
};

OpDoc docFor(Op op) {
  switch (op) {
    case Op::CREATE_DEFAULT:
      return {"Set default values into a new UntrustedCredentials.", "{}",
              "200: an UntrustedCredentials object"};
    case Op::GET:
      return {"Get the credentials of a type for the authenticated user.", R"({"Type":"string"})",
              "200: an array of UntrustedCredentials"};
    case Op::GET_FOR_ASSOCIATE:
      return {
          "Get the credentials of a type for a specified user (AssociateId 0: the "
          "authenticated user). SecretValue is only populated for the user and system users.",
          R"({"AssociateId":"int32","Type":"string"})", "200: an array of UntrustedCredentials"};
    case Op::SAVE:
      return {
          "Save credentials for the authenticated user (inserted or replaced by Type and "
          "PublicValue; a null SecretValue keeps the stored secret).",
          R"({"Type":"string","Credentials":"UntrustedCredentials"})", "204: no content"};
    case Op::SAVE_FOR_ASSOCIATE:
      return {"Save credentials for a specified user (AssociateId 0: the authenticated user).",
              R"({"AssociateId":"int32","Type":"string","Credentials":"UntrustedCredentials"})",
              "204: no content"};
    case Op::REMOVE:
      return {"Remove a credentials entry for the authenticated user.",
              R"({"Type":"string","PublicValue":"string"})", "204: no content"};
    case Op::REMOVE_FOR_ASSOCIATE:
      return {
          "Remove a credentials entry for a specified user (AssociateId 0: the "
          "authenticated user).",
          R"({"AssociateId":"int32","Type":"string","PublicValue":"string"})", "204: no content"};
  }
  KJ_UNREACHABLE;
}

using base::startsWithIgnoreCase;

// The path of a carrier field a Failure names, as the client wrote it in the body.
kj::String fieldPath(Op op, kj::StringPtr field) {
  bool carrier = field == "Comment" || field == "SecretValue" || field == "ValidFrom" ||
                 field == "ValidTo" || field == "IsActive" ||
                 (field == "PublicValue" && frontends::opHasCredential(op));
  return carrier ? kj::str("Credentials.", field) : kj::str(field);
}

http::HttpResponse& noStore(http::HttpResponse& r) {
  // Responses may carry secrets; no proxy or browser cache may keep them.
  return r.header("Cache-Control", "no-store");
}

http::HttpResponse errorResponse(const Negotiated& n, const RestError& e) {
  auto r = renderError(n, e.status, e.message, e.detail);
  if (e.status == 401) {
    r.header("WWW-Authenticate", "Basic realm=\"credvault\", charset=\"UTF-8\"");
    r.header("WWW-Authenticate", "SoTicket realm=\"credvault\"");
    r.header("WWW-Authenticate", "Bearer realm=\"credvault\"");
  }
  // Throttled, and the vault unavailable (stopping, or its disk full): when to try again.
  if (e.status == 429 || e.status == 503) {
    r.header("Retry-After", kj::str(kj::max(e.retryAfterSeconds, 1u)));
  }
  noStore(r);
  return r;
}

RestError fromFailure(Op op, const frontends::Failure& f) {
  kj::String detail = kj::str(f.message);
  if (f.field.size() > 0) {
    auto path = fieldPath(op, f.field);
    if (startsWithIgnoreCase(f.message, f.field)) {
      detail = kj::str(path, f.message.slice(f.field.size()));
    } else {
      detail = kj::str(path, ": ", f.message);
    }
  }
  auto& info = ipc::errorInfo(f.code);
  RestError e{info.httpStatus, kj::str(info.httpMessage), kj::mv(detail), nullptr};
  if (info.httpNamesField && f.field.size() > 0) e.field = fieldPath(op, f.field);
  if (info.httpRetryAfter) e.retryAfterSeconds = kj::max(f.retryAfterSeconds, 1u);
  return e;
}

class RestApi final : public kj::Refcounted {
 public:
  RestApi(frontends::VaultLink& link, kj::StringPtr prefix)
      : link_(link), prefix_(kj::str(prefix)) {}

  kj::Promise<http::HttpResponse> operation(http::HttpRequest& request, kj::StringPtr rest) {
    auto n = negotiate(request);
    kj::String name =
        rest.endsWith("/") ? kj::heapString(rest.begin(), rest.size() - 1) : kj::heapString(rest);
    Op op;
    KJ_IF_MAYBE(o, frontends::opFromName(name, true)) {
      op = *o;
    } else {
      return errorResponse(n, notFound());
    }
    if (request.method == "GET" || request.method == "HEAD") return describe(op);
    if (request.method != "POST") {
      auto r = errorResponse(
          n, RestError{405, kj::str("The requested resource does not support this HTTP method."),
                       kj::str("Use POST to invoke the operation, GET to describe it."), nullptr});
      r.header("Allow", "GET, HEAD, POST");
      return kj::mv(r);
    }
    return invoke(request, op, n);
  }

  kj::Promise<http::HttpResponse> index(http::HttpRequest& request) {
    JsonWriter w;
    w.beginObject();
    for (auto opName : ALL_OPS) {
      auto op = KJ_ASSERT_NONNULL(frontends::opFromName(opName));
      w.key(kj::str(prefix_, AGENT_PATH, "/", opName)).beginObject();
      w.key("POST").string(docFor(op).summary).endObject();
    }
    w.key(kj::str(prefix_, OPENAPI_PATH))
        .beginObject()
        .key("GET")
        .string("The OpenAPI 3 document for these operations.")
        .endObject();
    w.endObject();
    return jsonResponse(200, w.finish());
  }

  kj::Promise<http::HttpResponse> openApi(http::HttpRequest& request) {
    auto doc = openApiDocument();
    return http::HttpResponse::make(200, "application/json; charset=utf-8", doc.asArray());
  }

  // Before an operation's body is read: credentials first. Without a readable Authorization
  // header the answer is 401 and the body is never read; a body above
  // REST_AUTH_FIRST_BODY_BYTES (or chunked, of unknown size) is read only once the daemon has
  // accepted the credentials (the operation then authenticates again: legitimate bodies are
  // far smaller, so only an unusual request pays the second round trip).
  kj::Promise<kj::Maybe<http::HttpResponse>> beforeOperationBody(http::HttpRequest& request,
                                                                 kj::StringPtr rest,
                                                                 kj::Maybe<uint64_t> length) {
    using Refusal = kj::Maybe<http::HttpResponse>;
    if (request.method != "POST") return Refusal(nullptr);
    auto n = negotiate(request);
    kj::String name =
        rest.endsWith("/") ? kj::heapString(rest.begin(), rest.size() - 1) : kj::heapString(rest);
    Op op;
    KJ_IF_MAYBE(o, frontends::opFromName(name, true)) {
      op = *o;
    } else {
      return Refusal(errorResponse(n, notFound()));
    }
    auto caller = callerFrom(request);
    KJ_IF_MAYBE(err, caller.tryGet<RestError>()) { return Refusal(errorResponse(n, *err)); }
    KJ_IF_MAYBE(l, length) {
      if (*l > frontends::REST_MAX_BODY_BYTES) return Refusal(tooLarge(n));
    }
    bool small = false;
    KJ_IF_MAYBE(l, length) { small = *l <= frontends::REST_AUTH_FIRST_BODY_BYTES; }
    if (small) return Refusal(nullptr);
    return frontends::authenticate(link_, caller.get<frontends::Caller>())
        .then([op, n](kj::Maybe<frontends::Failure> failure) -> Refusal {
          KJ_IF_MAYBE(f, failure) { return errorResponse(n, fromFailure(op, *f)); }
          return nullptr;
        });
  }

  kj::Promise<kj::Maybe<http::HttpResponse>> beforeUnknownBody(http::HttpRequest& request) {
    return kj::Maybe<http::HttpResponse>(errorResponse(negotiate(request), notFound()));
  }

  kj::Promise<http::HttpResponse> unknown(http::HttpRequest& request) {
    return errorResponse(negotiate(request), notFound());
  }

 private:
  frontends::VaultLink& link_;
  kj::String prefix_;

  static http::HttpResponse tooLarge(const Negotiated& n) {
    return errorResponse(
        n, RestError{413, kj::str("The request body is too large."),
                     kj::str("The limit is ", frontends::REST_MAX_BODY_BYTES, " bytes."), nullptr});
  }

  static RestError notFound() {
    return RestError{404, kj::str("No HTTP resource was found that matches the request URI."),
                     kj::str("The User agent offers CreateDefaultUntrustedCredentials, "
                             "GetUntrustedCredentials, GetUntrustedCredentialsForAssociate, "
                             "SaveUntrustedCredentials, SaveUntrustedCredentialsForAssociate, "
                             "RemoveUntrustedCredentials and "
                             "RemoveUntrustedCredentialsForAssociate under /api/v1/Agents/User/."),
                     nullptr};
  }

  http::HttpResponse describe(Op op) {
    auto doc = docFor(op);
    JsonWriter w;
    w.beginObject();
    w.key("Name").string(frontends::opName(op));
    w.key("Method").string("POST");
    w.key("Url").string(kj::str(prefix_, AGENT_PATH, "/", frontends::opName(op)));
    w.key("Description").string(doc.summary);
    w.key("Parameters").raw(doc.parameters);
    w.key("Returns").string(doc.returns);
    w.key("Authorization").string("Basic, SoTicket or Bearer; SO-AppToken for partner apps");
    w.key("OpenApi").string(kj::str(prefix_, OPENAPI_PATH));
    w.endObject();
    return jsonResponse(200, w.finish());
  }

  kj::Promise<http::HttpResponse> invoke(http::HttpRequest& request, Op op, Negotiated n) {
    if (request.body.size() > frontends::REST_MAX_BODY_BYTES) return tooLarge(n);
    FormData query;
    KJ_IF_MAYBE(q, request.query) {
      auto parsed = parseForm(q->asArray());
      KJ_IF_MAYBE(err, parsed.tryGet<FormError>()) {
        return errorResponse(n, badRequest(kj::str("query string: ", err->message)));
      }
      query = kj::mv(parsed.get<FormData>());
    }
    auto selection = parseSelect(query.get("$select"));

    auto caller = callerFrom(request);
    KJ_IF_MAYBE(err, caller.tryGet<RestError>()) { return errorResponse(n, *err); }
    auto bound = bindRequest(op, request, query);
    KJ_IF_MAYBE(err, bound.tryGet<RestError>()) { return errorResponse(n, *err); }

    return frontends::perform(link_, caller.get<frontends::Caller>(),
                              kj::mv(bound.get<frontends::OpRequest>()))
        .then([op, n, selection](OpResult result) -> http::HttpResponse {
          KJ_IF_MAYBE(f, result.failure) { return errorResponse(n, fromFailure(op, *f)); }
          http::HttpResponse r;
          if (frontends::opReturnsList(op)) {
            r = renderCredentials(n, result.credentials(), true, selection);
          } else if (op == Op::CREATE_DEFAULT) {
            if (result.credentials().size() != 1) {
              return errorResponse(n,
                                   RestError{500, kj::str("An error has occurred."),
                                             kj::str("The vault returned no default."), nullptr});
            }
            r = renderCredentials(n, result.credentials(), false, selection);
          } else {
            r.status = 204;
            r.contentType = kj::str();
          }
          noStore(r);
          return r;
        });
  }
};

}  // namespace

void addRoutes(http::Router& router, frontends::VaultLink& link) {
  auto api = kj::refcounted<RestApi>(link, router.prefix());
  using Method = kj::Promise<http::HttpResponse> (RestApi::*)(http::HttpRequest&);
  auto bind = [&](Method method) {
    return [api = kj::addRef(*api), method](http::HttpRequest& request, kj::StringPtr) mutable {
      return ((*api).*method)(request);
    };
  };
  static const kj::StringPtr GET[] = {"GET"_kj};
  http::BodyPolicy operationBody;
  operationBody.maxBytes = frontends::REST_MAX_BODY_BYTES;
  operationBody.check =
      http::BeforeBody([api = kj::addRef(*api)](http::HttpRequest& request, kj::StringPtr rest,
                                                kj::Maybe<uint64_t> length) mutable {
        return api->beforeOperationBody(request, rest, length);
      });
  router.under(
      kj::str(AGENT_PATH, "/"), nullptr,
      [api = kj::addRef(*api)](http::HttpRequest& request, kj::StringPtr rest) mutable {
        return api->operation(request, rest);
      },
      kj::mv(operationBody));
  router.exact(AGENT_PATH, GET, bind(&RestApi::index));
  router.exact("/api/v1", GET, bind(&RestApi::index));
  router.exact(OPENAPI_PATH, GET, bind(&RestApi::openApi));
  http::BodyPolicy unknownBody;
  unknownBody.check =
      http::BeforeBody([api = kj::addRef(*api)](http::HttpRequest& request, kj::StringPtr,
                                                kj::Maybe<uint64_t>) mutable {
        return api->beforeUnknownBody(request);
      });
  router.under("/api/", nullptr, bind(&RestApi::unknown), kj::mv(unknownBody));
}

}  // namespace credvault::rest
