// Vault::verify — every page, every sealed record, every index entry and count, checked
// against each other before the daemon serves (docs/operations.md, "Verification").

#include "vault.h"
#include "codec.h"
#include "credential-record.h"
#include "validate.h"

#include <kj/debug.h>
#include <kj/map.h>
#include <sodium.h>

namespace credvault::core {

namespace {

[[noreturn]] void damaged(kj::StringPtr table, kj::StringPtr what) {
  core::damaged(kj::str("table ", table, ": ", what, "; restore a backup (docs/operations.md)"));
}

struct Seen {
  kj::Array<kj::byte> nameKey;
  kj::Maybe<kj::Array<kj::byte>> uidKey;
  uint32_t credentials = 0;
};

}  // namespace

VerifyReport Vault::verify(kj::FunctionParam<void(kj::StringPtr table)> progress) const {
  VerifyReport report;
  // 1. Structure: every page reachable from each table, and each table's count.
  // (LMDB only: a PostgreSQL server checks its own pages; its records are checked below.)
  kj::Array<store::TableWalk> walked;
  KJ_IF_MAYBE(lmdb, env_.lmdb()) { walked = lmdb->walk(progress); }
  for (auto& t : walked) {
    if (t.entries != t.stated) {
      damaged(t.name, kj::str(t.entries, " entries can be read where its header counts ", t.stated,
                              " (records lost or hidden)"));
    }
    ++report.tables;
    report.entries += t.entries;
  }

  auto txn = env_.read();
  // 2. Every associate record opens and sits under its own id.
  progress("associates (records)");
  kj::HashMap<uint32_t, Seen> associates;
  uint32_t maxId = 0;
  txn.scan(associates_, nullptr, [&](auto key, auto) {
    if (key.size() != 4) damaged("associates", "a key is malformed");
    uint32_t id = store::getBe32(key.begin());
    Associate a;
    KJ_IF_MAYBE(found, readAssociate(txn, id)) {
      a = kj::mv(*found);
    } else {
      damaged("associates", "a record cannot be found under its own key");
    }
    Seen seen;
    seen.nameKey = indexHash("name", foldName(a.name).asBytes());
    KJ_IF_MAYBE(uid, a.unixUid) { seen.uidKey = indexHash("uid", be32(*uid)); }
    associates.insert(id, kj::mv(seen));
    maxId = kj::max(maxId, id);
    return true;
  });
  report.associates = associates.size();

  // 3. The name and uid indexes hold exactly one entry per associate (and uid), each pointing
  //    at the associate whose sealed record has that name or uid.
  auto checkIndex = [&](store::Table table, kj::StringPtr name, bool uids) {
    progress(kj::str(name, " (index)"));
    uint64_t n = 0;
    txn.scan(table, nullptr, [&](auto key, auto value) {
      if (value.size() != 4) damaged(name, "a value is malformed");
      uint32_t id = store::getBe32(value.begin());
      KJ_IF_MAYBE(seen, associates.find(id)) {
        kj::ArrayPtr<const kj::byte> expected = seen->nameKey;
        if (uids) {
          KJ_IF_MAYBE(k, seen->uidKey) {
            expected = *k;
          } else {
            damaged(name, kj::str("an entry points at associate ", id, ", who has no uid"));
          }
        }
        if (expected != key) {
          damaged(name, kj::str("an entry points at associate ", id, ", whose record disagrees"));
        }
      } else {
        damaged(name, kj::str("an entry points at associate ", id, ", who does not exist"));
      }
      ++n;
      return true;
    });
    uint64_t want = 0;
    for (auto& e : associates) want += uids ? (e.value.uidKey != nullptr) : 1;
    if (n != want) {
      damaged(name, kj::str(n, " entries where the associate records need ", want));
    }
  };
  checkIndex(names_, "associate-names", false);
  checkIndex(uids_, "associate-uids", true);

  // 4. Every credential opens under its own key (owner, type and public value are its
  //    associated data) and belongs to an associate that exists.
  progress("credentials (records)");
  txn.scan(credentials_, nullptr, [&](auto key, auto value) {
    if (key.size() < 4) damaged("credentials", "a key is malformed");
    uint32_t id = store::getBe32(key.begin());
    KJ_IF_MAYBE(seen, associates.find(id)) {
      auto plain = openValue("credential", key, value);
      auto record = decodeCredentialRecord(plain.reveal(), false);
      if (credentialKey(id, record.type, record.credential.publicValue).asPtr() != key) {
        damaged("credentials", "a record is filed under the wrong key");
      }
      ++seen->credentials;
    } else {
      damaged("credentials", kj::str("records of associate ", id, ", who does not exist"));
    }
    ++report.credentials;
    return true;
  });

  // 5. The stored counts and the next id agree with the records (and their MACs hold).
  progress("credential-counts");
  uint64_t counted = 0;
  txn.scan(counters_, nullptr, [&](auto key, auto value) {
    if (key.size() != 4) damaged("credential-counts", "a key is malformed");
    uint32_t id = store::getBe32(key.begin());
    uint32_t stored = openValue32("credential-counts", key, value);
    KJ_IF_MAYBE(seen, associates.find(id)) {
      if (seen->credentials != stored) {
        damaged("credential-counts", kj::str("associate ", id, " has ", seen->credentials,
                                             " credentials where the count says ", stored));
      }
    } else {
      damaged("credential-counts", kj::str("a count for associate ", id, ", who does not exist"));
    }
    ++counted;
    return true;
  });
  uint64_t withCredentials = 0;
  for (auto& e : associates) withCredentials += e.value.credentials > 0;
  if (counted != withCredentials) {
    damaged("credential-counts",
            kj::str(counted, " counts where ", withCredentials, " associates have credentials"));
  }
  progress("meta");
  KJ_IF_MAYBE(stored, txn.get(meta_, kj::StringPtr("next-id").asBytes())) {
    uint32_t next = openValue32("meta", kj::StringPtr("next-id").asBytes(), *stored);
    if (next <= maxId) damaged("meta", "the next associate id is already in use");
  } else if (maxId > 0) {
    damaged("meta", "the next associate id is missing");
  }
  return report;
}

}  // namespace credvault::core
