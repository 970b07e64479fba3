// credvault-gateway HTTP layer — an HTTP/1.1 server on KJ async I/O.
//
// Written for this gateway rather than built on kj-http 0.9.2 (see docs/gateway.md): it
// answers `Expect: 100-continue`, and enforces the limits in frontends/limits.h — head size
// (431), body size (413), header-read and body-read time (408), idle keep-alive time, write
// time, and a connection cap (503). One event loop serves every connection; a slow client
// holds only its own buffer, never the loop. Requests on one connection are answered in order,
// and the next one is not read before the previous answer is written: a client that does not
// read its answers holds one answer, until the write timeout closes the connection.
//
// Fair share (docs/limits.md): connections per peer address are capped (503 with
// Retry-After, others are still served); request bodies and unsent answers held across all
// connections each have a budget (503 with Retry-After when it is spent, instead of holding
// more); the handler sees a request's head before its body is read and may bound or refuse
// the body (HttpHandler::maxBodyBytes, beforeBody).
//
// Every answer carries `X-Request-Id` (see request-id.h), also the ones the server gives
// itself (400, 408, 413, 431, 503); the handler finds the id in HttpRequest::id.
//
// Lifetime: the server must outlive every promise it returns. Destroying it cancels all
// connections at once; drain() first for a graceful stop. Never logs itself: each finished
// request is reported to the AccessLog given, with method, path (no query), status, time
// and request id.

#pragma once

#include "frontends/http/client-address.h"
#include "frontends/http/message.h"
#include "frontends/http/parser.h"
#include "frontends/http/tls.h"

#include <kj/async-io.h>
#include <kj/function.h>
#include <kj/map.h>
#include <kj/timer.h>

namespace credvault::http {

class HttpHandler {
 public:
  virtual ~HttpHandler() noexcept(false) = default;
  // `request` stays valid until the returned promise resolves or is cancelled. An exception
  // becomes a 500 without detail (the exception goes to AccessLog::handlerFailed).
  virtual kj::Promise<HttpResponse> handle(HttpRequest& request) = 0;

  // For a request that has a body, before any byte of it is read: the largest body this
  // request may have (above it: 413 and close). The server's maxBodyBytes bounds it too.
  virtual size_t maxBodyBytes(const HttpRequest& request) { return kj::maxValue; }
  // Then, still before the body: a response to send instead of reading it (the connection
  // then closes, so the body is never buffered), or null to go on. `length`: the declared
  // Content-Length, null for a chunked body. `request` stays valid until the promise resolves.
  virtual kj::Promise<kj::Maybe<HttpResponse>> beforeBody(HttpRequest& request,
                                                          kj::Maybe<uint64_t> length) {
    return kj::Maybe<HttpResponse>(nullptr);
  }
};

struct AccessLogEntry {
  kj::StringPtr method;
  kj::StringPtr path;    // never the query string: it may carry values a log must not hold
  kj::StringPtr peer;    // "ip:port" of the TCP peer
  kj::StringPtr client;  // the client's address (a trusted proxy's forwarded one), or ""
  kj::StringPtr requestId;
  uint status;
  kj::Duration duration;
  size_t requestBodyBytes;
  size_t responseBodyBytes;
  kj::StringPtr note;  // HttpResponse::note, may be empty
};

class AccessLog {
 public:
  virtual ~AccessLog() noexcept(false) = default;
  virtual void request(const AccessLogEntry& entry) = 0;
  // A handler threw, or accept failed: for the operator, without request data.
  virtual void error(kj::StringPtr what, const kj::Exception& exception) = 0;
};

class HttpServer final : private kj::TaskSet::ErrorHandler {
 public:
  // `calendar` supplies the Date header, `timer` every timeout, `monotonic` the logged
  // durations (kj::Timer::now() only advances between event-loop turns), `entropy` the
  // request ids.
  HttpServer(kj::Timer& timer, const kj::Clock& calendar, const kj::MonotonicClock& monotonic,
             Entropy& entropy, HttpHandler& handler, HttpLimits limits = {},
             kj::Maybe<AccessLog&> log = nullptr);
  ~HttpServer() noexcept(false);
  KJ_DISALLOW_COPY(HttpServer);

  // Accepts connections until drain(). Several listeners may share one server. `upgrade`
  // (TLS, tls.h) turns each accepted stream into the one HTTP is read from; it must outlive
  // the server's connections.
  kj::Promise<void> listen(kj::ConnectionReceiver& receiver,
                           kj::Maybe<StreamUpgrade&> upgrade = nullptr);

  // Serves one accepted stream (also used by tests with an in-memory pipe). `local`: the
  // address it was accepted on (HttpRequest::local).
  void serve(kj::Own<kj::AsyncIoStream> stream, kj::StringPtr peer = nullptr,
             kj::StringPtr local = nullptr, kj::Maybe<StreamUpgrade&> upgrade = nullptr);

  // Stops accepting, closes idle keep-alive connections, lets requests in progress finish
  // (their responses say `Connection: close`). Resolves when no connection is left or
  // limits.drainTimeout has passed (the caller then destroys the server, closing the rest).
  kj::Promise<void> drain();

  // Peers in this list may forward the client's address (client-address.h) and are exempt
  // from the per-address connection cap.
  void setTrustedProxies(TrustedProxies proxies) { trusted_ = kj::mv(proxies); }

  size_t connectionCount() const { return connections_; }
  size_t bufferedBodyBytes() const { return bodyBytes_; }
  size_t bufferedAnswerBytes() const { return answerBytes_; }
  bool isDraining() const { return draining_; }
  const HttpLimits& limits() const { return limits_; }

 private:
  class Connection;
  friend class Connection;

  void taskFailed(kj::Exception&& exception) override;
  kj::Promise<void> acceptLoop(kj::ConnectionReceiver& receiver, kj::Maybe<StreamUpgrade&> upgrade);
  void refuseBusy(kj::Own<kj::AsyncIoStream> stream);
  kj::StringPtr dateHeader();

  kj::Timer& timer_;
  const kj::Clock& calendar_;
  const kj::MonotonicClock& monotonic_;
  RequestIds ids_;
  HttpHandler& handler_;
  HttpLimits limits_;
  kj::Maybe<AccessLog&> log_;
  size_t connections_ = 0;
  kj::HashMap<kj::String, size_t> perAddress_;  // open connections by peer address
  size_t bodyBytes_ = 0;                        // reserved by bodies being read or held
  size_t answerBytes_ = 0;                      // answers not yet written to their clients
  TrustedProxies trusted_;
  bool draining_ = false;
  kj::PromiseFulfillerPair<void> drain_ = kj::newPromiseAndFulfiller<void>();
  kj::ForkedPromise<void> drainStarted_ = drain_.promise.fork();
  kj::Canceler acceptCanceler_;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> emptyFulfiller_;
  int64_t dateSecond_ = -1;
  char date_[40];
  kj::TaskSet tasks_;  // last: destroyed first, cancelling every connection
};

// "ip:port" of a stream's peer, "unix" for a Unix socket, "" when not a socket.
kj::String peerName(kj::AsyncIoStream& stream);
// "ip:port" of a stream's own end ("[::1]:8080"), "" when it is not an IP socket.
kj::String localName(kj::AsyncIoStream& stream);

}  // namespace credvault::http
