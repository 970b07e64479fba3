// credvault-gateway — Prometheus metrics at /metrics on a separate address (metrics_listen).
//
// The gateway's own figures come from its access log (Metrics decorates the AccessLog, so
// every answered request is counted once, the server's own 4xx/5xx included): requests by
// route and status, a latency histogram per operation, authentication outcomes, open
// connections. The daemon's come from Vault.metrics over the gateway's link at scrape time
// (the gateway's uid must be a front end: gateway_uids), with credvault_gateway_daemon_up
// saying whether it answered. Labels take fixed values only (route and operation names
// from a closed list, status codes), so a client cannot grow the output.
//
// Thread-compatible: the event loop's thread only. Never logs.

#pragma once

#include "frontends/common/vault-link.h"
#include "frontends/http/router.h"

#include <kj/map.h>

namespace credvault::frontends {

class Metrics final : public http::AccessLog {
 public:
  // `next`: where access-log entries go after they were counted (the stderr log), or null.
  explicit Metrics(kj::Maybe<http::AccessLog&> next) : next_(next) {}

  void request(const http::AccessLogEntry& entry) override;
  void error(kj::StringPtr what, const kj::Exception& exception) override;

  // The gateway's part of the exposition (every line ends in '\n').
  kj::String renderGateway(size_t openConnections) const;

  // Histogram bucket bounds, in seconds.
  static constexpr double BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                       0.25,  0.5,    1,     2.5,  5,     10};
  static constexpr size_t BUCKET_COUNT = sizeof(BUCKETS) / sizeof(BUCKETS[0]);

 private:
  struct Histogram {
    uint64_t buckets[BUCKET_COUNT + 1] = {};  // the last one: +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  kj::Maybe<http::AccessLog&> next_;
  kj::TreeMap<kj::String, uint64_t> requests_;  // "route\0status"
  kj::TreeMap<kj::String, Histogram> latency_;  // operation
  uint64_t authSuccess_ = 0;
  uint64_t authFailure_ = 0;
  uint64_t authThrottled_ = 0;
};

// The route and operation a request is counted under (fixed names; "other" for the rest).
struct Classified {
  kj::StringPtr route;      // soap, rest, wsdl, healthz, other
  kj::StringPtr operation;  // e.g. GetUntrustedCredentials, AuthenticateUsernamePassword
  // Authentication outcome, for requests that authenticate: success, failure, throttled;
  // null otherwise.
  kj::StringPtr auth;
};
Classified classify(const http::AccessLogEntry& entry);

// Adds GET /metrics to `router` (the metrics listener's own). `metrics`, `link`, `timer` and
// `server` (the gateway's, for its open connections) must outlive the router.
void addMetricsRoute(http::Router& router, Metrics& metrics, VaultLink& link, kj::Timer& timer,
                     http::HttpServer& server);

}  // namespace credvault::frontends
