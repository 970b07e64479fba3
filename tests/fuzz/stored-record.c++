// libFuzzer target: decoding what the daemon reads from data.mdb.
//
// 1. The opened plaintext of a stored credential and of an associate record, decoded field by
//    field as core/vault.c++ does (core/codec.h Decoder): only an INTEGRITY VaultError may
//    come out of bytes that do not fit, never another exception, a read past the end or a
//    crash. (A sealed record must authenticate first, so this is what a bug in an older
//    release's encoder, or a forged record under a stolen key, could present.)
// 2. The whole input as data.mdb, inspected before LMDB would map it (store::inspectDataFile):
//    never a crash; a file shorter than its header says is always reported.

#include "core/codec.h"
#include "core/error.h"
#include "store/env.h"
#include "tests/fuzz/fuzz-util.h"
#include "tests/support/temp-dir.h"

#include <kj/debug.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

namespace credvault::core {
namespace {

template<typename Func>
void expectIntegrityOnly(Func&& body) {
  try {
    body();
  } catch (const VaultError& e) { KJ_ASSERT(e.code() == ErrorCode::INTEGRITY, e.message()); }
}

void decodeRecords(kj::ArrayPtr<const kj::byte> plain) {
  expectIntegrityOnly([&]() {
    Decoder d(plain);
    auto type = d.text();
    auto publicValue = d.text();
    d.u64();
    d.u64();
    d.u8();
    auto comment = d.text();
    auto secret = d.bytes();
    KJ_ASSERT(type.size() + publicValue.size() + comment.size() + secret.size() <= plain.size());
  });
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
