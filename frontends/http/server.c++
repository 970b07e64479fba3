#include "server.h"

#include <arpa/inet.h>
#include <kj/debug.h>
#include "frontends/limits.h"
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <stdio.h>

namespace credvault::http {

namespace {

constexpr size_t INITIAL_BUFFER_BYTES = 4096;
constexpr kj::Duration LINGER_TIME = 2 * kj::SECONDS;
constexpr size_t LINGER_BYTES = 256 * 1024;
constexpr kj::Duration ACCEPT_RETRY_DELAY = 100 * kj::MILLISECONDS;

struct Closed {};
using HeadOutcome = kj::OneOf<HttpRequest, HttpError, Closed>;

bool isDisconnect(const kj::Exception& e) {
  return e.getType() == kj::Exception::Type::DISCONNECTED;
}

// "ip:port" of either end of a stream (getsockname or getpeername); "unix", or "" when not
// a socket.
kj::String socketName(kj::AsyncIoStream& stream, bool local) {
  struct sockaddr_storage addr;
  uint len = sizeof(addr);
  memset(&addr, 0, sizeof(addr));
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                auto* sa = reinterpret_cast<struct sockaddr*>(&addr);
                if (local) {
                  stream.getsockname(sa, &len);
                } else {
                  stream.getpeername(sa, &len);
                }
              })) {
    return kj::heapString("");
  }
  char host[INET6_ADDRSTRLEN] = "";
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<struct sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return kj::str(host, ":", ntohs(in->sin_port));
  } else if (addr.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<struct sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return kj::str("[", host, "]:", ntohs(in6->sin6_port));
  } else if (addr.ss_family == AF_UNIX) {
    return kj::heapString("unix");
  }
  return kj::heapString("");
}

}  // namespace

kj::String peerName(kj::AsyncIoStream& stream) {
  return socketName(stream, false);
}

kj::String localName(kj::AsyncIoStream& stream) {
  auto name = socketName(stream, true);
  if (name == "unix") return kj::heapString("");
  return name;
}

// =======================================================================================

class HttpServer::Connection {
 public:
  // `address`: the peer's IP address, counted in server.perAddress_ when `counted`.
  Connection(HttpServer& server, kj::Own<kj::AsyncIoStream> stream, kj::String peer,
             kj::String local, kj::String address, bool counted, kj::Maybe<StreamUpgrade&> upgrade)
      : server_(server),
        stream_(kj::mv(stream)),
        upgrade_(upgrade),
        peer_(kj::mv(peer)),
        local_(kj::mv(local)),
        address_(kj::mv(address)),
        counted_(counted),
        buf_(kj::heapArray<char>(kj::min(INITIAL_BUFFER_BYTES, server.limits_.maxHeaderBytes))) {
    ++server_.connections_;
    if (counted_) {
      server_.perAddress_.upsert(kj::heapString(address_), 1,
                                 [](size_t& existing, size_t) { ++existing; });
    }
  }
  ~Connection() noexcept(false) {
    // The buffer may have held a request body (a password, a secret) in transit.
    explicit_bzero(buf_.begin(), buf_.size());
    dropLengthBody();
    releaseBudgets();
    if (counted_) {
      KJ_IF_MAYBE(n, server_.perAddress_.find(address_)) {
        if (--*n == 0) server_.perAddress_.erase(address_);
      }
    }
    if (--server_.connections_ == 0) {
      KJ_IF_MAYBE(f, server_.emptyFulfiller_) {
        (*f)->fulfill();
        server_.emptyFulfiller_ = nullptr;
      }
    }
  }
  KJ_DISALLOW_COPY(Connection);

  kj::Promise<void> run() {
    kj::Promise<void> served = nullptr;
    KJ_IF_MAYBE(u, upgrade_) {
      // TLS: the handshake (bounded by the upgrade itself) before the first request.
      served =
          u->upgrade(kj::mv(stream_))
              .then([this](kj::Maybe<kj::Own<kj::AsyncIoStream>> upgraded) -> kj::Promise<void> {
                KJ_IF_MAYBE(s, upgraded) {
                  stream_ = kj::mv(*s);
                  secure_ = true;
                  return loop();
                }
                return kj::READY_NOW;
              });
    } else {
      served = loop();
    }
    return served.catch_([this](kj::Exception&& e) {
      // A client that resets or vanishes is routine; anything else is worth a line.
      if (!isDisconnect(e)) {
        KJ_IF_MAYBE(log, server_.log_) { log->error("connection failed", e); }
      }
    });
  }

