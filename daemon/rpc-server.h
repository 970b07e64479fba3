// credvaultd — the Cap'n Proto service over core::Vault.
//
// One Vault capability is created per accepted connection and knows that connection's peer
// (uid, pid from SO_PEERCRED). Sessions carry a principal that is re-checked against the
// store on every call, so deactivating or demoting an associate takes effect at once.
// Every VaultError becomes a typed rpc::Error; any other exception is logged (its text is
// ours and holds no secrets) and reported as `internal`.

#pragma once

#include "core/vault.h"
#include "core/auth.h"
#include "group-commit.h"
#include "blocking-pool.h"
#include "ipc/credvault.capnp.h"
#include <kj/time.h>
#include <kj/vector.h>

namespace credvault::daemon {

struct Peer {
  uint32_t uid;
  uint32_t pid;
};

struct ServiceConfig {
  kj::Array<uint32_t> systemUids;  // besides uid 0
};

// Shared by every connection; lives as long as the daemon.
class Service {
 public:
  Service(core::Vault& vault, core::Authenticator& auth, GroupCommitter& committer,
          BlockingPool& passwords, const kj::Clock& clock, ServiceConfig config);

  rpc::Vault::Client newBootstrap(Peer peer);

  core::Vault& vault() { return vault_; }
  core::Authenticator& auth() { return auth_; }
  GroupCommitter& committer() { return committer_; }
  BlockingPool& passwords() { return passwords_; }
  const kj::Clock& clock() { return clock_; }
  bool isSystemUid(uint32_t uid) const;
  uint32_t connections = 0;
  kj::Date started;

 private:
  core::Vault& vault_;
  core::Authenticator& auth_;
  GroupCommitter& committer_;
  BlockingPool& passwords_;
  const kj::Clock& clock_;
  ServiceConfig config_;
};

// Fills an rpc::Error from a VaultError.
void setError(rpc::Error::Builder out, const core::VaultError& e);

}  // namespace credvault::daemon
