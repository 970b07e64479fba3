#include "router.h"

#include <kj/debug.h>

namespace credvault::http {

Router::Router(kj::StringPtr prefix) {
  kj::StringPtr p = prefix == nullptr ? kj::StringPtr("") : prefix;
  while (p.startsWith("/")) p = p.slice(1);
  size_t len = p.size();
  while (len > 0 && p[len - 1] == '/') --len;
  prefix_ = len == 0 ? kj::heapString("") : kj::str("/", kj::heapString(p.begin(), len));
}

Router& Router::exact(kj::StringPtr path, kj::ArrayPtr<const kj::StringPtr> methods,
                      Handler handler) {
  routes_.add(Route{kj::heapString(path), false,
                    KJ_MAP(m, methods) { return kj::heapString(m);
}
, kj::mv(handler)
}  // namespace credvault::http
);
return *this;
}

Router& Router::under(kj::StringPtr pathPrefix, kj::ArrayPtr<const kj::StringPtr> methods,
                      Handler handler) {
  routes_.add(Route{kj::heapString(pathPrefix), true,
                    KJ_MAP(m, methods) { return kj::heapString(m);
}
, kj::mv(handler)
});
return *this;
}

Router& Router::fallback(Fallback fallback) {
  fallback_ = kj::mv(fallback);
  return *this;
}

kj::Maybe<kj::StringPtr> Router::localPath(kj::StringPtr path) const {
  if (prefix_.size() == 0) return path;
  if (!startsWithIgnoreCase(path, prefix_)) return nullptr;
  kj::StringPtr rest = path.slice(prefix_.size());
  if (rest.size() == 0) return kj::StringPtr("/");
  if (rest[0] != '/') return nullptr;
  return rest;
}

bool Router::allows(const Route& route, kj::StringPtr method) const {
  if (route.methods.size() == 0) return true;
  for (auto& m : route.methods) {
    if (m == method) return true;
    if (method == "HEAD" && m == "GET") return true;
  }
  return false;
}

kj::Promise<HttpResponse> Router::handle(HttpRequest& request) {
  auto answer = [&](uint status) -> HttpResponse {
    KJ_IF_MAYBE(f, fallback_) { return (*f)(request, status); }
    return HttpResponse::text(status);
  };

  kj::StringPtr local;
  KJ_IF_MAYBE(l, localPath(request.path)) {
    local = *l;
  } else {
    return answer(404);
  }

  Route* best = nullptr;
  for (auto& route : routes_) {
    if (route.isPrefix) {
      if (startsWithIgnoreCase(local, route.path) &&
          (best == nullptr || (best->isPrefix && route.path.size() > best->path.size()))) {
        best = &route;
      }
    } else if (equalsIgnoreCase(local, route.path)) {
      best = &route;
      break;
    }
  }
  if (best == nullptr) return answer(404);
  if (!allows(*best, request.method)) {
    auto response = answer(405);
    kj::Vector<kj::StringPtr> names;
    for (auto& m : best->methods) names.add(m);
    response.header("Allow", kj::strArray(names, ", "));
    return kj::mv(response);
  }
  kj::StringPtr rest = best->isPrefix ? local.slice(best->path.size()) : kj::StringPtr("");
  return best->handler(request, rest);
}

}  // namespace credvault::http
