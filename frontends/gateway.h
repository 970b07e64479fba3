// credvault-gateway — the server object: HTTP server, router, daemon link and frontends.
//
// Takes its OS dependencies (network, timer, clocks, entropy, log) in the constructor, so
// tests can run it without a process around it; main.c++ only parses options and wires.
// A frontend adds itself by registering routes on router() (SOAP: /Remote/; REST:
// /api/v1/Agents/...), all under the configured URL prefix.

#pragma once

#include "frontends/common/vault-link.h"
#include "frontends/http/router.h"
#include "frontends/http/server.h"
#include "frontends/soap/service.h"

namespace credvault::frontends {

struct GatewayConfig {
  kj::String vaultSocket;
  kj::String urlPrefix = kj::str();  // "" or "/Cust12345"
  kj::String publicUrl = kj::str();  // "" or "https://vault.example.com" (config.h)
  http::HttpLimits limits;
  size_t maxSoapBodyBytes = DEFAULT_MAX_SOAP_BODY_BYTES;
  http::TrustedProxies trustedProxies;  // may forward the client's address (gateway.conf)
};

class Gateway {
 public:
  Gateway(kj::Network& network, kj::Timer& timer, const kj::Clock& calendar,
          const kj::MonotonicClock& monotonic, http::Entropy& entropy, GatewayConfig config,
          kj::Maybe<http::AccessLog&> log);
  KJ_DISALLOW_COPY(Gateway);

  // Serves connections from `receiver` until drain().
  kj::Promise<void> listen(kj::ConnectionReceiver& receiver,
                           kj::Maybe<http::StreamUpgrade&> upgrade = nullptr) {
    return server_.listen(receiver, upgrade);
  }
  // Graceful stop: see HttpServer::drain().
  kj::Promise<void> drain() { return server_.drain(); }

  http::Router& router() { return router_; }
  VaultLink& vault() { return link_; }
  http::HttpServer& server() { return server_; }

 private:
  GatewayConfig config_;
  VaultLink link_;
  http::Router router_;
  soap::SoapService soap_;
  http::HttpServer server_;
};

}  // namespace credvault::frontends
