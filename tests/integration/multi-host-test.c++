// Several hosts, one vault: real credvaultd processes on their own sockets and state
// directories sharing one real PostgreSQL database (tests/support/postgres.h: a throw-away
// PostgreSQL 15 started by this binary). What a user of two application servers relies on:
// the key rules at start, a save through A read through B, a password change or revocation on
// A ending B's sessions at their next call (and how long B takes to hear of it), a database
// outage answered `unavailable` and served again without a restart, and a migration round trip
// LMDB -> PostgreSQL -> LMDB that keeps every credential.

#include "harness.h"
#include "tests/support/eventually.h"
#include "tests/support/postgres.h"

#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <map>
#include <set>
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
    daemon.usePostgres(conninfo);  // storage = postgresql, two connections
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
  // Adds a user associate without a uid (with `password` unless empty): its id, or -1 with a
  // test failure when refused.
  int32_t addUser(const std::string& name, const std::string& password = "") {
    auto add = admin().addAssociateRequest();
    add.setName(name);
    add.setKind(rpc::Kind::USER);
    add.setUnixUid(-1);
    if (!password.empty()) add.setPassword(password);
    auto r = add.send().wait(io.waitScope);
    EXPECT_EQ(errorOf(r), "ok") << name;
    return r.hasError() ? -1 : r.getAssociate().getAssociateId();
  }
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
  // Until B hears of it, 30 s at most (a loaded host can be seconds late).
  std::string outcome;
  support::eventually(
      [&]() {
        outcome = getSecret(ws, heldOnB);
        return outcome != SECRET_A;
      },
      std::chrono::milliseconds(1));
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
  support::eventually(
      [&]() {
        afterOff = getSecret(ws, onB.getSession());
        return afterOff != SECRET_A;
      },
      std::chrono::milliseconds(1));
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

  // Serving again by itself: waited for, 30 s at most.
  std::string after;
  support::eventually(
      [&]() {
        after = health();
        return after == "ok";
      },
      std::chrono::milliseconds(100));
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
    // kill -9 300 ms into the acknowledged saves: once the first is acknowledged (waited
    // for, 30 s at most: on a loaded host the first commits can take longer than 300 ms).
    std::thread killer([victim, &acknowledged]() {
      support::eventually([&]() { return __atomic_load_n(&acknowledged, __ATOMIC_ACQUIRE) > 0; },
                          std::chrono::milliseconds(1));
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
          __atomic_add_fetch(&acknowledged, 1, __ATOMIC_RELEASE);
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
  // Its counts: every table the vault keeps, and their entries (not "0 entries in 0 tables").
  EXPECT_FALSE(contains(verifyPg.out + verifyPg.err, " in 0 tables")) << verifyPg.err;
  printf("[ multi-host ] %s", (verifyPg.out + verifyPg.err).c_str());
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

// Saves and gets keep coming from eight clients while PostgreSQL restarts (fast shutdown, 1.5 s
// down, start): every call is answered within a bound, `ok` or `unavailable` (never `internal`
// nor a broken connection), every save answered ok is found afterwards, and the daemon serves
// again by itself.
TEST_F(MultiHost, APostgresRestartUnderLoadAnswersUnavailableAndLosesNothingAcknowledged) {
  Host& a = host();
  a.daemon.start();
  kj::AsyncIoContext io = kj::setupAsyncIo();
  auto& ws = io.waitScope;
  Client ca(io, a.daemon.socket());
  auto s = ca.root();
  int32_t alice = ca.addUser("alice");
  ASSERT_GT(alice, 0);
  ASSERT_EQ(
      support::saveFor(
          s, alice,
          {.type = "imap", .pub = "steady@example.com", .secret = std::string("steady-Secret-1")},
          ws),
      "ok");

  auto& pg = support::PostgresServer::instance();
  using Clock = std::chrono::steady_clock;
  // Phases: 0 before, 1 stopping, 2 down, 3 started again. The server is stopped and started
  // from this thread's event loop (it dies with the thread that started it), blocking the
  // clients' loop for the moment it takes; the daemon serves on meanwhile.
  int phase = 0;
  Clock::time_point restartedAt;
  auto& timer = io.provider->getTimer();
  KJ_DEFER(if (!pg.running()) pg.start());
  std::map<std::string, int> answers;  // outcome -> count
  // Down for 1.5 s, and on a loaded machine longer, until some call has met the outage (at
  // most 10 s): the clients may be slow to send one.
  Clock::time_point stoppedAt;
  // How long pg.stop() and pg.start() held this thread: a call in flight meanwhile is measured
  // as that much slower without the daemon being any slower.
  Clock::duration blocked{};
  std::function<kj::Promise<void>()> stayDown = [&]() -> kj::Promise<void> {
    auto down = Clock::now() - stoppedAt;
    if (down >= std::chrono::milliseconds(1500) &&
        (answers["unavailable storage"] > 0 || down >= std::chrono::seconds(10))) {
      return kj::READY_NOW;
    }
    return timer.afterDelay(100 * kj::MILLISECONDS).then([&]() { return stayDown(); });
  };
  auto restart = timer.afterDelay(500 * kj::MILLISECONDS)
                     .then([&]() {
                       phase = 1;
                       auto t = Clock::now();
                       pg.stop();
                       phase = 2;
                       stoppedAt = Clock::now();
                       blocked += stoppedAt - t;
                       return stayDown();
                     })
                     .then([&]() {
                       auto t = Clock::now();
                       pg.start();
                       restartedAt = Clock::now();
                       blocked += restartedAt - t;
                       phase = 3;
                     })
                     .eagerlyEvaluate(nullptr);  // not only once every client is done

  std::set<std::string> acknowledged;  // public values of saves answered ok
  int okAfterRestart = 0, unavailableWhileDown = 0;
  Clock::duration slowest{};
  std::function<kj::Promise<void>(int, int)> client = [&](int c, int n) -> kj::Promise<void> {
    int ph = phase;
    if (ph == 3 && Clock::now() - restartedAt > std::chrono::seconds(3)) return kj::READY_NOW;
    auto began = Clock::now();
    auto done = [&, c, n, began, ph](std::string outcome,
                                     kj::Maybe<std::string> saved) -> kj::Promise<void> {
      slowest = std::max(slowest, Clock::now() - began);
      ++answers[outcome];
      if (outcome == "ok") {
        KJ_IF_MAYBE(pub, saved) { acknowledged.insert(*pub); }
        if (ph == 3) ++okAfterRestart;
      } else if (outcome == "unavailable storage" && ph == 2) {
        ++unavailableWhileDown;
      }
      auto next = [&, c, n]() { return client(c, n + 1); };
      if (outcome == "ok") return next();
      return timer.afterDelay(10 * kj::MILLISECONDS).then(kj::mv(next));
    };
    auto failed = [&, began](kj::Exception&& e) -> kj::Promise<void> {
      slowest = std::max(slowest, Clock::now() - began);
      ++answers[std::string("EXCEPTION ") + e.getDescription().cStr()];
      return kj::READY_NOW;  // this client stops: its connection is broken
    };
    if (n % 2 == 0) {
      auto pub = "load-" + std::to_string(c) + "-" + std::to_string(n) + "@example.com";
      auto req = s.saveRequest();
      req.setAssociateId(alice);
      req.setType("load");
      support::fill(req.initCredential(),
                    {.pub = pub, .secret = "load-Secret-" + std::to_string(c * 100000 + n)});
      return req.send().then(
          [done, pub](auto r) { return done(errorOf(r), kj::Maybe<std::string>(pub)); },
          kj::mv(failed));
    }
    auto req = s.getRequest();
    req.setAssociateId(alice);
    req.setType("imap");
    return req.send().then(
        [done](auto r) {
          std::string outcome = errorOf(r);
          if (outcome == "ok" && r.getCredentials().size() != 1) outcome = "wrong get answer";
          return done(outcome, nullptr);
        },
        kj::mv(failed));
  };
  kj::Vector<kj::Promise<void>> clients;
  for (int c = 0; c < 8; ++c) clients.add(client(c, 0));
  clients.add(kj::mv(restart));
  kj::joinPromises(clients.releaseAsArray()).wait(ws);

  std::string summary;
  for (auto& [outcome, count] : answers) summary += outcome + ": " + std::to_string(count) + "; ";
  for (auto& [outcome, count] : answers) {
    EXPECT_TRUE(outcome == "ok" || outcome == "unavailable storage") << summary;
  }
  // Some call met the outage (on a loaded machine the daemon may answer the calls in flight at
  // the stop only once the server is back, so not necessarily one begun while it was down).
  EXPECT_GT(answers["unavailable storage"], 0) << "no call met the outage: " << summary;
  EXPECT_GT(okAfterRestart, 0) << "the daemon did not serve again by itself: " << summary;
  // Bound: the longest call, outage included (the daemon's connect timeout is far below it).
  EXPECT_LT(slowest, std::chrono::seconds(10) + blocked)
      << summary << "; the server's stop and start held the clients' loop "
      << std::chrono::duration<double, std::milli>(blocked).count() << " ms";
  printf(
      "[ multi-host ] restart under load: %s%d begun while down; slowest call %.1f ms, %zu "
      "saves acknowledged\n",
      summary.c_str(), unavailableWhileDown,
      std::chrono::duration<double, std::milli>(slowest).count(), acknowledged.size());

  // Every acknowledged save is there.
  auto get = s.getRequest();
  get.setAssociateId(alice);
  get.setType("load");
  auto r = get.send().wait(ws);
  ASSERT_EQ(errorOf(r), "ok");
  std::set<std::string> found;
  for (auto c : r.getCredentials()) found.insert(c.getPublicValue().cStr());
  for (auto& pub : acknowledged) EXPECT_TRUE(found.count(pub)) << pub << " was acknowledged";
  EXPECT_TRUE(a.daemon.running());
}

// Backup and restore as docs/operations.md describes it: pg_dump of a serving vault's database,
// pg_restore into a new one, a daemon on it with the same master key reads every credential,
// and `credvaultd --verify` passes on it.
TEST_F(MultiHost, APgDumpRestoredIntoANewDatabaseServesEveryCredential) {
  Host& a = host();
  a.daemon.start();
  constexpr int N = 20;
  kj::AsyncIoContext io = kj::setupAsyncIo();
  auto& ws = io.waitScope;
  int32_t alice;
  {
    Client ca(io, a.daemon.socket());
    alice = ca.addUser("alice", ALICE_PW);
    ASSERT_GT(alice, 0);
    auto s = ca.root();
    for (int i = 0; i < N; ++i) {
      auto secret = "dumped-Secret-" + std::to_string(1000 + i);
      leaks.remember(secret);
      ASSERT_EQ(support::saveFor(s, alice,
                                 {.type = "imap",
                                  .pub = "user" + std::to_string(i) + "@example.com",
                                  .secret = secret},
                                 ws),
                "ok");
    }
  }
  // The dump is taken while the daemon serves (a consistent snapshot).
  auto& pg = support::PostgresServer::instance();
  TempDir dumps;
  auto dump = dumps / "credvault.dump";
  auto r = runAs(
      0, {"/usr/lib/postgresql/15/bin/pg_dump", "--format=custom", "--file=" + dump, conninfo}, "",
      {});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  auto dumped = readFile(dump);
  for (int i = 0; i < N; ++i) {
    EXPECT_FALSE(contains(dumped, "dumped-Secret-" + std::to_string(1000 + i)));
  }
  EXPECT_FALSE(contains(dumped, ALICE_PW));
  auto restoredDb = std::string(pg.freshDatabase().cStr());
  r = runAs(0,
            {"/usr/lib/postgresql/15/bin/pg_restore", "--no-owner", "--exit-on-error",
             "--dbname=" + restoredDb, dump},
            "", {});
  ASSERT_EQ(r.exitCode, 0) << r.err;

  // --verify on the restored database, read-only, with the vault's key.
  TempDir other;
  writeFile(other / "none.conf", "");
  auto verify = runAs(0,
                      {credvaultdPath(), "--config", other / "none.conf", "--state-dir",
                       other / "state", "--key-file", a.daemon.keyFile(), "--set",
                       "storage=postgresql", "--set", "postgresql=" + restoredDb, "--verify"},
                      "", {});
  EXPECT_EQ(verify.exitCode, 0) << verify.out << verify.err;
  EXPECT_TRUE(contains(verify.out + verify.err, "verified " + std::to_string(N) + " credentials"))
      << verify.out << verify.err;

  // A host on the restored database, with the same key: every credential, and alice's password.
  a.daemon.stop();
  hosts.push_back(std::make_unique<Host>(restoredDb));
  Host& b = *hosts.back();
  shareKey(a, b);
  b.daemon.start();
  Client cb(io, b.daemon.socket());
  auto login = cb.conn->vault().authenticatePasswordRequest();
  login.setName("alice");
  login.setPassword(ALICE_PW);
  auto logged = login.send().wait(ws);
  ASSERT_EQ(errorOf(logged), "ok");
  auto rootOnB = cb.root();
  auto got = support::getFor(rootOnB, alice, "imap", ws);
  std::string expected;
  std::vector<std::string> items;
  for (int i = 0; i < N; ++i) {
    items.push_back("user" + std::to_string(i) + "@example.com=dumped-Secret-" +
                    std::to_string(1000 + i));
  }
  std::sort(items.begin(), items.end());
  for (auto& i : items) expected += (expected.empty() ? "" : "|") + i;
  EXPECT_EQ(got, expected);
}

// The database password only in a libpq passfile: a role with scram-sha-256 authentication on
// the server's socket, the daemon given the password through the systemd credential
// credvault.pgpass or through PGPASSFILE connects; without either, or with a wrong one, it
// stops at start with one line that does not contain the password and exit 78 (no restart);
// a server that is not there is exit 69 (systemd retries).
TEST_F(MultiHost, TheDatabasePasswordComesFromAPassfile) {
  auto& pg = support::PostgresServer::instance();
  const std::string PG_PW = "pg-Role-Passw0rd-73e1";
  leaks.remember(PG_PW);
  auto db = conninfo.substr(conninfo.find("dbname=") + 7);
  pg.sql("postgres", kj::str("CREATE ROLE credvault_pw LOGIN PASSWORD '", PG_PW.c_str(), "'"));
  pg.sql("postgres", kj::str("ALTER DATABASE ", db.c_str(), " OWNER TO credvault_pw"));
  auto hba = std::string(pg.dataDir().cStr()) + "/pg_hba.conf";
  auto original = readFile(hba);
  struct stat st;
  ASSERT_EQ(stat(hba.c_str(), &st), 0);
  writeFile(hba, "local all credvault_pw scram-sha-256\n" + original, 0600);
  ASSERT_EQ(chown(hba.c_str(), st.st_uid, st.st_gid), 0);
  pg.sql("postgres", "SELECT pg_reload_conf()");
  KJ_DEFER({
    writeFile(hba, original, 0600);
    if (chown(hba.c_str(), st.st_uid, st.st_gid) != 0) ADD_FAILURE() << "chown " << hba;
    pg.sql("postgres", "SELECT pg_reload_conf()");
  });
  auto asRole = "host=" + std::string(pg.socketDir().cStr()) + " user=credvault_pw dbname=" + db;

  // Without a password: refused at start, one line saying what to fix, exit 78 (a
  // configuration error: the packaged unit does not restart on it; retrying cannot help).
  Host& a = host();
  a.daemon.addSetting("postgresql=" + asRole);
  int status = a.daemon.startExpectingFailure();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 78) << status;
  auto refusal = a.daemon.lastLog();
  EXPECT_EQ(std::count(refusal.begin(), refusal.end(), '\n'), 1) << refusal;
  EXPECT_TRUE(contains(refusal, "refused the login")) << refusal;
  EXPECT_TRUE(contains(refusal, "no password supplied")) << refusal;
  EXPECT_TRUE(contains(refusal, "credvault.pgpass")) << refusal;
  printf("[ multi-host ] without a passfile: %s", refusal.c_str());

  // A wrong password (SQLSTATE 28P01): the same, and the line never holds a password.
  auto creds = a.dir / "credentials";
  ASSERT_EQ(mkdir(creds.c_str(), 0700), 0);
  const std::string WRONG_PW = "pg-Wrong-Passw0rd-5c2d";
  leaks.remember(WRONG_PW);
  writeFile(creds + "/credvault.pgpass", "*:*:" + db + ":credvault_pw:" + WRONG_PW + "\n", 0600);
  a.daemon.addEnv("CREDENTIALS_DIRECTORY=" + creds);
  status = a.daemon.startExpectingFailure();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 78) << status;
  refusal = a.daemon.lastLog();
  EXPECT_EQ(std::count(refusal.begin(), refusal.end(), '\n'), 1) << refusal;
  EXPECT_TRUE(contains(refusal, "password authentication failed")) << refusal;
  EXPECT_FALSE(contains(refusal, WRONG_PW)) << refusal;
  printf("[ multi-host ] a wrong password: %s", refusal.c_str());

  // A server that is not there (no socket in the directory) is not a configuration error:
  // exit 69, which systemd retries.
  {
    Host gone(conninfo);  // not in `hosts`: it never gets ready, so no log check at the end
    TempDir empty;
    gone.daemon.addSetting("postgresql=host=" + empty.path() + " dbname=" + db);
    status = gone.daemon.startExpectingFailure();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 69) << status;
    auto line = gone.daemon.lastLog();
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
    EXPECT_TRUE(contains(line, "cannot be reached")) << line;
    printf("[ multi-host ] no server: %s", line.c_str());
  }

  // The systemd credential credvault.pgpass.
  writeFile(creds + "/credvault.pgpass", "*:*:" + db + ":credvault_pw:" + PG_PW + "\n", 0600);
  a.daemon.start();
  EXPECT_TRUE(contains(a.daemon.lastLog(), "created a new vault in the PostgreSQL database"))
      << a.daemon.lastLog();
  {
    kj::AsyncIoContext io = kj::setupAsyncIo();
    Client ca(io, a.daemon.socket());
    EXPECT_EQ(errorOf(ca.conn->vault().healthRequest().send().wait(io.waitScope)), "ok");
  }
  a.daemon.stop();
  // PGPASSFILE (libpq's own default), on another host sharing the vault.
  Host& b = host();
  b.daemon.addSetting("postgresql=" + asRole);
  shareKey(a, b);
  auto passfile = b.dir / "pgpass";
  writeFile(passfile, "*:*:" + db + ":credvault_pw:" + PG_PW + "\n", 0600);
  b.daemon.addEnv("PGPASSFILE=" + passfile);
  b.daemon.start();
  kj::AsyncIoContext io = kj::setupAsyncIo();
  Client cb(io, b.daemon.socket());
  EXPECT_EQ(errorOf(cb.conn->vault().healthRequest().send().wait(io.waitScope)), "ok");
  EXPECT_EQ(pg.sql("postgres",
                   kj::str("SELECT count(*) FROM pg_stat_activity WHERE usename = 'credvault_pw' "
                           "AND datname = '",
                           db.c_str(), "'")) != "0",
            true);
}

