// credvaultctl through the real daemon, as people and scripts use it (issue 13): parsing
// before connecting, output formats, get --field, list/expiring/update/exec/passwd, errors
// a person can act on. Values with tabs, newlines and a leading dash go through every path.
//
//   uid 0      root: a system user without an associate
//   uid 60021  carol: a plain user
//   uid 60022  ada: a user administrator
//   uid 60023  mapped to no one
//   uid 60024  pat: a plain user with a password

#include "harness.h"
#include "json-value.h"
#include "tools/exit-codes.h"

#include <gtest/gtest.h>
#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <kj/debug.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <map>
#include <memory>
#include <sstream>

namespace credvault::integration {
namespace {

using namespace credvault::ctl;

constexpr uid_t CAROL_UID = 60021;
constexpr uid_t ADA_UID = 60022;
constexpr uid_t NOBODY_UID = 60023;
constexpr uid_t PAT_UID = 60024;

// Hostile values: tab, newline, leading dash, backslash.
const std::string SECRET = "-s3cr\tet\nline two\\x-ctl-4711";
const std::string COMMENT = "-comment\twith tab\nand newline-4711";
const std::string PUB = "-dash@example.test";

std::string keysOf(capnp::JsonValue::Reader v) {
  std::string out;
  for (auto f : v.getObject()) out += (out.empty() ? "" : ",") + std::string(f.getName().cStr());
  return out;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

std::string describe(const CtlResult& r) {
  return "exit " + std::to_string(r.exitCode) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

struct World {
  TempDir dir;
  Daemon daemon{dir.path()};
  int32_t carol = 0, ada = 0, pat = 0;
};
World* world = nullptr;

CtlResult as(uid_t uid, const std::vector<std::string>& args, const std::string& input = "") {
  return ctl(uid, world->daemon.socket(), args, input);
}

int32_t addAssociate(const std::vector<std::string>& args, const std::string& input = "") {
  std::vector<std::string> full = {"--json", "associate", "add"};
  full.insert(full.end(), args.begin(), args.end());
  auto r = as(0, full, input);
  KJ_REQUIRE(r.exitCode == 0, "associate add failed", r.err);
  return static_cast<int32_t>(member(Json(r.out).root(), "AssociateId").getNumber());
}

int32_t addAssociateId(const std::string& name) {
  auto r = as(0, {"--json", "associate", "show", name});
  KJ_REQUIRE(r.exitCode == 0, "associate show failed", r.err);
  return static_cast<int32_t>(member(Json(r.out).root(), "AssociateId").getNumber());
}

class Ctl : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    world = new World;
    world->daemon.start();
    world->carol = addAssociate({"carol", "--uid", std::to_string(CAROL_UID)});
    world->ada = addAssociate({"ada", "--uid", std::to_string(ADA_UID), "--user-admin"});
    world->pat = addAssociate({"pat", "--uid", std::to_string(PAT_UID), "--password-stdin"},
                              "pat-old-Passw0rd\n");
  }
  // Nothing the tests sent is in the daemon's logs or its database file.
  static void TearDownTestSuite() {
    if (world->daemon.running()) world->daemon.stop();
    LeakCheck leaks;
    for (auto& s : {SECRET, COMMENT, std::string("s3cr"), std::string("list-secret"),
                    std::string("upd-secret"), std::string("two-a-secret-001"),
                    std::string("pat-new-Passw0rd"), std::string("pat-old-Passw0rd"),
                    std::string("set-by-ada-secret"), std::string("and newline-4711")}) {
      leaks.remember(s);
    }
    leaks.check(world->daemon);
    delete world;
    world = nullptr;
  }

 protected:
  void SetUp() override {
    if (!world->daemon.running()) world->daemon.start();
  }
  std::string sock() { return world->daemon.socket(); }
  std::string id(int32_t n) { return std::to_string(n); }
};

// ---- the command line ---------------------------------------------------------------------

TEST_F(Ctl, UsageErrorsExit2BeforeAnyConnection) {
  auto nowhere = world->dir / "no-such.sock";
  // A typo is a usage error even when the socket is wrong: nothing was tried.
  auto r = ctl(0, nowhere, {"gte", "imap"});
  EXPECT_EQ(r.exitCode, USAGE) << describe(r);
  EXPECT_TRUE(contains(r.err, "gte: unknown command")) << r.err;
  r = ctl(0, nowhere, {"get"});
  EXPECT_EQ(r.exitCode, USAGE) << describe(r);
  EXPECT_TRUE(contains(r.err, "missing argument TYPE")) << r.err;
  // The command's own usage comes with the error.
  EXPECT_TRUE(contains(r.err, "usage: credvaultctl get TYPE [--public VALUE]")) << r.err;
  for (auto args : std::vector<std::vector<std::string>>{
           {"get", "imap", "--bogus"},
           {"get", "imap", "--public", "a", "--public", "b"},
           {"get", "imap", "--public=a", "--public=b"},
           {"save", "imap", "--public", "x", "--inactive", "--inactive"},
           {"save", "imap"},
           {"save", "imap", "--public", "x", "--valid-to", "tomorrow"},
           {"save", "imap", "--public", "x", "--secret-stdin", "--secret-file", "/dev/null"},
           {"update", "imap", "x"},
           {"update", "imap", "x", "--active", "--inactive"},
           {"get", "imap", "--field", "password"},
           {"get", "imap", "--field", "secret", "--json"},
           {"get", "imap", "--format", "yaml"},
           {"get", "imap", "--associate", "abc"},
           {"list", "--all", "--associate", "3"},
           {"expiring", "--within", "soon"},
           {"exec", "--env", "1X=imap:a", "--", "true"},
           {"exec", "--env", "X=imap", "--", "true"},
           {"exec", "--", "true"},
           {"associate", "set", "x", "--uid", "-1"},
       }) {
    r = ctl(0, nowhere, args);
    EXPECT_EQ(r.exitCode, USAGE) << args[0] << " " << args[1] << ": " << describe(r);
    EXPECT_FALSE(contains(r.err, "socket")) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  r = ctl(0, nowhere, {"get", "imap", "--public", "a", "--public", "b"});
  EXPECT_TRUE(contains(r.err, "given twice")) << r.err;
}

TEST_F(Ctl, OptionFormsAndHelp) {
  // --socket=PATH and --socket PATH, before or after the command.
  auto r = runAs(CAROL_UID, {credvaultctlPath(), "--socket=" + sock(), "whoami"}, "", {});
  EXPECT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_TRUE(contains(r.out, "carol")) << r.out;
  r = runAs(CAROL_UID, {credvaultctlPath(), "whoami", "--socket", sock(), "--format=json"}, "", {});
  EXPECT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(text(member(Json(r.out).root(), "Name")), "carol");
  // CMD --help and help CMD, for every command, exit 0 on stdout without connecting.
  auto nowhere = world->dir / "no-such.sock";
  for (std::string cmd : {"whoami", "status",     "get",    "list",       "expiring",
                          "save",   "update",     "remove", "exec",       "passwd",
                          "login",  "ticket",     "token",  "associate",  "app",
                          "backup", "audit-hash", "verify", "rotate-key", "change-master-key"}) {
    r = ctl(0, nowhere, {cmd, "--help"});
    EXPECT_EQ(r.exitCode, OK) << cmd << ": " << describe(r);
    EXPECT_TRUE(contains(r.out, "Usage: credvaultctl " + cmd)) << r.out;
    auto viaHelp = ctl(0, nowhere, {"help", cmd});
    EXPECT_EQ(viaHelp.exitCode, OK) << cmd;
    EXPECT_EQ(viaHelp.out, r.out) << cmd;
  }
  r = ctl(0, nowhere, {"associate", "set", "--help"});
  EXPECT_EQ(r.exitCode, OK);
  EXPECT_TRUE(contains(r.out, "--no-user-admin")) << r.out;
  // save's help says it replaces the whole entry.
  r = ctl(0, nowhere, {"help", "save"});
  EXPECT_TRUE(contains(r.out, "replaced as a whole")) << r.out;
  // Every exit code of the table is in the top-level help.
  r = ctl(0, nowhere, {"--help"});
  for (auto& e : EXIT_CODES) {
    EXPECT_TRUE(contains(r.out, std::to_string(e.code) + "  " + e.meaning)) << e.code;
  }
}

// ---- connection errors ----------------------------------------------------------------------

TEST_F(Ctl, MissingSocketStoppedDaemonAndRefusedSocketEachHaveTheirOwnExit) {
  auto r = ctl(CAROL_UID, world->dir / "no-such.sock", {"whoami"});
  EXPECT_EQ(r.exitCode, NO_SOCKET) << describe(r);
  EXPECT_TRUE(contains(r.err, "no socket at")) << r.err;

  // A socket nobody listens on: what a stopped daemon leaves behind.
  auto stale = world->dir / "stale.sock";
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, stale.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(bind(fd, (struct sockaddr*)&addr, sizeof(addr)), 0);
    close(fd);
    chmod(stale.c_str(), 0666);
  }
  r = ctl(CAROL_UID, stale, {"whoami"});
  EXPECT_EQ(r.exitCode, NOT_RUNNING) << describe(r);
  EXPECT_TRUE(contains(r.err, "credvaultd is not running")) << r.err;

  // A listening socket that only root may use.
  auto closed = world->dir / "private.sock";
  int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, closed.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(lfd, (struct sockaddr*)&addr, sizeof(addr)), 0);
  ASSERT_EQ(listen(lfd, 4), 0);
  ASSERT_EQ(chmod(closed.c_str(), 0600), 0);
  r = ctl(CAROL_UID, closed, {"whoami"});
  close(lfd);
  EXPECT_EQ(r.exitCode, SOCKET_DENIED) << describe(r);
  EXPECT_TRUE(contains(r.err, "does not let uid 60021 connect")) << r.err;
  // With --json the error is also an object on stdout.
  r = ctl(CAROL_UID, world->dir / "no-such.sock", {"--json", "whoami"});
  EXPECT_EQ(text(member(Json(r.out).root(), "Error")), "no-socket");
}

// ---- hostile values, formats and --field ---------------------------------------------------

TEST_F(Ctl, TabsNewlinesAndDashesSurviveEveryFormat) {
  auto r =
      as(CAROL_UID,
         {"save", "hostile", "--public=" + PUB, "--comment=" + COMMENT, "--secret-stdin"}, SECRET);
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  ASSERT_EQ(as(CAROL_UID, {"save", "hostile", "--public", "plain@example.test"}).exitCode, OK);

  // --field: exactly the bytes, no newline (stdout is not a terminal).
  r = as(CAROL_UID, {"get", "hostile", "--public=" + PUB, "--field", "secret"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(r.out, SECRET);
  r = as(CAROL_UID, {"get", "hostile", "--public=" + PUB, "--field=comment"});
  EXPECT_EQ(r.out, COMMENT);
  r = as(CAROL_UID, {"get", "hostile", "--public=" + PUB, "--field", "public"});
  EXPECT_EQ(r.out, PUB);
  r = as(CAROL_UID, {"get", "hostile", "--public=" + PUB, "--field", "active"});
  EXPECT_EQ(r.out, "true");
  r = as(CAROL_UID, {"get", "hostile", "--public=" + PUB, "--field", "valid-to"});
  EXPECT_EQ(r.out, "");

  // JSON: the values exactly.
  r = as(CAROL_UID, {"get", "hostile", "--public=" + PUB, "--json"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  Json j(r.out);
  ASSERT_EQ(j.root().getArray().size(), 1u);
  EXPECT_EQ(text(member(j.root().getArray()[0], "SecretValue")), SECRET);
  EXPECT_EQ(text(member(j.root().getArray()[0], "Comment")), COMMENT);
  EXPECT_EQ(text(member(j.root().getArray()[0], "PublicValue")), PUB);

  // TSV: a header, then one line per entry; the values escaped.
  r = as(CAROL_UID, {"get", "hostile", "--format", "tsv"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  auto ls = lines(r.out);
  ASSERT_EQ(ls.size(), 3u) << r.out;
  EXPECT_EQ(ls[0], "PublicValue\tSecretValue\tState\tValidFrom\tValidTo\tComment");
  bool seen = false;
  for (auto& l : ls) {
    if (l.find(PUB) == std::string::npos) continue;
    seen = true;
    // The columns `get` always printed: public, secret, state, from, to, comment.
    EXPECT_EQ(l, PUB +
                     "\t-s3cr\\tet\\nline two\\\\x-ctl-4711\tactive\t-\t-\t"
                     "-comment\\twith tab\\nand newline-4711");
  }
  EXPECT_TRUE(seen) << r.out;
  // Text off a terminal: the same rows, no header.
  r = as(CAROL_UID, {"get", "hostile"});
  EXPECT_EQ(lines(r.out).size(), 2u) << r.out;

  // list never shows the secret, in any format.
  for (auto fmt : {"text", "tsv", "json"}) {
    r = as(CAROL_UID, {"list", "--format", fmt});
    EXPECT_EQ(r.exitCode, OK) << describe(r);
    EXPECT_TRUE(contains(r.out, "hostile")) << r.out;
    EXPECT_FALSE(contains(r.out, "s3cr")) << fmt << ": " << r.out;
  }

  // update and remove reach a public value with a leading dash.
  r = as(CAROL_UID, {"update", "hostile", "--inactive", "--", PUB});
  EXPECT_EQ(r.exitCode, OK) << describe(r);
  r = as(CAROL_UID, {"get", "hostile", "--public=" + PUB, "--field", "active"});
  EXPECT_EQ(r.out, "false");
  r = as(CAROL_UID, {"remove", "hostile", "--", PUB});
  EXPECT_EQ(r.exitCode, OK) << describe(r);
  r = as(CAROL_UID, {"remove", "hostile", "--", PUB});
  EXPECT_EQ(r.exitCode, NOT_FOUND) << describe(r);
}

// The JSON bytes themselves, through the real daemon: what a script gets for values with
// quotes, backslashes, control characters, non-ASCII and line separators. (Invalid UTF-8
// never gets this far: the daemon refuses it; tests/tools covers the writer's answer to it.)
TEST_F(Ctl, JsonOutputEscapesEveryStringExactly) {
  const std::string secret = "q\"b\\s\x01\x1f\x7f-é€𝄞-\xe2\x80\xa8-escaped-ctl-5521";
  const std::string comment = "say \"hi\"\tü\r\n\\end";
  const std::string pub = "o'brien\"@example.test";
  auto r =
      as(CAROL_UID,
         {"save", "escaped", "--public=" + pub, "--comment=" + comment, "--secret-stdin"}, secret);
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  r = as(CAROL_UID, {"get", "escaped", "--json"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(r.out,
            "[{\"ValidFrom\":\"0001-01-01T00:00:00Z\",\"ValidTo\":\"0001-01-01T00:00:00Z\","
            "\"Comment\":\"say \\\"hi\\\"\\tü\\r\\n\\\\end\","
            "\"SecretValue\":\"q\\\"b\\\\s\\u0001\\u001f\\u007f-é€𝄞-\\u2028-escaped-ctl-5521\","
            "\"PublicValue\":\"o'brien\\\"@example.test\",\"IsActive\":true,\"State\":\"active\"}]"
            "\n");
  // And a JSON reader gets the same text back. (Not for the secret: capnp 0.9.2's JSON
  // decoder, which this test reads with, misreads the hex letters of \u001f and \u007f,
  // capnproto/capnproto#1552; the exact bytes above are what counts.)
  Json j(r.out);
  EXPECT_EQ(text(member(j.root().getArray()[0], "Comment")), comment);
  EXPECT_EQ(text(member(j.root().getArray()[0], "PublicValue")), pub);
  // list (no secret) escapes the same way.
  r = as(CAROL_UID, {"list", "escaped", "--json"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_TRUE(contains(r.out, "\"PublicValue\":\"o'brien\\\"@example.test\"")) << r.out;
  EXPECT_FALSE(contains(r.out, "escaped-ctl-5521")) << r.out;
  EXPECT_EQ(as(CAROL_UID, {"remove", "escaped", "--", pub}).exitCode, OK);
}

TEST_F(Ctl, GetFieldNeedsExactlyOneMatch) {
  ASSERT_EQ(as(CAROL_UID, {"save", "two", "--public", "a@example.test", "--secret-stdin"},
               "two-a-secret-001")
                .exitCode,
            OK);
  auto r = as(CAROL_UID, {"get", "two", "--field", "secret"});
  EXPECT_EQ(r.exitCode, OK) << describe(r);  // one entry: no --public needed
  EXPECT_EQ(r.out, "two-a-secret-001");
  ASSERT_EQ(as(CAROL_UID, {"save", "two", "--public", "b@example.test"}).exitCode, OK);
  r = as(CAROL_UID, {"get", "two", "--field", "secret"});
  EXPECT_EQ(r.exitCode, AMBIGUOUS) << describe(r);
  EXPECT_TRUE(contains(r.err, "2 credentials of this type; name one with --public")) << r.err;
  EXPECT_TRUE(r.out.empty());
  r = as(CAROL_UID, {"get", "two", "--public", "c@example.test", "--field", "secret"});
  EXPECT_EQ(r.exitCode, NOT_FOUND) << describe(r);
  r = as(CAROL_UID, {"get", "none-of-these", "--field", "secret"});
  EXPECT_EQ(r.exitCode, NOT_FOUND) << describe(r);
  // A user admin sees the entry, never its secret.
  r = as(ADA_UID, {"get", "two", "--associate", id(world->carol), "--public", "a@example.test",
                   "--field", "secret"});
  EXPECT_EQ(r.exitCode, PERMISSION_DENIED) << describe(r);
  EXPECT_FALSE(contains(r.out + r.err, "two-a-secret-001"));
  r = as(ADA_UID, {"get", "two", "--associate", id(world->carol), "--public", "a@example.test",
                   "--field", "public"});
  EXPECT_EQ(r.out, "a@example.test");
}

// ---- list, expiring, validity ----------------------------------------------------------------

TEST_F(Ctl, ListFollowsThePermissionTable) {
  ASSERT_EQ(as(CAROL_UID,
               {"save", "listed", "--public", "carol-l@example.test", "--secret-stdin", "--comment",
                "carol list"},
               "carol-list-secret-1")
                .exitCode,
            OK);
  ASSERT_EQ(as(ADA_UID, {"save", "listed", "--public", "ada-l@example.test", "--secret-stdin"},
               "ada-list-secret-1")
                .exitCode,
            OK);
  auto r = as(CAROL_UID, {"list", "listed", "--json"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  Json j(r.out);
  ASSERT_EQ(j.root().getArray().size(), 1u) << r.out;
  auto e = j.root().getArray()[0];
  EXPECT_EQ(keysOf(e), "Type,PublicValue,State,ValidFrom,ValidTo,IsActive,Comment");
  EXPECT_EQ(text(member(e, "PublicValue")), "carol-l@example.test");
  EXPECT_EQ(text(member(e, "Comment")), "carol list");
  // A plain user: nobody else's list.
  r = as(CAROL_UID, {"list", "--all"});
  EXPECT_EQ(r.exitCode, PERMISSION_DENIED) << describe(r);
  r = as(CAROL_UID, {"list", "--associate", id(world->ada)});
  EXPECT_EQ(r.exitCode, PERMISSION_DENIED) << describe(r);
  EXPECT_FALSE(contains(r.out, "ada-l@example.test"));
  // A user admin: another's list and all of them, never a secret.
  r = as(ADA_UID, {"list", "--associate", id(world->carol), "--format", "tsv"});
  EXPECT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_TRUE(contains(r.out, "carol-l@example.test")) << r.out;
  EXPECT_TRUE(contains(r.out, "AssociateId\tType")) << r.out;
  r = as(ADA_UID, {"list", "listed", "--all", "--json"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  std::map<std::string, std::string> owner;
  Json all(r.out);
  for (auto x : all.root().getArray()) {
    owner[text(member(x, "PublicValue"))] = text(member(x, "AssociateId"));
  }
  EXPECT_EQ(owner["carol-l@example.test"], id(world->carol));
  EXPECT_EQ(owner["ada-l@example.test"], id(world->ada));
  EXPECT_FALSE(contains(r.out, "list-secret"));
  // root: everything; unmapped: nothing.
  r = as(0, {"list", "--all"});
  EXPECT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_TRUE(contains(r.out, "ada-l@example.test"));
  r = as(0, {"list"});
  EXPECT_EQ(r.exitCode, NOT_FOUND) << describe(r);  // root has no associate of its own
  r = as(NOBODY_UID, {"list"});
  EXPECT_EQ(r.exitCode, NOT_AUTHENTICATED) << describe(r);
  r = as(NOBODY_UID, {"list", "--all"});
  EXPECT_EQ(r.exitCode, NOT_AUTHENTICATED) << describe(r);
}

TEST_F(Ctl, ValidityIsMarkedAndExpiringFindsTheWindow) {
  struct Entry {
    std::string pub;
    std::vector<std::string> dates;
    std::string state;
  };
  std::vector<Entry> entries = {
      {"expired@example.test",
       {"--valid-from", "2020-01-01", "--valid-to", "2020-02-01T10:00:00Z"},
       "expired"},
      {"later@example.test", {"--valid-from", "+30d"}, "not-yet-valid"},
      {"soon@example.test", {"--valid-to", "+3d"}, "active"},
      {"far@example.test", {"--valid-to", "+400d"}, "active"},
      {"open@example.test", {}, "active"},
  };
  for (auto& e : entries) {
    std::vector<std::string> args = {"save", "validity", "--public", e.pub};
    args.insert(args.end(), e.dates.begin(), e.dates.end());
    auto r = as(CAROL_UID, args);
    ASSERT_EQ(r.exitCode, OK) << describe(r);
  }
  auto r = as(CAROL_UID, {"get", "validity", "--json"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  Json got0(r.out);
  for (auto c : got0.root().getArray()) {
    auto pub = text(member(c, "PublicValue"));
    for (auto& e : entries) {
      if (e.pub == pub) EXPECT_EQ(text(member(c, "State")), e.state) << pub;
    }
    // Every date is ISO 8601 UTC with Z.
    EXPECT_EQ(text(member(c, "ValidTo")).back(), 'Z') << r.out;
    if (pub == "expired@example.test") {
      EXPECT_EQ(text(member(c, "ValidFrom")), "2020-01-01T00:00:00Z");
      EXPECT_EQ(text(member(c, "ValidTo")), "2020-02-01T10:00:00Z");
    }
  }
  // The text form marks the state too.
  r = as(CAROL_UID, {"list", "validity"});
  for (auto& l : lines(r.out)) {
    if (contains(l, "expired@example.test")) EXPECT_TRUE(contains(l, "\texpired\t")) << l;
    if (contains(l, "later@example.test")) EXPECT_TRUE(contains(l, "\tnot-yet-valid\t")) << l;
  }
  auto pubs = [](const std::string& out) {
    std::string s;
    Json parsed(out);
    for (auto x : parsed.root().getArray()) s += text(member(x, "PublicValue")) + " ";
    return s;
  };
  r = as(CAROL_UID, {"expiring", "--within", "7d", "--json"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  auto got = pubs(r.out);
  EXPECT_TRUE(contains(got, "expired@example.test")) << got;
  EXPECT_TRUE(contains(got, "soon@example.test")) << got;
  EXPECT_FALSE(contains(got, "far@example.test")) << got;
  EXPECT_FALSE(contains(got, "open@example.test")) << got;
  EXPECT_FALSE(contains(got, "later@example.test")) << got;
  r = as(CAROL_UID, {"expiring", "--within=500d", "--json"});
  EXPECT_TRUE(contains(pubs(r.out), "far@example.test"));
  // Someone else's: only as the permission table allows.
  EXPECT_EQ(as(CAROL_UID, {"expiring", "--all"}).exitCode, PERMISSION_DENIED);
  r = as(0, {"expiring", "--all", "--json"});
  EXPECT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_TRUE(contains(pubs(r.out), "soon@example.test"));
}

// ---- update ------------------------------------------------------------------------------------

TEST_F(Ctl, UpdateChangesOnlyTheGivenFields) {
  auto r = as(CAROL_UID,
              {"save", "upd", "--public", "u@example.test", "--comment", "keep-me", "--valid-to",
               "2030-01-01", "--secret-stdin"},
              "upd-secret-one");
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  auto field = [&](const char* f) {
    return as(CAROL_UID, {"get", "upd", "--public", "u@example.test", "--field", f}).out;
  };
  r = as(CAROL_UID, {"update", "upd", "u@example.test", "--inactive"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(field("active"), "false");
  EXPECT_EQ(field("comment"), "keep-me");
  EXPECT_EQ(field("valid-to"), "2030-01-01T00:00:00Z");
  EXPECT_EQ(field("secret"), "upd-secret-one");
  r = as(CAROL_UID, {"update", "upd", "u@example.test", "--secret-stdin", "--active"},
         "upd-secret-two\n");
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(field("secret"), "upd-secret-two");
  EXPECT_EQ(field("comment"), "keep-me");
  EXPECT_EQ(field("active"), "true");
  r = as(CAROL_UID, {"update", "upd", "u@example.test", "--comment=" + COMMENT, "--valid-to",
                     "none", "--valid-from", "2024-05-01T12:00:00Z"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(field("comment"), COMMENT);
  EXPECT_EQ(field("valid-to"), "");
  EXPECT_EQ(field("valid-from"), "2024-05-01T12:00:00Z");
  EXPECT_EQ(field("secret"), "upd-secret-two");
  // Bad combinations change nothing.
  r = as(CAROL_UID, {"update", "upd", "u@example.test", "--valid-to", "2020-01-01"});
  EXPECT_EQ(r.exitCode, INVALID_ARGUMENT) << describe(r);
  EXPECT_TRUE(contains(r.err, "validTo")) << r.err;
  EXPECT_EQ(field("valid-to"), "");
  r = as(CAROL_UID, {"update", "upd", "u@example.test", "--comment", std::string(256, 'c')});
  EXPECT_EQ(r.exitCode, LIMIT_EXCEEDED) << describe(r);
  EXPECT_EQ(field("comment"), COMMENT);
  r = as(CAROL_UID, {"update", "upd", "nobody@example.test", "--inactive"});
  EXPECT_EQ(r.exitCode, NOT_FOUND) << describe(r);
  EXPECT_EQ(as(CAROL_UID, {"get", "upd", "--public", "nobody@example.test"}).exitCode, NOT_FOUND);
  // The permission table: not someone else's, unless a user admin (who sets, never reads).
  ASSERT_EQ(as(ADA_UID, {"save", "upd", "--public", "ada-u@example.test"}).exitCode, OK);
  r = as(CAROL_UID, {"update", "upd", "ada-u@example.test", "--associate", id(world->ada),
                     "--comment", "by carol"});
  EXPECT_EQ(r.exitCode, PERMISSION_DENIED) << describe(r);
  r = as(ADA_UID,
         {"update", "upd", "u@example.test", "--associate", id(world->carol), "--secret-stdin"},
         "set-by-ada-secret");
  EXPECT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(field("secret"), "set-by-ada-secret");
  EXPECT_EQ(field("comment"), COMMENT);
  r = as(NOBODY_UID, {"update", "upd", "u@example.test", "--inactive"});
  EXPECT_EQ(r.exitCode, NOT_AUTHENTICATED) << describe(r);
}

TEST_F(Ctl, ConcurrentUpdatesOfDifferentFieldsBothLand) {
  ASSERT_EQ(as(CAROL_UID, {"save", "race", "--public", "r@example.test"}).exitCode, OK);
  constexpr int ROUNDS = 15;
  // Two writers, each changing its own field again and again. A client-side
  // read-modify-write would let one undo the other; the field mask cannot.
  pid_t a = fork();
  if (a == 0) {
    int bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
      bad += as(CAROL_UID,
                {"update", "race", "r@example.test", "--comment", "comment-" + std::to_string(i)})
                 .exitCode != 0;
    }
    _exit(bad);
  }
  int bad = 0;
  for (int i = 0; i < ROUNDS; i++) {
    bad += as(CAROL_UID, {"update", "race", "r@example.test", "--valid-to",
                          "2031-01-" + std::string(i + 1 < 10 ? "0" : "") + std::to_string(i + 1)})
               .exitCode != 0;
  }
  int status;
  ASSERT_EQ(waitpid(a, &status, 0), a);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(bad, 0);
  auto field = [&](const char* f) {
    return as(CAROL_UID, {"get", "race", "--public", "r@example.test", "--field", f}).out;
  };
  EXPECT_EQ(field("comment"), "comment-" + std::to_string(ROUNDS - 1));
  EXPECT_EQ(field("valid-to"), "2031-01-" + std::to_string(ROUNDS) + "T00:00:00Z");
}

// ---- passwords, exec, backup, associates, tokens ---------------------------------------------

TEST_F(Ctl, PasswdChangesOnlyYourOwnGivenTheCurrentOne) {
  auto r = as(PAT_UID, {"passwd", "--password-stdin"}, "wrong-current\npat-new-Passw0rd\n");
  EXPECT_EQ(r.exitCode, NOT_AUTHENTICATED) << describe(r);
  r = as(PAT_UID, {"passwd"}, "pat-old-Passw0rd\npat-new-Passw0rd\n");
  EXPECT_EQ(r.exitCode, USAGE) << describe(r);  // not a terminal, no --password-stdin
  r = as(PAT_UID, {"passwd", "--password-stdin"}, "pat-old-Passw0rd\npat-new-Passw0rd\n");
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(as(NOBODY_UID, {"login", "pat", "--password-stdin"}, "pat-old-Passw0rd").exitCode,
            NOT_AUTHENTICATED);
  r = as(NOBODY_UID, {"login", "pat", "--password-stdin"}, "pat-new-Passw0rd");
  EXPECT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_TRUE(contains(r.out, "7T:")) << r.out;
  // Root has no associate and no password; an unmapped uid is no one.
  EXPECT_EQ(as(0, {"passwd", "--password-stdin"}, "a\nb\n").exitCode, NOT_FOUND);
  EXPECT_EQ(as(NOBODY_UID, {"passwd", "--password-stdin"}, "a\nb\n").exitCode, NOT_AUTHENTICATED);
  // login --json: the expiry is ISO 8601 UTC.
  r = as(NOBODY_UID, {"login", "pat", "--password-stdin", "--json"}, "pat-new-Passw0rd");
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(text(member(Json(r.out).root(), "Expires")).back(), 'Z') << r.out;
}

TEST_F(Ctl, ExecPutsSecretsInTheEnvironmentAndPassesTheExitStatusThrough) {
  ASSERT_EQ(
      as(CAROL_UID, {"save", "db", "--public", "app:user", "--secret-stdin"}, SECRET).exitCode, OK);
  auto r = as(CAROL_UID, {"exec", "--env", "DB_PASS=db:app:user", "--", "/bin/sh", "-c",
                          "printf %s \"$DB_PASS\"; exit 7"});
  EXPECT_EQ(r.exitCode, 7) << describe(r);
  EXPECT_EQ(r.out, SECRET);
  // Not on the command line: the child's argv does not hold it.
  r = as(CAROL_UID,
         {"exec", "--env", "DB_PASS=db:app:user", "--", "/bin/sh", "-c", "cat /proc/$$/cmdline"});
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_FALSE(contains(r.out, "s3cr")) << r.out;
  // Acting by a ticket: the command gets the secrets named, not the ticket.
  addAssociate({"exa", "--password-stdin"}, "exa-Passw0rd-5\n");
  ASSERT_EQ(as(0,
               {"save", "db", "--public", "exa", "--associate",
                std::to_string(addAssociateId("exa")), "--secret-stdin"},
               "exa-db-secret-5")
                .exitCode,
            OK);
  auto login = as(NOBODY_UID, {"login", "exa", "--password-stdin"}, "exa-Passw0rd-5");
  ASSERT_EQ(login.exitCode, OK) << describe(login);
  auto ticket = login.out.substr(0, login.out.find('\n'));
  r = runAs(NOBODY_UID,
            {credvaultctlPath(), "--socket", sock(), "exec", "--env", "P=db:exa", "--", "/bin/sh",
             "-c", "printf '%s|%s' \"$P\" \"${CREDVAULT_TICKET-unset}\""},
            "", {"CREDVAULT_TICKET=" + ticket});
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_EQ(r.out, "exa-db-secret-5|unset");
  r = as(CAROL_UID, {"exec", "--env", "X=db:no-such", "--", "/bin/true"});
  EXPECT_EQ(r.exitCode, NOT_FOUND) << describe(r);
  r = as(CAROL_UID, {"exec", "--env", "X=db:app:user", "--", "/no/such/program"});
  EXPECT_EQ(r.exitCode, 127) << describe(r);
  r = as(CAROL_UID,
         {"exec", "--env", "X=db:app:user", "--env", "X=db:app:user", "--", "/bin/true"});
  EXPECT_EQ(r.exitCode, USAGE) << describe(r);
}

TEST_F(Ctl, BackupRefusesAnExistingFileUnlessForced) {
  auto file = world->dir / "ctl-backup.mdb";
  writeFile(file, "precious", 0600);
  auto r = as(0, {"backup", file});
  EXPECT_EQ(r.exitCode, LOCAL) << describe(r);
  EXPECT_TRUE(contains(r.err, "exists; choose a new name, or give --force")) << r.err;
  EXPECT_EQ(readFile(file), "precious");
  r = as(0, {"backup", file, "--force"});
  if (onPostgres()) {
    // A vault in PostgreSQL is backed up with pg_dump (multi-host-test): refused, saying so,
    // and the file is left as it was.
    EXPECT_EQ(r.exitCode, INVALID_ARGUMENT) << describe(r);
    EXPECT_TRUE(contains(r.err, "database's own tools")) << r.err;
    EXPECT_EQ(readFile(file), "precious");
    return;
  }
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  auto data = readFile(file);
  EXPECT_GT(data.size(), 4096u);
  struct stat st;
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No partial file left next to it.
  EXPECT_EQ(system(("ls " + world->dir.path() + " | grep -q partial").c_str()) == 0, false);
  // A refused backup (not a system user) leaves the old file as it was.
  r = as(CAROL_UID, {"backup", "/tmp/ctl-test-never-written.mdb"});
  EXPECT_EQ(r.exitCode, PERMISSION_DENIED) << describe(r);
}

TEST_F(Ctl, VerifyChecksTheRunningVaultForSystemUsersOnly) {
  auto r = as(0, {"verify"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_TRUE(contains(r.out, "verified ")) << r.out;
  r = as(0, {"verify", "--format=json"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  Json json(r.out);
  EXPECT_EQ(text(member(json.root(), "Ok")), "<true>") << r.out;
  EXPECT_FALSE(text(member(json.root(), "Credentials")).empty()) << r.out;
  EXPECT_EQ(text(member(json.root(), "Problem")), "<null>") << r.out;
  EXPECT_NE(text(member(json.root(), "Tables")), "0") << r.out;
  r = as(0, {"verify", "--format=tsv"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_TRUE(contains(r.out, "Tables")) << r.out;
  // Not a system user: refused, and the daemon does not walk anything for it.
  r = as(CAROL_UID, {"verify"});
  EXPECT_EQ(r.exitCode, PERMISSION_DENIED) << describe(r);
  EXPECT_FALSE(contains(r.out, "verified")) << r.out;
  // The daemon still serves.
  EXPECT_EQ(as(CAROL_UID, {"whoami"}).exitCode, OK);
}

TEST_F(Ctl, AssociateCommandsTakeANameOrAnId) {
  auto id = addAssociate({"zed"});
  auto r = as(0, {"associate", "show", "ZED", "--json"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(text(member(Json(r.out).root(), "AssociateId")), std::to_string(id));
  r = as(0, {"associate", "show", std::to_string(id), "--json"});  // by id
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(text(member(Json(r.out).root(), "Name")), "zed");
  r = as(0, {"associate", "set", "zed", "--user-admin", "--json"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(text(member(Json(r.out).root(), "UserAdmin")), "<true>");
  r = as(0, {"associate", "set", std::to_string(id), "--name", "zed2"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  r = as(0, {"associate", "passwd", "zed2", "--password-stdin"}, "zed-Passw0rd-1");
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  r = as(0, {"associate", "remove", "zed2"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(as(0, {"associate", "show", std::to_string(id)}).exitCode, NOT_FOUND);
  EXPECT_EQ(as(0, {"associate", "show", "zed2"}).exitCode, NOT_FOUND);
}

TEST_F(Ctl, TokenTimesAreIso8601Utc) {
  auto r = as(CAROL_UID, {"token", "add", "ci", "--expires", "2031-06-01", "--json"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  EXPECT_EQ(text(member(Json(r.out).root(), "Expires")), "2031-06-01T00:00:00Z");
  r = as(CAROL_UID, {"token", "list", "--json"});
  ASSERT_EQ(r.exitCode, OK) << describe(r);
  Json listed(r.out);
  auto t = listed.root().getArray()[0];
  EXPECT_EQ(keysOf(t), "Name,AssociateId,Created,Expires");
  EXPECT_EQ(text(member(t, "Created")).back(), 'Z');
  r = as(CAROL_UID, {"token", "add", "forever", "--json"});
  EXPECT_TRUE(member(Json(r.out).root(), "Expires").isNull()) << r.out;
  r = as(CAROL_UID, {"token", "list"});
  EXPECT_TRUE(contains(r.out, "never")) << r.out;
}

// The commands and exit codes that --help shows are all described in docs/credvaultctl.md
// and the man page (hand-written from the same text; this keeps them from drifting).
TEST_F(Ctl, DocsAndManPageDescribeEveryCommandAndExitCode) {
  const char* root = getenv("CREDVAULT_SOURCE_ROOT");
  ASSERT_NE(root, nullptr);
  auto md = readFile(std::string(root) + "/docs/credvaultctl.md");
  auto man = readFile(std::string(root) + "/packaging/man/credvaultctl.1.in");
  auto help = ctl(0, world->dir / "no-such.sock", {"--help"}).out;
  auto at = help.find("Commands:\n");
  ASSERT_NE(at, std::string::npos);
  size_t commands = 0;
  for (auto& l : lines(help.substr(at + 10))) {
    if (l.rfind("  ", 0) != 0) break;
    auto cmd = l.substr(2, l.find(' ', 2) - 2);
    ++commands;
    EXPECT_TRUE(contains(md, "`" + cmd)) << cmd << " is not in docs/credvaultctl.md";
    std::string manCmd;
    for (char c : cmd) manCmd += c == '-' ? std::string("\\-") : std::string(1, c);
    EXPECT_TRUE(contains(man, ".B " + manCmd) || contains(man, ".BI \"" + manCmd))
        << cmd << " is not in credvaultctl.1";
  }
  EXPECT_GE(commands, 19u);
  for (auto& e : EXIT_CODES) {
    EXPECT_TRUE(contains(md, "| " + std::to_string(e.code) + " | ")) << e.code;
    EXPECT_TRUE(contains(man, ".B " + std::to_string(e.code) + "\n")) << e.code;
  }
}

}  // namespace
}  // namespace credvault::integration
