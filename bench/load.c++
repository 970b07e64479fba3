#include "load.h"
#include "database.h"

#include <kj/thread.h>
#include <kj/vector.h>

#include <dirent.h>
#include <stdio.h>
#include <time.h>

namespace credvault::bench {

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

namespace {

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

}  // namespace

Result runLoad(kj::WaitScope& ws, kj::ArrayPtr<Issue> slots, double warmup, double seconds,
               pid_t server, uint64_t count) {
  return runLoad(ws, slots, warmup, seconds, Watched{{&server, 1}}, count);
}

Result runLoad(kj::WaitScope& ws, kj::ArrayPtr<Issue> slots, double warmup, double seconds,
               const Watched& watched, uint64_t count) {
  auto serverCpu = [&]() {
    uint64_t ns = 0;
    for (auto pid : watched.servers) ns += processCpuNs(pid);
    return ns;
  };
  auto databaseCpu = [&]() -> uint64_t {
    return watched.database == nullptr ? 0 : watched.database->cpuNs();
  };
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
  uint64_t srv0 = serverCpu(), db0 = databaseCpu(), cli0 = selfCpuNs();
  auto loops = kj::heapArrayBuilder<kj::Promise<void>>(slots.size());
  for (auto& s : slots) loops.add(slotLoop(run, s));
  kj::joinPromises(loops.finish()).wait(ws);
  uint64_t end = nowNs();
  run.result.serverCpuNs = serverCpu() - srv0;
  run.result.databaseCpuNs = databaseCpu() - db0;
  run.result.clientCpuNs = selfCpuNs() - cli0;
  run.result.seconds = (count > 0 ? end - start : run.deadline - run.measureFrom) / 1e9;
  return kj::mv(run.result);
}

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

}  // namespace credvault::bench
