// credvault-bench — what the bench stores: one sample credential, in core's form (the
// in-process rows and the vaults it builds, and their associate) and in the RPC's (saves over IPC),
// and the password of the associates it logs in as. None of it is a real secret.

#pragma once

#include "core/vault.h"
#include "ipc/credvault.capnp.h"

#include <kj/string.h>

namespace credvault::bench {

constexpr const char* BENCH_PASSWORD = "bench-password-1";

// The sample credential with `publicValue`: same secret, comment and state every time.
core::Credential sampleCredential(kj::StringPtr publicValue);
void fillCredential(rpc::Credential::Builder c, kj::StringPtr publicValue);

// The in-process rows' caller: associate "bench" (uid 4242), added to `vault` by root, holding
// one sample credential of type "imap".
core::Principal addBenchAssociate(core::Vault& vault);

}  // namespace credvault::bench