// --migrate-to from a PostgreSQL vault is offline: refused (exit 75, one line) while a daemon
// is connected to the database, as an LMDB source is while a daemon holds its directory; done
// once the daemons are stopped.
TEST_F(MultiHost, AMigrationFromADatabaseInUseIsRefused) {
  Host& a = host();
  a.daemon.start();
  {
    kj::AsyncIoContext io = kj::setupAsyncIo();
    Client ca(io, a.daemon.socket());
    ASSERT_GT(ca.addUser("alice"), 0);
  }
  TempDir dir;
  writeFile(dir / "pg.conf", "storage = postgresql\npostgresql = " + conninfo + "\n");
  writeFile(dir / "back.conf", "state_dir = " + (dir / "back") + "\n");
  std::vector<std::string> migrate = {
      credvaultdPath(), "--config",   dir / "pg.conf",    "--state-dir",
      dir / "host",     "--key-file", a.daemon.keyFile(), "--migrate-to=" + (dir / "back.conf")};
  auto refused = runAs(0, migrate, "", {});
  EXPECT_EQ(refused.exitCode, 75) << refused.out << refused.err;
  EXPECT_TRUE(contains(refused.err, "credvaultd")) << refused.err;
  EXPECT_TRUE(contains(refused.err, "stop")) << refused.err;
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  printf("[ multi-host ] %s", refused.err.c_str());
  struct stat st;
  EXPECT_NE(stat((dir / "back/data.mdb").c_str(), &st), 0) << "a refused migration wrote";
  a.daemon.stop();
  auto done = runAs(0, migrate, "", {});
  EXPECT_EQ(done.exitCode, 0) << done.out << done.err;
  EXPECT_TRUE(contains(done.out + done.err, "verified 0 credentials of 1 associates"))
      << done.out << done.err;
}

