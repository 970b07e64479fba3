// credvault-gateway REST — a small, strict JSON reader and a JSON writer.
//
// The reader takes RFC 8259 JSON and refuses, with a message naming the line and column:
//   - syntax errors, trailing content, comments, NaN/Infinity, leading zeros, a lone "-";
//   - duplicate object member names, compared ASCII case-insensitively (REST binds names
//     case-insensitively, so {"Type":…,"type":…} would be ambiguous);
//   - invalid UTF-8 (overlong forms, surrogates, > U+10FFFF), unpaired \u surrogates, U+0000,
//     raw control characters inside strings;
//   - numbers longer than JSON_MAX_NUMBER_CHARS characters as written (the reader keeps the
//     text; converting it to an integer is the binder's job and checks the range);
//   - documents past the limits in frontends/limits.h (depth, values, members, string size).
// A UTF-8 byte order mark before the value is skipped (.NET writers emit one). Messages never
// quote document content, which may be a password or a secret. Every decoded string lives in
// one arena that is wiped when the document is destroyed. Never logs.
//
// The writer is base/json-writer.h's (WIRE flavour): compact, escapes what JSON requires (and
// U+2028/U+2029), wipes its buffer (responses carry secrets). A string that is not valid UTF-8
// is written with U+FFFD and marks the writer lossy(): callers must then refuse to send.

#pragma once

#include "base/json-writer.h"
#include "frontends/http/message.h"
#include "frontends/limits.h"

#include <kj/array.h>
#include <kj/memory.h>
#include <kj/one-of.h>
#include <kj/string.h>
#include <kj/vector.h>

namespace credvault::rest {

struct JsonLimits {
  uint32_t maxDepth = frontends::JSON_MAX_DEPTH;
  uint32_t maxValues = frontends::JSON_MAX_VALUES;
  uint32_t maxMembers = frontends::JSON_MAX_MEMBERS;
  size_t maxStringBytes = frontends::JSON_MAX_STRING_BYTES;
  size_t maxNumberChars = frontends::JSON_MAX_NUMBER_CHARS;
};

struct JsonValue {
  enum class Type { NUL, BOOLEAN, NUMBER, STRING, ARRAY, OBJECT };
  Type type = Type::NUL;
  bool boolean = false;
  kj::StringPtr text;                  // STRING: decoded; NUMBER: as written
  kj::Vector<kj::StringPtr> keys;      // OBJECT: member names (decoded), parallel to items
  kj::Vector<const JsonValue*> items;  // ARRAY: elements; OBJECT: member values
  uint32_t line = 0;
  uint32_t column = 0;

  // The member whose name equals `name` ignoring ASCII case (names are unique that way).
  kj::Maybe<const JsonValue&> member(kj::StringPtr name) const;
  // "null", "a boolean", "a number", "a string", "an array", "an object".
  kj::StringPtr describe() const;
};

class JsonDocument {
 public:
  JsonDocument(JsonDocument&&) = default;
  ~JsonDocument();
  const JsonValue& root() const { return *values_[0]; }
  size_t valueCount() const { return values_.size(); }

 private:
  JsonDocument() = default;
  friend class JsonParser;
  kj::Array<char> arena_;
  kj::Vector<kj::Own<JsonValue>> values_;
};

struct JsonError {
  kj::String message;  // "line 1, column 9: duplicate member name" — never document content
};

kj::OneOf<JsonDocument, JsonError> parseJson(kj::ArrayPtr<const char> input,
                                             const JsonLimits& limits = {});

// The gateway's JSON writer: base::JsonWriter in its WIRE flavour (the bytes REST has always
// sent), finishing into the HTTP layer's wiped buffer.
class JsonWriter : public base::JsonWriter {
 public:
  JsonWriter() : base::JsonWriter(base::JsonFlavor::WIRE) {}
  // The document; the writer is empty afterwards.
  http::WipedBytes finish() {
    return http::WipedBytes(base::JsonWriter::finish().releaseAsBytes());
  }
};

}  // namespace credvault::rest
