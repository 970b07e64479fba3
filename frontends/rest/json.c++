#include "json.h"

#include <kj/debug.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

namespace credvault::rest {

namespace {

// Decodes one UTF-8 sequence at p (p < end). Returns its length, or 0 when invalid.
size_t utf8Sequence(const unsigned char* p, const unsigned char* end, uint32_t& cp) {
  unsigned char c = *p;
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  size_t len;
  uint32_t min;
  if ((c & 0xe0) == 0xc0) {
    len = 2;
    cp = c & 0x1f;
    min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3;
    cp = c & 0x0f;
    min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else
    return 0;
  if (static_cast<size_t>(end - p) < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

size_t encodeUtf8(uint32_t cp, char* out) {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xc0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xe0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out[2] = static_cast<char>(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = static_cast<char>(0xf0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
  out[3] = static_cast<char>(0x80 | (cp & 0x3f));
  return 4;
}

}  // namespace

kj::Maybe<const JsonValue&> JsonValue::member(kj::StringPtr name) const {
  for (size_t i = 0; i < keys.size(); i++) {
    if (keys[i].size() == name.size() &&
        strncasecmp(keys[i].begin(), name.begin(), name.size()) == 0) {
      return *items[i];
    }
  }
  return nullptr;
}

kj::StringPtr JsonValue::describe() const {
  switch (type) {
    case Type::NUL:
      return "null";
    case Type::BOOLEAN:
      return "a boolean";
    case Type::NUMBER:
      return "a number";
    case Type::STRING:
      return "a string";
    case Type::ARRAY:
      return "an array";
    case Type::OBJECT:
      return "an object";
  }
  return "a value";
}

JsonDocument::~JsonDocument() {
  if (arena_.size() > 0) explicit_bzero(arena_.begin(), arena_.size());
}

// ---- reader -----------------------------------------------------------------------------

class JsonParser {
 public:
  JsonParser(kj::ArrayPtr<const char> input, const JsonLimits& limits)
      : p_(input.begin()), begin_(input.begin()), end_(input.end()), limits_(limits) {}

  kj::OneOf<JsonDocument, JsonError> run() {
    JsonDocument doc;
    // A decoded string is never longer than its literal (quotes included), so the arena is
    // big enough for every string plus its NUL terminator.
    doc.arena_ = kj::heapArray<char>(static_cast<size_t>(end_ - begin_) + 1);
    doc_ = &doc;
    if (end_ - p_ >= 3 && memcmp(p_, "\xef\xbb\xbf", 3) == 0) p_ += 3;
    skipSpace();
    if (p_ == end_) return fail("the body is empty; expected a JSON value");
    if (!value(0)) return kj::mv(error_);
    skipSpace();
    if (p_ != end_) return fail("unexpected content after the JSON value");
    return kj::mv(doc);
  }

 private:
  const char* p_;
  const char* begin_;
  const char* end_;
  const char* lineStart_ = begin_;
  uint32_t line_ = 1;
  const JsonLimits& limits_;
  JsonDocument* doc_ = nullptr;
  size_t arenaUsed_ = 0;
  JsonError error_;

  // Columns count characters (UTF-8 lead bytes), 1-based. Every value records its column, so
  // the count continues from the previous call on the same line: recounting from the line's
  // start made a long one-line body quadratic (64 KiB took ~0.1 s of the event loop).
  const char* columnAt_ = begin_;
  uint32_t columnCount_ = 1;
  uint32_t column() {
    if (columnAt_ < lineStart_ || columnAt_ > p_) {  // a new line, or p_ moved back for an error
      columnAt_ = lineStart_;
      columnCount_ = 1;
    }
    for (; columnAt_ < p_; ++columnAt_) {
      if ((static_cast<unsigned char>(*columnAt_) & 0xc0) != 0x80) ++columnCount_;
    }
    return columnCount_;
  }

  JsonError fail(kj::StringPtr what) {
    return JsonError{kj::str("line ", line_, ", column ", column(), ": ", what)};
  }
  bool error(kj::StringPtr what) {
    error_ = fail(what);
    return false;
  }

  void skipSpace() {
    while (p_ < end_) {
      char c = *p_;
      if (c == '\n') {
        ++line_;
        lineStart_ = p_ + 1;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        return;
      }
      ++p_;
    }
  }

  JsonValue* newValue(JsonValue::Type type) {
    auto v = kj::heap<JsonValue>();
    v->type = type;
    v->line = line_;
    v->column = column();
    auto* raw = v.get();
    doc_->values_.add(kj::mv(v));
    return raw;
  }

  bool literal(kj::StringPtr word) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        memcmp(p_, word.begin(), word.size()) != 0) {
      return error("unexpected character; expected a JSON value");
    }
    p_ += word.size();
    return true;
  }

  bool value(uint32_t depth) {
    if (doc_->values_.size() >= limits_.maxValues) {
      return error(kj::str("too many values (the limit is ", limits_.maxValues, ")"));
    }
    if (p_ == end_) return error("unexpected end of input; expected a JSON value");
    char c = *p_;
    switch (c) {
      case '{':
        return object(depth + 1);
      case '[':
        return array(depth + 1);
      case '"': {
        auto* v = newValue(JsonValue::Type::STRING);
        return string(v->text);
      }
      case 't': {
        auto* v = newValue(JsonValue::Type::BOOLEAN);
        v->boolean = true;
        return literal("true");
      }
      case 'f': {
        newValue(JsonValue::Type::BOOLEAN);
        return literal("false");
      }
      case 'n': {
        newValue(JsonValue::Type::NUL);
        return literal("null");
      }
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return number();
        return error("unexpected character; expected a JSON value");
    }
  }

  bool number() {
    auto* v = newValue(JsonValue::Type::NUMBER);
    const char* start = p_;
    auto digit = [&]() { return p_ < end_ && *p_ >= '0' && *p_ <= '9'; };
    if (*p_ == '-') ++p_;
    if (!digit()) return error("invalid number: a digit must follow '-'");
    if (*p_ == '0') {
      ++p_;
      if (digit()) return error("invalid number: leading zeros are not allowed");
    } else {
      while (digit()) ++p_;
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (!digit()) return error("invalid number: a digit must follow '.'");
      while (digit()) ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digit()) return error("invalid number: the exponent has no digits");
      while (digit()) ++p_;
    }
    size_t len = p_ - start;
    if (len > limits_.maxNumberChars) {
      p_ = start;
      return error(
          kj::str("number too long (the limit is ", limits_.maxNumberChars, " characters)"));
    }
    v->text = store(start, len);
    return true;
  }

  kj::StringPtr store(const char* data, size_t len) {
    KJ_ASSERT(arenaUsed_ + len + 1 <= doc_->arena_.size());
    char* out = doc_->arena_.begin() + arenaUsed_;
    if (len > 0) memcpy(out, data, len);
    out[len] = '\0';
    arenaUsed_ += len + 1;
    return kj::StringPtr(out, len);
  }

  bool hex4(uint32_t& out) {
    if (end_ - p_ < 4) return error("invalid \\u escape: four hex digits expected");
    out = 0;
    for (int i = 0; i < 4; i++) {
      char c = p_[i];
      uint32_t d;
      if (c >= '0' && c <= '9')
        d = c - '0';
      else if (c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        d = c - 'A' + 10;
      else
        return error("invalid \\u escape: four hex digits expected");
      out = out * 16 + d;
    }
    p_ += 4;
    return true;
  }

  // Reads a string literal at p_ (on the opening quote) into the arena.
  bool string(kj::StringPtr& out) {
    ++p_;
    char* start = doc_->arena_.begin() + arenaUsed_;
    char* w = start;
    auto tooLong = [&]() { return static_cast<size_t>(w - start) > limits_.maxStringBytes; };
    for (;;) {
      if (p_ == end_) return error("unterminated string");
      unsigned char c = *p_;
      if (c == '"') {
        ++p_;
        break;
      }
      if (c < 0x20) return error("control character in a string (must be escaped)");
      if (c == '\\') {
        ++p_;
        if (p_ == end_) return error("unterminated string");
        char e = *p_++;
        switch (e) {
          case '"':
            *w++ = '"';
            break;
          case '\\':
            *w++ = '\\';
            break;
          case '/':
            *w++ = '/';
            break;
          case 'b':
            *w++ = '\b';
            break;
          case 'f':
            *w++ = '\f';
            break;
          case 'n':
            *w++ = '\n';
            break;
          case 'r':
            *w++ = '\r';
            break;
          case 't':
            *w++ = '\t';
            break;
          case 'u': {
            uint32_t cp;
            if (!hex4(cp)) return false;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
              return error("invalid \\u escape: unpaired low surrogate");
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
              uint32_t low;
              if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
                return error("invalid \\u escape: unpaired high surrogate");
              }
              p_ += 2;
              if (!hex4(low)) return false;
              if (low < 0xdc00 || low > 0xdfff) {
                return error("invalid \\u escape: unpaired high surrogate");
              }
              cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            }
            if (cp == 0) return error("U+0000 is not allowed in a string");
            w += encodeUtf8(cp, w);
            break;
          }
          default:
            --p_;
            return error("invalid escape sequence in a string");
        }
      } else if (c < 0x80) {
        *w++ = static_cast<char>(c);
        ++p_;
      } else {
        uint32_t cp;
        size_t len = utf8Sequence(reinterpret_cast<const unsigned char*>(p_),
                                  reinterpret_cast<const unsigned char*>(end_), cp);
        if (len == 0) return error("invalid UTF-8 in a string");
        memcpy(w, p_, len);
        w += len;
        p_ += len;
      }
      if (tooLong()) {
        return error(kj::str("string too long (the limit is ", limits_.maxStringBytes, " bytes)"));
      }
    }
    size_t len = w - start;
    KJ_ASSERT(arenaUsed_ + len + 1 <= doc_->arena_.size());
    *w = '\0';
    arenaUsed_ += len + 1;
    out = kj::StringPtr(start, len);
    return true;
  }

  bool object(uint32_t depth) {
    if (depth > limits_.maxDepth) {
      return error(kj::str("nesting too deep (the limit is ", limits_.maxDepth, ")"));
    }
    auto* v = newValue(JsonValue::Type::OBJECT);
    ++p_;
    skipSpace();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      if (p_ == end_) return error("unexpected end of input inside an object");
      if (*p_ != '"') return error("expected a member name in double quotes");
      if (v->keys.size() >= limits_.maxMembers) {
        return error(
            kj::str("too many members in one object (the limit is ", limits_.maxMembers, ")"));
      }
      const char* keyAt = p_;
      kj::StringPtr name;
      if (!string(name)) return false;
      for (auto& k : v->keys) {
        if (k.size() == name.size() && strncasecmp(k.begin(), name.begin(), k.size()) == 0) {
          p_ = keyAt;
          return error(kj::str("duplicate member name", printableName(name)));
        }
      }
      skipSpace();
      if (p_ == end_ || *p_ != ':') return error("expected ':' after a member name");
      ++p_;
      skipSpace();
      auto index = doc_->values_.size();
      if (!value(depth)) return false;
      v->keys.add(name);
      v->items.add(doc_->values_[index].get());
      skipSpace();
      if (p_ == end_) return error("unexpected end of input inside an object");
      if (*p_ == ',') {
        ++p_;
        skipSpace();
        continue;
      }
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      return error("expected ',' or '}' in an object");
    }
  }