// A unix-socket proxy in front of the test server, as a network between a host and its
// database is: it forwards both ways until armed, then, at the first message from the daemon
// that holds COMMIT, drops that connection — after forwarding it (the server commits, its
// answer is lost) or before (the server never sees it and rolls back).
class CommitDropper {
 public:
  enum Mode { OFF, AFTER_FORWARDING, BEFORE_FORWARDING };
  explicit CommitDropper(const std::string& target) : target_(target + "/.s.PGSQL.5432") {
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    KJ_REQUIRE(listener_ >= 0);
    auto path = dir_ / ".s.PGSQL.5432";
    auto addr = address(path);
    KJ_SYSCALL(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
    KJ_SYSCALL(listen(listener_, 16));
    acceptor_ = std::thread([this]() { acceptLoop(); });
  }
  ~CommitDropper() {
    __atomic_store_n(&stopping_, true, __ATOMIC_SEQ_CST);
    shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    for (auto& t : pumps_) t.join();
    close(listener_);
  }
  std::string socketDir() const { return dir_.path(); }
  void arm(Mode m) { __atomic_store_n(&mode_, int(m), __ATOMIC_SEQ_CST); }
  bool fired() const { return __atomic_load_n(&fired_, __ATOMIC_SEQ_CST); }

 private:
  TempDir dir_;
  std::string target_;
  int listener_ = -1;
  int mode_ = OFF;
  bool fired_ = false;
  bool stopping_ = false;
  std::thread acceptor_;
  std::vector<std::thread> pumps_;

  static sockaddr_un address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    KJ_REQUIRE(path.size() < sizeof(addr.sun_path));
    memcpy(addr.sun_path, path.data(), path.size());
    return addr;
  }
  void acceptLoop() {
    for (;;) {
      int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      int server = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      auto addr = address(target_);
      if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        close(client);
        close(server);
        continue;
      }
      pumps_.emplace_back([this, client, server]() { pump(client, server); });
    }
  }
  static bool writeAll(int fd, const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = write(fd, p, n);
      if (w <= 0) return false;
      p += w;
      n -= size_t(w);
    }
    return true;
  }
  void pump(int client, int server) {
    char buf[65536];
    bool writing = false;
    for (;;) {
      if (__atomic_load_n(&stopping_, __ATOMIC_SEQ_CST)) break;
      pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (poll(fds, 2, 100) < 0) break;
      if (fds[0].revents != 0) {
        ssize_t n = read(client, buf, sizeof(buf));
        if (n <= 0) break;
        std::string chunk(buf, size_t(n));
        // A write transaction takes the writer lock (prepared statement write_lock) first; a
        // read transaction's COMMIT is not the one under test.
        if (chunk.find("write_lock") != std::string::npos) writing = true;
        bool commit = chunk.find("COMMIT") != std::string::npos;
        int m = __atomic_load_n(&mode_, __ATOMIC_SEQ_CST);
        if (m != OFF && writing && commit &&
            __atomic_compare_exchange_n(&mode_, &m, int(OFF), false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
          if (m == AFTER_FORWARDING) writeAll(server, chunk.data(), chunk.size());
          __atomic_store_n(&fired_, true, __ATOMIC_SEQ_CST);
          break;  // the answer never reaches the daemon
        }
        if (!writeAll(server, chunk.data(), chunk.size())) break;
        if (commit) writing = false;
      }
      if (fds[1].revents != 0) {
        ssize_t n = read(server, buf, sizeof(buf));
        if (n <= 0 || !writeAll(client, buf, size_t(n))) break;
      }
    }
    close(client);
    close(server);
  }
};

