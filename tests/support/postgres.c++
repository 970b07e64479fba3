#include "postgres.h"

#include <libpq-fe.h>
#include <kj/debug.h>
#include <kj/vector.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <memory>
#include <string>

namespace credvault::support {

namespace {

constexpr const char BIN[] = "/usr/lib/postgresql/15/bin";

std::string tail(kj::StringPtr path) {
  std::string out;
  FILE* f = fopen(path.cStr(), "r");
  if (f == nullptr) return "(no log)";
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  fclose(f);
  return out.size() > 2000 ? out.substr(out.size() - 2000) : out;
}

void removeTree(kj::StringPtr path) {
  nftw(
      path.cStr(),
      [](const char* p, const struct stat*, int, struct FTW*) {
        ::remove(p);
        return 0;
      },
      16, FTW_DEPTH | FTW_PHYS);
}

}  // namespace

bool PostgresServer::available() {
  return access(kj::str(BIN, "/initdb").cStr(), X_OK) == 0 &&
         access(kj::str(BIN, "/postgres").cStr(), X_OK) == 0;
}

PostgresServer& PostgresServer::instance() {
  static std::unique_ptr<PostgresServer> server;
  if (server == nullptr) server.reset(new PostgresServer());
  return *server;
}

PostgresServer::PostgresServer() {
  KJ_REQUIRE(available(), "PostgreSQL 15 is not installed (scripts/deps.sh installs it)");
  uid_ = getuid();
  gid_ = getgid();
  const char* base = getenv("TMPDIR");
  if (uid_ == 0) {
    // PostgreSQL refuses to run as root.
    struct passwd* pw = getpwnam("nobody");
    KJ_REQUIRE(pw != nullptr, "no user nobody to run PostgreSQL as");
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    base = nullptr;  // $TMPDIR may be out of nobody's reach
  }
  auto pattern = kj::str(base != nullptr && *base != '\0' ? base : "/tmp", "/credvault-pg-XXXXXX");
  KJ_REQUIRE(mkdtemp(pattern.begin()) != nullptr, "mkdtemp failed", strerror(errno));
  dir_ = kj::mv(pattern);
  KJ_SYSCALL(chmod(dir_.cStr(), 0700));
  if (getuid() == 0) { KJ_SYSCALL(chown(dir_.cStr(), uid_, gid_)); }
  dataDir_ = kj::str(dir_, "/data");
  KJ_ON_SCOPE_FAILURE(removeTree(dir_));

  kj::StringPtr initdb[] = {"initdb", "-D", dataDir_, "-U",         "postgres", "-A",
                            "trust",  "-E", "UTF8",   "--locale=C", "--no-sync"};
  auto log = kj::str(dir_, "/initdb.log");
  pid_t pid = spawn(initdb, log, false);
  int status;
  KJ_SYSCALL(waitpid(pid, &status, 0));
  KJ_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "initdb failed", tail(log));
  start();
}