  bool array(uint32_t depth) {
    if (depth > limits_.maxDepth) {
      return error(kj::str("nesting too deep (the limit is ", limits_.maxDepth, ")"));
    }
    auto* v = newValue(JsonValue::Type::ARRAY);
    ++p_;
    skipSpace();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      auto index = doc_->values_.size();
      if (!value(depth)) return false;
      v->items.add(doc_->values_[index].get());
      skipSpace();
      if (p_ == end_) return error("unexpected end of input inside an array");
      if (*p_ == ',') {
        ++p_;
        skipSpace();
        continue;
      }
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      return error("expected ',' or ']' in an array");
    }
  }

  // " 'Type'" for a short name of identifier characters; "" otherwise (never echo content).
  static kj::String printableName(kj::StringPtr name) {
    if (name.size() == 0 || name.size() > 64) return kj::str("");
    for (char c : name) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '$' || c == '.' || c == '-';
      if (!ok) return kj::str("");
    }
    return kj::str(" '", name, "'");
  }
};

kj::OneOf<JsonDocument, JsonError> parseJson(kj::ArrayPtr<const char> input,
                                             const JsonLimits& limits) {
  return JsonParser(input, limits).run();
}

// ---- writer -----------------------------------------------------------------------------

JsonWriter::JsonWriter(size_t initialCapacity) {}
JsonWriter::~JsonWriter() {}

