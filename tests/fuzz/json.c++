// libFuzzer target: frontends/rest/json.h parseJson, with JsonWriter as an oracle.
//
// Checks, beyond "no crash": a parsed document respects every JsonLimits bound, its strings
// are valid UTF-8 without U+0000, member names are unique ignoring ASCII case; writing it
// back with JsonWriter (never lossy for parsed text) and parsing that gives the same values.
// Errors name a line and column.

#include "frontends/common/operations.h"
#include "frontends/rest/json.h"
#include "tests/fuzz/fuzz-util.h"

#include <kj/debug.h>
#include <string.h>
#include <strings.h>

namespace credvault::rest {
namespace {

using Type = JsonValue::Type;

void checkString(kj::StringPtr s, const JsonLimits& limits) {
  KJ_ASSERT(s.size() <= limits.maxStringBytes);
  KJ_ASSERT(memchr(s.begin(), '\0', s.size()) == nullptr);
  KJ_ASSERT(frontends::isValidUtf8(s));
}

// Returns the number of values reached.
size_t checkValue(const JsonValue& v, uint32_t depth, const JsonLimits& limits) {
  KJ_ASSERT(v.line >= 1 && v.column >= 1);
  v.describe();
  size_t n = 1;
  switch (v.type) {
    case Type::NUL:
    case Type::BOOLEAN:
      break;
    case Type::NUMBER:
      KJ_ASSERT(v.text.size() > 0 && v.text.size() <= limits.maxNumberChars);
      break;
    case Type::STRING:
      checkString(v.text, limits);
      break;
    case Type::ARRAY:
      KJ_ASSERT(depth + 1 <= limits.maxDepth);
      KJ_ASSERT(v.keys.size() == 0);
      for (auto* item : v.items) n += checkValue(*item, depth + 1, limits);
      break;
    case Type::OBJECT:
      KJ_ASSERT(depth + 1 <= limits.maxDepth);
      KJ_ASSERT(v.keys.size() == v.items.size() && v.keys.size() <= limits.maxMembers);
      for (size_t i = 0; i < v.keys.size(); i++) {
        checkString(v.keys[i], limits);
        for (size_t j = 0; j < i; j++) {
          KJ_ASSERT(v.keys[i].size() != v.keys[j].size() ||
                        strncasecmp(v.keys[i].begin(), v.keys[j].begin(), v.keys[i].size()) != 0,
                    "duplicate member name");
        }
        KJ_ASSERT(&KJ_ASSERT_NONNULL(v.member(v.keys[i])) == v.items[i]);
        n += checkValue(*v.items[i], depth + 1, limits);
      }
      break;
  }
  return n;
}

void write(JsonWriter& w, const JsonValue& v) {
  switch (v.type) {
    case Type::NUL:
      w.null();
      break;
    case Type::BOOLEAN:
      w.boolean(v.boolean);
      break;
    case Type::NUMBER:
      w.raw(v.text);  // kept as written, and valid JSON as such
      break;
    case Type::STRING:
      w.string(v.text);
      break;
    case Type::ARRAY:
      w.beginArray();
      for (auto* item : v.items) write(w, *item);
      w.endArray();
      break;
    case Type::OBJECT:
      w.beginObject();
      for (size_t i = 0; i < v.keys.size(); i++) {
        w.key(v.keys[i]);
        write(w, *v.items[i]);
      }
      w.endObject();
      break;
  }
}

void sameValue(const JsonValue& a, const JsonValue& b) {
  KJ_ASSERT(a.type == b.type);
  KJ_ASSERT(a.boolean == b.boolean);
  KJ_ASSERT(a.text == b.text);
  KJ_ASSERT(a.keys.size() == b.keys.size() && a.items.size() == b.items.size());
  for (size_t i = 0; i < a.keys.size(); i++) KJ_ASSERT(a.keys[i] == b.keys[i]);
  for (size_t i = 0; i < a.items.size(); i++) sameValue(*a.items[i], *b.items[i]);
}

void fuzzOne(kj::ArrayPtr<const char> input) {
  JsonLimits limits;
  auto parsed = parseJson(input, limits);
  KJ_IF_MAYBE(doc, parsed.tryGet<JsonDocument>()) {
    KJ_ASSERT(doc->valueCount() >= 1 && doc->valueCount() <= limits.maxValues);
    KJ_ASSERT(checkValue(doc->root(), 0, limits) == doc->valueCount());

    JsonWriter w;
    write(w, doc->root());
    KJ_ASSERT(!w.lossy());
    auto out = w.finish();
    auto again = parseJson(out.chars(), limits);
    KJ_IF_MAYBE(error, again.tryGet<JsonError>()) {
      KJ_FAIL_ASSERT("the writer's output does not parse", error->message);
    }
    auto& doc2 = again.get<JsonDocument>();
    KJ_ASSERT(doc2.valueCount() == doc->valueCount());
    sameValue(doc->root(), doc2.root());
  } else {
    auto& message = parsed.get<JsonError>().message;
    KJ_ASSERT(message.startsWith("line "), message);
  }
}

}  // namespace
}  // namespace credvault::rest

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credvault::fuzz::runOne(
      [&]() { credvault::rest::fuzzOne(kj::arrayPtr(reinterpret_cast<const char*>(data), size)); });
  return 0;
}
