#include "writer.h"

#include "base/utf8.h"

#include <kj/debug.h>
#include <stdint.h>
#include <string.h>

namespace credvault::xml {

XmlWriter::XmlWriter(size_t initialCapacity) : buf_(kj::heapArray<char>(initialCapacity)) {}

XmlWriter::~XmlWriter() {
  if (buf_.size() > 0) explicit_bzero(buf_.begin(), buf_.size());
}

void XmlWriter::append(const char* data, size_t n) {
  if (size_ + n > buf_.size()) {
    auto bigger = kj::heapArray<char>(kj::max(buf_.size() * 2, size_ + n));
    memcpy(bigger.begin(), buf_.begin(), size_);
    explicit_bzero(buf_.begin(), buf_.size());
    buf_ = kj::mv(bigger);
  }
  memcpy(buf_.begin() + size_, data, n);
  size_ += n;
}

void XmlWriter::closeStart() {
  if (startOpen_) {
    append(">", 1);
    startOpen_ = false;
  }
}

XmlWriter& XmlWriter::raw(kj::StringPtr markup) {
  closeStart();
  append(markup);
  return *this;
}

XmlWriter& XmlWriter::rawBytes(kj::ArrayPtr<const char> markup) {
  closeStart();
  append(markup.begin(), markup.size());
  return *this;
}

XmlWriter& XmlWriter::start(kj::StringPtr qname) {
  closeStart();
  append("<", 1);
  append(qname);
  open_.add(qname);
  startOpen_ = true;
  return *this;
}

XmlWriter& XmlWriter::attr(kj::StringPtr qname, kj::StringPtr value) {
  KJ_REQUIRE(startOpen_, "attribute outside a start tag");
  append(" ", 1);
  append(qname);
  append("=\"", 2);
  escaped(value, true);
  append("\"", 1);
  return *this;
}

XmlWriter& XmlWriter::rawAttributes(kj::StringPtr markup) {
  KJ_REQUIRE(startOpen_, "attributes outside a start tag");
  append(markup);
  return *this;
}

XmlWriter& XmlWriter::text(kj::StringPtr value) {
  closeStart();
  escaped(value, false);
  return *this;
}

XmlWriter& XmlWriter::end() {
  KJ_REQUIRE(open_.size() > 0, "end() without start()");
  closeStart();
  append("</", 2);
  append(open_.back());
  append(">", 1);
  open_.removeLast();
  return *this;
}

XmlWriter& XmlWriter::endEmpty() {
  KJ_REQUIRE(startOpen_, "endEmpty() after content");
  append("/>", 2);
  startOpen_ = false;
  open_.removeLast();
  return *this;
}

XmlWriter& XmlWriter::element(kj::StringPtr qname, kj::StringPtr value) {
  start(qname);
  text(value);
  return end();
}

namespace {

// Length of a valid UTF-8 sequence of an XML character at p, or 0.
size_t xmlCharLength(const unsigned char* p, const unsigned char* end) {
  unsigned char c = *p;
  if (c < 0x80) return (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') ? 1 : 0;
  uint32_t cp;
  size_t len = base::utf8::decode(p, end, cp);
  return cp == 0xfffe || cp == 0xffff ? 0 : len;
}

}  // namespace

void XmlWriter::escaped(kj::StringPtr value, bool inAttribute) {
  auto* p = reinterpret_cast<const unsigned char*>(value.begin());
  auto* end = reinterpret_cast<const unsigned char*>(value.end());
  const unsigned char* run = p;
  auto flush = [&](const unsigned char* upTo) {
    if (upTo > run) append(reinterpret_cast<const char*>(run), upTo - run);
  };
  while (p < end) {
    unsigned char c = *p;
    const char* replacement = nullptr;
    switch (c) {
      case '<':
        replacement = "&lt;";
        break;
      case '>':
        replacement = "&gt;";
        break;
      case '&':
        replacement = "&amp;";
        break;
      case '\r':
        replacement = "&#13;";
        break;  // survives end-of-line normalisation
      case '"':
        if (inAttribute) replacement = "&quot;";
        break;
      case '\t':
        if (inAttribute) replacement = "&#9;";
        break;
      case '\n':
        if (inAttribute) replacement = "&#10;";
        break;
    }
    if (replacement != nullptr) {
      flush(p);
      append(replacement, strlen(replacement));
      ++p;
      run = p;
      continue;
    }
    if (c >= 0x20 && c < 0x80) {
      ++p;
      continue;
    }
    size_t n = xmlCharLength(p, end);
    if (n == 0) {
      flush(p);
      append("\xef\xbf\xbd", 3);  // U+FFFD
      lossy_ = true;
      ++p;
      run = p;
      continue;
    }
    p += n;
  }
  flush(p);
}

kj::Array<kj::byte> XmlWriter::finish() {
  KJ_REQUIRE(!startOpen_ && open_.size() == 0, "unbalanced document");
  auto out = kj::heapArray<kj::byte>(kj::arrayPtr(buf_.begin(), size_).asBytes());
  explicit_bzero(buf_.begin(), size_);
  size_ = 0;
  return out;
}

}  // namespace credvault::xml
