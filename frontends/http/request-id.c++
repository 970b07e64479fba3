#include "request-id.h"

#include <errno.h>
#include <kj/debug.h>
#include <sys/random.h>

namespace credvault::http {

void SystemEntropy::fill(kj::ArrayPtr<kj::byte> buffer) {
  size_t done = 0;
  while (done < buffer.size()) {
    ssize_t n;
    KJ_SYSCALL(n = getrandom(buffer.begin() + done, buffer.size() - done, 0));
    done += static_cast<size_t>(n);
  }
}

RequestId RequestIds::next() {
  if (used_ + BYTES_PER_ID > sizeof(pool_)) {
    entropy_.fill(kj::arrayPtr(pool_, sizeof(pool_)));
    used_ = 0;
  }
  static constexpr char HEX[] = "0123456789abcdef";
  RequestId id;
  for (size_t i = 0; i < BYTES_PER_ID; i++) {
    kj::byte b = pool_[used_ + i];
    id.text[2 * i] = HEX[b >> 4];
    id.text[2 * i + 1] = HEX[b & 0x0f];
  }
  used_ += BYTES_PER_ID;
  return id;
}

}  // namespace credvault::http
