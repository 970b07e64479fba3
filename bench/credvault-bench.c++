// credvault-bench — how fast credvaultd is, and how far from its ceilings.
//
// Starts the real credvaultd (a fresh state directory and key in a temporary directory)
// and measures, printing one table:
//   - in-process ceiling: core::Vault on an LMDB environment, no IPC (Get; durable Save
//     one op per commit via Vault::runNow, and 32 ops per commit the way group commit
//     batches them; Argon2id at the default and at the configured parameters);
//   - transport ceiling: a bare Cap'n Proto echo (bench/echo.capnp) served by a child
//     process of this binary over a Unix socket, with the same client and load shapes;
//   - credvaultd over IPC: Get with 1, 8 and 64 calls in flight; durable Save with 1 and
//     32 concurrent clients (one connection each), with the commits they took (LMDB's
//     transaction id read through a read-only environment); password and, once the daemon
//     issues them, ticket authentication;
//   - credvaultd's resident memory with 100,000 stored credentials, before and after a
//     restart and a read of every record;
//   - (section "backup", only when asked for) a simple Get's latency on one connection
//     while Admin.backupTo streams the whole vault to another, on vaults of 10,000 to
//     1,000,000 credentials (--backup-credentials), against the same Get without a backup.
//
// Load is closed-loop: each "slot" sends a call, waits for its answer and sends the next.
// Pipelined slots share one connection (Cap'n Proto multiplexes calls on it); "Nc×M" means
// N connections with M slots each. All client work runs on this process's one event-loop
// thread. A call counts when it completes inside the measured window (after the warm-up);
// its latency is send to answer. "srv µs/op" is the server process's CPU time (all its
// threads, from /proc/PID/task/*/schedstat) per completed call; "cli µs/op" is this
// process's CPU time per call.

#include "core/vault.h"
#include "core/limits.h"
#include "crypto/masterkey.h"
#include "crypto/password.h"
#include "crypto/secret.h"
#include "ipc/client.h"
#include "echo.capnp.h"

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/filesystem.h>
#include <kj/main.h>
#include <kj/thread.h>
#include <kj/vector.h>
#include <lmdb.h>

#include <limits.h>

