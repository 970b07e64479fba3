#include "parser.h"
#include "base/ascii.h"
#include "base/parse-int.h"

#include <kj/debug.h>
#include <string.h>

namespace credvault::http {

namespace {

bool isTchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
  }
  return false;
}

bool isFieldValueChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u == '\t' || u == ' ' || (u >= 0x21 && u != 0x7f);
}

bool isTargetChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x21 && u <= 0x7e;
}

bool isOws(char c) {
  return c == ' ' || c == '\t';
}

}  // namespace

size_t skipLeadingEmptyLines(kj::ArrayPtr<const char> buffer) {
  size_t i = 0;
  while (i + 1 < buffer.size() && buffer[i] == '\r' && buffer[i + 1] == '\n') i += 2;
  return i;
}

size_t findHeadEnd(kj::ArrayPtr<const char> buffer, size_t& scanned) {
  // The head ends at the first empty line; a bare LF ending is found too, so that the parser
  // can reject it at once instead of waiting for the size limit.
  size_t i = scanned;
  const char* data = buffer.begin();
  size_t n = buffer.size();
  while (i < n) {
    const void* nl = memchr(data + i, '\n', n - i);
    if (nl == nullptr) {
      scanned = n;
      return 0;
    }
    size_t pos = static_cast<const char*>(nl) - data;
    if (pos + 1 >= n) {
      scanned = pos;  // look at this LF again when more bytes arrive
      return 0;
    }
    if (data[pos + 1] == '\n') return pos + 2;
    if (data[pos + 1] == '\r') {
      if (pos + 2 >= n) {
        scanned = pos;
        return 0;
      }
      if (data[pos + 2] == '\n') return pos + 3;
    }
    i = pos + 1;
  }
  scanned = n;
  return 0;
}

kj::OneOf<HttpRequest, HttpError> parseRequestHead(kj::ArrayPtr<const char> head,
                                                   const HttpLimits& limits) {
  using Result = kj::OneOf<HttpRequest, HttpError>;
  auto fail = [](uint status, kj::StringPtr reason) -> Result { return HttpError{status, reason}; };

  HttpRequest req;
  // One allocation: the head (NUL-terminated in place), then room for a copy of the path.
  req.head = kj::heapArray<char>(head.size() * 2 + 2);
  memcpy(req.head.begin(), head.begin(), head.size());
  req.head[head.size()] = '\0';
  char* p = req.head.begin();
  char* end = p + head.size();

  // ---- request line
  char* lineEnd = static_cast<char*>(memchr(p, '\n', end - p));
  if (lineEnd == nullptr || lineEnd == p || lineEnd[-1] != '\r') {
    return fail(400, "malformed request line");
  }
  lineEnd[-1] = '\0';
  char* method = p;
  while (isTchar(*p)) ++p;
  if (p == method || *p != ' ') return fail(400, "malformed request line");
  *p++ = '\0';
  char* target = p;
  while (isTargetChar(*p)) ++p;
  if (p == target || *p != ' ') return fail(400, "malformed request target");
  *p++ = '\0';
  char* version = p;
  if (strcmp(version, "HTTP/1.1") == 0) {
    req.minorVersion = 1;
  } else if (strcmp(version, "HTTP/1.0") == 0) {
    req.minorVersion = 0;
  } else if (strlen(version) == 8 && strncmp(version, "HTTP/", 5) == 0 && version[6] == '.') {
    return fail(505, "HTTP version not supported");
  } else {
    return fail(400, "malformed request line");
  }
  req.method = kj::StringPtr(method, strlen(method));
  req.target = kj::StringPtr(target, strlen(target));

  // ---- header fields
  p = lineEnd + 1;
  for (;;) {
    if (p >= end) return fail(400, "truncated header");
    lineEnd = static_cast<char*>(memchr(p, '\n', end - p));
    if (lineEnd == nullptr || lineEnd == p || lineEnd[-1] != '\r') {
      return fail(400, "header lines must end with CRLF");
    }
    char* lineStop = lineEnd - 1;  // the CR
    if (lineStop == p) break;      // empty line: end of head
    if (isOws(*p)) return fail(400, "obsolete line folding");
    if (req.headers.size() >= limits.maxHeaderCount) return fail(431, "too many header fields");
    char* name = p;
    while (isTchar(*p)) ++p;
    if (p == name || *p != ':') return fail(400, "malformed header field name");
    *p++ = '\0';
    while (p < lineStop && isOws(*p)) ++p;
    char* value = p;
    for (char* q = value; q < lineStop; ++q) {
      if (!isFieldValueChar(*q)) return fail(400, "invalid character in header field");
    }
    char* valueEnd = lineStop;
    while (valueEnd > value && isOws(valueEnd[-1])) --valueEnd;
    *valueEnd = '\0';
    req.headers.add(
        HttpHeader{kj::StringPtr(name, strlen(name)), kj::StringPtr(value, valueEnd - value)});
    p = lineEnd + 1;
  }

  // ---- Host (required once in HTTP/1.1)
  size_t hosts = 0;
  for (auto& h : req.headers) {
    if (equalsIgnoreCase(h.name, "Host")) ++hosts;
  }
  if (hosts > 1 || (req.minorVersion == 1 && hosts == 0)) {
    return fail(400, "exactly one Host header is required");
  }

  // ---- path and query from the target (origin-form, absolute-form, or "*")
  const char* t = target;
  if (*t == '/') {
    // origin-form
  } else if (startsWithIgnoreCase(req.target, "http://") ||
             startsWithIgnoreCase(req.target, "https://")) {
    t = strchr(t, ':') + 3;
    while (*t != '\0' && *t != '/' && *t != '?') ++t;
  } else if (strcmp(t, "*") == 0) {
    // asterisk-form, for OPTIONS
  } else {
    return fail(400, "malformed request target");
  }
  const char* q = strchr(t, '?');
  size_t pathLen = q == nullptr ? strlen(t) : static_cast<size_t>(q - t);
  char* pathCopy = req.head.begin() + head.size() + 1;
  if (pathLen == 0) {
    pathCopy[0] = '/';
    pathLen = 1;
  } else {
    memcpy(pathCopy, t, pathLen);
  }
  pathCopy[pathLen] = '\0';
  req.path = kj::StringPtr(pathCopy, pathLen);
  if (q != nullptr) req.query = kj::StringPtr(q + 1, strlen(q + 1));
  return kj::mv(req);
}

