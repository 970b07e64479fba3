// Tests for frontends/soap: envelopes, argument reading, response shapes against
// SuperOffice's published examples, and the service end to end against an in-process fake
// credvaultd (the real daemon is exercised by the 'gateway' integration suite).

#include "base/field-limits.h"
#include "frontends/soap/envelope.h"
#include "frontends/soap/service.h"
#include "frontends/soap/user.h"
#include "frontends/soap/wsdl.h"

#include <capnp/ez-rpc.h>
#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/filesystem.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

namespace credvault::soap {
namespace {

using frontends::Op;

bool contains(kj::StringPtr haystack, kj::StringPtr needle) {
  return strstr(haystack.cStr(), needle.cStr()) != nullptr;
}

kj::String readData(kj::StringPtr name) {
  auto fs = kj::newDiskFilesystem();
  auto path = kj::Path::parse(kj::str(TEST_DATA_DIR, "/", name).slice(1));
  return fs->getRoot().openFile(path)->readAllText();
}

kj::String replaceAll(kj::StringPtr text, kj::StringPtr from, kj::StringPtr to) {
  kj::Vector<char> out;
  const char* p = text.begin();
  for (;;) {
    const char* hit = strstr(p, from.cStr());
    if (hit == nullptr) break;
    out.addAll(kj::ArrayPtr<const char>(p, hit));
    out.addAll(to.asArray());
    p = hit + from.size();
  }
  out.addAll(kj::ArrayPtr<const char>(p, text.end()));
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

xml::Document parseDoc(kj::StringPtr text) {
  auto r = xml::parse(text.asArray());
  KJ_IF_MAYBE(e, r.tryGet<xml::ParseError>()) { KJ_FAIL_ASSERT("parse failed", e->message); }
  return kj::mv(r.get<xml::Document>());
}

// A canonical shape: names with namespaces, xsi:nil, trimmed leaf text. Not xsi:type: the
// published examples carry it on every value, our responses (as WCF's) on none.
kj::String shape(const xml::Element& e) {
  kj::Vector<kj::String> parts;
  parts.add(kj::str("{", e.ns, "}", e.local));
  KJ_IF_MAYBE(t, e.attribute(xml::XSI_NS, "nil")) { parts.add(kj::str("[nil=", *t, "]")); }
  if (e.children.size() == 0) {
    kj::StringPtr text = e.text;
    while (text.size() > 0 && (text[0] == ' ' || text[0] == '\n')) text = text.slice(1);
    size_t n = text.size();
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\n')) --n;
    parts.add(kj::str("(", kj::heapString(text.begin(), n), ")"));
  } else {
    parts.add(kj::str("{"));
    for (auto* c : e.children) parts.add(shape(*c));
    parts.add(kj::str("}"));
  }
  return kj::strArray(parts, "");
}

kj::String bodyShape(kj::StringPtr envelope) {
  auto doc = parseDoc(envelope);
  auto& root = doc.root();
  auto& body = KJ_ASSERT_NONNULL(root.child(root.ns, "Body"));
  return shape(body);
}

// ---- envelope ---------------------------------------------------------------------------

constexpr kj::StringPtr NS86 = "http://www.superoffice.net/ws/crm/NetServer/Services86"_kj;

TEST(SoapEnvelope, ReadsPublishedExampleWithHeadersUnderEnvelope) {
  auto doc = parseDoc(readData("s86-save-for-associate.request.xml"));
  auto r = readEnvelope(doc, NS86, SoapVersion::V11);
  ASSERT_TRUE(r.is<Envelope>());
  auto& env = r.get<Envelope>();
  EXPECT_EQ(env.version, SoapVersion::V12);
  EXPECT_EQ(KJ_ASSERT_NONNULL(env.ticket), "7T:1234abcxyzExample==");
  EXPECT_EQ(KJ_ASSERT_NONNULL(env.appToken), "1234567-1234-9876");
  EXPECT_TRUE(env.operation->is(NS86, "SaveUntrustedCredentialsForAssociate"));
}

TEST(SoapEnvelope, ReadsSoap11WithHeaderElementAndOtherPrefixes) {
  auto doc = parseDoc(
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">"
      "<s:Header><h:Credentials xmlns:h=\"http://www.superoffice.net/ws/crm/NetServer/Services86\">"
      "<h:Ticket>7T:t</h:Ticket></h:Credentials>"
      "<ApplicationToken xmlns=\"http://www.superoffice.net/ws/crm/NetServer/Services86\">app"
      "</ApplicationToken><x:Other xmlns:x=\"urn:x\"/></s:Header>"
      "<s:Body><GetUntrustedCredentials xmlns=\"http://www.superoffice.net/ws/crm/NetServer/"
      "Services86\"><Type>imap</Type></GetUntrustedCredentials></s:Body></s:Envelope>");
  auto r = readEnvelope(doc, NS86, SoapVersion::V12);
  ASSERT_TRUE(r.is<Envelope>());
  EXPECT_EQ(r.get<Envelope>().version, SoapVersion::V11);
  EXPECT_EQ(KJ_ASSERT_NONNULL(r.get<Envelope>().ticket), "7T:t");
  EXPECT_EQ(KJ_ASSERT_NONNULL(r.get<Envelope>().appToken), "app");
}

kj::String faultOf(kj::StringPtr text, Fault::Code* code = nullptr) {
  auto doc = parseDoc(text);
  auto r = readEnvelope(doc, NS86, SoapVersion::V11);
  KJ_IF_MAYBE(f, r.tryGet<Fault>()) {
    if (code != nullptr) *code = f->code;
    return kj::mv(f->reason);
  }
  return kj::str();
}

constexpr kj::StringPtr ENV12 =
    "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\" "
    "xmlns:u=\"http://www.superoffice.net/ws/crm/NetServer/Services86\">"_kj;

TEST(SoapEnvelope, FaultsForUnreadableEnvelopes) {
  Fault::Code code;
  EXPECT_TRUE(contains(faultOf("<Envelope/>", &code), "not in a SOAP"));
  EXPECT_EQ(code, Fault::VERSION_MISMATCH);
  EXPECT_TRUE(contains(faultOf("<x/>"), "not a SOAP Envelope"));
  EXPECT_TRUE(contains(faultOf(kj::str(ENV12, "</e:Envelope>")), "no Body"));
  EXPECT_TRUE(contains(faultOf(kj::str(ENV12, "<e:Body/></e:Envelope>")), "Body is empty"));
  EXPECT_TRUE(contains(faultOf(kj::str(ENV12, "<e:Body><u:A/><u:B/></e:Body></e:Envelope>")),
                       "exactly one"));
  EXPECT_TRUE(contains(faultOf(kj::str(ENV12,
                                       "<e:Body><u:A/></e:Body><e:Body><u:A/></e:Body>"
                                       "</e:Envelope>")),
                       "more than once"));
  EXPECT_TRUE(contains(faultOf(kj::str(ENV12,
                                       "<u:Credentials><u:Ticket>a</u:Ticket></u:Credentials>"
                                       "<e:Header><u:Credentials/></e:Header>"
                                       "<e:Body><u:A/></e:Body></e:Envelope>")),
                       "Credentials appears more than once"));
  EXPECT_TRUE(contains(faultOf(kj::str(ENV12,
                                       "<u:Credentials><u:Ticket>a</u:Ticket>"
                                       "<u:Ticket>b</u:Ticket></u:Credentials>"
                                       "<e:Body><u:A/></e:Body></e:Envelope>")),
                       "Ticket appears more than once"));
  EXPECT_TRUE(contains(
      faultOf(kj::str(ENV12,
                      "<v:Credentials xmlns:v=\"http://www.superoffice.net/ws/crm/NetServer/"
                      "Services88\"/><e:Body><u:A/></e:Body></e:Envelope>")),
      "another service version"));
  EXPECT_EQ(faultOf(kj::str(ENV12,
                            "<e:Header><x:H xmlns:x=\"urn:x\" e:mustUnderstand=\"true\"/>"
                            "</e:Header><e:Body><u:A/></e:Body></e:Envelope>"),
                    &code),
            "A header marked mustUnderstand is not understood");
  EXPECT_EQ(code, Fault::MUST_UNDERSTAND);
}

TEST(SoapEnvelope, FaultsAreWrittenInTheRequestsVersion) {
  auto f11 = writeFault(Fault{SoapVersion::V11, Fault::SENDER, kj::str("bad <thing>")});
  auto t11 = kj::heapString(f11.asChars());
  EXPECT_TRUE(contains(t11, "<faultcode>SOAP-ENV:Client</faultcode>"));
  EXPECT_TRUE(contains(t11, "bad &lt;thing&gt;"));
  EXPECT_TRUE(contains(t11, "http://schemas.xmlsoap.org/soap/envelope/"));
  auto f12 = writeFault(Fault{SoapVersion::V12, Fault::SENDER, kj::str("x")});
  auto t12 = kj::heapString(f12.asChars());
  EXPECT_TRUE(contains(t12, "<SOAP-ENV:Value>SOAP-ENV:Sender</SOAP-ENV:Value>"));
  EXPECT_EQ(faultHttpStatus(Fault{SoapVersion::V12, Fault::SENDER, kj::str()}), 400u);
  EXPECT_EQ(faultHttpStatus(Fault{SoapVersion::V11, Fault::SENDER, kj::str()}), 500u);
  // Both parse as XML.
  parseDoc(t11);
  parseDoc(t12);
}

// ---- arguments --------------------------------------------------------------------------

kj::OneOf<frontends::OpRequest, frontends::Failure> readOp(kj::StringPtr inner, Op op) {
  auto text = kj::str("<u:", frontends::opName(op), " xmlns:u=\"", NS86,
                      "\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">", inner,
                      "</u:", frontends::opName(op), ">");
  auto doc = parseDoc(text);
  return readUserOperation(doc.root(), op, NS86);
}

kj::String failureField(const kj::OneOf<frontends::OpRequest, frontends::Failure>& r) {
  KJ_IF_MAYBE(f, r.tryGet<frontends::Failure>()) { return kj::str(f->field, ": ", f->message); }
  return kj::str();
}

TEST(SoapArguments, ReadsThePublishedSaveExample) {
  auto doc = parseDoc(readData("s86-save-for-associate.request.xml"));
  auto env = readEnvelope(doc, NS86, SoapVersion::V11);
  auto r = readUserOperation(*env.get<Envelope>().operation, Op::SAVE_FOR_ASSOCIATE, NS86);
  ASSERT_TRUE(r.is<frontends::OpRequest>());
  auto& req = r.get<frontends::OpRequest>();
  EXPECT_EQ(req.associateId, 0);
  EXPECT_EQ(req.type, "");
  EXPECT_EQ(req.credential().getValidFrom(),
            KJ_ASSERT_NONNULL(ipc::parseTicks("2021-03-25T21:36:23Z")));
  EXPECT_EQ(formatDateTime(req.credential().getValidTo()), "2021-03-25T21:36:23Z");
  EXPECT_EQ(req.credential().getSecretValue(), "");
  EXPECT_FALSE(req.credential().getIsActive());
}

TEST(SoapArguments, SecretAbsentOrNilMeansKeep) {
  auto absent = readOp(
      "<u:Type>imap</u:Type><u:Credentials><u:PublicValue>p</u:PublicValue>"
      "</u:Credentials>",
      Op::SAVE);
  EXPECT_FALSE(absent.get<frontends::OpRequest>().credential().hasSecretValue());
  auto nil = readOp(
      "<u:Type>imap</u:Type><u:Credentials><u:SecretValue xsi:nil=\"true\"/>"
      "</u:Credentials>",
      Op::SAVE);
  EXPECT_FALSE(nil.get<frontends::OpRequest>().credential().hasSecretValue());
}

TEST(SoapArguments, RejectsWrongTypesMissingAndDuplicatedElements) {
  EXPECT_EQ(
      failureField(readOp("<u:AssociateId>x</u:AssociateId><u:Type/>", Op::GET_FOR_ASSOCIATE)),
      "AssociateId: AssociateId is not a valid xsd:int");
  EXPECT_EQ(failureField(readOp("<u:AssociateId>2147483648</u:AssociateId><u:Type/>",
                                Op::GET_FOR_ASSOCIATE)),
            "AssociateId: AssociateId is not a valid xsd:int");
  EXPECT_EQ(failureField(readOp("<u:AssociateId> -2147483648 </u:AssociateId><u:Type/>",
                                Op::GET_FOR_ASSOCIATE)),
            "");
  EXPECT_EQ(failureField(readOp("", Op::GET)), "Type: Type is required");
  EXPECT_EQ(failureField(readOp("<u:Type>a</u:Type><u:Type>b</u:Type>", Op::GET)),
            "Type: Type appears more than once");
  EXPECT_EQ(failureField(readOp("<u:Type>a</u:Type>", Op::SAVE)),
            "Credentials: Credentials is required");
  EXPECT_EQ(failureField(readOp("<u:Type>a</u:Type><u:Credentials><u:ValidFrom>yesterday"
                                "</u:ValidFrom></u:Credentials>",
                                Op::SAVE)),
            "ValidFrom: ValidFrom is not a valid xsd:dateTime");
  EXPECT_EQ(failureField(readOp("<u:Type>a</u:Type><u:Credentials><u:IsActive>yes</u:IsActive>"
                                "</u:Credentials>",
                                Op::SAVE)),
            "IsActive: IsActive is not a valid xsd:boolean");
  EXPECT_EQ(failureField(readOp("<u:Type>a</u:Type><u:Credentials><u:Comment/><u:Comment/>"
                                "</u:Credentials>",
                                Op::SAVE)),
            "Comment: Comment appears more than once");
  EXPECT_EQ(failureField(readOp("<u:Type>a</u:Type>", Op::REMOVE)),
            "PublicValue: PublicValue is required");
  // An element in another namespace is not ours: Type is then missing.
  EXPECT_EQ(failureField(readOp("<x:Type xmlns:x=\"urn:x\">a</x:Type>", Op::GET)),
            "Type: Type is required");
}

TEST(SoapArguments, EmptyTypedValuesAreRefusedAndNilMeansAbsent) {
  // An empty <ValidFrom/> is not "open-ended": it is refused, naming the element, as an
  // empty AssociateId or IsActive is.
  EXPECT_EQ(failureField(readOp("<u:Type>a</u:Type><u:Credentials><u:ValidFrom/>"
                                "</u:Credentials>",
                                Op::SAVE)),
            "ValidFrom: ValidFrom is empty: give an xsd:dateTime, or leave the element out (or "
            "send xsi:nil=\"true\") for none");
  EXPECT_EQ(failureField(readOp("<u:Type>a</u:Type><u:Credentials><u:ValidTo> </u:ValidTo>"
                                "</u:Credentials>",
                                Op::SAVE)),
            "ValidTo: ValidTo is empty: give an xsd:dateTime, or leave the element out (or "
            "send xsi:nil=\"true\") for none");
  EXPECT_EQ(failureField(readOp("<u:Type>a</u:Type><u:Credentials><u:IsActive></u:IsActive>"
                                "</u:Credentials>",
                                Op::SAVE)),
            "IsActive: IsActive is empty: give an xsd:boolean, or leave the element out (or "
            "send xsi:nil=\"true\") for none");
  EXPECT_EQ(failureField(readOp("<u:AssociateId/><u:Type>a</u:Type>", Op::GET_FOR_ASSOCIATE)),
            "AssociateId: AssociateId is empty: give an xsd:int, or leave the element out (or "
            "send xsi:nil=\"true\") for none");
  // xsi:nil="true" is the same as leaving the element out: the defaults.
  auto nil = readOp(
      "<u:AssociateId xsi:nil=\"true\"/><u:Type>a</u:Type><u:Credentials>"
      "<u:ValidFrom xsi:nil=\"true\"/><u:ValidTo xsi:nil=\"1\"/><u:IsActive xsi:nil=\"true\"/>"
      "<u:Comment xsi:nil=\"true\"/></u:Credentials>",
      Op::SAVE_FOR_ASSOCIATE);
  ASSERT_TRUE(nil.is<frontends::OpRequest>()) << failureField(nil).cStr();
  auto& req = nil.get<frontends::OpRequest>();
  EXPECT_EQ(req.associateId, 0);
  EXPECT_EQ(req.credential().getValidFrom(), 0);
  EXPECT_EQ(req.credential().getValidTo(), 0);
  EXPECT_FALSE(req.credential().getIsActive());
  EXPECT_EQ(req.credential().getComment(), "");
  // Strings may be empty: Type "" and PublicValue "" are SuperOffice's defaults.
  auto strings = readOp("<u:Type/><u:PublicValue/>", Op::REMOVE);
  ASSERT_TRUE(strings.is<frontends::OpRequest>());
  // xsi:type on a value (node-soap sends it on headers, SuperOffice's examples everywhere)
  // is accepted and ignored.
  auto typed = readOp(
      "<u:AssociateId xsi:type=\"xsd:int\">4</u:AssociateId><u:Type xsi:type=\"xsd:string\">"
      "a</u:Type>",
      Op::GET_FOR_ASSOCIATE);
  EXPECT_EQ(typed.get<frontends::OpRequest>().associateId, 4);
}

TEST(SoapArguments, SuperOfficeLengthLimitsAtLimitAndOnePast) {
  auto save = [](kj::StringPtr field, size_t n) {
    frontends::OpRequest req;
    req.op = Op::SAVE;
    req.type = kj::str("imap");
    auto value = kj::str(kj::repeat('x', n));
    if (field == "SecretValue") req.credential().setSecretValue(value);
    if (field == "PublicValue") req.credential().setPublicValue(value);
    if (field == "Comment") req.credential().setComment(value);
    return frontends::validate(req);
  };
  EXPECT_TRUE(save("SecretValue", 70) == nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(save("SecretValue", 71)).field, "SecretValue");
  EXPECT_TRUE(save("PublicValue", 238) == nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(save("PublicValue", 239)).field, "PublicValue");
  EXPECT_TRUE(save("Comment", 255) == nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(save("Comment", 256)).field, "Comment");
  // Characters, not bytes: 70 euro signs are 210 bytes and allowed.
  frontends::OpRequest req;
  req.op = Op::SAVE;
  req.credential().setSecretValue(kj::strArray(
      KJ_MAP(i, kj::zeroTo(70)) { return "\xe2\x82\xac"_kj; }, ""));
  EXPECT_TRUE(frontends::validate(req) == nullptr);
}

TEST(GatewayLimits, SharedFieldLimitsAtLimitAndOnePast) {
  // The daemon's numbers (base/field-limits.h), refused at the gateway at the same length.
  auto get = [](size_t typeChars) {
    frontends::OpRequest req;
    req.op = Op::GET;
    req.type = kj::str(kj::repeat('t', typeChars));
    return frontends::validate(req);
  };
  EXPECT_TRUE(get(base::MAX_TYPE_CHARS) == nullptr);
  auto typeFailure = KJ_ASSERT_NONNULL(get(base::MAX_TYPE_CHARS + 1));
  EXPECT_EQ(typeFailure.code, rpc::ErrorCode::LIMIT_EXCEEDED);
  EXPECT_EQ(typeFailure.field, "Type");

  auto caller = [](frontends::Caller::Kind kind, size_t secretBytes, size_t nameBytes = 1) {
    frontends::Caller c;
    c.kind = kind;
    c.userName = kj::str(kj::repeat('n', nameBytes));
    c.secret = frontends::SensitiveText(kj::str(kj::repeat('s', secretBytes)));
    return frontends::validate(c);
  };
  using K = frontends::Caller;
  EXPECT_TRUE(caller(K::TICKET, base::MAX_TICKET_BYTES) == nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(caller(K::TICKET, base::MAX_TICKET_BYTES + 1)).code,
            rpc::ErrorCode::NOT_AUTHENTICATED);
  EXPECT_TRUE(caller(K::TOKEN, base::MAX_TOKEN_BYTES) == nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(caller(K::TOKEN, base::MAX_TOKEN_BYTES + 1)).code,
            rpc::ErrorCode::NOT_AUTHENTICATED);
  EXPECT_TRUE(caller(K::PASSWORD, base::MAX_PASSWORD_BYTES) == nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(caller(K::PASSWORD, base::MAX_PASSWORD_BYTES + 1)).code,
            rpc::ErrorCode::NOT_AUTHENTICATED);
  EXPECT_TRUE(caller(K::PASSWORD, 1, base::MAX_NAME_BYTES) == nullptr);
  EXPECT_EQ(KJ_ASSERT_NONNULL(caller(K::PASSWORD, 1, base::MAX_NAME_BYTES + 1)).code,
            rpc::ErrorCode::NOT_AUTHENTICATED);

  auto app = [](size_t bytes) {
    frontends::Caller c;
    c.secret = frontends::SensitiveText(kj::str("7T:x"));
    c.appToken = kj::str(kj::repeat('a', bytes));
    return frontends::validate(c);
  };
  EXPECT_TRUE(app(base::MAX_APP_TOKEN_BYTES) == nullptr);
  auto appFailure = KJ_ASSERT_NONNULL(app(base::MAX_APP_TOKEN_BYTES + 1));
  EXPECT_EQ(appFailure.code, rpc::ErrorCode::INVALID_ARGUMENT);
  EXPECT_EQ(appFailure.field, "ApplicationToken");
}

TEST(SoapDates, FormatsAsSuperOfficeDoes) {
  EXPECT_EQ(formatDateTime(0), "0001-01-01T00:00:00");
  EXPECT_EQ(formatDateTime(KJ_ASSERT_NONNULL(parseDateTime("2021-03-25T21:36:23Z"))),
            "2021-03-25T21:36:23Z");
  EXPECT_EQ(formatDateTime(KJ_ASSERT_NONNULL(parseDateTime("2021-03-25T23:36:23+02:00"))),
            "2021-03-25T21:36:23Z");
  EXPECT_EQ(KJ_ASSERT_NONNULL(parseDateTime("0001-01-01T00:00:00")), 0);
  EXPECT_TRUE(parseDateTime(" ") == nullptr);  // empty is no date (see EmptyValues...)
  EXPECT_TRUE(parseDateTime("2021-02-30T00:00:00") == nullptr);
}

// ---- service against a fake daemon ------------------------------------------------------

struct FakeState {
  kj::Vector<kj::String> calls;
  kj::Vector<kj::String> saved;
  kj::Vector<kj::String> origins;  // "<kind> <clientAddress> <requestId>" per authenticate call
};

template<typename Params>
void recordOrigin(FakeState& s, kj::StringPtr kind, Params p) {
  s.origins.add(kj::str(kind, " ", p.getClientAddress(), " ", p.getRequestId()));
}

void fillCredential(rpc::Credential::Builder b, bool withSecret) {
  b.setValidFrom(KJ_ASSERT_NONNULL(ipc::parseTicks("2021-03-25T21:36:23Z")));
  b.setValidTo(KJ_ASSERT_NONNULL(ipc::parseTicks("2021-03-25T21:36:23Z")));
  b.setComment("");
  if (withSecret) b.setSecretValue("");
  b.setPublicValue("");
  b.setIsActive(false);
}

class FakeSession final : public rpc::Session::Server {
 public:
  explicit FakeSession(FakeState& s) : s_(s) {}
  kj::Promise<void> createDefault(CreateDefaultContext context) override {
    s_.calls.add(kj::str("createDefault"));
    fillCredential(context.getResults().initCredential(), true);
    return kj::READY_NOW;
  }
  // The gateway sends only get/save/remove (the deprecated *ForAssociate calls are not
  // implemented here): "get TYPE" for the caller's own entries, "get for ID TYPE" otherwise.
  kj::Promise<void> get(GetContext context) override {
    auto p = context.getParams();
    if (p.getAssociateId() == 0) {
      s_.calls.add(kj::str("get ", p.getType()));
      fillCredential(context.getResults().initCredentials(1)[0], true);
      return kj::READY_NOW;
    }
    s_.calls.add(kj::str("get for ", p.getAssociateId(), " ", p.getType()));
    if (p.getAssociateId() == 99) {
      auto e = context.getResults().initError();
      e.setCode(rpc::ErrorCode::NOT_FOUND);
      e.setField("associateId");
      e.setMessage("No such associate");
      return kj::READY_NOW;
    }
    fillCredential(context.getResults().initCredentials(1)[0], false);  // secret withheld
    return kj::READY_NOW;
  }
  kj::Promise<void> save(SaveContext context) override {
    auto p = context.getParams();
    auto c = p.getCredential();
    if (p.getAssociateId() != 0) {
      s_.calls.add(kj::str("save for ", p.getAssociateId()));
      return kj::READY_NOW;
    }
    s_.calls.add(kj::str("save ", p.getType()));
    s_.saved.add(
        kj::str(c.getValidFrom(), "|", c.getComment(), "|",
                c.hasSecretValue() ? kj::str("secret=", c.getSecretValue()) : kj::str("keep"), "|",
                c.getPublicValue(), "|", c.getIsActive()));
    return kj::READY_NOW;
  }
  kj::Promise<void> remove(RemoveContext context) override {
    if (context.getParams().getAssociateId() != 0) {
      s_.calls.add(kj::str("remove for ", context.getParams().getAssociateId()));
      return kj::READY_NOW;
    }
    s_.calls.add(kj::str("remove ", context.getParams().getType(), " ",
                         context.getParams().getPublicValue()));
    context.getResults().setRemoved(true);
    return kj::READY_NOW;
  }

 private:
  FakeState& s_;
};

class FakeVault final : public rpc::Vault::Server {
 public:
  explicit FakeVault(FakeState& s) : s_(s) {}
  kj::Promise<void> session(SessionContext context) override {
    KJ_FAIL_REQUIRE("the gateway must never use its own peer identity");
  }
  kj::Promise<void> authenticateTicket(AuthenticateTicketContext context) override {
    auto p = context.getParams();
    s_.calls.add(kj::str("ticket app=", p.hasAppToken() ? p.getAppToken() : "-"));
    recordOrigin(s_, "ticket", p);
    if (p.getTicket() == "7T:hang") return kj::NEVER_DONE;
    if (p.getTicket() != "7T:good") {
      auto e = context.getResults().initError();
      e.setCode(rpc::ErrorCode::NOT_AUTHENTICATED);
      e.setMessage("The ticket is not valid");
      return kj::READY_NOW;
    }
    context.getResults().setSession(kj::heap<FakeSession>(s_));
    return kj::READY_NOW;
  }
  kj::Promise<void> authenticatePassword(AuthenticatePasswordContext context) override {
    auto p = context.getParams();
    s_.calls.add(kj::str("password ", p.getName(), " issue=", p.getIssueTicket()));
    recordOrigin(s_, "password", p);
    if (p.getName() != "alice" || p.getPassword() != "pw") {
      auto e = context.getResults().initError();
      e.setCode(rpc::ErrorCode::NOT_AUTHENTICATED);
      e.setMessage("Wrong user name or password");
      return kj::READY_NOW;
    }
    auto r = context.getResults();
    r.setSession(kj::heap<FakeSession>(s_));
    auto principal = r.initPrincipal();
    principal.setAssociateId(7);
    principal.setName("alice");
    r.setTicket("7T:issued");
    return kj::READY_NOW;
  }
  kj::Promise<void> authenticateToken(AuthenticateTokenContext context) override {
    auto p = context.getParams();
    s_.calls.add(kj::str("token"));
    recordOrigin(s_, "token", p);
    context.getResults().setSession(kj::heap<FakeSession>(s_));
    return kj::READY_NOW;
  }

 private:
  FakeState& s_;
};

class SoapServiceTest : public testing::Test {
 protected:
  SoapServiceTest()
      : socketPath(kj::str("/tmp/credvault-soap-test-", getpid(), ".sock")),
        server(kj::heap<FakeVault>(state), kj::str("unix:", socketPath)),
        ws(server.getWaitScope()),
        link(server.getIoProvider().getNetwork(), server.getIoProvider().getTimer(),
             kj::heapString(socketPath)),
        service(link) {
    server.getPort().wait(ws);
  }

  // What the HTTP server fills in before a handler sees the request.
  static void arrived(http::HttpRequest& req) {
    req.peer = "192.0.2.7:5000";
    req.client = "192.0.2.7";
    req.local = "198.51.100.1:8080";
    memcpy(req.id.text, "00112233aabbccdd", http::REQUEST_ID_CHARS);
  }
  ~SoapServiceTest() noexcept override { unlink(socketPath.cStr()); }

  struct Reply {
    uint status;
    kj::String contentType;
    kj::String body;
  };

  Reply post(kj::StringPtr path, kj::StringPtr contentType, kj::StringPtr body,
             kj::StringPtr extraHeaders = "") {
    auto head =
        kj::str("POST ", path, " HTTP/1.1\r\nHost: gw.example:8080\r\nContent-Type: ", contentType,
                "\r\n", extraHeaders, "\r\n");
    size_t scanned = 0;
    size_t end = http::findHeadEnd(head.asArray(), scanned);
    auto parsed = http::parseRequestHead(head.asArray().slice(0, end), {});
    auto& req = parsed.get<http::HttpRequest>();
    arrived(req);
    req.body = http::WipedBytes(kj::heapArray<kj::byte>(body.asBytes()));
    auto rest = req.path.slice(strlen("/Remote/"));
    auto response = service.handle(req, rest, "").wait(ws);
    return Reply{response.status, kj::mv(response.contentType),
                 kj::heapString(response.body.chars())};
  }

  Reply get(kj::StringPtr target, kj::Maybe<SoapService&> other = nullptr,
            kj::StringPtr local = "198.51.100.1:8080") {
    auto head = kj::str("GET ", target, " HTTP/1.1\r\nHost: gw.example:8080\r\n\r\n");
    size_t scanned = 0;
    size_t end = http::findHeadEnd(head.asArray(), scanned);
    auto parsed = http::parseRequestHead(head.asArray().slice(0, end), {});
    auto& req = parsed.get<http::HttpRequest>();
    arrived(req);
    req.local = local;
    auto rest = req.path.slice(strlen("/Remote/"));
    SoapService* s = &service;
    KJ_IF_MAYBE(o, other) { s = o; }
    auto response = s->handle(req, rest, "/Cust1").wait(ws);
    return Reply{response.status, kj::mv(response.contentType),
                 kj::heapString(response.body.chars())};
  }

  Reply postSeed(kj::StringPtr seed, kj::StringPtr path, kj::StringPtr ticket = "7T:good") {
    auto text =
        replaceAll(readData(kj::str(seed, ".request.xml")), "7T:1234abcxyzExample==", ticket);
    return post(path, "application/soap+xml; charset=utf-8", text);
  }

  FakeState state;
  kj::String socketPath;
  capnp::EzRpcServer server;
  kj::WaitScope& ws;
  frontends::VaultLink link;
  SoapService service;
};

TEST_F(SoapServiceTest, PublishedExamplesGiveThePublishedResponseShapes) {
  struct Case {
    kj::StringPtr seed;
    kj::StringPtr path;
  } cases[] = {
      {"s86-save-for-associate", "/Remote/Services86/User.svc"},
      {"s75-save", "/Remote/Services75/User.svc"},
      {"s86-get-for-associate", "/Remote/Services86/User.svc"},
      {"s88-save-for-associate", "/Remote/Services88/User.svc"},
  };
  for (auto& c : cases) {
    auto reply = postSeed(c.seed, c.path);
    EXPECT_EQ(reply.status, 200u) << c.seed.cStr();
    EXPECT_EQ(reply.contentType, "application/soap+xml; charset=utf-8");
    EXPECT_TRUE(contains(reply.body, "<User:Succeeded>true</User:Succeeded>")) << reply.body.cStr();
    EXPECT_FALSE(contains(reply.body, "xsi:type")) << reply.body.cStr();
    auto expected = readData(kj::str(c.seed, ".response.xml"));
    EXPECT_EQ(bodyShape(reply.body), bodyShape(expected)) << c.seed.cStr();
    // The namespace declarations of the published envelope, in the same order.
    auto head = [](kj::StringPtr t) {
      const char* end = strstr(t.cStr(), ">\n");
      return kj::heapString(t.cStr(), end - t.cStr());
    };
    if (c.seed != "s88-save-for-associate") {  // the 88 page lost its indentation
      EXPECT_EQ(head(reply.body), head(expected)) << c.seed.cStr();
    }
  }
  // AssociateId 0 is the authenticated associate: the plain operations were called.
  EXPECT_EQ(kj::strArray(state.calls, ","),
            "ticket app=1234567-1234-9876,save ,ticket app=1234567-1234-9876,save ,"
            "ticket app=1234567-1234-9876,get ,ticket app=1234567-1234-9876,save ");
  EXPECT_EQ(state.saved[0], kj::str(KJ_ASSERT_NONNULL(ipc::parseTicks("2021-03-25T21:36:23Z")),
                                    "||secret=||false"));
}

TEST_F(SoapServiceTest, WrongTicketIsExceptionInfoAndNothingIsCalled) {
  auto reply = postSeed("s86-save-for-associate", "/Remote/Services86/User.svc", "7T:bad");
  EXPECT_EQ(reply.status, 200u);
  EXPECT_TRUE(contains(reply.body, "<User:Succeeded>false</User:Succeeded>"));
  EXPECT_TRUE(contains(reply.body, "SoSecurityException"));
  EXPECT_FALSE(contains(reply.body, "7T:bad"));
  EXPECT_EQ(kj::strArray(state.calls, ","), "ticket app=1234567-1234-9876");
  EXPECT_EQ(state.saved.size(), 0u);
}

TEST_F(SoapServiceTest, MissingTicketIsRefusedWithoutCallingTheDaemon) {
  auto text = replaceAll(readData("s86-get-for-associate.request.xml"),
                         "<User:Ticket>7T:1234abcxyzExample==</User:Ticket>", "");
  auto reply = post("/Remote/Services86/User.svc", "application/soap+xml", text);
  EXPECT_TRUE(contains(reply.body, "SoSecurityException"));
  EXPECT_EQ(state.calls.size(), 0u);
}

TEST_F(SoapServiceTest, DaemonErrorsBecomeExceptionInfoWithTheField) {
  auto text = replaceAll(readData("s86-get-for-associate.request.xml"), "\"xsd:int\">0<",
                         "\"xsd:int\">99<");
  text = replaceAll(text, "7T:1234abcxyzExample==", "7T:good");
  auto reply = post("/Remote/Services86/User.svc", "application/soap+xml", text);
  EXPECT_TRUE(contains(reply.body, "<User:ExceptionType>SoNotFoundException</User:ExceptionType>"));
  EXPECT_TRUE(contains(reply.body, "<User:Value>AssociateId</User:Value>"));
  EXPECT_FALSE(contains(reply.body, "xsi:type"));
  EXPECT_TRUE(contains(reply.body, "No such associate"));
}

TEST_F(SoapServiceTest, Soap11WithSoapActionAndHeaderElement) {
  auto envelope = kj::str(
      "\xef\xbb\xbf<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">"
      "<s:Header><Credentials xmlns=\"http://www.superoffice.net/ws/crm/NetServer/Services83\">"
      "<Ticket>7T:good</Ticket></Credentials></s:Header><s:Body>"
      "<RemoveUntrustedCredentialsForAssociate xmlns=\"http://www.superoffice.net/ws/crm/NetServer/"
      "Services83\"><AssociateId>12</AssociateId><Type>imap</Type><PublicValue>me@x</PublicValue>"
      "</RemoveUntrustedCredentialsForAssociate></s:Body></s:Envelope>");
  auto reply = post("/Remote/Services83/User.svc", "text/xml; charset=utf-8", envelope,
                    "SOAPAction: \"http://www.superoffice.net/ws/crm/NetServer/Services83/User/"
                    "RemoveUntrustedCredentialsForAssociate\"\r\n");
  EXPECT_EQ(reply.status, 200u);
  EXPECT_EQ(reply.contentType, "text/xml; charset=utf-8");
  EXPECT_TRUE(contains(reply.body, "http://schemas.xmlsoap.org/soap/envelope/"));
  EXPECT_TRUE(contains(reply.body, "<User:RemoveUntrustedCredentialsForAssociateResponse>"));
  EXPECT_EQ(state.calls.back(), "remove for 12");

  auto mismatch = post("/Remote/Services83/User.svc", "text/xml", envelope,
                       "SOAPAction: \"http://www.superoffice.net/ws/crm/NetServer/Services83/User/"
                       "SaveUntrustedCredentials\"\r\n");
  EXPECT_EQ(mismatch.status, 500u);
  EXPECT_TRUE(contains(mismatch.body, "does not match"));
}

TEST_F(SoapServiceTest, UnknownOperationVersionAndNamespaceAreFaults) {
  auto text = replaceAll(readData("s86-get-for-associate.request.xml"),
                         "7T:1234abcxyzExample==", "7T:good");
  auto unknownOp = post("/Remote/Services86/User.svc", "application/soap+xml",
                        replaceAll(text, "GetUntrustedCredentialsForAssociate", "GetUserInfo"));
  EXPECT_EQ(unknownOp.status, 400u);
  EXPECT_TRUE(contains(unknownOp.body, "not supported"));
  auto wrongNs = post("/Remote/Services85/User.svc", "application/soap+xml", text);
  EXPECT_EQ(wrongNs.status, 400u);
  EXPECT_TRUE(contains(wrongNs.body, "namespace"));
  auto unknownVersion = post("/Remote/Services79/User.svc", "application/soap+xml", text);
  EXPECT_EQ(unknownVersion.status, 404u);
  EXPECT_TRUE(contains(unknownVersion.body, "Services79 is not a supported service version"));
  auto unknownService = post("/Remote/Services86/Contact.svc", "application/soap+xml", text);
  EXPECT_EQ(unknownService.status, 404u);
  auto json = post("/Remote/Services86/User.svc", "application/json", "{}");
  EXPECT_EQ(json.status, 415u);
  auto notXml = post("/Remote/Services86/User.svc", "application/soap+xml", "<a><b></a>");
  EXPECT_EQ(notXml.status, 400u);
  EXPECT_TRUE(contains(notXml.body, "not a readable XML document: line 1: end tag"));
  EXPECT_EQ(state.calls.size(), 0u);
}

TEST_F(SoapServiceTest, TooLongSecretIsRefusedBeforeTheDaemon) {
  auto text = replaceAll(readData("s86-save-for-associate.request.xml"),
                         "7T:1234abcxyzExample==", "7T:good");
  text = replaceAll(text, "<User:SecretValue xsi:type=\"xsd:string\"></User:SecretValue>",
                    kj::str("<User:SecretValue xsi:type=\"xsd:string\">", kj::repeat('s', 71),
                            "</User:SecretValue>"));
  auto reply = post("/Remote/Services86/User.svc", "application/soap+xml", text);
  EXPECT_TRUE(contains(reply.body, "SecretValue is longer than 70 characters"));
  EXPECT_TRUE(contains(reply.body, "ArgumentOutOfRangeException"));
  EXPECT_EQ(state.calls.size(), 0u);
}

TEST_F(SoapServiceTest, SoPrincipalIssuesATicketOrSaysFalse) {
  auto envelope = [](kj::StringPtr user, kj::StringPtr password) {
    return kj::str(
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\" "
        "xmlns:SoPrincipal=\"http://www.superoffice.net/ws/crm/NetServer/Services86\">"
        "<SoPrincipal:ApplicationToken>app</SoPrincipal:ApplicationToken><SOAP-ENV:Body>"
        "<SoPrincipal:AuthenticateUsernamePassword><SoPrincipal:UserName>",
        user, "</SoPrincipal:UserName><SoPrincipal:Password>", password,
        "</SoPrincipal:Password></SoPrincipal:AuthenticateUsernamePassword></SOAP-ENV:Body>"
        "</SOAP-ENV:Envelope>");
  };
  auto ok =
      post("/Remote/Services86/SoPrincipal.svc", "application/soap+xml", envelope("alice", "pw"));
  EXPECT_TRUE(contains(ok.body, "<SoPrincipal:Ticket>7T:issued<"));
  EXPECT_TRUE(contains(ok.body, "<SoPrincipal:AuthenticationSucceeded>true<"));
  EXPECT_TRUE(contains(ok.body, "<SoPrincipal:AssociateId>7<"));
  EXPECT_TRUE(contains(ok.body, "<SoPrincipal:UserType>InternalAssociate<"));
  EXPECT_FALSE(contains(ok.body, "xsi:type"));
  EXPECT_TRUE(contains(ok.body,
                       "xmlns:NetServerServices863=\"http://schemas.microsoft.com/2003/"
                       "10/Serialization/Arrays\""));
  auto bad = post("/Remote/Services86/SoPrincipal.svc", "application/soap+xml",
                  envelope("alice", "wrong"));
  EXPECT_TRUE(contains(bad.body, "<SoPrincipal:AuthenticationSucceeded>false<"));
  EXPECT_TRUE(contains(bad.body, "<SoPrincipal:Response xsi:nil=\"true\"/>"));
  EXPECT_FALSE(contains(bad.body, "7T:"));
  EXPECT_FALSE(contains(bad.body, "ExceptionInfo"));
  EXPECT_EQ(kj::strArray(state.calls, ","), "password alice issue=true,password alice issue=true");
}

TEST_F(SoapServiceTest, AHungDaemonCallTimesOutAsUnavailable) {
  frontends::VaultLink quick(server.getIoProvider().getNetwork(), server.getIoProvider().getTimer(),
                             kj::heapString(socketPath), 50 * kj::MILLISECONDS);
  frontends::Caller caller;
  caller.secret = frontends::SensitiveText("7T:hang"_kj);
  frontends::OpRequest request;
  request.op = Op::GET;
  request.type = kj::str("imap");
  auto result = frontends::perform(quick, caller, kj::mv(request)).wait(ws);
  auto& failure = KJ_ASSERT_NONNULL(result.failure);
  EXPECT_EQ(failure.code, rpc::ErrorCode::UNAVAILABLE);
}

TEST_F(SoapServiceTest, ServesAWsdlPerServiceAndVersion) {
  auto user = get("/Remote/Services84/User.svc?wsdl");
  EXPECT_EQ(user.status, 200u);
  EXPECT_TRUE(contains(user.body,
                       "targetNamespace=\"http://www.superoffice.net/ws/crm/NetServer/"
                       "Services84\""));
  // Our own address, never the Host header the client sent (gw.example:8080).
  EXPECT_TRUE(contains(user.body,
                       "location=\"http://198.51.100.1:8080/Cust1/Remote/Services84/"
                       "User.svc\""));
  EXPECT_FALSE(contains(user.body, "gw.example"));
  EXPECT_TRUE(contains(user.body,
                       "soapAction=\"http://www.superoffice.net/ws/crm/NetServer/"
                       "Services84/User/SaveUntrustedCredentialsForAssociate\""));
  parseDoc(user.body);
  auto principal = get("/Remote/Services75/SoPrincipal.svc?WSDL");
  EXPECT_TRUE(contains(principal.body, "AuthenticateUsernamePassword"));
  parseDoc(principal.body);
  EXPECT_EQ(get("/Remote/Services87/User.svc").status, 200u);
}

TEST_F(SoapServiceTest, WsdlNamesThePublicUrlWhenConfigured) {
  SoapService behindProxy(link, "https://vault.example.com/base");
  auto user = get("/Remote/Services86/User.svc?wsdl", behindProxy);
  EXPECT_TRUE(contains(user.body,
                       "<soap:address location=\"https://vault.example.com/base/Cust1/Remote/"
                       "Services86/User.svc\" />"))
      << user.body.cStr();
  EXPECT_FALSE(contains(user.body, "198.51.100.1"));
  EXPECT_FALSE(contains(user.body, "gw.example"));
  // The cached document follows the address: another listener, another location.
  auto first = get("/Remote/Services86/User.svc?wsdl");
  auto second = get("/Remote/Services86/User.svc?wsdl", nullptr, "[2001:db8::1]:80");
  EXPECT_TRUE(
      contains(first.body, "\"http://198.51.100.1:8080/Cust1/Remote/Services86/User.svc\""));
  EXPECT_TRUE(
      contains(second.body, "\"http://[2001:db8::1]:80/Cust1/Remote/Services86/User.svc\""));
  // Not over an IP socket (a Unix socket): a fixed name, still not the Host header.
  auto unix = get("/Remote/Services86/User.svc?wsdl", nullptr, "");
  EXPECT_TRUE(contains(unix.body, "\"http://localhost/Cust1/Remote/Services86/User.svc\""));
}

TEST_F(SoapServiceTest, EveryAuthenticateCallCarriesClientAddressAndRequestId) {
  auto user = postSeed("s86-get-for-associate", "/Remote/Services86/User.svc");
  EXPECT_EQ(user.status, 200u);
  auto login = post("/Remote/Services86/SoPrincipal.svc", "application/soap+xml",
                    "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body>"
                    "<AuthenticateUsernamePassword xmlns=\"http://www.superoffice.net/ws/crm/"
                    "NetServer/Services86\"><UserName>alice</UserName><Password>pw</Password>"
                    "</AuthenticateUsernamePassword></e:Body></e:Envelope>");
  EXPECT_EQ(login.status, 200u);
  // Bearer tokens come from REST only; the shared operation layer sends them the same way.
  frontends::Caller caller;
  caller.kind = frontends::Caller::TOKEN;
  caller.secret = frontends::SensitiveText("tok"_kj);
  caller.clientAddress = kj::str("2001:db8::7");
  caller.requestId = kj::str("ffeeddccbbaa9988");
  frontends::OpRequest request;
  request.type = kj::str("imap");
  frontends::perform(link, caller, kj::mv(request)).wait(ws);
  EXPECT_EQ(kj::strArray(state.origins, ","),
            "ticket 192.0.2.7 00112233aabbccdd,password 192.0.2.7 00112233aabbccdd,"
            "token 2001:db8::7 ffeeddccbbaa9988");
}

}  // namespace
}  // namespace credvault::soap
