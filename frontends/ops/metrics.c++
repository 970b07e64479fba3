#include "metrics.h"
#include "health.h"
#include "credvault-config.h"

#include <stdio.h>

namespace credvault::frontends {

namespace {

const kj::StringPtr OPERATIONS[] = {
    "CreateDefaultUntrustedCredentials",      "GetUntrustedCredentials",
    "GetUntrustedCredentialsForAssociate",    "SaveUntrustedCredentials",
    "SaveUntrustedCredentialsForAssociate",   "RemoveUntrustedCredentials",
    "RemoveUntrustedCredentialsForAssociate", "AuthenticateUsernamePassword",
};

// `name` as one of ours, or "other" (the label's value is then ours, never the client's).
kj::StringPtr knownOperation(kj::StringPtr name) {
  for (auto& op : OPERATIONS) {
    if (op == name) return op;
  }
  return "other";
}

bool contains(kj::StringPtr s, kj::StringPtr part) {
  return strstr(s.cStr(), part.cStr()) != nullptr;
}

// Prometheus floats: integers as integers, others with enough digits.
kj::String number(double v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.9g", v);
  return kj::str(buf);
}

}  // namespace

Classified classify(const http::AccessLogEntry& e) {
  Classified c{"other", "other", nullptr};
  kj::StringPtr path = e.path;
  if (path.endsWith("/healthz")) return {"healthz", "healthz", nullptr};
  if (contains(path, "/Remote/Services")) {
    // The SOAP service's note: "User.GetUntrustedCredentials ok", "User.wsdl",
    // "SoPrincipal.AuthenticateUsernamePassword not-authenticated".
    kj::StringPtr note = e.note;
    KJ_IF_MAYBE(dot, note.findFirst('.')) {
      auto rest = note.slice(*dot + 1);
      size_t space = 0;
      while (space < rest.size() && rest[space] != ' ') ++space;
      auto op = kj::heapString(rest.slice(0, space));
      if (op == "wsdl") return {"wsdl", "wsdl", nullptr};
      c.route = "soap";
      c.operation = knownOperation(op);
      if (c.operation != "other") {
        kj::StringPtr result = space < rest.size() ? rest.slice(space + 1) : kj::StringPtr("");
        c.auth = result == "not-authenticated" ? "failure"
                 : result == "throttled"       ? "throttled"
                 : e.status < 400              ? "success"
                                               : nullptr;
      }
    } else {
      c.route = "soap";
    }
    return c;
  }
  if (contains(path, "/api/")) {
    c.route = "rest";
    KJ_IF_MAYBE(slash, path.findLast('/')) {
      if (contains(path, "/Agents/User/")) c.operation = knownOperation(path.slice(*slash + 1));
      // (the path is the part before any query: the access log never holds one)
    }
    if (c.operation != "other") {
      c.auth = e.status == 401                     ? "failure"
               : e.status == 429                   ? "throttled"
               : e.status < 400 || e.status == 403 ? "success"
                                                   : nullptr;
    }
    return c;
  }
  return c;
}

void Metrics::request(const http::AccessLogEntry& e) {
  auto c = classify(e);
  kj::uint status = e.status >= 100 && e.status <= 599 ? e.status : 0;
  auto key = kj::str(c.route, " ", status);
  requests_.upsert(kj::mv(key), 1, [](uint64_t& existing, uint64_t) { ++existing; });
  double seconds = static_cast<double>(e.duration / kj::NANOSECONDS) / 1e9;
  auto& h = latency_.findOrCreate(c.operation, [&]() {
    return decltype(latency_)::Entry{kj::heapString(c.operation), Histogram{}};
  });
  size_t i = 0;
  while (i < BUCKET_COUNT && seconds > BUCKETS[i]) ++i;
  ++h.buckets[i];
  h.sum += seconds;
  ++h.count;
  if (c.auth == "success") ++authSuccess_;
  if (c.auth == "failure") ++authFailure_;
  if (c.auth == "throttled") ++authThrottled_;
  KJ_IF_MAYBE(n, next_) { n->request(e); }
}

void Metrics::error(kj::StringPtr what, const kj::Exception& exception) {
  KJ_IF_MAYBE(n, next_) { n->error(what, exception); }
}

kj::String Metrics::renderGateway(size_t openConnections) const {
  kj::Vector<kj::String> out;
  out.add(
      kj::str("# HELP credvault_gateway_info The gateway's version.\n"
              "# TYPE credvault_gateway_info gauge\n"
              "credvault_gateway_info{version=\"",
              CREDVAULT_VERSION, "\"} 1\n"));
  out.add(
      kj::str("# HELP credvault_gateway_requests_total HTTP requests answered, by route "
              "and status.\n# TYPE credvault_gateway_requests_total counter\n"));
  for (auto& entry : requests_) {
    auto space = KJ_ASSERT_NONNULL(entry.key.findFirst(' '));
    out.add(kj::str("credvault_gateway_requests_total{route=\"",
                    entry.key.asArray().slice(0, space), "\",status=\"", entry.key.slice(space + 1),
                    "\"} ", entry.value, "\n"));
  }
  out.add(
      kj::str("# HELP credvault_gateway_request_duration_seconds Time from the first "
              "byte of a request to its answer, by operation.\n"
              "# TYPE credvault_gateway_request_duration_seconds histogram\n"));
  for (auto& entry : latency_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= BUCKET_COUNT; i++) {
      cumulative += entry.value.buckets[i];
      out.add(kj::str("credvault_gateway_request_duration_seconds_bucket{operation=\"", entry.key,
                      "\",le=\"", i < BUCKET_COUNT ? number(BUCKETS[i]) : kj::str("+Inf"), "\"} ",
                      cumulative, "\n"));
    }
    out.add(kj::str("credvault_gateway_request_duration_seconds_sum{operation=\"", entry.key,
                    "\"} ", number(entry.value.sum), "\n"));
    out.add(kj::str("credvault_gateway_request_duration_seconds_count{operation=\"", entry.key,
                    "\"} ", entry.value.count, "\n"));
  }
  out.add(
      kj::str("# HELP credvault_gateway_auth_total Requests to an operation by how their "
              "authentication went.\n# TYPE credvault_gateway_auth_total counter\n",
              "credvault_gateway_auth_total{outcome=\"success\"} ", authSuccess_, "\n",
              "credvault_gateway_auth_total{outcome=\"failure\"} ", authFailure_, "\n",
              "credvault_gateway_auth_total{outcome=\"throttled\"} ", authThrottled_, "\n"));
  out.add(
      kj::str("# HELP credvault_gateway_connections_open Client connections open.\n"
              "# TYPE credvault_gateway_connections_open gauge\n"
              "credvault_gateway_connections_open ",
              openConnections, "\n"));
  return kj::strArray(out, "");
}

