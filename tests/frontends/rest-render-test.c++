// Tests for frontends/rest/render: content negotiation, dates as .NET writes them, $select,
// and the JSON and XML bodies.

#include "frontends/rest/json.h"
#include "frontends/rest/render.h"
#include "frontends/xml/reader.h"
#include "ipc/client.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <string.h>

namespace credvault::rest {
namespace {

using frontends::OpResult;

Negotiated accept(kj::StringPtr value) {
  http::HttpRequest r;
  if (value != nullptr) r.headers.add(http::HttpHeader{"Accept", value});
  return negotiate(r);
}

TEST(Negotiate, PicksByAcceptWithJsonAsTheFallback) {
  EXPECT_EQ(accept(nullptr).format, Format::JSON);
  EXPECT_EQ(accept(nullptr).contentType, "application/json; charset=utf-8");
  EXPECT_EQ(accept("application/json").format, Format::JSON);
  EXPECT_EQ(accept("text/json").contentType, "text/json; charset=utf-8");
  EXPECT_EQ(accept("application/xml").contentType, "application/xml; charset=utf-8");
  EXPECT_EQ(accept("TEXT/XML; charset=utf-8").contentType, "text/xml; charset=utf-8");
  EXPECT_EQ(accept("*/*").format, Format::JSON);
  EXPECT_EQ(accept("text/html").format, Format::JSON);
  EXPECT_EQ(accept("text/html, application/xml;q=0.9, */*;q=0.8").format, Format::XML);
  EXPECT_EQ(accept("application/json;q=0.5, application/xml").format, Format::XML);
  EXPECT_EQ(accept("application/xml;q=0, application/json").format, Format::JSON);
  EXPECT_EQ(accept("application/xml;q=bogus").format, Format::JSON);
  EXPECT_EQ(accept("application/json, application/xml").format, Format::JSON);  // first wins
}

int64_t ticks(kj::StringPtr text) {
  return KJ_ASSERT_NONNULL(ipc::parseTicks(text));
}

TEST(Dates, WrittenAsDotNetWritesUtcAndMinValue) {
  EXPECT_EQ(formatDate(0), "0001-01-01T00:00:00Z");
  EXPECT_EQ(formatDate(ticks("2021-03-25T21:34:20Z")), "2021-03-25T21:34:20Z");
  EXPECT_EQ(formatDate(ticks("2019-07-14T03:24:48.5653818+02:00")), "2019-07-14T01:24:48.5653818Z");
  EXPECT_EQ(formatDate(ticks("2024-05-01T12:00:00.5Z")), "2024-05-01T12:00:00.5Z");
  EXPECT_EQ(formatDate(ticks("2024-05-01T12:00:00.0000001Z")), "2024-05-01T12:00:00.0000001Z");
  EXPECT_EQ(formatDate(ticks("1969-12-31T23:59:59Z")), "1969-12-31T23:59:59Z");
  EXPECT_EQ(formatDate(ticks("0001-01-01T00:00:01Z")), "0001-01-01T00:00:01Z");
  EXPECT_EQ(formatDate(ipc::MAX_TICKS), "9999-12-31T23:59:59.9999999Z");
  EXPECT_EQ(formatDate(ticks("2000-02-29T00:00:00Z")), "2000-02-29T00:00:00Z");
}

TEST(Dates, RoundTripThroughTheReader) {
  for (auto t : {"2024-05-01T12:00:00Z"_kj, "1900-03-01T01:02:03.4Z"_kj,
                 "2400-02-29T23:59:59.9999999Z"_kj}) {
    EXPECT_EQ(formatDate(ticks(t)), t);
  }
}

TEST(Select, ParsesCaseInsensitiveNamesAndIgnoresUnknownOnes) {
  auto all = parseSelect(nullptr);
  EXPECT_TRUE(all.all);
  auto s = parseSelect("publicvalue, Comment,nonsense,category/id"_kj);
  EXPECT_FALSE(s.all);
  EXPECT_TRUE(s.fields[PUBLIC_VALUE]);
  EXPECT_TRUE(s.fields[COMMENT]);
  EXPECT_FALSE(s.fields[SECRET_VALUE]);
  EXPECT_TRUE(parseSelect(""_kj).all);
  EXPECT_TRUE(parseSelect("FieldProperties/fieldName"_kj).fields[FIELD_PROPERTIES]);
}

// A Get answer as the daemon sends it.
OpResult sample() {
  OpResult out;
  auto list = out.initCredentials(2);
  auto a = list[0];
  a.setValidFrom(ticks("2021-03-25T21:34:20Z"));
  a.setComment("line1\nline2 \"q\" <&>");
  a.setSecretValue("s3cr\xc3\xa9t");
  a.setPublicValue("alice@example.org");
  a.setIsActive(true);
  list[1].setPublicValue("bob");  // withheld secret
  return out;
}

// Elements [from, to) of a list.
OpResult slice(const OpResult& all, capnp::uint from, capnp::uint to) {
  OpResult out;
  auto list = out.initCredentials(to - from);
  for (capnp::uint i = from; i < to; i++) list.setWithCaveats(i - from, all.credentials()[i]);
  return out;
}

OpResult one(kj::StringPtr secret) {
  OpResult out;
  out.initCredentials(1)[0].setSecretValue(secret);
  return out;
}

const capnp::List<rpc::Credential>::Reader NONE;

kj::String bodyOf(const http::HttpResponse& r) {
  return kj::str(r.body.chars());
}

TEST(Render, WritesJsonInPascalCaseAndCarrierOrder) {
  auto list = sample();
  auto r = renderCredentials(Negotiated{}, list.credentials(), true, Selection{});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.contentType, "application/json; charset=utf-8");
  EXPECT_EQ(bodyOf(r),
            "[{\"ValidFrom\":\"2021-03-25T21:34:20Z\",\"ValidTo\":\"0001-01-01T00:00:00Z\","
            "\"Comment\":\"line1\\nline2 \\\"q\\\" <&>\",\"SecretValue\":\"s3cr\xc3\xa9t\","
            "\"PublicValue\":\"alice@example.org\",\"IsActive\":true,\"TableRight\":null,"
            "\"FieldProperties\":{}},"
            "{\"ValidFrom\":\"0001-01-01T00:00:00Z\",\"ValidTo\":\"0001-01-01T00:00:00Z\","
            "\"Comment\":\"\",\"SecretValue\":\"\",\"PublicValue\":\"bob\",\"IsActive\":false,"
            "\"TableRight\":null,\"FieldProperties\":{}}]");
  auto one = renderCredentials(Negotiated{}, slice(list, 1, 2).credentials(), false, Selection{});
  EXPECT_TRUE(bodyOf(one).startsWith("{\"ValidFrom\""));
  auto empty = renderCredentials(Negotiated{}, NONE, true, Selection{});
  EXPECT_EQ(bodyOf(empty), "[]");
}

TEST(Render, SelectNullsOutTheOtherFields) {
  auto list = sample();
  auto r = renderCredentials(Negotiated{}, slice(list, 0, 1).credentials(), true,
                             parseSelect("PublicValue,isactive"_kj));
  EXPECT_EQ(bodyOf(r),
            "[{\"ValidFrom\":null,\"ValidTo\":null,\"Comment\":null,\"SecretValue\":null,"
            "\"PublicValue\":\"alice@example.org\",\"IsActive\":true,\"TableRight\":null,"
            "\"FieldProperties\":null}]");
}

TEST(Render, WritesDataContractXml) {
  auto list = sample();
  Negotiated n{Format::XML, "application/xml; charset=utf-8"};
  auto r = renderCredentials(n, list.credentials(), true,
                             parseSelect("PublicValue,Comment,SecretValue"_kj));
  auto text = bodyOf(r);
  auto parsed = xml::parse(text.asArray());
  ASSERT_TRUE(parsed.is<xml::Document>()) << text.cStr();
  auto& root = parsed.get<xml::Document>().root();
  constexpr kj::StringPtr NS =
      "http://schemas.datacontract.org/2004/07/SuperOffice.CRM.Services"_kj;
  EXPECT_TRUE(root.is(NS, "ArrayOfUntrustedCredentials"));
  ASSERT_EQ(root.children.size(), 2u);
  auto& first = *root.children[0];
  EXPECT_EQ(KJ_ASSERT_NONNULL(first.child(NS, "Comment")).text, "line1\nline2 \"q\" <&>");
  EXPECT_EQ(KJ_ASSERT_NONNULL(first.child(NS, "SecretValue")).text, "s3cr\xc3\xa9t");
  EXPECT_TRUE(KJ_ASSERT_NONNULL(first.child(NS, "ValidFrom")).isNil());
  EXPECT_TRUE(KJ_ASSERT_NONNULL(first.child(NS, "TableRight")).isNil());
  auto one = renderCredentials(n, slice(list, 0, 1).credentials(), false, Selection{});
  auto p1 = xml::parse(one.body.chars());
  auto& r1 = p1.get<xml::Document>().root();
  EXPECT_TRUE(r1.is(NS, "UntrustedCredentials"));
  EXPECT_EQ(KJ_ASSERT_NONNULL(r1.child(NS, "IsActive")).text, "true");
  EXPECT_EQ(KJ_ASSERT_NONNULL(r1.child(NS, "ValidFrom")).text, "2021-03-25T21:34:20Z");
  auto empty = renderCredentials(n, NONE, true, Selection{});
  EXPECT_TRUE(xml::parse(empty.body.chars()).is<xml::Document>());
}

TEST(Render, RefusesToAlterASecretItCannotCarry) {
  auto list =
      one("a\x01"
          "b");  // fine in JSON, impossible in XML 1.0
  EXPECT_EQ(renderCredentials(Negotiated{}, list.credentials(), true, Selection{}).status, 200u);
  auto x = renderCredentials(Negotiated{Format::XML, "text/xml; charset=utf-8"}, list.credentials(),
                             true, Selection{});
  EXPECT_EQ(x.status, 500u);
  EXPECT_TRUE(strstr(bodyOf(x).cStr(), "a\x01") == nullptr);
  auto bad = one("\xff");
  EXPECT_EQ(renderCredentials(Negotiated{}, bad.credentials(), true, Selection{}).status, 500u);
}

TEST(Render, WritesErrorsInTheNegotiatedFormat) {
  auto j = renderError(Negotiated{}, 400, "The request is invalid.", "Type is required");
  EXPECT_EQ(j.status, 400u);
  EXPECT_EQ(bodyOf(j),
            "{\"Message\":\"The request is invalid.\",\"MessageDetail\":\"Type is required\"}");
  auto x = renderError(Negotiated{Format::XML, "text/xml; charset=utf-8"}, 403, "No", "<why>");
  EXPECT_EQ(x.contentType, "text/xml; charset=utf-8");
  EXPECT_EQ(bodyOf(x),
            "<Error><Message>No</Message><MessageDetail>&lt;why&gt;</MessageDetail></Error>");
}

}  // namespace
}  // namespace credvault::rest
