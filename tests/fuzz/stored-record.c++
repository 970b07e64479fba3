// libFuzzer target: decoding what the daemon reads from data.mdb.
//
// 1. The opened plaintext of a stored credential (core/credential-record.h, both layouts: the
//    input as it is, and behind the capnp layout's header so most inputs reach the capnp
//    reader) and of an associate record (core/codec.h Decoder, as core/vault.c++ does): only
//    an integrity failure (core::isIntegrityFailure) may come out of bytes that do not fit,
//    never another exception, a read past the end or a crash. (A sealed record must authenticate
//    first, so this is what a bug in an older release's encoder, or a forged record under a stolen
//    key, could present.)
// 2. The whole input as data.mdb, inspected before LMDB would map it (store::inspectDataFile):
//    never a crash; a file shorter than its header says is always reported.

#include "core/codec.h"
#include "core/credential-record.h"
#include "core/error.h"
#include "store/env.h"
#include "tests/fuzz/fuzz-util.h"
#include "tests/support/temp-dir.h"

#include <kj/debug.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

namespace credvault::core {
namespace {

template<typename Func>
void expectIntegrityOnly(Func&& body) {
  try {
    body();
  } catch (const kj::Exception& e) { KJ_ASSERT(isIntegrityFailure(e), e.getDescription()); }
}

void decodeRecords(kj::ArrayPtr<const kj::byte> plain) {
  auto checkCredential = [](kj::ArrayPtr<const kj::byte> bytes) {
    expectIntegrityOnly([&]() {
      // In sodium memory, as an opened record is (and word-aligned like it).
      auto copy = crypto::Secret::copyOf(bytes);
      auto r = decodeCredentialRecord(copy.reveal(), true);
      auto& c = r.credential;
      size_t secret = KJ_ASSERT_NONNULL(c.secretValue).size();
      KJ_ASSERT(r.type.size() + c.publicValue.size() + c.comment.size() + secret <= bytes.size());
      // What decodes, encodes again and decodes to the same.
      auto again = decodeCredentialRecord(encodeCredentialRecord(r.type, c).reveal(), true);
      KJ_ASSERT(
          again.type == r.type && again.credential.publicValue == c.publicValue &&
          again.credential.comment == c.comment && again.credential.validFrom == c.validFrom &&
          again.credential.validTo == c.validTo && again.credential.isActive == c.isActive &&
          KJ_ASSERT_NONNULL(again.credential.secretValue).equals(KJ_ASSERT_NONNULL(c.secretValue)));
    });
  };
  checkCredential(plain);
  auto framed = kj::heapArray<kj::byte>(8 + plain.size());
  memset(framed.begin(), 0, 8);
  framed[0] = 0x02;
  if (plain.size() > 0) memcpy(framed.begin() + 8, plain.begin(), plain.size());
  checkCredential(framed);
  expectIntegrityOnly([&]() {
    Decoder d(plain);
    d.u32();
    auto name = d.text();
    d.u8();
    d.u8();
    d.u8();
    d.u32();
    d.u8();
    auto hash = d.text();
    d.u64();
    d.u64();
    d.u32();
    KJ_ASSERT(name.size() + hash.size() <= plain.size());
  });
}

// A directory for the data.mdb under inspection, removed at exit.
support::TempDir& dir() {
  static support::TempDir* d = [] {
    atexit([]() { delete d; });
    return new support::TempDir("credvault-fuzz-store");
  }();
  return *d;
}

void inspect(kj::ArrayPtr<const kj::byte> file) {
  support::writeFile(dir() / "data.mdb", file);
  auto state = store::inspectDataFile(dir().path());
  KJ_ASSERT(state.exists);
  if (state.problem == nullptr) {
    KJ_ASSERT(state.pageSize >= 512);
    KJ_ASSERT((state.lastPage + 1) * state.pageSize <= file.size());
  }
}

}  // namespace
}  // namespace credvault::core

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credvault::fuzz::runOne([&]() {
    auto bytes = kj::arrayPtr(reinterpret_cast<const kj::byte*>(data), size);
    credvault::core::decodeRecords(bytes);
    credvault::core::inspect(bytes);
  });
  return 0;
}
