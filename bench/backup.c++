// A simple Get's latency while Admin.backupTo streams the whole vault to another connection
// (run only when --only names "backup": minutes per vault size).

#include "sections.h"
#include "sample.h"

#include "core/limits.h"
#include "core/vault.h"
#include "crypto/masterkey.h"
#include "crypto/password.h"

#include <kj/debug.h>
#include <kj/thread.h>
#include <stdio.h>
#include <sys/stat.h>

namespace credvault::bench {

namespace {

// Where a backup streams to: counts the bytes and drops them, so the client's disk does not
// enter the figures (credvaultctl backup writes them to a file).
class CountingSink final : public rpc::ByteSink::Server {
 public:
  explicit CountingSink(uint64_t& bytes) : bytes_(bytes) {}

 protected:
  kj::Promise<void> write(WriteContext context) override {
    // Read by the Get thread of the backup section.
    __atomic_add_fetch(&bytes_, context.getParams().getData().size(), __ATOMIC_RELEASE);
    return kj::READY_NOW;
  }
  kj::Promise<void> done(DoneContext) override { return kj::READY_NOW; }

 private:
  uint64_t& bytes_;
};

// Builds a vault of `n` credentials in `stateDir` the way verify-bench does (in-process,
// non-durable commits, 10,000 per associate, the per-associate maximum) with a new key in
// STATE_DIR/master.key, plus the associate this process's uid maps to, with one credential
// of type "small". Returns the seconds it took.
double populate(kj::StringPtr stateDir, uint64_t n) {
  auto t0 = nowNs();
  KJ_SYSCALL(mkdir(stateDir.cStr(), 0700), stateDir);
  auto key = crypto::createKeyFile(kj::str(stateDir, "/master.key"));
  store::Options storeOptions;
  storeOptions.durable = false;
  store::Environment env(stateDir, storeOptions);
  core::VaultOptions options;
  options.passwordParams = crypto::minimalPasswordParams();
  core::Vault vault(env, kj::mv(key), kj::systemPreciseCalendarClock(), options);
  core::Principal root;
  root.name = kj::str("bench");
  root.kind = core::Kind::SYSTEM;
  root.method = core::AuthMethod::PEER_CREDENTIALS;
  {
    core::NewAssociate na;
    na.name = kj::str("getter");
    na.unixUid = getuid();
    auto id = vault.runNow(vault.addAssociate(root, kj::mv(na))).value().id;
    env.write([&](store::WriteTxn& txn) {
      vault.save(root, id, "small", sampleCredential("getter@example.com")).value()(txn).value();
    });
  }
  uint64_t made = 0;
  for (int32_t a = 0; made < n; a++) {
    core::NewAssociate na;
    na.name = kj::str("bulk-", a);
    na.unixUid = 200000 + a;
    auto id = vault.runNow(vault.addAssociate(root, kj::mv(na))).value().id;
    uint64_t here = kj::min(n - made, uint64_t(core::MAX_CREDENTIALS_PER_ASSOCIATE));
    env.write([&](store::WriteTxn& txn) {
      for (uint64_t i = 0; i < here; ++i) {
        vault
            .save(root, id, "imap",
                  sampleCredential(kj::str("user", i, "@mail", a, ".example.org")))
            .value()(txn)
            .value();
      }
    });
    made += here;
  }
  return (nowNs() - t0) / 1e9;
}

}  // namespace

// A simple Get (one credential of type "small") looping on one connection, first alone,
// then while backups of the whole vault run back to back on another connection for at
// least --duration seconds. The backup's sink is in this process and drops the bytes.
void backupSection(Context& ctx, kj::AsyncIoContext& io, uint64_t n) {
  auto& o = ctx.o;
  auto& ws = io.waitScope;
  auto stateDir = kj::str(ctx.dir, "/backup-", n);
  double built = populate(stateDir, n);
  struct stat st;
  KJ_SYSCALL(stat(kj::str(stateDir, "/data.mdb").cStr(), &st));
  // The vault was just written and verified by construction; verification at start would
  // only add seconds to each run.
  kj::StringPtr settings[] = {"verify_on_start=false"};
  auto daemon = startDaemon(o, ctx.dir, stateDir, kj::str("credvaultd-backup-", n), true, settings);
  auto admin = connectClient(io, daemon->socket);
  auto adminCap = adminOf(ws, admin);
  printf(
      "\nbackup (Admin.backupTo into a discarding sink) of %llu credentials, data.mdb %.1f "
      "MiB (built in %.1f s), and a simple Get on another connection and thread\n",
      (unsigned long long)n, st.st_size / 1048576.0, built);
  printf("  %-34s %8s %9s %9s %9s %8s  %s\n", "Get (1 record, 1c×1)", "Gets", "p50 ms", "p99 ms",
         "max ms", ">10 ms", "notes");
  fflush(stdout);

  // Shared with the Get thread (__atomic: <atomic> cannot be included everywhere here).
  // measuring: 0 warm-up, 1 counting "without a backup", 2 after that; stop ends the loop.
  int measuring = 0;
  bool stop = false, backingUp = false;
  uint64_t sunk = 0, bytes = 0;
  Latencies alone, during, spooling, streaming;
  // The Gets run on a thread of their own with its own event loop and connection, so the
  // sink's work in this process (taking ~300 MiB at 1M credentials) cannot delay their
  // answers; what they see is the daemon (and the machine's other load).
  auto getter = kj::heap<kj::Thread>([&]() {
    auto gio = kj::setupAsyncIo();
    auto client = connectClient(gio, daemon->socket);
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
      uint64_t t0 = nowNs();
      bool wasBackingUp = __atomic_load_n(&backingUp, __ATOMIC_ACQUIRE);
      auto req = client.session.getRequest();
      req.setType("small");
      auto r = req.send().wait(gio.waitScope);
      uint64_t took = nowNs() - t0;
      expectOk(r, "get");
      KJ_ASSERT(r.getCredentials().size() == 1);
      bool isBackingUp = __atomic_load_n(&backingUp, __ATOMIC_ACQUIRE);
      // A Get counts as "during" when any part of it overlapped a backup; and by the part
      // of the backup it ended in: the daemon writing the snapshot to its spool on a pool
      // thread (nothing has reached the sink yet), or the spool streamed from the event loop.
      if (wasBackingUp || isBackingUp) {
        during.ns.push_back(took);
        bool spoolPhase = isBackingUp && __atomic_load_n(&sunk, __ATOMIC_ACQUIRE) == 0;
        (spoolPhase ? spooling : streaming).ns.push_back(took);
      } else if (__atomic_load_n(&measuring, __ATOMIC_ACQUIRE) == 1) {
        alone.ns.push_back(took);
      }
    }
  });