 private:
  HttpServer& server_;
  kj::Own<kj::AsyncIoStream> stream_;
  kj::Maybe<StreamUpgrade&> upgrade_;
  bool secure_ = false;
  kj::String peer_;
  kj::String local_;
  kj::String address_;
  bool counted_;
  kj::Array<char> buf_;
  size_t used_ = 0;
  size_t scanned_ = 0;

  // The request in progress and what is being written for it.
  RequestId id_;  // also for answers to requests that could not be read
  kj::Maybe<kj::Own<HttpRequest>> request_;
  kj::Maybe<ChunkedDecoder> decoder_;
  kj::Maybe<kj::Own<ByteBuffer>> body_;  // a chunked body being read (wiped when dropped)
  WipedBytes lengthBody_;                // a Content-Length body, allocated once, being read
  size_t lengthFilled_ = 0;
  kj::String client_;            // HttpRequest::client of the request in progress
  size_t bodyReserved_ = 0;      // this connection's share of server_.bodyBytes_
  size_t answerReserved_ = 0;    // ... and of server_.answerBytes_
  size_t requestBodyBytes_ = 0;  // for the access log (the body is dropped before answering)
  kj::TimePoint started_ = kj::origin<kj::TimePoint>();
  kj::String responseHead_;
  kj::String note_;
  WipedBytes responseBody_;
  kj::ArrayPtr<const kj::byte> pieces_[2];
  kj::Array<char> discard_;

  kj::Timer& timer() { return server_.timer_; }
  const HttpLimits& limits() { return server_.limits_; }

  // Grows this connection's body reservation to `total` bytes; false when the server's body
  // budget cannot hold it.
  bool reserveBody(size_t total) {
    if (total <= bodyReserved_) return true;
    size_t more = total - bodyReserved_;
    if (server_.bodyBytes_ + more > limits().maxBufferedBodyBytes) return false;
    server_.bodyBytes_ += more;
    bodyReserved_ = total;
    return true;
  }

  // Frees a Content-Length body that was not completed, wiping only the part received: the
  // rest was never touched, and wiping it would bring those pages into memory.
  void dropLengthBody() {
    auto& bytes = lengthBody_.array();
    if (bytes.size() > 0) {
      explicit_bzero(bytes.begin(), lengthFilled_);
      kj::Array<kj::byte> unwiped = kj::mv(bytes);  // lengthBody_ is empty now
    }
    lengthFilled_ = 0;
  }

  void releaseBudgets() {
    server_.bodyBytes_ -= bodyReserved_;
    bodyReserved_ = 0;
    server_.answerBytes_ -= answerReserved_;
    answerReserved_ = 0;
  }

  static HttpError busyError(kj::StringPtr reason) { return HttpError{503, reason}; }

  void consume(size_t n) {
    KJ_ASSERT(n <= used_);
    memmove(buf_.begin(), buf_.begin() + n, used_ - n);
    // Wipe the tail that no longer holds live data.
    explicit_bzero(buf_.begin() + (used_ - n), n);
    used_ -= n;
    scanned_ = 0;
  }

  kj::Promise<kj::Maybe<size_t>> readUntil(void* dst, size_t minBytes, size_t maxBytes,
                                           kj::TimePoint deadline) {
    return stream_->tryRead(dst, minBytes, maxBytes)
        .then([](size_t n) -> kj::Maybe<size_t> { return n; })
        .exclusiveJoin(
            timer().atTime(deadline).then([]() -> kj::Maybe<size_t> { return nullptr; }));
  }

