// credvault-gateway REST — application/x-www-form-urlencoded bodies and query strings.
//
// Decodes "name=value&name=value" (WHATWG URL standard: '+' is a space, %XX escapes). Strict
// where the standard is lax: a malformed %-escape, a decoded name or value that is not valid
// UTF-8 or contains U+0000, an empty name, a name given twice (compared ASCII
// case-insensitively, as REST binds names), or more than FORM_MAX_FIELDS fields are errors.
// Messages never quote values. Decoded values may be secrets: they are wiped when the
// FormData is destroyed. Never logs.

#pragma once

#include "frontends/limits.h"

#include <kj/one-of.h>
#include <kj/string.h>
#include <kj/vector.h>

namespace credvault::rest {

struct FormField {
  kj::String name;
  kj::String value;
};

class FormData {
 public:
  FormData() = default;
  FormData(FormData&&) = default;
  FormData& operator=(FormData&&) = default;
  ~FormData();

  kj::ArrayPtr<const FormField> fields() const { return fields_; }
  // The value of the field named `name` (ASCII case-insensitive), if present.
  kj::Maybe<kj::StringPtr> get(kj::StringPtr name) const;

 private:
  friend struct FormParser;
  kj::Vector<FormField> fields_;
};

struct FormError {
  kj::String message;  // "field 3: invalid %-escape" — never a value
};

kj::OneOf<FormData, FormError> parseForm(kj::ArrayPtr<const char> input,
                                         uint32_t maxFields = frontends::FORM_MAX_FIELDS);

}  // namespace credvault::rest
