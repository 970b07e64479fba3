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
#include <kj/vector.h>

namespace credvault::http {

class Router final : public HttpHandler {
 public:
  // `rest` is the part of the path after the route's prefix ("" for an exact route).
  using Handler = kj::Function<kj::Promise<HttpResponse>(HttpRequest& request, kj::StringPtr rest)>;
  using Fallback = kj::Function<HttpResponse(HttpRequest& request, uint status)>;

  // `prefix`: "" or "/Name" ("Name", "/Name/" are normalised to "/Name").
  explicit Router(kj::StringPtr prefix = nullptr);

  // `methods`: the methods this route accepts; empty = any (the handler decides). HEAD is
  // accepted wherever GET is.
  Router& exact(kj::StringPtr path, kj::ArrayPtr<const kj::StringPtr> methods, Handler handler);
  // `pathPrefix` should end in '/'; it matches every path that starts with it.
  Router& under(kj::StringPtr pathPrefix, kj::ArrayPtr<const kj::StringPtr> methods,
                Handler handler);
  // How 404 and 405 are answered (default: short text/plain). The router adds `Allow`.
  Router& fallback(Fallback fallback);

  kj::StringPtr prefix() const { return prefix_; }
  // The request's path with the prefix removed, or null when it is outside the prefix.
  kj::Maybe<kj::StringPtr> localPath(kj::StringPtr path) const;

  kj::Promise<HttpResponse> handle(HttpRequest& request) override;

 private:
  struct Route {
    kj::String path;
    bool isPrefix;
    kj::Array<kj::String> methods;
    Handler handler;
  };
  bool allows(const Route& route, kj::StringPtr method) const;
  kj::String prefix_;
  kj::Vector<Route> routes_;
  kj::Maybe<Fallback> fallback_;
};

}  // namespace credvault::http
