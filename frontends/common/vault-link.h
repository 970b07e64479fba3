// credvault-gateway — the link to credvaultd, reconnecting when the daemon restarts.
//
// One Unix-socket connection shared by every request (RPCs are multiplexed over it). It is
// opened on first use, dropped when the daemon disconnects, and reopened by the next call.
// A call that fails because the connection broke (DISCONNECTED) is retried once on a fresh
// connection: the seven operations are idempotent by their natural key, so a retry cannot
// do harm. The gateway never asks for a session by its own peer credentials (Vault.session):
// every call authenticates with what the HTTP client presented.
//
// Thread-compatible: use from the event loop that created it. Never logs.

#pragma once

#include "frontends/limits.h"
#include "ipc/client.h"

#include <kj/async-io.h>
#include <kj/function.h>
#include <kj/timer.h>

namespace credvault::frontends {

class VaultLink final : private kj::TaskSet::ErrorHandler {
 public:
  // Calls that get no answer within `callTimeout` fail as OVERLOADED (reported as
  // "unavailable"), so a hung daemon cannot hold requests forever.
  VaultLink(kj::Network& network, kj::Timer& timer, kj::String socketPath,
            kj::Duration callTimeout = DAEMON_CALL_TIMEOUT);
  ~VaultLink() noexcept(false);
  KJ_DISALLOW_COPY(VaultLink);

  // Runs `call` on the daemon's bootstrap capability, reconnecting and retrying once when the
  // connection broke. Other exceptions pass through.
  template<typename T>
  kj::Promise<T> call(kj::Function<kj::Promise<T>(rpc::Vault::Client)> call);

  bool isConnected() const { return connection_ != nullptr; }
  uint64_t connectCount() const { return connects_; }

 private:
  kj::Promise<rpc::Vault::Client> vault();
  // Forgets the connection of `generation` if it is still the current one.
  void drop(uint64_t generation);
  void forgetAttempt(uint64_t attempt);
  void taskFailed(kj::Exception&& exception) override {}

  kj::Network& network_;
  kj::Timer& timer_;
  kj::String path_;
  kj::Duration callTimeout_;
  kj::Maybe<kj::Own<ipc::Connection>> connection_;
  kj::Maybe<kj::ForkedPromise<void>> connecting_;
  uint64_t generation_ = 0;
  uint64_t connects_ = 0;
  uint64_t attempts_ = 0;
  kj::TaskSet tasks_;

 public:
  uint64_t generation() const { return generation_; }
};

template<typename T>
kj::Promise<T> VaultLink::call(kj::Function<kj::Promise<T>(rpc::Vault::Client)> fn) {
  auto shared = kj::heap<kj::Function<kj::Promise<T>(rpc::Vault::Client)>>(kj::mv(fn));
  auto& f = *shared;
  return timer_
      .timeoutAfter(callTimeout_, vault().then([this, &f](rpc::Vault::Client first) {
        uint64_t gen = generation_;
        return f(kj::mv(first)).catch_([this, &f, gen](kj::Exception&& e) -> kj::Promise<T> {
          if (e.getType() != kj::Exception::Type::DISCONNECTED) return kj::mv(e);
          drop(gen);
          return this->vault().then([&f](rpc::Vault::Client again) { return f(kj::mv(again)); });
        });
      }))
      .attach(kj::mv(shared));
}

}  // namespace credvault::frontends
