// credvaultd over IPC: Get, durable Save, a simple Get beside long Gets, and resident
// memory, on daemons whose system user (this process) maps to an associate "bench". Get and
// Save run on every daemon of the set (--daemons, one vault in PostgreSQL), connection i on
// daemon i mod n; the rest on the first.

#include "sections.h"
#include "database.h"
#include "sample.h"

#include <kj/debug.h>
#include <kj/vector.h>
#include <stdio.h>

namespace credvault::bench {

namespace {

// The daemons of a set, sharing one vault, and what their rows watch.
struct DaemonSet {
  kj::Vector<kj::Own<Daemon>> daemons;
  kj::Vector<pid_t> pids;
  Watched watched(Context& ctx) const { return Watched{pids, ctx.database}; }
};

// Calls completed through each daemon of a set (warm-up included, as Result::allOps).
struct PerDaemon {
  kj::Array<uint64_t> ops;
  explicit PerDaemon(size_t daemons) : ops(kj::heapArray<uint64_t>(daemons)) {
    for (auto& n : ops) n = 0;
  }
  // ", per daemon a/s + b/s", from each one's share of the calls, or "" for one daemon.
  kj::String note(const Result& r) const {
    if (ops.size() < 2 || r.allOps == 0) return kj::str("");
    auto out = kj::str("; per daemon");
    for (size_t i = 0; i < ops.size(); i++) {
      char buf[32];
      snprintf(buf, sizeof(buf), "%s%.0f", i == 0 ? " " : " + ",
               r.opsPerSecond() * double(ops[i]) / double(r.allOps));
      out = kj::str(out, buf);
    }
    return kj::str(out, "/s");
  }
};

// The database server's CPU per call, when the store is one.
kj::String databaseNote(Context& ctx, const Result& r) {
  if (ctx.database == nullptr || r.allOps == 0) return kj::str("");
  char buf[48];
  snprintf(buf, sizeof(buf), "; pg µs/op %.1f", r.databaseCpuNs / 1000.0 / r.allOps);
  return kj::str(buf);
}

void getRows(Context& ctx, kj::AsyncIoContext& io, DaemonSet& set) {
  size_t n = set.daemons.size();
  header(kj::str(
      "credvaultd Get over IPC (own credentials, 1 record of type \"imap\")",
      n > 1 ? kj::str("; ", n, " daemons, connection i on daemon i mod ", n) : kj::str("")));
  kj::Vector<Shape> shapes;
  for (auto& shape : SHAPES) shapes.add(shape);
  // 64 in flight split evenly over two daemons.
  if (n > 1) shapes.add(Shape{unsigned(n), 64 / unsigned(n)});
  for (size_t i = 0; i < shapes.size(); i++) {
    auto& shape = shapes[i];
    kj::Vector<Client> clients;
    kj::Vector<Issue> slots;
    PerDaemon per(n);
    for (unsigned c = 0; c < shape.connections; c++) {
      clients.add(connectClient(io, set.daemons[c % n]->socket));
      for (unsigned s = 0; s < shape.perConnection; s++) {
        slots.add([session = clients.back().session, &count = per.ops[c % n]]() mutable {
          auto req = session.getRequest();
          req.setType("imap");
          return req.send().then([&count](capnp::Response<rpc::Session::GetResults>&& r) {
            expectOk(r, "get");
            KJ_ASSERT(r.getCredentials().size() == 1);
            KJ_ASSERT(r.getCredentials()[0].hasSecretValue());
            ++count;
          });
        });
      }
    }
    auto r = runLoad(io.waitScope, slots, ctx.o.warmup, ctx.o.duration, set.watched(ctx));
    double echo = i < SHAPE_COUNT ? ctx.echoOpsPerSecond[i] : 0;
    kj::String notes =
        shape.connections == 1 ? kj::str("pipelined on one connection") : kj::str("");
    if (echo > 0) {
      char buf[64];
      snprintf(buf, sizeof(buf), "%secho/Get %.2f×", notes.size() ? "; " : "",
               echo / r.opsPerSecond());
      notes = kj::str(notes, buf);
    }
    notes = kj::str(notes, per.note(r), databaseNote(ctx, r));
    if (notes.startsWith("; ")) notes = kj::heapString(notes.slice(2));
    row("Get", shape.label(), r, notes);
  }
}

void saveRows(Context& ctx, kj::AsyncIoContext& io, DaemonSet& set) {
  size_t n = set.daemons.size();
  header(
      kj::str("credvaultd durable Save over IPC (upserts of own credentials; 1 call in flight "
              "per client, one connection per client)",
              n > 1 ? kj::str("; ", n, " daemons, client i on daemon i mod ", n) : kj::str("")));
  // Commits: LMDB's transaction ids; on PostgreSQL (whose transaction ids count savepoints
  // too) the group commits every daemon of the set reports (Vault.metrics).
  kj::Maybe<TxnCounter> txns;
  if (ctx.database == nullptr) txns.emplace(set.daemons[0]->stateDir);
  kj::Vector<Client> watchers;
  for (auto& d : set.daemons) watchers.add(connectClient(io, d->socket));
  struct Counters {
    uint64_t commits = 0, walBytes = 0;
  };
  auto counters = [&]() -> Counters {
    KJ_IF_MAYBE(t, txns) { return {t->lastTxnId(), 0}; }
    Counters c{0, ctx.database->walBytes()};
    for (auto& w : watchers) {
      auto m = w.connection->vault().metricsRequest().send().wait(io.waitScope);
      expectOk(m, "metrics");
      c.commits += m.getStatus().getCommits();
    }
    return c;
  };
  for (unsigned clientsCount : {1u, 32u}) {
    kj::Vector<Client> clients;
    kj::Vector<Issue> slots;
    PerDaemon per(n);
    for (unsigned c = 0; c < clientsCount; c++) {
      clients.add(connectClient(io, set.daemons[c % n]->socket));
      slots.add([session = clients.back().session, c, k = uint32_t(0),
                 &count = per.ops[c % n]]() mutable {
        auto req = session.saveRequest();
        req.setType("bench-save");
        fillCredential(req.initCredential(), kj::str("client", c, "-", k++ % 200, "@example.com"));
        return req.send().then([&count](capnp::Response<rpc::Session::SaveResults>&& r) {
          expectOk(r, "save");
          ++count;
        });
      });
    }
    auto before = counters();
    auto r = runLoad(io.waitScope, slots, ctx.o.warmup, ctx.o.duration, set.watched(ctx));
    auto after = counters();
    uint64_t commits = after.commits - before.commits;
    char buf[128];
    snprintf(buf, sizeof(buf), "%llu commits for %llu saves: %.1f saves per commit",
             (unsigned long long)commits, (unsigned long long)r.allOps,
             commits ? double(r.allOps) / commits : 0.0);
    kj::String notes = kj::str(buf);
    if (ctx.database != nullptr && r.allOps > 0) {
      snprintf(buf, sizeof(buf), "; WAL %.0f B/save",
               double(after.walBytes - before.walBytes) / r.allOps);
      notes = kj::str(notes, buf);
    }
    row("Save", kj::str(clientsCount, "c×1"), r, kj::str(notes, per.note(r), databaseNote(ctx, r)));
  }
}

// Fair share: a simple Get's rate and p99 while another connection loops Gets of a type
// with 10,000 entries (the per-associate limit), each ~14 ms of decryption.
void bigListRows(Context& ctx, kj::AsyncIoContext& io, Daemon& d, int32_t benchId) {
  auto& ws = io.waitScope;
  constexpr unsigned BIG = 9990;  // the associate already has one "imap" entry
  {
    auto loader = connectClient(io, d.socket);
    kj::Vector<kj::Promise<void>> saves;
    for (unsigned i = 0; i < BIG; i++) {
      auto req = loader.session.saveRequest();
      req.setAssociateId(benchId);
      req.setType("big");
      fillCredential(req.initCredential(), kj::str("big-", i, "@example.com"));
      saves.add(req.send().then([](auto r) { expectOk(r, "save"); }));
      if (saves.size() == 64) kj::joinPromises(saves.releaseAsArray()).wait(ws);
    }
    kj::joinPromises(saves.releaseAsArray()).wait(ws);
  }
  header(
      kj::str("fair share: a simple Get while another connection loops Gets of ", BIG, " entries"));
  auto measure = [&](kj::StringPtr what, unsigned inFlight, bool loaded) {
    auto hog = connectClient(io, d.socket);
    auto victim = connectClient(io, d.socket);
    bool stop = false;
    uint64_t bigGets = 0, throttled = 0;
    kj::Function<kj::Promise<void>()> loop = [&]() -> kj::Promise<void> {
      if (stop) return kj::READY_NOW;
      auto req = hog.session.getRequest();
      req.setType("big");
      return req.send().then([&](auto r) -> kj::Promise<void> {
        // A client that waits for each answer is not throttled (the daemon-long-answers tests);
        // if it ever is, the row says how often, and the loop retries as the message says.
        if (r.hasError() && r.getError().getCode() == rpc::ErrorCode::THROTTLED) {
          ++throttled;
          return io.provider->getTimer().afterDelay(kj::MILLISECONDS).then([&]() {
            return loop();
          });
        }
        expectOk(r, "get big");
        KJ_ASSERT(r.getCredentials().size() == BIG);
        ++bigGets;
        return loop();
      });
    };
    kj::Promise<void> hogging = loaded ? loop() : kj::Promise<void>(kj::READY_NOW);
    kj::Vector<Issue> slots;
    for (unsigned s = 0; s < inFlight; s++) {
      slots.add([session = victim.session]() mutable {
        auto req = session.getRequest();
        req.setType("imap");
        return req.send().then([](auto r) { expectOk(r, "get"); });
      });
    }
    auto r = runLoad(ws, slots, ctx.o.warmup, ctx.o.duration, d.pid);
    stop = true;
    hogging.wait(ws);
    row(what, kj::str("1c×", inFlight), r,
        loaded ? kj::str(bigGets, " long Gets meanwhile",
                         throttled > 0 ? kj::str(" (", throttled, " answered throttled, retried)")
                                       : kj::str(""))
               : kj::str("unloaded"));
  };
  for (unsigned inFlight : {1u, 8u}) {
    measure("simple Get", inFlight, false);
    measure("simple Get, long Gets looping", inFlight, true);
  }
}

struct Status {
  uint64_t credentials;
  uint64_t usedBytes;
};

Status status(kj::WaitScope& ws, Client& c) {
  auto r = c.connection->vault().statusRequest().send().wait(ws);
  expectOk(r, "status");
  return {r.getStatus().getCredentials(), r.getStatus().getUsedBytes()};
}

void rssRows(Context& ctx, kj::AsyncIoContext& io, kj::Own<Daemon>& daemon,
             kj::ArrayPtr<const kj::StringPtr> storeSettings, Client& admin,
             rpc::Admin::Client& adminCap, const Memory& startMemory) {
  auto& ws = io.waitScope;
  printf(
      "\ncredvaultd resident memory (/proc/PID/status; the target counts RssAnon: "
      "mapped LMDB pages are RssFile)\n");
  memoryRow("after start (empty vault)", startMemory);
  memoryRow("after the Get/Save/auth runs above", readMemory(daemon->pid));

  // Spread over associates (10,000 per associate at most): 20 associates × 10 types.
  constexpr uint32_t ASSOCIATES = 20;
  uint32_t total = ctx.o.rssCredentials;
  KJ_REQUIRE(total <= ASSOCIATES * 9000, "--rss-credentials is too large", total);
  kj::Vector<int32_t> ids;
  for (uint32_t a = 0; a < ASSOCIATES; a++)
    ids.add(addAssociate(ws, adminCap, kj::str("rss-", a), -1));
  uint64_t countBefore = status(ws, admin).credentials;
  uint32_t next = 0;
  kj::Vector<Client> clients;
  kj::Vector<Issue> slots;
  for (unsigned c = 0; c < 4; c++) {
    clients.add(connectClient(io, daemon->socket));
    for (unsigned s = 0; s < 32; s++) {
      slots.add([session = clients.back().session, &next, &ids]() mutable {
        uint32_t n = next++;
        uint32_t a = n % ASSOCIATES, k = n / ASSOCIATES;
        auto req = session.saveRequest();
        req.setAssociateId(ids[a]);
        req.setType(kj::str("t", k % 10));
        fillCredential(req.initCredential(), kj::str("user", k, "@mail", a, ".example.org"));
        return req.send().then([](capnp::Response<rpc::Session::SaveResults>&& r) {
          expectOk(r, "saveForAssociate");
        });
      });
    }
  }
  auto r = runLoad(ws, slots, 0, 0, daemon->pid, total);
  clients.clear();
  auto st = status(ws, admin);
  KJ_REQUIRE(st.credentials == countBefore + total, st.credentials, countBefore);
  char buf[160];
  snprintf(buf, sizeof(buf),
           "stored %u credentials in %.1f s (4c×32 saveForAssociate), "
           "%llu in the vault, database %.1f MiB used",
           total, r.seconds, (unsigned long long)st.credentials, st.usedBytes / 1048576.0);
  note(buf);
  memoryRow(kj::str("after storing ", total), readMemory(daemon->pid));

  // A fresh daemon on the same state: what it holds with 100k stored, then after reading
  // every record once (each Get of one associate's type returns its records).
  adminCap = nullptr;
  admin = Client();
  stopProcess(daemon->pid);
  daemon->pid = -1;
  daemon =
      startDaemon(ctx.o, ctx.dir, daemon->stateDir, "credvaultd-restarted", true, storeSettings);
  auto root = connectClient(io, daemon->socket);
  memoryRow(kj::str("restarted with ", status(ws, root).credentials, " stored"),
            readMemory(daemon->pid));
  uint64_t seen = 0;
  for (auto id : ids) {
    for (int t = 0; t < 10; t++) {
      auto req = root.session.getRequest();
      req.setAssociateId(id);
      req.setType(kj::str("t", t));
      auto g = req.send().wait(ws);
      expectOk(g, "getForAssociate");
      seen += g.getCredentials().size();
    }
  }
  KJ_REQUIRE(seen == total, seen, total);
  memoryRow(kj::str("restarted, after reading all ", seen), readMemory(daemon->pid));
}

}  // namespace

kj::Vector<kj::String> newVaultSettings(Context& ctx) {
  kj::Vector<kj::String> out;
  if (ctx.database != nullptr) {
    out.add(kj::str("storage=postgresql"));
    out.add(kj::str("postgresql=", ctx.database->freshDatabase()));
  }
  return out;
}

kj::Vector<kj::StringPtr> pointers(const kj::Vector<kj::String>& strings) {
  kj::Vector<kj::StringPtr> out;
  for (auto& s : strings) out.add(s);
  return out;
}

void daemonSections(Context& ctx, kj::AsyncIoContext& io) {
  auto& o = ctx.o;
  auto& ws = io.waitScope;
  auto prefix = kj::str(ctx.storage == "lmdb" ? "" : "pg-");
  auto settings = newVaultSettings(ctx);
  DaemonSet set;
  unsigned count = ctx.database != nullptr ? o.daemons : 1;
  for (unsigned i = 0; i < count; i++) {
    auto name = kj::str(prefix, "credvaultd", i == 0 ? kj::str("") : kj::str("-", char('a' + i)));
    auto stateDir = kj::str(ctx.dir, "/", prefix, "state", i == 0 ? kj::str("") : kj::str("-", i));
    kj::Vector<kj::String> mine;
    for (auto& s : settings) mine.add(kj::heapString(s));
    // The others open the first one's vault with its key, as an operator distributes it.
    if (i > 0) mine.add(kj::str("key_file=", set.daemons[0]->stateDir, "/master.key"));
    set.daemons.add(startDaemon(o, ctx.dir, stateDir, name, true, pointers(mine)));
    set.pids.add(set.daemons.back()->pid);
  }
  auto& daemon = set.daemons[0];
  auto startMemory = readMemory(daemon->pid);

  // Set up as the system user (this process's uid): an associate mapped to our uid, so
  // the sessions below act as that associate ("own credentials"), with a password.
  auto admin = connectClient(io, daemon->socket);
  auto adminCap = adminOf(ws, admin);
  int32_t benchId = addAssociate(ws, adminCap, "bench", getuid(), BENCH_PASSWORD);
  {
    auto user = connectClient(io, daemon->socket);
    auto who = user.session.whoamiRequest().send().wait(ws);
    expectOk(who, "whoami");
    KJ_REQUIRE(who.getPrincipal().getAssociateId() == benchId,
               "the session does not act as the bench associate");
    auto req = user.session.saveRequest();
    req.setType("imap");
    fillCredential(req.initCredential(), "bench@example.com");
    auto r = req.send().wait(ws);
    expectOk(r, "save");
  }

  if (o.wants("get")) getRows(ctx, io, set);
  if (o.wants("save")) saveRows(ctx, io, set);
  if (o.wants("auth")) authSection(ctx, io, *daemon);
  if (o.wants("biglist")) bigListRows(ctx, io, *daemon, benchId);
  if (o.wants("rss")) rssRows(ctx, io, daemon, pointers(settings), admin, adminCap, startMemory);
}

}  // namespace credvault::bench
