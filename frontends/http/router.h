// credvault-gateway HTTP layer — request routing shared by the SOAP and REST frontends.
//
// Paths are matched ASCII case-insensitively (as IIS and ASP.NET match SuperOffice's URLs),
// under an optional deployment prefix such as "/Cust12345": with a prefix, only paths
// below it are served. Paths are compared as sent (no percent-decoding). An exact route
// wins over a prefix route; among prefix routes the longest wins. A path that matches with
// the wrong method gets 405 with `Allow`.

#pragma once

#include "frontends/http/server.h"

#include <kj/function.h>
#include <kj/one-of.h>
#include <kj/vector.h>

namespace credvault::http {

// See HttpHandler::beforeBody: a response refuses the body unread. `rest` as for handlers.
using BeforeBody = kj::Function<kj::Promise<kj::Maybe<HttpResponse>>(
    HttpRequest& request, kj::StringPtr rest, kj::Maybe<uint64_t> length)>;

// What a route accepts as a request body, decided from the head alone.
struct BodyPolicy {
  size_t maxBytes = kj::maxValue;  // above: 413 before reading (the server's bound applies too)
  kj::Maybe<BeforeBody> check;
};

class Router final : public HttpHandler {
 public:
  // `rest` is the part of the path after the route's prefix ("" for an exact route).
  using Handler = kj::Function<kj::Promise<HttpResponse>(HttpRequest& request, kj::StringPtr rest)>;
  using Fallback = kj::Function<HttpResponse(HttpRequest& request, uint status)>;
  using BodyPolicy = http::BodyPolicy;

  // `prefix`: "" or "/Name" ("Name", "/Name/" are normalised to "/Name").
  explicit Router(kj::StringPtr prefix = nullptr);

  // `methods`: the methods this route accepts; empty = any (the handler decides). HEAD is
  // accepted wherever GET is.
  Router& exact(kj::StringPtr path, kj::ArrayPtr<const kj::StringPtr> methods, Handler handler,
                BodyPolicy body = {});
  // `pathPrefix` should end in '/'; it matches every path that starts with it.
  Router& under(kj::StringPtr pathPrefix, kj::ArrayPtr<const kj::StringPtr> methods,
                Handler handler, BodyPolicy body = {});
  // How 404 and 405 are answered (default: short text/plain). The router adds `Allow`.
  Router& fallback(Fallback fallback);

  kj::StringPtr prefix() const { return prefix_; }
  // The request's path with the prefix removed, or null when it is outside the prefix.
  kj::Maybe<kj::StringPtr> localPath(kj::StringPtr path) const;

  kj::Promise<HttpResponse> handle(HttpRequest& request) override;
  // A body for a path no route serves (404) or with a method it does not allow (405) is
  // never read: the answer is sent at once and the connection closed.
  size_t maxBodyBytes(const HttpRequest& request) override;
  kj::Promise<kj::Maybe<HttpResponse>> beforeBody(HttpRequest& request,
                                                  kj::Maybe<uint64_t> length) override;

 private:
  struct Route {
    kj::String path;
    bool isPrefix;
    kj::Array<kj::String> methods;
    Handler handler;
    BodyPolicy body;
  };
  bool allows(const Route& route, kj::StringPtr method) const;
  struct Found {
    Route* route = nullptr;  // null for 404
    uint status = 404;       // 0: serve with `route`; else 404 or 405
    kj::StringPtr rest;      // the path after the route's prefix
  };
  Found find(const HttpRequest& request);
  HttpResponse refusal(HttpRequest& request, const Found& found);
  kj::String prefix_;
  kj::Vector<Route> routes_;
  kj::Maybe<Fallback> fallback_;
};

}  // namespace credvault::http
