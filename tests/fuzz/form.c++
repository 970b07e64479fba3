// libFuzzer target: frontends/rest/form.h parseForm (request bodies and query strings).
//
// Checks, beyond "no crash": a parsed form has at most FORM_MAX_FIELDS fields with
// non-empty, valid UTF-8 names that are unique ignoring ASCII case, values without U+0000,
// get() finds each field; percent-encoding every field again and parsing that gives the same
// fields.

#include "frontends/common/operations.h"
#include "frontends/rest/form.h"
#include "tests/fuzz/fuzz-util.h"

#include <kj/debug.h>
#include <kj/vector.h>
#include <string.h>

namespace credvault::rest {
namespace {

void encode(kj::Vector<char>& out, kj::StringPtr s) {
  static constexpr char HEX[] = "0123456789ABCDEF";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.add(c);
    } else if (c == ' ') {
      out.add('+');
    } else {
      out.add('%');
      out.add(HEX[u >> 4]);
      out.add(HEX[u & 0x0f]);
    }
  }
}

void fuzzOne(kj::ArrayPtr<const char> input) {
  auto parsed = parseForm(input);
  KJ_IF_MAYBE(error, parsed.tryGet<FormError>()) {
    KJ_ASSERT(error->message.startsWith("field ") || error->message.startsWith("too many"),
              error->message);
    return;
  }
  auto& form = parsed.get<FormData>();
  auto fields = form.fields();
  KJ_ASSERT(fields.size() <= frontends::FORM_MAX_FIELDS);
  kj::Vector<char> again;
  for (auto& f : fields) {
    KJ_ASSERT(f.name.size() > 0);
    KJ_ASSERT(memchr(f.name.begin(), '\0', f.name.size()) == nullptr);
    KJ_ASSERT(memchr(f.value.begin(), '\0', f.value.size()) == nullptr);
    KJ_ASSERT(frontends::isValidUtf8(f.name) && frontends::isValidUtf8(f.value));
    // Names are unique ignoring case, so get() finds this very field.
    KJ_ASSERT(KJ_ASSERT_NONNULL(form.get(f.name)).begin() == f.value.begin());
    if (again.size() > 0) again.add('&');
    encode(again, f.name);
    again.add('=');
    encode(again, f.value);
  }
  auto reparsed = parseForm(again.asPtr());
  KJ_IF_MAYBE(error, reparsed.tryGet<FormError>()) {
    KJ_FAIL_ASSERT("a re-encoded form does not parse", error->message);
  }
  auto fields2 = reparsed.get<FormData>().fields();
  KJ_ASSERT(fields2.size() == fields.size());
  for (size_t i = 0; i < fields.size(); i++) {
    KJ_ASSERT(fields[i].name == fields2[i].name && fields[i].value == fields2[i].value);
  }
}

}  // namespace
}  // namespace credvault::rest

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credvault::fuzz::runOne(
      [&]() { credvault::rest::fuzzOne(kj::arrayPtr(reinterpret_cast<const char*>(data), size)); });
  return 0;
}
