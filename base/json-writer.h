// credvault — a small JSON writer (RFC 8259), for programs that print JSON (credvaultctl).
//
// Compact output; strings are escaped as JSON requires (quote, backslash, every control
// character) plus U+2028/U+2029, so the text is also safe inside JavaScript. Bytes that are
// not valid UTF-8 are written as U+FFFD and mark the writer lossy(). Values may be secrets:
// the buffer is wiped when it grows and when the writer is destroyed. Misuse (a value where
// a key is due, unbalanced containers) is a bug: KJ_REQUIRE.
//
// The gateway's REST writer (frontends/rest/json.h) has the same shape but writes into the
// HTTP layer's wiped byte buffers; it can move onto this one when that layer does.

#pragma once

#include <kj/array.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <stdint.h>

namespace credvault::base {

class JsonWriter {
 public:
  JsonWriter() = default;
  ~JsonWriter();
  KJ_DISALLOW_COPY(JsonWriter);

  JsonWriter& beginObject();
  JsonWriter& endObject();
  JsonWriter& beginArray();
  JsonWriter& endArray();
  JsonWriter& key(kj::StringPtr name);  // inside an object, before each value
  JsonWriter& string(kj::ArrayPtr<const char> value);
  JsonWriter& string(const char* value) { return string(kj::StringPtr(value)); }
  JsonWriter& boolean(bool value);
  JsonWriter& integer(int64_t value);
  JsonWriter& null();

  bool lossy() const { return lossy_; }
  // True when every container is closed and one value was written.
  bool complete() const { return open_.empty() && wroteValue_; }
  // The document so far (no terminating NUL, no newline).
  kj::ArrayPtr<const char> text() const { return buffer_.asPtr(); }

 private:
  void beforeValue();
  void append(kj::ArrayPtr<const char> s);
  void appendChar(char c);
  kj::Vector<char> buffer_;
  struct Open {
    bool object;
    bool empty;
  };
  kj::Vector<Open> open_;
  bool afterKey_ = false;
  bool wroteValue_ = false;
  bool lossy_ = false;
};

// The JSON text of one string value, quotes included.
kj::String jsonQuote(kj::ArrayPtr<const char> value);
inline kj::String jsonQuote(const char* value) {
  return jsonQuote(kj::StringPtr(value));
}

}  // namespace credvault::base
