// The transport ceiling: a bare Cap'n Proto echo of 8 bytes, served by a child process of
// this binary, driven with the same client and shapes as the Get rows.

#include "sections.h"
#include "echo.capnp.h"

#include <capnp/rpc-twoparty.h>
#include <kj/debug.h>
#include <kj/vector.h>

namespace credvault::bench {

namespace {

class EchoImpl final : public Echo::Server {
 protected:
  kj::Promise<void> echo(EchoContext context) override {
    context.getResults().setValue(context.getParams().getValue());
    return kj::READY_NOW;
  }
};

struct EchoConnection {
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> client;
  Echo::Client echo = nullptr;
};

}  // namespace

int runEchoServer(kj::StringPtr path) {
  auto io = kj::setupAsyncIo();
  unlink(path.cStr());
  auto address = io.provider->getNetwork().parseAddress(kj::str("unix:", path)).wait(io.waitScope);
  auto listener = address->listen();
  capnp::TwoPartyServer server(kj::heap<EchoImpl>());
  server.listen(*listener).wait(io.waitScope);
  return 0;
}

void echoSection(Context& ctx, kj::AsyncIoContext& io) {
  auto socketPath = kj::str(ctx.dir, "/echo.sock");
  auto logPath = kj::str(ctx.dir, "/echo.log");
  kj::String argv[] = {selfExe(), kj::str("--echo-server"), kj::heapString(socketPath)};
  pid_t pid = spawn(argv, logPath);
  KJ_DEFER(stopProcess(pid));
  waitForSocket(pid, socketPath, logPath);

  header("bare Cap'n Proto echo over a Unix socket (transport ceiling; 8-byte Data)");
  auto& network = io.provider->getNetwork();
  for (size_t i = 0; i < SHAPE_COUNT; i++) {
    auto& shape = SHAPES[i];
    kj::Vector<kj::Own<EchoConnection>> conns;
    kj::Vector<Issue> slots;
    for (unsigned c = 0; c < shape.connections; c++) {
      auto conn = kj::heap<EchoConnection>();
      auto address = network.parseAddress(kj::str("unix:", socketPath)).wait(io.waitScope);
      conn->stream = address->connect().wait(io.waitScope);
      conn->client = kj::heap<capnp::TwoPartyClient>(*conn->stream);
      conn->echo = conn->client->bootstrap().castAs<Echo>();
      for (unsigned s = 0; s < shape.perConnection; s++) {
        slots.add([echo = conn->echo]() mutable {
          auto req = echo.echoRequest();
          static const kj::byte payload[8] = {'c', 'r', 'e', 'd', 'v', 'a', 'u', 'l'};
          req.setValue(kj::arrayPtr(payload, 8));
          return req.send().then(
              [](capnp::Response<Echo::EchoResults>&& r) { KJ_ASSERT(r.getValue().size() == 8); });
        });
      }
      conns.add(kj::mv(conn));
    }
    auto r = runLoad(io.waitScope, slots, ctx.o.warmup, ctx.o.duration, pid);
    row("echo", shape.label(), r, shape.connections == 1 ? "pipelined on one connection" : "");
    ctx.echoOpsPerSecond[i] = r.opsPerSecond();
  }
}

}  // namespace credvault::bench
