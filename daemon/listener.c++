#include "listener.h"
#include "log.h"

#include <kj/debug.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <poll.h>

namespace credvault::daemon {

struct Listener::Connection {
  Connection(Listener& listener, kj::Own<kj::AsyncIoStream> streamParam, Peer peer)
      : listener(listener),
        peer(peer),
        fd(streamParam->getFd()),
        // Wrapped only here: accept() has taken the peer credentials from the socket itself.
        stream(kj::heap<ipc::BufferedStream>(kj::mv(streamParam))),
        network(*stream, capnp::rpc::twoparty::Side::SERVER, readerOptions()),
        load(kj::refcounted<ConnectionLoad>()),
        rpc(capnp::makeRpcServer(network,
                                 listener.service_.newBootstrap(peer, kj::addRef(*load)))) {
    stream->holdFlushWhile([this]() { return network.getCurrentQueueCount() > 0; });
    auto limits = listener.options_;
    limits.maxMessageBytes = TRANSPORT_LIMIT_BYTES;
    // A front end's link carries many clients: its long Gets count against the gateway uid's
    // answer budget (Service::answerBytesOf) but do not stop the link's reads, or another
    // client's small request would wait behind them.
    bool frontEnd = listener.service_.identity().isGatewayUid(peer.uid);
    stream->enforce(
        listener.timer_, limits,
        [this, frontEnd]() {
          return network.getCurrentQueueSize() +
                 (frontEnd ? 0 : load->longCalls * LONG_CALL_WEIGHT_BYTES);
        },
        kj::Function<bool()>([this]() { return load->calls > 0; }));
    ++listener.service_.connections;
    listener.byUid_[peer.uid].push_back(this);
    ++listener.perUid_.findOrCreate(peer.uid, [&]() {
      return kj::HashMap<uint32_t, uint32_t>::Entry{peer.uid, 0};
    });
  }
  ~Connection() noexcept(false) {
    --listener.service_.connections;
    auto& mine = listener.byUid_[peer.uid];
    for (size_t i = 0; i < mine.size(); ++i) {
      if (mine[i] == this) {
        mine.erase(mine.begin() + i);
        break;
      }
    }
    if (mine.empty()) listener.byUid_.erase(peer.uid);
    KJ_IF_MAYBE(n, listener.perUid_.find(peer.uid)) {
      if (--*n == 0) listener.perUid_.erase(peer.uid);
    }
  }

  static capnp::ReaderOptions readerOptions() {
    capnp::ReaderOptions options;
    // Also what capnp lets us send; incoming messages are held to TRANSPORT_LIMIT_BYTES by the
    // stream, before capnp allocates them (core/limits.h).
    options.traversalLimitInWords = core::MAX_ANSWER_BYTES / 8;
    options.nestingLimit = core::MAX_MESSAGE_NESTING;
    return options;
  }

