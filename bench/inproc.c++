// The in-process ceiling: what core::Vault and Argon2id cost with no IPC around them.

#include "sections.h"
#include "sample.h"

#include "core/vault.h"
#include "crypto/password.h"
#include "crypto/secret.h"

#include <kj/debug.h>
#include <kj/vector.h>
#include <sys/stat.h>

namespace credvault::bench {

namespace {

void argon2Rows(const Options& o) {
  header("Argon2id (crypto::verifyPassword, in-process, 1 thread)");
  auto password = crypto::Secret::copyOf(kj::StringPtr(BENCH_PASSWORD));
  struct Level {
    const char* name;
    crypto::PasswordParams params;
  };
  Level levels[] = {
      {"default (crypto::defaultPasswordParams)", crypto::defaultPasswordParams()},
      {"bench daemon (ops 1, mem 8 KiB)", crypto::PasswordParams{1, 8192}},
  };
  for (auto& level : levels) {
    auto hash = crypto::hashPassword(password, level.params);
    auto r = runThreads(
        1, 0, o.passwordSeconds, 1, [](unsigned) {},
        [&](unsigned) { KJ_ASSERT(crypto::verifyPassword(hash, password)); });
    row(kj::str("verify, ", level.name), "1 thr", r,
        kj::str("opslimit ", level.params.opsLimit, ", memlimit ", level.params.memLimit / 1024,
                " KiB"),
        false);
  }
}

}  // namespace

void inProcessSection(Context& ctx) {
  auto& o = ctx.o;
  auto envDir = kj::str(ctx.dir, "/inproc");
  KJ_SYSCALL(mkdir(envDir.cStr(), 0700));
  store::Environment env(envDir);
  core::VaultOptions options;
  options.passwordParams = crypto::minimalPasswordParams();
  core::Vault vault(env, crypto::Secret::random(32), kj::systemPreciseCalendarClock(), options);

  auto who = addBenchAssociate(vault);

  header("in-process ceiling (core::Vault on LMDB, no IPC)");
  for (unsigned threads : {1u, 2u}) {
    auto r = runThreads(
        threads, o.warmup, o.duration, 1, [](unsigned) {},
        [&](unsigned) {
          auto list = vault.get(who, 0, "imap").value();
          KJ_ASSERT(list.size() == 1);
        });
    row("Vault::get (1 record)", kj::str(threads, " thr"), r, "", false);
  }
  {
    auto r = runThreads(
        1, o.warmup, o.duration, 1, [](unsigned) {},
        [&](unsigned) {
          // What the daemon does per Get besides transport: re-check the session's associate
          // (SessionImpl::current) and read.
          KJ_ASSERT(vault.findAssociate(who.associateId) != nullptr);
          auto list = vault.get(who, 0, "imap").value();
          KJ_ASSERT(list.size() == 1);
        });
    row("findAssociate + Vault::get", "1 thr", r, "the daemon's per-Get vault work", false);
  }
  {
    uint64_t k = 0;
    auto r = runThreads(
        1, o.warmup, o.duration, 1, [](unsigned) {},
        [&](unsigned) {
          auto name = kj::str("inproc-", k++ % 200, "@example.com");
          vault.runNow(vault.save(who, 0, "bench-save", sampleCredential(name))).value();
        });
    row("Vault::save via runNow (durable)", "1 thr", r, "1 op per commit", false);
  }
  {
    uint64_t k = 0;
    auto r = runThreads(
        1, o.warmup, o.duration, 32, [](unsigned) {},
        [&](unsigned) {
          kj::Vector<core::WriteOp<core::Result<bool>>> ops;
          for (int i = 0; i < 32; i++) {
            auto name = kj::str("batch-", k++ % 6400, "@example.com");
            ops.add(vault.save(who, 0, "bench-save", sampleCredential(name)).value());
          }
          env.write([&](store::WriteTxn& txn) {
            for (auto& op : ops) {
              auto failure = txn.nested([&](store::WriteTxn& inner) { op(inner).value(); });
              KJ_IF_MAYBE(f, failure) { kj::throwFatalException(kj::mv(*f)); }
            }
          });
        });
    row("Vault::save ×32, nested txns (durable)", "1 thr", r,
        "32 ops per commit, as group commit does; latency per commit", false);
  }
  {
    auto r = runThreads(
        1, o.warmup, o.duration, 1, [](unsigned) {},
        [&](unsigned) {
          crypto::Secret s(64);
          KJ_ASSERT(s.size() == 64);
        });
    row("crypto::Secret(64) alloc + free", "1 thr", r,
        "sodium_malloc/sodium_free; Get makes several", false);
  }
  argon2Rows(o);
}

}  // namespace credvault::bench
