#include "carried-fields.h"
#include "validate.h"
#include "core/credential-record.capnp.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/debug.h>
#include <kj/vector.h>

namespace credvault::core {

namespace {

// The fields core::Credential names: credential-record.c++ and daemon/rpc-convert.c++ copy them
// by hand (the secret goes from sodium memory to sodium memory, and core reasons about the
// rest). Every other field of stored.Credential is carried.
constexpr kj::StringPtr NAMED[] = {"type"_kj,     "publicValue"_kj, "validFrom"_kj,  "validTo"_kj,
                                   "isActive"_kj, "comment"_kj,     "secretValue"_kj};

// $maxChars of core/credential-record.capnp (its id is written out there).
constexpr uint64_t MAX_CHARS_ANNOTATION = 0xd1f0c4a7e1c2b3a9ull;

capnp::StructSchema storedSchema() {
  return capnp::Schema::from<stored::Credential>();
}

bool carriable(capnp::StructSchema::Field field) {
  auto proto = field.getProto();
  if (!proto.isSlot()) return false;  // a group
  if (proto.getDiscriminantValue() != capnp::schema::Field::NO_DISCRIMINANT) return false;
  switch (field.getType().which()) {
    case capnp::schema::Type::TEXT:
      return CarriedFields::maxChars(field) != nullptr;
    case capnp::schema::Type::BOOL:
    case capnp::schema::Type::INT8:
    case capnp::schema::Type::INT16:
    case capnp::schema::Type::INT32:
    case capnp::schema::Type::INT64:
    case capnp::schema::Type::UINT8:
    case capnp::schema::Type::UINT16:
    case capnp::schema::Type::UINT32:
    case capnp::schema::Type::UINT64:
    case capnp::schema::Type::FLOAT32:
    case capnp::schema::Type::FLOAT64:
    case capnp::schema::Type::ENUM:
      return true;
    default:
      return false;
  }
}

kj::Array<capnp::StructSchema::Field> findCarried() {
  for (auto n : NAMED) {
    KJ_ASSERT(storedSchema().findFieldByName(n) != nullptr, "stored.Credential lost a named field",
              n);
  }
  kj::Vector<capnp::StructSchema::Field> out;
  for (auto field : storedSchema().getFields()) {
    auto name = field.getProto().getName();
    bool named = false;
    for (auto n : NAMED) named = named || n == name;
    if (named) continue;
    KJ_ASSERT(carriable(field),
              "stored.Credential: this field cannot be carried; a Text field needs $maxChars, "
              "and a group, union, list, struct or Data field must be named in core::Credential",
              name);
    out.add(field);
  }
  return out.releaseAsArray();
}

// An enum goes by its number: the wire and the stored record declare their own enum types.
capnp::DynamicValue::Reader portable(capnp::DynamicValue::Reader value) {
  if (value.getType() == capnp::DynamicValue::ENUM) {
    return value.as<capnp::DynamicEnum>().getRaw();
  }
  return value;
}

}  // namespace

kj::Maybe<uint32_t> CarriedFields::maxChars(capnp::StructSchema::Field field) {
  for (auto a : field.getProto().getAnnotations()) {
    if (a.getId() == MAX_CHARS_ANNOTATION) return a.getValue().getUint32();
  }
  return nullptr;
}

kj::ArrayPtr<const capnp::StructSchema::Field> CarriedFields::fields() {
  static const kj::Array<capnp::StructSchema::Field> carried = findCarried();
  return carried;
}

CarriedFields CarriedFields::readFrom(capnp::DynamicStruct::Reader from) {
  CarriedFields out;
  kj::Maybe<kj::Own<capnp::MallocMessageBuilder>> message;
  capnp::DynamicStruct::Builder root;
  for (auto field : fields()) {
    KJ_IF_MAYBE(source, from.getSchema().findFieldByName(field.getProto().getName())) {
      if (!from.has(*source, capnp::HasMode::NON_DEFAULT)) continue;
      if (message == nullptr) {
        auto m = kj::heap<capnp::MallocMessageBuilder>();
        root = m->initRoot<capnp::DynamicStruct>(storedSchema());
        message = kj::mv(m);
      }
      root.set(field, portable(from.get(*source)));
    }
  }
  KJ_IF_MAYBE(m, message) { out.message_ = capnp::messageToFlatArray(**m); }
  return out;
}

void CarriedFields::writeTo(capnp::DynamicStruct::Builder to) const {
  if (message_.size() == 0) return;
  capnp::FlatArrayMessageReader message(message_);
  auto from = message.getRoot<capnp::DynamicStruct>(storedSchema());
  for (auto field : fields()) {
    if (!from.has(field, capnp::HasMode::NON_DEFAULT)) continue;
    KJ_IF_MAYBE(target, to.getSchema().findFieldByName(field.getProto().getName())) {
      to.set(*target, portable(from.get(field)));
    }
  }
}

kj::Maybe<Refusal> CarriedFields::check() const {
  if (message_.size() == 0) return nullptr;
  capnp::FlatArrayMessageReader message(message_);
  auto from = message.getRoot<capnp::DynamicStruct>(storedSchema());
  for (auto field : fields()) {
    KJ_IF_MAYBE(limit, maxChars(field)) {
      auto text = from.get(field).as<capnp::Text>();
      KJ_IF_MAYBE(r, checkText(field.getProto().getName(), text, *limit)) { return kj::mv(*r); }
    }
  }
  return nullptr;
}

}  // namespace credvault::core
