#include "user.h"
#include "ipc/errors.h"

#include "base/ascii.h"
#include "base/parse-int.h"

#include <kj/debug.h>

namespace credvault::soap {

using frontends::Failure;
using frontends::makeFailure;
using frontends::Op;
using frontends::OpRequest;
using frontends::OpResult;

kj::String formatDateTime(int64_t ticks) {
  if (ticks <= 0) return kj::str("0001-01-01T00:00:00");
  return kj::str(ipc::formatTicks(ticks), "Z");
}

namespace {

// Copies `s` without surrounding XML whitespace.
kj::String trimmed(kj::StringPtr s) {
  return kj::heapString(base::trimSpace(s));
}

Failure invalid(kj::StringPtr field, kj::StringPtr message) {
  return makeFailure(rpc::ErrorCode::INVALID_ARGUMENT, field, kj::str(field, " ", message));
}

// The single child `name`, null when absent; a Failure when it appears more than once.
kj::OneOf<const xml::Element*, Failure> single(const xml::Element& parent, kj::StringPtr ns,
                                               kj::StringPtr name) {
  size_t n = parent.count(ns, name);
  if (n > 1) return invalid(name, "appears more than once");
  KJ_IF_MAYBE(e, parent.child(ns, name)) { return &*e; }
  return static_cast<const xml::Element*>(nullptr);
}

kj::Maybe<int32_t> parseInt(kj::StringPtr text) {
  // xsd:int: surrounding whitespace and one leading '+' or '-'.
  KJ_IF_MAYBE(v, base::signedOrNull(base::trimSpace(text), INT32_MIN, INT32_MAX, true)) {
    return static_cast<int32_t>(*v);
  }
  return nullptr;
}

kj::Maybe<bool> parseBool(kj::StringPtr text) {
  auto t = trimmed(text);
  if (t == "true" || t == "1") return true;
  if (t == "false" || t == "0") return false;
  return nullptr;
}

}  // namespace

kj::Maybe<int64_t> parseDateTime(kj::StringPtr text) {
  auto t = trimmed(text);
  if (t.size() == 0) return nullptr;
  return ipc::parseTicks(t);
}

namespace {

// The text of a typed value (xsd:int, xsd:boolean, xsd:dateTime), or a Failure naming the
// element when it is empty: "none" is an absent element or xsi:nil="true" (callers skip
// both), never "" - an empty <ValidFrom/> (what node-soap sends for a JS Date) read as
// open-ended would drop the client's value without a word.
kj::OneOf<kj::String, Failure> typedText(const xml::Element& e, kj::StringPtr name,
                                         kj::StringPtr type) {
  auto t = trimmed(e.text);
  if (t.size() == 0) {
    return invalid(name, kj::str("is empty: give an ", type,
                                 ", or leave the element out (or send xsi:nil=\"true\") for none"));
  }
  return kj::mv(t);
}

// Reads an UntrustedCredentials carrier.
kj::Maybe<Failure> readCredential(const xml::Element& e, kj::StringPtr ns,
                                  rpc::Credential::Builder out) {
  auto get = [&](kj::StringPtr name, const xml::Element*& found) -> kj::Maybe<Failure> {
    auto r = single(e, ns, name);
    KJ_IF_MAYBE(f, r.tryGet<Failure>()) { return kj::mv(*f); }
    found = r.get<const xml::Element*>();
    if (found != nullptr && found->isNil()) found = nullptr;
    return nullptr;
  };
  const xml::Element* x;
  for (kj::StringPtr name : {"ValidFrom"_kj, "ValidTo"_kj}) {
    KJ_IF_MAYBE(f, get(name, x)) { return kj::mv(*f); }
    if (x == nullptr) continue;
    auto text = typedText(*x, name, "xsd:dateTime");
    KJ_IF_MAYBE(f, text.tryGet<Failure>()) { return kj::mv(*f); }
    KJ_IF_MAYBE(v, ipc::parseTicks(text.get<kj::String>())) {
      if (name == "ValidFrom") {
        out.setValidFrom(*v);
      } else {
        out.setValidTo(*v);
      }
    } else {
      return invalid(name, "is not a valid xsd:dateTime");
    }
  }
  KJ_IF_MAYBE(f, get("Comment", x)) { return kj::mv(*f); }
  if (x != nullptr) out.setComment(x->text);
  KJ_IF_MAYBE(f, get("SecretValue", x)) { return kj::mv(*f); }
  // Absent or nil: keep the stored secret. "" sets an empty secret.
  if (x != nullptr) out.setSecretValue(x->text);
  KJ_IF_MAYBE(f, get("PublicValue", x)) { return kj::mv(*f); }
  if (x != nullptr) out.setPublicValue(x->text);
  KJ_IF_MAYBE(f, get("IsActive", x)) { return kj::mv(*f); }
  if (x != nullptr) {
    auto text = typedText(*x, "IsActive", "xsd:boolean");
    KJ_IF_MAYBE(f, text.tryGet<Failure>()) { return kj::mv(*f); }
    KJ_IF_MAYBE(v, parseBool(text.get<kj::String>())) {
      out.setIsActive(*v);
    } else {
      return invalid("IsActive", "is not a valid xsd:boolean");
    }
  }
  return nullptr;
}

}  // namespace

kj::OneOf<OpRequest, Failure> readUserOperation(const xml::Element& op, Op which,
                                                kj::StringPtr ns) {
  OpRequest req;
  req.op = which;
  const xml::Element* x;
  auto get = [&](kj::StringPtr name) -> kj::Maybe<Failure> {
    auto r = single(op, ns, name);
    KJ_IF_MAYBE(f, r.tryGet<Failure>()) { return kj::mv(*f); }
    x = r.get<const xml::Element*>();
    if (x != nullptr && x->isNil()) x = nullptr;
    return nullptr;
  };

  if (frontends::opHasAssociate(which)) {
    KJ_IF_MAYBE(f, get("AssociateId")) { return kj::mv(*f); }
    // Absent AssociateId is xs:int's default, 0: the authenticated associate.
    if (x != nullptr) {
      auto text = typedText(*x, "AssociateId", "xsd:int");
      KJ_IF_MAYBE(f, text.tryGet<Failure>()) { return kj::mv(*f); }
      KJ_IF_MAYBE(v, parseInt(text.get<kj::String>())) {
        req.associateId = *v;
      } else {
        return invalid("AssociateId", "is not a valid xsd:int");
      }
    }
  }
  if (which != Op::CREATE_DEFAULT) {
    KJ_IF_MAYBE(f, get("Type")) { return kj::mv(*f); }
    if (x == nullptr) return invalid("Type", "is required");
    req.type = kj::heapString(x->text);
  }
  if (frontends::opHasCredential(which)) {
    KJ_IF_MAYBE(f, get("Credentials")) { return kj::mv(*f); }
    if (x == nullptr) return invalid("Credentials", "is required");
    KJ_IF_MAYBE(f, readCredential(*x, ns, req.credential())) { return kj::mv(*f); }
  }
  if (frontends::opHasPublicValue(which)) {
    KJ_IF_MAYBE(f, get("PublicValue")) { return kj::mv(*f); }
    if (x == nullptr) return invalid("PublicValue", "is required");
    req.publicValue = kj::heapString(x->text);
  }
  return kj::mv(req);
}

namespace {

void writeCredentialFields(ResponseWriter& w, rpc::Credential::Reader c, uint depth) {
  auto& x = w.xml();
  w.newline(depth);
  x.element(w.q("ValidFrom"), formatDateTime(c.getValidFrom()));
  w.newline(depth);
  x.element(w.q("ValidTo"), formatDateTime(c.getValidTo()));
  w.newline(depth);
  x.element(w.q("Comment"), c.getComment());
  w.newline(depth);
  // A withheld secret (null) is written empty.
  x.element(w.q("SecretValue"), c.getSecretValue());
  w.newline(depth);
  x.element(w.q("PublicValue"), c.getPublicValue());
  w.newline(depth);
  x.element(w.q("IsActive"), c.getIsActive() ? "true" : "false");
}

}  // namespace

void writeUserResponse(ResponseWriter& w, Op op, const OpResult& result) {
  auto& x = w.xml();
  w.newline(2);
  x.start(w.q(kj::str(frontends::opName(op), "Response")));
  bool content = false;
  if (result.failure == nullptr) {
    auto credentials = result.credentials();
    if (op == Op::CREATE_DEFAULT && credentials.size() > 0) {
      w.newline(3);
      x.start(w.q("Response"));
      writeCredentialFields(w, credentials[0], 4);
      w.newline(3);
      x.end();
      content = true;
    } else if (frontends::opReturnsList(op)) {
      w.newline(3);
      x.start(w.q("Response"));
      for (auto c : credentials) {
        w.newline(4);
        x.start(w.q("UntrustedCredentials"));
        writeCredentialFields(w, c, 5);
        w.newline(4);
        x.end();
      }
      if (credentials.size() > 0) w.newline(3);
      x.end();
      content = true;
    }
  }
  // A void answer (or a failure's) is declared with empty content: even a newline inside
  // would make it invalid against the WSDL (the published examples have one; WCF has none).
  if (content) w.newline(2);
  x.end();
}

void writeResultHeaders(ResponseWriter& w, kj::Maybe<const Failure&> failure) {
  auto& x = w.xml();
  w.beginHeader();
  KJ_IF_MAYBE(f, failure) {
    w.newline(2);
    x.start(w.q("ExceptionInfo"));
    w.newline(3);
    x.element(w.q("Message"), f->message);
    w.newline(3);
    x.element(w.q("FriendlyText"), f->message);
    w.newline(3);
    x.element(w.q("ExceptionType"), ipc::errorInfo(f->code).soapExceptionType);
    w.newline(3);
    x.element(w.q("Source"), "credvault");
    if (f->field.size() > 0) {
      w.newline(3);
      x.start(w.q("Parameters"));
      w.newline(4);
      x.start(w.q("SoExceptionInfoParametersKeyValuePair"));
      w.newline(5);
      x.element(w.q("Key"), "Field");
      w.newline(5);
      x.element(w.q("Value"), f->field);
      w.newline(4);
      x.end();
      w.newline(3);
      x.end();
    }
    w.newline(2);
    x.end();
  }
  w.newline(2);
  x.element(w.q("Succeeded"), failure == nullptr ? "true" : "false");
  w.endHeader();
}

}  // namespace credvault::soap
