// Integration test harness: runs the real credvaultd on a socket in a temporary directory
// and drives it as several real uids, with credvaultctl (fork + setresuid + exec) or with
// the client library (in-process as root; in a forked child as another uid).
//
// The binaries come from the environment: CREDVAULTD and CREDVAULTCTL (set by meson).

#pragma once

#include "ipc/client.h"

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

// A fresh directory under /tmp, mode 0755 so other uids can reach the socket in it;
// removed with its contents at the end.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& content, mode_t mode = 0600);
bool contains(const std::string& haystack, const std::string& needle);

// One credvaultd under test. Its stdout and stderr go to log files in the directory (one
// per start), all of which are kept for the final scan for secrets.
class Daemon {
 public:
  // `dir` must exist. `runAsUid` runs the daemon itself as that uid (default: root).
  explicit Daemon(std::string dir, uid_t runAsUid = 0);
  ~Daemon();  // SIGKILLs a daemon still running

  std::string socket() const { return dir_ + "/credvaultd.sock"; }
  std::string stateDir() const { return dir_ + "/state"; }
  std::string keyFile() const { return stateDir() + "/master.key"; }
  std::string dataFile() const { return stateDir() + "/data.mdb"; }
  const std::vector<std::string>& logFiles() const { return logs_; }
  std::string lastLog() const { return logs_.empty() ? "" : readFile(logs_.back()); }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Extra `--set key=value` settings for every start.
  void addSetting(const std::string& kv) { settings_.push_back(kv); }

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
  std::vector<std::string> logs_;

  void spawn();
  // Waits for READY=1 or for the process to exit; true when ready.
  bool awaitReady(std::chrono::milliseconds timeout, int* exitStatus);
};

struct CtlResult {
  int exitCode = -1;  // -1 if killed by a signal
  std::string out;
  std::string err;
};

// Runs credvaultctl as `uid` (gid = uid, no supplementary groups) with `args` after
// `--socket SOCKET`, feeding `input` on stdin.
CtlResult ctl(uid_t uid, const std::string& socket, const std::vector<std::string>& args,
              const std::string& input = "");

// Runs a raw program as `uid` (used for credvaultctl without --socket).
CtlResult runAs(uid_t uid, const std::vector<std::string>& argv, const std::string& input,
                const std::vector<std::string>& env);

// Runs `body` in a forked child as `uid` with a fresh event loop and a connection to
// `socket` made with the client library; returns what `body` returned (or "EXCEPTION: …").
std::string withClientAs(uid_t uid, const std::string& socket,
                         std::function<std::string(ipc::Connection&, kj::WaitScope&)> body);

// Converts an error of a result to "code field" ("ok" when there is none).
template<typename Results>
std::string errorOf(const Results& r) {
  if (!r.hasError()) return "ok";
  auto e = r.getError();
  std::string out = ipc::errorCodeName(e.getCode()).cStr();
  if (e.getField().size() > 0) out += std::string(" ") + e.getField().cStr();
  return out;
}

}  // namespace credvault::integration
