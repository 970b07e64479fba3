// credvault-gateway XML — a minimal XML writer with escaping.
//
// Element and attribute names are trusted (the gateway's own constants); text and attribute
// values are escaped. A value holding a character that XML 1.0 cannot carry (e.g. U+0001) is
// written as U+FFFD and marks the writer lossy(): callers must then refuse to send the
// document rather than hand a client an altered secret. The buffer is wiped on growth and
// destruction, since responses carry secrets. Never logs.

#pragma once

#include <kj/array.h>
#include <kj/string.h>
#include <kj/vector.h>

namespace credvault::xml {

class XmlWriter {
 public:
  explicit XmlWriter(size_t initialCapacity = 4096);
  ~XmlWriter();
  KJ_DISALLOW_COPY(XmlWriter);

  XmlWriter& raw(kj::StringPtr markup);                  // appended as is (trusted)
  XmlWriter& rawBytes(kj::ArrayPtr<const char> markup);  // same, not NUL-terminated
  XmlWriter& start(kj::StringPtr qname);                 // "<qname"
  XmlWriter& attr(kj::StringPtr qname, kj::StringPtr value);
  // Trusted attribute markup inside the open start tag (e.g. namespace declarations laid
  // out over several lines).
  XmlWriter& rawAttributes(kj::StringPtr markup);
  XmlWriter& text(kj::StringPtr value);  // closes a pending start tag first
  XmlWriter& end();                      // "</qname>" (never self-closing)
  XmlWriter& endEmpty();                 // "/>" for a start tag without content
  // <qname>value</qname>
  XmlWriter& element(kj::StringPtr qname, kj::StringPtr value);

  bool lossy() const { return lossy_; }
  // The document so far, as an exactly sized copy; the writer is wiped and empty afterwards.
  kj::Array<kj::byte> finish();
  size_t size() const { return size_; }

 private:
  void append(const char* data, size_t n);
  void append(kj::StringPtr s) { append(s.begin(), s.size()); }
  void escaped(kj::StringPtr value, bool inAttribute);
  void closeStart();

  kj::Array<char> buf_;
  size_t size_ = 0;
  bool startOpen_ = false;
  bool lossy_ = false;
  kj::Vector<kj::StringPtr> open_;
};

}  // namespace credvault::xml
