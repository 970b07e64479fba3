// Authentication over IPC: password logins (verification-cache hits), tickets, and a second
// daemon at the default Argon2id parameters (cache misses, their effect on other
// connections, and a flood of wrong passwords from another uid).

#include "sections.h"
#include "sample.h"

#include <kj/debug.h>
#include <kj/vector.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

namespace credvault::bench {

namespace {

// The rows of `what` at 1c×1 and 1c×64: `issue(i)` makes the i-th slot's call.
template<typename MakeIssue>
void pipelinedRows(Context& ctx, kj::WaitScope& ws, Daemon& d, kj::StringPtr what,
                   kj::StringPtr notes, MakeIssue&& issue) {
  for (auto& shape : {Shape{1, 1}, Shape{1, 64}}) {
    kj::Vector<Issue> slots;
    for (unsigned i = 0; i < shape.perConnection; i++) slots.add(issue());
    auto r = runLoad(ws, slots, ctx.o.warmup, ctx.o.duration, d.pid);
    row(what, shape.label(), r, notes);
  }
}

void ticketRows(Context& ctx, kj::AsyncIoContext& io, Daemon& d, rpc::Vault::Client vault,
                kj::StringPtr ticket) {
  auto& ws = io.waitScope;
  pipelinedRows(ctx, ws, d, "authenticateTicket", "ticket validation per call", [&]() -> Issue {
    return [vault, ticket]() mutable {
      auto req = vault.authenticateTicketRequest();
      req.setTicket(ticket);
      return req.send().then([](capnp::Response<rpc::Vault::AuthenticateTicketResults>&& r) {
        expectOk(r, "authenticateTicket");
      });
    };
  });
  pipelinedRows(
      ctx, ws, d, "authenticateTicket + Get (pipelined)",
      "a gateway request authenticated by ticket", [&]() -> Issue {
        return [vault, ticket]() mutable {
          auto req = vault.authenticateTicketRequest();
          req.setTicket(ticket);
          auto auth = req.send();
          auto get = auth.getSession().getRequest();
          get.setType("imap");
          // Pipelined: Get on the session the ticket opens, one round trip.
          return get.send().then(
              [auth = kj::mv(auth)](capnp::Response<rpc::Session::GetResults>&& r) mutable {
                expectOk(r, "get");
              });
        };
      });
}

// A second daemon at the default Argon2id parameters: what a first login (a cache miss)
// costs over IPC, what repeated logins cost, and what a miss does to other connections
// (the daemon verifies on its event-loop thread).
void defaultParamsRows(Context& ctx, kj::AsyncIoContext& io) {
  auto& o = ctx.o;
  auto& ws = io.waitScope;
  auto settings = newVaultSettings(ctx);
  auto d =
      startDaemon(o, ctx.dir, kj::str(ctx.dir, "/", ctx.storage, "-state-default-params"),
                  kj::str(ctx.storage, "-credvaultd-default-params"), false, pointers(settings));
  header(
      "credvaultd authentication at the default Argon2id parameters "
      "(crypto::defaultPasswordParams)");
  auto root = connectClient(io, d->socket);
  auto adminCap = adminOf(ws, root);
  // login-0: the first login after start; login-1..3: cache misses; login-4..6: misses
  // while another connection reads.
  constexpr int LOGINS = 8;  // the last one during the flood
  kj::Vector<int32_t> ids;
  for (int i = 0; i < LOGINS; i++) {
    ids.add(addAssociate(ws, adminCap, kj::str("login-", i), -1, BENCH_PASSWORD));
  }
  {
    auto req = root.session.saveRequest();
    req.setAssociateId(ids[0]);
    req.setType("imap");
    fillCredential(req.initCredential(), "bench@example.com");
    auto r = req.send().wait(ws);
    expectOk(r, "saveForAssociate");
  }
  auto vault = root.connection->vault();
  auto login = [vault](kj::String name) mutable {
    auto req = vault.authenticatePasswordRequest();
    req.setName(name);
    req.setPassword(BENCH_PASSWORD);
    return req.send().then([](capnp::Response<rpc::Vault::AuthenticatePasswordResults>&& r) {
      expectOk(r, "authenticatePassword");
    });
  };
  auto timedLogins = [&](int from, int to) {
    Result r;
    uint64_t c0 = processCpuNs(d->pid), s0 = selfCpuNs(), start = nowNs();
    for (int i = from; i < to; i++) {
      uint64_t t0 = nowNs();
      login(kj::str("login-", i)).wait(ws);
      r.latencies.push_back(nowNs() - t0);
    }
    r.allOps = r.ops = to - from;
    r.seconds = (nowNs() - start) / 1e9;
    r.serverCpuNs = processCpuNs(d->pid) - c0;
    r.clientCpuNs = selfCpuNs() - s0;
    return r;
  };
  {
    auto r = timedLogins(0, 1);
    row("authenticatePassword, first since start", "1c×1", r,
        "one call: cache miss (and the daemon's first Argon2id use)");
  }
  {
    auto r = timedLogins(1, 4);
    row("authenticatePassword, new user", "1c×1", r, "3 calls, each a verification-cache miss");
  }
  {
    kj::Vector<Issue> slots;
    slots.add([&login]() { return login(kj::str("login-0")); });
    auto r = runLoad(ws, slots, o.warmup, o.duration, d->pid);
    row("authenticatePassword, same password", "1c×1", r,
        "verification-cache hits (Basic at HTTP speed)");
  }
  {
    // Gets from one client while another connection logs in LOGINS-1 new users.
    auto other = connectClient(io, d->socket);
    kj::Vector<Issue> slots;
    slots.add([session = other.session, id = ids[0]]() mutable {
      auto req = session.getRequest();
      req.setAssociateId(id);
      req.setType("imap");
      return req.send().then(
          [](capnp::Response<rpc::Session::GetResults>&& r) { expectOk(r, "getForAssociate"); });
    });
    kj::Promise<void> logins = kj::READY_NOW;
    for (int i = 4; i < LOGINS - 1; i++) {
      logins = logins.then([&login, i]() { return login(kj::str("login-", i)); });
    }
    auto running = logins.eagerlyEvaluate(nullptr);
    auto r = runLoad(ws, slots, 0, std::max(o.duration, 1.0), d->pid);
    running.wait(ws);
    char buf[128];
    snprintf(buf, sizeof(buf), "max %.1f ms: during %d first logins on another connection",
             r.maxUs() / 1000, LOGINS - 5);
    row("getForAssociate", "1c×1", r, buf);
  }
  {
    // Fair share: another uid pipelines FLOOD_LOGINS logins with random names and client
    // addresses (ignored: it is no gateway uid); then a new user's first login.
    auto floodLog = kj::str(ctx.dir, "/flood.log");
    kj::String argv[] = {selfExe(), kj::str("--flood-passwords"), kj::heapString(d->socket)};
    // The other uid reaches the socket through our directory (its files stay private).
    KJ_SYSCALL(chmod(ctx.dir.cStr(), 0711));
    pid_t flooder = spawn(argv, floodLog, getuid() == 0 ? 65534 : getuid());
    usleep(300 * 1000);  // the flood is written at once; let the daemon read it
    auto r = timedLogins(LOGINS - 1, LOGINS);
    int status;
    waitpid(flooder, &status, 0);
    auto summary = readText(floodLog);
    while (summary.size() > 0 && summary[summary.size() - 1] == '\n') {
      summary = kj::heapString(summary.slice(0, summary.size() - 1));
    }
    row("authenticatePassword, first, during a flood", "1c×1", r,
        kj::str(FLOOD_LOGINS, " logins pipelined by uid ", getuid() == 0 ? 65534 : getuid(), "; ",
                summary));
  }
  // Argon2id takes its memory limit (64 MiB by default) per verification.
  memoryRow("this daemon after the logins", readMemory(d->pid));
}

}  // namespace

int runPasswordFlood(kj::StringPtr path) {
  auto io = kj::setupAsyncIo();
  auto conn = ipc::connect(io.provider->getNetwork(), path).wait(io.waitScope);
  auto vault = conn->vault();
  kj::Vector<kj::Promise<void>> calls;
  unsigned throttled = 0, refused = 0;
  for (unsigned i = 0; i < FLOOD_LOGINS; i++) {
    auto req = vault.authenticatePasswordRequest();
    req.setName(kj::str("flood-", i));
    req.setPassword("wrong");
    req.setClientAddress(kj::str("192.0.2.", i % 250));
    calls.add(req.send().then([&](auto r) {
      if (r.hasError() && r.getError().getCode() == rpc::ErrorCode::THROTTLED) {
        ++throttled;
      } else {
        ++refused;
      }
    }));
  }
  kj::joinPromises(calls.releaseAsArray()).wait(io.waitScope);
  printf("flood: %u answered throttled at once, %u verified and refused\n", throttled, refused);
  fflush(stdout);
  return 0;
}

void authSection(Context& ctx, kj::AsyncIoContext& io, Daemon& d) {
  auto& ws = io.waitScope;
  header(
      "credvaultd authentication over IPC (daemon configured with Argon2id ops 1, mem "
      "8 KiB)");
  auto client = connectClient(io, d.socket);
  auto vault = client.connection->vault();
  // Password: one call per authentication; a failure means the feature changed shape.
  {
    auto probe = vault.authenticatePasswordRequest();
    probe.setName("bench");
    probe.setPassword(BENCH_PASSWORD);
    auto pr = probe.send().wait(ws);
    if (pr.hasError()) {
      note(kj::str("authenticatePassword: n/a (", ipc::errorCodeName(pr.getError().getCode()), ": ",
                   pr.getError().getMessage(), ")"));
    } else {
      pipelinedRows(ctx, ws, d, "authenticatePassword, same password",
                    "verification-cache hits (Basic at HTTP speed)", [&]() -> Issue {
                      return [vault]() mutable {
                        auto req = vault.authenticatePasswordRequest();
                        req.setName("bench");
                        req.setPassword(BENCH_PASSWORD);
                        return req.send().then(
                            [](capnp::Response<rpc::Vault::AuthenticatePasswordResults>&& r) {
                              expectOk(r, "authenticatePassword");
                            });
                      };
                    });
    }
  }
  // Tickets, once the daemon issues them.
  kj::String ticket;
  {
    auto req = vault.authenticatePasswordRequest();
    req.setName("bench");
    req.setPassword(BENCH_PASSWORD);
    req.setIssueTicket(true);
    auto r = req.send().wait(ws);
    if (!r.hasError() && r.hasTicket() && r.getTicket().size() > 0) {
      ticket = kj::heapString(r.getTicket());
    }
  }
  if (ticket.size() == 0) {
    note("authenticateTicket: n/a (the daemon does not issue tickets yet)");
  } else {
    ticketRows(ctx, io, d, vault, ticket);
  }
  defaultParamsRows(ctx, io);
}

}  // namespace credvault::bench
