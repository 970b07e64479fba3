// credvault-store-bench — core::Vault in-process on each storage backend, side by side: LMDB
// in a temporary directory and PostgreSQL (a throw-away local server started like the tests'
// (tests/support/postgres.h: unix socket, fsync on), or --postgresql CONNINFO for one of
// yours). No IPC: what the store and core cost per call. Numbers in docs/performance.md.
//
//   build/bench/credvault-store-bench [--seconds S] [--postgresql CONNINFO] [--only
//   lmdb|postgresql]
//
// Rows: Get of one credential (Vault::get: one read transaction), from 1 and 4 threads; durable
// Save from 32 concurrent writers through the daemon's group commit (daemon::GroupCommitter:
// one transaction and one commit per batch, as credvaultd does); a single durable Save per
// commit from one thread (commit latency). None of the values is a real secret.

#include "core/vault.h"
#include "sample.h"
#include "crypto/password.h"
#include "crypto/secret.h"
#include "daemon/group-commit.h"
#include "store/env.h"
#include "store/postgres.h"
#include "tests/support/postgres.h"
#include "tests/support/temp-dir.h"

#include <kj/async.h>
#include <kj/debug.h>
#include <kj/main.h>
#include <kj/thread.h>
#include <kj/vector.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace credvault::bench {
namespace {

uint64_t nowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Stats {
  uint64_t ops = 0;
  double seconds = 0;
  std::vector<uint64_t> latencies;  // ns
  double p(double q) {
    if (latencies.empty()) return 0;
    std::sort(latencies.begin(), latencies.end());
    return latencies[size_t(q * (latencies.size() - 1))] / 1e3;
  }
};

void print(kj::StringPtr backend, kj::StringPtr op, kj::StringPtr load, Stats s) {
  printf("| %-10s | %-44s | %-12s | %9.0f | %8.0f | %8.0f |\n", backend.cStr(), op.cStr(),
         load.cStr(), s.ops / s.seconds, s.p(0.5), s.p(0.99));
  fflush(stdout);
}

// Runs `op` on `threads` threads for `seconds` (after a quarter of that as warm-up).
template<typename Op>
Stats run(unsigned threads, double seconds, Op&& op) {
  std::atomic<int> phase{0};  // 0 warm-up, 1 measuring, 2 stop
  std::vector<std::vector<uint64_t>> lat(threads);
  std::vector<uint64_t> counts(threads);
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t) {
    ts.emplace_back([&, t]() {
      for (uint64_t i = 0; phase != 2; ++i) {
        uint64_t a = nowNs();
        op(t, i);
        if (phase == 1) {
          lat[t].push_back(nowNs() - a);
          ++counts[t];
        }
      }
    });
  }
  usleep(useconds_t(seconds * 250000));
  phase = 1;
  uint64_t start = nowNs();
  usleep(useconds_t(seconds * 1000000));
  phase = 2;
  double elapsed = (nowNs() - start) / 1e9;
  for (auto& th : ts) th.join();
  Stats s;
  s.seconds = elapsed;
  for (unsigned t = 0; t < threads; ++t) {
    s.ops += counts[t];
    s.latencies.insert(s.latencies.end(), lat[t].begin(), lat[t].end());
  }
  return s;
}

void benchStore(kj::StringPtr backend, store::Store& env, double seconds) {
  core::VaultOptions options;
  options.passwordParams = crypto::minimalPasswordParams();
  core::Vault vault(env, crypto::Secret::random(32), kj::systemPreciseCalendarClock(), options);
  auto who = addBenchAssociate(vault);
  // Neighbours, so that the Get's range scan is not on a near-empty table.
  env.write([&](store::WriteTxn& txn) {
    for (int i = 0; i < 300; ++i) {
      vault
          .save(who, 0, kj::str("other-", i % 10),
                sampleCredential(kj::str("n", i, "@example.com")))
          .value()(txn)
          .value();
    }
  });

  for (unsigned threads : {1u, 4u}) {
    print(backend, "Vault::get (1 record)", kj::str(threads, " thr"),
          run(threads, seconds, [&](unsigned, uint64_t) {
            auto list = vault.get(who, 0, "imap").value();
            KJ_ASSERT(list.size() == 1);
          }));
  }
  print(backend, "Vault::save, 1 op per commit (durable)", "1 thr",
        run(1, seconds, [&](unsigned, uint64_t i) {
          vault.runNow(vault.save(who, 0, "single", sampleCredential(kj::str("s", i % 200, "@x"))))
              .value();
        }));
  {
    daemon::GroupCommitter committer(env);
    print(backend, "Vault::save via GroupCommitter (durable)", "32 writers",
          run(32, seconds, [&](unsigned t, uint64_t i) {
            thread_local kj::EventLoop* loop = nullptr;
            thread_local kj::WaitScope* ws = nullptr;
            if (loop == nullptr) {
              loop = new kj::EventLoop;
              ws = new kj::WaitScope(*loop);
            }
            auto name = kj::str("w", t, "-", i % 100, "@example.com");
            auto outcome =
                committer.submit(vault.save(who, 0, "group", sampleCredential(name))).wait(*ws);
            KJ_ASSERT(outcome.failure == nullptr && outcome.error == nullptr);
          }));
    auto s = committer.stats();
    printf("|            | (group commit: %.1f ops per commit)%*s|\n",
           s.commits == 0 ? 0.0 : double(s.ops) / s.commits, 56, "");
  }
}

int benchMain(int argc, char** argv) {
  double seconds = 3;
  kj::Maybe<kj::String> conninfo;
  kj::StringPtr only;
  for (int i = 1; i < argc; ++i) {
    kj::StringPtr a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = atof(argv[++i]);
    } else if (a == "--postgresql" && i + 1 < argc) {
      conninfo = kj::str(argv[++i]);
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      fprintf(stderr,
              "usage: credvault-store-bench [--seconds S] [--postgresql CONNINFO] "
              "[--only lmdb|postgresql]\n");
      return 2;
    }
  }
  printf(
      "| backend    | operation                                    | load         |     ops/s "
      "| p50 µs   | p99 µs   |\n");
  printf(
      "|------------|----------------------------------------------|--------------|-----------"
      "|----------|----------|\n");
  if (only == nullptr || only == "lmdb") {
    support::TempDir dir("credvault-store-bench");
    store::Environment env(dir.path());
    benchStore("lmdb", env, seconds);
  }
  if (only == nullptr || only == "postgresql") {
    store::PostgresOptions o;
    KJ_IF_MAYBE(c, conninfo) {
      o.conninfo = kj::heapString(*c);
    } else {
      o.conninfo = support::PostgresServer::instance().freshDatabase();
    }
    auto env = store::openPostgres(kj::mv(o));
    benchStore("postgresql", *env, seconds);
  }
  return 0;
}

}  // namespace
}  // namespace credvault::bench

int main(int argc, char** argv) {
  return credvault::bench::benchMain(argc, argv);
}
