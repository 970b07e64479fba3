// credvaultd --migrate-to: copies a vault from one store to another (LMDB to PostgreSQL and
// back, or LMDB to LMDB), sealed records as they are.
//
// Nothing is decrypted and re-sealed: every table's keys and values are copied byte for byte in
// one read snapshot of the source and one write transaction on the destination (so a failure
// leaves the destination as it was), the data keys with them, wrapped by the same master key.
// Then the copy is verified: every table's count against the source's, and every record opened
// under the master key (core::Vault::verify on the destination). A destination that already
// holds records is refused unless `replace` (its tables are emptied in the same transaction).
//
// Offline: the caller keeps daemons away from both stores (main takes the LMDB state
// directory's lock; for PostgreSQL the operator stops the daemons, docs/operations.md).

#pragma once

#include "crypto/secret.h"
#include "core/vault.h"
#include "store/store.h"
#include <kj/string.h>
#include <kj/vector.h>

namespace credvault::daemon {

struct MigratedTable {
  kj::String name;
  uint64_t records = 0;
};

struct MigrationReport {
  kj::Vector<MigratedTable> tables;
  uint64_t records = 0;
  core::VerifyReport verified;  // the destination's, opened under the master key
};

// Thrown for what the operator must decide or fix (a non-empty destination, a table this
// build does not know, a count that differs); one line.
struct MigrationRefused {
  kj::String message;
};

// Every table core keeps (core/vault.c++, core/auth.c++), by name: what a migration copies and
// a verification on PostgreSQL counts.
kj::ArrayPtr<const kj::StringPtr> vaultTables();

// Copies `from` into `to` and verifies the copy with `masterKey` (which must open `from`: it is
// checked first, by opening the source vault read-only). `from` may be read-only.
MigrationReport migrateStore(store::Store& from, store::Store& to, const crypto::Secret& masterKey,
                             bool replace);

}  // namespace credvault::daemon