  kj::Promise<void> loop() {
    return readHead(nullptr).then([this](HeadOutcome&& outcome) -> kj::Promise<void> {
      if (!outcome.is<Closed>()) id_ = server_.ids_.next();
      KJ_IF_MAYBE(request, outcome.tryGet<HttpRequest>()) {
        return onRequest(kj::heap<HttpRequest>(kj::mv(*request)));
      }
      KJ_IF_MAYBE(error, outcome.tryGet<HttpError>()) {
        started_ = server_.monotonic_.now();
        return respondError(*error, nullptr);
      }
      return closeGracefully();
    });
  }

  // Reads until a complete head is buffered. `deadline` is null while the connection is idle
  // (no byte of the next request yet): then the idle timeout and drain apply instead.
  kj::Promise<HeadOutcome> readHead(kj::Maybe<kj::TimePoint> deadline) {
    size_t skip = skipLeadingEmptyLines(buf_.slice(0, used_));
    if (skip > 0) consume(skip);
    if (used_ > 0) {
      if (deadline == nullptr) deadline = timer().now() + limits().headerTimeout;
      size_t end = findHeadEnd(buf_.slice(0, used_), scanned_);
      if (end > 0) {
        auto parsed = parseRequestHead(buf_.slice(0, end), limits());
        consume(end);
        KJ_IF_MAYBE(request, parsed.tryGet<HttpRequest>()) { return HeadOutcome(kj::mv(*request)); }
        return HeadOutcome(parsed.get<HttpError>());
      }
      if (used_ >= limits().maxHeaderBytes) {
        return HeadOutcome(HttpError{431, "request header too large"});
      }
    } else if (server_.draining_) {
      return HeadOutcome(Closed{});
    }
    if (used_ == buf_.size()) {
      auto bigger = kj::heapArray<char>(kj::min(buf_.size() * 2, limits().maxHeaderBytes));
      memcpy(bigger.begin(), buf_.begin(), used_);
      explicit_bzero(buf_.begin(), buf_.size());
      buf_ = kj::mv(bigger);
    }
    kj::Promise<kj::Maybe<size_t>> read = nullptr;
    KJ_IF_MAYBE(d, deadline) {
      read = readUntil(buf_.begin() + used_, 1, buf_.size() - used_, *d);
    } else {
      read = stream_->tryRead(buf_.begin() + used_, 1, buf_.size() - used_)
                 .then([](size_t n) -> kj::Maybe<size_t> { return n; })
                 .exclusiveJoin(
                     timer().afterDelay(limits().idleTimeout).then([]() -> kj::Maybe<size_t> {
                       return nullptr;
                     }))
                 .exclusiveJoin(server_.drainStarted_.addBranch().then(
                     []() -> kj::Maybe<size_t> { return nullptr; }));
    }
    return read.then([this, deadline](kj::Maybe<size_t> n) -> kj::Promise<HeadOutcome> {
      KJ_IF_MAYBE(k, n) {
        if (*k == 0) return HeadOutcome(Closed{});  // EOF; a partial head is dropped
        used_ += *k;
        return readHead(deadline);
      }
      if (deadline == nullptr) return HeadOutcome(Closed{});  // idle timeout or drain
      return HeadOutcome(HttpError{408, "request header timeout"});
    });
  }

