// credvault-bench — the sections of the table, one file each (bench/main.c++ runs the ones
// --only names, in this order):
//
//   inproc   in-process ceiling: core::Vault on an LMDB environment, no IPC (Get; durable
//            Save one op per commit via Vault::runNow, and 32 ops per commit the way group
//            commit batches them; Argon2id at the default and at the bench's parameters)
//            (inproc.c++)
//   echo     transport ceiling: a bare Cap'n Proto echo (bench/echo.capnp) served by a child
//            process of this binary over a Unix socket, same client and load shapes (echo.c++)
//   get, save, biglist, rss
//            credvaultd over IPC: Get with 1, 8 and 64 calls in flight; durable Save with 1
//            and 32 clients and the commits they took; a simple Get beside long Gets; its
//            resident memory with 100,000 stored credentials, before and after a restart and
//            a read of every record (daemon.c++). On each --storage in turn (LMDB, or a
//            PostgreSQL server the bench starts: database.h), get and save on --daemons
//            daemons sharing one vault
//   auth     password and ticket authentication, cheap and at the default Argon2id
//            parameters, and a password flood from another uid (auth.c++)
//   backup   only when named: a simple Get's latency on one connection while Admin.backupTo
//            streams the whole vault to another, on vaults of --backup-credentials (backup.c++)

#pragma once

#include "client.h"
#include "load.h"
#include "options.h"
#include "process.h"

#include <kj/async-io.h>
#include <kj/vector.h>

namespace credvault::bench {

class Database;

// What every section shares: the options, the bench's temporary directory, the echo rates
// the Get rows compare themselves with (0 when echo did not run), and the storage the
// daemon sections run on now (--storage; `database` set for "postgresql").
struct Context {
  const Options& o;
  kj::StringPtr dir;
  double echoOpsPerSecond[SHAPE_COUNT] = {};
  kj::StringPtr storage = "lmdb";
  Database* database = nullptr;
};

// The settings that put a new vault in ctx's storage: none for LMDB; for PostgreSQL the
// storage, and a fresh database of the bench's server.
kj::Vector<kj::String> newVaultSettings(Context& ctx);
kj::Vector<kj::StringPtr> pointers(const kj::Vector<kj::String>& strings);

void inProcessSection(Context& ctx);
void echoSection(Context& ctx, kj::AsyncIoContext& io);
// get, save, auth, biglist and rss, on ctx.storage: get and save on o.daemons daemons
// sharing one vault (PostgreSQL only), the others on the first of them.
void daemonSections(Context& ctx, kj::AsyncIoContext& io);
void authSection(Context& ctx, kj::AsyncIoContext& io, Daemon& d);
void backupSection(Context& ctx, kj::AsyncIoContext& io, uint64_t credentials);

// Child modes of this binary (internal options): serve the echo interface on `path`; send
// FLOOD_LOGINS wrong password logins to `path` at once and print what came back.
int runEchoServer(kj::StringPtr path);
constexpr unsigned FLOOD_LOGINS = 400;
int runPasswordFlood(kj::StringPtr path);

}  // namespace credvault::bench
