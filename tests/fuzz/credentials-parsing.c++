// libFuzzer target: the secrets a client or an operator hands the daemon as text — tickets,
// API tokens, partner application tokens and master key files.
//
// A vault in a temporary directory holds one real ticket, API token and application. The
// first byte of the input picks what the rest is: a ticket, a token, an application token
// (checked in online mode) or master key file content. Checks: nothing but the exact issued
// string is ever accepted (a near miss, a prefix or the string with junk after it is not);
// refusals are NOT_AUTHENTICATED VaultErrors or null, never another exception; a parsed
// master key is exactly 32 bytes, the same for the same content.

#include "core/auth.h"
#include "core/vault.h"
#include "crypto/masterkey.h"
#include "tests/fuzz/fuzz-util.h"

#include <kj/debug.h>
#include <stdlib.h>

namespace credvault::core {
namespace {

struct World {
  kj::String dir;
  kj::Own<store::Environment> env;
  kj::Own<Vault> vault;
  kj::Own<Authenticator> auth;
  kj::String ticket, token, app;

  World() {
    char pattern[] = "/tmp/credvault-fuzz-auth-XXXXXX";
    KJ_ASSERT(mkdtemp(pattern) != nullptr);
    dir = kj::str(pattern);
    store::Options o;
    o.durable = false;
    env = kj::heap<store::Environment>(dir, o);
    VaultOptions vo;
    vo.passwordParams = crypto::minimalPasswordParams();
    vault = kj::heap<Vault>(*env, crypto::Secret::random(32), kj::systemPreciseCalendarClock(), vo);
    AuthOptions ao;
    ao.onlineMode = true;
    auth = kj::heap<Authenticator>(*vault, kj::systemPreciseCalendarClock(), ao);
    Principal root;
    root.name = kj::str("fuzz");
    root.kind = Kind::SYSTEM;
    root.method = AuthMethod::PEER_CREDENTIALS;
    NewAssociate na;
    na.name = kj::str("alice");
    auto alice = vault->runNow(vault->addAssociate(root, kj::mv(na)));
    ticket = vault->runNow(auth->issueTicket(alice)).ticket;
    token = vault->runNow(auth->createToken(root, alice.id, "t", 0)).value().token;
    app = vault->runNow(auth->addApplication(root, "partner")).value().token;
  }
};

World& world() {
  static World* w = new World();
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
      bool ok = false;
      try {
        ok = w.auth->checkApplication(kj::StringPtr(text));
      } catch (const VaultError& e) {
        KJ_ASSERT(e.code() == ErrorCode::NOT_AUTHENTICATED, e.message());
      }
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
