// Tests for frontends/rest/form and frontends/rest/binding: form decoding, binding each body
// type to the operations' parameters, and reading the Authorization header.

#include "frontends/rest/auth.h"
#include "frontends/rest/binding.h"
#include "frontends/rest/form.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/encoding.h>
#include <string.h>
#include <string>
#include <utility>

namespace credvault::rest {
namespace {

using frontends::Caller;
using frontends::Op;
using frontends::OpRequest;

bool has(kj::StringPtr s, kj::StringPtr needle) {
  return std::string(s.cStr()).find(needle.cStr()) != std::string::npos;
}

// ---- form ---------------------------------------------------------------------------------

TEST(Form, DecodesPlusPercentAndEmptyValues) {
  auto r = parseForm("Type=i%6Dap&Comment=a+b%20c&Empty=&Bare&&x=%C3%A9"_kj.asArray());
  ASSERT_TRUE(r.is<FormData>()) << r.get<FormError>().message.cStr();
  auto& f = r.get<FormData>();
  EXPECT_EQ(KJ_ASSERT_NONNULL(f.get("type")), "imap");
  EXPECT_EQ(KJ_ASSERT_NONNULL(f.get("COMMENT")), "a b c");
  EXPECT_EQ(KJ_ASSERT_NONNULL(f.get("Empty")), "");
  EXPECT_EQ(KJ_ASSERT_NONNULL(f.get("Bare")), "");
  EXPECT_EQ(KJ_ASSERT_NONNULL(f.get("x")), "\xc3\xa9");
  EXPECT_EQ(f.fields().size(), 5u);
}

std::string formError(kj::StringPtr text, uint32_t max = frontends::FORM_MAX_FIELDS) {
  auto r = parseForm(text.asArray(), max);
  KJ_IF_MAYBE(e, r.tryGet<FormError>()) { return e->message.cStr(); }
  return "";
}

TEST(Form, RefusesMalformedInput) {
  EXPECT_NE(formError("a=%"), "");
  EXPECT_NE(formError("a=%4"), "");
  EXPECT_NE(formError("a=%zz"), "");
  EXPECT_NE(formError("%zz=1"), "");
  EXPECT_NE(formError("=1"), "");
  EXPECT_NE(formError("a=%00"), "");
  EXPECT_NE(formError("a=%ff"), "");     // not UTF-8
  EXPECT_NE(formError("a=%C0%AF"), "");  // overlong
  auto dup = formError("Type=a&type=b");
  EXPECT_TRUE(has(kj::StringPtr(dup.c_str()), "more than once"));
  // Messages never carry values.
  EXPECT_FALSE(has(kj::StringPtr(formError("SecretValue=hunter2%ff").c_str()), "hunter"));
}

TEST(Form, FieldCountAtTheLimitAndOnePast) {
  EXPECT_EQ(formError("a=1&b=2&c=3", 3), "");
  EXPECT_TRUE(has(kj::StringPtr(formError("a=1&b=2&c=3&d=4", 3).c_str()), "too many fields"));
}

// ---- binding ------------------------------------------------------------------------------

struct Req {
  http::HttpRequest request;
  kj::String contentType;
  kj::Vector<kj::String> owned;

