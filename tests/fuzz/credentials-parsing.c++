// libFuzzer target: the secrets a client or an operator hands the daemon as text — tickets,
// API tokens, partner application tokens and master key files.
//
// A vault in a temporary directory holds one real ticket, API token and application. The
// first byte of the input picks what the rest is: a ticket, a token, an application token
// (checked in online mode) or master key file content. Checks: nothing but the exact issued
// string is ever accepted (a near miss, a prefix or the string with junk after it is not);
// refusals are NOT_AUTHENTICATED refusals or null, never an exception; a parsed
// master key is exactly 32 bytes, the same for the same content.

#include "core/auth.h"
#include "core/vault.h"
#include "crypto/masterkey.h"
#include "tests/fuzz/fuzz-util.h"
#include "tests/support/vault-world.h"

#include <kj/debug.h>
#include <stdlib.h>

namespace credvault::core {
namespace {

// A vault in a temporary directory (removed at exit) with one issued ticket, token and
// partner application.
struct World {
  support::VaultWorld vault{support::VaultWorld::Clock::SYSTEM, "credvault-fuzz-auth"};
  core::Authenticator* auth = nullptr;
  kj::String ticket, token, app;

  World() {
    vault.storeOptions.durable = false;
    vault.authOptions.onlineMode = true;
    vault.open();
    auth = vault.auth.get();
    auto alice = vault.add("alice");
    ticket = vault.vault->runNow(auth->issueTicket(alice)).ticket;
    token = vault.vault->runNow(auth->createToken(vault.root, alice.id, "t", 0)).value().token;
    app = vault.vault->runNow(auth->addApplication(vault.root, "partner")).value().token;
  }
};

World& world() {
  static World* w = [] {
    atexit([]() { delete w; });
    return new World();
  }();
  return *w;
}

void fuzzOne(const uint8_t* data, size_t size) {
  auto& w = world();
  if (size == 0) return;
  auto text = kj::heapString(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0: {
      bool ok = w.auth->validateTicket(text) != nullptr;
      KJ_ASSERT(ok == (text == w.ticket), "a ticket other than the issued one was accepted");
      break;
    }
    case 1: {
      bool ok = w.auth->validateToken(text) != nullptr;
      KJ_ASSERT(ok == (text == w.token), "a token other than the issued one was accepted");
      break;
    }
    case 2: {
      auto checked = w.auth->checkApplication(kj::StringPtr(text));
      KJ_IF_MAYBE(r, checked.refused()) {
        KJ_ASSERT(r->code == ErrorCode::NOT_AUTHENTICATED, r->message);
      }
      bool ok = checked.ok() && checked.value();
      KJ_ASSERT(!ok || text == w.app, "an application token other than the real one passed");
      break;
    }
    case 3: {
      auto bytes = kj::arrayPtr(data + 1, size - 1);
      KJ_IF_MAYBE(key, crypto::parseMasterKey(bytes)) {
        KJ_ASSERT(key->size() == 32);
        auto again = KJ_ASSERT_NONNULL(crypto::parseMasterKey(bytes));
        KJ_ASSERT(again.size() == 32 &&
                  memcmp(again.reveal().begin(), key->reveal().begin(), 32) == 0);
      }
      break;
    }
  }
}

}  // namespace
}  // namespace credvault::core

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credvault::fuzz::runOne([&]() { credvault::core::fuzzOne(data, size); });
  return 0;
}
