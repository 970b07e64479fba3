#include "client.h"
#include "credvault-config.h"

#include <kj/debug.h>
#include <stdlib.h>
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

}  // namespace credvault::ipc
