// credvault-gateway HTTP layer — the id each request is known by.
//
// Every request gets 16 lower-case hex characters (64 random bits). The server sends it back
// as `X-Request-Id`, writes it in the access log line, and the frontends pass it to
// credvaultd on the authenticate call, which puts it into every audit record of the session:
// one id joins the gateway's log with the daemon's audit trail.
//
// Random rather than a counter: a counter would tell every client how many requests others
// sent in between. The bits are drawn from the injected Entropy 256 ids at a time, so a
// request costs no system call. 64 bits: at a million requests a day, the chance that two of
// one day's ids are equal is about 3 in 10^8 — and a log line also has its time.
//
// A client's own X-Request-Id is ignored (docs/gateway.md): the id goes into the audit
// trail, where a value the client chose could pose as another request's.

#pragma once

#include <kj/array.h>
#include <kj/string.h>

namespace credvault::http {

// Where random bytes come from; tests pass a predictable one.
class Entropy {
 public:
  virtual ~Entropy() noexcept(false) = default;
  virtual void fill(kj::ArrayPtr<kj::byte> buffer) = 0;
};

// getrandom(2), the kernel's CSPRNG.
class SystemEntropy final : public Entropy {
 public:
  void fill(kj::ArrayPtr<kj::byte> buffer) override;
};

constexpr size_t REQUEST_ID_CHARS = 16;

// A value type: no allocation, copied freely.
struct RequestId {
  char text[REQUEST_ID_CHARS + 1] = {};  // NUL-terminated; empty until assigned

  kj::StringPtr str() const { return kj::StringPtr(text, text[0] == '\0' ? 0 : REQUEST_ID_CHARS); }
};

class RequestIds {
 public:
  explicit RequestIds(Entropy& entropy) : entropy_(entropy) {}
  KJ_DISALLOW_COPY(RequestIds);

  RequestId next();

 private:
  static constexpr size_t BYTES_PER_ID = REQUEST_ID_CHARS / 2;
  static constexpr size_t POOL_IDS = 256;

  Entropy& entropy_;
  kj::byte pool_[BYTES_PER_ID * POOL_IDS];
  size_t used_ = sizeof(pool_);  // empty: the first next() fills it
};

}  // namespace credvault::http
