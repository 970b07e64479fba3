// Tests for frontends/http: request framing and limits (pure), and the server over an
// in-memory pipe with a manually advanced timer (timeouts without sleeping).

#include "frontends/http/parser.h"
#include "frontends/http/router.h"
#include "frontends/http/server.h"

#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/timer.h>
#include <string.h>

#include <algorithm>

namespace credvault::http {
namespace {

bool contains(kj::StringPtr haystack, kj::StringPtr needle) {
  return strstr(haystack.cStr(), needle.cStr()) != nullptr;
}

// ---- parser -----------------------------------------------------------------------------

kj::OneOf<HttpRequest, HttpError> parse(kj::StringPtr text, HttpLimits limits = {}) {
  size_t scanned = 0;
  size_t end = findHeadEnd(text.asArray(), scanned);
  if (end == 0) return HttpError{0, "incomplete"};
  return parseRequestHead(text.asArray().slice(0, end), limits);
}

uint errorStatus(const kj::OneOf<HttpRequest, HttpError>& r) {
  KJ_IF_MAYBE(e, r.tryGet<HttpError>()) { return e->status; }
  return 0;
}

TEST(HttpParser, ParsesRequestLineHeadersPathAndQuery) {
  auto r = parse(
      "POST /Remote/Services86/User.svc?wsdl HTTP/1.1\r\nHost: x\r\n"
      "Content-Type:  text/xml; charset=utf-8 \r\nSOAPAction: \"a\"\r\n\r\n");
  ASSERT_EQ(errorStatus(r), 0u);
  auto& req = r.get<HttpRequest>();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/Remote/Services86/User.svc");
  EXPECT_EQ(KJ_ASSERT_NONNULL(req.query), "wsdl");
  EXPECT_EQ(KJ_ASSERT_NONNULL(req.header("content-type")), "text/xml; charset=utf-8");
  EXPECT_EQ(req.mediaType(), "text/xml");
  EXPECT_EQ(KJ_ASSERT_NONNULL(req.contentTypeParameter("CHARSET")), "utf-8");
  EXPECT_EQ(req.minorVersion, 1u);
}

TEST(HttpParser, ReadsContentTypeActionParameter) {
  auto r = parse(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/soap+xml; "
      "charset=utf-8; action=\"http://x/User/Op\"\r\n\r\n");
  auto& req = r.get<HttpRequest>();
  EXPECT_EQ(req.mediaType(), "application/soap+xml");
  EXPECT_EQ(KJ_ASSERT_NONNULL(req.contentTypeParameter("action")), "http://x/User/Op");
  EXPECT_TRUE(req.contentTypeParameter("boundary") == nullptr);
}

TEST(HttpParser, ReducesAbsoluteFormToPath) {
  auto r = parse("GET http://example.org:8080/a/b?c HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.get<HttpRequest>().path, "/a/b");
  auto r2 = parse("GET http://example.org HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r2.get<HttpRequest>().path, "/");
}

TEST(HttpParser, RejectsMalformedHeads) {
  EXPECT_EQ(errorStatus(parse("GET / HTTP/1.1\nHost: x\n\n")), 400u);  // bare LF
  EXPECT_EQ(errorStatus(parse("GET / HTTP/1.1\r\nHost: x\r\n  folded\r\n\r\n")), 400u);
  EXPECT_EQ(errorStatus(parse("GET / HTTP/1.1\r\nHost : x\r\n\r\n")), 400u);    // space before :
  EXPECT_EQ(errorStatus(parse("GET / HTTP/1.1\r\nHost: x\1y\r\n\r\n")), 400u);  // control char
  EXPECT_EQ(errorStatus(parse("GET  / HTTP/1.1\r\nHost: x\r\n\r\n")), 400u);
  EXPECT_EQ(errorStatus(parse("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n")), 400u);
  EXPECT_EQ(errorStatus(parse("GET / HTTP/2.0\r\nHost: x\r\n\r\n")), 505u);
  EXPECT_EQ(errorStatus(parse("GET / FTP/1.1\r\nHost: x\r\n\r\n")), 400u);
  EXPECT_EQ(errorStatus(parse("GET nopath HTTP/1.1\r\nHost: x\r\n\r\n")), 400u);
  EXPECT_EQ(errorStatus(parse("G(T / HTTP/1.1\r\nHost: x\r\n\r\n")), 400u);
}

TEST(HttpParser, RequiresExactlyOneHostInHttp11) {
  EXPECT_EQ(errorStatus(parse("GET / HTTP/1.1\r\n\r\n")), 400u);
  EXPECT_EQ(errorStatus(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")), 400u);
  EXPECT_EQ(errorStatus(parse("GET / HTTP/1.0\r\n\r\n")), 0u);
}

TEST(HttpParser, HeaderCountAtLimitAndOnePast) {
  HttpLimits limits;
  limits.maxHeaderCount = 5;
  kj::String four = kj::str("GET / HTTP/1.1\r\nHost: x\r\n", kj::repeat('\0', 0),
                            "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
  EXPECT_EQ(errorStatus(parse(four, limits)), 0u);
  kj::String five =
      kj::str("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n");
  EXPECT_EQ(errorStatus(parse(five, limits)), 431u);
}

TEST(HttpParser, FindsHeadEndIncrementally) {
  kj::StringPtr text = "GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY";
  size_t scanned = 0;
  for (size_t n = 0; n < 27; n++) {
    EXPECT_EQ(findHeadEnd(text.asArray().slice(0, n), scanned), 0u) << n;
  }
  EXPECT_EQ(findHeadEnd(text.asArray().slice(0, 27), scanned), 27u);
  EXPECT_EQ(skipLeadingEmptyLines(kj::StringPtr("\r\n\r\nGET").asArray()), 4u);
}

kj::OneOf<BodyFraming, HttpError> framing(kj::StringPtr headers, HttpLimits limits = {},
                                          kj::StringPtr version = "HTTP/1.1") {
  auto r = parse(kj::str("POST / ", version, "\r\nHost: x\r\n", headers, "\r\n"), limits);
  return bodyFraming(r.get<HttpRequest>(), limits);
}

uint framingStatus(const kj::OneOf<BodyFraming, HttpError>& f) {
  KJ_IF_MAYBE(e, f.tryGet<HttpError>()) { return e->status; }
  return 0;
}

TEST(HttpFraming, ContentLengthAndChunked) {
  auto f = framing("Content-Length: 12\r\n");
  EXPECT_EQ(f.get<BodyFraming>().kind, BodyFraming::LENGTH);
  EXPECT_EQ(f.get<BodyFraming>().length, 12u);
  EXPECT_EQ(framing("Transfer-Encoding: chunked\r\n").get<BodyFraming>().kind,
            BodyFraming::CHUNKED);
  EXPECT_EQ(framing("").get<BodyFraming>().kind, BodyFraming::NONE);
  EXPECT_EQ(framing("Content-Length: 5, 5\r\n").get<BodyFraming>().length, 5u);
}

TEST(HttpFraming, RejectsSmugglingShapes) {
  EXPECT_EQ(framingStatus(framing("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")), 400u);
  EXPECT_EQ(framingStatus(framing("Content-Length: 5\r\nContent-Length: 6\r\n")), 400u);
  EXPECT_EQ(framingStatus(framing("Content-Length: 5, 6\r\n")), 400u);
  EXPECT_EQ(framingStatus(framing("Content-Length: -1\r\n")), 400u);
  EXPECT_EQ(framingStatus(framing("Content-Length: 0x10\r\n")), 400u);
  EXPECT_EQ(framingStatus(framing("Content-Length: 99999999999999999999\r\n")), 400u);
  EXPECT_EQ(framingStatus(framing("Transfer-Encoding: gzip, chunked\r\n")), 501u);
  EXPECT_EQ(framingStatus(framing("Transfer-Encoding: chunked, gzip\r\n")), 501u);
  EXPECT_EQ(framingStatus(framing("Transfer-Encoding: chunked\r\n", {}, "HTTP/1.0")), 400u);
  // Found by tests/fuzz/http-head: an unreadable Content-Length beside chunked was ignored.
  EXPECT_EQ(framingStatus(framing("Content-Length: \xed 5\r\nTransfer-Encoding: chunked\r\n")),
            400u);
  EXPECT_EQ(framingStatus(framing("Transfer-Encoding: chunked\r\nContent-Length: abc\r\n")), 400u);
  EXPECT_EQ(framingStatus(framing("Content-Length: +5\r\nTransfer-Encoding: chunked\r\n")), 400u);
  EXPECT_EQ(framingStatus(framing("Transfer-Encoding: chunked\r\nContent-Length:\r\n")), 400u);
}

TEST(HttpFraming, BodyLimitAtLimitAndOnePast) {
  HttpLimits limits;
  limits.maxBodyBytes = 100;
  EXPECT_EQ(framingStatus(framing("Content-Length: 100\r\n", limits)), 0u);
  EXPECT_EQ(framingStatus(framing("Content-Length: 101\r\n", limits)), 413u);
}

TEST(HttpFraming, ExpectAndKeepAlive) {
  EXPECT_TRUE(
      framing("Content-Length: 3\r\nExpect: 100-Continue\r\n").get<BodyFraming>().expectContinue);
  EXPECT_EQ(framingStatus(framing("Content-Length: 3\r\nExpect: something\r\n")), 417u);
  EXPECT_TRUE(framing("").get<BodyFraming>().keepAlive);
  EXPECT_FALSE(framing("Connection: close\r\n").get<BodyFraming>().keepAlive);
  EXPECT_FALSE(framing("", {}, "HTTP/1.0").get<BodyFraming>().keepAlive);
  EXPECT_TRUE(framing("Connection: Keep-Alive\r\n", {}, "HTTP/1.0").get<BodyFraming>().keepAlive);
  EXPECT_FALSE(framing("Connection: keep-alive, close\r\n").get<BodyFraming>().keepAlive);
}

kj::String decodeChunked(kj::StringPtr input, size_t maxBody, uint* status, bool byteByByte) {
  ChunkedDecoder decoder(maxBody, 1024);
  ByteBuffer out;
  size_t pos = 0;
  *status = 0;
  while (pos < input.size()) {
    size_t n = byteByByte ? 1 : input.size() - pos;
    auto r = decoder.feed(input.asArray().slice(pos, pos + n), out);
    KJ_IF_MAYBE(e, r.error) {
      *status = e->status;
      return kj::str();
    }
    pos += r.consumed;
    if (r.done) {
      auto bytes = out.release();
      return kj::heapString(bytes.chars());
    }
  }
  *status = 1;  // incomplete
  return kj::str();
}

TEST(HttpChunked, DecodesWholeAndByteByByte) {
  kj::StringPtr body =
      "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX: y\r\n\r\n";
  for (bool slow : {false, true}) {
    uint status;
    EXPECT_EQ(decodeChunked(body, 1000, &status, slow), "Wikipedia in\r\n\r\nchunks.");
    EXPECT_EQ(status, 0u);
  }
}

TEST(HttpChunked, LimitAtAndOnePast) {
  uint status;
  EXPECT_EQ(decodeChunked("5\r\nabcde\r\n0\r\n\r\n", 5, &status, false), "abcde");
  EXPECT_EQ(status, 0u);
  decodeChunked("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 5, &status, false);
  EXPECT_EQ(status, 413u);
  decodeChunked("ffffffffffffffffff\r\n", 5, &status, false);
  EXPECT_EQ(status, 413u);
}

TEST(HttpChunked, RejectsMalformed) {
  uint status;
  decodeChunked("x\r\n", 100, &status, false);
  EXPECT_EQ(status, 400u);
  decodeChunked("3\r\nabcX\r\n", 100, &status, false);
  EXPECT_EQ(status, 400u);
  decodeChunked("3\nabc\r\n", 100, &status, false);
  EXPECT_EQ(status, 400u);
  decodeChunked(kj::str("1;", kj::repeat('a', 300), "\r\n"), 100, &status, false);
  EXPECT_EQ(status, 400u);
}

// ---- server -----------------------------------------------------------------------------

class FixedClock final : public kj::Clock {
 public:
  kj::Date now() const override { return kj::UNIX_EPOCH + 784111777 * kj::SECONDS; }
};

// Predictable "random" bytes: 0, 1, 2, ... across calls.
class CountingEntropy final : public Entropy {
 public:
  void fill(kj::ArrayPtr<kj::byte> buffer) override {
    ++fills;
    for (auto& b : buffer) b = static_cast<kj::byte>(next++);
  }
  uint fills = 0;
  uint next = 0;
};

class EchoHandler final : public HttpHandler {
 public:
  kj::Promise<HttpResponse> handle(HttpRequest& request) override {
    ++calls;
    seenIds.add(kj::heapString(request.id.str()));
    if (request.path == "/slow") {
      auto paf = kj::newPromiseAndFulfiller<HttpResponse>();
      slow = kj::mv(paf.fulfiller);
      return kj::mv(paf.promise);
    }
    if (request.path == "/throw") KJ_FAIL_REQUIRE("handler failure");
    if (request.path == "/big") {
      return HttpResponse::make(200, "text/plain", kj::str(kj::repeat('B', BIG_ANSWER)));
    }
    auto text =
        kj::str(request.method, " ", request.path, " [", kj::heapString(request.body.chars()), "]");
    return HttpResponse::make(200, "text/plain", text);
  }
  kj::Promise<kj::Maybe<HttpResponse>> beforeBody(HttpRequest& request,
                                                  kj::Maybe<uint64_t> length) override {
    ++beforeBodyCalls;
    if (request.path == "/refuse") return kj::Maybe<HttpResponse>(HttpResponse::text(401));
    return kj::Maybe<HttpResponse>(nullptr);
  }
  size_t maxBodyBytes(const HttpRequest& request) override {
    return request.path == "/small" ? 4 : kj::maxValue;
  }
  static constexpr size_t BIG_ANSWER = 100;
  int calls = 0;
  int beforeBodyCalls = 0;
  kj::Vector<kj::String> seenIds;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<HttpResponse>>> slow;
};

class RecordingLog final : public AccessLog {
 public:
  void request(const AccessLogEntry& e) override {
    lines.add(kj::str(e.method, " ", e.path, " ", e.status));
    ids.add(kj::heapString(e.requestId));
  }
  void error(kj::StringPtr what, const kj::Exception& e) override { errors.add(kj::str(what)); }
  kj::Vector<kj::String> lines;
  kj::Vector<kj::String> ids;
  kj::Vector<kj::String> errors;
};

// The X-Request-Id of a response head, "" when absent.
kj::String requestIdOf(kj::StringPtr head) {
  const char* p = strstr(head.cStr(), "\r\nX-Request-Id: ");
  if (p == nullptr) return kj::str();
  p += strlen("\r\nX-Request-Id: ");
  const char* end = strstr(p, "\r\n");
  return kj::heapString(p, end - p);
}

struct ParsedResponse {
  uint status = 0;
  kj::String head;
  kj::String body;
  bool closed = false;
};

class ServerTest : public testing::Test {
 protected:
  ServerTest() : ws(loop), timer(kj::origin<kj::TimePoint>()) {}
  ~ServerTest() noexcept override {}

  void start(HttpLimits l = {}) {
    limits = l;
    server = kj::heap<HttpServer>(timer, clock, kj::systemPreciseMonotonicClock(), entropy, handler,
                                  limits, log);
  }

  kj::Own<kj::AsyncIoStream> connect(kj::StringPtr peer = "test") {
    auto pipe = kj::newTwoWayPipe();
    server->serve(kj::mv(pipe.ends[1]), peer);
    return kj::mv(pipe.ends[0]);
  }

  void send(kj::AsyncIoStream& s, kj::StringPtr text) {
    s.write(text.begin(), text.size()).wait(ws);
  }

  // Reads one response (head + Content-Length body). `pending` keeps bytes read past it.
  ParsedResponse receive(kj::AsyncIoStream& s) {
    ParsedResponse r;
    for (;;) {
      auto text = kj::heapString(pending.asPtr());
      auto headEnd = text.findFirst('\n');
      const char* end = strstr(text.cStr(), "\r\n\r\n");
      if (end != nullptr) {
        size_t headLen = end - text.cStr() + 4;
        kj::String head = kj::heapString(text.cStr(), headLen);
        size_t bodyLen = 0;
        const char* cl = strstr(head.cStr(), "Content-Length: ");
        if (cl != nullptr) bodyLen = strtoul(cl + 16, nullptr, 10);
        if (text.size() >= headLen + bodyLen) {
          r.status = strtoul(head.cStr() + 9, nullptr, 10);
          r.body = kj::heapString(text.cStr() + headLen, bodyLen);
          r.head = kj::mv(head);
          pending = kj::heapString(text.slice(headLen + bodyLen));
          return r;
        }
      }
      (void)headEnd;
      char buf[4096];
      auto promise = s.tryRead(buf, 1, sizeof(buf));
      if (!promise.poll(ws)) {
        ADD_FAILURE() << "no response; have: " << pending.cStr();
        return r;
      }
      size_t n = promise.wait(ws);
      if (n == 0) {
        r.closed = true;
        return r;
      }
      pending = kj::str(pending, kj::heapString(buf, n));
    }
  }

  bool isClosed(kj::AsyncIoStream& s) {
    char buf[64];
    auto promise = s.tryRead(buf, 1, sizeof(buf));
    if (!promise.poll(ws)) return false;
    return promise.wait(ws) == 0;
  }

  void advance(kj::Duration d) {
    timer.advanceTo(timer.now() + d);
    loop.run();
  }

  kj::EventLoop loop;
  kj::WaitScope ws;
  kj::TimerImpl timer;
  FixedClock clock;
  CountingEntropy entropy;
  EchoHandler handler;
  RecordingLog log;
  HttpLimits limits;
  kj::Own<HttpServer> server;
  kj::String pending = kj::str();
};

TEST_F(ServerTest, ServesKeepAliveRequestsInOrder) {
  start();
  auto c = connect();
  send(*c,
       "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\n"
       "Content-Length: 3\r\n\r\nxyz");
  auto r1 = receive(*c);
  EXPECT_EQ(r1.status, 200u);
  EXPECT_EQ(r1.body, "GET /a []");
  EXPECT_TRUE(contains(r1.head, "Date: Sun, 06 Nov 1994 08:49:37 GMT"));
  auto r2 = receive(*c);
  EXPECT_EQ(r2.body, "POST /b [xyz]");
  EXPECT_FALSE(contains(r2.head, "Connection: close"));
  send(*c, "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto r3 = receive(*c);
  EXPECT_TRUE(contains(r3.head, "Connection: close"));
  EXPECT_TRUE(isClosed(*c));
  ASSERT_EQ(log.lines.size(), 3u);
  EXPECT_EQ(log.lines[1], "POST /b 200");
}

TEST_F(ServerTest, AnswersExpect100ContinueBeforeReadingBody) {
  start();
  auto c = connect();
  send(*c, "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  char buf[64];
  auto read = c->tryRead(buf, 25, sizeof(buf));
  ASSERT_TRUE(read.poll(ws));
  size_t n = read.wait(ws);
  EXPECT_EQ(kj::heapString(buf, n), "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(handler.calls, 0);
  send(*c, "hello");
  auto r = receive(*c);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "POST /e [hello]");
}

TEST_F(ServerTest, LengthBodyArrivingInPiecesLargerThanTheBuffer) {
  start();
  auto c = connect();
  kj::String body = kj::str(kj::repeat('b', 10000));
  send(*c, kj::str("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n",
                   body.slice(0, 3000)));
  loop.run();
  send(*c, body.slice(3000));
  auto r = receive(*c);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, kj::str("POST /p [", body, "]"));
}

TEST_F(ServerTest, ChunkedBodyWithExpect) {
  start();
  auto c = connect();
  send(*c,
       "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
       "Expect: 100-continue\r\n\r\n");
  auto interim = receive(*c);
  EXPECT_EQ(interim.status, 100u);
  send(*c, "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  auto r = receive(*c);
  EXPECT_EQ(r.body, "POST /c [abcde]");
}

TEST_F(ServerTest, BodyAtLimitServedOnePastIs413AndCloses) {
  HttpLimits l;
  l.maxBodyBytes = 10;
  start(l);
  auto c = connect();
  send(*c, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789");
  EXPECT_EQ(receive(*c).status, 200u);
  send(*c, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n");
  auto r = receive(*c);
  EXPECT_EQ(r.status, 413u);
  EXPECT_TRUE(contains(r.head, "Connection: close"));
  EXPECT_EQ(handler.calls, 1);

  auto c2 = connect();
  send(*c2,
       "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n");
  EXPECT_EQ(receive(*c2).status, 413u);
}

TEST_F(ServerTest, HeadAtLimitServedOnePastIs431) {
  HttpLimits l;
  l.maxHeaderBytes = 100;
  start(l);
  // Exactly 100 bytes of head.
  kj::String fill = kj::str(kj::repeat('a', 100 - 32));
  kj::String head = kj::str("GET / HTTP/1.1\r\nHost: x\r\nX: ", fill, "\r\n\r\n");
  ASSERT_EQ(head.size(), 100u);
  auto c = connect();
  send(*c, head);
  EXPECT_EQ(receive(*c).status, 200u);
  auto c2 = connect();
  // In-memory pipes do not buffer: keep the write pending while the answer is read.
  kj::String tooLong = kj::str("GET / HTTP/1.1\r\nHost: x\r\nX: ", fill, "a\r\n\r\n");
  auto write = c2->write(tooLong.begin(), tooLong.size());
  EXPECT_EQ(receive(*c2).status, 431u);
  write.wait(ws);
}

TEST_F(ServerTest, SlowHeadGets408) {
  start();
  auto c = connect();
  send(*c, "GET / HTTP/1.1\r\nHo");
  advance(limits.headerTimeout - 1 * kj::SECONDS);
  send(*c, "st: x\r\n");  // trickling does not extend the deadline
  advance(2 * kj::SECONDS);
  auto r = receive(*c);
  EXPECT_EQ(r.status, 408u);
  EXPECT_EQ(handler.calls, 0);
}

TEST_F(ServerTest, SlowBodyGets408) {
  start();
  auto c = connect();
  send(*c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
  loop.run();
  advance(limits.bodyTimeout + 1 * kj::SECONDS);
  EXPECT_EQ(receive(*c).status, 408u);
}

TEST_F(ServerTest, IdleKeepAliveConnectionIsClosed) {
  start();
  auto c = connect();
  send(*c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(receive(*c).status, 200u);
  advance(limits.idleTimeout - 1 * kj::SECONDS);
  EXPECT_FALSE(isClosed(*c));
  EXPECT_EQ(server->connectionCount(), 1u);
  advance(2 * kj::SECONDS);
  EXPECT_TRUE(isClosed(*c));
  advance(3 * kj::SECONDS);  // linger ends
  EXPECT_EQ(server->connectionCount(), 0u);
}

TEST_F(ServerTest, MalformedRequestGets400AndHandlerExceptionGets500) {
  start();
  auto c = connect();
  send(*c, "GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n");
  EXPECT_EQ(receive(*c).status, 400u);
  auto c2 = connect();
  send(*c2, "GET /throw HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = receive(*c2);
  EXPECT_EQ(r.status, 500u);
  EXPECT_FALSE(contains(r.body, "handler failure"));
  ASSERT_EQ(log.errors.size(), 1u);
}

TEST_F(ServerTest, HeadRequestHasLengthButNoBody) {
  start();
  auto c = connect();
  send(*c, "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n");
  char buf[1024];
  auto read = c->tryRead(buf, 1, sizeof(buf));
  ASSERT_TRUE(read.poll(ws));
  kj::String got = kj::heapString(buf, read.wait(ws));
  EXPECT_TRUE(contains(got, "Content-Length: 10\r\n"));  // "HEAD /h []"
  EXPECT_FALSE(contains(got, "HEAD /h []"));
}

TEST_F(ServerTest, DrainClosesIdleAndFinishesInFlight) {
  start();
  auto idle = connect();
  send(*idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(receive(*idle).status, 200u);
  auto busy = connect();
  send(*busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  loop.run();
  ASSERT_TRUE(handler.slow != nullptr);

  auto drained = server->drain();
  EXPECT_FALSE(drained.poll(ws));
  EXPECT_TRUE(isClosed(*idle));
  KJ_ASSERT_NONNULL(handler.slow)->fulfill(HttpResponse::text(200, "late"));
  pending = kj::str();
  auto r = receive(*busy);
  EXPECT_EQ(r.status, 200u);
  EXPECT_TRUE(contains(r.head, "Connection: close"));
  EXPECT_TRUE(isClosed(*busy));
  busy = nullptr;
  idle = nullptr;
  EXPECT_TRUE(drained.poll(ws));
  drained.wait(ws);
  EXPECT_EQ(server->connectionCount(), 0u);
}

TEST_F(ServerTest, ConnectionsPastTheCapGet503) {
  HttpLimits l;
  l.maxConnections = 2;
  start(l);
  auto a = connect();
  auto b = connect();
  auto c = connect();
  auto r = receive(*c);
  EXPECT_EQ(r.status, 503u);
  send(*a, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(receive(*a).status, 200u);
}

TEST_F(ServerTest, EveryAnswerCarriesItsOwnRequestIdAlsoInTheLogAndForTheHandler) {
  HttpLimits l;
  l.maxConnections = 2;
  start(l);
  auto c = connect();
  send(*c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
  auto a = receive(*c);
  auto b = receive(*c);
  auto bad = connect();
  send(*bad, "GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n");
  auto r400 = receive(*bad);
  EXPECT_EQ(r400.status, 400u);
  auto busy = connect();  // the third connection: over the cap
  auto r503 = receive(*busy);
  EXPECT_EQ(r503.status, 503u);

  // CountingEntropy's bytes 0..7, 8..15, ...: each id takes the next eight.
  EXPECT_EQ(requestIdOf(a.head), "0001020304050607");
  EXPECT_EQ(requestIdOf(b.head), "08090a0b0c0d0e0f");
  EXPECT_EQ(requestIdOf(r400.head), "1011121314151617");
  EXPECT_EQ(requestIdOf(r503.head), "18191a1b1c1d1e1f");
  ASSERT_EQ(handler.seenIds.size(), 2u);
  EXPECT_EQ(handler.seenIds[0], requestIdOf(a.head));
  EXPECT_EQ(handler.seenIds[1], requestIdOf(b.head));
  ASSERT_EQ(log.ids.size(), 3u);  // a 503 over the cap is not logged: no request was read
  EXPECT_EQ(log.ids[0], requestIdOf(a.head));
  EXPECT_EQ(log.ids[2], requestIdOf(r400.head));
}

TEST_F(ServerTest, AClientsOwnRequestIdIsNotUsed) {
  start();
  auto c = connect();
  send(*c, "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: chosen-by-client\r\n\r\n");
  auto r = receive(*c);
  EXPECT_EQ(requestIdOf(r.head), "0001020304050607");
  EXPECT_FALSE(contains(r.head, "chosen-by-client"));
  EXPECT_EQ(handler.seenIds[0], "0001020304050607");
}

TEST(RequestIds, AreSixteenHexDigitsDrawing256AtATime) {
  CountingEntropy entropy;
  RequestIds ids(entropy);
  EXPECT_EQ(entropy.fills, 0u);
  auto first = ids.next();
  EXPECT_EQ(first.str(), "0001020304050607");
  EXPECT_EQ(first.str().size(), REQUEST_ID_CHARS);
  EXPECT_EQ(entropy.fills, 1u);
  for (int i = 1; i < 256; i++) ids.next();
  EXPECT_EQ(entropy.fills, 1u);
  auto refilled = ids.next();
  EXPECT_EQ(entropy.fills, 2u);
  // CountingEntropy wraps at 256 bytes: the second pool starts at 00 again.
  EXPECT_EQ(refilled.str(), "0001020304050607");
  EXPECT_EQ(RequestId().str(), "");
}

TEST(RequestIds, SystemEntropyGivesDistinctIds) {
  SystemEntropy entropy;
  RequestIds ids(entropy);
  kj::Vector<kj::String> seen;
  for (int i = 0; i < 1000; i++) {
    auto id = ids.next();
    for (char ch : id.str()) {
      ASSERT_TRUE((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) << id.text;
    }
    seen.add(kj::heapString(id.str()));
  }
  std::sort(seen.begin(), seen.end(), [](const kj::String& a, const kj::String& b) {
    return strcmp(a.cStr(), b.cStr()) < 0;
  });
  for (size_t i = 1; i < seen.size(); i++) EXPECT_NE(seen[i - 1], seen[i]);
}

// ---- router -----------------------------------------------------------------------------

kj::Promise<HttpResponse> named(kj::StringPtr name, kj::StringPtr rest) {
  return HttpResponse::make(200, "text/plain", kj::str(name, ":", rest));
}

HttpRequest request(kj::StringPtr method, kj::StringPtr target) {
  auto r = parse(kj::str(method, " ", target, " HTTP/1.1\r\nHost: x\r\n\r\n"));
  return kj::mv(r.get<HttpRequest>());
}

TEST(Router, MatchesUnderPrefixCaseInsensitively) {
  kj::EventLoop loop;
  kj::WaitScope ws(loop);
  Router router("Cust12345/");
  EXPECT_EQ(router.prefix(), "/Cust12345");
  kj::StringPtr post[] = {"POST"};
  kj::StringPtr getPost[] = {"GET", "POST"};
  router.under("/Remote/", getPost,
               [](HttpRequest&, kj::StringPtr rest) { return named("soap", rest); });
  router.under("/api/v1/", post,
               [](HttpRequest&, kj::StringPtr rest) { return named("api", rest); });
  router.under("/api/v1/Agents/", post,
               [](HttpRequest&, kj::StringPtr rest) { return named("agents", rest); });
  router.exact("/api/v1/openapi", nullptr,
               [](HttpRequest&, kj::StringPtr rest) { return named("openapi", rest); });

  auto run = [&](kj::StringPtr method, kj::StringPtr target) {
    auto req = request(method, target);
    auto resp = router.handle(req).wait(ws);
    return kj::str(resp.status, " ", kj::heapString(resp.body.chars()));
  };
  EXPECT_EQ(run("POST", "/cust12345/remote/Services86/User.svc"), "200 soap:Services86/User.svc");
  EXPECT_EQ(run("GET", "/Cust12345/Remote/Services86/User.svc?wsdl"),
            "200 soap:Services86/User.svc");
  EXPECT_EQ(run("POST", "/Cust12345/api/v1/Agents/User/Get"), "200 agents:User/Get");
  EXPECT_EQ(run("POST", "/Cust12345/api/v1/Other"), "200 api:Other");
  EXPECT_EQ(run("DELETE", "/Cust12345/api/v1/openapi"), "200 openapi:");
  EXPECT_EQ(run("POST", "/Remote/Services86/User.svc"), "404 404 Not Found\n");
  EXPECT_EQ(run("POST", "/Cust123456/Remote/x"), "404 404 Not Found\n");
  EXPECT_EQ(run("POST", "/Cust12345/nothing"), "404 404 Not Found\n");

  auto req = request("GET", "/Cust12345/api/v1/Agents/User/Get");
  auto resp = router.handle(req).wait(ws);
  EXPECT_EQ(resp.status, 405u);
  ASSERT_EQ(resp.extraHeaders.size(), 1u);
  EXPECT_EQ(resp.extraHeaders[0], "Allow: POST");
}

TEST(Router, WithoutPrefixServesEverything) {
  Router router;
  EXPECT_EQ(KJ_ASSERT_NONNULL(router.localPath("/a")), "/a");
  Router prefixed("/P");
  EXPECT_EQ(KJ_ASSERT_NONNULL(prefixed.localPath("/P")), "/");
  EXPECT_EQ(KJ_ASSERT_NONNULL(prefixed.localPath("/p/x")), "/x");
  EXPECT_TRUE(prefixed.localPath("/Px") == nullptr);
}

}  // namespace
}  // namespace credvault::http

namespace credvault::http {
namespace {

TEST_F(ServerTest, ConnectionsPerAddressAtLimitAndOnePast) {
  HttpLimits l;
  l.maxConnectionsPerAddress = 2;
  start(l);
  auto a = connect("192.0.2.1:1000");
  auto b = connect("192.0.2.1:1001");
  auto refused = connect("192.0.2.1:1002");
  auto r = receive(*refused);
  EXPECT_EQ(r.status, 503u);
  EXPECT_TRUE(contains(r.head, "Retry-After: 5"));
  pending = kj::str();
  EXPECT_EQ(server->connectionCount(), 2u);
  // Another address is served.
  auto other = connect("[2001:db8::1]:1000");
  send(*other, "GET /o HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(receive(*other).status, 200u);
  // A closed connection gives its place back.
  send(*a, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(receive(*a).status, 200u);
  EXPECT_TRUE(isClosed(*a));
  a = nullptr;
  loop.run();
  pending = kj::str();
  auto again = connect("192.0.2.1:1003");
  send(*again, "GET /g HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(receive(*again).status, 200u);
}

TEST_F(ServerTest, TrustedProxiesAreExemptFromThePerAddressCapAndForwardTheClient) {
  HttpLimits l;
  l.maxConnectionsPerAddress = 1;
  start(l);
  auto list = parseCidrList("192.0.2.1");
  server->setTrustedProxies(TrustedProxies(kj::mv(list.get<kj::Vector<Cidr>>())));
  auto a = connect("192.0.2.1:1000");
  auto b = connect("192.0.2.1:1001");
  send(*b, "GET /b HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n");
  EXPECT_EQ(receive(*b).status, 200u);
}

TEST_F(ServerTest, BodyBudgetAtLimitAndOnePast) {
  HttpLimits l;
  l.maxBufferedBodyBytes = 20;
  start(l);
  auto a = connect();
  send(*a, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
  auto b = connect();
  send(*b, "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
  loop.run();
  EXPECT_EQ(server->bufferedBodyBytes(), 20u);
  auto c = connect();
  send(*c, "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx");
  auto r = receive(*c);
  EXPECT_EQ(r.status, 503u);
  EXPECT_TRUE(contains(r.head, "Retry-After: 5"));
  pending = kj::str();
  send(*a, "56789");
  EXPECT_EQ(receive(*a).status, 200u);
  EXPECT_EQ(server->bufferedBodyBytes(), 10u);
  pending = kj::str();
  auto d = connect();
  send(*d, "POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789");
  EXPECT_EQ(receive(*d).status, 200u);
}

TEST_F(ServerTest, ARefusedBodyIsNeverReadAndARouteBoundIsAppliedBeforeIt) {
  start();
  auto c = connect();
  send(*c,
       "POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
       "Expect: 100-continue\r\n\r\n");
  auto r = receive(*c);
  EXPECT_EQ(r.status, 401u);  // no 100 Continue first
  EXPECT_TRUE(contains(r.head, "Connection: close"));
  EXPECT_EQ(handler.calls, 0);
  EXPECT_EQ(server->bufferedBodyBytes(), 0u);
  pending = kj::str();
  auto s = connect();
  send(*s, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd");
  EXPECT_EQ(receive(*s).status, 200u);
  send(*s, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(receive(*s).status, 413u);
  // Requests without a body are not asked about.
  pending = kj::str();
  int before = handler.beforeBodyCalls;
  auto g = connect();
  send(*g, "GET /refuse HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(receive(*g).status, 200u);
  EXPECT_EQ(handler.beforeBodyCalls, before);
}

TEST_F(ServerTest, PipelinedRequestsWaitWhileAnAnswerIsUnread) {
  start();
  auto c = connect();
  send(*c,
       "GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /big HTTP/1.1\r\nHost: x\r\n\r\n"
       "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  loop.run();
  EXPECT_EQ(handler.calls, 1);  // the others are not read while the first answer is pending
  EXPECT_EQ(server->bufferedAnswerBytes(), EchoHandler::BIG_ANSWER);
  EXPECT_EQ(receive(*c).status, 200u);
  EXPECT_EQ(receive(*c).status, 200u);
  EXPECT_EQ(receive(*c).status, 200u);
  EXPECT_EQ(handler.calls, 3);
}

TEST_F(ServerTest, AnswerBudgetAtLimitAndOnePast) {
  HttpLimits l;
  l.maxBufferedAnswerBytes = 2 * EchoHandler::BIG_ANSWER;
  start(l);
  auto a = connect();
  send(*a, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  auto b = connect();
  send(*b, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  loop.run();
  EXPECT_EQ(server->bufferedAnswerBytes(), 2 * EchoHandler::BIG_ANSWER);  // at the limit
  auto c = connect();
  send(*c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = receive(*c);
  EXPECT_EQ(r.status, 503u);
  EXPECT_TRUE(contains(r.head, "Retry-After: 5"));
  pending = kj::str();
  EXPECT_EQ(receive(*a).status, 200u);  // taken: its share comes back
  pending = kj::str();
  auto d = connect();
  send(*d, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(receive(*d).status, 200u);
}

TEST_F(ServerTest, WriteTimeoutClosesAConnectionWhoseAnswerIsNotRead) {
  start();
  auto c = connect();
  send(*c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  loop.run();
  EXPECT_EQ(server->connectionCount(), 1u);
  advance(limits.writeTimeout - 1 * kj::SECONDS);
  EXPECT_EQ(server->connectionCount(), 1u);
  advance(2 * kj::SECONDS);
  EXPECT_EQ(server->connectionCount(), 0u);
  EXPECT_EQ(server->bufferedAnswerBytes(), 0u);
}

}  // namespace
}  // namespace credvault::http
