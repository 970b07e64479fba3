#include "storage.h"
#include "base/exit-status.h"

#include <kj/debug.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

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

kj::Own<store::Store> openPostgresStore(const Config& config,
                                        kj::Maybe<kj::StringPtr> credentialsDirectory,
                                        bool readOnly) {
  kj::StringPtr conninfo;
  KJ_IF_MAYBE(c, config.postgresql) {
    conninfo = *c;
  } else {
    throw StartRefused{base::EXIT_CONFIG,
                       kj::str("storage = postgresql needs the setting postgresql (a libpq "
                               "connection string or service=NAME)")};
  }
  store::PostgresOptions options;
  options.conninfo = kj::heapString(conninfo);
  options.connections = config.postgresqlConnections;
  options.passFile = pgpassFromCredentials(credentialsDirectory);
  options.readOnly = readOnly;
  kj::Own<store::Store> opened;
  KJ_IF_MAYBE(e,
              kj::runCatchingExceptions([&]() { opened = store::openPostgres(kj::mv(options)); })) {
    if (store::isStorageFailure(*e)) {
      // The store's text names the server (never a password) and libpq's reason.
      auto d = e->getDescription();
      throw StartRefused{
          base::EXIT_UNAVAILABLE,
          kj::str("cannot use the PostgreSQL database: ",
                  d.slice(sizeof(store::STORAGE_FAILURE_PREFIX) - 1),
                  "; start the server or fix the setting postgresql and the password in ",
                  PGPASS_CREDENTIAL,
                  " (systemd restarts the daemon until the server answers, see "
                  "docs/operations.md)")};
    }
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