void JsonWriter::append(kj::StringPtr s) {
  buffer_.append(s.asBytes());
}
void JsonWriter::appendChar(char c) {
  buffer_.append(kj::arrayPtr(reinterpret_cast<const kj::byte*>(&c), 1));
}

void JsonWriter::separate() {
  if (afterKey_) {
    afterKey_ = false;
    return;
  }
  if (first_.size() > 0) {
    if (!first_.back()) appendChar(',');
    first_.back() = false;
  }
}

JsonWriter& JsonWriter::beginObject() {
  separate();
  appendChar('{');
  first_.add(true);
  return *this;
}

JsonWriter& JsonWriter::endObject() {
  KJ_REQUIRE(first_.size() > 0 && !afterKey_);
  first_.removeLast();
  appendChar('}');
  return *this;
}

JsonWriter& JsonWriter::beginArray() {
  separate();
  appendChar('[');
  first_.add(true);
  return *this;
}

JsonWriter& JsonWriter::endArray() {
  KJ_REQUIRE(first_.size() > 0 && !afterKey_);
  first_.removeLast();
  appendChar(']');
  return *this;
}

JsonWriter& JsonWriter::key(kj::StringPtr name) {
  KJ_REQUIRE(!afterKey_);
  string(name);
  appendChar(':');
  afterKey_ = true;
  return *this;
}

