#include "binding.h"

#include "base/ascii.h"
#include "base/parse-int.h"

#include "frontends/rest/json.h"
#include "frontends/xml/reader.h"

#include <kj/debug.h>
#include <string.h>

namespace credvault::rest {

using frontends::Caller;
using frontends::Op;
using frontends::OpRequest;
using frontends::SensitiveText;

RestError badRequest(kj::StringPtr detail, kj::Maybe<kj::StringPtr> field) {
  return RestError{400, kj::str("The request is invalid."), kj::str(detail),
                   field.map([](kj::StringPtr f) { return kj::str(f); })};
}

namespace {

using base::equalsIgnoreCase;

// ---- a format-neutral view of a parsed body -----------------------------------------------

// JSON values keep their type; XML and form values are TEXT (untyped) and are parsed.
struct Node {
  enum class Kind { NUL, TEXT, STRING, NUMBER, BOOLEAN, ARRAY, OBJECT } kind = Kind::NUL;
  kj::StringPtr text;
  bool boolean = false;
  kj::Vector<kj::StringPtr> names;
  kj::Vector<kj::Own<Node>> members;
  kj::Vector<kj::String> storage;  // names cut out of form fields (a StringPtr needs a NUL)

  kj::StringPtr keep(kj::ArrayPtr<const char> text) {
    storage.add(kj::heapString(text));
    return storage.back();
  }

  kj::Maybe<const Node&> member(kj::StringPtr name) const {
    for (size_t i = 0; i < names.size(); i++) {
      if (equalsIgnoreCase(names[i], name)) return *members[i];
    }
    return nullptr;
  }
  kj::StringPtr describe() const {
    switch (kind) {
      case Kind::NUL:
        return "null";
      case Kind::TEXT:
        return "text";
      case Kind::STRING:
        return "a string";
      case Kind::NUMBER:
        return "a number";
      case Kind::BOOLEAN:
        return "a boolean";
      case Kind::ARRAY:
        return "an array";
      case Kind::OBJECT:
        return "an object";
    }
    return "a value";
  }
};

kj::Own<Node> fromJson(const JsonValue& v) {
  auto n = kj::heap<Node>();
  switch (v.type) {
    case JsonValue::Type::NUL:
      n->kind = Node::Kind::NUL;
      break;
    case JsonValue::Type::BOOLEAN:
      n->kind = Node::Kind::BOOLEAN;
      n->boolean = v.boolean;
      break;
    case JsonValue::Type::NUMBER:
      n->kind = Node::Kind::NUMBER;
      n->text = v.text;
      break;
    case JsonValue::Type::STRING:
      n->kind = Node::Kind::STRING;
      n->text = v.text;
      break;
    case JsonValue::Type::ARRAY:
      n->kind = Node::Kind::ARRAY;
      break;
    case JsonValue::Type::OBJECT:
      n->kind = Node::Kind::OBJECT;
      for (size_t i = 0; i < v.keys.size(); i++) {
        n->names.add(v.keys[i]);
        n->members.add(fromJson(*v.items[i]));
      }
      break;
  }
  return n;
}

// An element with children is an object; a leaf is text, or null with xsi:nil="true".
// On error: sets `error` and returns null.
kj::Own<Node> fromXml(const xml::Element& e, kj::Maybe<RestError>& error) {
  auto n = kj::heap<Node>();
  if (e.children.size() == 0) {
    if (e.isNil()) {
      n->kind = Node::Kind::NUL;
    } else {
      n->kind = Node::Kind::TEXT;
      n->text = e.text;
    }
    return n;
  }
  n->kind = Node::Kind::OBJECT;
  for (auto* child : e.children) {
    if (n->member(child->local) != nullptr) {
      error = badRequest(kj::str("XML: line ", child->line, ": element '", child->local,
                                 "' is given more than once"),
                         child->local);
      return kj::Own<Node>();
    }
    auto converted = fromXml(*child, error);
    if (converted.get() == nullptr) return kj::Own<Node>();
    n->names.add(child->local);
    n->members.add(kj::mv(converted));
  }
  return n;
}

// Form names address nested members as "Credentials.SecretValue" or "Credentials[SecretValue]".
// On error: sets `error` and returns null.
kj::Own<Node> fromForm(const FormData& form, kj::Maybe<RestError>& error) {
  auto fail = [&](kj::StringPtr detail) -> kj::Own<Node> {
    error = badRequest(detail);
    return kj::Own<Node>();
  };
  auto root = kj::heap<Node>();
  root->kind = Node::Kind::OBJECT;
  for (auto& f : form.fields()) {
    kj::StringPtr name = f.name;
    kj::StringPtr outer = name, inner;
    bool nested = false;
    KJ_IF_MAYBE(dot, name.findFirst('.')) {
      outer = root->keep(kj::arrayPtr(name.begin(), *dot));
      inner = name.slice(*dot + 1);
      nested = true;
    } else KJ_IF_MAYBE(open, name.findFirst('[')) {
      if (!name.endsWith("]")) return fail("form: a field name has an unclosed '['");
      outer = root->keep(kj::arrayPtr(name.begin(), *open));
      inner = root->keep(kj::arrayPtr(name.begin() + *open + 1, name.size() - *open - 2));
      nested = true;
    }
    auto leaf = kj::heap<Node>();
    leaf->kind = Node::Kind::TEXT;
    leaf->text = f.value;
    if (!nested) {
      if (root->member(outer) != nullptr) { return fail("form: a field is given more than once"); }
      root->names.add(outer);
      root->members.add(kj::mv(leaf));
      continue;
    }
    if (outer.size() == 0 || inner.size() == 0 || inner.findFirst('.') != nullptr ||
        inner.findFirst('[') != nullptr) {
      return fail("form: field names nest one level at most, as Credentials.SecretValue");
    }
    Node* parent = nullptr;
    for (size_t i = 0; i < root->names.size(); i++) {
      if (equalsIgnoreCase(root->names[i], outer)) parent = root->members[i].get();
    }
    if (parent == nullptr) {
      auto obj = kj::heap<Node>();
      obj->kind = Node::Kind::OBJECT;
      parent = obj.get();
      root->names.add(outer);
      root->members.add(kj::mv(obj));
    } else if (parent->kind != Node::Kind::OBJECT) {
      return fail("form: a field is given both as a value and with members");
    }
    if (parent->member(inner) != nullptr) return fail("form: a field is given more than once");
    parent->names.add(inner);
    parent->members.add(kj::mv(leaf));
  }
  return root;
}

// ---- typed readers ---------------------------------------------------------------------

struct Binder {
  kj::Maybe<RestError> error;