namespace {

// Splits a comma-separated field value into trimmed elements, calling f for each non-empty.
template<typename F>
void forEachListElement(kj::StringPtr value, F&& f) {
  const char* p = value.begin();
  const char* end = value.end();
  while (p < end) {
    while (p < end && (isOws(*p) || *p == ',')) ++p;
    const char* s = p;
    while (p < end && *p != ',') ++p;
    const char* e = p;
    while (e > s && isOws(e[-1])) --e;
    if (e > s) f(kj::ArrayPtr<const char>(s, e - s));
  }
}

bool elementIs(kj::ArrayPtr<const char> element, kj::StringPtr word) {
  return base::equalsIgnoreCase(element, word);
}

}  // namespace

kj::OneOf<BodyFraming, HttpError> bodyFraming(const HttpRequest& request,
                                              const HttpLimits& limits) {
  using Result = kj::OneOf<BodyFraming, HttpError>;
  BodyFraming framing;
  framing.keepAlive = request.minorVersion >= 1;

  bool sawTransferEncoding = false;
  bool chunkedLast = false;
  size_t codings = 0;
  bool sawLength = false;
  bool badLength = false;
  uint64_t length = 0;
  kj::Maybe<HttpError> expectError;

  for (auto& h : request.headers) {
    if (equalsIgnoreCase(h.name, "Transfer-Encoding")) {
      sawTransferEncoding = true;
      forEachListElement(h.value, [&](kj::ArrayPtr<const char> e) {
        ++codings;
        chunkedLast = elementIs(e, "chunked");
      });
    } else if (equalsIgnoreCase(h.name, "Content-Length")) {
      // Several values (or a list) are allowed only when all are the same number.
      bool any = false;
      forEachListElement(h.value, [&](kj::ArrayPtr<const char> e) {
        any = true;
        uint64_t v = 0;
        if (e.size() > 15) {
          badLength = true;
          return;
        }
        KJ_IF_MAYBE(n, base::unsignedOrNull(e)) {
          v = *n;
        } else {
          badLength = true;
          return;
        }
        if (sawLength && v != length) badLength = true;
        sawLength = true;
        length = v;
      });
      if (!any) badLength = true;
    } else if (equalsIgnoreCase(h.name, "Connection")) {
      forEachListElement(h.value, [&](kj::ArrayPtr<const char> e) {
        if (elementIs(e, "close")) framing.keepAlive = false;
        if (elementIs(e, "keep-alive") && request.minorVersion == 0) framing.keepAlive = true;
      });
    } else if (equalsIgnoreCase(h.name, "Expect")) {
      if (equalsIgnoreCase(h.value, "100-continue")) {
        framing.expectContinue = true;
      } else {
        expectError = HttpError{417, "only Expect: 100-continue is supported"};
      }
    }
  }
  // An explicit close after an HTTP/1.0 keep-alive wins.
  for (auto& h : request.headers) {
    if (equalsIgnoreCase(h.name, "Connection")) {
      forEachListElement(h.value, [&](kj::ArrayPtr<const char> e) {
        if (elementIs(e, "close")) framing.keepAlive = false;
      });
    }
  }

  if (sawTransferEncoding) {
    // An unreadable Content-Length counts too: a lenient proxy in front may have read it.
    if (sawLength || badLength) {
      return Result(HttpError{400, "both Content-Length and Transfer-Encoding"});
    }
    if (request.minorVersion == 0) return Result(HttpError{400, "Transfer-Encoding in HTTP/1.0"});
    if (codings != 1 || !chunkedLast) {
      return Result(HttpError{501, "only the chunked transfer coding is supported"});
    }
    framing.kind = BodyFraming::CHUNKED;
  } else if (sawLength || badLength) {
    if (badLength) return Result(HttpError{400, "invalid Content-Length"});
    if (length > limits.maxBodyBytes) return Result(HttpError{413, "request body too large"});
    framing.kind = length == 0 ? BodyFraming::NONE : BodyFraming::LENGTH;
    framing.length = length;
  }
  KJ_IF_MAYBE(e, expectError) { return Result(*e); }
  if (framing.kind == BodyFraming::NONE) framing.expectContinue = false;
  return framing;
}

