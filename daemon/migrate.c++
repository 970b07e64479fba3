#include "migrate.h"
#include "core/auth.h"
#include "store/env.h"

#include <kj/debug.h>

namespace credvault::daemon {

namespace {

// Every table core keeps (core/vault.c++, core/auth.c++). An LMDB source holding a table not
// named here is refused, so that a later table is never silently left behind.
const kj::StringPtr TABLES[] = {
    "meta",
    "keys",
    "associates",
    "associate-names",
    "associate-uids",
    "credentials",
    "credential-counts",
    "tickets",
    "api-tokens",
    "api-token-names",
    "applications",
    "application-names",
};

bool known(kj::StringPtr name) {
  for (auto t : TABLES) {
    if (t == name) return true;
  }
  return false;
}

[[noreturn]] void refuse(kj::String message) {
  throw MigrationRefused{kj::mv(message)};
}

}  // namespace

MigrationReport migrateStore(store::Store& from, store::Store& to, const crypto::Secret& masterKey,
                             bool replace) {
  // The key opens the source (a wrong key is refused before anything is written).
  {
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                  core::Vault source(from, crypto::Secret::copyOf(masterKey.reveal()),
                                     kj::systemPreciseCalendarClock());
                })) {
      if (strstr(e->getDescription().cStr(), "wrong master key") != nullptr) {
        refuse(kj::str("the master key does not open the source vault in ", from.location(),
                       "; migrate with the key it was created with"));
      }
      kj::throwFatalException(kj::mv(*e));
    }
  }
  KJ_IF_MAYBE(env, from.lmdb()) {
    for (auto& t : env->walk([](kj::StringPtr) {})) {
      // The walk also reports LMDB's own structures ("(free pages)"), not tables.
      if (!t.name.startsWith("(") && !known(t.name)) {
        refuse(kj::str("the source holds a table this build does not know (", t.name,
                       "); migrate with the release that wrote it"));
      }
    }
  }

  MigrationReport report;
  kj::Vector<kj::Maybe<store::Table>> sourceTables;
  kj::Vector<store::Table> destTables;
  for (auto name : TABLES) {
    sourceTables.add(from.existingTable(name));
    destTables.add(to.table(name));
  }
  {
    auto txn = to.read();
    for (auto i : kj::indices(destTables)) {
      if (txn.count(destTables[i]) > 0 && !replace) {
        refuse(kj::str("the destination ", to.location(), " already holds a vault (table ",
                       TABLES[i],
                       " has records); migrate into an empty one, or pass "
                       "--migrate-replace to replace it"));
      }
    }
  }

  // One snapshot of the source, one transaction on the destination.
  auto source = from.read();
  to.write([&](store::WriteTxn& txn) {
    report.tables.clear();
    report.records = 0;
    for (auto i : kj::indices(destTables)) {
      if (replace) {
        kj::Vector<kj::Array<kj::byte>> old;
        txn.scan(destTables[i], nullptr, [&](auto key, auto) {
          old.add(kj::heapArray(key));
          return true;
        });
        for (auto& k : old) txn.del(destTables[i], k);
      }
      MigratedTable t{kj::heapString(TABLES[i]), 0};
      KJ_IF_MAYBE(s, sourceTables[i]) {
        source.scan(*s, nullptr, [&](auto key, auto value) {
          txn.put(destTables[i], key, value);
          ++t.records;
          return true;
        });
      }
      report.records += t.records;
      report.tables.add(kj::mv(t));
    }
    // Other daemons on the destination (there should be none) re-read what they cached.
    txn.moveGenerationOnCommit();
  });

  // Verified by count, table by table, against the same snapshot...
  {
    auto copied = to.read();
    for (auto i : kj::indices(destTables)) {
      uint64_t n = copied.count(destTables[i]);
      if (n != report.tables[i].records) {
        refuse(kj::str("the copy of table ", TABLES[i], " holds ", n,
                       " records where the source "
                       "has ",
                       report.tables[i].records, "; the destination is not usable"));
      }
    }
  }
  // ...and by opening every record under the master key.
  core::Vault copy(to, crypto::Secret::copyOf(masterKey.reveal()),
                   kj::systemPreciseCalendarClock());
  KJ_IF_MAYBE(e, kj::runCatchingExceptions(
                     [&]() { report.verified = copy.verify([](kj::StringPtr) {}); })) {
    // A store failure is not the copy's verdict: it leaves as it came.
    if (!core::isIntegrityFailure(*e)) kj::throwFatalException(kj::mv(*e));
    refuse(kj::str("the copy does not verify: ", core::integrityMessage(*e)));
  }
  return report;
}

}  // namespace credvault::daemon