  kj::Promise<void> onRequest(kj::Own<HttpRequest> request) {
    started_ = server_.monotonic_.now();
    request->peer = peer_;
    request->local = local_;
    request->secure = secure_;
    request->id = id_;
    client_ = clientAddress(*request, address_, server_.trusted_);
    request->client = client_;
    HttpRequest& req = *request;
    request_ = kj::mv(request);
    auto framingOrError = bodyFraming(req, limits());
    KJ_IF_MAYBE(error, framingOrError.tryGet<HttpError>()) { return respondError(*error, req); }
    auto framing = framingOrError.get<BodyFraming>();
    if (framing.kind == BodyFraming::NONE) return dispatch(req, framing.keepAlive);
    // Where the request goes decides whether its body is read at all, and its bound: ask
    // before reading a byte of it (the handler may also answer a too-large length itself).
    kj::Maybe<uint64_t> length;
    if (framing.kind == BodyFraming::LENGTH) length = framing.length;
    return kj::evalNow([&]() { return server_.handler_.beforeBody(req, length); })
        .then([this, &req, framing](kj::Maybe<HttpResponse> refusal) -> kj::Promise<void> {
          KJ_IF_MAYBE(r, refusal) { return respond(req, kj::mv(*r), false); }
          size_t maxBody = kj::min(limits().maxBodyBytes, server_.handler_.maxBodyBytes(req));
          if (framing.kind == BodyFraming::LENGTH && framing.length > maxBody) {
            return respondError(HttpError{413, "request body too large"}, req);
          }
          // A declared length is reserved whole before the first byte is read (and before
          // "100 Continue" invites it); a chunked body as it arrives.
          if (framing.kind == BodyFraming::LENGTH && !reserveBody(framing.length)) {
            return respondError(busyError("request body budget exhausted"), req);
          }
          return readBody(req, framing, maxBody)
              .then([this, &req, framing](kj::Maybe<HttpError> error) {
                KJ_IF_MAYBE(e, error) { return respondError(*e, req); }
                return dispatch(req, framing.keepAlive);
              });
        });
  }

  kj::Promise<void> sendContinue(const HttpRequest& req, const BodyFraming& framing) {
    if (!framing.expectContinue || used_ > 0 || req.minorVersion == 0) return kj::READY_NOW;
    static constexpr char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";
    return stream_->write(CONTINUE, sizeof(CONTINUE) - 1);
  }

  kj::Promise<kj::Maybe<HttpError>> readBody(HttpRequest& req, const BodyFraming& framing,
                                             size_t maxBody) {
    switch (framing.kind) {
      case BodyFraming::NONE:
        return kj::Maybe<HttpError>(nullptr);
      case BodyFraming::LENGTH: {
        size_t length = framing.length;
        if (used_ >= length) {
          req.body = WipedBytes(kj::heapArray<kj::byte>(buf_.slice(0, length).asBytes()));
          consume(length);
          return kj::Maybe<HttpError>(nullptr);
        }
        // Allocated once at its declared (reserved, bounded) size and read into directly: no
        // copies, and pages the client never sends are never touched, so cost no memory.
        lengthBody_ = WipedBytes(kj::heapArray<kj::byte>(length));
        lengthFilled_ = 0;
        auto deadline = timer().now() + limits().bodyTimeout;
        return sendContinue(req, framing).then([this, &req, length, deadline]() {
          return readLength(req, length, deadline);
        });
      }
      case BodyFraming::CHUNKED: {
        decoder_ = ChunkedDecoder(maxBody, limits().maxHeaderBytes);
        body_ = kj::heap<ByteBuffer>();
        auto deadline = timer().now() + limits().bodyTimeout;
        return sendContinue(req, framing).then([this, &req, deadline]() {
          return readChunks(req, deadline);
        });
      }
    }
    KJ_UNREACHABLE;
  }

  kj::Promise<kj::Maybe<HttpError>> readLength(HttpRequest& req, size_t length,
                                               kj::TimePoint deadline) {
    auto& out = lengthBody_.array();
    size_t take = kj::min(used_, length - lengthFilled_);
    if (take > 0) {
      memcpy(out.begin() + lengthFilled_, buf_.begin(), take);
      lengthFilled_ += take;
      consume(take);
    }
    if (lengthFilled_ == length) {
      req.body = kj::mv(lengthBody_);
      lengthBody_ = WipedBytes();
      return kj::Maybe<HttpError>(nullptr);
    }
    return readUntil(out.begin() + lengthFilled_, 1, length - lengthFilled_, deadline)
        .then([this, &req, length,
               deadline](kj::Maybe<size_t> n) -> kj::Promise<kj::Maybe<HttpError>> {
          KJ_IF_MAYBE(k, n) {
            if (*k == 0) return kj::Maybe<HttpError>(HttpError{400, "request body truncated"});
            lengthFilled_ += *k;
            return readLength(req, length, deadline);
          }
          return kj::Maybe<HttpError>(HttpError{408, "request body timeout"});
        });
  }