  // An empty text or string where a number, boolean or date belongs: refused, as in SOAP
  // (an empty date read as DateTime.MinValue would drop the client's value without a word).
  // null (JSON), xsi:nil (XML) or leaving the field out means none.
  bool refuseEmpty(const Node& n, kj::StringPtr path, kj::StringPtr expected) {
    if (n.kind != Node::Kind::TEXT && n.kind != Node::Kind::STRING) return false;
    for (char c : n.text) {
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
    }
    if (error == nullptr) {
      error = badRequest(
          kj::str(path, " is empty: give ", expected, ", or leave it out (or null) for none"),
          path);
    }
    return true;
  }

  void wrongType(kj::StringPtr path, kj::StringPtr expected, const Node& n) {
    if (error == nullptr) {
      error = badRequest(kj::str(path, " must be ", expected, ", not ", n.describe()), path);
    }
  }

  kj::Maybe<kj::StringPtr> string(const Node& n, kj::StringPtr path) {
    if (n.kind == Node::Kind::STRING || n.kind == Node::Kind::TEXT) return n.text;
    if (n.kind != Node::Kind::NUL) wrongType(path, "a string", n);
    return nullptr;
  }

  kj::Maybe<int32_t> int32(const Node& n, kj::StringPtr path) {
    if (n.kind == Node::Kind::TEXT && refuseEmpty(n, path, "an integer")) return nullptr;
    if (n.kind != Node::Kind::NUMBER && n.kind != Node::Kind::TEXT) {
      wrongType(path, "an integer", n);
      return nullptr;
    }
    kj::ArrayPtr<const char> t = n.text;  // trimmed below, so not NUL-terminated
    if (n.kind == Node::Kind::TEXT) {
      // xsd:int allows surrounding whitespace and a leading '+'.
      t = base::trimSpace(t);
      if (t.size() > 0 && t[0] == '+') t = t.slice(1, t.size());
    }
    size_t digits = t.size() - (t.size() > 0 && t[0] == '-' ? 1 : 0);
    if (digits == 0 || digits > 20) {
      if (error == nullptr) {
        error =
            badRequest(kj::str(path, " must be an integer from -2147483648 to 2147483647"), path);
      }
      return nullptr;
    }
    auto parsed = base::parseSigned(t, INT32_MIN, INT32_MAX);
    if (parsed.is<int64_t>()) return static_cast<int32_t>(parsed.get<int64_t>());
    if (error == nullptr) {
      error =
          parsed.get<base::IntError>() == base::IntError::NOT_A_NUMBER
              ? badRequest(kj::str(path, " must be an integer, without fraction or exponent"), path)
              : badRequest(kj::str(path, " is out of range (-2147483648 to 2147483647)"), path);
    }
    return nullptr;
  }

