// Tests for frontends/xml: namespaces, entities, encodings, limits, and a hostile corpus.

#include "frontends/xml/reader.h"
#include "frontends/xml/writer.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <string.h>

namespace credvault::xml {
namespace {

kj::OneOf<Document, ParseError> parseText(kj::StringPtr text, XmlLimits limits = {}) {
  return parse(text.asArray(), limits);
}

// The error message, or "" on success.
kj::String errorOf(kj::StringPtr text, XmlLimits limits = {}) {
  auto r = parseText(text, limits);
  KJ_IF_MAYBE(e, r.tryGet<ParseError>()) { return kj::mv(e->message); }
  return kj::str();
}

bool contains(kj::StringPtr haystack, kj::StringPtr needle) {
  return strstr(haystack.cStr(), needle.cStr()) != nullptr;
}

constexpr kj::StringPtr NS86 = "http://www.superoffice.net/ws/crm/NetServer/Services86"_kj;
constexpr kj::StringPtr SOAP12 = "http://www.w3.org/2003/05/soap-envelope"_kj;

TEST(XmlReader, ResolvesPrefixesAndDefaultNamespaces) {
  auto r = parseText(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\"\n"
      " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n"
      " xmlns:User=\"http://www.superoffice.net/ws/crm/NetServer/Services86\">\n"
      " <SOAP-ENV:Body>\n"
      "  <GetUntrustedCredentials xmlns=\"http://www.superoffice.net/ws/crm/NetServer/Services86\">"
      "<Type xsi:type=\"xsd:string\">imap</Type><User:Other xsi:nil=\"true\"/>"
      "<x:Deep xmlns:x=\"urn:x\"><Inner xmlns=\"\">t</Inner></x:Deep>"
      "</GetUntrustedCredentials>\n"
      " </SOAP-ENV:Body>\n"
      "</SOAP-ENV:Envelope>\n");
  ASSERT_TRUE(r.is<Document>());
  auto& root = r.get<Document>().root();
  EXPECT_TRUE(root.is(SOAP12, "Envelope"));
  EXPECT_EQ(root.prefix, "SOAP-ENV");
  auto& body = KJ_ASSERT_NONNULL(root.child(SOAP12, "Body"));
  EXPECT_EQ(body.text, "");
  ASSERT_EQ(body.children.size(), 1u);
  auto& op = *body.children[0];
  EXPECT_TRUE(op.is(NS86, "GetUntrustedCredentials"));
  auto& type = KJ_ASSERT_NONNULL(op.child(NS86, "Type"));
  EXPECT_EQ(type.text, "imap");
  EXPECT_EQ(KJ_ASSERT_NONNULL(type.attribute(XSI_NS, "type")), "xsd:string");
  EXPECT_TRUE(KJ_ASSERT_NONNULL(op.child(NS86, "Other")).isNil());
  EXPECT_FALSE(type.isNil());
  auto& deep = KJ_ASSERT_NONNULL(op.child("urn:x", "Deep"));
  EXPECT_EQ(KJ_ASSERT_NONNULL(deep.child("", "Inner")).text, "t");
  EXPECT_EQ(type.line, 6u);
}

TEST(XmlReader, DecodesPredefinedEntitiesCharRefsAndCdata) {
  auto r = parseText(
      "<a>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#x20AC;&#x1F600;"
      "<![CDATA[<&>]]>x\r\ny</a>");
  ASSERT_TRUE(r.is<Document>());
  EXPECT_EQ(r.get<Document>().root().text, "<>&\"'AB\xe2\x82\xac\xf0\x9f\x98\x80<&>x\ny");
  auto a = parseText("<a b=\"x&#10;y\tz&amp;\" c='\"'/>");
  ASSERT_TRUE(a.is<Document>());
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.get<Document>().root().attribute("", "b")), "x\ny z&");
  EXPECT_EQ(KJ_ASSERT_NONNULL(a.get<Document>().root().attribute("", "c")), "\"");
}

