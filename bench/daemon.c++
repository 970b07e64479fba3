// credvaultd over IPC: Get, durable Save, a simple Get beside long Gets, and resident
// memory, all on one daemon whose system user (this process) maps to an associate "bench".

#include "sections.h"
#include "sample.h"

#include <kj/debug.h>
#include <kj/vector.h>
#include <stdio.h>

namespace credvault::bench {

namespace {

void getRows(Context& ctx, kj::AsyncIoContext& io, Daemon& d) {
  header("credvaultd Get over IPC (own credentials, 1 record of type \"imap\")");
  for (size_t i = 0; i < SHAPE_COUNT; i++) {
    auto& shape = SHAPES[i];
    kj::Vector<Client> clients;
    kj::Vector<Issue> slots;
    for (unsigned c = 0; c < shape.connections; c++) {
      clients.add(connectClient(io, d.socket));
      for (unsigned s = 0; s < shape.perConnection; s++) {
        slots.add([session = clients.back().session]() mutable {
          auto req = session.getRequest();
          req.setType("imap");
          return req.send().then([](capnp::Response<rpc::Session::GetResults>&& r) {
            expectOk(r, "get");
            KJ_ASSERT(r.getCredentials().size() == 1);
            KJ_ASSERT(r.getCredentials()[0].hasSecretValue());
          });
        });
      }
    }
    auto r = runLoad(io.waitScope, slots, ctx.o.warmup, ctx.o.duration, d.pid);
    double echo = ctx.echoOpsPerSecond[i];
    kj::String notes =
        shape.connections == 1 ? kj::str("pipelined on one connection") : kj::str("");
    if (echo > 0) {
      char buf[64];
      snprintf(buf, sizeof(buf), "%secho/Get %.2f×", notes.size() ? "; " : "",
               echo / r.opsPerSecond());
      notes = kj::str(notes, buf);
    }
    row("Get", shape.label(), r, notes);
  }
}

void saveRows(Context& ctx, kj::AsyncIoContext& io, Daemon& d) {
  header(
      "credvaultd durable Save over IPC (upserts of own credentials; 1 call in flight "
      "per client, one connection per client)");
  TxnCounter txns(d.stateDir);
  for (unsigned clientsCount : {1u, 32u}) {
    kj::Vector<Client> clients;
    kj::Vector<Issue> slots;
    for (unsigned c = 0; c < clientsCount; c++) {
      clients.add(connectClient(io, d.socket));
      slots.add([session = clients.back().session, c, k = uint32_t(0)]() mutable {
        auto req = session.saveRequest();
        req.setType("bench-save");
        fillCredential(req.initCredential(), kj::str("client", c, "-", k++ % 200, "@example.com"));
        return req.send().then(
            [](capnp::Response<rpc::Session::SaveResults>&& r) { expectOk(r, "save"); });
      });
    }
    uint64_t before = txns.lastTxnId();
    auto r = runLoad(io.waitScope, slots, ctx.o.warmup, ctx.o.duration, d.pid);
    uint64_t commits = txns.lastTxnId() - before;
    char buf[128];
    snprintf(buf, sizeof(buf), "%llu commits for %llu saves: %.1f saves per commit",
             (unsigned long long)commits, (unsigned long long)r.allOps,
             commits ? double(r.allOps) / commits : 0.0);
    row("Save", kj::str(clientsCount, "c×1"), r, buf);
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
    uint64_t bigGets = 0;
    kj::Function<kj::Promise<void>()> loop = [&]() -> kj::Promise<void> {
      if (stop) return kj::READY_NOW;
      auto req = hog.session.getRequest();
      req.setType("big");
      return req.send().then([&](auto r) {
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
        loaded ? kj::str(bigGets, " long Gets meanwhile") : kj::str("unloaded"));
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

void rssRows(Context& ctx, kj::AsyncIoContext& io, kj::Own<Daemon>& daemon, Client& admin,
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
  daemon = startDaemon(ctx.o, ctx.dir, daemon->stateDir, "credvaultd-restarted");
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

void daemonSections(Context& ctx, kj::AsyncIoContext& io) {
  auto& o = ctx.o;
  auto& ws = io.waitScope;
  auto stateDir = kj::str(ctx.dir, "/state");
  auto daemon = startDaemon(o, ctx.dir, stateDir, "credvaultd");
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

  if (o.wants("get")) getRows(ctx, io, *daemon);
  if (o.wants("save")) saveRows(ctx, io, *daemon);
  if (o.wants("auth")) authSection(ctx, io, *daemon);
  if (o.wants("biglist")) bigListRows(ctx, io, *daemon, benchId);
  if (o.wants("rss")) rssRows(ctx, io, daemon, admin, adminCap, startMemory);
}

}  // namespace credvault::bench
