// credvault — the JSON writer (RFC 8259) of every program that prints JSON: credvaultctl and
// the gateway's REST responses (frontends/rest/json.h wraps it for the HTTP layer's buffers).
//
// Compact output; strings are escaped as JSON requires (quote, backslash, every control
// character below U+0020) plus U+2028/U+2029, so the text is also safe inside JavaScript.
// Valid UTF-8 passes as it is (base/utf8.h decides what is valid). Bytes that are not valid
// UTF-8 are written as U+FFFD and mark the writer lossy(): a caller that must not alter data
// refuses to send lossy output. Two flavours differ only in bytes JSON leaves to the writer:
//   - TERMINAL (credvaultctl, the default): DEL (U+007F) is escaped as \u007f and U+FFFD is
//     written as the escape \ufffd, so the text stays plain ASCII where the input was;
//   - WIRE (the REST gateway, byte for byte what it has always sent): DEL and U+FFFD are
//     written as the characters themselves.
// Values may be secrets: the buffer is wiped when it grows, by finish() and when the writer
// is destroyed. Misuse (a value where a key is due, a second top-level value, unbalanced
// containers) is a bug: KJ_REQUIRE.

#pragma once

#include <kj/array.h>
#include <kj/string.h>
#include <kj/vector.h>
#include <stdint.h>

namespace credvault::base {

enum class JsonFlavor { TERMINAL, WIRE };

class JsonWriter {
 public:
  explicit JsonWriter(JsonFlavor flavor = JsonFlavor::TERMINAL) : flavor_(flavor) {}
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
  // Appends already valid JSON as one value (trusted: the program's own constants).
  JsonWriter& raw(kj::StringPtr json);

  bool lossy() const { return lossy_; }
  // True when every container is closed and one value was written.
  bool complete() const { return open_.empty() && wroteValue_; }
  // The document so far (no terminating NUL, no newline).
  kj::ArrayPtr<const char> text() const { return buffer_.asPtr(); }
  size_t size() const { return buffer_.size(); }
  // Moves the document out (exactly sized); the writer is empty and reusable afterwards.
  kj::Array<char> finish();

 private:
  void beforeValue();
  void append(kj::ArrayPtr<const char> s);
  void appendChar(char c);
  JsonFlavor flavor_;
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

// The JSON text of one string value, quotes included (the TERMINAL flavour).
kj::String jsonQuote(kj::ArrayPtr<const char> value);
inline kj::String jsonQuote(const char* value) {
  return jsonQuote(kj::StringPtr(value));
}

}  // namespace credvault::base