  Req(kj::StringPtr type, kj::StringPtr body) : contentType(kj::str(type)) {
    request.method = "POST";
    request.path = "/api/v1/Agents/User/X";
    if (type.size() > 0) request.headers.add(http::HttpHeader{"Content-Type", contentType});
    request.body = http::WipedBytes(kj::heapArray(body.asBytes()));
    request.peer = "192.0.2.7:5000";
    request.client = "192.0.2.7";
    memcpy(request.id.text, "0123456789abcdef", http::REQUEST_ID_CHARS);
  }
  Req& header(kj::StringPtr name, kj::StringPtr value) {
    owned.add(kj::str(name));
    kj::StringPtr n = owned.back();  // the text stays put when the vector grows
    owned.add(kj::str(value));
    request.headers.add(http::HttpHeader{n, owned.back()});
    return *this;
  }
};

kj::OneOf<OpRequest, RestError> bind(Op op, kj::StringPtr type, kj::StringPtr body,
                                     kj::StringPtr query = "") {
  Req r(type, body);
  auto q = parseForm(query.asArray());
  return bindRequest(op, r.request, q.get<FormData>());
}

OpRequest bound(Op op, kj::StringPtr type, kj::StringPtr body, kj::StringPtr query = "") {
  auto r = bind(op, type, body, query);
  KJ_IF_MAYBE(e, r.tryGet<RestError>()) {
    ADD_FAILURE() << "unexpected " << e->status << ": " << e->detail.cStr();
    return OpRequest();
  }
  return kj::mv(r.get<OpRequest>());
}

RestError failed(Op op, kj::StringPtr type, kj::StringPtr body, kj::StringPtr query = "") {
  auto r = bind(op, type, body, query);
  KJ_IF_MAYBE(e, r.tryGet<RestError>()) { return kj::mv(*e); }
  ADD_FAILURE() << "expected an error for " << body.cStr();
  return RestError{0, kj::str(), kj::str(), nullptr};
}

kj::StringPtr fieldOf(const RestError& e) {
  KJ_IF_MAYBE(f, e.field) { return *f; }
  return "";
}

constexpr kj::StringPtr SAVE_JSON = R"({
  "AssociateId": 7,
  "Type": "imap",
  "Credentials": {
    "ValidFrom": "2019-07-14T03:24:48.5653818+02:00",
    "ValidTo": "2030-01-01T00:00:00",
    "Comment": "c",
    "SecretValue": "s3cret",
    "PublicValue": "alice@example.org",
    "IsActive": true,
    "TableRight": null,
    "FieldProperties": {"fieldName": {"FieldRight": null, "FieldType": "System.Int32", "FieldLength": 401}}
  }
})"_kj;

void expectSaved(const OpRequest& r) {
  EXPECT_EQ(r.associateId, 7);
  EXPECT_EQ(r.type, "imap");
  EXPECT_EQ(r.credential().getComment(), "c");
  EXPECT_EQ(r.credential().getSecretValue(), "s3cret");
  EXPECT_EQ(r.credential().getPublicValue(), "alice@example.org");
  EXPECT_TRUE(r.credential().getIsActive());
  EXPECT_EQ(r.credential().getValidFrom(),
            KJ_ASSERT_NONNULL(ipc::parseTicks("2019-07-14T01:24:48.5653818Z")));
  EXPECT_EQ(r.credential().getValidTo(),
            KJ_ASSERT_NONNULL(ipc::parseTicks("2030-01-01T00:00:00Z")));
}

TEST(Binding, BindsAPascalCaseJsonSave) {
  for (auto type : {"application/json"_kj, "text/json; charset=utf-8"_kj,
                    "Application/JSON; charset=UTF-8"_kj}) {
    expectSaved(bound(Op::SAVE_FOR_ASSOCIATE, type, SAVE_JSON));
  }
}

TEST(Binding, BindsACamelCaseJsonSave) {
  expectSaved(bound(Op::SAVE_FOR_ASSOCIATE, "application/json", R"({
    "associateId": 7, "type": "imap",
    "credentials": {"validFrom": "2019-07-14T01:24:48.5653818Z", "validTo": "2030-01-01",
                    "comment": "c", "secretValue": "s3cret", "publicValue": "alice@example.org",
                    "isActive": true}})"));
}

