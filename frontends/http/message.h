// credvault-gateway HTTP layer — requests and responses as handlers see them.
//
// A request is parsed in place into one heap copy of its head: every StringPtr in
// HttpRequest points into `head` and lives exactly as long as the request. Bodies may hold
// passwords and secrets: they are wiped (explicit_bzero) when the request or response is
// destroyed. Nothing here logs.

#pragma once

#include "base/ascii.h"
#include "frontends/http/request-id.h"

#include <kj/array.h>
#include <kj/string.h>
#include <kj/vector.h>

namespace credvault::http {

using kj::uint;

struct HttpHeader {
  kj::StringPtr name;   // as sent; compare case-insensitively
  kj::StringPtr value;  // leading/trailing whitespace removed
};

// A byte buffer that is zeroed before it is freed (it may carry a password or a secret).
class WipedBytes {
 public:
  WipedBytes() = default;
  explicit WipedBytes(kj::Array<kj::byte> bytes) : bytes_(kj::mv(bytes)) {}
  WipedBytes(WipedBytes&&) = default;
  WipedBytes& operator=(WipedBytes&& other);
  ~WipedBytes() { wipe(); }

  kj::ArrayPtr<const kj::byte> bytes() const { return bytes_; }
  kj::ArrayPtr<const char> chars() const { return bytes_.asChars(); }
  size_t size() const { return bytes_.size(); }
  kj::Array<kj::byte>& array() { return bytes_; }

 private:
  void wipe();
  kj::Array<kj::byte> bytes_;
};

// A growable byte buffer that wipes every allocation it lets go of (growth and destruction),
// for request bodies decoded piecewise (chunked transfer coding).
class ByteBuffer {
 public:
  ByteBuffer() = default;
  ~ByteBuffer();
  KJ_DISALLOW_COPY(ByteBuffer);
  void append(kj::ArrayPtr<const kj::byte> bytes);
  size_t size() const { return size_; }
  // Moves the content out as an exactly sized array; the buffer is empty afterwards.
  WipedBytes release();

 private:
  kj::Array<kj::byte> data_;
  size_t size_ = 0;
};

struct HttpRequest {
  kj::Array<char> head;            // owns the text every StringPtr below points into
  kj::StringPtr method;            // token as sent ("POST")
  kj::StringPtr target;            // request-target as sent
  kj::StringPtr path;              // target without query, absolute-form reduced to its path
  kj::Maybe<kj::StringPtr> query;  // after '?', raw (not decoded)
  uint minorVersion = 1;           // HTTP/1.<minor>
  kj::Vector<HttpHeader> headers;
  WipedBytes body;
  kj::StringPtr peer;   // "ip:port" of the client, for logs; may be empty
  kj::StringPtr local;  // "ip:port" the request arrived on; "" when not an IP socket
  bool secure = false;  // arrived over TLS (URLs the gateway names for it are https://)
  // The client's IP address (no port): the peer's, or the one a trusted proxy forwarded
  // (client-address.h). What the daemon is told (throttling, audit) and the access log shows.
  kj::StringPtr client;
  RequestId id;  // assigned by the server before the handler sees the request

  // The first header with this name (case-insensitive), if any.
  kj::Maybe<kj::StringPtr> header(kj::StringPtr name) const;
  // Content-Type's media type, lower-cased and without parameters ("text/xml"); "" if absent.
  kj::String mediaType() const;
  // A parameter of Content-Type (e.g. "action", "charset"), unquoted; null when absent.
  kj::Maybe<kj::String> contentTypeParameter(kj::StringPtr name) const;
};

struct HttpResponse {
  uint status = 200;
  kj::String contentType;               // "" for none
  kj::Vector<kj::String> extraHeaders;  // complete "Name: value" lines, no CRLF
  WipedBytes body;
  // For the access log: what the handler did ("User.GetUntrustedCredentials denied").
  // Fixed words and error names only — never a value the client sent.
  kj::String note;

  static HttpResponse make(uint status, kj::StringPtr contentType, kj::ArrayPtr<const char> body);
  // A short text/plain response ("404 Not Found\n" style when message is empty).
  static HttpResponse text(uint status, kj::StringPtr message = nullptr);
  HttpResponse& header(kj::StringPtr name, kj::StringPtr value);
};

kj::StringPtr statusReason(uint status);

// ASCII case-insensitive comparisons, the only kind HTTP needs (base/ascii.h).
using base::equalsIgnoreCase;
using base::startsWithIgnoreCase;

}  // namespace credvault::http
