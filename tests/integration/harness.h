// Integration test harness: runs the real credvaultd on a socket in a temporary directory
// and drives it as several real uids, with credvaultctl (fork + setresuid + exec) or with
// the client library (in-process as root; in a forked child as another uid).
//
// The binaries come from the environment: CREDVAULTD and CREDVAULTCTL (set by meson). With
// CREDVAULT_TEST_STORE=postgresql (tests/support/test-store.h) every Daemon run as root keeps its
// records in a fresh database of the binary's throw-away PostgreSQL 15 instead of data.mdb
// (meson registers such runs as integration-postgresql and ctl-postgresql, suite slow).

#pragma once

#include "ipc/client.h"
#include "tests/support/rpc-calls.h"
#include "tests/support/temp-dir.h"

#include <kj/async-io.h>
#include <sys/types.h>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace credvault::integration {

// Paths of the binaries under test (from $CREDVAULTD and $CREDVAULTCTL).
std::string credvaultdPath();
std::string credvaultctlPath();

// A fresh directory (tests/support/temp-dir.h), mode 0755 so other uids can reach the socket
// in it; removed with its contents at the end (kept when CREDVAULT_KEEP_TEST_DIR is set).
class TempDir {
 public:
  std::string path() const { return dir_.path(); }
  std::string operator/(const std::string& name) const { return path() + "/" + name; }

 private:
  support::TempDir dir_{"credvault-it", 0755};
};

std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& content, mode_t mode = 0600);
bool contains(const std::string& haystack, const std::string& needle);

// One credvaultd under test. Its stdout and stderr go to log files in the directory (one
// per start), all of which are kept for the final scan for secrets.
class Daemon {
 public:
  // `dir` must exist. `runAsUid` runs the daemon itself as that uid (default: root). On the
  // PostgreSQL test store, a daemon run as root gets a fresh database of its own (kept across
  // its restarts); one run as another uid stays on LMDB (the test server's socket is reachable
  // by its own user and root only).
  explicit Daemon(std::string dir, uid_t runAsUid = 0);
  ~Daemon();  // SIGKILLs a daemon still running

  std::string socket() const { return dir_ + "/credvaultd.sock"; }
  std::string stateDir() const { return dir_ + "/state"; }
  std::string keyFile() const { return stateDir() + "/master.key"; }
  std::string dataFile() const { return stateDir() + "/data.mdb"; }
  const std::vector<std::string>& logFiles() const { return logs_; }
  // What the latest start wrote to stdout and stderr (not the audit trail, also in logFiles()).
  std::string lastLog() const { return current_.empty() ? "" : readFile(current_); }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // The libpq connection string of its database, or "" on LMDB.
  const std::string& postgres() const { return conninfo_; }
  // Moves the daemon to PostgreSQL (`storage = postgresql` with `conninfo`), or back to LMDB
  // with "", for its next start.
  void usePostgres(const std::string& conninfo);

  // Extra `--set key=value` settings for every start.
  void addSetting(const std::string& kv) { settings_.push_back(kv); }
  // Extra `NAME=value` environment variables for every start.
  void addEnv(const std::string& kv) { env_.push_back(kv); }

  // Starts and waits for READY=1 (sd_notify) — fails the test if it exits instead.
  void start();
  // Starts and expects the daemon to exit without becoming ready; returns the wait status.
  int startExpectingFailure();
  // SIGTERM, then waits; returns the wait status.
  int stop();
  // Sends SIGTERM without waiting (for in-flight tests); wait() collects the status.
  void terminate();
  int wait();

 private:
  std::string dir_;
  uid_t uid_;
  pid_t pid_ = -1;
  int notifyFd_ = -1;
  int starts_ = 0;
  std::vector<std::string> settings_;
  std::vector<std::string> env_;
  std::string conninfo_;
  std::vector<std::string> logs_;
  std::string current_;  // the latest start's log file

  void spawn();
  // Waits for READY=1 or for the process to exit; true when ready.
  bool awaitReady(std::chrono::milliseconds timeout, int* exitStatus);
};

// What must never be written where the daemon writes: its logs (its audit trail among them,
// see harness.c++), its database file and backups. A fixture remembers every secret, password,
// public value and comment its tests send, and checks at its teardown, once its daemon has
// stopped — so each fixture's daemon is checked whatever order the tests run in.
class LeakCheck {
 public:
  // A string shorter than 10 bytes is looked for in the logs only (in the database file it
  // could occur by chance).
  void remember(const std::string& s) { sensitive_.push_back(s); }
  // A file the daemon or a client wrote for the fixture (a backup), scanned as well.
  void alsoScan(const std::string& file) { files_.push_back(file); }
  size_t remembered() const { return sensitive_.size(); }
  // Adds a test failure for every remembered string found in `daemon`'s logs, its data file
  // (every row of its database, on PostgreSQL) or the extra files, and when the logs were not
  // captured (the scan would prove nothing).
  void check(const Daemon& daemon) const;

 private:
  std::vector<std::string> sensitive_;
  std::vector<std::string> files_;
};

struct CtlResult {
  int exitCode = -1;  // -1 if killed by a signal
  std::string out;
  std::string err;
};

// Runs credvaultctl as `uid` (gid = uid, no supplementary groups) with `args` after
// `--socket SOCKET`, feeding `input` on stdin.
// Whether the tests run on PostgreSQL (CREDVAULT_TEST_STORE=postgresql).
bool onPostgres();

CtlResult ctl(uid_t uid, const std::string& socket, const std::vector<std::string>& args,
              const std::string& input = "");

// Runs a raw program as `uid` (used for credvaultctl without --socket).
CtlResult runAs(uid_t uid, const std::vector<std::string>& argv, const std::string& input,
                const std::vector<std::string>& env);

// Runs `body` in a forked child as `uid` with a fresh event loop and a connection to
// `socket` made with the client library; returns what `body` returned (or "EXCEPTION: …").
std::string withClientAs(uid_t uid, const std::string& socket,
                         std::function<std::string(ipc::Connection&, kj::WaitScope&)> body);

// "ok" or "code field" of an answer (tests/support/rpc-calls.h).
using support::errorOf;

}  // namespace credvault::integration