TEST(XmlReader, AcceptsBomCommentsAndProcessingInstructions) {
  auto r = parseText(
      "\xef\xbb\xbf<?xml version='1.0'?><!-- c --><?pi x?><a><!-- in -->t<?p?>u</a>"
      "<!-- after -->\n");
  ASSERT_TRUE(r.is<Document>());
  EXPECT_EQ(r.get<Document>().root().text, "tu");
}

TEST(XmlReader, RejectsDtdsAndEntityTricks) {
  // Billion laughs.
  EXPECT_TRUE(contains(
      errorOf("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
              "<!ENTITY lol2 "
              "\"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>\n<lolz>&lol2;</lolz>"),
      "line 2: DTDs are not allowed"));
  // XXE.
  EXPECT_TRUE(contains(errorOf("<!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
                               "<foo>&xxe;</foo>"),
                       "DTDs are not allowed"));
  EXPECT_TRUE(contains(errorOf("<a>&xxe;</a>"), "undefined entity"));
  EXPECT_TRUE(contains(errorOf("<a>&#0;</a>"), "does not allow"));
  EXPECT_TRUE(contains(errorOf("<a>&#x110000;</a>"), "out of range"));
  EXPECT_TRUE(contains(errorOf("<a>&#xD800;</a>"), "does not allow"));
  EXPECT_TRUE(contains(errorOf("<a>&amp</a>"), "malformed reference"));
  EXPECT_TRUE(contains(errorOf("<a><!DOCTYPE x></a>"), "DTDs are not allowed"));
  EXPECT_TRUE(contains(errorOf("<a/><!DOCTYPE x>"), "DTDs are not allowed"));
  EXPECT_TRUE(contains(errorOf("<a><!ENTITY x \"y\"></a>"), "markup declarations"));
  EXPECT_TRUE(contains(errorOf("<a b=\"&ext;\"/>"), "undefined entity"));
}

TEST(XmlReader, RejectsOtherEncodingsAndBadCharacters) {
  EXPECT_TRUE(contains(errorOf("<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>"), "only UTF-8"));
  EXPECT_TRUE(
      contains(errorOf("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>"), "only UTF-8"));
  EXPECT_TRUE(contains(errorOf(kj::StringPtr("\xff\xfe<\0a\0/\0>\0", 10)), "only UTF-8"));
  EXPECT_TRUE(contains(errorOf("<a>\xc3\x28</a>"), "invalid UTF-8"));
  EXPECT_TRUE(contains(errorOf("<a>\xc0\xaf</a>"), "invalid UTF-8"));      // overlong '/'
  EXPECT_TRUE(contains(errorOf("<a>\xed\xa0\x80</a>"), "invalid UTF-8"));  // surrogate
  EXPECT_TRUE(contains(errorOf("<a>\x01</a>"), "not allowed in XML"));
  EXPECT_TRUE(contains(errorOf("<?xml version=\"1.1\"?><a/>"), "only XML 1.0"));
  EXPECT_TRUE(contains(errorOf("<a/><?xml version=\"1.0\"?>"), "only allowed at the start"));
}