PostgresServer::~PostgresServer() noexcept(false) {
  // Everything is removed next: an immediate shutdown, without the checkpoint that writes out
  // every test's database first.
  if (pid_ > 0) {
    ::kill(pid_, SIGQUIT);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  if (getenv("CREDVAULT_KEEP_TEST_DIR") == nullptr) removeTree(dir_);
}

pid_t PostgresServer::spawn(kj::ArrayPtr<const kj::StringPtr> argv, kj::StringPtr log,
                            bool dieWithUs) {
  auto program = kj::str(BIN, "/", argv[0]);
  kj::Vector<const char*> args;
  for (auto& a : argv) args.add(a.cStr());
  args.add(nullptr);
  pid_t parent = getpid();
  bool root = getuid() == 0;
  pid_t pid = fork();
  KJ_SYSCALL(pid, "fork");
  if (pid == 0) {
    if (root && (setgroups(0, nullptr) != 0 || setgid(gid_) != 0 || setuid(uid_) != 0)) _exit(126);
    // After setuid, which clears it: the server dies with the test binary.
    if (dieWithUs && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)) _exit(126);
    int fd = open(log.cStr(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(126);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    execv(program.cStr(), const_cast<char* const*>(args.begin()));
    _exit(127);
  }
  return pid;
}

void PostgresServer::start() {
  KJ_REQUIRE(pid_ <= 0, "already running");
  auto log = kj::str(dir_, "/postgres.log");
  // After kill(), the old server's processes may hold the data directory a little longer.
  for (int attempt = 0;; ++attempt) {
    kj::StringPtr argv[] = {"postgres", "-D", dataDir_, "-k", dir_, "-c", "listen_addresses=", "-c",
                            "fsync=on",
                            // Crash recovery syncs the data directory: one syncfs(), not an
                            // fsync of every file of every test's database.
                            "-c", "recovery_init_sync_method=syncfs", "-c", "shared_buffers=32MB",
                            "-c", "max_connections=60", "-c", "log_min_messages=warning"};
    pid_ = spawn(argv, log, true);
    auto ping = conninfo("postgres");
    for (int i = 0; i < 3000; ++i) {
      if (PQping(ping.cStr()) == PQPING_OK) return;
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      usleep(10000);
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      KJ_FAIL_REQUIRE("PostgreSQL did not start in 30 s", tail(log));
    }
    KJ_REQUIRE(attempt < 50, "PostgreSQL exited at start", tail(log));
    usleep(100000);
  }
}

void PostgresServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGINT);
  KJ_SYSCALL(waitpid(pid_, nullptr, 0));
  pid_ = -1;
}

void PostgresServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  KJ_SYSCALL(waitpid(pid_, nullptr, 0));
  pid_ = -1;
}

std::string PostgresServer::log() const {
  std::string out;
  FILE* f = fopen(kj::str(dir_, "/postgres.log").cStr(), "r");
  if (f == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  fclose(f);
  return out;
}

kj::String PostgresServer::conninfo(kj::StringPtr database) const {
  return kj::str("host=", dir_, " user=postgres dbname=", database);
}

std::string PostgresServer::sql(kj::StringPtr database, kj::StringPtr statement) const {
  PGconn* conn = PQconnectdb(conninfo(database).cStr());
  KJ_DEFER(PQfinish(conn));
  KJ_REQUIRE(PQstatus(conn) == CONNECTION_OK, PQerrorMessage(conn));
  PGresult* r = PQexec(conn, statement.cStr());
  KJ_DEFER(PQclear(r));
  auto status = PQresultStatus(r);
  KJ_REQUIRE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK, statement,
             PQerrorMessage(conn));
  std::string out;
  for (int i = 0; i < PQntuples(r); ++i) {
    if (i > 0) out += '\n';
    out.append(PQgetvalue(r, i, 0), PQgetlength(r, i, 0));
  }
  return out;
}

kj::String PostgresServer::freshDatabase(bool durable) {
  auto name = kj::str("credvault_test_", ++databases_);
  PGconn* conn = PQconnectdb(conninfo("postgres").cStr());
  KJ_DEFER(PQfinish(conn));
  KJ_REQUIRE(PQstatus(conn) == CONNECTION_OK, PQerrorMessage(conn));
  PGresult* r = PQexec(conn, kj::str("CREATE DATABASE ", name, " TEMPLATE template0").cStr());
  KJ_DEFER(PQclear(r));
  KJ_REQUIRE(PQresultStatus(r) == PGRES_COMMAND_OK, PQerrorMessage(conn));
  if (!durable) {
    PGresult* a =
        PQexec(conn, kj::str("ALTER DATABASE ", name, " SET synchronous_commit = off").cStr());
    KJ_DEFER(PQclear(a));
    KJ_REQUIRE(PQresultStatus(a) == PGRES_COMMAND_OK, PQerrorMessage(conn));
  }
  return conninfo(name);
}

}  // namespace credvault::support
