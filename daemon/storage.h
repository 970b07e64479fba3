// credvaultd — opening the configured store for a shared PostgreSQL database.
//
// LMDB stays the embedded default (state-dir.h decides what an LMDB state directory holds).
// With `storage = postgresql` the records live in one database that several daemons share; the
// state directory keeps only this host's socket, lock and key file. What start-up decides here:
//   - the connection string never holds a password (config.c++ refuses it); the password
//     comes from $CREDENTIALS_DIRECTORY/credvault.pgpass (systemd LoadCredential= or
//     LoadCredentialEncrypted=) when present, passed to libpq as its passfile, else from
//     libpq's own defaults (PGPASSFILE, ~/.pgpass);
//   - whether the database already holds a vault (its key table has keys): only an empty
//     database gets a new master key (--create-key), so a host can never wrap fresh data keys
//     under a key of its own in a database the other hosts use.

#pragma once

#include "config.h"
#include "state-dir.h"
#include "store/store.h"
#include <kj/memory.h>
#include <kj/string.h>

namespace credvault::daemon {

// The file name of the PostgreSQL password credential in $CREDENTIALS_DIRECTORY.
constexpr const char PGPASS_CREDENTIAL[] = "credvault.pgpass";

// The libpq passfile to use: CREDENTIALS_DIRECTORY/credvault.pgpass when that file exists,
// else null (libpq's own defaults apply).
kj::Maybe<kj::String> pgpassFromCredentials(kj::Maybe<kj::StringPtr> credentialsDirectory);

// Throws StartRefused with one line when `e` is a storage failure met at start: EXIT_CONFIG
// when the PostgreSQL server refused the login (retrying does not fix it), else
// EXIT_UNAVAILABLE (the server cannot be reached now: systemd retries). Returns otherwise.
void refuseIfStorageFailure(const kj::Exception& e);

// Opens the PostgreSQL store `config` names (read-only for verification). Throws StartRefused
// with one line: base::EXIT_CONFIG when `postgresql` is unset or the server refuses the login
// (password, role, database, pg_hba.conf), base::EXIT_UNAVAILABLE when the server cannot be
// reached or cannot serve now.
kj::Own<store::Store> openPostgresStore(const Config& config,
                                        kj::Maybe<kj::StringPtr> credentialsDirectory,
                                        bool readOnly);

// Refuses (StartRefused, EXIT_LOCKED, one line) while a credvaultd is connected to the
// database `config` names: a session whose application_name is "credvaultd" (libpq's
// fallback_application_name, set by the store) in pg_stat_activity, from any host. For the
// offline --migrate-to, as lockStateDirectory() is for an LMDB state directory. Refuses like
// openPostgresStore() when the server cannot be reached.
void refuseWhileDaemonsConnected(const Config& config,
                                 kj::Maybe<kj::StringPtr> credentialsDirectory);

// Whether `store` holds a vault: its key table exists and has keys. Never creates anything.
bool storeHasVault(store::Store& store);

}  // namespace credvault::daemon