#include <algorithm>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace credvault::bench {
namespace {

// ---- clocks and statistics ---------------------------------------------------------------

uint64_t nowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

uint64_t selfCpuNs() {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// CPU time of every live thread of `pid`, in ns (first field of schedstat).
uint64_t processCpuNs(pid_t pid) {
  if (pid <= 0) return 0;
  uint64_t total = 0;
  auto dirPath = kj::str("/proc/", pid, "/task");
  DIR* dir = opendir(dirPath.cStr());
  if (dir == nullptr) return 0;
  while (struct dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    auto path = kj::str(dirPath, "/", e->d_name, "/schedstat");
    FILE* f = fopen(path.cStr(), "r");
    if (f == nullptr) continue;
    unsigned long long ns = 0;
    if (fscanf(f, "%llu", &ns) == 1) total += ns;
    fclose(f);
  }
  closedir(dir);
  return total;
}

struct Result {
  uint64_t ops = 0;                 // completed in the measured window
  double seconds = 0;               // length of the measured window
  std::vector<uint64_t> latencies;  // ns, of the calls counted in `ops`
  uint64_t allOps = 0;              // completed in total (warm-up included)
  uint64_t serverCpuNs = 0;         // over the whole run
  uint64_t clientCpuNs = 0;

  double opsPerSecond() const { return seconds > 0 ? ops / seconds : 0; }
  double maxUs() const {
    uint64_t m = 0;
    for (auto l : latencies) m = std::max(m, l);
    return m / 1000.0;
  }
  double percentileUs(double q) {
    if (latencies.empty()) return 0;
    size_t i = std::min(latencies.size() - 1, size_t(q * latencies.size()));
    std::nth_element(latencies.begin(), latencies.begin() + i, latencies.end());
    return latencies[i] / 1000.0;
  }
};

struct Options {
  kj::String credvaultd;
  double duration = 3;
  double warmup = 0.5;
  double passwordSeconds = 2;
  uint32_t rssCredentials = 100000;
  kj::String tmpdir;
  kj::Maybe<kj::String> daemonLogLevel;
  kj::Vector<kj::String> daemonSettings;  // --daemon-set KEY=VALUE, passed as --set
  kj::Vector<kj::String> only;
  kj::Vector<uint64_t> backupCredentials;  // vault sizes for the "backup" section

  bool wants(kj::StringPtr section) const {
    // Minutes per size: run only when named.
    if (section == "backup" && only.empty()) return false;
    if (only.empty()) return true;
    for (auto& s : only)
      if (s == section) return true;
    return false;
  }
};

// ---- output ------------------------------------------------------------------------------

void header(kj::StringPtr title) {
  printf("\n%s\n", title.cStr());
  printf("  %-44s %-8s %11s %9s %9s %9s %9s  %s\n", "operation", "load", "ops/s", "p50 µs",
         "p99 µs", "srv µs/op", "cli µs/op", "notes");
  fflush(stdout);
}

void row(kj::StringPtr op, kj::StringPtr load, Result& r, kj::StringPtr notes = "",
         bool hasServer = true) {
  auto perOp = [&](uint64_t ns) -> kj::String {
    if (r.allOps == 0) return kj::str("-");
    char buf[32];
    snprintf(buf, sizeof(buf), "%.1f", ns / 1000.0 / r.allOps);
    return kj::str(buf);
  };
  auto srv = hasServer ? perOp(r.serverCpuNs) : kj::str("-");
  printf("  %-44s %-8s %11.0f %9.1f %9.1f %9s %9s  %s\n", op.cStr(), load.cStr(), r.opsPerSecond(),
         r.percentileUs(0.50), r.percentileUs(0.99), srv.cStr(), perOp(r.clientCpuNs).cStr(),
         notes.cStr());
  fflush(stdout);
}

void note(kj::StringPtr text) {
  printf("  %s\n", text.cStr());
  fflush(stdout);
}

// ---- closed-loop load over KJ promises -----------------------------------------------------

using Issue = kj::Function<kj::Promise<void>()>;

struct Run {
  uint64_t measureFrom;
  uint64_t deadline;
  uint64_t remaining = UINT64_MAX;  // for count-limited runs
  Result result;

  bool more() {
    if (remaining != UINT64_MAX) {
      if (remaining == 0) return false;
      --remaining;
      return true;
    }
    return nowNs() < deadline;
  }
};

kj::Promise<void> slotLoop(Run& run, Issue& issue) {
  if (!run.more()) return kj::READY_NOW;
  uint64_t t0 = nowNs();
  return issue().then([&run, &issue, t0]() {
    uint64_t t1 = nowNs();
    ++run.result.allOps;
    if (t1 >= run.measureFrom && t1 <= run.deadline) {
      ++run.result.ops;
      run.result.latencies.push_back(t1 - t0);
    }
    return slotLoop(run, issue);
  });
}

// Runs every slot until `seconds` after `warmup`; or, with `count`, until `count` calls
// have been sent (then all of them are measured).
Result runLoad(kj::WaitScope& ws, kj::ArrayPtr<Issue> slots, double warmup, double seconds,
               pid_t server, uint64_t count = 0) {
  Run run;
  uint64_t start = nowNs();
  if (count > 0) {
    run.remaining = count;
    run.measureFrom = start;
    run.deadline = UINT64_MAX;
  } else {
    run.measureFrom = start + uint64_t(warmup * 1e9);
    run.deadline = run.measureFrom + uint64_t(seconds * 1e9);
  }
  run.result.latencies.reserve(count > 0 ? count : 1 << 20);
  uint64_t srv0 = processCpuNs(server), cli0 = selfCpuNs();
  auto loops = kj::heapArrayBuilder<kj::Promise<void>>(slots.size());
  for (auto& s : slots) loops.add(slotLoop(run, s));
  kj::joinPromises(loops.finish()).wait(ws);
  uint64_t end = nowNs();
  run.result.serverCpuNs = processCpuNs(server) - srv0;
  run.result.clientCpuNs = selfCpuNs() - cli0;
  run.result.seconds = (count > 0 ? end - start : run.deadline - run.measureFrom) / 1e9;
  return kj::mv(run.result);
}

// The same, for in-process work on `threads` threads (each a plain loop).
Result runThreads(unsigned threads, double warmup, double seconds, uint64_t opsPerCall,
                  kj::Function<void(unsigned thread)> setup,
                  kj::Function<void(unsigned thread)> call) {
  for (unsigned t = 0; t < threads; t++) setup(t);
  uint64_t start = nowNs();
  uint64_t from = start + uint64_t(warmup * 1e9);
  uint64_t deadline = from + uint64_t(seconds * 1e9);
  kj::Vector<std::vector<uint64_t>> lat;
  kj::Vector<uint64_t> all;
  for (unsigned t = 0; t < threads; t++) {
    lat.add();
    all.add(0);
  }
  uint64_t cli0 = selfCpuNs();
  {
    kj::Vector<kj::Own<kj::Thread>> running;
    for (unsigned t = 0; t < threads; t++) {
      running.add(kj::heap<kj::Thread>([&, t]() {
        for (;;) {
          uint64_t t0 = nowNs();
          if (t0 >= deadline) break;
          call(t);
          uint64_t t1 = nowNs();
          all[t] += opsPerCall;
          if (t1 >= from && t1 <= deadline) lat[t].push_back(t1 - t0);
        }
      }));
    }
  }
  Result r;
  r.clientCpuNs = selfCpuNs() - cli0;
  r.seconds = seconds;
  for (unsigned t = 0; t < threads; t++) {
    r.ops += lat[t].size() * opsPerCall;
    r.allOps += all[t];
    r.latencies.insert(r.latencies.end(), lat[t].begin(), lat[t].end());
  }
  return r;
}

// ---- processes ----------------------------------------------------------------------------

pid_t spawn(kj::ArrayPtr<const kj::String> argv, kj::StringPtr logPath, uid_t uid = getuid()) {
  kj::Vector<char*> args;
  for (auto& a : argv) args.add(const_cast<char*>(a.cStr()));
  args.add(nullptr);
  int logFd = open(logPath.cStr(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  KJ_SYSCALL(logFd, logPath);
  pid_t pid = fork();
  KJ_SYSCALL(pid, "fork");
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(logFd, 1);
    dup2(logFd, 2);
    // As under systemd. (Also: credvaultd 0.1.0 resolves an absolute --config path against
    // its working directory; from / that is the same path.)
    if (chdir("/") != 0) _exit(126);
    if (uid != getuid() && (setgid(uid) != 0 || setuid(uid) != 0)) _exit(125);
    execv(args[0], args.begin());
    _exit(127);
  }
  close(logFd);
  return pid;
}

kj::String readText(kj::StringPtr path) {
  int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return kj::str("(cannot read ", path, ")");
  kj::Vector<char> out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.addAll(kj::arrayPtr(buf, n));
  close(fd);
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

// Waits until `socketPath` accepts a connection, or fails with the child's log.
void waitForSocket(pid_t pid, kj::StringPtr socketPath, kj::StringPtr logPath) {
  uint64_t until = nowNs() + 30'000'000'000ull;
  for (;;) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      KJ_FAIL_REQUIRE("the server exited at start", status, readText(logPath));
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, socketPath.cStr(), sizeof(addr.sun_path) - 1);
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (ok) return;
    KJ_REQUIRE(nowNs() < until, "the server did not open its socket in 30 s", readText(logPath));
    usleep(20'000);
  }
}

void stopProcess(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
}

struct Memory {
  uint64_t vmRss = 0, rssAnon = 0, rssFile = 0, rssShmem = 0, vmHwm = 0;  // KiB
};

Memory readMemory(pid_t pid) {
  Memory m;
  auto text = readText(kj::str("/proc/", pid, "/status"));
  auto field = [&](const char* name) -> uint64_t {
    const char* p = strstr(text.cStr(), name);
    if (p == nullptr) return 0;
    return strtoull(p + strlen(name), nullptr, 10);
  };
  m.vmRss = field("VmRSS:");
  m.rssAnon = field("RssAnon:");
  m.rssFile = field("RssFile:");
  m.rssShmem = field("RssShmem:");
  m.vmHwm = field("VmHWM:");
  return m;
}

void memoryRow(kj::StringPtr when, const Memory& m) {
  printf(
      "  %-44s VmRSS %6.1f MiB  RssAnon %6.1f MiB  RssFile %6.1f MiB  RssShmem %5.1f MiB"
      "  VmHWM %6.1f MiB\n",
      when.cStr(), m.vmRss / 1024.0, m.rssAnon / 1024.0, m.rssFile / 1024.0, m.rssShmem / 1024.0,
      m.vmHwm / 1024.0);
  fflush(stdout);
}

// The last committed LMDB transaction id of the environment in `dir` (one per commit),
// read through a read-only environment of our own: the daemon's commits are counted
// without touching the daemon.
class TxnCounter {
 public:
  explicit TxnCounter(kj::StringPtr dir) {
    KJ_REQUIRE(mdb_env_create(&env_) == 0);
    int rc = mdb_env_open(env_, dir.cStr(), MDB_RDONLY | MDB_NOTLS, 0600);
    KJ_REQUIRE(rc == 0, "mdb_env_open (read-only)", mdb_strerror(rc));
  }
  ~TxnCounter() { mdb_env_close(env_); }
  KJ_DISALLOW_COPY(TxnCounter);
  uint64_t lastTxnId() {
    MDB_envinfo info;
    mdb_env_info(env_, &info);
    return info.me_last_txnid;
  }

 private:
  MDB_env* env_ = nullptr;
};

// ---- a password flood (a child process: --flood-passwords PATH, run as another uid) ---------

constexpr unsigned FLOOD_LOGINS = 400;

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

// ---- the echo server (a child process: --echo-server PATH) ----------------------------------

class EchoImpl final : public Echo::Server {
 protected:
  kj::Promise<void> echo(EchoContext context) override {
    context.getResults().setValue(context.getParams().getValue());
    return kj::READY_NOW;
  }
};

int runEchoServer(kj::StringPtr path) {
  auto io = kj::setupAsyncIo();
  unlink(path.cStr());
  auto address = io.provider->getNetwork().parseAddress(kj::str("unix:", path)).wait(io.waitScope);
  auto listener = address->listen();
  capnp::TwoPartyServer server(kj::heap<EchoImpl>());
  server.listen(*listener).wait(io.waitScope);
  return 0;
}

struct EchoConnection {
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> client;
  Echo::Client echo = nullptr;
};

// ---- helpers for the daemon's API ------------------------------------------------------------

template<typename R>
void expectOk(R& results, kj::StringPtr what) {
  if (results.hasError()) {
    auto e = results.getError();
    KJ_FAIL_REQUIRE("call failed", what, ipc::errorCodeName(e.getCode()), e.getField(),
                    e.getMessage());
  }
}

void fillCredential(rpc::Credential::Builder c, kj::StringPtr publicValue) {
  c.setPublicValue(publicValue);
  c.setSecretValue("correct-horse-battery-staple-42");
  c.setComment("benchmark credential");
  c.setIsActive(true);
}

constexpr const char* BENCH_PASSWORD = "bench-password-1";

// Where a backup streams to: counts the bytes and drops them, so the client's disk does not
// enter the figures (credvaultctl backup writes them to a file).
class CountingSink final : public rpc::ByteSink::Server {
 public:
  explicit CountingSink(uint64_t& bytes) : bytes_(bytes) {}

 protected:
  kj::Promise<void> write(WriteContext context) override {
    // Read by the Get thread of the backup section.
    __atomic_add_fetch(&bytes_, context.getParams().getData().size(), __ATOMIC_RELEASE);
    return kj::READY_NOW;
  }
  kj::Promise<void> done(DoneContext) override { return kj::READY_NOW; }

 private:
  uint64_t& bytes_;
};

struct Latencies {
  std::vector<uint64_t> ns;
  double percentileMs(double q) {
    if (ns.empty()) return 0;
    size_t i = std::min(ns.size() - 1, size_t(q * ns.size()));
    std::nth_element(ns.begin(), ns.begin() + i, ns.end());
    return ns[i] / 1e6;
  }
  double maxMs() const {
    uint64_t m = 0;
    for (auto l : ns) m = std::max(m, l);
    return m / 1e6;
  }
  size_t over(uint64_t limitNs) const {
    size_t k = 0;
    for (auto l : ns) k += l > limitNs;
    return k;
  }
};

struct Daemon {
  pid_t pid = -1;
  kj::String stateDir, socket, log;
  ~Daemon() { stopProcess(pid); }
};

// ---- the benchmark ------------------------------------------------------------------------

class Bench {
 public:
  explicit Bench(Options& options) : o(options) {}

  void run() {
    char base[PATH_MAX];
    KJ_REQUIRE(realpath(o.tmpdir.cStr(), base) != nullptr, "no such directory", o.tmpdir);
    char tmpl[PATH_MAX + 32];
    snprintf(tmpl, sizeof(tmpl), "%s/credvault-bench-XXXXXX", base);
    KJ_REQUIRE(mkdtemp(tmpl) != nullptr, "mkdtemp", strerror(errno), o.tmpdir);
    dir = kj::heapString(tmpl);
    KJ_DEFER(cleanup());

    describeMachine();
    if (o.wants("inproc")) inProcess();

    auto io = kj::setupAsyncIo();
    if (o.wants("echo")) echoBench(io);
    if (o.wants("get") || o.wants("save") || o.wants("auth") || o.wants("rss") ||
        o.wants("biglist")) {
      daemonBench(io);
    }
    if (o.wants("backup")) {
      for (auto n : o.backupCredentials) backupBench(io, n);
    }
    printf("\ndone; load average %s", readText("/proc/loadavg").cStr());
  }

 private:
  Options& o;
  kj::String dir;

  void cleanup() {
    auto fs = kj::newDiskFilesystem();
    fs->getRoot().tryRemove(kj::Path::parse(dir.slice(1)));
  }

  void describeMachine() {
    auto cpuinfo = readText("/proc/cpuinfo");
    kj::String model = kj::str("?");
    if (const char* p = strstr(cpuinfo.cStr(), "model name")) {
      p = strchr(p, ':');
      if (p != nullptr) {
        p += 2;
        const char* e = strchr(p, '\n');
        model = kj::heapString(p, e ? e - p : strlen(p));
      }
    }
    struct statfs fs;
    const char* fsType = "?";
    if (statfs(dir.cStr(), &fs) == 0) {
      switch (fs.f_type) {
        case 0xEF53:
          fsType = "ext4";
          break;
        case 0x01021994:
          fsType = "tmpfs";
          break;
        case 0x58465342:
          fsType = "xfs";
          break;
        case 0x9123683E:
          fsType = "btrfs";
          break;
        case 0x794c7630:
          fsType = "overlayfs";
          break;
        default:
          fsType = "other";
          break;
      }
    }
    printf("credvault-bench: %ld CPUs (%s); state in %s (%s)\n", sysconf(_SC_NPROCESSORS_ONLN),
           model.cStr(), dir.cStr(), fsType);
    printf(
        "measured window %.2f s after %.2f s warm-up; latencies are send-to-answer; "
        "load average %s",
        o.duration, o.warmup, readText("/proc/loadavg").cStr());
    fflush(stdout);
  }

  // -- in-process ceiling ----------------------------------------------------------------

  void inProcess() {
    auto envDir = kj::str(dir, "/inproc");
    KJ_SYSCALL(mkdir(envDir.cStr(), 0700));
    store::Environment env(envDir);
    core::VaultOptions options;
    options.passwordParams = crypto::minimalPasswordParams();
    core::Vault vault(env, crypto::Secret::random(32), kj::systemPreciseCalendarClock(), options);

    core::Principal root;
    root.kind = core::Kind::SYSTEM;
    root.method = core::AuthMethod::PEER_CREDENTIALS;
    root.name = kj::str("root");
    core::NewAssociate na;
    na.name = kj::str("bench");
    na.unixUid = 4242;
    auto associate = vault.runNow(vault.addAssociate(root, kj::mv(na)));

    core::Principal who;
    who.associateId = associate.id;
    who.name = kj::str("bench");
    who.kind = core::Kind::USER;
    who.method = core::AuthMethod::PEER_CREDENTIALS;
    who.uid = 4242;

    auto credential = [](kj::StringPtr publicValue) {
      core::Credential c;
      c.publicValue = kj::heapString(publicValue);
      c.secretValue = crypto::Secret::copyOf("correct-horse-battery-staple-42"_kj);
      c.comment = kj::str("benchmark credential");
      c.isActive = true;
      return c;
    };
    vault.runNow(vault.save(who, 0, "imap", credential("bench@example.com")));

    header("in-process ceiling (core::Vault on LMDB, no IPC)");
    for (unsigned threads : {1u, 2u}) {
      auto r = runThreads(
          threads, o.warmup, o.duration, 1, [](unsigned) {},
          [&](unsigned) {
            auto list = vault.get(who, 0, "imap");
            KJ_ASSERT(list.size() == 1);
          });
      row("Vault::get (1 record)", kj::str(threads, " thr"), r, "", false);
    }
    {
      auto r = runThreads(
          1, o.warmup, o.duration, 1, [](unsigned) {},
          [&](unsigned) {
            // What the daemon does per Get besides transport: re-check the session's associate
            // (SessionImpl::current) and read.
            KJ_ASSERT(vault.findAssociate(who.associateId) != nullptr);
            auto list = vault.get(who, 0, "imap");
            KJ_ASSERT(list.size() == 1);
          });
      row("findAssociate + Vault::get", "1 thr", r, "the daemon's per-Get vault work", false);
    }
    {
      uint64_t k = 0;
      auto r = runThreads(
          1, o.warmup, o.duration, 1, [](unsigned) {},
          [&](unsigned) {
            auto name = kj::str("inproc-", k++ % 200, "@example.com");
            vault.runNow(vault.save(who, 0, "bench-save", credential(name)));
          });
      row("Vault::save via runNow (durable)", "1 thr", r, "1 op per commit", false);
    }
    {
      uint64_t k = 0;
      auto r = runThreads(
          1, o.warmup, o.duration, 32, [](unsigned) {},
          [&](unsigned) {
            kj::Vector<core::WriteOp<bool>> ops;
            for (int i = 0; i < 32; i++) {
              auto name = kj::str("batch-", k++ % 6400, "@example.com");
              ops.add(vault.save(who, 0, "bench-save", credential(name)));
            }
            env.write([&](store::WriteTxn& txn) {
              for (auto& op : ops) {
                auto failure = txn.nested([&](store::WriteTxn& inner) { op(inner); });
                KJ_IF_MAYBE(f, failure) { kj::throwFatalException(kj::mv(*f)); }
              }
            });
          });
      row("Vault::save ×32, nested txns (durable)", "1 thr", r,
          "32 ops per commit, as group commit does; latency per commit", false);
    }

    {
      auto r = runThreads(
          1, o.warmup, o.duration, 1, [](unsigned) {},
          [&](unsigned) {
            crypto::Secret s(64);
            KJ_ASSERT(s.size() == 64);
          });
      row("crypto::Secret(64) alloc + free", "1 thr", r,
          "sodium_malloc/sodium_free; Get makes several", false);
    }

    header("Argon2id (crypto::verifyPassword, in-process, 1 thread)");
    auto password = crypto::Secret::copyOf(kj::StringPtr(BENCH_PASSWORD));
    struct Level {
      const char* name;
      crypto::PasswordParams params;
    };
    Level levels[] = {
        {"default (crypto::defaultPasswordParams)", crypto::defaultPasswordParams()},
        {"bench daemon (ops 1, mem 8 KiB)", crypto::PasswordParams{1, 8192}},
    };
    for (auto& level : levels) {
      auto hash = crypto::hashPassword(password, level.params);
      auto r = runThreads(
          1, 0, o.passwordSeconds, 1, [](unsigned) {},
          [&](unsigned) { KJ_ASSERT(crypto::verifyPassword(hash, password)); });
      row(kj::str("verify, ", level.name), "1 thr", r,
          kj::str("opslimit ", level.params.opsLimit, ", memlimit ", level.params.memLimit / 1024,
                  " KiB"),
          false);
    }
  }

  // -- transport ceiling ------------------------------------------------------------------

  struct Shape {
    unsigned connections;
    unsigned perConnection;
    kj::String label() const { return kj::str(connections, "c×", perConnection); }
  };
  static constexpr Shape SHAPES[] = {{1, 1}, {1, 8}, {1, 64}, {8, 8}};

  void echoBench(kj::AsyncIoContext& io) {
    auto socketPath = kj::str(dir, "/echo.sock");
    auto logPath = kj::str(dir, "/echo.log");
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    KJ_SYSCALL(n);
    self[n] = '\0';
    kj::String argv[] = {kj::str(self), kj::str("--echo-server"), kj::heapString(socketPath)};
    pid_t pid = spawn(argv, logPath);
    KJ_DEFER(stopProcess(pid));
    waitForSocket(pid, socketPath, logPath);

    header("bare Cap'n Proto echo over a Unix socket (transport ceiling; 8-byte Data)");
    auto& network = io.provider->getNetwork();
    for (auto& shape : SHAPES) {
      kj::Vector<kj::Own<EchoConnection>> conns;
      kj::Vector<Issue> slots;
      for (unsigned c = 0; c < shape.connections; c++) {
        auto conn = kj::heap<EchoConnection>();
        auto address = network.parseAddress(kj::str("unix:", socketPath)).wait(io.waitScope);
        conn->stream = address->connect().wait(io.waitScope);
        conn->client = kj::heap<capnp::TwoPartyClient>(*conn->stream);
        conn->echo = conn->client->bootstrap().castAs<Echo>();
        for (unsigned s = 0; s < shape.perConnection; s++) {
          slots.add([echo = conn->echo]() mutable {
            auto req = echo.echoRequest();
            static const kj::byte payload[8] = {'c', 'r', 'e', 'd', 'v', 'a', 'u', 'l'};
            req.setValue(kj::arrayPtr(payload, 8));
            return req.send().then([](capnp::Response<Echo::EchoResults>&& r) {
              KJ_ASSERT(r.getValue().size() == 8);
            });
          });
        }
        conns.add(kj::mv(conn));
      }
      auto r = runLoad(io.waitScope, slots, o.warmup, o.duration, pid);
      row("echo", shape.label(), r, shape.connections == 1 ? "pipelined on one connection" : "");
      echoOpsPerSecond[&shape - SHAPES] = r.opsPerSecond();
    }
  }
  double echoOpsPerSecond[4] = {0, 0, 0, 0};

  // -- credvaultd -----------------------------------------------------------------------------

  kj::Own<Daemon> startDaemon(kj::StringPtr stateDir, kj::StringPtr name,
                              bool cheapPasswords = true,
                              kj::ArrayPtr<const kj::StringPtr> settings = nullptr) {
    auto d = kj::heap<Daemon>();
    d->stateDir = kj::heapString(stateDir);
    d->socket = kj::str(dir, "/", name, ".sock");
    d->log = kj::str(dir, "/", name, ".log");
    auto config = kj::str(dir, "/credvaultd.conf");
    if (access(config.cStr(), F_OK) != 0) {
      int fd = open(config.cStr(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      KJ_SYSCALL(fd, config);
      close(fd);
    }
    kj::Vector<kj::String> argv;
    argv.add(kj::heapString(o.credvaultd));
    argv.add(kj::str("--config"));
    argv.add(kj::mv(config));
    argv.add(kj::str("--state-dir"));
    argv.add(kj::heapString(stateDir));
    argv.add(kj::str("--socket"));
    argv.add(kj::heapString(d->socket));
    argv.add(kj::str("--create-key"));
    if (cheapPasswords) {
      argv.add(kj::str("--set"));
      argv.add(kj::str("password_ops_limit=1"));
      argv.add(kj::str("--set"));
      argv.add(kj::str("password_mem_limit=8192"));
    }
    if (getuid() != 0) {
      argv.add(kj::str("--set"));
      argv.add(kj::str("system_uids=", getuid()));
    }
    KJ_IF_MAYBE(level, o.daemonLogLevel) {
      argv.add(kj::str("--set"));
      argv.add(kj::str("log_level=", *level));
    }
    for (auto& setting : o.daemonSettings) {
      argv.add(kj::str("--set"));
      argv.add(kj::heapString(setting));
    }
    for (auto setting : settings) {
      argv.add(kj::str("--set"));
      argv.add(kj::heapString(setting));
    }
    d->pid = spawn(argv, d->log);
    waitForSocket(d->pid, d->socket, d->log);
    return d;
  }

  struct Client {
    kj::Own<ipc::Connection> connection;
    rpc::Session::Client session = nullptr;
  };

  Client connectClient(kj::AsyncIoContext& io, Daemon& d) {
    Client c;
    c.connection = ipc::connect(io.provider->getNetwork(), d.socket).wait(io.waitScope);
    auto r = c.connection->vault().sessionRequest().send().wait(io.waitScope);
    expectOk(r, "session");
    c.session = r.getSession();
    return c;
  }

  void daemonBench(kj::AsyncIoContext& io) {
    auto& ws = io.waitScope;
    auto stateDir = kj::str(dir, "/state");
    auto daemon = startDaemon(stateDir, "credvaultd");
    auto startMemory = readMemory(daemon->pid);

    // Set up as the system user (this process's uid): an associate mapped to our uid, so
    // the sessions below act as that associate ("own credentials"), with a password.
    auto admin = connectClient(io, *daemon);
    auto adminCap = [&]() {
      auto r = admin.session.adminRequest().send().wait(ws);
      expectOk(r, "admin");
      return r.getAdmin();
    }();
    int32_t benchId;
    {
      auto req = adminCap.addAssociateRequest();
      req.setName("bench");
      req.setKind(rpc::Kind::USER);
      req.setUnixUid(getuid());
      req.setPassword(BENCH_PASSWORD);
      auto r = req.send().wait(ws);
      expectOk(r, "addAssociate");
      benchId = r.getAssociate().getAssociateId();
    }
    {
      auto user = connectClient(io, *daemon);
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

    if (o.wants("get")) getBench(io, *daemon);
    if (o.wants("save")) saveBench(io, *daemon);
    if (o.wants("auth")) authBench(io, *daemon);
    if (o.wants("biglist")) bigListBench(io, *daemon, benchId);
    if (o.wants("rss")) rssBench(io, daemon, admin, adminCap, startMemory);
  }

  // -- backup ---------------------------------------------------------------------------------

  // Builds a vault of `n` credentials in `stateDir` the way verify-bench does (in-process,
  // non-durable commits, 10,000 per associate, the per-associate maximum) with a new key in
  // STATE_DIR/master.key, plus the associate this process's uid maps to, with one credential
  // of type "small". Returns the seconds it took.
  double populate(kj::StringPtr stateDir, uint64_t n) {
    auto t0 = nowNs();
    KJ_SYSCALL(mkdir(stateDir.cStr(), 0700), stateDir);
    auto key = crypto::createKeyFile(kj::str(stateDir, "/master.key"));
    store::Options storeOptions;
    storeOptions.durable = false;
    store::Environment env(stateDir, storeOptions);
    core::VaultOptions options;
    options.passwordParams = crypto::minimalPasswordParams();
    core::Vault vault(env, kj::mv(key), kj::systemPreciseCalendarClock(), options);
    core::Principal root;
    root.name = kj::str("bench");
    root.kind = core::Kind::SYSTEM;
    root.method = core::AuthMethod::PEER_CREDENTIALS;
    auto credential = [](kj::StringPtr publicValue) {
      core::Credential c;
      c.publicValue = kj::heapString(publicValue);
      c.secretValue = crypto::Secret::copyOf("correct-horse-battery-staple-42"_kj);
      c.comment = kj::str("benchmark credential");
      c.isActive = true;
      return c;
    };
    {
      core::NewAssociate na;
      na.name = kj::str("getter");
      na.unixUid = getuid();
      auto id = vault.runNow(vault.addAssociate(root, kj::mv(na))).id;
      env.write([&](store::WriteTxn& txn) {
        vault.save(root, id, "small", credential("getter@example.com"))(txn);
      });
    }
    uint64_t made = 0;
    for (int32_t a = 0; made < n; a++) {
      core::NewAssociate na;
      na.name = kj::str("bulk-", a);
      na.unixUid = 200000 + a;
      auto id = vault.runNow(vault.addAssociate(root, kj::mv(na))).id;
      uint64_t here = kj::min(n - made, uint64_t(core::MAX_CREDENTIALS_PER_ASSOCIATE));
      env.write([&](store::WriteTxn& txn) {
        for (uint64_t i = 0; i < here; ++i) {
          vault.save(root, id, "imap",
                     credential(kj::str("user", i, "@mail", a, ".example.org")))(txn);
        }
      });
      made += here;
    }
    return (nowNs() - t0) / 1e9;
  }

  // A simple Get (one credential of type "small") looping on one connection, first alone,
  // then while backups of the whole vault run back to back on another connection for at
  // least --duration seconds. The backup's sink is in this process and drops the bytes.
  void backupBench(kj::AsyncIoContext& io, uint64_t n) {
    auto& ws = io.waitScope;
    auto stateDir = kj::str(dir, "/backup-", n);
    double built = populate(stateDir, n);
    struct stat st;
    KJ_SYSCALL(stat(kj::str(stateDir, "/data.mdb").cStr(), &st));
    // The vault was just written and verified by construction; verification at start would
    // only add seconds to each run.
    kj::StringPtr settings[] = {"verify_on_start=false"};
    auto daemon = startDaemon(stateDir, kj::str("credvaultd-backup-", n), true, settings);
    auto admin = connectClient(io, *daemon);
    auto adminCap = [&]() {
      auto r = admin.session.adminRequest().send().wait(ws);
      expectOk(r, "admin");
      return r.getAdmin();
    }();
    printf(
        "\nbackup (Admin.backupTo into a discarding sink) of %llu credentials, data.mdb %.1f "
        "MiB (built in %.1f s), and a simple Get on another connection and thread\n",
        (unsigned long long)n, st.st_size / 1048576.0, built);
    printf("  %-34s %8s %9s %9s %9s %8s  %s\n", "Get (1 record, 1c×1)", "Gets", "p50 ms", "p99 ms",
           "max ms", ">10 ms", "notes");
    fflush(stdout);

    // Shared with the Get thread (__atomic: <atomic> cannot be included everywhere here).
    // measuring: 0 warm-up, 1 counting "without a backup", 2 after that; stop ends the loop.
    int measuring = 0;
    bool stop = false, backingUp = false;
    uint64_t sunk = 0, bytes = 0;
    Latencies alone, during, spooling, streaming;
    // The Gets run on a thread of their own with its own event loop and connection, so the
    // sink's work in this process (taking ~300 MiB at 1M credentials) cannot delay their
    // answers; what they see is the daemon (and the machine's other load).
    auto getter = kj::heap<kj::Thread>([&]() {
      auto gio = kj::setupAsyncIo();
      auto conn = ipc::connect(gio.provider->getNetwork(), daemon->socket).wait(gio.waitScope);
      auto sr = conn->vault().sessionRequest().send().wait(gio.waitScope);
      expectOk(sr, "session");
      auto session = sr.getSession();
      while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        uint64_t t0 = nowNs();
        bool wasBackingUp = __atomic_load_n(&backingUp, __ATOMIC_ACQUIRE);
        auto req = session.getRequest();
        req.setType("small");
        auto r = req.send().wait(gio.waitScope);
        uint64_t took = nowNs() - t0;
        expectOk(r, "get");
        KJ_ASSERT(r.getCredentials().size() == 1);
        bool isBackingUp = __atomic_load_n(&backingUp, __ATOMIC_ACQUIRE);
        // A Get counts as "during" when any part of it overlapped a backup; and by the part
        // of the backup it ended in: the daemon writing the snapshot to its spool on a pool
        // thread (nothing has reached the sink yet), or the spool streamed from the event loop.
        if (wasBackingUp || isBackingUp) {
          during.ns.push_back(took);
          bool spoolPhase = isBackingUp && __atomic_load_n(&sunk, __ATOMIC_ACQUIRE) == 0;
          (spoolPhase ? spooling : streaming).ns.push_back(took);
        } else if (__atomic_load_n(&measuring, __ATOMIC_ACQUIRE) == 1) {
          alone.ns.push_back(took);
        }
      }
    });

    // Without a backup.
    usleep(useconds_t(o.warmup * 1e6));
    __atomic_store_n(&measuring, 1, __ATOMIC_RELEASE);
    usleep(useconds_t(o.duration * 1e6));
    __atomic_store_n(&measuring, 2, __ATOMIC_RELEASE);

    // With backups back to back until --duration has passed (at least one).
    Latencies backups;
    uint64_t until = nowNs() + uint64_t(o.duration * 1e9);
    kj::Function<kj::Promise<void>()> backupLoop = [&]() -> kj::Promise<void> {
      __atomic_store_n(&sunk, 0, __ATOMIC_RELEASE);
      auto req = adminCap.backupToRequest();
      req.setSink(kj::heap<CountingSink>(sunk));
      uint64_t t0 = nowNs();
      __atomic_store_n(&backingUp, true, __ATOMIC_RELEASE);
      return req.send().then([&, t0](auto r) -> kj::Promise<void> {
        expectOk(r, "backupTo");
        backups.ns.push_back(nowNs() - t0);
        bytes = r.getBytes();
        KJ_REQUIRE(bytes == sunk && bytes > 0, "the sink did not get the backup", bytes, sunk);
        if (nowNs() < until) return backupLoop();
        __atomic_store_n(&backingUp, false, __ATOMIC_RELEASE);
        return kj::READY_NOW;
      });
    };
    uint64_t srv0 = processCpuNs(daemon->pid);
    backupLoop().wait(ws);
    uint64_t srvNs = processCpuNs(daemon->pid) - srv0;
    __atomic_store_n(&stop, true, __ATOMIC_RELEASE);
    getter = nullptr;  // joins

    auto line = [&](kj::StringPtr what, Latencies& l, kj::StringPtr notes) {
      printf("  %-34s %8zu %9.2f %9.2f %9.2f %8zu  %s\n", what.cStr(), l.ns.size(),
             l.percentileMs(0.5), l.percentileMs(0.99), l.maxMs(), l.over(10'000'000),
             notes.cStr());
    };
    line("without a backup", alone, "");
    line("during backups", during, kj::str(backups.ns.size(), " backups back to back"));
    line("  of which while spooling", spooling, "snapshot written on a pool thread");
    line("  of which while streaming", streaming, "spool sent in 64 KiB chunks");
    double total = 0;
    for (auto b : backups.ns) total += b / 1e9;
    printf(
        "  backup: %zu run(s), %.1f MiB each (%llu bytes), %.2f s mean, %.2f s max (%.0f MiB/s); "
        "daemon CPU %.2f s over them\n",
        backups.ns.size(), bytes / 1048576.0, (unsigned long long)bytes, total / backups.ns.size(),
        backups.maxMs() / 1000, bytes / 1048576.0 * backups.ns.size() / total, srvNs / 1e9);
    fflush(stdout);
    stopProcess(daemon->pid);
    daemon->pid = -1;
    auto fs = kj::newDiskFilesystem();
    fs->getRoot().tryRemove(kj::Path::parse(stateDir.slice(1)));
  }

  // Fair share: a simple Get's rate and p99 while another connection loops Gets of a type
  // with 10,000 entries (the per-associate limit), each ~14 ms of decryption.
  void bigListBench(kj::AsyncIoContext& io, Daemon& d, int32_t benchId) {
    auto& ws = io.waitScope;
    constexpr unsigned BIG = 9990;  // the associate already has one "imap" entry
    {
      auto loader = connectClient(io, d);
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
    header(kj::str("fair share: a simple Get while another connection loops Gets of ", BIG,
                   " entries"));
    auto measure = [&](kj::StringPtr what, unsigned inFlight, bool loaded) {
      auto hog = connectClient(io, d);
      auto victim = connectClient(io, d);
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
      auto r = runLoad(ws, slots, o.warmup, o.duration, d.pid);
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

  void getBench(kj::AsyncIoContext& io, Daemon& d) {
    header("credvaultd Get over IPC (own credentials, 1 record of type \"imap\")");
    for (auto& shape : SHAPES) {
      kj::Vector<Client> clients;
      kj::Vector<Issue> slots;
      for (unsigned c = 0; c < shape.connections; c++) {
        clients.add(connectClient(io, d));
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
      auto r = runLoad(io.waitScope, slots, o.warmup, o.duration, d.pid);
      double echo = echoOpsPerSecond[&shape - SHAPES];
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

  void saveBench(kj::AsyncIoContext& io, Daemon& d) {
    header(
        "credvaultd durable Save over IPC (upserts of own credentials; 1 call in flight "
        "per client, one connection per client)");
    TxnCounter txns(d.stateDir);
    for (unsigned clientsCount : {1u, 32u}) {
      kj::Vector<Client> clients;
      kj::Vector<Issue> slots;
      for (unsigned c = 0; c < clientsCount; c++) {
        clients.add(connectClient(io, d));
        slots.add([session = clients.back().session, c, k = uint32_t(0)]() mutable {
          auto req = session.saveRequest();
          req.setType("bench-save");
          fillCredential(req.initCredential(),
                         kj::str("client", c, "-", k++ % 200, "@example.com"));
          return req.send().then(
              [](capnp::Response<rpc::Session::SaveResults>&& r) { expectOk(r, "save"); });
        });
      }
      uint64_t before = txns.lastTxnId();
      auto r = runLoad(io.waitScope, slots, o.warmup, o.duration, d.pid);
      uint64_t commits = txns.lastTxnId() - before;
      char buf[128];
      snprintf(buf, sizeof(buf), "%llu commits for %llu saves: %.1f saves per commit",
               (unsigned long long)commits, (unsigned long long)r.allOps,
               commits ? double(r.allOps) / commits : 0.0);
      row("Save", kj::str(clientsCount, "c×1"), r, buf);
    }
  }

  void authBench(kj::AsyncIoContext& io, Daemon& d) {
    auto& ws = io.waitScope;
    header(
        "credvaultd authentication over IPC (daemon configured with Argon2id ops 1, mem "
        "8 KiB)");
    auto client = connectClient(io, d);
    auto vault = client.connection->vault();
    // Password: one call per authentication; a failure means the feature changed shape.
    {
      auto probe = vault.authenticatePasswordRequest();
      probe.setName("bench");
      probe.setPassword(BENCH_PASSWORD);
      auto pr = probe.send().wait(ws);
      if (pr.hasError()) {
        note(kj::str("authenticatePassword: n/a (", ipc::errorCodeName(pr.getError().getCode()),
                     ": ", pr.getError().getMessage(), ")"));
      } else {
        for (auto& shape : {Shape{1, 1}, Shape{1, 64}}) {
          kj::Vector<Issue> slots;
          for (unsigned i = 0; i < shape.perConnection; i++) {
            slots.add([vault]() mutable {
              auto req = vault.authenticatePasswordRequest();
              req.setName("bench");
              req.setPassword(BENCH_PASSWORD);
              return req.send().then(
                  [](capnp::Response<rpc::Vault::AuthenticatePasswordResults>&& r) {
                    expectOk(r, "authenticatePassword");
                  });
            });
          }
          auto r = runLoad(ws, slots, o.warmup, o.duration, d.pid);
          row("authenticatePassword, same password", shape.label(), r,
              "verification-cache hits (Basic at HTTP speed)");
        }
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
      ticketBench(io, d, vault, ticket);
    }
    defaultParamsBench(io);
  }

  void ticketBench(kj::AsyncIoContext& io, Daemon& d, rpc::Vault::Client vault,
                   kj::StringPtr ticket) {
    auto& ws = io.waitScope;
    for (auto& shape : {Shape{1, 1}, Shape{1, 64}}) {
      kj::Vector<Issue> slots;
      for (unsigned s = 0; s < shape.perConnection; s++) {
        slots.add([vault, ticket]() mutable {
          auto req = vault.authenticateTicketRequest();
          req.setTicket(ticket);
          return req.send().then([](capnp::Response<rpc::Vault::AuthenticateTicketResults>&& r) {
            expectOk(r, "authenticateTicket");
          });
        });
      }
      auto r = runLoad(ws, slots, o.warmup, o.duration, d.pid);
      row("authenticateTicket", shape.label(), r, "ticket validation per call");
    }
    for (auto& shape : {Shape{1, 1}, Shape{1, 64}}) {
      kj::Vector<Issue> slots;
      for (unsigned s = 0; s < shape.perConnection; s++) {
        slots.add([vault, ticket]() mutable {
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
        });
      }
      auto r = runLoad(ws, slots, o.warmup, o.duration, d.pid);
      row("authenticateTicket + Get (pipelined)", shape.label(), r,
          "a gateway request authenticated by ticket");
    }
  }

  // A second daemon at the default Argon2id parameters: what a first login (a cache miss)
  // costs over IPC, what repeated logins cost, and what a miss does to other connections
  // (the daemon verifies on its event-loop thread).
  void defaultParamsBench(kj::AsyncIoContext& io) {
    auto& ws = io.waitScope;
    auto d = startDaemon(kj::str(dir, "/state-default-params"), "credvaultd-default-params", false);
    header(
        "credvaultd authentication at the default Argon2id parameters "
        "(crypto::defaultPasswordParams)");
    auto root = connectClient(io, *d);
    auto adminCap = [&]() {
      auto r = root.session.adminRequest().send().wait(ws);
      expectOk(r, "admin");
      return r.getAdmin();
    }();
    // login-0: the first login after start; login-1..3: cache misses; login-4..6: misses
    // while another connection reads.
    constexpr int LOGINS = 8;  // the last one during the flood
    kj::Vector<int32_t> ids;
    for (int i = 0; i < LOGINS; i++) {
      auto req = adminCap.addAssociateRequest();
      req.setName(kj::str("login-", i));
      req.setKind(rpc::Kind::USER);
      req.setUnixUid(-1);
      req.setPassword(BENCH_PASSWORD);
      auto r = req.send().wait(ws);
      expectOk(r, "addAssociate");
      ids.add(r.getAssociate().getAssociateId());
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
      auto other = connectClient(io, *d);
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
      char self[4096];
      ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
      KJ_SYSCALL(n);
      self[n] = '\0';
      auto floodLog = kj::str(dir, "/flood.log");
      kj::String argv[] = {kj::str(self), kj::str("--flood-passwords"), kj::heapString(d->socket)};
      // The other uid reaches the socket through our directory (its files stay private).
      KJ_SYSCALL(chmod(dir.cStr(), 0711));
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

  void rssBench(kj::AsyncIoContext& io, kj::Own<Daemon>& daemon, Client& admin,
                rpc::Admin::Client& adminCap, const Memory& startMemory) {
    auto& ws = io.waitScope;
    printf(
        "\ncredvaultd resident memory (/proc/PID/status; the target counts RssAnon: "
        "mapped LMDB pages are RssFile)\n");
    memoryRow("after start (empty vault)", startMemory);
    memoryRow("after the Get/Save/auth runs above", readMemory(daemon->pid));

    // Spread over associates (10,000 per associate at most): 20 associates × 10 types.
    constexpr uint32_t ASSOCIATES = 20;
    uint32_t total = o.rssCredentials;
    KJ_REQUIRE(total <= ASSOCIATES * 9000, "--rss-credentials is too large", total);
    kj::Vector<int32_t> ids;
    for (uint32_t a = 0; a < ASSOCIATES; a++) {
      auto req = adminCap.addAssociateRequest();
      req.setName(kj::str("rss-", a));
      req.setKind(rpc::Kind::USER);
      req.setUnixUid(-1);
      auto r = req.send().wait(ws);
      expectOk(r, "addAssociate");
      ids.add(r.getAssociate().getAssociateId());
    }
    uint64_t countBefore = status(ws, admin).getCredentials();
    uint32_t next = 0;
    kj::Vector<Client> clients;
    kj::Vector<Issue> slots;
    for (unsigned c = 0; c < 4; c++) {
      clients.add(connectClient(io, *daemon));
      for (unsigned s = 0; s < 32; s++) {
        slots.add([session = clients.back().session, &next, &ids]() mutable {
          uint32_t n = next++;
          uint32_t a = n % ASSOCIATES, k = n / ASSOCIATES;
          auto req = session.saveRequest();
          req.setAssociateId(ids[a]);
          req.setType(kj::str("t", k % 10));
          auto c = req.initCredential();
          fillCredential(c, kj::str("user", k, "@mail", a, ".example.org"));
          return req.send().then([](capnp::Response<rpc::Session::SaveResults>&& r) {
            expectOk(r, "saveForAssociate");
          });
        });
      }
    }
    auto r = runLoad(ws, slots, 0, 0, daemon->pid, total);
    clients.clear();
    auto st = status(ws, admin);
    KJ_REQUIRE(st.getCredentials() == countBefore + total, st.getCredentials(), countBefore);
    char buf[160];
    snprintf(buf, sizeof(buf),
             "stored %u credentials in %.1f s (4c×32 saveForAssociate), "
             "%llu in the vault, database %.1f MiB used",
             total, r.seconds, (unsigned long long)st.getCredentials(),
             st.getUsedBytes() / 1048576.0);
    note(buf);
    memoryRow(kj::str("after storing ", total), readMemory(daemon->pid));

    // A fresh daemon on the same state: what it holds with 100k stored, then after reading
    // every record once (each Get of one associate's type returns its records).
    adminCap = nullptr;
    admin = Client();
    stopProcess(daemon->pid);
    daemon->pid = -1;
    daemon = startDaemon(daemon->stateDir, "credvaultd-restarted");
    auto root = connectClient(io, *daemon);
    memoryRow(kj::str("restarted with ", status(ws, root).getCredentials(), " stored"),
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

  capnp::Response<rpc::Vault::StatusResults> statusResponse(kj::WaitScope& ws, Client& c) {
    auto r = c.connection->vault().statusRequest().send().wait(ws);
    expectOk(r, "status");
    return r;
  }
  struct StatusHolder {
    capnp::Response<rpc::Vault::StatusResults> response;
    uint64_t getCredentials() { return response.getStatus().getCredentials(); }
    uint64_t getUsedBytes() { return response.getStatus().getUsedBytes(); }
  };
  StatusHolder status(kj::WaitScope& ws, Client& c) { return {statusResponse(ws, c)}; }
};

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
  static kj::Maybe<double> number(kj::StringPtr v) {
    char* end;
    double d = strtod(v.cStr(), &end);
    if (end == v.cStr() || *end != '\0' || d < 0) return nullptr;
    return d;
  }
  kj::MainBuilder::Validity setDuration(kj::StringPtr v) {
    KJ_IF_MAYBE(d, number(v)) {
      if (*d > 0) {
        o.duration = *d;
        return true;
      }
    }
    return "expected a positive number of seconds";
  }
  kj::MainBuilder::Validity setWarmup(kj::StringPtr v) {
    KJ_IF_MAYBE(d, number(v)) {
      o.warmup = *d;
      return true;
    }
    return "expected a number of seconds";
  }
  kj::MainBuilder::Validity setPasswordSeconds(kj::StringPtr v) {
    KJ_IF_MAYBE(d, number(v)) {
      if (*d > 0) {
        o.passwordSeconds = *d;
        return true;
      }
    }
    return "expected a positive number of seconds";
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
  kj::MainBuilder::Validity setOnly(kj::StringPtr v) {
    size_t start = 0;
    for (size_t i = 0; i <= v.size(); i++) {
      if (i == v.size() || v[i] == ',') {
        if (i > start) o.only.add(kj::heapString(v.slice(start, i)));
        start = i + 1;
      }
    }
    for (auto& s : o.only) {
      if (s != "inproc" && s != "echo" && s != "get" && s != "save" && s != "auth" && s != "rss" &&
          s != "biglist" && s != "backup") {
        return "sections are inproc, echo, get, save, auth, rss, biglist, backup";
      }
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
    Bench(o).run();
    return true;
  }
};

}  // namespace
}  // namespace credvault::bench

KJ_MAIN(credvault::bench::Main)
