#include "base/json-writer.h"

#include <gtest/gtest.h>
#include <string>

namespace credvault::base {
namespace {

std::string textOf(const JsonWriter& w) {
  return std::string(w.text().begin(), w.text().size());
}

TEST(JsonWriter, WritesNestedContainersWithCommas) {
  JsonWriter w;
  w.beginObject();
  w.key("A").integer(-5);
  w.key("B").beginArray().boolean(true).null().string("x").endArray();
  w.key("C").beginObject().endObject();
  w.endObject();
  EXPECT_TRUE(w.complete());
  EXPECT_EQ(textOf(w), R"({"A":-5,"B":[true,null,"x"],"C":{}})");
}

TEST(JsonWriter, EscapesWhatJsonRequiresAndLineSeparators) {
  EXPECT_EQ(std::string(jsonQuote("a\"b\\c").cStr()), R"("a\"b\\c")");
  EXPECT_EQ(std::string(jsonQuote("t\tn\nr\rb\bf\f").cStr()), R"("t\tn\nr\rb\bf\f")");
  EXPECT_EQ(std::string(jsonQuote(kj::StringPtr("\x01\x1f\x7f", 3)).cStr()),
            R"("\u0001\u001f\u007f")");
  EXPECT_EQ(std::string(jsonQuote("\xe2\x80\xa8|\xe2\x80\xa9").cStr()), R"("\u2028|\u2029")");
  // Valid multi-byte UTF-8 passes as it is; a leading dash is just a character.
  EXPECT_EQ(std::string(jsonQuote("-é€𝄞").cStr()), "\"-é€𝄞\"");
  auto nul = kj::heapArray<char>({'a', '\0', 'b'});
  EXPECT_EQ(std::string(jsonQuote(nul).cStr()), R"("a\u0000b")");
}

TEST(JsonWriter, InvalidUtf8BecomesReplacementAndMarksLossy) {
  JsonWriter w;
  w.string(
      kj::StringPtr("a\xff"
                    "b\xc0\xafz\xed\xa0\x80"));
  EXPECT_TRUE(w.lossy());
  EXPECT_EQ(textOf(w), R"("a\ufffdb\ufffd\ufffdz\ufffd\ufffd\ufffd")");
  JsonWriter ok;
  ok.string("fine");
  EXPECT_FALSE(ok.lossy());
}

TEST(JsonWriter, MisuseIsABug) {
  {
    JsonWriter w;
    w.beginObject();
    EXPECT_ANY_THROW(w.string("value without a key"));
  }
  {
    JsonWriter w;
    w.beginArray();
    EXPECT_ANY_THROW(w.key("k"));
  }
  {
    JsonWriter w;
    w.integer(1);
    EXPECT_ANY_THROW(w.integer(2));
  }
  {
    JsonWriter w;
    w.beginArray();
    EXPECT_ANY_THROW(w.endObject());
    EXPECT_FALSE(w.complete());
  }
}

TEST(JsonWriter, LongStringsGrowTheBuffer) {
  std::string big(100000, 'x');
  big[50000] = '\n';
  JsonWriter w;
  w.beginArray().string(kj::StringPtr(big.c_str())).string("y").endArray();
  auto text = textOf(w);
  EXPECT_EQ(text.size(), 2 + big.size() + 1 + 1 + 4 + 1);  // [" big(\n→\\n) " ,"y" ]
  EXPECT_EQ(text.substr(text.size() - 5), R"(,"y"])");
}

TEST(JsonWriter, WireFlavourDiffersOnlyInDelAndTheReplacement) {
  // The gateway's bytes: DEL and U+FFFD as themselves; everything else as TERMINAL writes it.
  JsonWriter wire(JsonFlavor::WIRE), terminal;
  for (auto* w : {&wire, &terminal}) {
    w->beginArray()
        .string(kj::StringPtr("\x7f\x1f\"\\\n\xe2\x80\xa8 \xc3\xa9"))
        .string(kj::StringPtr("a\xff"))
        .endArray();
  }
  EXPECT_EQ(textOf(wire), "[\"\x7f\\u001f\\\"\\\\\\n\\u2028 \xc3\xa9\",\"a\xef\xbf\xbd\"]");
  EXPECT_EQ(textOf(terminal), R"(["\u007f\u001f\"\\\n\u2028 )"
                              "\xc3\xa9"
                              R"(","a\ufffd"])");
  EXPECT_TRUE(wire.lossy());
  EXPECT_TRUE(terminal.lossy());
}

TEST(JsonWriter, RawAndFinish) {
  JsonWriter w(JsonFlavor::WIRE);
  w.beginObject().key("P").raw(R"([{"a":1}])").key("Q").raw("{}").endObject();
  EXPECT_EQ(w.size(), textOf(w).size());
  auto out = w.finish();
  EXPECT_EQ(std::string(out.begin(), out.size()), R"({"P":[{"a":1}],"Q":{}})");
  // Empty and reusable afterwards.
  EXPECT_EQ(w.size(), 0u);
  EXPECT_FALSE(w.complete());
  w.integer(7);
  EXPECT_TRUE(w.complete());
  EXPECT_EQ(textOf(w), "7");
}

}  // namespace
}  // namespace credvault::base
