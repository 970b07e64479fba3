// credvault-gateway HTTP layer — HTTP/1.1 request framing, without I/O.
//
// Pure functions over byte buffers, so every limit and every malformed input is unit-tested
// without sockets (tests/frontends/http-test.c++). Strict where laxness enables request
// smuggling: CRLF line endings only, no obs-fold, no Content-Length together with
// Transfer-Encoding, no conflicting Content-Length values, only the "chunked" coding.

#pragma once

#include "frontends/http/message.h"
#include "frontends/limits.h"

#include <kj/one-of.h>

namespace credvault::http {

struct HttpLimits {
  size_t maxHeaderBytes = frontends::DEFAULT_MAX_HEADER_BYTES;
  size_t maxHeaderCount = frontends::DEFAULT_MAX_HEADER_COUNT;
  size_t maxBodyBytes = frontends::DEFAULT_MAX_BODY_BYTES;
  kj::Duration headerTimeout = frontends::DEFAULT_HEADER_TIMEOUT;
  kj::Duration bodyTimeout = frontends::DEFAULT_BODY_TIMEOUT;
  kj::Duration idleTimeout = frontends::DEFAULT_IDLE_TIMEOUT;
  kj::Duration writeTimeout = frontends::DEFAULT_WRITE_TIMEOUT;
  kj::Duration drainTimeout = frontends::DEFAULT_DRAIN_TIMEOUT;
  size_t maxConnections = frontends::DEFAULT_MAX_CONNECTIONS;
  // Connections from one peer address at once (trusted proxies and non-IP peers exempt).
  size_t maxConnectionsPerAddress = frontends::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS;
  // Request body bytes held across all connections (read or announced and being read).
  size_t maxBufferedBodyBytes = frontends::DEFAULT_MAX_BODY_BUFFER;
  // Answer bytes held across all connections until their clients have taken them.
  size_t maxBufferedAnswerBytes = frontends::DEFAULT_MAX_ANSWER_BUFFER;
};

// An HTTP-level rejection: the status to answer and a short fixed reason (never client data).
struct HttpError {
  uint status;
  kj::StringPtr reason;
};

// Scans `buffer` for the blank line ending a request head. Returns the head's length
// (including the final CRLFCRLF) or 0 when incomplete. `scanned` carries progress between
// calls on a growing buffer so the scan stays linear. Leading empty lines (RFC 9112 §2.2)
// must be skipped by the caller with skipLeadingEmptyLines() first.
size_t findHeadEnd(kj::ArrayPtr<const char> buffer, size_t& scanned);
size_t skipLeadingEmptyLines(kj::ArrayPtr<const char> buffer);

// Parses a complete head (as delimited by findHeadEnd) into a request that owns a copy.
kj::OneOf<HttpRequest, HttpError> parseRequestHead(kj::ArrayPtr<const char> head,
                                                   const HttpLimits& limits);

struct BodyFraming {
  enum Kind { NONE, LENGTH, CHUNKED } kind = NONE;
  uint64_t length = 0;          // for LENGTH
  bool expectContinue = false;  // the client waits for "100 Continue" before sending the body
  bool keepAlive = true;        // the connection may carry another request afterwards
};

// How the body of `request` is delimited, and whether the connection persists. A declared
// Content-Length above limits.maxBodyBytes is a 413 here, before any body byte is read.
kj::OneOf<BodyFraming, HttpError> bodyFraming(const HttpRequest& request, const HttpLimits& limits);

// Incremental decoder for the chunked transfer coding (RFC 9112 §7.1). Chunk extensions are
// ignored; trailer fields are read and discarded (bounded by maxTrailerBytes).
class ChunkedDecoder {
 public:
  ChunkedDecoder(size_t maxBodyBytes, size_t maxTrailerBytes)
      : maxBody_(maxBodyBytes), maxTrailer_(maxTrailerBytes) {}

  struct Result {
    size_t consumed;             // bytes of `input` used
    bool done;                   // the final chunk and trailers were read
    kj::Maybe<HttpError> error;  // malformed (400) or too large (413)
  };
  // Feeds bytes; appends decoded body bytes to `out`.
  Result feed(kj::ArrayPtr<const char> input, ByteBuffer& out);

 private:
  enum State { SIZE, SIZE_LF, EXT, DATA, DATA_CR, DATA_LF, TRAILER, TRAILER_LF, DONE };
  State state_ = SIZE;
  uint64_t remaining_ = 0;
  size_t sizeDigits_ = 0;
  size_t lineBytes_ = 0;
  size_t trailerBytes_ = 0;
  size_t trailerLineBytes_ = 0;
  size_t maxBody_;
  size_t maxTrailer_;
};

}  // namespace credvault::http
