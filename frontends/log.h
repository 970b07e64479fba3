// credvault-gateway — the access and error log: one line per request on stderr.
//
// Lines start with a syslog priority prefix ("<6>") that journald turns into the entry's
// priority when stderr is connected to it. A line holds method, path (never the query),
// status, duration, peer, request id (the X-Request-Id the client got, also in the daemon's
// audit records) and the handler's note (operation and outcome) — never a ticket,
// password, token or credential value: nothing from a request body or header is logged.

#pragma once

#include "frontends/http/server.h"

namespace credvault::frontends {

class StderrLog final : public http::AccessLog {
 public:
  explicit StderrLog(bool accessLines = true) : accessLines_(accessLines) {}
  void request(const http::AccessLogEntry& entry) override;
  void error(kj::StringPtr what, const kj::Exception& exception) override;
  // Operator messages (start, stop, configuration problems).
  static void info(kj::StringPtr message);
  static void warning(kj::StringPtr message);

 private:
  bool accessLines_;
};

}  // namespace credvault::frontends