ChunkedDecoder::Result ChunkedDecoder::feed(kj::ArrayPtr<const char> input, ByteBuffer& out) {
  size_t i = 0;
  auto error = [&](uint status, kj::StringPtr reason) {
    return Result{i, false, HttpError{status, reason}};
  };
  while (i < input.size()) {
    char c = input[i];
    switch (state_) {
      case SIZE: {
        int digit = base::hexDigitValue(c);
        if (digit >= 0) {
          if (++sizeDigits_ > 15) return error(413, "chunk too large");
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(digit);
          ++i;
          break;
        }
        if (sizeDigits_ == 0) return error(400, "malformed chunk size");
        if (c == '\r') {
          state_ = SIZE_LF;
        } else if (c == ';' || c == ' ' || c == '\t') {
          state_ = EXT;
          lineBytes_ = sizeDigits_;
        } else {
          return error(400, "malformed chunk size");
        }
        ++i;
        break;
      }
      case EXT: {
        if (c == '\r') {
          state_ = SIZE_LF;
        } else if (!isFieldValueChar(c)) {
          return error(400, "malformed chunk extension");
        } else if (++lineBytes_ > frontends::MAX_CHUNK_LINE_BYTES) {
          return error(400, "chunk extension too long");
        }
        ++i;
        break;
      }
      case SIZE_LF: {
        if (c != '\n') return error(400, "chunk size line must end with CRLF");
        ++i;
        sizeDigits_ = 0;
        if (remaining_ == 0) {
          state_ = TRAILER;
          trailerLineBytes_ = 0;
        } else {
          if (remaining_ > maxBody_ || out.size() + remaining_ > maxBody_) {
            return error(413, "request body too large");
          }
          state_ = DATA;
        }
        break;
      }
      case DATA: {
        size_t n = kj::min(static_cast<uint64_t>(input.size() - i), remaining_);
        out.append(input.slice(i, i + n).asBytes());
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = DATA_CR;
        break;
      }
      case DATA_CR:
        if (c != '\r') return error(400, "chunk data must end with CRLF");
        ++i;
        state_ = DATA_LF;
        break;
      case DATA_LF:
        if (c != '\n') return error(400, "chunk data must end with CRLF");
        ++i;
        state_ = SIZE;
        break;
      case TRAILER:
        if (trailerLineBytes_ == 0 && c == '\r') {
          state_ = TRAILER_LF;
        } else if (c == '\n') {
          trailerLineBytes_ = 0;
        } else {
          ++trailerLineBytes_;
        }
        if (++trailerBytes_ > maxTrailer_) return error(431, "trailer section too large");
        ++i;
        break;
      case TRAILER_LF:
        if (c != '\n') return error(400, "malformed trailer section");
        ++i;
        state_ = DONE;
        return Result{i, true, nullptr};
      case DONE:
        return Result{i, true, nullptr};
    }
  }
  return Result{i, state_ == DONE, nullptr};
}

}  // namespace credvault::http
