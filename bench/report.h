// credvault-bench — the figures of one row and how they are printed: percentiles, the
// table's header and rows, memory lines. Everything goes to stdout, flushed per line so a
// long run shows its progress.

#pragma once

#include <kj/string.h>
#include <stdint.h>
#include <vector>

namespace credvault::bench {

// One measured row.
struct Result {
  uint64_t ops = 0;                 // completed in the measured window
  double seconds = 0;               // length of the measured window
  std::vector<uint64_t> latencies;  // ns, of the calls counted in `ops`
  uint64_t allOps = 0;              // completed in total (warm-up included)
  uint64_t serverCpuNs = 0;         // over the whole run
  uint64_t databaseCpuNs = 0;       // the database server's processes, when watched
  uint64_t clientCpuNs = 0;

  double opsPerSecond() const { return seconds > 0 ? ops / seconds : 0; }
  double maxUs() const;
  double percentileUs(double q);  // reorders `latencies`
};

// Latencies of one kind of call, reported in ms (the backup section).
struct Latencies {
  std::vector<uint64_t> ns;
  double percentileMs(double q);  // reorders `ns`
  double maxMs() const;
  size_t over(uint64_t limitNs) const;
};

// Resident memory of a process, in KiB, from /proc/PID/status.
struct Memory {
  uint64_t vmRss = 0, rssAnon = 0, rssFile = 0, rssShmem = 0, vmHwm = 0;
};

// The first lines: the machine, where the state lives and the measuring window.
void describeMachine(kj::StringPtr dir, double duration, double warmup);

// A section title and the column headings of its rows.
void header(kj::StringPtr title);
// `hasServer`: false for in-process rows (no server process, "-" in "srv µs/op").
void row(kj::StringPtr op, kj::StringPtr load, Result& r, kj::StringPtr notes = "",
         bool hasServer = true);
void note(kj::StringPtr text);
void memoryRow(kj::StringPtr when, const Memory& m);

}  // namespace credvault::bench