  kj::Maybe<bool> boolean(const Node& n, kj::StringPtr path) {
    if (n.kind == Node::Kind::BOOLEAN) return n.boolean;
    if (n.kind == Node::Kind::TEXT && refuseEmpty(n, path, "true or false")) return nullptr;
    if (n.kind == Node::Kind::TEXT) {
      // xsd:boolean, and the capitalised forms .NET's bool.ToString() writes.
      kj::StringPtr t = n.text;
      if (t == "true" || t == "1" || t == "True") return true;
      if (t == "false" || t == "0" || t == "False") return false;
      if (error == nullptr) { error = badRequest(kj::str(path, " must be true or false"), path); }
      return nullptr;
    }
    wrongType(path, "true or false", n);
    return nullptr;
  }

  // Null or absent is DateTime.MinValue (0).
  int64_t date(const Node& n, kj::StringPtr path) {
    if (n.kind == Node::Kind::NUL) return 0;
    if (refuseEmpty(n, path, "an ISO 8601 date such as 2024-05-01T12:00:00Z")) return 0;
    if (n.kind != Node::Kind::STRING && n.kind != Node::Kind::TEXT) {
      wrongType(path, "an ISO 8601 date", n);
      return 0;
    }
    kj::StringPtr t = n.text;
    if (t.size() <= 64) {
      KJ_IF_MAYBE(ticks, ipc::parseTicks(t)) { return *ticks; }
    }
    if (error == nullptr) {
      error = badRequest(kj::str(path,
                                 " must be an ISO 8601 date from 0001-01-01 to 9999-12-31, "
                                 "such as 2024-05-01T12:00:00Z"),
                         path);
    }
    return 0;
  }
};

kj::Maybe<const Node&> lookup(const Node* body, kj::StringPtr name) {
  if (body == nullptr) return nullptr;
  return body->member(name);
}

}  // namespace

kj::OneOf<BodyKind, RestError> bodyKind(const http::HttpRequest& request) {
  auto type = request.mediaType();
  if (request.body.size() == 0) return BodyKind::NONE;
  auto unsupported = [&]() {
    return RestError{415,
                     kj::str("The request entity's media type is not supported for this "
                             "resource."),
                     kj::str("Send application/json, text/json, application/xml, text/xml or "
                             "application/x-www-form-urlencoded, in UTF-8."),
                     nullptr};
  };
  KJ_IF_MAYBE(charset, request.contentTypeParameter("charset")) {
    if (!equalsIgnoreCase(*charset, "utf-8") && !equalsIgnoreCase(*charset, "utf8") &&
        !equalsIgnoreCase(*charset, "us-ascii")) {
      return unsupported();
    }
  }
  if (type == "application/json" || type == "text/json" || type == "application/json-patch+json" ||
      type == "application/merge-patch+json") {
    return BodyKind::JSON;
  }
  if (type == "application/xml" || type == "text/xml") return BodyKind::XML;
  if (type == "application/x-www-form-urlencoded") return BodyKind::FORM;
  return unsupported();
}

kj::OneOf<OpRequest, RestError> bindRequest(Op op, const http::HttpRequest& request,
                                            const FormData& query) {
  OpRequest out;
  out.op = op;
  if (op == Op::CREATE_DEFAULT) return kj::mv(out);  // no parameters: the body is not read

  BodyKind kind;
  {
    auto k = bodyKind(request);
    KJ_IF_MAYBE(err, k.tryGet<RestError>()) { return kj::mv(*err); }
    kind = k.get<BodyKind>();
  }

  // Parse into one of the three documents; `root` points into it.
  kj::Maybe<JsonDocument> json;
  kj::Maybe<xml::Document> xmlDoc;
  FormData form;
  kj::Own<Node> root;
  auto body = request.body.chars();
  switch (kind) {
    case BodyKind::NONE:
      break;
    case BodyKind::JSON: {
      auto parsed = parseJson(body);
      KJ_IF_MAYBE(err, parsed.tryGet<JsonError>()) {
        return badRequest(kj::str("JSON: ", err->message));
      }
      auto& doc = json.emplace(kj::mv(parsed.get<JsonDocument>()));
      if (doc.root().type == JsonValue::Type::NUL) break;  // "null": no parameters
      if (doc.root().type != JsonValue::Type::OBJECT) {
        return badRequest(kj::str("JSON: the body must be an object, not ", doc.root().describe()));
      }
      root = fromJson(doc.root());
      break;
    }
    case BodyKind::XML: {
      auto parsed = xml::parse(body);
      KJ_IF_MAYBE(err, parsed.tryGet<xml::ParseError>()) {
        return badRequest(kj::str("XML: ", err->message));
      }
      auto& doc = xmlDoc.emplace(kj::mv(parsed.get<xml::Document>()));
      kj::Maybe<RestError> error;
      root = fromXml(doc.root(), error);
      KJ_IF_MAYBE(err, error) { return kj::mv(*err); }
      if (root->kind == Node::Kind::TEXT && root->text.size() == 0) root = nullptr;  // <x/>
      if (root.get() != nullptr && root->kind != Node::Kind::OBJECT &&
          root->kind != Node::Kind::NUL) {
        return badRequest("XML: the root element must contain the parameters as elements");
      }
      if (root.get() != nullptr && root->kind == Node::Kind::NUL) root = nullptr;
      break;
    }
    case BodyKind::FORM: {
      auto parsed = parseForm(body);
      KJ_IF_MAYBE(err, parsed.tryGet<FormError>()) {
        return badRequest(kj::str("form: ", err->message));
      }
      form = kj::mv(parsed.get<FormData>());
      kj::Maybe<RestError> error;
      root = fromForm(form, error);
      KJ_IF_MAYBE(err, error) { return kj::mv(*err); }
      break;
    }
  }

  Binder b;
  const Node* bodyRoot = root.get();
  // Simple parameters from the body, else from the query string (as text).
  kj::Vector<kj::Own<Node>> queryNodes;
  auto simple = [&](kj::StringPtr name) -> kj::Maybe<const Node&> {
    KJ_IF_MAYBE(n, lookup(bodyRoot, name)) { return *n; }
    KJ_IF_MAYBE(v, query.get(name)) {
      auto n = kj::heap<Node>();
      n->kind = Node::Kind::TEXT;
      n->text = *v;
      auto& ref = *n;
      queryNodes.add(kj::mv(n));
      return ref;
    }
    return nullptr;
  };

  if (frontends::opHasAssociate(op)) {
    KJ_IF_MAYBE(n, simple("AssociateId")) {
      if (n->kind != Node::Kind::NUL) {
        KJ_IF_MAYBE(id, b.int32(*n, "AssociateId")) { out.associateId = *id; }
      }
    }
  }
  KJ_IF_MAYBE(n, simple("Type")) {
    KJ_IF_MAYBE(t, b.string(*n, "Type")) {
      out.type = kj::str(*t);
    } else if (b.error == nullptr) {
      b.error = badRequest("Type is required (it may be \"\")", "Type"_kj);
    }
  } else {
    b.error = badRequest("Type is required (it may be \"\")", "Type"_kj);
  }
  if (frontends::opHasPublicValue(op) && b.error == nullptr) {
    KJ_IF_MAYBE(n, simple("PublicValue")) {
      KJ_IF_MAYBE(t, b.string(*n, "PublicValue")) {
        out.publicValue = kj::str(*t);
      } else if (b.error == nullptr) {
        b.error = badRequest("PublicValue is required (it may be \"\")", "PublicValue"_kj);
      }
    } else {
      b.error = badRequest("PublicValue is required (it may be \"\")", "PublicValue"_kj);
    }
  }
  if (frontends::opHasCredential(op) && b.error == nullptr) {
    KJ_IF_MAYBE(c, lookup(bodyRoot, "Credentials")) {
      if (c->kind != Node::Kind::OBJECT) {
        if (c->kind == Node::Kind::NUL) {
          b.error = badRequest("Credentials is required", "Credentials"_kj);
        } else {
          b.wrongType("Credentials", "an object", *c);
        }
      } else {
        auto cred = out.credential();
        KJ_IF_MAYBE(n, c->member("ValidFrom")) {
          cred.setValidFrom(b.date(*n, "Credentials.ValidFrom"));
        }
        KJ_IF_MAYBE(n, c->member("ValidTo")) { cred.setValidTo(b.date(*n, "Credentials.ValidTo")); }
        KJ_IF_MAYBE(n, c->member("Comment")) {
          KJ_IF_MAYBE(t, b.string(*n, "Credentials.Comment")) { cred.setComment(*t); }
        }
        KJ_IF_MAYBE(n, c->member("SecretValue")) {
          KJ_IF_MAYBE(t, b.string(*n, "Credentials.SecretValue")) { cred.setSecretValue(*t); }
        }
        KJ_IF_MAYBE(n, c->member("PublicValue")) {
          KJ_IF_MAYBE(t, b.string(*n, "Credentials.PublicValue")) { cred.setPublicValue(*t); }
        }
        KJ_IF_MAYBE(n, c->member("IsActive")) {
          if (n->kind != Node::Kind::NUL) {
            KJ_IF_MAYBE(v, b.boolean(*n, "Credentials.IsActive")) { cred.setIsActive(*v); }
          }
        }
      }
    } else {
      b.error = badRequest("Credentials is required", "Credentials"_kj);
    }
  }
  KJ_IF_MAYBE(err, b.error) { return kj::mv(*err); }
  return kj::mv(out);
}

}  // namespace credvault::rest
