// libFuzzer target: frontends/http/parser.h, the gateway's first contact with client bytes.
//
// The input is what a client sends on a connection. It goes through the same steps as in
// http::Server — skipLeadingEmptyLines, findHeadEnd, parseRequestHead, bodyFraming — and
// whatever follows the head goes through ChunkedDecoder. Both scans are done three ways: on
// the whole input, in pieces split where the input says (fuzz-util.h), and byte by byte; the
// outcome must not depend on how the bytes arrived.

#include "frontends/http/parser.h"
#include "tests/fuzz/fuzz-util.h"

#include <kj/debug.h>
#include <string.h>

namespace credvault::http {
namespace {

using fuzz::pointsInto;

struct HeadScan {
  size_t start;  // after leading empty lines
  size_t end;    // one past the head's last byte; 0 when no complete head was found
};

// As the server does it: skip empty lines, then look for the head's end, one piece at a
// time, carrying `scanned` between calls. The server consumes skipped lines at once; its
// buffer holds at most the head limit beyond them.
HeadScan scanHead(kj::ArrayPtr<const char> input, kj::ArrayPtr<const size_t> points) {
  const size_t limit = HttpLimits().maxHeaderBytes;
  size_t start = 0, scanned = 0;
  for (size_t received : points) {
    size_t skip = skipLeadingEmptyLines(input.slice(start, received));
    if (skip > 0) {
      start += skip;
      scanned = 0;  // the server moves the rest to the front of its buffer
    }
    auto buffer = input.slice(start, kj::min(received, start + limit));
    if (buffer.size() == 0) continue;
    size_t end = findHeadEnd(buffer, scanned);
    KJ_ASSERT(end <= buffer.size());
    KJ_ASSERT(scanned <= buffer.size());
    if (end > 0) {
      KJ_ASSERT(buffer[end - 1] == '\n');
      return {start, start + end};
    }
    if (buffer.size() >= limit) break;  // 431
  }
  return {start, 0};
}

kj::Array<size_t> everyByte(size_t n) {
  auto points = kj::heapArray<size_t>(n);
  for (size_t i = 0; i < n; i++) points[i] = i + 1;
  return points;
}

void checkRequest(const HttpRequest& req, kj::ArrayPtr<const char> head, const HttpLimits& limits) {
  kj::ArrayPtr<const char> owned = req.head;
  KJ_ASSERT(req.method.size() > 0 && pointsInto(req.method, owned));
  KJ_ASSERT(req.target.size() > 0 && pointsInto(req.target, owned));
  KJ_ASSERT(req.path.size() > 0 && pointsInto(req.path, owned));
  KJ_ASSERT(req.path[0] == '/' || req.path == "*", req.path);
  KJ_IF_MAYBE(q, req.query) { KJ_ASSERT(pointsInto(*q, owned)); }
  KJ_ASSERT(req.minorVersion <= 1);
  KJ_ASSERT(req.headers.size() <= limits.maxHeaderCount);
  size_t hosts = 0;
  for (auto& h : req.headers) {
    KJ_ASSERT(h.name.size() > 0 && pointsInto(h.name, owned));
    KJ_ASSERT(pointsInto(h.value, owned));
    for (char c : h.value) KJ_ASSERT(c != '\r' && c != '\n' && c != '\0');
    if (h.value.size() > 0) {
      KJ_ASSERT(h.value[0] != ' ' && h.value[0] != '\t');
      KJ_ASSERT(h.value[h.value.size() - 1] != ' ' && h.value[h.value.size() - 1] != '\t');
    }
    if (equalsIgnoreCase(h.name, "Host")) ++hosts;
  }
  KJ_ASSERT(hosts <= 1 && (req.minorVersion == 0 || hosts == 1));
  // The method and target are copied as sent.
  KJ_ASSERT(memcmp(head.begin(), req.method.begin(), req.method.size()) == 0);

  // What handlers read from a request.
  auto media = req.mediaType();
  for (char c : media) KJ_ASSERT(!(c >= 'A' && c <= 'Z'));
  req.contentTypeParameter("charset");
  req.contentTypeParameter("action");

  auto framing = bodyFraming(req, limits);
  KJ_IF_MAYBE(f, framing.tryGet<BodyFraming>()) {
    switch (f->kind) {
      case BodyFraming::NONE:
        KJ_ASSERT(!f->expectContinue);
        break;
      case BodyFraming::LENGTH:
        KJ_ASSERT(f->length > 0 && f->length <= limits.maxBodyBytes);
        break;
      case BodyFraming::CHUNKED:
        KJ_ASSERT(req.minorVersion == 1 && req.header("Content-Length") == nullptr);
        break;
    }
    if (req.minorVersion == 0 && req.header("Connection") == nullptr) { KJ_ASSERT(!f->keepAlive); }
  } else {
    uint status = framing.get<HttpError>().status;
    KJ_ASSERT(status == 400 || status == 413 || status == 417 || status == 501, status);
  }
}

struct Decoded {
  size_t consumed = 0;
  bool done = false;
  uint status = 0;  // of the error, 0 for none
  WipedBytes body;
};

// Feeds `input` to a fresh decoder in the given pieces, the way the server's readChunks()
// does: the unconsumed rest is offered again with the next piece.
Decoded decodeChunked(kj::ArrayPtr<const char> input, kj::ArrayPtr<const size_t> points,
                      const HttpLimits& limits) {
  ChunkedDecoder decoder(limits.maxBodyBytes, limits.maxHeaderBytes);
  ByteBuffer out;
  Decoded d;
  for (size_t received : points) {
    auto offered = input.slice(d.consumed, received);
    auto r = decoder.feed(offered, out);
    KJ_ASSERT(r.consumed <= offered.size());
    KJ_ASSERT(out.size() <= limits.maxBodyBytes);
    d.consumed += r.consumed;
    KJ_IF_MAYBE(e, r.error) {
      KJ_ASSERT(!r.done);
      KJ_ASSERT(e->status == 400 || e->status == 413 || e->status == 431, e->status);
      d.status = e->status;
      break;
    }
    if (r.done) {
      d.done = true;
      break;
    }
    // Short of an error or the end, a decoder takes everything it is given.
    KJ_ASSERT(r.consumed == offered.size());
  }
  d.body = out.release();
  return d;
}

void sameOutcome(const Decoded& a, const Decoded& b) {
  KJ_ASSERT(a.consumed == b.consumed, a.consumed, b.consumed);
  KJ_ASSERT(a.done == b.done);
  KJ_ASSERT(a.status == b.status, a.status, b.status);
  KJ_ASSERT(a.body.size() == b.body.size());
  KJ_ASSERT(memcmp(a.body.bytes().begin(), b.body.bytes().begin(), a.body.size()) == 0);
}

void fuzzOne(kj::ArrayPtr<const char> input) {
  HttpLimits limits;
  auto pieces = fuzz::splitPoints(input);
  auto bytes = everyByte(input.size());
  size_t whole[] = {input.size()};

  auto scan = scanHead(input, whole);
  auto scanPieces = scanHead(input, pieces);
  auto scanBytes = scanHead(input, bytes);
  KJ_ASSERT(scan.start == scanPieces.start && scan.end == scanPieces.end, scan.start, scan.end,
            scanPieces.start, scanPieces.end);
  KJ_ASSERT(scan.start == scanBytes.start && scan.end == scanBytes.end);
  KJ_ASSERT(scan.start == skipLeadingEmptyLines(input));

  kj::ArrayPtr<const char> body = input.slice(scan.start, input.size());
  if (scan.end > 0) {
    auto head = input.slice(scan.start, scan.end);
    auto parsed = parseRequestHead(head, limits);
    KJ_IF_MAYBE(req, parsed.tryGet<HttpRequest>()) {
      checkRequest(*req, head, limits);
    } else {
      uint status = parsed.get<HttpError>().status;
      KJ_ASSERT(status == 400 || status == 431 || status == 505, status);
    }
    body = input.slice(scan.end, input.size());
  }

  // The chunked decoder sees whatever follows the head (the fuzzer quickly learns to send a
  // chunked head, but the decoder need not wait for it).
  auto bodyPieces = fuzz::splitPoints(body);
  auto bodyBytes = everyByte(body.size());
  size_t bodyWhole[] = {body.size()};
  auto a = decodeChunked(body, bodyWhole, limits);
  auto b = decodeChunked(body, bodyPieces, limits);
  auto c = decodeChunked(body, bodyBytes, limits);
  sameOutcome(a, b);
  sameOutcome(a, c);
  if (a.done) { KJ_ASSERT(a.consumed <= body.size() && a.body.size() < body.size()); }
}

}  // namespace
}  // namespace credvault::http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credvault::fuzz::runOne(
      [&]() { credvault::http::fuzzOne(kj::arrayPtr(reinterpret_cast<const char*>(data), size)); });
  return 0;
}