JsonWriter& JsonWriter::string(kj::StringPtr value) {
  separate();
  appendChar('"');
  auto* p = reinterpret_cast<const unsigned char*>(value.begin());
  auto* end = reinterpret_cast<const unsigned char*>(value.end());
  const unsigned char* run = p;
  auto flush = [&]() {
    if (p > run) buffer_.append(kj::arrayPtr(reinterpret_cast<const kj::byte*>(run), p - run));
  };
  while (p < end) {
    unsigned char c = *p;
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++p;
      continue;
    }
    if (c >= 0x80) {
      uint32_t cp;
      size_t len = utf8Sequence(p, end, cp);
      if (len == 0) {
        flush();
        append("\xef\xbf\xbd");
        lossy_ = true;
        ++p;
        run = p;
        continue;
      }
      if (cp == 0x2028 || cp == 0x2029) {
        // Valid JSON, but not valid JavaScript before ES2019: escape for old clients.
        flush();
        append(cp == 0x2028 ? "\\u2028" : "\\u2029");
        p += len;
        run = p;
        continue;
      }
      p += len;
      continue;
    }
    flush();
    switch (c) {
      case '"':
        append("\\\"");
        break;
      case '\\':
        append("\\\\");
        break;
      case '\n':
        append("\\n");
        break;
      case '\r':
        append("\\r");
        break;
      case '\t':
        append("\\t");
        break;
      case '\b':
        append("\\b");
        break;
      case '\f':
        append("\\f");
        break;
      default: {
        char buf[8];
        snprintf(buf, sizeof(buf), "\\u%04x", c);
        append(buf);
      }
    }
    ++p;
    run = p;
  }
  flush();
  appendChar('"');
  return *this;
}

JsonWriter& JsonWriter::boolean(bool value) {
  separate();
  append(value ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::integer(int64_t value) {
  separate();
  append(kj::str(value));
  return *this;
}

JsonWriter& JsonWriter::null() {
  separate();
  append("null");
  return *this;
}

JsonWriter& JsonWriter::raw(kj::StringPtr json) {
  separate();
  append(json);
  return *this;
}

http::WipedBytes JsonWriter::finish() {
  first_.clear();
  afterKey_ = false;
  return buffer_.release();
}

}  // namespace credvault::rest
