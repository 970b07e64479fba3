#include "message.h"

#include <kj/debug.h>
#include <string.h>
#include <ctype.h>

namespace credvault::http {

WipedBytes& WipedBytes::operator=(WipedBytes&& other) {
  wipe();
  bytes_ = kj::mv(other.bytes_);
  return *this;
}

void WipedBytes::wipe() {
  if (bytes_.size() > 0) explicit_bzero(bytes_.begin(), bytes_.size());
}

ByteBuffer::~ByteBuffer() {
  if (data_.size() > 0) explicit_bzero(data_.begin(), data_.size());
}

void ByteBuffer::append(kj::ArrayPtr<const kj::byte> bytes) {
  if (size_ + bytes.size() > data_.size()) {
    size_t capacity = kj::max(size_ + bytes.size(), kj::max<size_t>(data_.size() * 2, 1024));
    auto bigger = kj::heapArray<kj::byte>(capacity);
    if (size_ > 0) memcpy(bigger.begin(), data_.begin(), size_);
    if (data_.size() > 0) explicit_bzero(data_.begin(), data_.size());
    data_ = kj::mv(bigger);
  }
  if (bytes.size() > 0) memcpy(data_.begin() + size_, bytes.begin(), bytes.size());
  size_ += bytes.size();
}

WipedBytes ByteBuffer::release() {
  auto out = kj::heapArray<kj::byte>(data_.slice(0, size_));
  if (data_.size() > 0) explicit_bzero(data_.begin(), data_.size());
  data_ = nullptr;
  size_ = 0;
  return WipedBytes(kj::mv(out));
}

kj::Maybe<kj::StringPtr> HttpRequest::header(kj::StringPtr name) const {
  for (auto& h : headers) {
    if (equalsIgnoreCase(h.name, name)) return h.value;
  }
  return nullptr;
}

static bool isSpace(char c) {
  return c == ' ' || c == '\t';
}

kj::String HttpRequest::mediaType() const {
  KJ_IF_MAYBE(ct, header("Content-Type")) {
    const char* p = ct->begin();
    const char* end = ct->end();
    const char* stop = p;
    while (stop < end && *stop != ';') ++stop;
    while (stop > p && isSpace(stop[-1])) --stop;
    auto out = kj::heapString(p, stop - p);
    for (char& c : out) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    return out;
  }
  return kj::heapString("");
}

kj::Maybe<kj::String> HttpRequest::contentTypeParameter(kj::StringPtr name) const {
  KJ_IF_MAYBE(ct, header("Content-Type")) {
    const char* p = ct->begin();
    const char* end = ct->end();
    while (p < end && *p != ';') ++p;
    while (p < end) {
      ++p;  // ';'
      while (p < end && isSpace(*p)) ++p;
      const char* nameStart = p;
      while (p < end && *p != '=' && *p != ';') ++p;
      const char* nameEnd = p;
      while (nameEnd > nameStart && isSpace(nameEnd[-1])) --nameEnd;
      kj::String value = kj::heapString("");
      if (p < end && *p == '=') {
        ++p;
        while (p < end && isSpace(*p)) ++p;
        if (p < end && *p == '"') {
          ++p;
          kj::Vector<char> v;
          while (p < end && *p != '"') {
            if (*p == '\\' && p + 1 < end) ++p;
            v.add(*p++);
          }
          if (p < end) ++p;
          v.add('\0');
          value = kj::String(v.releaseAsArray());
          while (p < end && *p != ';') ++p;
        } else {
          const char* vs = p;
          while (p < end && *p != ';') ++p;
          const char* ve = p;
          while (ve > vs && isSpace(ve[-1])) --ve;
          value = kj::heapString(vs, ve - vs);
        }
      }
      if (equalsIgnoreCase(kj::arrayPtr(nameStart, nameEnd), name)) { return kj::mv(value); }
    }
  }
  return nullptr;
}

HttpResponse HttpResponse::make(uint status, kj::StringPtr contentType,
                                kj::ArrayPtr<const char> body) {
  HttpResponse r;
  r.status = status;
  r.contentType = kj::heapString(contentType);
  r.body = WipedBytes(kj::heapArray<kj::byte>(body.asBytes()));
  return r;
}

HttpResponse HttpResponse::text(uint status, kj::StringPtr message) {
  auto body = message == nullptr ? kj::str(status, " ", statusReason(status), "\n")
                                 : kj::str(message, "\n");
  return make(status, "text/plain; charset=utf-8", body);
}

HttpResponse& HttpResponse::header(kj::StringPtr name, kj::StringPtr value) {
  extraHeaders.add(kj::str(name, ": ", value));
  return *this;
}

kj::StringPtr statusReason(uint status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Unknown";
}

}  // namespace credvault::http
