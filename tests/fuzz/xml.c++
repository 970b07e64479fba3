// libFuzzer target: frontends/xml/reader.h (parse, isValidXmlText) and, as an oracle,
// frontends/xml/writer.h.
//
// Checks, beyond "no crash": a parsed document respects every XmlLimits bound and holds only
// valid XML text; writing it back with XmlWriter and parsing that gives the same tree; and
// for the input as one string, XmlWriter is lossy exactly when isValidXmlText refuses it,
// and otherwise the string survives a trip through element text and an attribute value
// unchanged (a secret the gateway sends must reach the client as stored).

#include "frontends/xml/reader.h"
#include "frontends/xml/writer.h"
#include "tests/fuzz/fuzz-util.h"

#include <kj/debug.h>

namespace credvault::xml {
namespace {

void checkText(kj::StringPtr s) {
  KJ_ASSERT(isValidXmlText(s.asArray()));
}

// Walks the tree; returns the number of elements reached.
size_t checkElement(const Element& e, uint32_t depth, const XmlLimits& limits) {
  KJ_ASSERT(depth <= limits.maxDepth, depth);
  KJ_ASSERT(e.local.size() > 0 && e.local.size() <= limits.maxNameBytes);
  KJ_ASSERT(e.text.size() <= limits.maxTextBytes);
  KJ_ASSERT(e.attributes.size() <= limits.maxAttributes);
  KJ_ASSERT(e.children.size() == 0 || e.text.size() == 0);
  KJ_ASSERT(e.line >= 1);
  checkText(e.ns);
  checkText(e.local);
  checkText(e.text);
  for (auto& a : e.attributes) {
    KJ_ASSERT(a.local.size() > 0 && a.local.size() <= limits.maxNameBytes);
    KJ_ASSERT(a.value.size() <= limits.maxAttributeBytes);
    checkText(a.ns);
    checkText(a.value);
    KJ_ASSERT(KJ_ASSERT_NONNULL(e.attribute(a.ns, a.local)) == a.value);
  }
  e.isNil();
  size_t n = 1;
  for (auto* c : e.children) {
    KJ_ASSERT(e.count(c->ns, c->local) >= 1);
    n += checkElement(*c, depth + 1, limits);
  }
  return n;
}

// Writes `e` so that a reader sees the same names: every namespace gets a prefix declared on
// the element that uses it ("e" for the element, "a0", "a1", ... for attributes), and no
// default namespace is ever declared, so an unprefixed name is in no namespace.
void write(XmlWriter& w, const Element& e, kj::Vector<kj::String>& names) {
  kj::StringPtr qname = e.local;
  if (e.ns.size() > 0) {
    names.add(kj::str("e:", e.local));
    qname = names.back();
  }
  w.start(qname);
  if (e.ns.size() > 0) w.attr("xmlns:e", e.ns);
  for (size_t i = 0; i < e.attributes.size(); i++) {
    auto& a = e.attributes[i];
    if (a.ns.size() > 0) {
      names.add(kj::str("xmlns:a", i));
      w.attr(names.back(), a.ns);
      names.add(kj::str("a", i, ":", a.local));
      w.attr(names.back(), a.value);
    } else {
      w.attr(a.local, a.value);
    }
  }
  if (e.children.size() > 0) {
    for (auto* c : e.children) write(w, *c, names);
  } else {
    w.text(e.text);
  }
  w.end();
}

void sameTree(const Element& a, const Element& b) {
  KJ_ASSERT(a.ns == b.ns && a.local == b.local, a.ns, a.local, b.ns, b.local);
  KJ_ASSERT(a.text == b.text);
  KJ_ASSERT(a.attributes.size() == b.attributes.size());
  for (size_t i = 0; i < a.attributes.size(); i++) {
    auto& x = a.attributes[i];
    auto& y = b.attributes[i];
    KJ_ASSERT(x.ns == y.ns && x.local == y.local && x.value == y.value);
  }
  KJ_ASSERT(a.children.size() == b.children.size());
  for (size_t i = 0; i < a.children.size(); i++) sameTree(*a.children[i], *b.children[i]);
}

void roundTrip(const Document& doc, const XmlLimits& limits) {
  XmlWriter w;
  kj::Vector<kj::String> names;
  write(w, doc.root(), names);
  KJ_ASSERT(!w.lossy());
  auto out = w.finish();
  // The rewrite declares more namespaces and longer names than the original had.
  XmlLimits relaxed = limits;
  relaxed.maxAttributes = limits.maxAttributes * 2 + 1;
  relaxed.maxNameBytes = limits.maxNameBytes + 16;
  auto again = parse(out.asChars(), relaxed);
  KJ_IF_MAYBE(error, again.tryGet<ParseError>()) {
    KJ_FAIL_ASSERT("the writer's output does not parse", error->message);
  }
  auto& doc2 = again.get<Document>();
  KJ_ASSERT(doc2.elementCount() == doc.elementCount());
  sameTree(doc.root(), doc2.root());
}

// The whole input as one text value: the writer and isValidXmlText must agree, and a valid
// string must come back unchanged from element text and from an attribute value.
void writerOracle(kj::ArrayPtr<const char> input) {
  auto s = kj::heapString(input);
  bool valid = isValidXmlText(input);
  XmlWriter w;
  w.start("t").attr("a", s).text(s).end();
  KJ_ASSERT(w.lossy() == !valid, valid);
  if (!valid) return;
  XmlLimits limits;
  if (s.size() > limits.maxTextBytes || s.size() > limits.maxAttributeBytes) return;
  auto out = w.finish();
  auto parsed = parse(out.asChars());
  KJ_IF_MAYBE(error, parsed.tryGet<ParseError>()) {
    KJ_FAIL_ASSERT("escaped text does not parse", error->message);
  }
  auto& root = parsed.get<Document>().root();
  KJ_ASSERT(root.text == s, "text changed on the way through XML");
  KJ_ASSERT(KJ_ASSERT_NONNULL(root.attribute("", "a")) == s, "attribute changed");
}

void fuzzOne(kj::ArrayPtr<const char> input) {
  XmlLimits limits;
  auto parsed = parse(input, limits);
  KJ_IF_MAYBE(doc, parsed.tryGet<Document>()) {
    KJ_ASSERT(doc->elementCount() >= 1 && doc->elementCount() <= limits.maxElements);
    KJ_ASSERT(checkElement(doc->root(), 1, limits) == doc->elementCount());
    roundTrip(*doc, limits);
  } else {
    auto& message = parsed.get<ParseError>().message;
    KJ_ASSERT(message.startsWith("line "), message);
  }
  writerOracle(input);
}

}  // namespace
}  // namespace credvault::xml

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credvault::fuzz::runOne(
      [&]() { credvault::xml::fuzzOne(kj::arrayPtr(reinterpret_cast<const char*>(data), size)); });
  return 0;
}
