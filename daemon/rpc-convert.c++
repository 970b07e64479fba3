#include "rpc-convert.h"

#include <string.h>

namespace credvault::daemon {

core::Credential fromWire(rpc::Credential::Reader in) {
  core::Credential c;
  c.validFrom = in.getValidFrom();
  c.validTo = in.getValidTo();
  c.comment = kj::heapString(in.getComment());
  if (in.hasSecretValue()) {
    // The wire buffer is wiped by nobody: it belongs to the RPC message. We copy into
    // sodium memory at once so the value lives on in protected memory only.
    c.secretValue = crypto::Secret::copyOf(in.getSecretValue().asBytes());
  }
  c.publicValue = kj::heapString(in.getPublicValue());
  c.isActive = in.getIsActive();
  c.carried = core::CarriedFields::readFrom(in);
  return c;
}

void toWire(const core::Credential& in, rpc::Credential::Builder out) {
  out.setValidFrom(in.validFrom);
  out.setValidTo(in.validTo);
  out.setComment(in.comment);
  KJ_IF_MAYBE(s, in.secretValue) {
    auto chars = s->revealChars();
    auto dst = out.initSecretValue(chars.size());
    if (chars.size() > 0) memcpy(dst.begin(), chars.begin(), chars.size());
  }
  out.setPublicValue(in.publicValue);
  out.setIsActive(in.isActive);
  in.carried.writeTo(out);
}

namespace {
uint64_t textWords(size_t bytes) {
  return (bytes + 1 + sizeof(capnp::word) - 1) / sizeof(capnp::word);  // with its NUL
}
}  // namespace

uint64_t wireWords(kj::ArrayPtr<const core::Credential> list) {
  uint64_t words = 1 + list.size() * capnp::sizeInWords<rpc::Credential>();  // tag, structs
  for (auto& c : list) {
    words += textWords(c.comment.size()) + textWords(c.publicValue.size()) + c.carried.words();
    KJ_IF_MAYBE(s, c.secretValue) { words += textWords(s->size()); }
  }
  return words;
}

void toWire(const core::Associate& in, rpc::Associate::Builder out) {
  out.setAssociateId(in.id);
  out.setName(in.name);
  out.setKind(in.kind == core::Kind::SYSTEM ? rpc::Kind::SYSTEM : rpc::Kind::USER);
  out.setUserAdmin(in.userAdmin);
  KJ_IF_MAYBE(uid, in.unixUid) {
    out.setUnixUid(*uid);
  } else {
    out.setUnixUid(-1);
  }
  out.setActive(in.active);
  out.setHasPassword(in.passwordHash.size() > 0);
}

void toWire(const core::Principal& in, rpc::Principal::Builder out) {
  out.setAssociateId(in.associateId);
  out.setName(in.name);
  out.setKind(in.kind == core::Kind::SYSTEM ? rpc::Kind::SYSTEM : rpc::Kind::USER);
  out.setUserAdmin(in.userAdmin);
  switch (in.method) {
    case core::AuthMethod::NONE:
      out.setMethod(rpc::AuthMethod::NONE);
      break;
    case core::AuthMethod::PEER_CREDENTIALS:
      out.setMethod(rpc::AuthMethod::PEER_CREDENTIALS);
      break;
    case core::AuthMethod::PASSWORD:
      out.setMethod(rpc::AuthMethod::PASSWORD);
      break;
    case core::AuthMethod::TICKET:
      out.setMethod(rpc::AuthMethod::TICKET);
      break;
    case core::AuthMethod::API_TOKEN:
      out.setMethod(rpc::AuthMethod::API_TOKEN);
      break;
  }
  out.setUid(in.uid);
  out.setPid(in.pid);
  out.setPartnerApp(in.partnerApp);
}

core::Kind fromWire(rpc::Kind kind) {
  return kind == rpc::Kind::SYSTEM ? core::Kind::SYSTEM : core::Kind::USER;
}

}  // namespace credvault::daemon
