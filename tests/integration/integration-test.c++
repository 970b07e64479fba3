// Integration tests: the real credvaultd on a socket in a temporary directory, driven by
// several real uids through credvaultctl and the client library.
//
//   uid 0      root: a system user without an associate
//   uid 60001  alice: a plain user
//   uid 60002  admin: a user with userAdmin
//   uid 60003  mapped to no one
//   uid 60004  listed in system_uids: a system user without an associate
//   uid 60005  svc: an associate of kind system
//   (dave has no uid, only a password)
//
// Each fixture (Process, Cli, Durability, Backups) has a daemon of its own; tests that stop it
// leave it to the next SetUp to start again. Every secret, public value, comment and password a
// test sends is remembered, and the fixture's teardown scans its daemon's logs, its database
// file and its backups for them.
//
// Only what needs the real process, real uids or the credvaultctl binary is here (the table in
// docs/testing.md). The permission table row by row, tickets, partner applications, typed
// errors for bad input and who may stream a backup or compute an audit hash are tested
// in-process without root: tests/daemon/roles-test.c++ and bad-input-test.c++.

#include "harness.h"
#include "json-value.h"
#include "tools/exit-codes.h"
#include "store/env.h"
#include "store/postgres.h"
#include "tests/support/eventually.h"
#include "tests/support/test-store.h"

#include <gtest/gtest.h>
#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <kj/debug.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>
#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <sstream>

namespace credvault::integration {
namespace {

constexpr uid_t ALICE_UID = 60001;
constexpr uid_t ADMIN_UID = 60002;
constexpr uid_t NOBODY_UID = 60003;
constexpr uid_t SYSTEM_UID = 60004;
constexpr uid_t SVC_UID = 60005;
constexpr uid_t DAEMON_UID = 60010;  // runs a second daemon, for the dumpable check

// ---- JSON (credvaultctl --json), parsed with capnp's JSON codec ------------------------------

std::string keysOf(capnp::JsonValue::Reader v) {
  if (!v.isObject()) return "<not an object>";
  std::string out;
  for (auto f : v.getObject()) {
    if (!out.empty()) out += ",";
    out += f.getName().cStr();
  }
  return out;
}

// ---- the shared world -----------------------------------------------------------------------

struct World {
  TempDir dir;
  Daemon daemon{dir.path()};
  int32_t alice = 0, admin = 0, svc = 0, dave = 0;
  LeakCheck leaks;  // what the fixture's tests sent, checked when its daemon has stopped
};

World* world = nullptr;

void remember(const std::string& s) {
  KJ_REQUIRE(s.size() >= 10, "remembered strings must be long enough not to occur by chance");
  world->leaks.remember(s);
}

CtlResult asRoot(const std::vector<std::string>& args, const std::string& input = "") {
  return ctl(0, world->daemon.socket(), args, input);
}
CtlResult as(uid_t uid, const std::vector<std::string>& args, const std::string& input = "") {
  return ctl(uid, world->daemon.socket(), args, input);
}

// A directory owned by `uid` (mode 0700), for files a non-root caller creates itself.
std::string homeOf(uid_t uid) {
  auto path = world->dir / ("home-" + std::to_string(uid));
  if (mkdir(path.c_str(), 0700) == 0) {
    KJ_SYSCALL(chown(path.c_str(), uid, uid));
  } else {
    KJ_REQUIRE(errno == EEXIST, "mkdir", path, strerror(errno));
  }
  return path;
}

std::string describe(const CtlResult& r) {
  return "exit " + std::to_string(r.exitCode) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

int32_t addAssociate(const std::vector<std::string>& args, const std::string& input = "") {
  std::vector<std::string> full = {"--json", "associate", "add"};
  full.insert(full.end(), args.begin(), args.end());
  auto r = asRoot(full, input);
  KJ_REQUIRE(r.exitCode == 0, "associate add failed", r.err);
  Json j(r.out);
  return static_cast<int32_t>(member(j.root(), "AssociateId").getNumber());
}

class Integration : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    world = new World;
    world->daemon.addSetting("system_uids=" + std::to_string(SYSTEM_UID));
    world->daemon.start();
    world->alice = addAssociate({"alice", "--uid", std::to_string(ALICE_UID)});
    world->admin = addAssociate({"admin", "--uid", std::to_string(ADMIN_UID), "--user-admin"});
    world->svc = addAssociate({"svc", "--uid", std::to_string(SVC_UID), "--system"});
    const std::string davePassword = "dave-Pa55word-never-logged";
    remember(davePassword);
    world->dave = addAssociate({"dave", "--password-stdin"}, davePassword + "\n");
  }
  // The fixture's daemon stops cleanly, and nothing its tests sent is in its logs (the audit
  // trail among them), its database file or a backup.
  static void TearDownTestSuite() {
    if (world->daemon.running()) {
      int status = world->daemon.stop();
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    }
    world->leaks.check(world->daemon);
    delete world;
    world = nullptr;
  }

 protected:
  Daemon& daemon() { return world->daemon; }
  std::unique_ptr<kj::AsyncIoContext> io;

  void SetUp() override {
    if (!daemon().running()) daemon().start();
    io = std::make_unique<kj::AsyncIoContext>(kj::setupAsyncIo());
  }
  void TearDown() override { io = nullptr; }

