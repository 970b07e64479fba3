// credvault — the PostgreSQL backend of the storage interface (store/store.h), for several
// hosts sharing one vault. Moves the same bytes as the LMDB environment (ciphertext, keyed
// hashes, big-endian counters), in one key/value relation; knows nothing of crypto or of
// records. Design and reasons: docs/design.md "PostgreSQL backend".
//
// Reads run in REPEATABLE READ READ ONLY transactions (one snapshot, as LMDB's readers);
// writes in READ COMMITTED transactions that first take one advisory lock, so writers are
// serialised across every daemon on the database as LMDB serialises its writers; nested
// transactions are savepoints. A bounded pool of blocking libpq connections serves
// transactions on the caller's thread (mayBlock() is true: the daemon never calls it from
// its event loop); one more connection LISTENs for other hosts' commits and moves this
// store's generation.
//
// Thread-safety: as Store. Never logs; never puts a password, a value or a key in an
// exception.

#pragma once

#include "store.h"
#include <kj/string.h>

namespace credvault::store {

struct PostgresOptions {
  kj::String conninfo;             // libpq connection string or "service=NAME"; no password
  unsigned connections = 4;        // for transactions, at least 2 (one more LISTENs)
  kj::Maybe<kj::String> passFile;  // a libpq passfile (e.g. from $CREDENTIALS_DIRECTORY)
  bool readOnly = false;           // verification/migration source: nothing created or written
};

// Connects, creates or migrates its schema under an advisory lock, starts listening for other
// hosts' commits. Throws a storage failure (StorageFailure::UNAVAILABLE, message starting
// "the database server") when the server cannot be reached, and a KJ failure with one clear
// operator line for a conninfo that holds a password or a schema newer than this build.
kj::Own<Store> openPostgres(PostgresOptions options);

// The version of the relations openPostgres() creates (table credvault_schema). Not the
// vault's schema version (core, table "meta"), which both backends share.
constexpr uint32_t POSTGRES_SCHEMA_VERSION = 1;

}  // namespace credvault::store
