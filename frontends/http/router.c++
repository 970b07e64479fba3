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
                      Handler handler, BodyPolicy body) {
  auto names = KJ_MAP(m, methods) {
    return kj::heapString(m);
  };
  routes_.add(Route{kj::heapString(path), false, kj::mv(names), kj::mv(handler), kj::mv(body)});
  return *this;
}

Router& Router::under(kj::StringPtr pathPrefix, kj::ArrayPtr<const kj::StringPtr> methods,
                      Handler handler, BodyPolicy body) {
  auto names = KJ_MAP(m, methods) {
    return kj::heapString(m);
  };
  routes_.add(
      Route{kj::heapString(pathPrefix), true, kj::mv(names), kj::mv(handler), kj::mv(body)});
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

Router::Found Router::find(const HttpRequest& request) {
  Found out;
  kj::StringPtr local;
  KJ_IF_MAYBE(l, localPath(request.path)) {
    local = *l;
  } else {
    return out;
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
  out.route = best;
  if (best == nullptr) return out;
  if (!allows(*best, request.method)) {
    out.status = 405;
    return out;
  }
  out.status = 0;
  out.rest = best->isPrefix ? local.slice(best->path.size()) : kj::StringPtr("");
  return out;
}

HttpResponse Router::refusal(HttpRequest& request, const Found& found) {
  auto response = [&]() -> HttpResponse {
    KJ_IF_MAYBE(f, fallback_) { return (*f)(request, found.status); }
    return HttpResponse::text(found.status);
  }();
  if (found.status == 405) {
    kj::Vector<kj::StringPtr> names;
    for (auto& m : found.route->methods) names.add(m);
    response.header("Allow", kj::strArray(names, ", "));
  }
  return response;
}

kj::Promise<HttpResponse> Router::handle(HttpRequest& request) {
  auto found = find(request);
  if (found.status != 0) return refusal(request, found);
  return found.route->handler(request, found.rest);
}

size_t Router::maxBodyBytes(const HttpRequest& request) {
  auto found = find(request);
  if (found.status == 0) return found.route->body.maxBytes;
  return kj::maxValue;  // refused unread by beforeBody
}

kj::Promise<kj::Maybe<HttpResponse>> Router::beforeBody(HttpRequest& request,
                                                        kj::Maybe<uint64_t> length) {
  auto found = find(request);
  if (found.status != 0) return kj::Maybe<HttpResponse>(refusal(request, found));
  KJ_IF_MAYBE(check, found.route->body.check) { return (*check)(request, found.rest, length); }
  return kj::Maybe<HttpResponse>(nullptr);
}

}  // namespace credvault::http