  kj::WaitScope& ws() { return io->waitScope; }
  kj::Own<ipc::Connection> connect() {
    return ipc::connect(io->provider->getNetwork(), daemon().socket().c_str()).wait(ws());
  }
  rpc::Session::Client session(ipc::Connection& c) {
    auto r = c.vault().sessionRequest().send().wait(ws());
    KJ_REQUIRE(!r.hasError(), "no session", r.getError().getMessage());
    return r.getSession();
  }
};

// Each fixture below is a suite with a daemon of its own, started fresh by SetUpTestSuite and
// checked for leaked secrets by TearDownTestSuite: a test cannot depend on what another
// fixture's tests did, nor on running last.
class Process : public Integration {};
class Cli : public Integration {};
class Durability : public Integration {};
class Backups : public Integration {};
// File backups are LMDB's: credvaultctl backup is refused on a PostgreSQL vault (ctl-test), whose
// backup is pg_dump (multi-host-test).
#define SKIP_FILE_BACKUP_ON_POSTGRES() \
  CREDVAULT_SKIP_ON_POSTGRES("a file backup of data.mdb (PostgreSQL: pg_dump, multi-host)")

// A save as the client library sends it; `target` 0 means one's own (tests/support/rpc-calls.h).
using Save = support::Entry;
using support::fill;

std::string save(rpc::Session::Client& s, int32_t target, const Save& what, kj::WaitScope& ws) {
  return support::saveFor(s, target, what, ws);
}

std::string id(int32_t n) {
  return std::to_string(n);
}

// ---- the process ----------------------------------------------------------------------------

// "soft hard" of the core file size limit of a process, from /proc/PID/limits.
std::string coreLimit(pid_t pid) {
  auto limits = readFile("/proc/" + std::to_string(pid) + "/limits");
  auto at = limits.find("Max core file size");
  if (at == std::string::npos) return "<no limit line>";
  auto line = limits.substr(at + strlen("Max core file size"));
  std::istringstream fields(line.substr(0, line.find('\n')));
  std::string soft, hard;
  fields >> soft >> hard;
  return soft + " " + hard;
}

TEST_F(Process, DaemonRunsHardened) {
  // No core dumps: RLIMIT_CORE 0 (soft and hard).
  EXPECT_EQ(coreLimit(daemon().pid()), "0 0");

  // File modes: socket 0666 (every call is authorised by peer credentials), state private.
  struct stat st;
  ASSERT_EQ(stat(daemon().socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  ASSERT_EQ(stat(daemon().stateDir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(daemon().keyFile().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  if (!onPostgres()) {
    ASSERT_EQ(stat(daemon().dataFile().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 077, 0u);
  }

  // Not dumpable (PR_SET_DUMPABLE 0): run a daemon as an unprivileged uid; the kernel then
  // gives its /proc entries to root, and its own uid can neither read its environment nor
  // attach to it.
  TempDir other;
  ASSERT_EQ(chown(other.path().c_str(), DAEMON_UID, DAEMON_UID), 0);
  Daemon unprivileged(other.path(), DAEMON_UID);
  unprivileged.start();
  ASSERT_TRUE(unprivileged.running());
  auto otherPid = std::to_string(unprivileged.pid());
  auto status = readFile("/proc/" + otherPid + "/status");
  EXPECT_TRUE(contains(status, "Uid:\t" + std::to_string(DAEMON_UID))) << status;
  ASSERT_EQ(stat(("/proc/" + otherPid + "/status").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "the daemon's /proc entries should belong to root";
  auto peek = runAs(DAEMON_UID, {"/bin/cat", "/proc/" + otherPid + "/environ"}, "", {});
  EXPECT_NE(peek.exitCode, 0) << "same uid could read the daemon's environment";
  EXPECT_EQ(coreLimit(unprivileged.pid()), "0 0");
  int exit = unprivileged.stop();
  EXPECT_TRUE(WIFEXITED(exit) && WEXITSTATUS(exit) == 0) << exit;
}

// What the fixtures' leak checks read is really there: the daemon logs its writes and audits
// its reads (audit_log, set by the harness), so a scan that finds no secret means something.
TEST_F(Process, WritesAreLoggedAndReadsAudited) {
  ASSERT_EQ(as(ALICE_UID, {"save", "logged", "--public", "logged@example.test", "--secret-stdin"},
               "logged-secret-value-1")
                .exitCode,
            0);
  remember("logged-secret-value-1");
  ASSERT_EQ(as(ALICE_UID, {"get", "logged"}).exitCode, 0);
  std::string logs;
  for (auto& f : daemon().logFiles()) logs += readFile(f);
  EXPECT_TRUE(contains(logs, "save ok")) << "writes were not logged";
  EXPECT_TRUE(contains(logs, "\"operation\":\"get\",\"result\":\"ok\""))
      << "reads were not audited";
}

// ---- credvaultctl: what real uids see, output shapes, exit codes -------------------------------

// Each real uid as the kernel reports it (SO_PEERCRED) becomes the principal the table in
// docs/authentication.md names.
TEST_F(Cli, WhoamiForEveryUid) {
  auto r = as(0, {"--json", "whoami"});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  Json root(r.out);
  EXPECT_EQ(keysOf(root.root()), "AssociateId,Name,Kind,UserAdmin,Method,Uid");
  EXPECT_EQ(text(member(root.root(), "Kind")), "system");
  EXPECT_EQ(text(member(root.root(), "Method")), "peer-credentials");
  EXPECT_EQ(text(member(root.root(), "Uid")), "0");
  EXPECT_EQ(text(member(root.root(), "AssociateId")), "0");

  r = as(ALICE_UID, {"--json", "whoami"});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  Json alice(r.out);
  EXPECT_EQ(text(member(alice.root(), "Name")), "alice");
  EXPECT_EQ(text(member(alice.root(), "AssociateId")), id(world->alice));
  EXPECT_EQ(text(member(alice.root(), "Kind")), "user");
  EXPECT_EQ(text(member(alice.root(), "UserAdmin")), "<false>");
  EXPECT_EQ(text(member(alice.root(), "Uid")), std::to_string(ALICE_UID));

  r = as(ADMIN_UID, {"--json", "whoami"});
  Json admin(r.out);
  EXPECT_EQ(text(member(admin.root(), "UserAdmin")), "<true>");

  r = as(SVC_UID, {"--json", "whoami"});
  Json svc(r.out);
  EXPECT_EQ(text(member(svc.root(), "Kind")), "system");
  EXPECT_EQ(text(member(svc.root(), "Name")), "svc");

  r = as(SYSTEM_UID, {"--json", "whoami"});
  Json sys(r.out);
  EXPECT_EQ(text(member(sys.root(), "Kind")), "system");
  EXPECT_EQ(text(member(sys.root(), "AssociateId")), "0");

  r = as(NOBODY_UID, {"whoami"});
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "not mapped")) << r.out;
  r = as(NOBODY_UID, {"--json", "whoami"});
  Json nobody(r.out);
  EXPECT_EQ(text(member(nobody.root(), "Method")), "none");
  EXPECT_EQ(text(member(nobody.root(), "Uid")), std::to_string(NOBODY_UID));
}

TEST_F(Cli, JsonShapes) {
  auto r = as(ALICE_UID,
              {"save", "shape", "--public", "shape@example.test", "--secret-stdin", "--comment",
               "shape comment 2026", "--valid-from", "2026-01-31", "--valid-to",
               "2026-12-31T23:59:59Z", "--inactive"},
              "shape-secret-2026");
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  remember("shape-secret-2026"), remember("shape comment 2026");
  ASSERT_EQ(as(ALICE_UID, {"save", "shape", "--public", "open@example.test"}).exitCode, 0);
  r = as(ALICE_UID, {"--json", "get", "shape"});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  Json j(r.out);
  ASSERT_TRUE(j.root().isArray());
  ASSERT_EQ(j.root().getArray().size(), 2u);
  bool sawShape = false, sawOpen = false;
  for (auto c : j.root().getArray()) {
    EXPECT_EQ(keysOf(c), "ValidFrom,ValidTo,Comment,SecretValue,PublicValue,IsActive,State");
    if (text(member(c, "PublicValue")) == "shape@example.test") {
      sawShape = true;
      EXPECT_EQ(text(member(c, "ValidFrom")), "2026-01-31T00:00:00Z");
      EXPECT_EQ(text(member(c, "ValidTo")), "2026-12-31T23:59:59Z");
      EXPECT_EQ(text(member(c, "Comment")), "shape comment 2026");
      EXPECT_EQ(text(member(c, "SecretValue")), "shape-secret-2026");
      EXPECT_EQ(text(member(c, "IsActive")), "<false>");
    } else {
      sawOpen = true;
      EXPECT_EQ(text(member(c, "ValidFrom")), "0001-01-01T00:00:00Z");  // DateTime.MinValue
      EXPECT_EQ(text(member(c, "ValidTo")), "0001-01-01T00:00:00Z");
      EXPECT_EQ(text(member(c, "Comment")), "");
      EXPECT_EQ(text(member(c, "SecretValue")), "");
      EXPECT_EQ(text(member(c, "IsActive")), "<true>");
    }
  }
  EXPECT_TRUE(sawShape && sawOpen);
  // An empty list is still an array.
  r = as(ALICE_UID, {"--json", "get", "no-such-type"});
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_TRUE(Json(r.out).root().isArray());
  EXPECT_EQ(Json(r.out).root().getArray().size(), 0u);

  r = asRoot({"--json", "associate", "list"});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  Json a(r.out);
  ASSERT_TRUE(a.root().isArray());
  std::map<std::string, capnp::JsonValue::Reader> byName;
  for (auto x : a.root().getArray()) {
    EXPECT_EQ(keysOf(x), "AssociateId,Name,Kind,UserAdmin,UnixUid,Active");
    byName[text(member(x, "Name"))] = x;
  }
  ASSERT_EQ(byName.count("alice"), 1u);
  EXPECT_EQ(text(member(byName["alice"], "AssociateId")), id(world->alice));
  EXPECT_EQ(text(member(byName["alice"], "Kind")), "user");
  EXPECT_EQ(text(member(byName["alice"], "UserAdmin")), "<false>");
  EXPECT_EQ(text(member(byName["alice"], "UnixUid")), std::to_string(ALICE_UID));
  EXPECT_EQ(text(member(byName["alice"], "Active")), "<true>");
  EXPECT_EQ(text(member(byName["admin"], "UserAdmin")), "<true>");
  EXPECT_EQ(text(member(byName["svc"], "Kind")), "system");
  EXPECT_TRUE(member(byName["dave"], "UnixUid").isNull());

  r = asRoot({"--json", "associate", "show", "ALICE"});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_EQ(keysOf(Json(r.out).root()), "AssociateId,Name,Kind,UserAdmin,UnixUid,Active");

  r = asRoot({"--json", "status"});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_EQ(keysOf(Json(r.out).root()),
            "Version,Credentials,Associates,DataKeyId,MapSize,UsedBytes,UptimeSeconds,"
            "Connections");
}

TEST_F(Cli, ExitCodes) {
  // 0 and 1: help and usage.
  auto r = asRoot({"--help"});
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_TRUE(contains(r.out, "Exit codes:\n  0  success")) << r.out;
  r = runAs(0, {credvaultctlPath()}, "", {});
  EXPECT_EQ(r.exitCode, ctl::USAGE) << describe(r);
  EXPECT_EQ(asRoot({"frobnicate"}).exitCode, ctl::USAGE);
  EXPECT_EQ(asRoot({"get"}).exitCode, ctl::USAGE);
  EXPECT_EQ(asRoot({"get", "imap", "--bogus"}).exitCode, ctl::USAGE);
  EXPECT_EQ(asRoot({"save", "imap"}).exitCode, ctl::USAGE);  // no --public
  EXPECT_EQ(asRoot({"get", "imap", "--associate", "abc"}).exitCode, ctl::USAGE);
  r = as(ALICE_UID, {"save", "imap", "--public", "x@example.test", "--valid-from", "2026-13-45"});
  EXPECT_EQ(r.exitCode, ctl::USAGE) << describe(r);
  EXPECT_EQ(as(ALICE_UID,
               {"save", "imap", "--public", "x", "--secret-stdin", "--secret-file", "/dev/null"})
                .exitCode,
            ctl::USAGE);
  // 2: not authenticated (a uid mapped to no one), with the typed error as JSON on stdout.
  r = as(NOBODY_UID, {"get", "codes"});
  EXPECT_EQ(r.exitCode, ctl::NOT_AUTHENTICATED) << describe(r);
  EXPECT_TRUE(contains(r.err, "not-authenticated")) << r.err;
  r = as(NOBODY_UID, {"--json", "get", "codes"});
  EXPECT_EQ(r.exitCode, ctl::NOT_AUTHENTICATED);
  {
    Json j(r.out);
    EXPECT_EQ(keysOf(j.root()), "Error,Field,Message");
    EXPECT_EQ(text(member(j.root(), "Error")), "not-authenticated");
  }
  EXPECT_EQ(as(NOBODY_UID, {"associate", "list"}).exitCode, ctl::NOT_AUTHENTICATED);
  // 3: permission denied, and nothing of the other's entry is printed.
  ASSERT_EQ(asRoot({"save", "codes", "--public", "admin-owned@example.test", "--associate",
                    id(world->admin), "--secret-stdin"},
                   "admin-owned-codes-secret-1\n")
                .exitCode,
            0);
  remember("admin-owned-codes-secret-1");
  r = as(ALICE_UID, {"get", "codes", "--associate", id(world->admin)});
  EXPECT_EQ(r.exitCode, 3) << describe(r);
  EXPECT_TRUE(contains(r.err, "permission-denied")) << r.err;
  EXPECT_FALSE(contains(r.out + r.err, "admin-owned-codes-secret-1"));
  EXPECT_EQ(as(ALICE_UID, {"associate", "list"}).exitCode, 3);
  EXPECT_EQ(as(ADMIN_UID, {"rotate-key"}).exitCode, 3);
  // 4: invalid argument.
  r = as(ALICE_UID, {"save", "codes", "--public", "x@example.test", "--comment", "bell\x07"});
  EXPECT_EQ(r.exitCode, 4) << describe(r);
  EXPECT_TRUE(contains(r.err, "invalid-argument (comment)")) << r.err;
  r = as(ALICE_UID, {"save", "codes", "--public", "x@example.test", "--valid-from", "2026-02-01",
                     "--valid-to", "2026-01-01"});
  EXPECT_EQ(r.exitCode, 4) << describe(r);
  EXPECT_TRUE(contains(r.err, "validTo")) << r.err;
  // 5: not found.
  EXPECT_EQ(as(ALICE_UID, {"remove", "codes", "never-saved@example.test"}).exitCode, 5);
  r = asRoot({"get", "codes", "--associate", "999999"});
  EXPECT_EQ(r.exitCode, 5) << describe(r);
  EXPECT_EQ(asRoot({"associate", "show", "no-such-name"}).exitCode, 5);
  // 6: limit exceeded, at the bound and one past.
  EXPECT_EQ(as(ALICE_UID, {"save", "codes", "--public", std::string(238, 'p')}).exitCode, 0);
  r = as(ALICE_UID, {"save", "codes", "--public", std::string(239, 'p')});
  EXPECT_EQ(r.exitCode, 6) << describe(r);
  EXPECT_TRUE(contains(r.err, "publicValue")) << r.err;
  EXPECT_EQ(as(ALICE_UID, {"save", "codes", "--public", "c", "--comment", std::string(255, 'c')})
                .exitCode,
            0);
  EXPECT_EQ(as(ALICE_UID, {"save", "codes", "--public", "c", "--comment", std::string(256, 'c')})
                .exitCode,
            6);
  EXPECT_EQ(as(ALICE_UID, {"save", std::string(64, 't'), "--public", "c"}).exitCode, 0);
  EXPECT_EQ(as(ALICE_UID, {"save", std::string(65, 't'), "--public", "c"}).exitCode, 6);
  EXPECT_EQ(
      as(ALICE_UID, {"save", "codes", "--public", "s", "--secret-stdin"}, std::string(8192, 's'))
          .exitCode,
      0);
  EXPECT_EQ(
      as(ALICE_UID, {"save", "codes", "--public", "s", "--secret-stdin"}, std::string(8193, 's'))
          .exitCode,
      6);
  EXPECT_EQ(
      as(ALICE_UID, {"save", "codes", "--public", "s", "--secret-stdin"}, std::string(2 << 20, 's'))
          .exitCode,
      6);  // refused before sending
  // Multi-byte characters count as one: 238 × "é" is fine, 239 is not.
  std::string e238;
  for (int i = 0; i < 238; i++) e238 += "\xc3\xa9";
  EXPECT_EQ(as(ALICE_UID, {"save", "codes", "--public", e238}).exitCode, 0);
  EXPECT_EQ(as(ALICE_UID, {"save", "codes", "--public", e238 + "\xc3\xa9"}).exitCode, 6);
  // 7: the daemon cannot be reached.
  r = ctl(0, world->dir / "no-such.sock", {"status"});
  EXPECT_EQ(r.exitCode, ctl::NO_SOCKET) << describe(r);
  EXPECT_TRUE(contains(r.err, "no socket at")) << r.err;
  // The socket also comes from $CREDVAULT_SOCKET.
  r = runAs(ALICE_UID, {credvaultctlPath(), "whoami"}, "",
            {"CREDVAULT_SOCKET=" + daemon().socket()});
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "alice"));
  // 9: conflict.
  r = asRoot({"associate", "add", "ALICE"});
  EXPECT_EQ(r.exitCode, 9) << describe(r);
  r = asRoot({"associate", "add", "another-alice", "--uid", std::to_string(ALICE_UID)});
  EXPECT_EQ(r.exitCode, 9) << describe(r);
  // --json puts the typed error on stdout.
  r = as(ALICE_UID, {"--json", "save", "codes", "--public", std::string(239, 'p')});
  EXPECT_EQ(r.exitCode, 6);
  Json j(r.out);
  EXPECT_EQ(text(member(j.root(), "Error")), "limit-exceeded");
  EXPECT_EQ(text(member(j.root(), "Field")), "publicValue");
  // (8, integrity: TamperedRecordIsReportedAsIntegrity.)
}

// credvaultctl login prints a ticket, and CREDVAULT_TICKET makes later runs act through it until
// `ticket revoke` (what a ticket may do: tests/daemon/roles-test.c++).
TEST_F(Cli, LoginTicketActsThroughCredvaultTicketUntilRevoked) {
  const std::string davePassword = "dave-Pa55word-never-logged";
  auto r = as(NOBODY_UID, {"login", "dave", "--password-stdin"}, davePassword);
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  std::string ticket = r.out.substr(0, r.out.find('\n'));
  ASSERT_TRUE(ticket.rfind("7T:", 0) == 0) << ticket;
  remember(ticket);
  auto withTicket = [&](const std::vector<std::string>& args, const std::string& input = "") {
    std::vector<std::string> argv = {credvaultctlPath(), "--socket", daemon().socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return runAs(NOBODY_UID, argv, input, {"CREDVAULT_TICKET=" + ticket});
  };
  r = withTicket({"--json", "whoami"});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_EQ(text(member(Json(r.out).root(), "Name")), "dave");
  EXPECT_EQ(text(member(Json(r.out).root(), "Method")), "ticket");
  r = withTicket({"save", "ticketed", "--public", "dave-ticket@example.test", "--secret-stdin"},
                 "ticket-saved-secret-1");
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  remember("ticket-saved-secret-1");
  r = withTicket({"get", "ticketed"});
  EXPECT_TRUE(contains(r.out, "ticket-saved-secret-1")) << describe(r);
  EXPECT_EQ(withTicket({"get", "ticketed", "--associate", id(world->alice)}).exitCode, 3);
  EXPECT_EQ(as(NOBODY_UID, {"login", "dave", "--password-stdin"}, "wrong-password").exitCode,
            ctl::NOT_AUTHENTICATED);
  r = as(NOBODY_UID, {"ticket", "revoke"}, ticket);
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  r = withTicket({"get", "ticketed"});
  EXPECT_EQ(r.exitCode, ctl::NOT_AUTHENTICATED) << describe(r);
  r = runAs(NOBODY_UID, {credvaultctlPath(), "--socket", daemon().socket(), "get", "ticketed"}, "",
            {"CREDVAULT_TICKET=7T:bm90LWEtcmVhbC10aWNrZXQ="});
  EXPECT_EQ(r.exitCode, ctl::NOT_AUTHENTICATED) << describe(r);
}

// credvaultctl audit-hash takes the value as an argument or on stdin, for system users only
// (that the hash names the entry in the audit trail: tests/daemon/roles-test.c++).
TEST_F(Cli, AuditHashTakesTheValueAsAnArgumentOrOnStdin) {
  const std::string pub = "audited-entry@example.test";
  remember(pub);
  auto r = asRoot({"audit-hash", pub});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  std::string hmac = r.out.substr(0, r.out.find('\n'));
  ASSERT_EQ(hmac.size(), 64u) << r.out;
  r = as(SYSTEM_UID, {"audit-hash", "-"}, pub + "\n");
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), hmac);
  r = as(ALICE_UID, {"audit-hash", pub});
  EXPECT_EQ(r.exitCode, 3) << describe(r);
  EXPECT_FALSE(contains(r.out, hmac));
}

// ---- durability -------------------------------------------------------------------------------

TEST_F(Durability, SigtermWithWritesInFlightLosesNothingAcknowledged) {
  // Each connection keeps WINDOW saves in flight, sending the next as one is acknowledged,
  // until the daemon goes away; SIGTERM is sent in the middle of the stream.
  constexpr int CONNS = 4, WINDOW = 16, KILL_AFTER = 300, MAX_PER_CONN = 20000;
  std::set<std::string> acked, attempted;
  bool terminated = false;
  int refused = 0;
  {
    kj::Vector<kj::Own<ipc::Connection>> conns;
    kj::Vector<rpc::Session::Client> sessions;
    for (int c = 0; c < CONNS; c++) {
      conns.add(connect());
      sessions.add(session(*conns.back()));
    }
    int next[CONNS] = {};
    std::function<kj::Promise<void>(int)> sendOne = [&](int c) -> kj::Promise<void> {
      if (next[c] >= MAX_PER_CONN) return kj::READY_NOW;
      auto pub = "term-" + std::to_string(c) + "-" + std::to_string(next[c]++) + "@example.test";
      auto req = sessions[c].saveRequest();
      req.setAssociateId(world->alice);
      req.setType("inflight-term");
      fill(req.initCredential(), {"inflight-term", pub, "term-secret-" + pub});
      attempted.insert(pub);
      return req.send().then(
          [&, c, pub](auto r) -> kj::Promise<void> {
            if (r.hasError()) {
              ++refused;  // e.g. unavailable while stopping: fine, but not acknowledged
              return kj::READY_NOW;
            }
            acked.insert(pub);
            if (!terminated && acked.size() >= KILL_AFTER) {
              terminated = true;
              daemon().terminate();
            }
            return sendOne(c);
          },
          [](kj::Exception&&) -> kj::Promise<void> { return kj::READY_NOW; });
    };
    kj::Vector<kj::Promise<void>> all;
    for (int c = 0; c < CONNS; c++) {
      for (int w = 0; w < WINDOW; w++) all.add(sendOne(c));
    }
    kj::joinPromises(all.releaseAsArray()).wait(ws());
  }
  ASSERT_TRUE(terminated);
  int status = daemon().wait();
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << daemon().lastLog();
  remember("term-secret-term-0-0@example.test");

  daemon().start();
  auto conn = connect();
  auto s = session(*conn);
  auto req = s.getRequest();
  req.setAssociateId(world->alice);
  req.setType("inflight-term");
  auto r = req.send().wait(ws());
  ASSERT_EQ(errorOf(r), "ok");
  std::set<std::string> stored;
  for (auto c : r.getCredentials()) {
    std::string pub = c.getPublicValue().cStr();
    EXPECT_EQ(std::string(c.getSecretValue().cStr()), "term-secret-" + pub);
    EXPECT_TRUE(attempted.count(pub)) << pub;
    stored.insert(pub);
  }
  for (auto& pub : acked) EXPECT_TRUE(stored.count(pub)) << "acknowledged save lost: " << pub;
  RecordProperty("acknowledged", std::to_string(acked.size()));
  RecordProperty("attempted", std::to_string(attempted.size()));
  RecordProperty("refused", std::to_string(refused));
  RecordProperty("stored", std::to_string(stored.size()));
}

TEST_F(Durability, RestartPersistence) {
  const std::string secret = "persist-secret-9090", pub = "persist@example.test",
                    comment = "persist comment 9090";
  remember(secret), remember(pub), remember(comment);
  ASSERT_EQ(as(ALICE_UID,
               {"save", "persist", "--public", pub, "--secret-stdin", "--comment", comment,
                "--valid-to", "2030-06-01"},
               secret)
                .exitCode,
            0);
  auto before = asRoot({"--json", "get", "persist", "--associate", id(world->alice)});
  auto associates = asRoot({"--json", "associate", "list"});
  auto status = daemon().stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(contains(daemon().lastLog(), "stopping"));
  daemon().start();
  auto after = asRoot({"--json", "get", "persist", "--associate", id(world->alice)});
  EXPECT_EQ(after.exitCode, 0);
  EXPECT_EQ(after.out, before.out);
  EXPECT_TRUE(contains(after.out, secret));
  EXPECT_EQ(asRoot({"--json", "associate", "list"}).out, associates.out);
  // Peer-credential mapping survives too.
  auto r = as(ALICE_UID, {"get", "persist"});
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_TRUE(contains(r.out, secret));
}

TEST_F(Durability, WrongMasterKeyStopsTheDaemonWithAClearMessage) {
  ASSERT_EQ(as(ALICE_UID, {"save", "wrongkey", "--public", "wk@example.test", "--secret-stdin"},
               "wrong-key-test-secret")
                .exitCode,
            0);
  remember("wrong-key-test-secret");
  auto status = daemon().stop();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto key = daemon().keyFile();
  auto saved = key + ".orig";
  ASSERT_EQ(rename(key.c_str(), saved.c_str()), 0);

  // Another valid key.
  auto gen = runAs(0, {credvaultdPath(), "--generate-key", key}, "", {});
  ASSERT_EQ(gen.exitCode, 0) << describe(gen);
  status = daemon().startExpectingFailure();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
  auto log = daemon().lastLog();
  EXPECT_TRUE(contains(log, "wrong master key")) << log;
  EXPECT_FALSE(contains(log, "credvaultd ready")) << log;

  // No key at all, even with --create-key: an existing vault never gets a new key (it
  // could not open the vault and would only leave a stray key file).
  ASSERT_EQ(unlink(key.c_str()), 0);
  status = daemon().startExpectingFailure();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
  EXPECT_TRUE(contains(daemon().lastLog(), "no master key")) << daemon().lastLog();
  EXPECT_NE(access(key.c_str(), F_OK), 0) << "a key file was created for an existing vault";

  // The right key, readable by others: refused.
  ASSERT_EQ(rename(saved.c_str(), key.c_str()), 0);
  ASSERT_EQ(chmod(key.c_str(), 0644), 0);
  status = daemon().startExpectingFailure();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
  EXPECT_TRUE(contains(daemon().lastLog(), "chmod 600")) << daemon().lastLog();
  ASSERT_EQ(chmod(key.c_str(), 0600), 0);

  // Garbage in the key file.
  writeFile(saved, readFile(key));
  writeFile(key, "this is not a key\n");
  status = daemon().startExpectingFailure();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
  EXPECT_TRUE(contains(daemon().lastLog(), "not a 32-byte key")) << daemon().lastLog();
  ASSERT_EQ(rename(saved.c_str(), key.c_str()), 0);

  // The right key again: everything is there.
  daemon().start();
  auto r = as(ALICE_UID, {"get", "wrongkey"});
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "wrong-key-test-secret"));
}

TEST_F(Durability, TamperedRecordIsReportedAsIntegrity) {
  auto victim = addAssociate({"tamper-victim"});
  ASSERT_EQ(asRoot({"save", "tamper", "--public", "tampered@example.test", "--associate",
                    id(victim), "--secret-stdin"},
                   "tamper-secret-value-1")
                .exitCode,
            0);
  remember("tamper-secret-value-1");
  ASSERT_EQ(as(ALICE_UID, {"save", "tamper", "--public", "untouched@example.test"}).exitCode, 0);
  auto status = daemon().stop();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_FALSE(contains(daemon().postgres().empty()
                            ? readFile(daemon().dataFile())
                            : support::everyStoredByteOf(daemon().postgres().c_str()),
                        "tamper-victim"))
      << "associate names are sealed too";
  {
    // Flip one byte of the victim's sealed record, directly in LMDB or in the database.
    kj::Own<store::Store> env;
    if (daemon().postgres().empty()) {
      env = kj::heap<store::Environment>(daemon().stateDir().c_str());
    } else {
      store::PostgresOptions o;
      o.conninfo = kj::heapString(daemon().postgres().c_str());
      env = store::openPostgres(kj::mv(o));
    }
    auto table = env->table("credentials");
    kj::byte prefix[4];
    store::putBe32(prefix, victim);
    env->write([&](store::WriteTxn& txn) {
      kj::Vector<std::pair<kj::Array<kj::byte>, kj::Array<kj::byte>>> rows;
      txn.scan(table, prefix, [&](auto k, auto v) {
        rows.add(kj::heapArray(k), kj::heapArray(v));
        return true;
      });
      KJ_REQUIRE(rows.size() == 1, rows.size());
      rows[0].second[rows[0].second.size() - 7] ^= 0x20;
      txn.put(table, rows[0].first, rows[0].second);
    });
  }
  // Start-up verification finds it and refuses the vault with one line (docs/operations.md).
  int refused = daemon().startExpectingFailure();
  EXPECT_TRUE(WIFEXITED(refused) && WEXITSTATUS(refused) == 65) << refused;
  EXPECT_TRUE(contains(daemon().lastLog(),
                       "database damaged: a stored credential record failed "
                       "authentication"))
      << daemon().lastLog();
  // Served anyway (an operator's explicit choice), the damaged record is an integrity error.
  daemon().addSetting("verify_on_start=false");
  daemon().start();
  auto r = asRoot({"get", "tamper", "--associate", id(victim)});
  EXPECT_EQ(r.exitCode, 8) << describe(r);
  EXPECT_TRUE(contains(r.err, "integrity")) << r.err;
  EXPECT_FALSE(contains(r.out, "tamper-secret-value-1"));
  r = asRoot({"--json", "get", "tamper", "--associate", id(victim)});
  EXPECT_EQ(r.exitCode, 8);
  EXPECT_EQ(text(member(Json(r.out).root(), "Error")), "integrity");
  // A keep-secret save must not launder the damaged record.
  r = asRoot({"save", "tamper", "--public", "tampered@example.test", "--associate", id(victim)});
  EXPECT_EQ(r.exitCode, 8) << describe(r);
  // Everyone else is fine, and the daemon is still up.
  r = as(ALICE_UID, {"get", "tamper"});
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "untouched@example.test"));
  // The damaged entry can be removed.
  EXPECT_EQ(
      asRoot({"remove", "tamper", "tampered@example.test", "--associate", id(victim)}).exitCode, 0);
  EXPECT_EQ(asRoot({"get", "tamper", "--associate", id(victim)}).exitCode, 0);
  // Sound again: the next start verifies it and serves.
  EXPECT_EQ(daemon().stop(), 0);
  daemon().addSetting("verify_on_start=true");
  daemon().start();
}

