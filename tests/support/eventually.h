// Waiting for a condition in tests that run beside other processes (docs/testing.md, "Timing:
// wait for the condition, never for a fixed time").

#pragma once

#include <chrono>
#include <thread>

namespace credvault::support {

// Calls `done` every `every` until it returns true (then true) or `within` has passed (then
// false, for the caller's assertion to say what did not happen). The deadline only bounds a
// failing run: CI's loaded host can deschedule a process for seconds, and a passing run
// returns as soon as the condition holds. For a thread without an event loop; a test that
// runs one uses its timer instead (runUntil in tests/daemon/rpc-fixture.h).
template<typename F>
bool eventually(F&& done, std::chrono::milliseconds every = std::chrono::milliseconds(10),
                std::chrono::milliseconds within = std::chrono::seconds(30)) {
  auto until = std::chrono::steady_clock::now() + within;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(every);
  }
}

}  // namespace credvault::support