  kj::Promise<kj::Maybe<HttpError>> readChunks(HttpRequest& req, kj::TimePoint deadline) {
    auto& decoder = KJ_ASSERT_NONNULL(decoder_);
    auto& out = *KJ_ASSERT_NONNULL(body_);
    auto result = decoder.feed(buf_.slice(0, used_), out);
    consume(result.consumed);
    KJ_IF_MAYBE(e, result.error) { return kj::Maybe<HttpError>(*e); }
    if (!reserveBody(out.size())) {
      return kj::Maybe<HttpError>(busyError("request body budget exhausted"));
    }
    if (result.done) {
      req.body = out.release();
      decoder_ = nullptr;
      body_ = nullptr;
      return kj::Maybe<HttpError>(nullptr);
    }
    return readUntil(buf_.begin() + used_, 1, buf_.size() - used_, deadline)
        .then([this, &req, deadline](kj::Maybe<size_t> n) -> kj::Promise<kj::Maybe<HttpError>> {
          KJ_IF_MAYBE(k, n) {
            if (*k == 0) return kj::Maybe<HttpError>(HttpError{400, "request body truncated"});
            used_ += *k;
            return readChunks(req, deadline);
          }
          return kj::Maybe<HttpError>(HttpError{408, "request body timeout"});
        });
  }

  kj::Promise<void> dispatch(HttpRequest& req, bool keepAlive) {
    return kj::evalNow([&]() { return server_.handler_.handle(req); })
        .catch_([this](kj::Exception&& e) {
          KJ_IF_MAYBE(log, server_.log_) { log->error("request handler failed", e); }
          return HttpResponse::text(500);
        })
        .then([this, &req, keepAlive](HttpResponse&& response) {
          return respond(req, kj::mv(response), keepAlive);
        });
  }

  kj::Promise<void> respondError(const HttpError& error, kj::Maybe<HttpRequest&> req) {
    // The framing of whatever follows is unknown: answer, then close.
    auto response = HttpResponse::text(
        error.status, kj::str(error.status, " ", statusReason(error.status), ": ", error.reason));
    if (error.status == 503) {
      response.header("Retry-After", kj::str(frontends::BUSY_RETRY_AFTER_SECONDS));
    }
    return respond(req, kj::mv(response), false);
  }

