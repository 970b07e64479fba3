#include "storage.h"
#include "base/exit-status.h"

#include <kj/debug.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "store/pg-connection.h"
#include "store/postgres.h"

namespace credvault::daemon {

kj::Maybe<kj::String> pgpassFromCredentials(kj::Maybe<kj::StringPtr> credentialsDirectory) {
  KJ_IF_MAYBE(dir, credentialsDirectory) {
    if (dir->size() == 0) return nullptr;
    auto path = kj::str(*dir, "/", PGPASS_CREDENTIAL);
    struct stat st;
    if (stat(path.cStr(), &st) == 0 && S_ISREG(st.st_mode)) return kj::mv(path);
  }
  return nullptr;
}

namespace {

kj::StringPtr conninfoOf(const Config& config) {
  KJ_IF_MAYBE(c, config.postgresql) { return *c; }
  throw StartRefused{base::EXIT_CONFIG,
                     kj::str("storage = postgresql needs the setting postgresql (a libpq "
                             "connection string or service=NAME)")};
}

}  // namespace

// A storage failure at start: the server refuses the login (a configuration error: exit
// 78, which the packaged unit does not restart) or cannot be reached (69: systemd retries).
void refuseIfStorageFailure(const kj::Exception& e) {
  if (!store::isStorageFailure(e)) return;
  // The store's text names the server (never a password) and libpq's reason.
  auto reason = e.getDescription().slice(sizeof(store::STORAGE_FAILURE_PREFIX) - 1);
  if (store::pg::isLoginRefused(e)) {
    throw StartRefused{
        base::EXIT_CONFIG,
        kj::str("cannot use the PostgreSQL database: ", reason,
                "; fix the user or database in the setting postgresql, the password in ",
                PGPASS_CREDENTIAL, " (or the passfile libpq reads), or the server's pg_hba.conf",
                " (a configuration error: systemd does not restart the daemon for it, see "
                "docs/operations.md)")};
  }
  throw StartRefused{base::EXIT_UNAVAILABLE,
                     kj::str("cannot use the PostgreSQL database: ", reason,
                             "; start the server or fix the setting postgresql",
                             " (systemd restarts the daemon until the server answers, see "
                             "docs/operations.md)")};
}

void refuseWhileDaemonsConnected(const Config& config,
                                 kj::Maybe<kj::StringPtr> credentialsDirectory) {
  store::pg::ConnectParams params{kj::heapString(conninfoOf(config)),
                                  pgpassFromCredentials(credentialsDirectory)};
  kj::String count, hosts;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                store::pg::Connection conn(params, false);
                auto r = conn.exec(
                    "SELECT count(*), coalesce(string_agg(DISTINCT coalesce(host(client_addr), "
                    "'a unix socket or hidden'), ', '), '') FROM pg_stat_activity WHERE datname "
                    "= current_database() AND application_name = 'credvaultd' AND pid <> "
                    "pg_backend_pid()",
                    "looking for daemons connected to the database");
                auto text = [&](int col) {
                  auto b = r.bytes(0, col);
                  return kj::heapString(reinterpret_cast<const char*>(b.begin()), b.size());
                };
                count = text(0);
                hosts = text(1);
              })) {
    refuseIfStorageFailure(*e);
    kj::throwFatalException(kj::mv(*e));
  }
  if (count == "0") return;
  throw StartRefused{
      EXIT_LOCKED,
      kj::str(count, " credvaultd session(s) use the ",
              store::pg::describeConninfo(params.conninfo), " (from ", hosts,
              "); stop credvaultd on every host first (see docs/operations.md, \"Migration\")")};
}

kj::Own<store::Store> openPostgresStore(const Config& config,
                                        kj::Maybe<kj::StringPtr> credentialsDirectory,
                                        bool readOnly) {
  kj::StringPtr conninfo = conninfoOf(config);
  store::PostgresOptions options;
  options.conninfo = kj::heapString(conninfo);
  options.connections = config.postgresqlConnections;
  options.passFile = pgpassFromCredentials(credentialsDirectory);
  options.readOnly = readOnly;
  kj::Own<store::Store> opened;
  KJ_IF_MAYBE(e,
              kj::runCatchingExceptions([&]() { opened = store::openPostgres(kj::mv(options)); })) {
    refuseIfStorageFailure(*e);
    kj::throwFatalException(kj::mv(*e));
  }
  return opened;
}

bool storeHasVault(store::Store& store) {
  KJ_IF_MAYBE(keys, store.existingTable("keys")) {
    auto txn = store.read();
    return txn.count(*keys) > 0;
  }
  return false;
}

}  // namespace credvault::daemon
