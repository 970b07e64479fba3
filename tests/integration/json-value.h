// credvaultctl's JSON output (--format json), parsed with capnp's JSON codec, for the tests
// that run it (integration-test, ctl-test).

#pragma once

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <kj/debug.h>

#include <sstream>
#include <string>

namespace credvault::integration {

class Json {
 public:
  explicit Json(const std::string& text) {
    capnp::JsonCodec codec;
    auto root = message_.initRoot<capnp::JsonValue>();
    auto trimmed = text;
    while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == ' ')) {
      trimmed.pop_back();
    }
    codec.decodeRaw(kj::arrayPtr(trimmed.data(), trimmed.size()), root);
    root_ = root.asReader();
  }
  capnp::JsonValue::Reader root() const { return root_; }

 private:
  capnp::MallocMessageBuilder message_;
  capnp::JsonValue::Reader root_;
};

inline capnp::JsonValue::Reader member(capnp::JsonValue::Reader v, const char* name) {
  KJ_REQUIRE(v.isObject(), "not a JSON object", name);
  for (auto f : v.getObject()) {
    if (f.getName() == name) return f.getValue();
  }
  KJ_FAIL_REQUIRE("no such JSON member", name);
}

// A value as text: strings as they are, others in angle brackets, numbers as integers.
inline std::string text(capnp::JsonValue::Reader v) {
  if (v.isString()) return v.getString().cStr();
  if (v.isNull()) return "<null>";
  if (v.isBoolean()) return v.getBoolean() ? "<true>" : "<false>";
  if (v.isNumber()) {
    std::ostringstream ss;
    ss << (long long)v.getNumber();
    return ss.str();
  }
  return "<other>";
}

}  // namespace credvault::integration
