// Integration tests for the daemon's per-connection transport budget (docs/limits.md,
// "Transport"): the real credvaultd with short timeouts, attacked from real uids in forked
// children, its memory read from /proc/PID/status. Half-sent messages from 64 connections and
// 60 pipelined, unread large answers must each grow the daemon by at most 128 MiB while a
// client of another uid is still served; half-sent connections are closed. (The transport
// limit at its bound and the idle timeout need no real process or uid: they are tested through
// the in-process listener, tests/daemon/listener-test.c++.)
// Prints the figures (RSS growth, the other client's p50/p99) for docs/performance.md.

#include "harness.h"
#include "tests/support/eventually.h"
#include "core/limits.h"
#include "ipc/credvault.capnp.h"

#include <capnp/message.h>
#include <gtest/gtest.h>
#include <kj/debug.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

namespace credvault::integration {
namespace {

constexpr uid_t ALICE_UID = 60101;
constexpr uid_t STRANGER_UID = 60103;  // maps to no associate
constexpr size_t MIB = 1 << 20;
constexpr size_t RSS_BUDGET = 128 * MIB;
constexpr int MESSAGE_TIMEOUT_MS = 1000;
constexpr int IDLE_TIMEOUT_MS = 2000;  // kept as before for the tests here
constexpr int WRITE_TIMEOUT_MS = 2000;

// The daemon's resident set, in bytes.
std::string daemonLog();

// Whether the suite's daemon holds Alice's bulk credentials (reset with each new daemon, so
// that --gtest_repeat runs store them again).
bool bulkStored = false;

size_t rssOf(pid_t pid) {
  auto status = readFile("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("VmRSS:");
  KJ_REQUIRE(at != std::string::npos, "no VmRSS");
  return std::stoull(status.substr(at + 6)) * 1024;
}

// The RSS budget for `pid`'s growth. Under AddressSanitizer freed memory stays resident in its
// quarantine (256 MiB by default): the 64-connection attack grew such a daemon by 122 MiB of
// the 128 on a quiet host. Without the per-uid answer budget a daemon grows by 600 MiB or more,
// past either figure.
size_t rssBudgetOf(pid_t pid) {
  bool sanitized =
      readFile("/proc/" + std::to_string(pid) + "/maps").find("libasan") != std::string::npos;
  return RSS_BUDGET + (sanitized ? 256 * MIB : 0);
}

int connectRaw(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  KJ_REQUIRE(fd >= 0, strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  KJ_REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0, strerror(errno));
  return fd;
}

void writeAll(int fd, const kj::byte* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    KJ_REQUIRE(w > 0, "write", strerror(errno));
    p += w;
    n -= w;
  }
}

// Whether the daemon closed `fd` within `ms` (EOF or reset; answers are read and dropped).
bool closedWithin(int fd, int ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  char buffer[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    until - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) return true;
  }
}

// Runs `body` in a forked child as `uid`; returns its pid. The child writes its outcome to
// `resultFd` and exits.
pid_t forkAs(uid_t uid, std::function<std::string()> body, int resultFd) {
  pid_t pid = fork();
  KJ_REQUIRE(pid >= 0, strerror(errno));
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 ||
        setresuid(uid, uid, uid) != 0) {
      _exit(126);
    }
    std::string result;
    std::thread t([&]() {
      try {
        result = body();
      } catch (const kj::Exception& e) {
        result = std::string("EXCEPTION: ") + e.getDescription().cStr();
      }
    });
    t.join();
    ssize_t n = write(resultFd, result.data(), result.size());
    _exit(n == ssize_t(result.size()) ? 0 : 1);
  }
  return pid;
}

std::string collect(pid_t pid, int fds[2]) {
  close(fds[1]);
  std::string out;
  char buffer[1024];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof(buffer))) > 0) out.append(buffer, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return out;
}

struct Latency {
  std::vector<double> micros;
  double percentile(double p) {
    if (micros.empty()) return -1;
    std::sort(micros.begin(), micros.end());
    return micros[std::min(micros.size() - 1, size_t(p * micros.size()))];
  }
};

class Isolation : public ::testing::Test {
 public:
  static const std::vector<std::string>& logFiles() { return daemon->logFiles(); }

 protected:
  static TempDir* dir;
  static Daemon* daemon;
  static int32_t alice;

