// verify-bench: how long start-up verification takes (docs/performance.md, "Verification").
//
// Builds a vault of N credentials (10,000 per associate, the per-associate maximum, so
// N/10,000 associates) with non-durable commits, then
// verifies it the way `credvaultd --verify` does (a read-only environment, every page, record,
// index and count) and prints the time, per credential and per million. The page cache is
// warm (the vault was just written); a cold cache adds the time to read the file once.
//
// Usage: verify-bench [CREDENTIALS] [DIR]   (default 1000000, a new directory under /tmp)

#include "core/vault.h"
#include "core/limits.h"

#include <kj/debug.h>
#include <kj/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <chrono>

using namespace credvault;

namespace {

double seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

core::Principal root() {
  core::Principal p;
  p.name = kj::str("bench");
  p.kind = core::Kind::SYSTEM;
  p.method = core::AuthMethod::PEER_CREDENTIALS;
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], nullptr, 10) : 1000000;
  kj::String dir;
  if (argc > 2) {
    dir = kj::str(argv[2]);
    mkdir(dir.cStr(), 0700);
  } else {
    char pattern[] = "/tmp/credvault-verify-bench-XXXXXX";
    KJ_REQUIRE(mkdtemp(pattern) != nullptr);
    dir = kj::str(pattern);
  }
  auto key = crypto::Secret::random(32);
  core::VaultOptions options;
  options.passwordParams = crypto::minimalPasswordParams();
  auto t0 = std::chrono::steady_clock::now();
  {
    store::Options storeOptions;
    storeOptions.durable = false;
    store::Environment env(dir, storeOptions);
    core::Vault vault(env, crypto::Secret::copyOf(key.reveal()), kj::systemPreciseCalendarClock(),
                      options);
    auto who = root();
    uint64_t made = 0;
    int32_t associate = 0;
    while (made < n) {
      core::NewAssociate na;
      na.name = kj::str("bench", associate);
      na.unixUid = 100000 + associate;
      associate = vault.runNow(vault.addAssociate(who, kj::mv(na))).value().id;
      uint64_t here = kj::min(n - made, uint64_t(core::MAX_CREDENTIALS_PER_ASSOCIATE));
      env.write([&](store::WriteTxn& txn) {
        for (uint64_t i = 0; i < here; ++i) {
          core::Credential c;
          c.publicValue = kj::str("user", i, "@example.test");
          c.comment = kj::str("bench");
          c.secretValue = crypto::Secret::copyOf(kj::StringPtr("a-secret-of-thirty-two-bytes..."));
          c.isActive = true;
          vault.save(who, associate, "imap", kj::mv(c)).value()(txn).value();
        }
      });
      made += here;
    }
  }
  double built = seconds(t0);
  struct stat st;
  KJ_SYSCALL(stat(kj::str(dir, "/data.mdb").cStr(), &st));

  auto t1 = std::chrono::steady_clock::now();
  store::Options readOnly;
  readOnly.readOnly = true;
  store::Environment env(dir, readOnly);
  core::Vault vault(env, crypto::Secret::copyOf(key.reveal()), kj::systemPreciseCalendarClock(),
                    options);
  auto report = vault.verify([](kj::StringPtr) {});
  double took = seconds(t1);
  KJ_ASSERT(report.credentials == n, report.credentials, n);
  printf("verify-bench: %llu credentials of %llu associates, data.mdb %.1f MiB (built in %.1f s)\n",
         (unsigned long long)report.credentials, (unsigned long long)report.associates,
         st.st_size / 1048576.0, built);
  printf(
      "verify-bench: verified %llu entries in %llu tables in %.2f s = %.2f us per credential "
      "= %.2f s per million credentials (warm page cache)\n",
      (unsigned long long)report.entries, (unsigned long long)report.tables, took, took * 1e6 / n,
      took * 1e6 / n);
  if (argc <= 2) {
    unlink(kj::str(dir, "/data.mdb").cStr());
    unlink(kj::str(dir, "/lock.mdb").cStr());
    rmdir(dir.cStr());
  }
  return 0;
}
