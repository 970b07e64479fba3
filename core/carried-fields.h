// credvault — the credential fields core carries without interpreting them.
//
// core::Credential (model.h) names the fields core reasons about: the public value (part of
// the record's key), the validity window, the active flag, the comment and the secret. Every
// other field of the stored record (core/credential-record.capnp, stored.Credential) is
// carried: the daemon copies it from the wire struct by name, core checks it against the limit
// its schema annotation gives, seals it with the record and answers it by name, all through
// Cap'n Proto reflection. A new field of that kind is therefore an ordinal in
// ipc/credvault.capnp and one in core/credential-record.capnp, and nothing in core or the
// daemon (docs/design.md, "Adding a field to the credential").
//
// Security invariant: a carried field is never secret. Its value lives in ordinary heap memory,
// as the comment's does, and may be named in a refusal (by field name, never by value). A secret
// is a named member of core::Credential held in a crypto::Secret.
//
// Which types may be carried: Text (with a `$maxChars` annotation), Bool, integers, floats and
// enums (by number). Anything else (groups, lists, structs, Data) needs code that knows what
// it means, so it is a named member; CarriedFields refuses such a field on first use
// (KJ_ASSERT), so tests/daemon/rpc-convert-test.c++ fails at once.

#pragma once

#include "error.h"
#include <capnp/common.h>
#include <capnp/dynamic.h>
#include <kj/array.h>

namespace credvault::core {

class CarriedFields {
 public:
  CarriedFields() = default;  // every carried field at its default
  CarriedFields(CarriedFields&&) = default;
  CarriedFields& operator=(CarriedFields&&) = default;

  // The carried fields `from` sets (non-default), each taken from `from`'s field of the same
  // name; a struct without such a field leaves it at its default. Reads the wire struct and the
  // stored record alike. Throws (KJ) when a same-named field has another type: a schema bug.
  static CarriedFields readFrom(capnp::DynamicStruct::Reader from);

  // Sets each carried field that is not at its default on `to`'s field of the same name; a
  // struct without it (the wire, for a storage-only field) does not get it.
  void writeTo(capnp::DynamicStruct::Builder to) const;

  // Each carried Text field against its `$maxChars` (valid UTF-8, no control characters).
  [[nodiscard]] kj::Maybe<Refusal> check() const;

  // An upper bound of the words writeTo adds to a message, and of the text it holds.
  size_t words() const { return message_.size(); }
  size_t bytes() const { return message_.asBytes().size(); }

  // The carried fields of stored.Credential, in ordinal order, and a Text field's $maxChars.
  static kj::ArrayPtr<const capnp::StructSchema::Field> fields();
  static kj::Maybe<uint32_t> maxChars(capnp::StructSchema::Field field);

 private:
  // A flat one-segment message of stored.Credential holding only carried fields; empty when
  // all of them are at their defaults (every credential today), so they cost nothing then.
  kj::Array<capnp::word> message_;
};

}  // namespace credvault::core