namespace {

kj::String gauge(kj::StringPtr name, kj::StringPtr help, kj::StringPtr type, kj::String value) {
  return kj::str("# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name, " ", value,
                 "\n");
}

kj::String renderDaemon(rpc::Status::Reader s) {
  kj::Vector<kj::String> out;
  auto g = [&](kj::StringPtr name, kj::StringPtr help, auto value) {
    out.add(gauge(name, help, "gauge", kj::str(value)));
  };
  auto c = [&](kj::StringPtr name, kj::StringPtr help, auto value) {
    out.add(gauge(name, help, "counter", kj::str(value)));
  };
  g("credvault_daemon_credentials", "Credentials stored.", s.getCredentials());
  g("credvault_daemon_associates", "Associates.", s.getAssociates());
  c("credvault_daemon_commits_total", "Durable group commits since the daemon started.",
    s.getCommits());
  c("credvault_daemon_committed_writes_total", "Writes those commits carried.",
    s.getCommittedWrites());
  g("credvault_daemon_writes_per_commit", "Writes per commit since start (group commit).",
    number(s.getCommits() == 0 ? 0.0
                               : static_cast<double>(s.getCommittedWrites()) /
                                     static_cast<double>(s.getCommits())));
  g("credvault_daemon_write_queue_length", "Writes waiting for the next commit.",
    s.getWriteQueue());
  g("credvault_daemon_password_queue_length", "Argon2id verifications waiting for a worker.",
    s.getPasswordQueue());
  g("credvault_daemon_password_workers", "Argon2id workers.", s.getPasswordWorkers());
  g("credvault_daemon_read_queue_length", "Long lists waiting for the reads worker.",
    s.getReadQueue());
  g("credvault_daemon_maintenance_queue_length", "Backups waiting.", s.getMaintenanceQueue());
  g("credvault_daemon_map_size_bytes", "LMDB map size.", s.getMapSize());
  g("credvault_daemon_map_used_bytes", "LMDB map pages in use, in bytes.", s.getUsedBytes());
  g("credvault_daemon_map_readers", "LMDB read slots in use.", s.getMapReaders());
  g("credvault_daemon_connections", "Connections to the daemon's socket.", s.getConnections());
  g("credvault_daemon_uptime_seconds", "Seconds since the daemon started.", s.getUptimeSeconds());
  g("credvault_daemon_audit_accepting", "1 while the audit trail accepts records.",
    s.getAuditAccepting() ? 1 : 0);
  g("credvault_daemon_data_key_id", "The data key new records are sealed with.", s.getDataKeyId());
  return kj::strArray(out, "");
}

}  // namespace

void addMetricsRoute(http::Router& router, Metrics& metrics, VaultLink& link, kj::Timer& timer,
                     http::HttpServer& server) {
  static const kj::StringPtr GET[] = {"GET"};
  router.exact(
      "/metrics", GET, [&metrics, &link, &timer, &server](http::HttpRequest&, kj::StringPtr) {
        auto call = link.call<kj::String>([](rpc::Vault::Client vault) {
          return vault.metricsRequest().send().then([](auto answer) -> kj::String {
            if (answer.hasError()) {
              // Reachable but not allowed (the gateway's uid is not in
              // gateway_uids) or not serving: say so in the exposition.
              return kj::str("# daemon refused Vault.metrics: ",
                             ipc::errorCodeName(answer.getError().getCode()), "\n");
            }
            return renderDaemon(answer.getStatus());
          });
        });
        return timer.timeoutAfter(HEALTH_DEADLINE, kj::mv(call))
            .then([](kj::String daemon) { return kj::tuple(true, kj::mv(daemon)); },
                  [](kj::Exception&&) { return kj::tuple(false, kj::str()); })
            .then([&metrics, &server](kj::Tuple<bool, kj::String> result) {
              bool up = kj::get<0>(result);
              auto body = kj::str(metrics.renderGateway(server.connectionCount()),
                                  gauge("credvault_gateway_daemon_up",
                                        "1 when the daemon answered this scrape in time.", "gauge",
                                        kj::str(up ? 1 : 0)),
                                  kj::get<1>(result));
              auto r =
                  http::HttpResponse::make(200, "text/plain; version=0.0.4; charset=utf-8", body);
              r.header("Cache-Control", "no-store");
              return r;
            });
      });
}

}  // namespace credvault::frontends
