// credvault-bench — how load is made and timed.
//
// Load is closed-loop: each "slot" sends a call, waits for its answer and sends the next.
// Pipelined slots share one connection (Cap'n Proto multiplexes calls on it); "Nc×M" means
// N connections with M slots each. All client work runs on this process's one event-loop
// thread. A call counts when it completes inside the measured window (after the warm-up);
// its latency is send to answer. "srv µs/op" is the server process's CPU time (all its
// threads, from /proc/PID/task/*/schedstat) per completed call; "cli µs/op" is this
// process's CPU time per call.

#pragma once

#include "report.h"

#include <kj/async.h>
#include <kj/function.h>
#include <kj/string.h>
#include <stdint.h>
#include <sys/types.h>

namespace credvault::bench {

uint64_t nowNs();      // CLOCK_MONOTONIC
uint64_t selfCpuNs();  // this process, all threads
// CPU time of every live thread of `pid`, in ns (first field of schedstat); 0 for pid <= 0.
uint64_t processCpuNs(pid_t pid);

// One slot's next call.
using Issue = kj::Function<kj::Promise<void>()>;

class Database;

// Whose CPU time a row counts besides this process's: the daemons (all their threads, in
// Result::serverCpuNs) and, when their store is a database server, all its processes (in
// Result::databaseCpuNs).
struct Watched {
  kj::ArrayPtr<const pid_t> servers;
  const Database* database = nullptr;
};

// Runs every slot until `seconds` after `warmup`; or, with `count`, until `count` calls
// have been sent (then all of them are measured). `server`'s CPU time is counted.
Result runLoad(kj::WaitScope& ws, kj::ArrayPtr<Issue> slots, double warmup, double seconds,
               pid_t server, uint64_t count = 0);
Result runLoad(kj::WaitScope& ws, kj::ArrayPtr<Issue> slots, double warmup, double seconds,
               const Watched& watched, uint64_t count = 0);

// The same, for in-process work on `threads` threads (each a plain loop); each `call`
// counts as `opsPerCall` operations.
Result runThreads(unsigned threads, double warmup, double seconds, uint64_t opsPerCall,
                  kj::Function<void(unsigned thread)> setup,
                  kj::Function<void(unsigned thread)> call);

// A load shape: connections × calls in flight on each.
struct Shape {
  unsigned connections;
  unsigned perConnection;
  kj::String label() const { return kj::str(connections, "c×", perConnection); }
};
// The shapes of the echo and Get rows (the Get rows compare themselves with echo's).
inline constexpr Shape SHAPES[] = {{1, 1}, {1, 8}, {1, 64}, {8, 8}};
inline constexpr size_t SHAPE_COUNT = sizeof(SHAPES) / sizeof(SHAPES[0]);

}  // namespace credvault::bench
