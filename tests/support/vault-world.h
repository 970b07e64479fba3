// A vault as core's and the daemon's tests need it: a real store (LMDB in a temporary
// directory, or PostgreSQL when CREDVAULT_TEST_STORE=postgresql: tests/support/test-store.h),
// the Vault on it (with a random master key kept for reopening, and the cheapest
// password parameters), the Authenticator and the Identity on top, all on one clock — a
// FakeClock the test moves, or the system's — and the principals tests act as.

#pragma once

#include "core/auth.h"
#include "core/identity.h"
#include "core/vault.h"
#include "crypto/aead.h"
#include "crypto/password.h"
#include "tests/support/clock.h"
#include "tests/support/temp-dir.h"
#include "tests/support/test-store.h"

#include <memory>

namespace credvault::support {

// uid 0 as the daemon sees it: a system user by peer credentials, with no associate.
inline core::Principal rootPrincipal() {
  core::Principal p;
  p.kind = core::Kind::SYSTEM;
  p.method = core::AuthMethod::PEER_CREDENTIALS;
  p.name = kj::str("uid 0");
  return p;
}

// `a` as a password login would make it.
inline core::Principal principalOf(const core::Associate& a,
                                   core::AuthMethod method = core::AuthMethod::PASSWORD) {
  core::Principal p;
  p.associateId = a.id;
  p.name = kj::heapString(a.name);
  p.kind = a.kind;
  p.userAdmin = a.userAdmin;
  p.method = method;
  return p;
}

class VaultWorld {
 public:
  enum class Clock { FAKE, SYSTEM };
  explicit VaultWorld(Clock which = Clock::FAKE, kj::StringPtr label = "credvault-test")
      : dir(label),
        where(dir.path()),
        clockInUse(which == Clock::FAKE ? static_cast<const kj::Clock&>(clock)
                                        : kj::systemPreciseCalendarClock()) {}
  ~VaultWorld() noexcept { close(); }  // noexcept: gtest fixtures hold it
  KJ_DISALLOW_COPY(VaultWorld);

  TempDir dir;
  TestStore where;              // the store's directory or database
  FakeClock clock;              // moves only when the test advances it
  const kj::Clock& clockInUse;  // what the vault, authenticator and identity read
  // Plain bytes, so that the master key survives close() for the next open().
  kj::Array<kj::byte> master = kj::heapArray(crypto::Secret::random(crypto::KEY_BYTES).reveal());
  store::Options storeOptions;  // LMDB: durable = false where a test does not restart (fuzzing)
  core::AuthOptions authOptions;
  core::IdentityOptions identityOptions;
  core::Principal root = rootPrincipal();

  StoreHandle env;
  std::unique_ptr<core::Vault> vault;
  std::unique_ptr<core::Authenticator> auth;
  std::unique_ptr<core::Identity> identity;

  // Opens (or, after close(), reopens as a restart would) with the options above.
  void open() {
    close();
    env = where.open(storeOptions);
    core::VaultOptions options;
    options.passwordParams = crypto::minimalPasswordParams();
    vault = std::make_unique<core::Vault>(*env, crypto::Secret::copyOf(master.asPtr()), clockInUse,
                                          options);
    auth = std::make_unique<core::Authenticator>(*vault, clockInUse, copy(authOptions));
    identity = std::make_unique<core::Identity>(*vault, *auth, clockInUse, copy(identityOptions));
  }
  void close() {
    identity = nullptr;
    auth = nullptr;
    vault = nullptr;
    env = nullptr;
  }

  // Adds an associate as root; a password when `password` is non-empty.
  core::Associate add(kj::StringPtr name, core::Kind kind = core::Kind::USER,
                      bool userAdmin = false, kj::Maybe<uint32_t> uid = nullptr,
                      kj::StringPtr password = nullptr) {
    core::NewAssociate na;
    na.name = kj::heapString(name);
    na.kind = kind;
    na.userAdmin = userAdmin;
    na.unixUid = uid;
    if (password != nullptr) na.password = crypto::Secret::copyOf(password);
    return vault->runNow(vault->addAssociate(root, kj::mv(na))).value();
  }

 private:
  static core::AuthOptions copy(const core::AuthOptions& o) { return o; }
  static core::IdentityOptions copy(const core::IdentityOptions& o) {
    core::IdentityOptions out;
    out.systemUids = kj::heapArray(o.systemUids.asPtr());
    out.gatewayUids = kj::heapArray(o.gatewayUids.asPtr());
    return out;
  }
};

}  // namespace credvault::support
