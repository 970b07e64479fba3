// credvault-gateway XML — a small, safe, namespace-aware XML reader for SOAP envelopes.
//
// Reads a complete document into a tree. What it refuses, by design:
//   - any DTD (`<!DOCTYPE` anywhere is an error), hence no entity declarations, no external
//     entities, no expansion beyond the five predefined entities and numeric character
//     references (billion laughs and XXE cannot be expressed);
//   - encodings other than UTF-8 (with or without BOM; an XML declaration may say "UTF-8" or
//     "US-ASCII"); invalid UTF-8 and characters that XML 1.0 forbids;
//   - unbound namespace prefixes, duplicate attributes, mismatched tags, content after the
//     root element, mixed content (non-blank text beside child elements: never in SOAP);
//   - documents past the limits in frontends/limits.h (depth, elements, text, attributes).
// Error messages name the problem and the line, never document content (which may be a
// password or a secret). Every decoded string lives in one arena that is wiped when the
// Document is destroyed. Never logs.

#pragma once

#include "frontends/limits.h"

#include <kj/array.h>
#include <kj/memory.h>
#include <kj/one-of.h>
#include <kj/string.h>
#include <kj/vector.h>

namespace credvault::xml {

constexpr kj::StringPtr XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"_kj;
constexpr kj::StringPtr XML_NS = "http://www.w3.org/XML/1998/namespace"_kj;

struct XmlLimits {
  uint32_t maxDepth = frontends::XML_MAX_DEPTH;
  uint32_t maxElements = frontends::XML_MAX_ELEMENTS;
  size_t maxTextBytes = frontends::XML_MAX_TEXT_BYTES;
  uint32_t maxAttributes = frontends::XML_MAX_ATTRIBUTES;
  // Each name is resolved by walking the declarations in scope, so their number bounds the
  // cost of a name (docs/fuzzing.md: 2,048 in scope made a 1 MiB body 8 times dearer).
  uint32_t maxNamespaces = frontends::XML_MAX_NAMESPACES;
  size_t maxNameBytes = frontends::XML_MAX_NAME_BYTES;
  size_t maxAttributeBytes = frontends::XML_MAX_ATTRIBUTE_BYTES;
};

struct Attribute {
  kj::StringPtr ns;  // namespace URI; "" for an unprefixed attribute
  kj::StringPtr local;
  kj::StringPtr value;  // decoded and normalised
};

struct Element {
  kj::StringPtr ns;  // namespace URI; "" when in no namespace
  kj::StringPtr local;
  kj::StringPtr prefix;              // as written ("" for none); for diagnostics only
  kj::StringPtr text;                // character data of a leaf element (decoded); "" otherwise
  kj::Vector<Attribute> attributes;  // without namespace declarations
  kj::Vector<const Element*> children;
  uint32_t line = 0;

  bool is(kj::StringPtr ns, kj::StringPtr local) const;
  kj::Maybe<kj::StringPtr> attribute(kj::StringPtr ns, kj::StringPtr local) const;
  // The first child with this name, and how many there are.
  kj::Maybe<const Element&> child(kj::StringPtr ns, kj::StringPtr local) const;
  size_t count(kj::StringPtr ns, kj::StringPtr local) const;
  // xsi:nil="true" (or "1").
  bool isNil() const;
};

class Document {
 public:
  Document(Document&&) = default;
  ~Document();
  const Element& root() const { return *elements_[0]; }
  size_t elementCount() const { return elements_.size(); }

 private:
  Document() = default;
  friend class Parser;
  kj::Array<char> arena_;
  kj::Vector<kj::Own<Element>> elements_;
};

struct ParseError {
  kj::String message;  // e.g. "line 3: DTDs are not allowed"
};

kj::OneOf<Document, ParseError> parse(kj::ArrayPtr<const char> input, const XmlLimits& limits = {});

// True when `text` is valid UTF-8 made only of characters XML 1.0 allows.
bool isValidXmlText(kj::ArrayPtr<const char> text);

}  // namespace credvault::xml
