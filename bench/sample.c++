#include "sample.h"

namespace credvault::bench {

namespace {
constexpr kj::StringPtr SAMPLE_SECRET = "correct-horse-battery-staple-42"_kj;
constexpr kj::StringPtr SAMPLE_COMMENT = "benchmark credential"_kj;
}  // namespace

core::Credential sampleCredential(kj::StringPtr publicValue) {
  core::Credential c;
  c.publicValue = kj::heapString(publicValue);
  c.secretValue = crypto::Secret::copyOf(SAMPLE_SECRET);
  c.comment = kj::heapString(SAMPLE_COMMENT);
  c.isActive = true;
  return c;
}

void fillCredential(rpc::Credential::Builder c, kj::StringPtr publicValue) {
  c.setPublicValue(publicValue);
  c.setSecretValue(SAMPLE_SECRET);
  c.setComment(SAMPLE_COMMENT);
  c.setIsActive(true);
}

core::Principal addBenchAssociate(core::Vault& vault) {
  core::Principal root;
  root.kind = core::Kind::SYSTEM;
  root.method = core::AuthMethod::PEER_CREDENTIALS;
  root.name = kj::str("root");
  core::NewAssociate na;
  na.name = kj::str("bench");
  na.unixUid = 4242;
  auto associate = vault.runNow(vault.addAssociate(root, kj::mv(na))).value();
  core::Principal who;
  who.associateId = associate.id;
  who.name = kj::str("bench");
  who.kind = core::Kind::USER;
  who.method = core::AuthMethod::PEER_CREDENTIALS;
  who.uid = 4242;
  vault.runNow(vault.save(who, 0, "imap", sampleCredential("bench@example.com"))).value();
  return who;
}

}  // namespace credvault::bench
