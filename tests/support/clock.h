// Clocks a test moves by hand: a calendar clock (kj::Clock) and, in step with it, a monotonic
// one (kj::MonotonicClock), for code that takes either or both. Time starts at a fixed date
// (2023-11-14 22:13:20 UTC) and only advance() moves it.

#pragma once

#include <kj/time.h>

namespace credvault::support {

class FakeClock final : public kj::Clock {
 public:
  static constexpr int64_t START_UNIX_SECONDS = 1'700'000'000;

  kj::Date now() const override {
    return kj::UNIX_EPOCH + START_UNIX_SECONDS * kj::SECONDS + offset_;
  }
  void advance(kj::Duration d) { offset_ = offset_ + d; }

  // The same time as a monotonic clock (starting at kj::origin), moved by the same advance().
  const kj::MonotonicClock& monotonic() const { return monotonic_; }

 private:
  class Monotonic final : public kj::MonotonicClock {
   public:
    explicit Monotonic(const FakeClock& clock) : clock_(clock) {}
    kj::TimePoint now() const override { return kj::origin<kj::TimePoint>() + clock_.offset_; }

   private:
    const FakeClock& clock_;
  };

  kj::Duration offset_ = 0 * kj::SECONDS;
  Monotonic monotonic_{*this};
};

}  // namespace credvault::support
