#include "json-writer.h"

#include <kj/debug.h>
#include <string.h>

namespace credvault::base {

namespace {

void wipe(kj::Vector<char>& v) {
  if (v.capacity() > 0) explicit_bzero(v.begin(), v.capacity());
}

// The length of the valid UTF-8 sequence at `p` (RFC 3629: no overlong forms, no surrogates,
// nothing past U+10FFFF), or 0 when it is not valid.
size_t utf8Sequence(const unsigned char* p, const unsigned char* end) {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (static_cast<size_t>(end - p) < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;
  return n;
}

void quoteInto(kj::Vector<char>& out, kj::ArrayPtr<const char> value, bool& lossy) {
  auto grow = [&](size_t more) {
    if (out.size() + more <= out.capacity()) return;
    // Grow by hand so the old block is wiped, not just freed.
    kj::Vector<char> bigger(kj::max(out.capacity() * 2, out.size() + more + 64));
    bigger.addAll(out);
    wipe(out);
    out = kj::mv(bigger);
  };
  auto add = [&](kj::StringPtr s) {
    grow(s.size());
    out.addAll(s);
  };
  add("\"");
  auto p = reinterpret_cast<const unsigned char*>(value.begin());
  auto end = reinterpret_cast<const unsigned char*>(value.end());
  while (p < end) {
    unsigned char c = *p;
    switch (c) {
      case '"':
        add("\\\"");
        ++p;
        continue;
      case '\\':
        add("\\\\");
        ++p;
        continue;
      case '\n':
        add("\\n");
        ++p;
        continue;
      case '\r':
        add("\\r");
        ++p;
        continue;
      case '\t':
        add("\\t");
        ++p;
        continue;
      case '\b':
        add("\\b");
        ++p;
        continue;
      case '\f':
        add("\\f");
        ++p;
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
      static const char HEX[] = "0123456789abcdef";
      char esc[7] = {'\\', 'u', '0', '0', HEX[c >> 4], HEX[c & 15], 0};
      add(esc);
      ++p;
      continue;
    }
    size_t n = utf8Sequence(p, end);
    if (n == 0) {
      add("\\ufffd");
      lossy = true;
      ++p;
      continue;
    }
    // U+2028 and U+2029 (E2 80 A8/A9) end a line in JavaScript.
    if (n == 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
      add(p[2] == 0xa8 ? "\\u2028" : "\\u2029");
      p += 3;
      continue;
    }
    grow(n);
    out.addAll(reinterpret_cast<const char*>(p), reinterpret_cast<const char*>(p + n));
    p += n;
  }
  add("\"");
}

}  // namespace

JsonWriter::~JsonWriter() {
  wipe(buffer_);
}

void JsonWriter::append(kj::ArrayPtr<const char> s) {
  if (buffer_.size() + s.size() > buffer_.capacity()) {
    kj::Vector<char> bigger(kj::max(buffer_.capacity() * 2, buffer_.size() + s.size() + 64));
    bigger.addAll(buffer_);
    wipe(buffer_);
    buffer_ = kj::mv(bigger);
  }
  buffer_.addAll(s);
}

void JsonWriter::appendChar(char c) {
  append(kj::arrayPtr(&c, 1));
}

void JsonWriter::beforeValue() {
  if (open_.empty()) {
    KJ_REQUIRE(!wroteValue_, "a JSON document holds one value");
    wroteValue_ = true;
    return;
  }
  auto& top = open_.back();
  if (top.object) {
    KJ_REQUIRE(afterKey_, "a value inside an object needs a key first");
    afterKey_ = false;
    return;
  }
  if (!top.empty) appendChar(',');
  top.empty = false;
}

JsonWriter& JsonWriter::beginObject() {
  beforeValue();
  appendChar('{');
  open_.add(Open{true, true});
  return *this;
}

JsonWriter& JsonWriter::endObject() {
  KJ_REQUIRE(!open_.empty() && open_.back().object && !afterKey_, "unbalanced JSON object");
  open_.removeLast();
  appendChar('}');
  return *this;
}

JsonWriter& JsonWriter::beginArray() {
  beforeValue();
  appendChar('[');
  open_.add(Open{false, true});
  return *this;
}

JsonWriter& JsonWriter::endArray() {
  KJ_REQUIRE(!open_.empty() && !open_.back().object, "unbalanced JSON array");
  open_.removeLast();
  appendChar(']');
  return *this;
}

JsonWriter& JsonWriter::key(kj::StringPtr name) {
  KJ_REQUIRE(!open_.empty() && open_.back().object && !afterKey_, "a key outside an object");
  auto& top = open_.back();
  if (!top.empty) appendChar(',');
  top.empty = false;
  kj::Vector<char> quoted;
  quoteInto(quoted, name, lossy_);
  append(quoted);
  wipe(quoted);
  appendChar(':');
  afterKey_ = true;
  return *this;
}

JsonWriter& JsonWriter::string(kj::ArrayPtr<const char> value) {
  beforeValue();
  kj::Vector<char> quoted(value.size() + 2);
  quoteInto(quoted, value, lossy_);
  append(quoted);
  wipe(quoted);
  return *this;
}

JsonWriter& JsonWriter::boolean(bool value) {
  beforeValue();
  append(value ? kj::StringPtr("true") : kj::StringPtr("false"));
  return *this;
}

JsonWriter& JsonWriter::integer(int64_t value) {
  beforeValue();
  append(kj::str(value));
  return *this;
}

JsonWriter& JsonWriter::null() {
  beforeValue();
  append(kj::StringPtr("null"));
  return *this;
}

kj::String jsonQuote(kj::ArrayPtr<const char> value) {
  kj::Vector<char> out(value.size() + 3);
  bool lossy = false;
  quoteInto(out, value, lossy);
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

}  // namespace credvault::base
