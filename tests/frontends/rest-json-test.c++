// Tests for frontends/rest/json: the strict reader (every refusal, every limit at the limit
// and one past it) and the writer's escaping.

#include "frontends/rest/json.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <string>

namespace credvault::rest {
namespace {

using Type = JsonValue::Type;

JsonDocument ok(kj::StringPtr text, JsonLimits limits = {}) {
  auto r = parseJson(text.asArray(), limits);
  KJ_IF_MAYBE(e, r.tryGet<JsonError>()) {
    ADD_FAILURE() << "unexpected error for " << text.cStr() << ": " << e->message.cStr();
    auto fallback = parseJson("null"_kj.asArray());
    return kj::mv(fallback.get<JsonDocument>());
  }
  return kj::mv(r.get<JsonDocument>());
}

// The error message, or "" when the text parsed.
std::string errBytes(kj::ArrayPtr<const char> text, JsonLimits limits = {}) {
  auto r = parseJson(text, limits);
  KJ_IF_MAYBE(e, r.tryGet<JsonError>()) { return e->message.cStr(); }
  return "";
}
std::string err(kj::StringPtr text, JsonLimits limits = {}) {
  return errBytes(text.asArray(), limits);
}

bool has(const std::string& s, const char* needle) {
  return s.find(needle) != std::string::npos;
}

std::string nested(int depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

TEST(JsonReader, ReadsEveryKindOfValue) {
  auto doc = ok(R"( {"a": [1, -2.5e+3, true, false, null, "x"], "B": {}} )");
  auto& root = doc.root();
  ASSERT_EQ(root.type, Type::OBJECT);
  auto& a = KJ_ASSERT_NONNULL(root.member("A"));
  ASSERT_EQ(a.type, Type::ARRAY);
  ASSERT_EQ(a.items.size(), 6u);
  EXPECT_EQ(a.items[0]->text, "1");
  EXPECT_EQ(a.items[1]->text, "-2.5e+3");
  EXPECT_TRUE(a.items[2]->boolean);
  EXPECT_EQ(a.items[3]->type, Type::BOOLEAN);
  EXPECT_FALSE(a.items[3]->boolean);
  EXPECT_EQ(a.items[4]->type, Type::NUL);
  EXPECT_EQ(a.items[5]->text, "x");
  EXPECT_EQ(KJ_ASSERT_NONNULL(root.member("b")).type, Type::OBJECT);
  EXPECT_TRUE(root.member("c") == nullptr);
}

TEST(JsonReader, MatchesMemberNamesCaseInsensitively) {
  auto doc = ok(R"({"associateId": 5, "TYPE": "imap"})");
  EXPECT_EQ(KJ_ASSERT_NONNULL(doc.root().member("AssociateId")).text, "5");
  EXPECT_EQ(KJ_ASSERT_NONNULL(doc.root().member("type")).text, "imap");
}

TEST(JsonReader, DecodesEscapesAndSurrogatePairs) {
  auto doc = ok(R"(["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u20ac", "\ud83d\ude00", "é€😀"])");
  auto& items = doc.root().items;
  EXPECT_EQ(items[0]->text, "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(items[1]->text, "\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(items[2]->text, "\xf0\x9f\x98\x80");
  EXPECT_EQ(items[3]->text, "é€😀");
}

TEST(JsonReader, SkipsAByteOrderMark) {
  auto doc = ok("\xef\xbb\xbf{\"a\":1}");
  EXPECT_EQ(doc.root().type, Type::OBJECT);
}

TEST(JsonReader, AcceptsAnyTopLevelValue) {
  EXPECT_EQ(ok("null").root().type, Type::NUL);
  EXPECT_EQ(ok(" 0 ").root().text, "0");
  EXPECT_EQ(ok("\"s\"").root().text, "s");
}

TEST(JsonReader, RefusesMalformedDocuments) {
  EXPECT_TRUE(has(err(""), "empty"));
  EXPECT_TRUE(has(err("   "), "empty"));
  EXPECT_TRUE(has(err("{"), "end of input"));
  EXPECT_TRUE(has(err("{\"a\" 1}"), "':'"));
  EXPECT_TRUE(has(err("{\"a\":1,}"), "member name"));
  EXPECT_TRUE(has(err("[1,]"), "expected a JSON value"));
  EXPECT_TRUE(has(err("[1 2]"), "',' or ']'"));
  EXPECT_TRUE(has(err("{a:1}"), "member name"));
  EXPECT_TRUE(has(err("{'a':1}"), "member name"));
  EXPECT_TRUE(has(err("{} {}"), "after the JSON value"));
  EXPECT_TRUE(has(err("tru"), "expected a JSON value"));
  EXPECT_TRUE(has(err("nul"), "expected a JSON value"));
  EXPECT_TRUE(has(err("[1] // comment"), "after the JSON value"));
  EXPECT_TRUE(has(err("/* c */ 1"), "expected a JSON value"));
  EXPECT_TRUE(has(err("\"abc"), "unterminated"));
}

TEST(JsonReader, RefusesNonJsonNumbers) {
  EXPECT_TRUE(has(err("01"), "leading zeros"));
  EXPECT_TRUE(has(err("-"), "digit must follow '-'"));
  EXPECT_TRUE(has(err("+1"), "expected a JSON value"));
  EXPECT_TRUE(has(err("1."), "digit must follow '.'"));
  EXPECT_TRUE(has(err(".5"), "expected a JSON value"));
  EXPECT_TRUE(has(err("1e"), "exponent"));
  EXPECT_TRUE(has(err("NaN"), "expected a JSON value"));
  EXPECT_TRUE(has(err("Infinity"), "expected a JSON value"));
  EXPECT_TRUE(has(err("-Infinity"), "digit must follow '-'"));
  EXPECT_TRUE(has(err("0x10"), "after the JSON value"));
}

TEST(JsonReader, RefusesHugeNumbersPastTheLimit) {
  JsonLimits limits;
  std::string atLimit(limits.maxNumberChars, '9');
  std::string past(limits.maxNumberChars + 1, '9');
  EXPECT_EQ(err(kj::StringPtr(atLimit.c_str())), "");
  EXPECT_TRUE(has(err(kj::StringPtr(past.c_str())), "number too long"));
  // Huge but short numbers parse; range is the binder's business.
  EXPECT_EQ(err("1e999999"), "");
}

TEST(JsonReader, RefusesDuplicateMemberNamesIgnoringCase) {
  EXPECT_TRUE(has(err(R"({"Type":"a","Type":"b"})"), "duplicate member name 'Type'"));
  EXPECT_TRUE(has(err(R"({"Type":"a","type":"b"})"), "duplicate member name 'type'"));
  EXPECT_TRUE(has(err(R"({"a":{"x":1,"X":2}})"), "duplicate"));
  // A name that is not an identifier is not quoted back.
  auto e = err("{\"p\xc3\xa4ss\":1,\"P\xc3\xa4ss\":2}");
  EXPECT_TRUE(has(e, "duplicate member name"));
  EXPECT_FALSE(has(e, "ss"));
  // Different names in different objects are fine.
  EXPECT_EQ(err(R"({"a":{"x":1},"b":{"x":2}})"), "");
}

TEST(JsonReader, RefusesInvalidUtf8) {
  EXPECT_TRUE(has(err("\"\xff\""), "invalid UTF-8"));
  EXPECT_TRUE(has(err("\"\xc3\""), "invalid UTF-8"));              // truncated
  EXPECT_TRUE(has(err("\"\xc0\xaf\""), "invalid UTF-8"));          // overlong '/'
  EXPECT_TRUE(has(err("\"\xed\xa0\x80\""), "invalid UTF-8"));      // encoded surrogate
  EXPECT_TRUE(has(err("\"\xf4\x90\x80\x80\""), "invalid UTF-8"));  // > U+10FFFF
  EXPECT_TRUE(has(err("{\"\xfe\":1}"), "invalid UTF-8"));          // in a name
}

TEST(JsonReader, RefusesBadEscapesAndControlCharacters) {
  EXPECT_TRUE(has(err(R"("\x41")"), "invalid escape"));
  EXPECT_TRUE(has(err(R"("\u12")"), "four hex digits"));
  EXPECT_TRUE(has(err(R"("\ud800")"), "unpaired high surrogate"));
  EXPECT_TRUE(has(err(R"("\ud800\u0041")"), "unpaired high surrogate"));
  EXPECT_TRUE(has(err(R"("\udc00")"), "unpaired low surrogate"));
  EXPECT_TRUE(has(err(R"("\u0000")"), "U+0000"));
  EXPECT_TRUE(has(err("\"a\nb\""), "control character"));
  EXPECT_TRUE(has(errBytes(kj::arrayPtr("\"a\0b\"", 5)), "control character"));
}

TEST(JsonReader, NestingAtTheLimitAndOnePast) {
  JsonLimits limits;
  EXPECT_EQ(err(kj::StringPtr(nested(limits.maxDepth).c_str())), "");
  EXPECT_TRUE(has(err(kj::StringPtr(nested(limits.maxDepth + 1).c_str())), "nesting too deep"));
  // A hostile depth fails fast, without recursing that deep.
  EXPECT_TRUE(has(err(kj::StringPtr(std::string(1000000, '[').c_str())), "nesting too deep"));
  std::string objects;
  for (uint32_t i = 0; i < limits.maxDepth + 1; i++) objects += "{\"a\":";
  objects += "1";
  for (uint32_t i = 0; i < limits.maxDepth + 1; i++) objects += "}";
  EXPECT_TRUE(has(err(kj::StringPtr(objects.c_str())), "nesting too deep"));
}

TEST(JsonReader, ValueCountAtTheLimitAndOnePast) {
  JsonLimits limits;
  limits.maxValues = 10;
  EXPECT_EQ(err("[1,2,3,4,5,6,7,8,9]", limits), "");  // 10 values with the array
  EXPECT_TRUE(has(err("[1,2,3,4,5,6,7,8,9,10]", limits), "too many values"));
}

TEST(JsonReader, MembersAtTheLimitAndOnePast) {
  JsonLimits limits;
  limits.maxMembers = 3;
  EXPECT_EQ(err(R"({"a":1,"b":2,"c":3})", limits), "");
  EXPECT_TRUE(has(err(R"({"a":1,"b":2,"c":3,"d":4})", limits), "too many members"));
}

TEST(JsonReader, StringSizeAtTheLimitAndOnePast) {
  JsonLimits limits;
  limits.maxStringBytes = 8;
  EXPECT_EQ(err(R"("12345678")", limits), "");
  EXPECT_TRUE(has(err(R"("123456789")", limits), "string too long"));
  EXPECT_TRUE(has(err(R"("1234567\u00e9")", limits), "string too long"));  // 9 bytes decoded
}

TEST(JsonReader, ErrorsNameLineAndColumnButNeverContent) {
  auto e = err("{\n  \"SecretValue\": \"hunter2\",\n  \"x\": hunter3\n}");
  EXPECT_TRUE(has(e, "line 3, column 8")) << e;
  EXPECT_FALSE(has(e, "hunter"));
}

TEST(JsonReader, ColumnsAfterLongLinesAndRewinds) {
  EXPECT_TRUE(has(err("[1, \"\xc3\xa9\xc3\xa9\", 2,\n 3, x]"), "line 2, column 5"));
  // Duplicate names are reported at the name, behind where the reader had got to.
  EXPECT_TRUE(has(err(R"({"ab":[1,2,3], "AB":1})"), "line 1, column 16"));
  EXPECT_TRUE(has(err("[\"" + std::string(1000, 'x') + "\", 1, y]"), "line 1, column 1009"));
}

TEST(JsonWriter, WritesCompactJsonWithEscapes) {
  JsonWriter w;
  w.beginObject();
  w.key("A").string("q\"b\\s\n\t\x01\xe2\x80\xa8\xc3\xa9");
  w.key("B").beginArray().integer(-5).boolean(true).null().endArray();
  w.key("C").beginObject().endObject();
  w.key("D").raw("{}");
  w.endObject();
  EXPECT_FALSE(w.lossy());
  auto out = w.finish();
  EXPECT_EQ(kj::str(out.chars()),
            "{\"A\":\"q\\\"b\\\\s\\n\\t\\u0001\\u2028\xc3\xa9\",\"B\":[-5,true,null],"
            "\"C\":{},\"D\":{}}");
}

TEST(JsonWriter, MarksInvalidUtf8AsLossy) {
  JsonWriter w;
  w.string("a\xff");
  EXPECT_TRUE(w.lossy());
  EXPECT_EQ(kj::str(w.finish().chars()), "\"a\xef\xbf\xbd\"");
}

TEST(JsonWriter, OutputReadsBack) {
  JsonWriter w;
  w.beginArray().string("\x7f\x1f\"").string("😀").endArray();
  auto bytes = w.finish();
  auto doc = ok(kj::str(bytes.chars()));
  EXPECT_EQ(doc.root().items[0]->text, "\x7f\x1f\"");
  EXPECT_EQ(doc.root().items[1]->text, "😀");
}

}  // namespace
}  // namespace credvault::rest