TEST(XmlReader, RejectsMalformedDocuments) {
  EXPECT_TRUE(contains(errorOf(""), "no root element"));
  EXPECT_TRUE(contains(errorOf("text"), "text before the root"));
  EXPECT_TRUE(contains(errorOf("<a>"), "unclosed element"));
  EXPECT_TRUE(contains(errorOf("<a></b>"), "does not match"));
  EXPECT_TRUE(contains(errorOf("<a/><b/>"), "after the root"));
  EXPECT_TRUE(contains(errorOf("<a/>x"), "after the root"));
  EXPECT_TRUE(contains(errorOf("<a b=c/>"), "quoted"));
  EXPECT_TRUE(contains(errorOf("<a b=\"1\" b=\"2\"/>"), "duplicate attribute"));
  EXPECT_TRUE(contains(errorOf("<a xmlns:p=\"u\" xmlns:q=\"u\" p:b=\"1\" q:b=\"2\"/>"),
                       "duplicate attribute"));
  EXPECT_TRUE(contains(errorOf("<a b=\"1\"c=\"2\"/>"), "whitespace"));
  EXPECT_TRUE(contains(errorOf("<p:a/>"), "unbound namespace prefix"));
  EXPECT_TRUE(contains(errorOf("<a p:b=\"1\"/>"), "unbound namespace prefix"));
  EXPECT_TRUE(contains(errorOf("<a xmlns:p=\"\"/>"), "no namespace"));
  EXPECT_TRUE(contains(errorOf("<a xmlns:xmlns=\"u\"/>"), "xmlns prefix"));
  EXPECT_TRUE(contains(errorOf("<a>x<b/></a>"), "mixed content"));
  EXPECT_TRUE(contains(errorOf("<a><b/>x</a>"), "mixed content"));
  EXPECT_TRUE(contains(errorOf("<a>]]></a>"), "']]>'"));
  EXPECT_TRUE(contains(errorOf("<a><![CDATA[x</a>"), "unterminated CDATA"));
  EXPECT_TRUE(contains(errorOf("<a><!-- x</a>"), "unterminated comment"));
  EXPECT_TRUE(contains(errorOf("<a b=\"<\"/>"), "'<' in attribute"));
  EXPECT_TRUE(contains(errorOf("<1a/>"), "malformed name"));
  EXPECT_TRUE(contains(errorOf("<a:b:c xmlns:a=\"u\"/>"), "malformed name"));
  EXPECT_TRUE(contains(errorOf("<a:/>"), "malformed name"));
}

TEST(XmlReader, PrefixScopeEndsWithElement) {
  EXPECT_TRUE(contains(errorOf("<r><a xmlns:p=\"u\"><p:b/></a><p:c/></r>"), "unbound"));
  auto r = parseText("<r xmlns=\"u1\"><a xmlns=\"u2\"/><b/></r>");
  ASSERT_TRUE(r.is<Document>());
  auto& root = r.get<Document>().root();
  EXPECT_EQ(root.children[0]->ns, "u2");
  EXPECT_EQ(root.children[1]->ns, "u1");
}

TEST(XmlLimits, DepthAtLimitAndOnePast) {
  XmlLimits limits;
  limits.maxDepth = 4;
  EXPECT_EQ(errorOf("<a><a><a><a/></a></a></a>", limits), "");
  EXPECT_TRUE(contains(errorOf("<a><a><a><a><a/></a></a></a></a>", limits), "nested too deeply"));
  // The default limit against a very deep document.
  kj::String deep = kj::str(kj::strArray(
      KJ_MAP(i, kj::zeroTo(100000)) { return "<a>"; }, ""));
  EXPECT_TRUE(contains(errorOf(deep), "nested too deeply"));
}

TEST(XmlLimits, ElementsAtLimitAndOnePast) {
  XmlLimits limits;
  limits.maxElements = 4;
  EXPECT_EQ(errorOf("<r><a/><a/><a/></r>", limits), "");
  EXPECT_TRUE(contains(errorOf("<r><a/><a/><a/><a/></r>", limits), "too many elements"));
}

TEST(XmlLimits, TextAtLimitAndOnePast) {
  XmlLimits limits;
  limits.maxTextBytes = 10;
  EXPECT_EQ(errorOf("<a>0123456789</a>", limits), "");
  EXPECT_TRUE(contains(errorOf("<a>0123456789x</a>", limits), "text too large"));
  EXPECT_TRUE(contains(errorOf("<a>01234<![CDATA[56789x]]></a>", limits), "text too large"));
  EXPECT_TRUE(contains(errorOf("<a>0123456789&amp;</a>", limits), "text too large"));
  // A huge text under the default limit.
  kj::String huge = kj::str("<a>", kj::repeat('x', 1024 * 1024), "</a>");
  EXPECT_TRUE(contains(errorOf(huge), "text too large"));
}

TEST(XmlLimits, AttributesAtLimitAndOnePast) {
  XmlLimits limits;
  limits.maxAttributes = 2;
  limits.maxAttributeBytes = 5;
  limits.maxNameBytes = 3;
  EXPECT_EQ(errorOf("<a b=\"12345\" c=\"\"/>", limits), "");
  EXPECT_TRUE(contains(errorOf("<a b=\"1\" c=\"2\" d=\"3\"/>", limits), "too many attributes"));
  EXPECT_TRUE(contains(errorOf("<a b=\"123456\"/>", limits), "attribute too long"));
  EXPECT_EQ(errorOf("<abc/>", limits), "");
  EXPECT_TRUE(contains(errorOf("<abcd/>", limits), "name too long"));
}