// The connection is lost while COMMIT is under way, once after the server received it and
// once before: the daemon asks a new connection what became of the transaction
// (pg_xact_status) and acknowledges only a write that committed — a save answered ok is
// found; one that is not found was answered `unavailable`, never ok.
TEST_F(MultiHost, AConnectionLostDuringCommitNeverAcknowledgesAnUncommittedWrite) {
  CommitDropper proxy(support::PostgresServer::instance().socketDir().cStr());
  auto db = conninfo.substr(conninfo.find("dbname=") + 7);
  hosts.push_back(
      std::make_unique<Host>("host=" + proxy.socketDir() + " user=postgres dbname=" + db));
  Host& a = *hosts.back();
  a.daemon.addSetting("postgresql_connections=1");
  a.daemon.start();
  kj::AsyncIoContext io = kj::setupAsyncIo();
  auto& ws = io.waitScope;
  Client ca(io, a.daemon.socket());
  auto s = ca.root();
  int32_t alice = ca.addUser("alice");
  ASSERT_GT(alice, 0);
  for (auto mode : {CommitDropper::AFTER_FORWARDING, CommitDropper::BEFORE_FORWARDING}) {
    std::string pub =
        mode == CommitDropper::AFTER_FORWARDING ? "after@example.com" : "before@example.com";
    proxy.arm(mode);
    auto outcome = support::saveFor(
        s, alice, {.type = "imap", .pub = pub, .secret = std::string("dropped-Secret-1")}, ws);
    EXPECT_TRUE(proxy.fired()) << "the save's COMMIT did not pass the proxy";
    proxy.arm(CommitDropper::OFF);
    auto stored = support::getFor(s, alice, "imap", ws);
    bool found = contains(stored, pub);
    printf(
        "[ multi-host ] connection lost %s forwarding COMMIT: the save was answered %s, and "
        "is %s\n",
        mode == CommitDropper::AFTER_FORWARDING ? "after" : "before", outcome.c_str(),
        found ? "stored" : "not stored");
    EXPECT_TRUE(outcome == "ok" || outcome == "unavailable storage") << outcome;
    if (outcome == "ok") EXPECT_TRUE(found) << "an acknowledged save is missing: " << stored;
    if (mode == CommitDropper::AFTER_FORWARDING && outcome != "ok") {
      // Unknown outcome: the client retries; a save is an upsert, so the retry is harmless.
      EXPECT_EQ(outcome, "unavailable storage");
    }
  }
  // And it serves on.
  EXPECT_EQ(
      support::saveFor(
          s, alice,
          {.type = "imap", .pub = "later@example.com", .secret = std::string("later-Secret-1")},
          ws),
      "ok");
  a.daemon.stop();
  a.daemon.usePostgres(conninfo);  // the leak check reads the rows past the proxy
}

}  // namespace
}  // namespace credvault::integration
