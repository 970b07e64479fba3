#include "client.h"
#include "credvault-config.h"

#include <kj/debug.h>
#include <stdlib.h>
#include <time.h>
#include <stdio.h>
#include <string.h>

namespace credvault::ipc {

namespace {

capnp::ReaderOptions clientReaderOptions() {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = CLIENT_TRAVERSAL_LIMIT_WORDS;
  options.nestingLimit = 32;
  return options;
}

}  // namespace

Connection::Connection(kj::Own<kj::AsyncIoStream> stream)
    : stream_(kj::heap<BufferedStream>(kj::mv(stream))),
      network_(*stream_, capnp::rpc::twoparty::Side::CLIENT, clientReaderOptions()),
      rpc_(capnp::makeRpcClient(network_)),
      vault_(nullptr) {
  capnp::word scratch[4];
  memset(scratch, 0, sizeof(scratch));
  capnp::MallocMessageBuilder message(scratch);
  auto hostId = message.getRoot<capnp::rpc::twoparty::VatId>();
  hostId.setSide(capnp::rpc::twoparty::Side::SERVER);
  vault_ = rpc_.bootstrap(hostId).castAs<rpc::Vault>();
  // The stream is destroyed after the network (members in reverse order), and no event runs
  // in between, so the network outlives every call of this.
  stream_->holdFlushWhile([this]() { return network_.getCurrentQueueCount() > 0; });
}

kj::Promise<kj::Own<Connection>> connect(kj::Network& network, kj::StringPtr path) {
  return network.parseAddress(kj::str("unix:", path))
      .then([](kj::Own<kj::NetworkAddress> addr) { return addr->connect(); })
      .then([](kj::Own<kj::AsyncIoStream> stream) { return kj::heap<Connection>(kj::mv(stream)); });
}

kj::String socketPath(kj::Maybe<kj::StringPtr> explicitPath) {
  KJ_IF_MAYBE(p, explicitPath) { return kj::heapString(*p); }
  const char* env = getenv("CREDVAULT_SOCKET");
  if (env != nullptr && *env != '\0') return kj::heapString(env);
  return kj::heapString(CREDVAULT_DEFAULT_SOCKET);
}

// Days from 0001-01-01 to year-month-day in the proleptic Gregorian calendar.
static int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  // Shift to a March-based year so the leap day is last.
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;  // days since 1970-01-01
}

kj::String formatTicks(int64_t ticks) {
  if (ticks < 0) ticks = 0;
  if (ticks > MAX_TICKS) ticks = MAX_TICKS;
  int64_t unixTicks = ticks - UNIX_EPOCH_TICKS;
  int64_t secs = unixTicks >= 0 ? unixTicks / TICKS_PER_SECOND
                                : -((-unixTicks + TICKS_PER_SECOND - 1) / TICKS_PER_SECOND);
  int64_t frac = unixTicks - secs * TICKS_PER_SECOND;
  time_t t = static_cast<time_t>(secs);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  if (frac == 0) {
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  } else {
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%07lld", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             static_cast<long long>(frac));
  }
  return kj::heapString(buf);
}

kj::Maybe<int64_t> parseTicks(kj::StringPtr text) {
  const char* p = text.begin();
  const char* end = text.end();
  auto digits = [&](int n, int64_t& out) -> bool {
    out = 0;
    for (int i = 0; i < n; i++) {
      if (p >= end || *p < '0' || *p > '9') return false;
      out = out * 10 + (*p++ - '0');
    }
    return true;
  };
  auto expect = [&](char c) -> bool {
    if (p < end && *p == c) {
      ++p;
      return true;
    }
    return false;
  };
  int64_t year, month, day, hour = 0, minute = 0, second = 0, frac = 0;
  if (!digits(4, year) || !expect('-') || !digits(2, month) || !expect('-') || !digits(2, day)) {
    return nullptr;
  }
  if (p < end && (*p == 'T' || *p == ' ')) {
    ++p;
    if (!digits(2, hour) || !expect(':') || !digits(2, minute)) return nullptr;
    if (expect(':')) {
      if (!digits(2, second)) return nullptr;
      if (expect('.')) {
        int n = 0;
        while (p < end && *p >= '0' && *p <= '9') {
          if (n < 7) frac = frac * 10 + (*p - '0');
          ++n;
          ++p;
        }
        if (n == 0) return nullptr;
        for (int i = n; i < 7; i++) frac *= 10;
      }
    }
  }
  int64_t offsetSeconds = 0;
  if (p < end) {
    if (*p == 'Z' || *p == 'z') {
      ++p;
    } else if (*p == '+' || *p == '-') {
      int sign = *p == '+' ? 1 : -1;
      ++p;
      int64_t oh, om;
      if (!digits(2, oh)) return nullptr;
      expect(':');
      if (!digits(2, om)) return nullptr;
      if (oh > 14 || om > 59) return nullptr;
      offsetSeconds = sign * (oh * 3600 + om * 60);
    }
  }
  if (p != end) return nullptr;
  static const int DAYS[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > DAYS[month - 1]) return nullptr;
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month == 2 && day == 29 && !leap) return nullptr;
  if (hour > 23 || minute > 59 || second > 59) return nullptr;
  int64_t unixSeconds =
      daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offsetSeconds;
  int64_t ticks = unixSeconds * TICKS_PER_SECOND + frac + UNIX_EPOCH_TICKS;
  if (ticks < 0 || ticks > MAX_TICKS) return nullptr;
  return ticks;
}

}  // namespace credvault::ipc
