#include "vault-link.h"

#include <kj/debug.h>

namespace credvault::frontends {

VaultLink::VaultLink(kj::Network& network, kj::Timer& timer, kj::String socketPath,
                     kj::Duration callTimeout)
    : network_(network),
      timer_(timer),
      path_(kj::mv(socketPath)),
      callTimeout_(callTimeout),
      tasks_(*this) {}

VaultLink::~VaultLink() noexcept(false) {}

kj::Promise<rpc::Vault::Client> VaultLink::vault() {
  KJ_IF_MAYBE(c, connection_) { return (*c)->vault(); }
  auto current = [this]() -> kj::Promise<rpc::Vault::Client> {
    KJ_IF_MAYBE(c, connection_) { return (*c)->vault(); }
    return KJ_EXCEPTION(DISCONNECTED, "credvaultd connection lost");
  };
  KJ_IF_MAYBE(p, connecting_) { return p->addBranch().then(kj::mv(current)); }

  uint64_t attempt = ++attempts_;
  auto connecting =
      ipc::connect(network_, path_)
          .then(
              [this](kj::Own<ipc::Connection> connection) {
                uint64_t gen = ++generation_;
                ++connects_;
                tasks_.add(connection->onDisconnect().then(
                    [this, gen]() { drop(gen); }, [this, gen](kj::Exception&&) { drop(gen); }));
                connection_ = kj::mv(connection);
              },
              [](kj::Exception&& e) {
                // The daemon is not there (not started, restarting): say so plainly.
                kj::throwFatalException(
                    KJ_EXCEPTION(DISCONNECTED, "credvaultd is not reachable", e.getDescription()));
              })
          .then([this, attempt]() { forgetAttempt(attempt); },
                [this, attempt](kj::Exception&& e) {
                  forgetAttempt(attempt);
                  kj::throwFatalException(kj::mv(e));
                });
  auto forked = connecting.fork();
  auto branch = forked.addBranch();
  connecting_ = kj::mv(forked);
  return branch.then(kj::mv(current));
}

void VaultLink::forgetAttempt(uint64_t attempt) {
  // Not now: this runs inside the promise that connecting_ forks.
  tasks_.add(kj::evalLater([this, attempt]() {
    if (attempt == attempts_) connecting_ = nullptr;
  }));
}

void VaultLink::drop(uint64_t generation) {
  if (generation != generation_) return;
  KJ_IF_MAYBE(c, connection_) {
    // Destroyed on a later turn: this may run inside a callback of the connection itself.
    auto old = kj::mv(*c);
    connection_ = nullptr;
    tasks_.add(kj::evalLater([old = kj::mv(old)]() {}));
  }
}

}  // namespace credvault::frontends
