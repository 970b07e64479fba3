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

namespace {

// One probe shared by the requests that arrive while it is out.
class SharedProbe {
 public:
  SharedProbe(VaultLink& link, kj::Timer& timer) : link_(link), timer_(timer) {}
  KJ_DISALLOW_COPY(SharedProbe);

  kj::Promise<kj::String> get() {
    if (done_ || probe_ == nullptr) {
      done_ = false;
      probe_ = probeDaemon(link_, timer_)
                   .then([this](kj::String daemon) {
                     last_ = kj::mv(daemon);
                     done_ = true;
                   })
                   .fork();
    }
    return KJ_ASSERT_NONNULL(probe_).addBranch().then([this]() { return kj::str(last_); });
  }

 private:
  VaultLink& link_;
  kj::Timer& timer_;
  kj::Maybe<kj::ForkedPromise<void>> probe_;  // replaced only once it has settled
  kj::String last_;
  bool done_ = false;
};

}  // namespace

void addHealthRoute(http::Router& router, VaultLink& link, kj::Timer& timer,
                    kj::StringPtr version) {
  static const kj::StringPtr GET[] = {"GET"};
  auto probe = kj::heap<SharedProbe>(link, timer);
  router.exact(
      "/healthz", GET, [probe = kj::mv(probe), version](http::HttpRequest&, kj::StringPtr) mutable {
        return probe->get().then([version](kj::String daemon) {
          bool ok = daemon == "ok";
          auto body = kj::str("{\"status\":\"", ok ? "ok" : "unavailable", "\",\"daemon\":\"",
                              daemon, "\",\"version\":\"", version, "\"}\n");
          auto response = http::HttpResponse::make(ok ? 200 : 503, "application/json", body);
          response.header("Cache-Control", "no-store");
          response.note = kj::str("health ", daemon);
          return response;
        });
      });
}

}  // namespace credvault::frontends
