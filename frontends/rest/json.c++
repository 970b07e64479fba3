#include "json.h"

#include "base/ascii.h"
#include "base/utf8.h"

#include <kj/debug.h>
#include <string.h>

namespace credvault::rest {

kj::Maybe<const JsonValue&> JsonValue::member(kj::StringPtr name) const {
  for (size_t i = 0; i < keys.size(); i++) {
    if (base::equalsIgnoreCase(keys[i], name)) { return *items[i]; }
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
      int d = base::hexDigitValue(p_[i]);
      if (d < 0) return error("invalid \\u escape: four hex digits expected");
      out = out * 16 + static_cast<uint32_t>(d);
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
            w += base::utf8::encode(cp, w);
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
        size_t len = base::utf8::decode(p_, end_, cp);
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
        if (base::equalsIgnoreCase(k, name)) {
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

}  // namespace credvault::rest
