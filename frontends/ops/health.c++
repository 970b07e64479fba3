#include "health.h"

namespace credvault::frontends {

kj::Promise<kj::String> probeDaemon(VaultLink& link, kj::Timer& timer, kj::Duration deadline) {
  auto call = link.call<kj::String>([](rpc::Vault::Client vault) {
    return vault.healthRequest().send().then([](auto answer) -> kj::String {
      if (answer.hasError()) return kj::str(ipc::errorCodeName(answer.getError().getCode()));
      return kj::str("ok");
    });
  });
  return timer.timeoutAfter(deadline, kj::mv(call)).catch_([](kj::Exception&& e) -> kj::String {
    // VaultLink reports its own call timeout as OVERLOADED too.
    if (e.getType() == kj::Exception::Type::OVERLOADED) return kj::str("timeout");
    return kj::str("unreachable");
  });
}

void addHealthRoute(http::Router& router, VaultLink& link, kj::Timer& timer,
                    kj::StringPtr version) {
  static const kj::StringPtr GET[] = {"GET"};
  router.exact("/healthz", GET, [&link, &timer, version](http::HttpRequest&, kj::StringPtr) {
    return probeDaemon(link, timer).then([version](kj::String daemon) {
      bool ok = daemon == "ok";
      auto body = kj::str("{\"status\":\"", ok ? "ok" : "unavailable", "\",\"daemon\":\"", daemon,
                          "\",\"version\":\"", version, "\"}\n");
      auto response = http::HttpResponse::make(ok ? 200 : 503, "application/json", body);
      response.header("Cache-Control", "no-store");
      response.note = kj::str("health ", daemon);
      return response;
    });
  });
}

}  // namespace credvault::frontends