TEST(Binding, BindsAnXmlSave) {
  for (auto type : {"application/xml"_kj, "text/xml"_kj}) {
    expectSaved(bound(Op::SAVE_FOR_ASSOCIATE, type, R"(<?xml version="1.0" encoding="utf-8"?>
<SaveUntrustedCredentialsForAssociate xmlns="http://schemas.datacontract.org/2004/07/x"
    xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <AssociateId>7</AssociateId>
  <type>imap</type>
  <Credentials>
    <ValidFrom>2019-07-14T03:24:48.5653818+02:00</ValidFrom>
    <ValidTo>2030-01-01T00:00:00Z</ValidTo>
    <Comment>c</Comment>
    <SecretValue>s3cret</SecretValue>
    <PublicValue>alice@example.org</PublicValue>
    <IsActive>true</IsActive>
    <TableRight i:nil="true"/>
  </Credentials>
</SaveUntrustedCredentialsForAssociate>)"));
  }
}

TEST(Binding, BindsAFormSave) {
  expectSaved(bound(Op::SAVE_FOR_ASSOCIATE, "application/x-www-form-urlencoded",
                    "AssociateId=7&Type=imap&Credentials.ValidFrom=2019-07-14T03%3A24%3A48.5653818"
                    "%2B02%3A00&Credentials[ValidTo]=2030-01-01&credentials.comment=c&"
                    "Credentials.SecretValue=s3cret&Credentials.PublicValue=alice%40example.org&"
                    "Credentials.IsActive=true"));
}

TEST(Binding, AbsentOrNullSecretKeepsTheStoredOne) {
  auto a = bound(Op::SAVE, "application/json", R"({"Type":"t","Credentials":{"PublicValue":"p"}})");
  EXPECT_TRUE(!a.credential().hasSecretValue());
  auto b = bound(Op::SAVE, "application/json",
                 R"({"Type":"t","Credentials":{"PublicValue":"p","SecretValue":null}})");
  EXPECT_TRUE(!b.credential().hasSecretValue());
  auto c = bound(Op::SAVE, "application/xml",
                 R"(<r xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Type>t</Type>)"
                 R"(<Credentials><SecretValue i:nil="true"/><PublicValue>p</PublicValue>)"
                 R"(</Credentials></r>)");
  EXPECT_TRUE(!c.credential().hasSecretValue());
  auto d = bound(Op::SAVE, "application/json",
                 R"({"Type":"t","Credentials":{"PublicValue":"p","SecretValue":""}})");
  EXPECT_EQ(d.credential().getSecretValue(), "");
  // Absent dates and null dates are DateTime.MinValue; absent IsActive is false.
  EXPECT_EQ(b.credential().getValidFrom(), 0);
  EXPECT_FALSE(b.credential().getIsActive());
}

TEST(Binding, AssociateIdDefaultsToTheCaller) {
  EXPECT_EQ(bound(Op::GET_FOR_ASSOCIATE, "application/json", R"({"Type":"t"})").associateId, 0);
  EXPECT_EQ(bound(Op::GET_FOR_ASSOCIATE, "application/json", R"({"Type":"t","AssociateId":null})")
                .associateId,
            0);
}

TEST(Binding, SimpleParametersMayComeFromTheQueryString) {
  auto r = bound(Op::REMOVE_FOR_ASSOCIATE, "", "", "associateId=3&type=imap&PublicValue=p%40x");
  EXPECT_EQ(r.associateId, 3);
  EXPECT_EQ(r.type, "imap");
  EXPECT_EQ(r.publicValue, "p@x");
  // The body wins over the query string.
  auto s = bound(Op::GET, "application/json", R"({"Type":"body"})", "Type=query");
  EXPECT_EQ(s.type, "body");
}

TEST(Binding, CreateDefaultIgnoresTheBody) {
  auto r = bound(Op::CREATE_DEFAULT, "text/plain", "not read");
  EXPECT_EQ(r.op, Op::CREATE_DEFAULT);
}

TEST(Binding, RequiresTypePublicValueAndCredentials) {
  EXPECT_EQ(fieldOf(failed(Op::GET, "application/json", "{}")), "Type");
  EXPECT_EQ(fieldOf(failed(Op::GET, "application/json", R"({"Type":null})")), "Type");
  EXPECT_EQ(fieldOf(failed(Op::GET, "", "")), "Type");
  EXPECT_EQ(fieldOf(failed(Op::GET, "application/json", "null")), "Type");
  EXPECT_EQ(fieldOf(failed(Op::REMOVE, "application/json", R"({"Type":"t"})")), "PublicValue");
  EXPECT_EQ(fieldOf(failed(Op::SAVE, "application/json", R"({"Type":"t"})")), "Credentials");
  EXPECT_EQ(fieldOf(failed(Op::SAVE, "application/json", R"({"Type":"t","Credentials":null})")),
            "Credentials");
  EXPECT_EQ(bound(Op::GET, "application/json", R"({"Type":""})").type, "");
}

TEST(Binding, RefusesWrongTypesNamingTheField) {
  auto e = failed(Op::GET, "application/json", R"({"Type":5})");
  EXPECT_EQ(e.status, 400u);
  EXPECT_EQ(fieldOf(e), "Type");
  EXPECT_TRUE(has(e.detail, "Type must be a string, not a number"));
  EXPECT_EQ(fieldOf(failed(Op::GET_FOR_ASSOCIATE, "application/json",
                           R"({"Type":"t","AssociateId":"5"})")),
            "AssociateId");
  EXPECT_EQ(fieldOf(failed(Op::GET_FOR_ASSOCIATE, "application/json",
                           R"({"Type":"t","AssociateId":1.5})")),
            "AssociateId");
  EXPECT_EQ(fieldOf(failed(Op::GET_FOR_ASSOCIATE, "application/json",
                           R"({"Type":"t","AssociateId":1e3})")),
            "AssociateId");
  EXPECT_EQ(fieldOf(failed(Op::GET_FOR_ASSOCIATE, "application/json",
                           R"({"Type":"t","AssociateId":true})")),
            "AssociateId");
  EXPECT_EQ(fieldOf(failed(Op::SAVE, "application/json",
                           R"({"Type":"t","Credentials":{"IsActive":"yes"}})")),
            "Credentials.IsActive");
  EXPECT_EQ(fieldOf(failed(Op::SAVE, "application/json",
                           R"({"Type":"t","Credentials":{"IsActive":"true"}})")),
            "Credentials.IsActive");
  EXPECT_EQ(fieldOf(failed(Op::SAVE, "application/json",
                           R"({"Type":"t","Credentials":{"SecretValue":["x"]}})")),
            "Credentials.SecretValue");
  EXPECT_EQ(fieldOf(failed(Op::SAVE, "application/json", R"({"Type":"t","Credentials":"x"})")),
            "Credentials");
  EXPECT_EQ(fieldOf(failed(Op::SAVE, "application/json",
                           R"({"Type":"t","Credentials":{"ValidFrom":20240101}})")),
            "Credentials.ValidFrom");
  EXPECT_EQ(
      fieldOf(failed(Op::SAVE, "application/xml",
                     "<r><Type>t</Type><Credentials><IsActive>yes</IsActive></Credentials></r>")),
      "Credentials.IsActive");
  EXPECT_TRUE(has(failed(Op::GET, "application/json", "[1]").detail, "must be an object"));
}

TEST(Binding, RefusesIntegersOutOfRange) {
  auto id = [](kj::StringPtr v) {
    return bind(Op::GET_FOR_ASSOCIATE, "application/json",
                kj::str(R"({"Type":"t","AssociateId":)", v, "}"));
  };
  EXPECT_EQ(id("2147483647").get<OpRequest>().associateId, 2147483647);
  EXPECT_EQ(id("-2147483648").get<OpRequest>().associateId, INT32_MIN);
  EXPECT_TRUE(id("2147483648").is<RestError>());
  EXPECT_TRUE(id("-2147483649").is<RestError>());
  EXPECT_TRUE(id("99999999999999999999999999999999999999").is<RestError>());
  EXPECT_TRUE(has(id("99999999999999999999").get<RestError>().detail, "out of range"));
  // XML text: xsd:int lexical space.
  auto x = bind(Op::GET_FOR_ASSOCIATE, "text/xml",
                "<r><Type>t</Type><AssociateId> +12 </AssociateId></r>");
  EXPECT_EQ(x.get<OpRequest>().associateId, 12);
  EXPECT_TRUE(
      bind(Op::GET_FOR_ASSOCIATE, "text/xml", "<r><Type>t</Type><AssociateId>0x1</AssociateId></r>")
          .is<RestError>());
}

TEST(Binding, ReadsDatesWithAndWithoutOffsetAndFraction) {
  auto date = [](kj::StringPtr v) -> int64_t {
    auto r = bind(Op::SAVE, "application/json",
                  kj::str(R"({"Type":"t","Credentials":{"ValidFrom":")", v, R"("}})"));
    if (r.is<RestError>()) return -1;
    return r.get<OpRequest>().credential().getValidFrom();
  };
  int64_t base = KJ_ASSERT_NONNULL(ipc::parseTicks("2024-05-01T12:00:00Z"));
  EXPECT_EQ(date("2024-05-01T12:00:00Z"), base);
  EXPECT_EQ(date("2024-05-01T12:00:00"), base);
  EXPECT_EQ(date("2024-05-01T14:00:00+02:00"), base);
  EXPECT_EQ(date("2024-05-01T07:00:00-05:00"), base);
  EXPECT_EQ(date("2024-05-01T12:00:00.1234567Z"), base + 1234567);
  EXPECT_EQ(date("2024-05-01T12:00:00.5"), base + 5000000);
  EXPECT_EQ(date("0001-01-01T00:00:00"), 0);
  EXPECT_EQ(date("2024-02-30T00:00:00"), -1);
  EXPECT_EQ(date("yesterday"), -1);
  EXPECT_EQ(date("0001-01-01T00:00:00+01:00"), -1);  // before DateTime.MinValue
}

TEST(Binding, RefusesEmptyValuesNamingTheFieldAndNullIsNone) {
  // An empty date is refused in every body type, not read as open-ended.
  for (auto [type, body] :
       {std::pair<kj::StringPtr, kj::StringPtr>{"application/json",
                                                R"({"Type":"t","Credentials":{"ValidFrom":""}})"},
        {"application/xml", "<r><Type>t</Type><Credentials><ValidFrom/></Credentials></r>"},
        {"application/x-www-form-urlencoded", "Type=t&Credentials.ValidFrom="}}) {
    auto e = failed(Op::SAVE, type, body);
    EXPECT_EQ(e.status, 400u);
    EXPECT_EQ(fieldOf(e), "Credentials.ValidFrom") << type.cStr();
    EXPECT_TRUE(has(e.detail, "Credentials.ValidFrom is empty")) << e.detail.cStr();
  }
  auto active = failed(Op::SAVE, "application/xml",
                       "<r><Type>t</Type><Credentials><IsActive> </IsActive></Credentials></r>");
  EXPECT_TRUE(has(active.detail, "Credentials.IsActive is empty")) << active.detail.cStr();
  auto id =
      failed(Op::GET_FOR_ASSOCIATE, "application/x-www-form-urlencoded", "Type=t&AssociateId=");
  EXPECT_TRUE(has(id.detail, "AssociateId is empty")) << id.detail.cStr();
  // null / xsi:nil: none, the defaults.
  auto nil = bound(Op::SAVE, "application/xml",
                   "<r xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><Type>t</Type>"
                   "<Credentials><ValidFrom i:nil=\"true\"/><IsActive i:nil=\"true\"/>"
                   "</Credentials></r>");
  EXPECT_EQ(nil.credential().getValidFrom(), 0);
  EXPECT_FALSE(nil.credential().getIsActive());
  EXPECT_EQ(bound(Op::SAVE, "application/json", R"({"Type":"t","Credentials":{"ValidTo":null}})")
                .credential()
                .getValidTo(),
            0);
}

TEST(Binding, ReportsSyntaxErrorsOfEachBodyType) {
  auto j = failed(Op::GET, "application/json", R"({"Type": "imap",})");
  EXPECT_EQ(j.status, 400u);
  EXPECT_TRUE(has(j.detail, "JSON: line 1")) << j.detail.cStr();
  EXPECT_EQ(j.message, "The request is invalid.");
  auto x = failed(Op::GET, "application/xml", "<r><Type>imap</r>");
  EXPECT_TRUE(has(x.detail, "XML:")) << x.detail.cStr();
  auto f = failed(Op::GET, "application/x-www-form-urlencoded", "Type=%zz");
  EXPECT_TRUE(has(f.detail, "form:")) << f.detail.cStr();
}

TEST(Binding, RefusesXmlEntityTricks) {
  auto e = failed(Op::SAVE, "application/xml",
                  R"(<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "xx"><!ENTITY y "&x;&x;">]>)"
                  R"(<r><Type>&y;</Type></r>)");
  EXPECT_EQ(e.status, 400u);
  auto xxe =
      failed(Op::GET, "text/xml",
             R"(<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><Type>&x;</Type></r>)");
  EXPECT_EQ(xxe.status, 400u);
  auto undefined = failed(Op::GET, "text/xml", "<r><Type>&x;</Type></r>");
  EXPECT_EQ(undefined.status, 400u);
  auto dup = failed(Op::GET, "text/xml", "<r><Type>a</Type><type>b</type></r>");
  EXPECT_TRUE(has(dup.detail, "more than once"));
}

TEST(Binding, RefusesDuplicatesInEveryFormat) {
  EXPECT_EQ(failed(Op::GET, "application/json", R"({"Type":"a","TYPE":"b"})").status, 400u);
  EXPECT_EQ(failed(Op::GET, "application/x-www-form-urlencoded", "Type=a&type=b").status, 400u);
  EXPECT_EQ(failed(Op::SAVE, "application/x-www-form-urlencoded",
                   "Type=a&Credentials.Comment=x&Credentials[comment]=y")
                .status,
            400u);
  EXPECT_EQ(failed(Op::SAVE, "application/x-www-form-urlencoded",
                   "Type=a&Credentials=x&Credentials.Comment=y")
                .status,
            400u);
}

TEST(Binding, RefusesUnsupportedMediaTypes) {
  EXPECT_EQ(failed(Op::GET, "text/plain", "Type=x").status, 415u);
  EXPECT_EQ(failed(Op::GET, "", "{}").status, 415u);
  EXPECT_EQ(failed(Op::GET, "application/json; charset=utf-16", "{}").status, 415u);
  EXPECT_EQ(failed(Op::GET, "multipart/form-data; boundary=x", "x").status, 415u);
  // json-patch and merge-patch are JSON (SuperOffice lists them).
  EXPECT_EQ(bound(Op::GET, "application/merge-patch+json", R"({"Type":"t"})").type, "t");
}

// ---- Authorization -----------------------------------------------------------------------

kj::OneOf<Caller, RestError> callerWith(kj::StringPtr authorization,
                                        kj::StringPtr appToken = nullptr) {
  Req r("", "");
  if (authorization != nullptr) r.header("Authorization", authorization);
  if (appToken != nullptr) r.header("SO-AppToken", appToken);
  return callerFrom(r.request);
}

TEST(Authorization, ReadsBasic) {
  auto b64 = kj::encodeBase64(kj::StringPtr("alice:pa:ss w\xc3\xb6rd").asBytes());
  auto c = callerWith(kj::str("Basic ", b64));
  auto& caller = c.get<Caller>();
  EXPECT_EQ(caller.kind, Caller::PASSWORD);
  EXPECT_EQ(caller.userName, "alice");
  EXPECT_EQ(caller.secret.reveal(), "pa:ss w\xc3\xb6rd");
  EXPECT_EQ(caller.clientAddress, "192.0.2.7");
  EXPECT_EQ(caller.requestId, "0123456789abcdef");
  EXPECT_EQ(callerWith(kj::str("bAsIc   ", b64)).get<Caller>().userName, "alice");
}

TEST(Authorization, ReadsSoTicketInAnyCaseAndBearer) {
  for (auto scheme : {"SoTicket"_kj, "SOTICKET"_kj, "soticket"_kj, "SOTicket"_kj}) {
    auto c = callerWith(kj::str(scheme, " 7T:abc=="));
    EXPECT_EQ(c.get<Caller>().kind, Caller::TICKET);
    EXPECT_EQ(c.get<Caller>().secret.reveal(), "7T:abc==");
  }
  auto t = callerWith("Bearer tok123", "app-token");
  EXPECT_EQ(t.get<Caller>().kind, Caller::TOKEN);
  EXPECT_EQ(t.get<Caller>().secret.reveal(), "tok123");
  EXPECT_EQ(KJ_ASSERT_NONNULL(t.get<Caller>().appToken), "app-token");
  // Every kind carries the client's address and the request id, not only passwords.
  EXPECT_EQ(t.get<Caller>().clientAddress, "192.0.2.7");
  EXPECT_EQ(t.get<Caller>().requestId, "0123456789abcdef");
}

TEST(Authorization, AnswersUnreadableCredentialsWith401) {
  for (auto value : {"Basic"_kj, "Basic !!!"_kj, "Basic YWxpY2U="_kj /* no colon */,
                     "Negotiate abc"_kj, "Digest x"_kj, "SoTicket"_kj, "SoTicket   "_kj}) {
    auto r = callerWith(value);
    ASSERT_TRUE(r.is<RestError>()) << value.cStr();
    EXPECT_EQ(r.get<RestError>().status, 401u);
  }
  EXPECT_EQ(callerWith(nullptr).get<RestError>().status, 401u);
  auto nul = kj::encodeBase64(kj::arrayPtr(reinterpret_cast<const kj::byte*>("a\0b:c"), 5));
  EXPECT_EQ(callerWith(kj::str("Basic ", nul)).get<RestError>().status, 401u);
}

TEST(Authorization, ClientAddressDropsThePort) {
  EXPECT_EQ(frontends::clientAddressOf("192.0.2.1:4711"), "192.0.2.1");
  EXPECT_EQ(frontends::clientAddressOf("[::1]:4711"), "::1");
  EXPECT_EQ(frontends::clientAddressOf("unix"), "unix");
  EXPECT_EQ(frontends::clientAddressOf(""), "");
}

}  // namespace
}  // namespace credvault::rest