  kj::Promise<void> respond(kj::Maybe<HttpRequest&> req, HttpResponse&& response, bool keepAlive) {
    // The request's body is no longer needed: give its memory and budget back before the
    // answer, which may wait long on a client that does not read.
    KJ_IF_MAYBE(r, req) {
      requestBodyBytes_ = r->body.size();
      r->body = WipedBytes();
    }
    server_.bodyBytes_ -= bodyReserved_;
    bodyReserved_ = 0;
    size_t answerSize = response.body.size();
    if (answerSize > 0) {
      if (server_.answerBytes_ + answerSize > limits().maxBufferedAnswerBytes) {
        // Too much is already waiting for clients that may never read it: drop this answer
        // (its memory goes now) and let the client retry.
        response = HttpResponse::text(503, "503 Service Unavailable: answer budget exhausted");
        response.header("Retry-After", kj::str(frontends::BUSY_RETRY_AFTER_SECONDS));
        response.note = kj::str("answer budget exhausted");
        keepAlive = false;
        answerSize = response.body.size();
      }
      server_.answerBytes_ += answerSize;
      answerReserved_ = answerSize;
    }
    bool close = !keepAlive || server_.draining_;
    bool head = false;
    uint minor = 1;
    KJ_IF_MAYBE(r, req) {
      head = r->method == "HEAD";
      minor = r->minorVersion;
    }
    bool noBody = response.status == 204 || response.status == 304 || response.status < 200;
    kj::String extraText = kj::strArray(response.extraHeaders, "\r\n");
    responseHead_ = kj::str(
        "HTTP/1.1 ", response.status, " ", statusReason(response.status), "\r\n",
        "Date: ", server_.dateHeader(), "\r\n", "Server: credvault-gateway\r\n",
        "X-Request-Id: ", id_.str(), "\r\n",
        response.contentType.size() > 0 ? kj::str("Content-Type: ", response.contentType, "\r\n")
                                        : kj::str(),
        extraText, extraText.size() > 0 ? "\r\n" : "",
        noBody ? kj::str() : kj::str("Content-Length: ", response.body.size(), "\r\n"),
        close ? "Connection: close\r\n" : (minor == 0 ? "Connection: keep-alive\r\n" : ""), "\r\n");
    responseBody_ = kj::mv(response.body);
    pieces_[0] = responseHead_.asBytes();
    pieces_[1] = (head || noBody) ? nullptr : responseBody_.bytes();
    uint status = response.status;
    note_ = kj::mv(response.note);
    auto write = stream_->write(kj::arrayPtr(pieces_, 2))
                     .exclusiveJoin(timer().afterDelay(limits().writeTimeout).then([]() {
                       kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "write timeout"));
                     }));
    return write.then(
        [this, req, status, close]() mutable -> kj::Promise<void> {
          finishRequest(req, status);
          if (close) return closeGracefully();
          return loop();
        },
        [this, req, status](kj::Exception&& e) mutable -> kj::Promise<void> {
          finishRequest(req, status);
          return kj::mv(e);
        });
  }

  void finishRequest(kj::Maybe<HttpRequest&> req, uint status) {
    KJ_IF_MAYBE(log, server_.log_) {
      AccessLogEntry entry;
      KJ_IF_MAYBE(r, req) {
        entry.method = r->method;
        entry.path = r->path;
        entry.requestBodyBytes = requestBodyBytes_;
      } else {
        entry.method = "-";
        entry.path = "-";
        entry.requestBodyBytes = 0;
      }
      entry.peer = peer_;
      entry.client = client_;
      entry.requestId = id_.str();
      entry.status = status;
      entry.duration = server_.monotonic_.now() - started_;
      entry.responseBodyBytes = responseBody_.size();
      entry.note = note_;
      log->request(entry);
    }
    responseBody_ = WipedBytes();
    dropLengthBody();
    releaseBudgets();
    responseHead_ = nullptr;
    request_ = nullptr;
    decoder_ = nullptr;
    body_ = nullptr;
  }

  // Half-closes, then reads and discards for a moment, so that data the client is still
  // sending does not make the kernel reset the connection before our response is read.
  kj::Promise<void> closeGracefully() {
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { stream_->shutdownWrite(); })) {
      return kj::READY_NOW;
    }
    discard_ = kj::heapArray<char>(4096);
    return discardLoop(0).exclusiveJoin(timer().afterDelay(LINGER_TIME));
  }

  kj::Promise<void> discardLoop(size_t total) {
    return stream_->tryRead(discard_.begin(), 1, discard_.size())
        .then([this, total](size_t n) -> kj::Promise<void> {
          if (n == 0 || total + n > LINGER_BYTES) return kj::READY_NOW;
          return discardLoop(total + n);
        });
  }
};

// =======================================================================================

HttpServer::HttpServer(kj::Timer& timer, const kj::Clock& calendar,
                       const kj::MonotonicClock& monotonic, Entropy& entropy, HttpHandler& handler,
                       HttpLimits limits, kj::Maybe<AccessLog&> log)
    : timer_(timer),
      calendar_(calendar),
      monotonic_(monotonic),
      ids_(entropy),
      handler_(handler),
      limits_(limits),
      log_(log),
      tasks_(*this) {
  KJ_REQUIRE(limits_.maxHeaderBytes >= 64, "header limit too small");
}

HttpServer::~HttpServer() noexcept(false) {}

void HttpServer::taskFailed(kj::Exception&& exception) {
  KJ_IF_MAYBE(log, log_) { log->error("connection task failed", exception); }
}

kj::Promise<void> HttpServer::listen(kj::ConnectionReceiver& receiver,
                                     kj::Maybe<StreamUpgrade&> upgrade) {
  return acceptCanceler_.wrap(acceptLoop(receiver, upgrade)).catch_([this](kj::Exception&& e) {
    if (!draining_) kj::throwFatalException(kj::mv(e));
  });
}

