// Several hosts, one vault: real credvaultd processes on their own sockets and state
// directories sharing one real PostgreSQL database (tests/support/postgres.h: a throw-away
// PostgreSQL 15 started by this binary). What a user of two application servers relies on:
// the key rules at start, a save through A read through B, a password change or revocation on
// A ending B's sessions at their next call (and how long B takes to hear of it), a database
// outage answered `unavailable` and served again without a restart, and a migration round trip
// LMDB -> PostgreSQL -> LMDB that keeps every credential.

#include "harness.h"
#include "tests/support/postgres.h"

#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <sys/wait.h>
#include <chrono>
#include <thread>

namespace credvault::integration {
namespace {

const char ALICE_PW[] = "alice-Pw-multi-1";
const char ALICE_PW2[] = "alice-Pw-multi-2";
const char SECRET_A[] = "saved-through-A-Secret-5b1e";

// A host: its own directory, state directory, socket and key, the shared database.
struct Host {
  TempDir dir;
  Daemon daemon;
  explicit Host(const std::string& conninfo) : daemon(dir.path()) {
    writeFile(dir / "empty.conf", "");
    daemon.addSetting("storage=postgresql");
    daemon.addSetting("postgresql=" + conninfo);
    daemon.addSetting("postgresql_connections=2");
  }
};

// In-process client as root (a system user by peer credentials).
struct Client {
  kj::AsyncIoContext& io;
  kj::Own<ipc::Connection> conn;
  Client(kj::AsyncIoContext& io, const std::string& socket)
      : io(io), conn(ipc::connect(io.provider->getNetwork(), socket).wait(io.waitScope)) {}
  rpc::Session::Client root() {
    return conn->vault().sessionRequest().send().wait(io.waitScope).getSession();
  }
  rpc::Admin::Client admin() { return root().adminRequest().send().wait(io.waitScope).getAdmin(); }
};

std::string getSecret(kj::WaitScope& ws, rpc::Session::Client s) {
  auto req = s.getRequest();
  req.setType("imap");
  auto r = req.send().wait(ws);
  if (r.hasError()) return errorOf(r);
  if (r.getCredentials().size() == 0) return "empty";
  return r.getCredentials()[0].getSecretValue();
}

class MultiHost : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!support::PostgresServer::available()) GTEST_SKIP() << "PostgreSQL 15 is not installed";
    conninfo = support::PostgresServer::instance().freshDatabase().cStr();
  }
  void TearDown() override {
    for (auto& h : hosts) {
      if (h->daemon.running()) h->daemon.stop();
      leaks.check(h->daemon);
    }
  }
  std::string conninfo;
  std::vector<std::unique_ptr<Host>> hosts;
  LeakCheck leaks;
  Host& host() {
    hosts.push_back(std::make_unique<Host>(conninfo));
    return *hosts.back();
  }
  // Host B gets A's key (as an operator distributes it).
  void shareKey(Host& from, Host& to) {
    mkdir(to.daemon.stateDir().c_str(), 0700);
    writeFile(to.daemon.keyFile(), readFile(from.daemon.keyFile()));
  }
};

