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

}  // namespace credvault::bench