  static void SetUpTestSuite() {
    bulkStored = false;
    dir = new TempDir;
    daemon = new Daemon(dir->path());
    daemon->addSetting("message_timeout=" + std::to_string(MESSAGE_TIMEOUT_MS) + "ms");
    daemon->addSetting("idle_timeout=" + std::to_string(IDLE_TIMEOUT_MS) + "ms");
    daemon->addSetting("write_timeout=" + std::to_string(WRITE_TIMEOUT_MS) + "ms");
    daemon->addSetting("log_level=info");
    daemon->start();
    auto r =
        ctl(0, daemon->socket(), {"associate", "add", "alice", "--uid", std::to_string(ALICE_UID)});
    KJ_REQUIRE(r.exitCode == 0, r.err);
    // Alice's id, from the listing (credvaultctl prints it).
    auto who = withClientAs(ALICE_UID, daemon->socket(), [](ipc::Connection& c, kj::WaitScope& ws) {
      auto r = c.vault().whoamiRequest().send().wait(ws);
      return std::to_string(r.getPrincipal().getAssociateId());
    });
    KJ_REQUIRE(!who.empty() && isdigit(who[0]), who);
    alice = std::stoi(who);
  }
  static void TearDownTestSuite() {
    if (daemon->running()) daemon->stop();
    delete daemon;
    delete dir;
  }

  void SetUp() override {
    if (!daemon->running()) daemon->start();
    io = std::make_unique<kj::AsyncIoContext>(kj::setupAsyncIo());
  }
  void TearDown() override { io = nullptr; }

  std::unique_ptr<kj::AsyncIoContext> io;
  kj::WaitScope& ws() { return io->waitScope; }
  kj::Own<ipc::Connection> connect() {
    return ipc::connect(io->provider->getNetwork(), daemon->socket().c_str()).wait(ws());
  }

  // One round of the attack; `fair` tells whether the other client's p99 met the bound, which
  // is asserted only in the `lastRound` (see unreadAnswersInRounds).
  void unreadAnswers(int connections, int gets, bool lastRound, bool& fair);
  void unreadAnswersInRounds(int connections, int gets);

  // Whoami round trips from root (another uid than the attacker's) for `ms`; also samples the
  // daemon's RSS, keeping the highest.
  Latency serveWhile(int ms, size_t& peakRss) {
    Latency l;
    auto conn = connect();
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      auto t0 = std::chrono::steady_clock::now();
      auto r = conn->vault().whoamiRequest().send().wait(ws());
      EXPECT_FALSE(r.hasError());
      auto t1 = std::chrono::steady_clock::now();
      l.micros.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      peakRss = std::max(peakRss, rssOf(daemon->pid()));
      usleep(2000);
    }
    return l;
  }
};

// Every start's log (the harness lists the audit file after the first start's log).
std::string daemonLog() {
  std::string all;
  for (auto& f : Isolation::logFiles()) all += readFile(f);
  return all;
}

TempDir* Isolation::dir = nullptr;
Daemon* Isolation::daemon = nullptr;
int32_t Isolation::alice = 0;