TEST_F(MultiHost, TwoDaemonsShareOneVaultAndItsKeyRules) {
  Host& a = host();
  Host& b = host();
  leaks.remember(ALICE_PW);
  leaks.remember(ALICE_PW2);
  leaks.remember(SECRET_A);
  a.daemon.start();
  EXPECT_TRUE(contains(a.daemon.lastLog(), "created a new vault in the PostgreSQL database"));

  // B without a key: never a fresh key against a database that has keys.
  int status = b.daemon.startExpectingFailure();
  EXPECT_EQ(WEXITSTATUS(status), 65) << b.daemon.lastLog();
  EXPECT_TRUE(contains(b.daemon.lastLog(), "no master key")) << b.daemon.lastLog();
  // B with another key: refused, naming its fingerprint.
  mkdir(b.daemon.stateDir().c_str(), 0700);
  {
    TempDir other;
    auto r = runAs(0, {credvaultdPath(), "--generate-key", other / "k"}, "", {});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    writeFile(b.daemon.keyFile(), readFile(other / "k"));
  }
  status = b.daemon.startExpectingFailure();
  EXPECT_EQ(WEXITSTATUS(status), 65) << b.daemon.lastLog();
  EXPECT_TRUE(contains(b.daemon.lastLog(), "wrong master key")) << b.daemon.lastLog();
  EXPECT_TRUE(contains(b.daemon.lastLog(), "fingerprint")) << b.daemon.lastLog();
  shareKey(a, b);
  b.daemon.start();

  kj::AsyncIoContext io = kj::setupAsyncIo();
  auto& ws = io.waitScope;
  Client ca(io, a.daemon.socket()), cb(io, b.daemon.socket());
  auto add = ca.admin().addAssociateRequest();
  add.setName("alice");
  add.setKind(rpc::Kind::USER);
  add.setUnixUid(-1);
  add.setPassword(ALICE_PW);
  ASSERT_EQ(errorOf(add.send().wait(ws)), "ok");

  // A save through A, read through B with a ticket issued by A.
  auto login = ca.conn->vault().authenticatePasswordRequest();
  login.setName("alice");
  login.setPassword(ALICE_PW);
  login.setIssueTicket(true);
  auto logged = login.send().wait(ws);
  ASSERT_EQ(errorOf(logged), "ok");
  std::string ticket = logged.getTicket();
  leaks.remember(ticket);
  auto save = logged.getSession().saveRequest();
  save.setType("imap");
  auto c = save.initCredential();
  c.setPublicValue("alice@example.com");
  c.setSecretValue(SECRET_A);
  c.setIsActive(true);
  ASSERT_EQ(errorOf(save.send().wait(ws)), "ok");

  auto byTicket = cb.conn->vault().authenticateTicketRequest();
  byTicket.setTicket(ticket);
  auto held = byTicket.send().wait(ws);
  ASSERT_EQ(errorOf(held), "ok");
  auto heldOnB = held.getSession();
  EXPECT_EQ(getSecret(ws, heldOnB), SECRET_A);

  // A password change on A ends the ticket's session on B at its next call; how long B takes
  // to hear of it (the NOTIFY path) is printed.
  auto pw = ca.admin().setPasswordRequest();
  pw.setAssociateId(logged.getPrincipal().getAssociateId());
  pw.setPassword(ALICE_PW2);
  ASSERT_EQ(errorOf(pw.send().wait(ws)), "ok");
  auto changed = std::chrono::steady_clock::now();
  std::string outcome;
  for (int i = 0; i < 2000; ++i) {
    outcome = getSecret(ws, heldOnB);
    if (outcome != SECRET_A) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto seen = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - changed);
  EXPECT_EQ(outcome, "not-authenticated");
  printf("[ multi-host ] B refused a held session %.1f ms after A's password change committed\n",
         seen.count() / 1000.0);
  auto again = cb.conn->vault().authenticateTicketRequest();
  again.setTicket(ticket);
  EXPECT_EQ(errorOf(again.send().wait(ws)), "not-authenticated ticket");

  // Deactivation on A refuses B's peer-independent password session at its next call.
  auto login2 = cb.conn->vault().authenticatePasswordRequest();
  login2.setName("alice");
  login2.setPassword(ALICE_PW2);
  auto onB = login2.send().wait(ws);
  ASSERT_EQ(errorOf(onB), "ok");
  EXPECT_EQ(getSecret(ws, onB.getSession()), SECRET_A);
  auto off = ca.admin().setAssociateRequest();
  off.setAssociateId(logged.getPrincipal().getAssociateId());
  off.initUpdate().getActive().setSet(false);
  ASSERT_EQ(errorOf(off.send().wait(ws)), "ok");
  std::string afterOff;
  for (int i = 0; i < 2000; ++i) {
    afterOff = getSecret(ws, onB.getSession());
    if (afterOff != SECRET_A) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(afterOff, "not-authenticated");
}

// The database stops under a running daemon: calls are answered `unavailable` (not
// `internal`, not a hang), and the daemon serves again by itself once the server is back.
TEST_F(MultiHost, ADatabaseOutageIsUnavailableThenServedAgainWithoutARestart) {
  Host& a = host();
  a.daemon.start();
  kj::AsyncIoContext io = kj::setupAsyncIo();
  auto& ws = io.waitScope;
  Client ca(io, a.daemon.socket());
  auto admin = ca.admin();
  auto health = [&]() { return errorOf(ca.conn->vault().healthRequest().send().wait(ws)); };
  ASSERT_EQ(health(), "ok");

  auto& pg = support::PostgresServer::instance();
  pg.stop();
  KJ_DEFER(if (!pg.running()) pg.start());
  auto add = admin.addAssociateRequest();
  add.setName("during-outage");
  add.setKind(rpc::Kind::USER);
  add.setUnixUid(-1);
  auto r = add.send().wait(ws);
  EXPECT_EQ(errorOf(r), "unavailable storage");
  EXPECT_EQ(health(), "unavailable storage");
  auto status = ca.conn->vault().statusRequest().send().wait(ws);
  EXPECT_EQ(errorOf(status), "unavailable storage");
  pg.start();

  std::string after;
  for (int i = 0; i < 100; ++i) {
    after = health();
    if (after == "ok") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(after, "ok");
  auto retry = admin.addAssociateRequest();
  retry.setName("after-outage");
  retry.setKind(rpc::Kind::USER);
  retry.setUnixUid(-1);
  EXPECT_EQ(errorOf(retry.send().wait(ws)), "ok");
  // Nothing was acknowledged that was not committed: the refused add is not there.
  auto find = admin.findAssociateRequest();
  find.setName("during-outage");
  EXPECT_EQ(errorOf(find.send().wait(ws)), "not-found name");
  EXPECT_TRUE(a.daemon.running());
}

// kill -9 of host A while it saves: every save A acknowledged is read through host B.
TEST_F(MultiHost, KillingAHostDuringSavesLosesNothingAcknowledged) {
  Host& a = host();
  Host& b = host();
  a.daemon.start();
  shareKey(a, b);
  b.daemon.start();
  kj::AsyncIoContext io = kj::setupAsyncIo();
  auto& ws = io.waitScope;
  int32_t alice;
  {
    Client cb(io, b.daemon.socket());
    auto add = cb.admin().addAssociateRequest();
    add.setName("alice");
    add.setKind(rpc::Kind::USER);
    add.setUnixUid(-1);
    auto r = add.send().wait(ws);
    ASSERT_EQ(errorOf(r), "ok");
    alice = r.getAssociate().getAssociateId();
  }
  int acknowledged = 0;
  {
    Client ca(io, a.daemon.socket());
    auto s = ca.root();
    pid_t victim = a.daemon.pid();
    std::thread killer([victim]() {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      kill(victim, SIGKILL);
    });
    KJ_DEFER(killer.join());
    // Eight saves in flight at a time, until the connection breaks.
    bool broken = false;
    for (int round = 0; round < 10000 && !broken; ++round) {
      kj::Vector<kj::Promise<bool>> batch;
      for (int j = 0; j < 8; ++j) {
        int n = round * 8 + j;
        auto save = s.saveRequest();
        save.setAssociateId(alice);
        save.setType("imap");
        auto c = save.initCredential();
        c.setPublicValue(kj::str("user", n, "@example.com"));
        c.setSecretValue(kj::str("killed-Secret-", n));
        c.setIsActive(true);
        batch.add(save.send().then([](auto r) { return !r.hasError(); },
                                   [](kj::Exception&&) { return false; }));
      }
      for (bool ok : kj::joinPromises(batch.releaseAsArray()).wait(ws)) {
        if (ok) {
          ++acknowledged;
        } else {
          broken = true;
        }
      }
    }
  }
  a.daemon.wait();
  ASSERT_GT(acknowledged, 0);
  Client cb(io, b.daemon.socket());
  auto get = cb.root().getRequest();
  get.setAssociateId(alice);
  get.setType("imap");
  auto r = get.send().wait(ws);
  ASSERT_EQ(errorOf(r), "ok");
  EXPECT_GE(r.getCredentials().size(), static_cast<unsigned>(acknowledged));
  printf("[ multi-host ] %d saves acknowledged before kill -9, %u found through B\n", acknowledged,
         r.getCredentials().size());
}

// LMDB -> PostgreSQL -> LMDB keeps every credential (credvaultd --migrate-to).
TEST_F(MultiHost, AMigrationRoundTripKeepsEveryCredential) {
  TempDir dir;
  Daemon lmdb(dir.path());
  writeFile(dir / "empty.conf", "");
  lmdb.start();
  constexpr int N = 25;
  {
    kj::AsyncIoContext io = kj::setupAsyncIo();
    auto& ws = io.waitScope;
    Client c(io, lmdb.socket());
    auto add = c.admin().addAssociateRequest();
    add.setName("alice");
    add.setKind(rpc::Kind::USER);
    add.setUnixUid(-1);
    auto added = add.send().wait(ws);
    ASSERT_EQ(errorOf(added), "ok");
    auto s = c.root();
    for (int i = 0; i < N; ++i) {
      auto save = s.saveRequest();
      save.setAssociateId(added.getAssociate().getAssociateId());
      save.setType("imap");
      auto cred = save.initCredential();
      cred.setPublicValue(kj::str("user", i, "@example.com"));
      cred.setSecretValue(kj::str("round-trip-Secret-", i));
      cred.setIsActive(true);
      ASSERT_EQ(errorOf(save.send().wait(ws)), "ok");
    }
  }
  lmdb.stop();
  writeFile(dir / "pg.conf", "storage = postgresql\npostgresql = " + conninfo + "\n");
  auto toPg = runAs(0,
                    {credvaultdPath(), "--config", dir / "empty.conf", "--state-dir",
                     lmdb.stateDir(), "--migrate-to=" + (dir / "pg.conf")},
                    "", {});
  ASSERT_EQ(toPg.exitCode, 0) << toPg.err;
  EXPECT_TRUE(contains(toPg.out + toPg.err, "to postgresql")) << toPg.out << toPg.err;
  // --verify on the PostgreSQL vault: every record opened in the process, read-only.
  auto verifyPg = runAs(0,
                        {credvaultdPath(), "--config", dir / "pg.conf", "--state-dir",
                         dir / "pg-host", "--key-file", lmdb.keyFile(), "--verify"},
                        "", {});
  EXPECT_EQ(verifyPg.exitCode, 0) << verifyPg.err;
  EXPECT_TRUE(
      contains(verifyPg.out + verifyPg.err, "verified " + std::to_string(N) + " credentials"))
      << verifyPg.out << verifyPg.err;
  // Back, into an empty LMDB state directory, with the PostgreSQL side as the source.
  writeFile(dir / "back.conf", "state_dir = " + (dir / "back") + "\n");
  auto toLmdb =
      runAs(0,
            {credvaultdPath(), "--config", dir / "pg.conf", "--state-dir", dir / "pg-host",
             "--key-file", lmdb.keyFile(), "--migrate-to=" + (dir / "back.conf")},
            "", {});
  ASSERT_EQ(toLmdb.exitCode, 0) << toLmdb.err;
  EXPECT_TRUE(contains(toLmdb.out + toLmdb.err, "verified " + std::to_string(N) + " credentials"))
      << toLmdb.out << toLmdb.err;
  // A second migration into the same, now full, destination is refused.
  auto twice = runAs(0,
                     {credvaultdPath(), "--config", dir / "pg.conf", "--state-dir", dir / "pg-host",
                      "--key-file", lmdb.keyFile(), "--migrate-to=" + (dir / "back.conf")},
                     "", {});
  EXPECT_EQ(twice.exitCode, 73) << twice.err;
  EXPECT_TRUE(contains(twice.err, "already holds a vault")) << twice.err;
  // The round trip's vault serves every secret.
  auto verify = runAs(0,
                      {credvaultdPath(), "--config", dir / "empty.conf", "--state-dir",
                       dir / "back", "--key-file", lmdb.keyFile(), "--verify"},
                      "", {});
  EXPECT_EQ(verify.exitCode, 0) << verify.err;
  EXPECT_TRUE(contains(verify.out + verify.err, "verified " + std::to_string(N) + " credentials"))
      << verify.out << verify.err;
}

}  // namespace
}  // namespace credvault::integration
