// credvault-gateway REST — the SuperOffice User agent's UntrustedCredentials operations.
//
// Registers, under the router's URL prefix:
//   POST /api/v1/Agents/User/<Op>     the seven operations (names case-insensitive);
//   GET  /api/v1/Agents/User/<Op>     a description of the operation (never invokes it);
//   GET  /api/v1/Agents/User          the operations, as SuperOffice lists its agents;
//   GET  /api/v1/openapi.json         the OpenAPI 3 document (docs/openapi.json);
//   anything else under /api/         404 with a JSON body.
// Each operation is one round trip to credvaultd with the caller's own credentials (see
// frontends/common/operations.h); docs/rest.md describes statuses, formats and decisions.
//
// The routes share one reference-counted state holding `link`, which must outlive the router.
// Never logs (the server's access log records method, path and status).

#pragma once

#include "frontends/common/vault-link.h"
#include "frontends/http/router.h"

namespace credvault::rest {

void addRoutes(http::Router& router, frontends::VaultLink& link);

// The OpenAPI document served at /api/v1/openapi.json (generated from docs/openapi.json).
kj::StringPtr openApiDocument();

}  // namespace credvault::rest
