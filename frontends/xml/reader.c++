#include "reader.h"

#include "base/ascii.h"
#include "base/utf8.h"

#include <kj/debug.h>
#include <string.h>

namespace credvault::xml {

// ---- Element ------------------------------------------------------------------------------

bool Element::is(kj::StringPtr nsUri, kj::StringPtr name) const {
  return ns == nsUri && local == name;
}

kj::Maybe<kj::StringPtr> Element::attribute(kj::StringPtr nsUri, kj::StringPtr name) const {
  for (auto& a : attributes) {
    if (a.ns == nsUri && a.local == name) return a.value;
  }
  return nullptr;
}

kj::Maybe<const Element&> Element::child(kj::StringPtr nsUri, kj::StringPtr name) const {
  for (auto* c : children) {
    if (c->is(nsUri, name)) return *c;
  }
  return nullptr;
}

size_t Element::count(kj::StringPtr nsUri, kj::StringPtr name) const {
  size_t n = 0;
  for (auto* c : children) {
    if (c->is(nsUri, name)) ++n;
  }
  return n;
}

bool Element::isNil() const {
  KJ_IF_MAYBE(v, attribute(XSI_NS, "nil")) {
    kj::StringPtr s = *v;
    while (s.size() > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n')) s = s.slice(1);
    return s.startsWith("true") || s.startsWith("1");
  }
  return false;
}

Document::~Document() {
  // Decoded text may include a password or a secret.
  if (arena_.size() > 0) explicit_bzero(arena_.begin(), arena_.size());
}

// ---- character validation -----------------------------------------------------------------

namespace {

bool isXmlChar(uint32_t cp) {
  return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
         (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

// Returns the offset of the first bad byte, or -1 when all is valid; `utf8` says which kind.
ptrdiff_t findInvalid(kj::ArrayPtr<const char> text, bool& badUtf8) {
  auto* p = reinterpret_cast<const unsigned char*>(text.begin());
  auto* end = reinterpret_cast<const unsigned char*>(text.end());
  auto* start = p;
  while (p < end) {
    if (*p >= 0x20 && *p < 0x80) {
      ++p;
      continue;
    }
    uint32_t cp;
    size_t n = base::utf8::decode(p, end, cp);
    if (n == 0) {
      badUtf8 = true;
      return p - start;
    }
    if (!isXmlChar(cp)) {
      badUtf8 = false;
      return p - start;
    }
    p += n;
  }
  return -1;
}

bool isNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool isNameChar(char c) {
  return isNameStart(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}
bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

}  // namespace

bool isValidXmlText(kj::ArrayPtr<const char> text) {
  bool badUtf8;
  return findInvalid(text, badUtf8) < 0;
}

// ---- the parser ---------------------------------------------------------------------------

class Parser {
 public:
  Parser(kj::ArrayPtr<const char> input, const XmlLimits& limits)
      : begin_(input.begin()), p_(input.begin()), end_(input.end()), limits_(limits) {}

  kj::OneOf<Document, ParseError> run() {
    try {
      document();
    } catch (const Failure& f) {
      uint32_t line = 1;
      for (const char* q = begin_; q < f.at && q < end_; ++q) {
        if (*q == '\n') ++line;
      }
      return ParseError{kj::str("line ", line, ": ", f.message)};
    }
    return kj::mv(doc_);
  }

 private:
  struct Failure {
    kj::StringPtr message;
    const char* at;
  };
  struct Binding {
    kj::StringPtr prefix;
    kj::StringPtr uri;
  };
  struct Open {
    Element* element;
    size_t bindingMark;
    kj::ArrayPtr<const char> qname;  // as written, to match the end tag
    char* textStart;
    bool hasChildren;
  };
  struct RawAttribute {
    kj::StringPtr prefix;
    kj::StringPtr local;
    kj::StringPtr value;
    kj::ArrayPtr<const char> qname;
  };

  const char* begin_;
  const char* p_;
  const char* end_;
  const XmlLimits& limits_;
  Document doc_;
  char* out_ = nullptr;
  char* outEnd_ = nullptr;
  kj::Vector<Binding> bindings_;
  kj::Vector<Open> stack_;
  kj::Vector<RawAttribute> rawAttributes_;

  [[noreturn]] void fail(kj::StringPtr message) { throw Failure{message, p_}; }
  [[noreturn]] void failAt(kj::StringPtr message, const char* at) { throw Failure{message, at}; }

  bool lookingAt(kj::StringPtr s) const {
    return static_cast<size_t>(end_ - p_) >= s.size() && memcmp(p_, s.begin(), s.size()) == 0;
  }
  void skipSpace() {
    while (p_ < end_ && isSpace(*p_)) ++p_;
  }
  void put(char c) {
    if (out_ == outEnd_) fail("internal: arena exhausted");
    *out_++ = c;
  }
  kj::StringPtr finishString(char* start) {
    put('\0');
    return kj::StringPtr(start, out_ - start - 1);
  }

  void document() {
    // Arena: decoded strings never exceed their source, plus one NUL each (at most one per
    // source byte), so twice the input bounds it.
    doc_.arena_ = kj::heapArray<char>((end_ - begin_) * 2 + 64);
    out_ = doc_.arena_.begin();
    outEnd_ = doc_.arena_.end();

    if (lookingAt("\xef\xbb\xbf")) {
      p_ += 3;
    } else if (end_ - p_ >= 2 &&
               ((p_[0] == '\xfe' && p_[1] == '\xff') || (p_[0] == '\xff' && p_[1] == '\xfe') ||
                p_[0] == '\0' || p_[1] == '\0')) {
      fail("only UTF-8 is supported");
    }
    bool badUtf8 = false;
    ptrdiff_t bad = findInvalid(kj::ArrayPtr<const char>(p_, end_), badUtf8);
    if (bad >= 0) { failAt(badUtf8 ? "invalid UTF-8" : "character not allowed in XML", p_ + bad); }

    if (lookingAt("<?xml") && end_ - p_ > 5 && isSpace(p_[5])) xmlDeclaration();

    // Prolog.
    for (;;) {
      skipSpace();
      if (p_ >= end_) fail("no root element");
      if (lookingAt("<!--")) {
        comment();
      } else if (lookingAt("<?")) {
        processingInstruction();
      } else if (lookingAt("<!DOCTYPE") || lookingAt("<!doctype")) {
        fail("DTDs are not allowed");
      } else if (lookingAt("<!")) {
        fail("markup declarations are not allowed");
      } else if (*p_ == '<') {
        break;
      } else {
        fail("text before the root element");
      }
    }

    content();

    // Epilog.
    for (;;) {
      skipSpace();
      if (p_ >= end_) break;
      if (lookingAt("<!--")) {
        comment();
      } else if (lookingAt("<?")) {
        processingInstruction();
      } else if (lookingAt("<!DOCTYPE") || lookingAt("<!doctype")) {
        fail("DTDs are not allowed");
      } else {
        fail("content after the root element");
      }
    }
  }

  void xmlDeclaration() {
    p_ += 5;
    for (;;) {
      skipSpace();
      if (lookingAt("?>")) {
        p_ += 2;
        return;
      }
      if (p_ >= end_) fail("unterminated XML declaration");
      const char* nameStart = p_;
      while (p_ < end_ && isNameChar(*p_)) ++p_;
      kj::ArrayPtr<const char> name(nameStart, p_);
      skipSpace();
      if (p_ >= end_ || *p_ != '=') fail("malformed XML declaration");
      ++p_;
      skipSpace();
      if (p_ >= end_ || (*p_ != '"' && *p_ != '\'')) fail("malformed XML declaration");
      char quote = *p_++;
      const char* valueStart = p_;
      while (p_ < end_ && *p_ != quote) ++p_;
      if (p_ >= end_) fail("unterminated XML declaration");
      kj::ArrayPtr<const char> value(valueStart, p_);
      ++p_;
      auto is = [](kj::ArrayPtr<const char> a, kj::StringPtr b) {
        return base::equalsIgnoreCase(a, b);
      };
      if (is(name, "version")) {
        if (!is(value, "1.0")) failAt("only XML 1.0 is supported", valueStart);
      } else if (is(name, "encoding")) {
        if (!is(value, "utf-8") && !is(value, "utf8") && !is(value, "us-ascii")) {
          failAt("only UTF-8 is supported", valueStart);
        }
      } else if (!is(name, "standalone")) {
        failAt("malformed XML declaration", nameStart);
      }
    }
  }

  void comment() {
    p_ += 4;
    const char* close = static_cast<const char*>(memmem(p_, end_ - p_, "-->", 3));
    if (close == nullptr) fail("unterminated comment");
    p_ = close + 3;
  }

  void processingInstruction() {
    p_ += 2;
    const char* target = p_;
    while (p_ < end_ && isNameChar(*p_)) ++p_;
    if (p_ == target) fail("malformed processing instruction");
    if (base::equalsIgnoreCase(kj::arrayPtr(target, p_), "xml")) {
      failAt("XML declaration is only allowed at the start", target);
    }
    const char* close = static_cast<const char*>(memmem(p_, end_ - p_, "?>", 2));
    if (close == nullptr) fail("unterminated processing instruction");
    p_ = close + 2;
  }

  // Reads a QName into the arena: prefix ("" when none) and local part.
  kj::ArrayPtr<const char> qname(kj::StringPtr& prefix, kj::StringPtr& local) {
    const char* start = p_;
    if (p_ >= end_ || !isNameStart(*p_)) fail("malformed name");
    const char* colon = nullptr;
    while (p_ < end_ && (isNameChar(*p_) || *p_ == ':')) {
      if (*p_ == ':') {
        if (colon != nullptr) fail("malformed name");
        colon = p_;
      }
      ++p_;
    }
    if (static_cast<size_t>(p_ - start) > limits_.maxNameBytes) failAt("name too long", start);
    if (colon != nullptr) {
      if (colon + 1 == p_ || !isNameStart(colon[1])) failAt("malformed name", start);
      char* s = out_;
      for (const char* q = start; q < colon; ++q) put(*q);
      prefix = finishString(s);
      s = out_;
      for (const char* q = colon + 1; q < p_; ++q) put(*q);
      local = finishString(s);
    } else {
      prefix = "";
      char* s = out_;
      for (const char* q = start; q < p_; ++q) put(*q);
      local = finishString(s);
    }
    return kj::ArrayPtr<const char>(start, p_);
  }

  // Decodes one reference at p_ ('&') into the arena.
  void reference() {
    const char* start = p_;
    ++p_;
    const char* semi = static_cast<const char*>(memchr(p_, ';', kj::min<size_t>(end_ - p_, 12)));
    if (semi == nullptr) failAt("malformed reference", start);
    kj::ArrayPtr<const char> name(p_, semi);
    p_ = semi + 1;
    auto is = [&](kj::StringPtr s) {
      return name.size() == s.size() && memcmp(name.begin(), s.begin(), s.size()) == 0;
    };
    if (is("lt")) return put('<');
    if (is("gt")) return put('>');
    if (is("amp")) return put('&');
    if (is("quot")) return put('"');
    if (is("apos")) return put('\'');
    if (name.size() >= 2 && name[0] == '#') {
      uint32_t cp = 0;
      bool hex = name[1] == 'x';
      size_t i = hex ? 2 : 1;
      if (i >= name.size()) failAt("malformed character reference", start);
      for (; i < name.size(); i++) {
        char c = name[i];
        int d = hex ? base::hexDigitValue(c) : base::isAsciiDigit(c) ? c - '0' : -1;
        if (d < 0) failAt("malformed character reference", start);
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
        if (cp > 0x10ffff) failAt("character reference out of range", start);
      }
      if (!isXmlChar(cp)) failAt("character reference to a character XML does not allow", start);
      char encoded[base::utf8::MAX_SEQUENCE];
      size_t length = base::utf8::encode(cp, encoded);  // isXmlChar: a scalar value
      for (size_t k = 0; k < length; k++) put(encoded[k]);
      return;
    }
    failAt("undefined entity (only the predefined entities are allowed)", start);
  }

  kj::StringPtr attributeValue() {
    if (p_ >= end_ || (*p_ != '"' && *p_ != '\'')) fail("attribute value must be quoted");
    char quote = *p_++;
    char* s = out_;
    while (p_ < end_ && *p_ != quote) {
      char c = *p_;
      if (c == '<') fail("'<' in attribute value");
      if (c == '&') {
        reference();
      } else if (c == '\r') {
        put(' ');
        ++p_;
        if (p_ < end_ && *p_ == '\n') ++p_;
      } else if (c == '\t' || c == '\n') {
        put(' ');
        ++p_;
      } else {
        put(c);
        ++p_;
      }
      if (static_cast<size_t>(out_ - s) > limits_.maxAttributeBytes) fail("attribute too long");
    }
    if (p_ >= end_) fail("unterminated attribute value");
    ++p_;
    return finishString(s);
  }

  kj::StringPtr resolve(kj::StringPtr prefix, bool isElement, const char* at) {
    if (prefix == "xml") return XML_NS;
    for (size_t i = bindings_.size(); i > 0; --i) {
      if (bindings_[i - 1].prefix == prefix) return bindings_[i - 1].uri;
    }
    if (prefix.size() == 0) return "";  // no default namespace in scope
    (void)isElement;
    failAt("unbound namespace prefix", at);
  }

  void startElement() {
    const char* tagStart = p_;
    ++p_;  // '<'
    if (stack_.size() >= limits_.maxDepth) fail("elements nested too deeply");
    if (doc_.elements_.size() >= limits_.maxElements) fail("too many elements");

    // The parent may hold only whitespace before a child element; drop it.
    if (stack_.size() > 0) {
      auto& parent = stack_.back();
      for (char* q = parent.textStart; q < out_; ++q) {
        if (!isSpace(*q)) failAt("mixed content is not supported", tagStart);
      }
      out_ = parent.textStart;
      parent.hasChildren = true;
    }

    auto element = kj::heap<Element>();
    Element& e = *element;
    kj::StringPtr prefix, local;
    auto name = qname(prefix, local);
    e.prefix = prefix;
    e.local = local;

    rawAttributes_.clear();
    size_t bindingMark = bindings_.size();
    bool selfClosing = false;
    for (;;) {
      bool hadSpace = p_ < end_ && isSpace(*p_);
      skipSpace();
      if (p_ >= end_) fail("unterminated start tag");
      if (*p_ == '>') {
        ++p_;
        break;
      }
      if (lookingAt("/>")) {
        p_ += 2;
        selfClosing = true;
        break;
      }
      if (!hadSpace) fail("attributes must be separated by whitespace");
      if (rawAttributes_.size() >= limits_.maxAttributes) fail("too many attributes");
      const char* attrStart = p_;
      RawAttribute a;
      a.qname = qname(a.prefix, a.local);
      skipSpace();
      if (p_ >= end_ || *p_ != '=') fail("attribute without value");
      ++p_;
      skipSpace();
      a.value = attributeValue();
      for (auto& other : rawAttributes_) {
        if (other.qname.size() == a.qname.size() &&
            memcmp(other.qname.begin(), a.qname.begin(), a.qname.size()) == 0) {
          failAt("duplicate attribute", attrStart);
        }
      }
      bool declares = (a.prefix.size() == 0 && a.local == "xmlns") || a.prefix == "xmlns";
      if (declares && bindings_.size() >= limits_.maxNamespaces) {
        failAt("too many namespace declarations in scope", attrStart);
      }
      if (a.prefix.size() == 0 && a.local == "xmlns") {
        bindings_.add(Binding{"", a.value});
      } else if (a.prefix == "xmlns") {
        if (a.local == "xmlns") failAt("the xmlns prefix cannot be declared", attrStart);
        if (a.local == "xml" && a.value != XML_NS) {
          failAt("the xml prefix cannot be rebound", attrStart);
        }
        if (a.value.size() == 0) failAt("a prefix cannot be bound to no namespace", attrStart);
        bindings_.add(Binding{a.local, a.value});
      }
      rawAttributes_.add(kj::mv(a));
    }

    e.ns = resolve(prefix, true, tagStart);
    for (auto& a : rawAttributes_) {
      if ((a.prefix.size() == 0 && a.local == "xmlns") || a.prefix == "xmlns") continue;
      kj::StringPtr ns =
          a.prefix.size() == 0 ? kj::StringPtr("") : resolve(a.prefix, false, tagStart);
      for (auto& other : e.attributes) {
        if (other.ns == ns && other.local == a.local) failAt("duplicate attribute", tagStart);
      }
      e.attributes.add(Attribute{ns, a.local, a.value});
    }
    e.line = lineOf(tagStart);

    if (stack_.size() > 0) stack_.back().element->children.add(&e);
    doc_.elements_.add(kj::mv(element));

    if (selfClosing) {
      e.text = "";
      bindings_.resize(bindingMark);
      if (stack_.size() > 0) stack_.back().textStart = out_;
    } else {
      stack_.add(Open{&e, bindingMark, name, out_, false});
    }
  }

  void endElement() {
    const char* tagStart = p_;
    p_ += 2;
    const char* nameStart = p_;
    while (p_ < end_ && (isNameChar(*p_) || *p_ == ':')) ++p_;
    kj::ArrayPtr<const char> name(nameStart, p_);
    skipSpace();
    if (p_ >= end_ || *p_ != '>') failAt("malformed end tag", tagStart);
    ++p_;
    auto& open = stack_.back();
    if (name.size() != open.qname.size() ||
        memcmp(name.begin(), open.qname.begin(), name.size()) != 0) {
      failAt("end tag does not match start tag", tagStart);
    }
    if (open.hasChildren) {
      for (char* q = open.textStart; q < out_; ++q) {
        if (!isSpace(*q)) failAt("mixed content is not supported", tagStart);
      }
      out_ = open.textStart;
      open.element->text = "";
    } else {
      open.element->text = finishString(open.textStart);
    }
    bindings_.resize(open.bindingMark);
    stack_.removeLast();
    // Text of the parent continues after everything this element put in the arena.
    if (stack_.size() > 0) stack_.back().textStart = out_;
  }

  // Line numbers, counted incrementally (positions only move forward).
  const char* lineScan_ = nullptr;
  uint32_t line_ = 1;
  uint32_t lineOf(const char* at) {
    if (lineScan_ == nullptr) lineScan_ = begin_;
    while (lineScan_ < at) {
      if (*lineScan_++ == '\n') ++line_;
    }
    return line_;
  }

  void checkTextSize() {
    if (static_cast<size_t>(out_ - stack_.back().textStart) > limits_.maxTextBytes) {
      fail("text too large");
    }
  }

  void content() {
    startElement();
    while (stack_.size() > 0) {
      if (p_ >= end_) fail("unexpected end of document (unclosed element)");
      char c = *p_;
      if (c == '<') {
        if (lookingAt("</")) {
          endElement();
        } else if (lookingAt("<!--")) {
          comment();
        } else if (lookingAt("<![CDATA[")) {
          p_ += 9;
          const char* close = static_cast<const char*>(memmem(p_, end_ - p_, "]]>", 3));
          if (close == nullptr) fail("unterminated CDATA section");
          while (p_ < close) { textChar(); }
          p_ = close + 3;
          checkTextSize();
        } else if (lookingAt("<!DOCTYPE") || lookingAt("<!doctype")) {
          fail("DTDs are not allowed");
        } else if (lookingAt("<!")) {
          fail("markup declarations are not allowed");
        } else if (lookingAt("<?")) {
          processingInstruction();
        } else {
          startElement();
        }
      } else if (c == '&') {
        reference();
        checkTextSize();
      } else {
        if (c == ']' && lookingAt("]]>")) fail("']]>' in text");
        textChar();
        checkTextSize();
      }
    }
  }

  // Copies one byte of character data, normalising CRLF and CR to LF.
  void textChar() {
    char c = *p_++;
    if (c == '\r') {
      if (p_ < end_ && *p_ == '\n') ++p_;
      c = '\n';
    }
    put(c);
  }
};

kj::OneOf<Document, ParseError> parse(kj::ArrayPtr<const char> input, const XmlLimits& limits) {
  return Parser(input, limits).run();
}

}  // namespace credvault::xml