TEST_F(Isolation, HalfSentMessagesCostLittleAndTheirConnectionsAreClosed) {
  constexpr int CONNECTIONS = 64;
  size_t before = rssOf(daemon->pid());
  int ready[2], result[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(result), 0);
  auto socketPath = daemon->socket();
  pid_t child = forkAs(
      STRANGER_UID,
      [&]() -> std::string {
        // Each connection declares the largest message the daemon reads and withholds 8 bytes.
        std::vector<int> fds;
        size_t words = core::MAX_TRANSPORT_MESSAGE_BYTES / 8;
        auto frame = kj::heapArray<kj::byte>(8 + words * 8);
        memset(frame.begin(), 0, frame.size());
        uint32_t header[2] = {0, uint32_t(words)};
        memcpy(frame.begin(), header, 8);
        for (int i = 0; i < CONNECTIONS; i++) {
          int fd = connectRaw(socketPath);
          writeAll(fd, frame.begin(), frame.size() - 8);
          fds.push_back(fd);
        }
        char go = 'x';
        (void)write(ready[1], &go, 1);
        // Each is closed MESSAGE_TIMEOUT_MS after its last byte; the deadline, shared by all,
        // only bounds a failing run (a loaded host can be seconds late; a pass is not slower).
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        int closed = 0;
        for (int fd : fds) {
          auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
              until - std::chrono::steady_clock::now());
          closed += closedWithin(fd, std::max<int>(1, left.count())) ? 1 : 0;
        }
        return std::to_string(closed);
      },
      result[1]);
  close(ready[1]);
  char go;
  ASSERT_EQ(read(ready[0], &go, 1), 1);
  close(ready[0]);
  size_t peak = rssOf(daemon->pid());
  auto latency = serveWhile(MESSAGE_TIMEOUT_MS / 2, peak);
  auto closed = collect(child, result);
  EXPECT_EQ(closed, std::to_string(CONNECTIONS));
  size_t growth = peak > before ? peak - before : 0;
  EXPECT_LE(growth, rssBudgetOf(daemon->pid()));
  printf(
      "[isolation] half-sent x%d: RSS %.1f -> %.1f MiB (+%.1f); other client p50 %.0f us, "
      "p99 %.0f us\n",
      CONNECTIONS, before / double(MIB), peak / double(MIB), growth / double(MIB),
      latency.percentile(0.5), latency.percentile(0.99));
  EXPECT_TRUE(contains(daemonLog(), "message-timeout"));
}

constexpr int CREDENTIALS = 1000;