TEST_F(Backups, BackupAndKeyRotation) {
  ASSERT_EQ(as(ALICE_UID, {"save", "rotate", "--public", "before@example.test", "--secret-stdin"},
               "before-rotation-secret")
                .exitCode,
            0);
  remember("before-rotation-secret");
  auto r = asRoot({"--json", "rotate-key"});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  auto keyId = member(Json(r.out).root(), "DataKeyId").getNumber();
  EXPECT_GE(keyId, 2);
  ASSERT_EQ(as(ALICE_UID, {"save", "rotate", "--public", "after@example.test", "--secret-stdin"},
               "after-rotation-secret")
                .exitCode,
            0);
  remember("after-rotation-secret");
  r = as(ALICE_UID, {"get", "rotate"});
  EXPECT_TRUE(contains(r.out, "before-rotation-secret"));
  EXPECT_TRUE(contains(r.out, "after-rotation-secret"));
  if (onPostgres()) return;  // the rest is a file backup

  auto backupDir = world->dir / "backup";
  ASSERT_EQ(mkdir(backupDir.c_str(), 0700), 0);
  auto backup = backupDir + "/data.mdb";
  r = asRoot({"backup", backup});
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  struct stat st;
  ASSERT_EQ(stat(backup.c_str(), &st), 0);
  EXPECT_GT(st.st_size, 0);
  world->leaks.alsoScan(backup);
  EXPECT_NE(asRoot({"backup", backup}).exitCode, 0);  // never replaces a file
  // Refused to a plain user and to a user administrator; the file is the caller's to create,
  // and to remove again when refused.
  for (uid_t uid : {ALICE_UID, ADMIN_UID}) {
    auto refused = homeOf(uid) + "/refused-backup.mdb";
    r = as(uid, {"backup", refused});
    EXPECT_EQ(r.exitCode, 3) << uid << ": " << describe(r);
    EXPECT_NE(access(refused.c_str(), F_OK), 0) << uid << ": a refused backup left its file";
  }
}