kj::Promise<void> HttpServer::acceptLoop(kj::ConnectionReceiver& receiver,
                                         kj::Maybe<StreamUpgrade&> upgrade) {
  return receiver.accept().then(
      [this, &receiver, upgrade](kj::Own<kj::AsyncIoStream> stream) mutable -> kj::Promise<void> {
        if (draining_) return kj::READY_NOW;
        auto peer = peerName(*stream);
        auto local = localName(*stream);
        serve(kj::mv(stream), peer, local, upgrade);
        return acceptLoop(receiver, upgrade);
      },
      [this, &receiver, upgrade](kj::Exception&& e) mutable -> kj::Promise<void> {
        // EMFILE and friends: report, wait a little, keep serving the connections we have.
        KJ_IF_MAYBE(log, log_) { log->error("accept failed", e); }
        return timer_.afterDelay(ACCEPT_RETRY_DELAY).then([this, &receiver, upgrade]() mutable {
          return acceptLoop(receiver, upgrade);
        });
      });
}

void HttpServer::refuseBusy(kj::Own<kj::AsyncIoStream> stream) {
  // A short 503 and close, without reading the request. Bounded in time (a short write
  // timeout) and memory (a few dozen bytes), so a flood of them costs little.
  auto busy = kj::str("HTTP/1.1 503 Service Unavailable\r\nX-Request-Id: ", ids_.next().str(),
                      "\r\nRetry-After: ", frontends::BUSY_RETRY_AFTER_SECONDS,
                      "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  auto& s = *stream;
  auto write = s.write(busy.begin(), busy.size());
  tasks_.add(kj::mv(write)
                 .exclusiveJoin(timer_.afterDelay(kj::min(limits_.writeTimeout, LINGER_TIME)))
                 .attach(kj::mv(stream), kj::mv(busy))
                 .catch_([](kj::Exception&&) {}));
}

void HttpServer::serve(kj::Own<kj::AsyncIoStream> stream, kj::StringPtr peer, kj::StringPtr local,
                       kj::Maybe<StreamUpgrade&> upgrade) {
  if (connections_ >= limits_.maxConnections) return refuseBusy(kj::mv(stream));
  // Per peer address, like nginx's limit_conn: one address cannot take every connection.
  // Trusted proxies carry many clients; a non-IP peer (tests, a Unix socket) has no address.
  auto address = addressOfPeer(peer);  // canonical: ::ffff:a.b.c.d reads as a.b.c.d
  bool counted = address.size() > 0 && !trusted_.contains(address);
  if (counted) {
    KJ_IF_MAYBE(n, perAddress_.find(address)) {
      if (*n >= limits_.maxConnectionsPerAddress) return refuseBusy(kj::mv(stream));
    }
  }
  auto connection = kj::heap<Connection>(*this, kj::mv(stream), kj::heapString(peer),
                                         kj::heapString(local), kj::mv(address), counted, upgrade);
  auto& c = *connection;
  tasks_.add(c.run().attach(kj::mv(connection)));
}

kj::Promise<void> HttpServer::drain() {
  if (!draining_) {
    draining_ = true;
    drain_.fulfiller->fulfill();
    acceptCanceler_.cancel("draining");
  }
  if (connections_ == 0) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  emptyFulfiller_ = kj::mv(paf.fulfiller);
  return paf.promise.exclusiveJoin(timer_.afterDelay(limits_.drainTimeout));
}

kj::StringPtr HttpServer::dateHeader() {
  int64_t second = (calendar_.now() - kj::UNIX_EPOCH) / kj::SECONDS;
  if (second != dateSecond_) {
    dateSecond_ = second;
    time_t t = static_cast<time_t>(second);
    struct tm tm;
    gmtime_r(&t, &tm);
    static const char* const DAYS[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* const MONTHS[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(date_, sizeof(date_), "%s, %02d %s %04d %02d:%02d:%02d GMT", DAYS[tm.tm_wday],
             tm.tm_mday, MONTHS[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  }
  return kj::StringPtr(date_);
}

}  // namespace credvault::http
