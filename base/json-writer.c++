#include "json-writer.h"

#include "base/utf8.h"

#include <kj/debug.h>
#include <string.h>

namespace credvault::base {

namespace {

void wipe(kj::Vector<char>& v) {
  if (v.capacity() > 0) explicit_bzero(v.begin(), v.capacity());
}

void quoteInto(kj::Vector<char>& out, kj::ArrayPtr<const char> value, JsonFlavor flavor,
               bool& lossy) {
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
  // The common case needs no escape: reserve for it once, and copy runs, not bytes.
  grow(value.size() + 2);
  add("\"");
  auto p = reinterpret_cast<const unsigned char*>(value.begin());
  auto end = reinterpret_cast<const unsigned char*>(value.end());
  const unsigned char* run = p;  // start of the bytes copied as they are
  auto flush = [&]() {
    if (p == run) return;
    grow(p - run);
    out.addAll(reinterpret_cast<const char*>(run), reinterpret_cast<const char*>(p));
  };
  // Bytes copied as they are: printable ASCII but quote and backslash, and DEL in WIRE.
  struct PlainTable {
    bool plain[2][256] = {};
    constexpr PlainTable() {
      for (int c = 0x20; c < 0x7f; c++) plain[0][c] = plain[1][c] = c != '"' && c != '\\';
      plain[static_cast<int>(JsonFlavor::WIRE)][0x7f] = true;
    }
  };
  static constexpr PlainTable TABLE;
  const bool* plain = TABLE.plain[static_cast<int>(flavor)];
  while (p < end) {
    while (p < end && plain[*p]) ++p;
    if (p == end) break;
    unsigned char c = *p;
    if (c >= 0x80) {
      uint32_t codePoint;
      size_t n = utf8::decode(p, end, codePoint);
      // U+2028 and U+2029 end a line in JavaScript: escaped. Other valid UTF-8 is copied.
      if (n != 0 && codePoint != 0x2028 && codePoint != 0x2029) {
        p += n;
        continue;
      }
      flush();
      if (n == 0) {
        add(flavor == JsonFlavor::TERMINAL ? "\\ufffd" : "\xef\xbf\xbd");
        lossy = true;
        ++p;
      } else {
        add(codePoint == 0x2028 ? "\\u2028" : "\\u2029");
        p += n;
      }
      run = p;
      continue;
    }
    flush();
    switch (c) {
      case '"':
        add("\\\"");
        break;
      case '\\':
        add("\\\\");
        break;
      case '\n':
        add("\\n");
        break;
      case '\r':
        add("\\r");
        break;
      case '\t':
        add("\\t");
        break;
      case '\b':
        add("\\b");
        break;
      case '\f':
        add("\\f");
        break;
      default: {  // the other controls, and DEL in the TERMINAL flavour
        static const char HEX[] = "0123456789abcdef";
        char esc[7] = {'\\', 'u', '0', '0', HEX[c >> 4], HEX[c & 15], 0};
        add(esc);
      }
    }
    ++p;
    run = p;
  }
  flush();
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
  quoteInto(buffer_, name, flavor_, lossy_);  // grows buffer_ wiping the old block
  appendChar(':');
  afterKey_ = true;
  return *this;
}

JsonWriter& JsonWriter::string(kj::ArrayPtr<const char> value) {
  beforeValue();
  quoteInto(buffer_, value, flavor_, lossy_);  // grows buffer_ wiping the old block
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

JsonWriter& JsonWriter::raw(kj::StringPtr json) {
  beforeValue();
  append(json);
  return *this;
}

kj::Array<char> JsonWriter::finish() {
  // Copied into an exactly sized array by hand: Vector::releaseAsArray() would shrink by
  // reallocating, freeing the old block unwiped.
  auto out = kj::heapArray<char>(buffer_.size());
  if (buffer_.size() > 0) memcpy(out.begin(), buffer_.begin(), buffer_.size());
  wipe(buffer_);
  buffer_.clear();
  open_.clear();
  afterKey_ = false;
  wroteValue_ = false;
  lossy_ = false;
  return out;
}

kj::String jsonQuote(kj::ArrayPtr<const char> value) {
  kj::Vector<char> out(value.size() + 3);
  bool lossy = false;
  quoteInto(out, value, JsonFlavor::TERMINAL, lossy);
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

}  // namespace credvault::base