// ---- backup: the daemon streams, the caller writes -------------------------------------------

std::set<std::string> entriesOf(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = opendir(dir.c_str());
  KJ_REQUIRE(d != nullptr, "opendir", dir);
  KJ_DEFER(closedir(d));
  while (auto* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.insert(name);
  }
  return out;
}

// The daemon's descriptors that point at a deleted file in `dir` (an O_TMPFILE spool shows
// as "/dir/#123 (deleted)").
std::vector<std::string> deletedFilesOpenIn(pid_t pid, const std::string& dir) {
  std::vector<std::string> out;
  auto fdDir = "/proc/" + std::to_string(pid) + "/fd";
  for (auto& fd : entriesOf(fdDir)) {
    char target[4096];
    ssize_t n = readlink((fdDir + "/" + fd).c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    std::string t(target, n);
    if (t.compare(0, dir.size() + 1, dir + "/") == 0 && contains(t, "(deleted)")) {
      out.push_back(t);
    }
  }
  return out;
}

// Restores `backup` the documented way into a fresh state directory (with the live key) and
// returns what `uid` gets for `type` from a daemon serving it.
std::string restoreAndGet(const std::string& backup, uid_t uid, const std::string& type) {
  TempDir dir;
  auto state = dir / "state";
  KJ_SYSCALL(mkdir(state.c_str(), 0700));
  writeFile(state + "/data.mdb", readFile(backup));
  writeFile(state + "/master.key", readFile(world->daemon.keyFile()));
  Daemon restored(dir.path());
  restored.start();
  auto r = ctl(uid, restored.socket(), {"get", type});
  restored.stop();
  return describe(r);
}

// A sink that takes the first chunk and then never answers: a client that stalls and goes.
class StallingSink final : public rpc::ByteSink::Server {
 public:
  explicit StallingSink(kj::Own<kj::PromiseFulfiller<void>> firstWrite)
      : firstWrite_(kj::mv(firstWrite)) {}

 protected:
  kj::Promise<void> write(WriteContext) override {
    firstWrite_->fulfill();
    return kj::NEVER_DONE;
  }
  kj::Promise<void> done(DoneContext) override { return kj::NEVER_DONE; }

 private:
  kj::Own<kj::PromiseFulfiller<void>> firstWrite_;
};

TEST_F(Backups, BackupIsWrittenByTheCallerAndRestores) {
  SKIP_FILE_BACKUP_ON_POSTGRES();
  const std::string secret = "streamed-backup-secret-7731";
  remember(secret);
  ASSERT_EQ(as(ALICE_UID, {"save", "streamed", "--public", "stream@example.test", "--secret-stdin"},
               secret)
                .exitCode,
            0);
  // As root.
  auto file = world->dir / "streamed-root.mdb";
  auto r = asRoot({"--json", "backup", file});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  world->leaks.alsoScan(file);
  struct stat st;
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(uint64_t(member(Json(r.out).root(), "Bytes").getNumber()), uint64_t(st.st_size));
  auto restored = restoreAndGet(file, ALICE_UID, "streamed");
  EXPECT_TRUE(contains(restored, "exit 0")) << restored;
  EXPECT_TRUE(contains(restored, secret)) << restored;

  // As a configured system uid: the file is that uid's, in a place only it can write.
  auto own = homeOf(SYSTEM_UID) + "/streamed.mdb";
  r = as(SYSTEM_UID, {"backup", own});
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  world->leaks.alsoScan(own);
  ASSERT_EQ(stat(own.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, SYSTEM_UID);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  // To standard output (a pipe here), for `| ssh ...`.
  r = asRoot({"backup", "-"});
  ASSERT_EQ(r.exitCode, 0) << "exit " << r.exitCode << " " << r.err;
  auto piped = world->dir / "streamed-stdout.mdb";
  writeFile(piped, r.out);
  world->leaks.alsoScan(piped);
  restored = restoreAndGet(piped, ALICE_UID, "streamed");
  EXPECT_TRUE(contains(restored, secret)) << restored;
}

TEST_F(Backups, BackupNeverReplacesAFile) {
  SKIP_FILE_BACKUP_ON_POSTGRES();
  auto file = world->dir / "existing-backup.mdb";
  writeFile(file, "precious contents", 0640);
  auto r = asRoot({"backup", file});
  EXPECT_EQ(r.exitCode, ctl::LOCAL) << describe(r);
  EXPECT_TRUE(contains(r.err, file + " exists; choose a new name")) << r.err;
  EXPECT_EQ(readFile(file), "precious contents");
  struct stat st;
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  // Nor through a symbolic link, dangling or not.
  auto link = world->dir / "link-backup.mdb";
  ASSERT_EQ(symlink((world->dir / "nowhere.mdb").c_str(), link.c_str()), 0);
  r = asRoot({"backup", link});
  EXPECT_EQ(r.exitCode, ctl::LOCAL) << describe(r);
  EXPECT_NE(access((world->dir / "nowhere.mdb").c_str(), F_OK), 0);
}

TEST_F(Backups, ClientThatGoesAwayMidStreamLeavesNothingBehind) {
  SKIP_FILE_BACKUP_ON_POSTGRES();
  // Enough sealed data for several chunks.
  auto bulk = addAssociate({"backup-bulk"});
  {
    auto conn = connect();
    auto s = session(*conn);
    for (int i = 0; i < 40; i++) {
      Save what;
      what.type = "bulk";
      what.pub = "bulk-" + std::to_string(i) + "@example.test";
      what.secret = std::string(8000, char('a' + i % 26));
      ASSERT_EQ(save(s, bulk, what, ws()), "ok");
    }
  }
  auto stateBefore = entriesOf(daemon().stateDir());
  {
    auto conn = connect();
    auto admin = session(*conn).adminRequest().send().wait(ws()).getAdmin();
    auto paf = kj::newPromiseAndFulfiller<void>();
    auto req = admin.backupToRequest();
    req.setSink(kj::heap<StallingSink>(kj::mv(paf.fulfiller)));
    auto call = req.send();
    bool streaming =
        paf.promise.then([]() { return true; })
            .exclusiveJoin(
                io->provider->getTimer().afterDelay(20 * kj::SECONDS).then([]() { return false; }))
            .wait(ws());
    ASSERT_TRUE(streaming) << "the daemon never started streaming";
    EXPECT_EQ(deletedFilesOpenIn(daemon().pid(), daemon().stateDir()).size(), 1u)
        << "no spool while streaming?";
    // Leaving the scope drops the call and closes the connection mid-stream.
  }
  // The daemon notices, drops the spool, and serves on (waited for, 30 s at most: a loaded
  // host can take seconds).
  std::vector<std::string> open;
  support::eventually(
      [&]() {
        open = deletedFilesOpenIn(daemon().pid(), daemon().stateDir());
        return open.empty();
      },
      std::chrono::milliseconds(50));
  EXPECT_TRUE(open.empty()) << "still open: " << open[0];
  EXPECT_EQ(entriesOf(daemon().stateDir()), stateBefore);
  auto r = asRoot({"status"});
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  auto file = world->dir / "after-abandoned.mdb";
  r = asRoot({"backup", file});
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  world->leaks.alsoScan(file);
  // Logged as a broken stream (or, if the call was dropped first, as cancelled).
  auto log = daemon().lastLog();
  EXPECT_TRUE(contains(log, "RESULT=unavailable FIELD=sink") ||
              contains(log, "backup cancelled before it finished"));
}

}  // namespace
}  // namespace credvault::integration
