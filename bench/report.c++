#include "report.h"
#include "process.h"

#include <algorithm>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

namespace credvault::bench {

namespace {

// The q-quantile of `ns` (nearest rank, reordering it), in ns; 0 when empty.
uint64_t quantile(std::vector<uint64_t>& ns, double q) {
  if (ns.empty()) return 0;
  size_t i = std::min(ns.size() - 1, size_t(q * ns.size()));
  std::nth_element(ns.begin(), ns.begin() + i, ns.end());
  return ns[i];
}

uint64_t largest(const std::vector<uint64_t>& ns) {
  uint64_t m = 0;
  for (auto l : ns) m = std::max(m, l);
  return m;
}

const char* fileSystemName(kj::StringPtr dir) {
  struct statfs fs;
  if (statfs(dir.cStr(), &fs) != 0) return "?";
  switch (fs.f_type) {
    case 0xEF53:
      return "ext4";
    case 0x01021994:
      return "tmpfs";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x794c7630:
      return "overlayfs";
    default:
      return "other";
  }
}

}  // namespace

double Result::maxUs() const {
  return largest(latencies) / 1000.0;
}
double Result::percentileUs(double q) {
  return quantile(latencies, q) / 1000.0;
}

double Latencies::percentileMs(double q) {
  return quantile(ns, q) / 1e6;
}
double Latencies::maxMs() const {
  return largest(ns) / 1e6;
}
size_t Latencies::over(uint64_t limitNs) const {
  size_t k = 0;
  for (auto l : ns) k += l > limitNs;
  return k;
}

void describeMachine(kj::StringPtr dir, double duration, double warmup) {
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
  printf("credvault-bench: %ld CPUs (%s); state in %s (%s)\n", sysconf(_SC_NPROCESSORS_ONLN),
         model.cStr(), dir.cStr(), fileSystemName(dir));
  printf(
      "measured window %.2f s after %.2f s warm-up; latencies are send-to-answer; "
      "load average %s",
      duration, warmup, readText("/proc/loadavg").cStr());
  fflush(stdout);
}

void header(kj::StringPtr title) {
  printf("\n%s\n", title.cStr());
  printf("  %-44s %-8s %11s %9s %9s %9s %9s  %s\n", "operation", "load", "ops/s", "p50 µs",
         "p99 µs", "srv µs/op", "cli µs/op", "notes");
  fflush(stdout);
}

void row(kj::StringPtr op, kj::StringPtr load, Result& r, kj::StringPtr notes, bool hasServer) {
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

void memoryRow(kj::StringPtr when, const Memory& m) {
  printf(
      "  %-44s VmRSS %6.1f MiB  RssAnon %6.1f MiB  RssFile %6.1f MiB  RssShmem %5.1f MiB"
      "  VmHWM %6.1f MiB\n",
      when.cStr(), m.vmRss / 1024.0, m.rssAnon / 1024.0, m.rssFile / 1024.0, m.rssShmem / 1024.0,
      m.vmHwm / 1024.0);
  fflush(stdout);
}

}  // namespace credvault::bench