  Listener& listener;
  Peer peer;
  kj::Maybe<int> fd;  // only to ask the kernel what the peer has not read yet (drained())
  kj::Own<ipc::BufferedStream> stream;
  capnp::TwoPartyVatNetwork network;
  kj::Own<ConnectionLoad> load;  // before rpc: the capabilities rpc holds share it
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
};

Listener::Listener(Service& service, kj::Own<kj::ConnectionReceiver> receiver, kj::Timer& timer,
                   TransportOptions options)
    : service_(service),
      receiver_(kj::mv(receiver)),
      timer_(timer),
      options_(options),
      tasks_(*this) {
  // What a uid's connections hold for it unsent, and promise: the daemon's per-uid answer
  // budget (Service::answerBytesOf).
  service_.answerBytesOf = [this](uint32_t uid) -> size_t {
    size_t total = 0;
    auto found = byUid_.find(uid);
    if (found == byUid_.end()) return 0;
    for (auto* c : found->second) {
      total += c->stream->unsentBytes() + c->network.getCurrentQueueSize() +
               c->load->longCalls * LONG_CALL_WEIGHT_BYTES;
    }
    return total;
  };
}

Listener::~Listener() noexcept(false) {
  service_.answerBytesOf = nullptr;
}

kj::Promise<void> Listener::run() {
  return receiver_->acceptAuthenticated().then([this](kj::AuthenticatedStream stream) {
    accept(kj::mv(stream));
    return run();
  });
}

bool Listener::drained() {
  if (service_.inFlight > 0) return false;
  for (auto& entry : byUid_) {
    for (auto* c : entry.second) {
      if (c->network.getCurrentQueueCount() > 0 || c->stream->unsentBytes() > 0) return false;
      // Written is not enough: closing while the peer still has answers to read lets its next
      // write fail (EPIPE), and a client library then drops the answers it has not read yet.
      // SIOCOUTQ on a Unix socket: bytes the peer has not consumed.
      KJ_IF_MAYBE(fd, c->fd) {
        int unread = 0;
        if (ioctl(*fd, SIOCOUTQ, &unread) == 0 && unread > 0) return false;
        // Calls already sent to us are read and answered (`unavailable`, we are stopping)
        // rather than cut off.
        int incoming = 0;
        if (ioctl(*fd, FIONREAD, &incoming) == 0 && incoming > 0) return false;
      }
    }
  }
  return true;
}

kj::Promise<bool> Listener::drain(kj::TimePoint deadline) {
  if (drained()) return true;
  if (timer_.now() >= deadline) return false;
  // Polled: the answers complete on their own promises; a few ms of latency at exit is fine.
  return timer_.afterDelay(2 * kj::MILLISECONDS).then([this, deadline]() {
    return drain(deadline);
  });
}

kj::Promise<void> Listener::closeGracefully(kj::TimePoint deadline) {
  // Called once drained(): every answer is written and read by its peer, so the raw descriptor
  // can be shut down under the buffered stream. A duplicate keeps each socket open until its
  // peer hangs up, even if capnp gives the connection up first (a call that arrives now cannot
  // be answered): the peer's writes then never fail before it has read our end of stream.
  for (auto& entry : byUid_) {
    for (auto* c : entry.second) {
      KJ_IF_MAYBE(fd, c->fd) {
        int copy = fcntl(*fd, F_DUPFD_CLOEXEC, 0);
        if (copy < 0) continue;
        lingering_.add(kj::AutoCloseFd(copy));
        ::shutdown(copy, SHUT_WR);
      }
    }
  }
  return waitForPeers(deadline).then([this]() { lingering_.clear(); });
}

kj::Promise<void> Listener::waitForPeers(kj::TimePoint deadline) {
  bool open = false;
  for (auto& fd : lingering_) {
    struct pollfd p = {fd.get(), POLLRDHUP, 0};
    if (poll(&p, 1, 0) == 0) open = true;
  }
  if (!open || timer_.now() >= deadline) return kj::READY_NOW;
  return timer_.afterDelay(2 * kj::MILLISECONDS).then([this, deadline]() {
    return waitForPeers(deadline);
  });
}

void Listener::accept(kj::AuthenticatedStream authenticated) {
  Peer peer{UINT32_MAX, 0};
  bool known = false;
  KJ_IF_MAYBE(local,
              kj::dynamicDowncastIfAvailable<kj::LocalPeerIdentity>(*authenticated.peerIdentity)) {
    auto creds = local->getCredentials();
    KJ_IF_MAYBE(uid, creds.uid) {
      peer.uid = *uid;
      known = true;
    }
    KJ_IF_MAYBE(pid, creds.pid) { peer.pid = *pid; }
  }
  if (!known) {
    logf(Level::WARNING, "refused a connection whose peer credentials are unknown");
    return;  // the stream is dropped, closing it
  }
  uint32_t forUid = 0;
  KJ_IF_MAYBE(n, perUid_.find(peer.uid)) { forUid = *n; }
  if (service_.connections >= core::MAX_CONNECTIONS || forUid >= core::MAX_CONNECTIONS_PER_UID) {
    logf(Level::WARNING, "refused a connection: too many connections",
         LogField{"UID", kj::str(peer.uid)}, LogField{"RESULT", kj::str("limit-exceeded")});
    return;
  }
  auto conn = kj::heap<Connection>(*this, kj::mv(authenticated.stream), peer);
  logf(Level::DEBUG, "connection", LogField{"UID", kj::str(peer.uid)},
       LogField{"PID", kj::str(peer.pid)});
  auto& ref = *conn;
  // A budget that ran out is worth an operator's attention; an ordinary goodbye is not.
  auto logLimit = [&ref]() {
    KJ_IF_MAYBE(which, ref.stream->limitReached()) {
      logf(Level::INFO, "closed a connection: transport limit reached",
           LogField{"UID", kj::str(ref.peer.uid)}, LogField{"PID", kj::str(ref.peer.pid)},
           LogField{"RESULT", kj::str(*which)});
    }
  };
  tasks_.add(ref.network.onDisconnect()
                 .then([logLimit]() { logLimit(); },
                       [logLimit](kj::Exception&& e) {
                         logLimit();
                         kj::throwRecoverableException(kj::mv(e));
                       })
                 .attach(kj::mv(conn)));
}

void Listener::taskFailed(kj::Exception&& exception) {
  logf(Level::DEBUG, kj::str("connection ended: ", exception.getDescription()));
}

}  // namespace credvault::daemon