  // Without a backup.
  usleep(useconds_t(o.warmup * 1e6));
  __atomic_store_n(&measuring, 1, __ATOMIC_RELEASE);
  usleep(useconds_t(o.duration * 1e6));
  __atomic_store_n(&measuring, 2, __ATOMIC_RELEASE);

  // With backups back to back until --duration has passed (at least one).
  Latencies backups;
  uint64_t until = nowNs() + uint64_t(o.duration * 1e9);
  kj::Function<kj::Promise<void>()> backupLoop = [&]() -> kj::Promise<void> {
    __atomic_store_n(&sunk, 0, __ATOMIC_RELEASE);
    auto req = adminCap.backupToRequest();
    req.setSink(kj::heap<CountingSink>(sunk));
    uint64_t t0 = nowNs();
    __atomic_store_n(&backingUp, true, __ATOMIC_RELEASE);
    return req.send().then([&, t0](auto r) -> kj::Promise<void> {
      expectOk(r, "backupTo");
      backups.ns.push_back(nowNs() - t0);
      bytes = r.getBytes();
      KJ_REQUIRE(bytes == sunk && bytes > 0, "the sink did not get the backup", bytes, sunk);
      if (nowNs() < until) return backupLoop();
      __atomic_store_n(&backingUp, false, __ATOMIC_RELEASE);
      return kj::READY_NOW;
    });
  };
  uint64_t srv0 = processCpuNs(daemon->pid);
  backupLoop().wait(ws);
  uint64_t srvNs = processCpuNs(daemon->pid) - srv0;
  __atomic_store_n(&stop, true, __ATOMIC_RELEASE);
  getter = nullptr;  // joins

  auto line = [&](kj::StringPtr what, Latencies& l, kj::StringPtr notes) {
    printf("  %-34s %8zu %9.2f %9.2f %9.2f %8zu  %s\n", what.cStr(), l.ns.size(),
           l.percentileMs(0.5), l.percentileMs(0.99), l.maxMs(), l.over(10'000'000), notes.cStr());
  };
  line("without a backup", alone, "");
  line("during backups", during, kj::str(backups.ns.size(), " backups back to back"));
  line("  of which while spooling", spooling, "snapshot written on a pool thread");
  line("  of which while streaming", streaming, "spool sent in 64 KiB chunks");
  double total = 0;
  for (auto b : backups.ns) total += b / 1e9;
  printf(
      "  backup: %zu run(s), %.1f MiB each (%llu bytes), %.2f s mean, %.2f s max (%.0f MiB/s); "
      "daemon CPU %.2f s over them\n",
      backups.ns.size(), bytes / 1048576.0, (unsigned long long)bytes, total / backups.ns.size(),
      backups.maxMs() / 1000, bytes / 1048576.0 * backups.ns.size() / total, srvNs / 1e9);
  fflush(stdout);
  stopProcess(daemon->pid);
  daemon->pid = -1;
  removeTree(stateDir);
}

}  // namespace credvault::bench
