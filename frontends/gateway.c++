#include "gateway.h"

namespace credvault::frontends {

Gateway::Gateway(kj::Network& network, kj::Timer& timer, const kj::Clock& calendar,
                 const kj::MonotonicClock& monotonic, GatewayConfig config,
                 kj::Maybe<http::AccessLog&> log)
    : config_(kj::mv(config)),
      link_(network, timer, kj::heapString(config_.vaultSocket)),
      router_(config_.urlPrefix),
      soap_(link_),
      server_(timer, calendar, monotonic, router_, config_.limits, log) {
  soap_.addRoutes(router_);
}

}  // namespace credvault::frontends
