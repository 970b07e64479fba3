#include "gateway.h"
#include "frontends/ops/health.h"
#include "credvault-config.h"

namespace credvault::frontends {

Gateway::Gateway(kj::Network& network, kj::Timer& timer, const kj::Clock& calendar,
                 const kj::MonotonicClock& monotonic, http::Entropy& entropy, GatewayConfig config,
                 kj::Maybe<http::AccessLog&> log)
    : config_(kj::mv(config)),
      link_(network, timer, kj::heapString(config_.vaultSocket)),
      router_(config_.urlPrefix),
      soap_(link_, config_.publicUrl),
      server_(timer, calendar, monotonic, entropy, router_, config_.limits, log) {
  soap_.setMaxBodyBytes(config_.maxSoapBodyBytes);
  soap_.addRoutes(router_);
  addHealthRoute(router_, link_, timer, CREDVAULT_VERSION);
  server_.setTrustedProxies(config_.trustedProxies.clone());
}

}  // namespace credvault::frontends
