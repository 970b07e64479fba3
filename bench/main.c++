// credvault-bench — how fast credvaultd is, and how far from its ceilings.
//
// Starts the real credvaultd (a fresh state directory and key in a temporary directory)
// and prints one table, section by section (bench/sections.h lists them; bench/load.h says
// how load is made and what the columns mean). This file only reads the command line and
// runs the sections --only names.

#include "sections.h"
#include "database.h"
#include "tests/support/postgres.h"

#include <kj/debug.h>
#include <kj/main.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace credvault::bench {
namespace {

void runSections(const Options& o) {
  char base[PATH_MAX];
  KJ_REQUIRE(realpath(o.tmpdir.cStr(), base) != nullptr, "no such directory", o.tmpdir);
  char tmpl[PATH_MAX + 32];
  snprintf(tmpl, sizeof(tmpl), "%s/credvault-bench-XXXXXX", base);
  KJ_REQUIRE(mkdtemp(tmpl) != nullptr, "mkdtemp", strerror(errno), o.tmpdir);
  auto dir = kj::heapString(tmpl);
  KJ_DEFER(removeTree(dir));
  Context ctx{o, dir};

  describeMachine(dir, o.duration, o.warmup);
  if (o.wants("inproc")) inProcessSection(ctx);

  auto io = kj::setupAsyncIo();
  if (o.wants("echo")) echoSection(ctx, io);
  if (o.wants("get") || o.wants("save") || o.wants("auth") || o.wants("rss") ||
      o.wants("biglist")) {
    kj::Maybe<kj::Own<Database>> database;
    for (auto& storage : o.storages) {
      ctx.storage = storage;
      ctx.database = nullptr;
      printf("\n=== storage: %s ===\n", storage.cStr());
      if (storage == "postgresql") {
        if (database == nullptr) database = kj::heap<Database>();
        KJ_IF_MAYBE(db, database) { ctx.database = *db; }
        printf("%s\n", ctx.database->describe().cStr());
        if (o.daemons > 1) {
          printf(
              "get and save on %u daemons sharing one database, each with its own state "
              "directory, socket and a copy of the first one's key\n",
              o.daemons);
        }
      } else {
        printf("LMDB in the state directory (one daemon)\n");
      }
      fflush(stdout);
      daemonSections(ctx, io);
    }
    ctx.storage = "lmdb";
    ctx.database = nullptr;
  }
  if (o.wants("backup")) {
    for (auto n : o.backupCredentials) backupSection(ctx, io, n);
  }
  printf("\ndone; load average %s", readText("/proc/loadavg").cStr());
}

// Splits "a,b,c" (empty items dropped).
kj::Vector<kj::String> commaList(kj::StringPtr v) {
  kj::Vector<kj::String> items;
  size_t start = 0;
  for (size_t i = 0; i <= v.size(); i++) {
    if (i == v.size() || v[i] == ',') {
      if (i > start) items.add(kj::heapString(v.slice(start, i)));
      start = i + 1;
    }
  }
  return items;
}

class Main {
 public:
  explicit Main(kj::ProcessContext& context) : context(context) {
    const char* env = getenv("CREDVAULTD");
    if (env != nullptr) o.credvaultd = kj::heapString(env);
    const char* tmp = getenv("TMPDIR");
    o.tmpdir = kj::heapString(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp");
  }

  kj::MainFunc getMain() {
    return kj::MainBuilder(context, "credvault-bench",
                           "Measures credvaultd over IPC against its in-process and "
                           "transport ceilings; prints a table.")
        .addOptionWithArg({"credvaultd"}, KJ_BIND_METHOD(*this, setDaemon), "<path>",
                          "The credvaultd binary (default $CREDVAULTD).")
        .addOptionWithArg({"duration"}, KJ_BIND_METHOD(*this, setDuration), "<seconds>",
                          "Measured window per row (default 3).")
        .addOptionWithArg({"warmup"}, KJ_BIND_METHOD(*this, setWarmup), "<seconds>",
                          "Unmeasured warm-up before each row (default 0.5).")
        .addOptionWithArg({"password-seconds"}, KJ_BIND_METHOD(*this, setPasswordSeconds),
                          "<seconds>", "Time per Argon2id row (default 2).")
        .addOptionWithArg({"rss-credentials"}, KJ_BIND_METHOD(*this, setRssCredentials), "<n>",
                          "Credentials to store before measuring memory (default 100000).")
        .addOptionWithArg({"tmpdir"}, KJ_BIND_METHOD(*this, setTmpdir), "<dir>",
                          "Where the state directories go (default $TMPDIR or /tmp); its "
                          "file system decides what a durable commit costs.")
        .addOptionWithArg({"daemon-set"}, KJ_BIND_METHOD(*this, addDaemonSetting), "<key=value>",
                          "Pass --set <key=value> to credvaultd (e.g. audit_log=/tmp/a.jsonl).")
        .addOptionWithArg({"daemon-log-level"}, KJ_BIND_METHOD(*this, setLogLevel), "<level>",
                          "Pass log_level=<level> to credvaultd (default: its own, info).")
        .addOptionWithArg({"storage"}, KJ_BIND_METHOD(*this, setStorage), "<list>",
                          "Where the daemons keep their records, comma-separated, run in "
                          "turn: lmdb (default), postgresql (a throw-away PostgreSQL 15 the "
                          "bench starts, as the tests do: unix socket, fsync on).")
        .addOptionWithArg({"daemons"}, KJ_BIND_METHOD(*this, setDaemons), "<n>",
                          "Daemons sharing the PostgreSQL vault in the get and save sections, "
                          "clients spread across them (default 1; LMDB always has one).")
        .addOptionWithArg({"only"}, KJ_BIND_METHOD(*this, setOnly), "<list>",
                          "Comma-separated sections: inproc,echo,get,save,auth,rss,biglist,"
                          "backup (backup runs only when named).")
        .addOptionWithArg({"backup-credentials"}, KJ_BIND_METHOD(*this, setBackupCredentials),
                          "<list>",
                          "Vault sizes for the backup section, comma-separated (default "
                          "10000,100000).")
        .addOptionWithArg({"flood-passwords"}, KJ_BIND_METHOD(*this, floodPasswords), "<socket>",
                          "(internal) pipeline 400 password logins with random names to <socket>.")
        .addOptionWithArg({"echo-server"}, KJ_BIND_METHOD(*this, echoServer), "<socket>",
                          "(internal) serve the echo interface on <socket>.")
        .callAfterParsing(KJ_BIND_METHOD(*this, run))
        .build();
  }

 private:
  kj::ProcessContext& context;
  Options o;

  kj::MainBuilder::Validity addDaemonSetting(kj::StringPtr v) {
    if (v.findFirst('=') == nullptr) return "expected key=value";
    o.daemonSettings.add(kj::heapString(v));
    return true;
  }
  kj::MainBuilder::Validity setDaemon(kj::StringPtr v) {
    o.credvaultd = kj::heapString(v);
    return true;
  }
  // A number of 0 or more (strtod syntax), or nullptr.
  static kj::Maybe<double> number(kj::StringPtr v) {
    char* end;
    double d = strtod(v.cStr(), &end);
    if (end == v.cStr() || *end != '\0' || d < 0) return nullptr;
    return d;
  }
  // Sets `into` to a number of seconds above 0.
  static kj::MainBuilder::Validity positiveSeconds(kj::StringPtr v, double& into) {
    KJ_IF_MAYBE(d, number(v)) {
      if (*d > 0) {
        into = *d;
        return true;
      }
    }
    return "expected a positive number of seconds";
  }
  kj::MainBuilder::Validity setDuration(kj::StringPtr v) { return positiveSeconds(v, o.duration); }
  kj::MainBuilder::Validity setPasswordSeconds(kj::StringPtr v) {
    return positiveSeconds(v, o.passwordSeconds);
  }
  kj::MainBuilder::Validity setWarmup(kj::StringPtr v) {
    KJ_IF_MAYBE(d, number(v)) {
      o.warmup = *d;
      return true;
    }
    return "expected a number of seconds";
  }
  kj::MainBuilder::Validity setRssCredentials(kj::StringPtr v) {
    KJ_IF_MAYBE(d, number(v)) {
      if (*d >= 1 && *d <= 180000) {
        o.rssCredentials = uint32_t(*d);
        return true;
      }
    }
    return "expected a count from 1 to 180000";
  }
  kj::MainBuilder::Validity setTmpdir(kj::StringPtr v) {
    o.tmpdir = kj::heapString(v);
    return true;
  }
  kj::MainBuilder::Validity setLogLevel(kj::StringPtr v) {
    o.daemonLogLevel = kj::heapString(v);
    return true;
  }
  kj::MainBuilder::Validity setStorage(kj::StringPtr v) {
    o.storages.clear();
    for (auto& s : commaList(v)) {
      if (s != "lmdb" && s != "postgresql") return "storages are lmdb and postgresql";
      o.storages.add(kj::mv(s));
    }
    if (o.storages.empty()) return "name at least one storage";
    return true;
  }
  kj::MainBuilder::Validity setDaemons(kj::StringPtr v) {
    KJ_IF_MAYBE(d, number(v)) {
      if (*d >= 1 && *d <= 8 && *d == double(unsigned(*d))) {
        o.daemons = unsigned(*d);
        return true;
      }
    }
    return "expected a count from 1 to 8";
  }
  kj::MainBuilder::Validity setOnly(kj::StringPtr v) {
    for (auto& s : commaList(v)) {
      if (s != "inproc" && s != "echo" && s != "get" && s != "save" && s != "auth" && s != "rss" &&
          s != "biglist" && s != "backup") {
        return "sections are inproc, echo, get, save, auth, rss, biglist, backup";
      }
      o.only.add(kj::mv(s));
    }
    return true;
  }
  kj::MainBuilder::Validity setBackupCredentials(kj::StringPtr v) {
    o.backupCredentials.clear();
    size_t start = 0;
    for (size_t i = 0; i <= v.size(); i++) {
      if (i == v.size() || v[i] == ',') {
        auto item = kj::heapString(v.slice(start, i));
        char* end;
        unsigned long long n = strtoull(item.cStr(), &end, 10);
        if (item.size() == 0 || *end != '\0' || n < 1 || n > 100'000'000) {
          return "expected counts from 1 to 100000000, comma-separated";
        }
        o.backupCredentials.add(n);
        start = i + 1;
      }
    }
    return true;
  }
  kj::MainBuilder::Validity echoServer(kj::StringPtr path) {
    runEchoServer(path);
    context.exit();
    return true;
  }
  kj::MainBuilder::Validity floodPasswords(kj::StringPtr path) {
    runPasswordFlood(path);
    context.exit();
    return true;
  }
  kj::MainBuilder::Validity run() {
    bool needsDaemon = o.wants("get") || o.wants("save") || o.wants("auth") || o.wants("rss") ||
                       o.wants("biglist") || o.wants("backup");
    if (o.storages.empty()) o.storages.add(kj::str("lmdb"));
    for (auto& s : o.storages) {
      if (s == "postgresql" && !support::PostgresServer::available()) {
        return "--storage postgresql needs PostgreSQL 15 (scripts/deps.sh installs it)";
      }
    }
    if (o.backupCredentials.empty()) {
      o.backupCredentials.add(10'000);
      o.backupCredentials.add(100'000);
    }
    if (needsDaemon && o.credvaultd.size() == 0) {
      return "give the credvaultd binary with --credvaultd or $CREDVAULTD";
    }
    if (o.credvaultd.size() > 0) {
      // The child runs from /, so a relative path (as meson passes it) must be resolved.
      char resolved[PATH_MAX];
      if (realpath(o.credvaultd.cStr(), resolved) == nullptr) {
        return "cannot find the credvaultd binary";
      }
      o.credvaultd = kj::heapString(resolved);
    }
    signal(SIGPIPE, SIG_IGN);
    runSections(o);
    return true;
  }
};

}  // namespace
}  // namespace credvault::bench

KJ_MAIN(credvault::bench::Main)