// Alice's 1,000 credentials with 8 KiB secrets (once per daemon): each Get answers about 7.9 MiB.
void storeBulk(kj::Own<ipc::Connection> conn, int32_t alice, kj::WaitScope& ws) {
  if (bulkStored) return;
  bulkStored = true;
  auto s = conn->vault().sessionRequest().send().wait(ws).getSession();
  std::string secret(core::MAX_SECRET_BYTES, 's');
  kj::Vector<kj::Promise<void>> saves;
  for (int i = 0; i < CREDENTIALS; i++) {
    auto req = s.saveRequest();
    req.setAssociateId(alice);
    req.setType("bulk");
    auto c = req.initCredential();
    c.setPublicValue(("user" + std::to_string(i) + "@example.test").c_str());
    c.setSecretValue(secret.c_str());
    c.setIsActive(true);
    saves.add(req.send().then([](auto r) { KJ_REQUIRE(!r.hasError()); }));
  }
  kj::joinPromises(saves.releaseAsArray()).wait(ws);
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// Alice opens `connections` connections, pipelines `gets` Gets of her 1,000 credentials on
// each and reads nothing; meanwhile root is served. Checks the RSS budget and the write
// timeout, measures the other client's latency, and prints the figures.
void Isolation::unreadAnswers(int connections, int gets, bool lastRound, bool& fair) {
  fair = false;
  storeBulk(connect(), alice, ws());
  size_t closedBefore = count(daemonLog(), "RESULT=write-timeout");
  // Before the legitimate Get below: its own answer counts against the budget too.
  size_t before = rssOf(daemon->pid());
  double getMicros = 0;  // one long Get, alone: how fast this host is right now
  {
    // An answer far past the request limit goes out (capnp's send limit is the answer limit).
    auto conn = connect();
    auto s = conn->vault().sessionRequest().send().wait(ws()).getSession();
    auto req = s.getRequest();
    req.setAssociateId(alice);
    req.setType("bulk");
    auto t0 = std::chrono::steady_clock::now();
    auto r = req.send().wait(ws());
    getMicros =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_FALSE(r.hasError());
    EXPECT_EQ(r.getCredentials().size(), size_t(CREDENTIALS));
    EXPECT_GT(r.totalSize().wordCount * 8, 7 * MIB);
  }
  int ready[2], release[2], result[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(release), 0);
  ASSERT_EQ(pipe(result), 0);
  auto socketPath = daemon->socket();
  pid_t child = forkAs(
      ALICE_UID,
      [&]() -> std::string {
        auto io = kj::setupAsyncIo();
        // Every connection and session first, then every Get at once.
        kj::Vector<kj::Own<ipc::Connection>> conns;
        kj::Vector<rpc::Session::Client> sessions;
        for (int c = 0; c < connections; c++) {
          conns.add(ipc::connect(io.provider->getNetwork(), socketPath.c_str()).wait(io.waitScope));
          sessions.add(
              conns.back()->vault().sessionRequest().send().wait(io.waitScope).getSession());
        }
        kj::Vector<kj::Promise<void>> pending;
        for (auto& s : sessions) {
          for (int i = 0; i < gets; i++) {
            auto req = s.getRequest();
            req.setType("bulk");
            pending.add(req.send().ignoreResult().catch_([](kj::Exception&&) {}));
          }
        }
        // Long enough for the requests to go out; then read nothing more.
        io.provider->getTimer().afterDelay(100 * kj::MILLISECONDS).wait(io.waitScope);
        char go = 'x';
        (void)write(ready[1], &go, 1);
        // Holds the connections, reading nothing (a blocking read: the event loop does not
        // run), until the parent has seen the write timeout close one.
        close(release[1]);
        (void)read(release[0], &go, 1);
        return "done";
      },
      result[1]);
  close(ready[1]);
  close(release[0]);
  char go;
  ASSERT_EQ(read(ready[0], &go, 1), 1);
  close(ready[0]);
  size_t peak = rssOf(daemon->pid());
  auto latency = serveWhile(WRITE_TIMEOUT_MS + 500, peak);
  // The write timeout closes an unread connection WRITE_TIMEOUT_MS after its answer stalls;
  // on a loaded host the daemon may get there seconds later: waited for, 30 s at most.
  support::eventually([&]() { return count(daemonLog(), "RESULT=write-timeout") > closedBefore; },
                      std::chrono::milliseconds(20));
  close(release[1]);  // the child returns and exits, closing the rest
  EXPECT_EQ(collect(child, result), "done");
  size_t growth = peak > before ? peak - before : 0;
  EXPECT_LE(growth, rssBudgetOf(daemon->pid()));
  // Served, not starved: 100 ms, or on a host too loaded for that (a descheduled daemon or
  // test stalls a call for tens of ms or more) eight times the long Get measured alone in this
  // round. A daemon that makes root wait behind the attacker's answers stays far above
  // either: with long Gets opened on the event loop (INLINE_GET_LIMIT raised past 1,000) the
  // 64-connection attack held root's one call 2.7 s against a bound of 255 ms (8 x 32 ms).
  double bound = std::max(100000.0, 8 * getMicros);
  fair = latency.percentile(0.99) < bound;
  if (lastRound) {
    EXPECT_LT(latency.percentile(0.99), bound) << "one long Get alone took " << getMicros << " us";
  } else if (!fair) {
    printf("[isolation] p99 %.0f us over the bound %.0f us: measured again\n",
           latency.percentile(0.99), bound);
  }
  size_t closed = count(daemonLog(), "RESULT=write-timeout") - closedBefore;
  printf(
      "[isolation] %d connection(s) x %d unread Gets of %d x 8 KiB: RSS %.1f -> %.1f MiB "
      "(+%.1f); other client p50 %.0f us, p99 %.0f us, %zu calls; %zu closed by the write "
      "timeout; one long Get alone %.0f us\n",
      connections, gets, CREDENTIALS, before / double(MIB), peak / double(MIB),
      growth / double(MIB), latency.percentile(0.5), latency.percentile(0.99),
      latency.micros.size(), closed, getMicros);
  EXPECT_GE(closed, 1u);
}

// The latency bound is a fairness measurement that a loaded host can spoil for a whole round
// (the test and daemon descheduled for seconds): best of 3 rounds, each asserting the RSS
// budget and the write timeout. A daemon that starves the other client fails every round.
void Isolation::unreadAnswersInRounds(int connections, int gets) {
  for (int round = 1; round <= 3; ++round) {
    bool fair = false;
    unreadAnswers(connections, gets, round == 3, fair);
    if (fair || HasFailure()) return;
  }
}

TEST_F(Isolation, UnreadAnswersAreCappedAndTheOtherClientIsServed) {
  unreadAnswersInRounds(1, 60);
}

// One uid's 64 connections, each with two long Gets it never reads: the per-uid answer budget
// (MAX_ANSWER_BYTES_PER_UID, counting unsent answers and long Gets from admission until their
// answer is handed to capnp, on all of the uid's connections) holds the daemon's growth to the
// same budget as one connection's.
TEST_F(Isolation, UnreadAnswersOnManyConnectionsShareTheUidsBudget) {
  unreadAnswersInRounds(64, 2);
}

}  // namespace
}  // namespace credvault::integration