TEST(XmlLimits, NamespaceDeclarationsInScopeAtLimitAndOnePast) {
  XmlLimits limits;
  limits.maxNamespaces = 3;
  EXPECT_EQ(errorOf("<a xmlns='u' xmlns:b='v'><c xmlns:d='w'/><e xmlns:f='x'/></a>", limits), "");
  EXPECT_TRUE(contains(errorOf("<a xmlns='u' xmlns:b='v'><c xmlns:d='w' xmlns:e='x'/></a>", limits),
                       "too many namespace declarations"));
  // The default admits a realistic envelope and refuses a body built to make lookups dear.
  kj::Vector<kj::String> parts;
  parts.add(kj::str("<a"));
  for (int i = 0; i < 60; i++) parts.add(kj::str(" xmlns:p", i, "='urn:", i, "'"));
  parts.add(kj::str(">"));
  for (int depth = 0; depth < 3; depth++) {
    parts.add(kj::str("<b"));
    for (int i = 0; i < 60; i++) parts.add(kj::str(" xmlns:q", depth, "x", i, "='urn:q'"));
    parts.add(kj::str(">"));
  }
  parts.add(kj::str("</b></b></b></a>"));
  EXPECT_TRUE(contains(errorOf(kj::strArray(parts, "")), "too many namespace declarations"));
  EXPECT_EQ(errorOf("<s:Envelope xmlns:s='urn:s' xmlns:xsi='urn:i' xmlns:xsd='urn:d'>"
                    "<s:Body><U:Op xmlns:U='urn:u'/></s:Body></s:Envelope>"),
            "");
}

TEST(XmlReader, ErrorsNeverQuoteContent) {
  auto message = errorOf("<a><Password>hunter2</Password>&secret;</a>");
  EXPECT_FALSE(contains(message, "hunter2"));
  EXPECT_FALSE(contains(message, "secret"));
}

TEST(XmlWriter, EscapesTextAndAttributes) {
  XmlWriter w;
  w.start("a:b").attr("x", "\"<&>'\t\n").text("<&>\"'\r\n").end();
  w.element("c", "");
  auto out = w.finish();
  EXPECT_EQ(kj::heapString(out.asChars()),
            "<a:b x=\"&quot;&lt;&amp;&gt;'&#9;&#10;\">&lt;&amp;&gt;\"'&#13;\n</a:b>"
            "<c></c>");
  EXPECT_FALSE(w.lossy());
}

TEST(XmlWriter, MarksUnrepresentableCharactersLossy) {
  XmlWriter w;
  w.start("a").text("x\x01y").end();
  EXPECT_TRUE(w.lossy());
  EXPECT_EQ(kj::heapString(w.finish().asChars()), "<a>x\xef\xbf\xbdy</a>");
  XmlWriter w2;
  w2.start("a").text("\xe2\x82\xac \xf0\x9f\x98\x80").end();
  w2.start("b").endEmpty();
  EXPECT_EQ(kj::heapString(w2.finish().asChars()), "<a>\xe2\x82\xac \xf0\x9f\x98\x80</a><b/>");
  EXPECT_FALSE(w2.lossy());
}

TEST(XmlWriter, RoundTripsThroughTheReader) {
  kj::StringPtr tricky = "a<b>&c\"d'e\r\nf\tg \xe2\x82\xac";
  XmlWriter w;
  w.start("r").attr("v", tricky).text(tricky).end();
  auto bytes = w.finish();
  auto r = parse(bytes.asChars());
  ASSERT_TRUE(r.is<Document>());
  EXPECT_EQ(r.get<Document>().root().text, tricky);
  EXPECT_EQ(KJ_ASSERT_NONNULL(r.get<Document>().root().attribute("", "v")), tricky);
}

}  // namespace
}  // namespace credvault::xml
