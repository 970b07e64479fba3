#include "form.h"

#include "base/ascii.h"

#include "frontends/common/operations.h"

#include <string.h>

namespace credvault::rest {

namespace {

using base::hexDigitValue;

// Decodes one name or value; null when a %-escape is malformed.
kj::Maybe<kj::String> decode(kj::ArrayPtr<const char> in) {
  auto out = kj::heapString(in.size());
  size_t n = 0;
  for (size_t i = 0; i < in.size(); i++) {
    char c = in[i];
    if (c == '+') {
      out[n++] = ' ';
    } else if (c == '%') {
      if (i + 2 >= in.size()) {
        explicit_bzero(out.begin(), out.size());
        return nullptr;
      }
      int hi = hexDigitValue(in[i + 1]), lo = hexDigitValue(in[i + 2]);
      if (hi < 0 || lo < 0) {
        explicit_bzero(out.begin(), out.size());
        return nullptr;
      }
      out[n++] = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out[n++] = c;
    }
  }
  if (n == out.size()) return kj::mv(out);
  auto exact = kj::heapString(out.begin(), n);
  explicit_bzero(out.begin(), out.size());
  return kj::mv(exact);
}

bool hasNul(kj::StringPtr s) {
  return memchr(s.begin(), '\0', s.size()) != nullptr;
}

}  // namespace

FormData::~FormData() {
  for (auto& f : fields_) {
    if (f.value.size() > 0) explicit_bzero(f.value.begin(), f.value.size());
  }
}

kj::Maybe<kj::StringPtr> FormData::get(kj::StringPtr name) const {
  for (auto& f : fields_) {
    if (base::equalsIgnoreCase(f.name, name)) { return f.value.asPtr(); }
  }
  return nullptr;
}

struct FormParser {
  static kj::OneOf<FormData, FormError> run(kj::ArrayPtr<const char> input, uint32_t maxFields) {
    FormData data;
    size_t index = 0;
    const char* p = input.begin();
    const char* end = input.end();
    while (p < end) {
      const char* amp = static_cast<const char*>(memchr(p, '&', end - p));
      const char* stop = amp == nullptr ? end : amp;
      if (stop > p) {
        ++index;
        auto fail = [&](kj::StringPtr what) {
          return FormError{kj::str("field ", index, ": ", what)};
        };
        if (data.fields_.size() >= maxFields) {
          return FormError{kj::str("too many fields (the limit is ", maxFields, ")")};
        }
        const char* eq = static_cast<const char*>(memchr(p, '=', stop - p));
        auto rawName = kj::arrayPtr(p, eq == nullptr ? stop : eq);
        auto rawValue = eq == nullptr ? kj::ArrayPtr<const char>() : kj::arrayPtr(eq + 1, stop);
        kj::String name, value;
        KJ_IF_MAYBE(n, decode(rawName)) {
          name = kj::mv(*n);
        } else {
          return fail("invalid %-escape in the name");
        }
        KJ_IF_MAYBE(v, decode(rawValue)) {
          value = kj::mv(*v);
        } else {
          return fail("invalid %-escape in the value");
        }
        FormField field{kj::mv(name), kj::mv(value)};
        if (field.name.size() == 0) return fail("empty name");
        if (hasNul(field.name) || !frontends::isValidUtf8(field.name)) {
          return fail("the name is not valid UTF-8 text");
        }
        if (hasNul(field.value) || !frontends::isValidUtf8(field.value)) {
          auto out = fail("the value is not valid UTF-8 text");
          explicit_bzero(field.value.begin(), field.value.size());
          return kj::mv(out);
        }
        if (data.get(field.name) != nullptr) {
          explicit_bzero(field.value.begin(), field.value.size());
          return fail("the name is given more than once");
        }
        data.fields_.add(kj::mv(field));
      }
      if (amp == nullptr) break;
      p = amp + 1;
    }
    return kj::mv(data);
  }
};

kj::OneOf<FormData, FormError> parseForm(kj::ArrayPtr<const char> input, uint32_t maxFields) {
  return FormParser::run(input, maxFields);
}

}  // namespace credvault::rest
