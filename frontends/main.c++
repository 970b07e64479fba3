// credvault-gateway: main() only parses options and wires (see gateway.h).

#include "credvault-config.h"
#include "frontends/config.h"
#include "frontends/gateway.h"
#include "frontends/log.h"
#include "frontends/process.h"
#include "frontends/rest/routes.h"

#include <kj/async-unix.h>
#include <kj/debug.h>
#include <kj/io.h>
#include <kj/main.h>
#include <malloc.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <signal.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

namespace credvault::frontends {
namespace {

class GatewayMain {
 public:
  explicit GatewayMain(kj::ProcessContext& context) : context_(context) {}

  kj::MainFunc getMain() {
    return kj::MainBuilder(
               context_, "credvault-gateway " CREDVAULT_VERSION,
               "Serves the SuperOffice SOAP services (User.svc, SoPrincipal.svc) and REST agents "
               "over HTTP and translates each call into one RPC on credvaultd. Settings come "
               "from the configuration file, then the command line; listening sockets from "
               "systemd socket activation when given (then --listen is ignored).")
        .addOptionWithArg({"config"}, KJ_BIND_METHOD(*this, setConfig), "<file>",
                          "Configuration file (default: the packaged gateway.conf, if present).")
        .addOptionWithArg(
            {"vault-socket"}, KJ_BIND_METHOD(*this, setVaultSocket), "<path>",
            "credvaultd's socket (default: $CREDVAULT_SOCKET, else " CREDVAULT_DEFAULT_SOCKET ").")
        .addOptionWithArg({"listen"}, KJ_BIND_METHOD(*this, addListen), "<addr:port>",
                          "Listen on this address, e.g. 127.0.0.1:8080 or [::]:8080 "
                          "(repeatable; default 127.0.0.1:8080).")
        .addOptionWithArg({"prefix"}, KJ_BIND_METHOD(*this, setPrefix), "</Name>",
                          "Serve every URL below this path, e.g. /Cust12345.")
        .addOptionWithArg({"public-url"}, KJ_BIND_METHOD(*this, setPublicUrl), "<url>",
                          "The URL clients reach the gateway by, e.g. https://vault.example.com "
                          "(named in the WSDL; default: the address a request arrived on).")
        .addOptionWithArg({"max-body"}, KJ_BIND_METHOD(*this, setMaxBody), "<bytes>",
                          "Largest request body accepted (default 1048576); larger: 413.")
        .addOptionWithArg({"max-connections"}, KJ_BIND_METHOD(*this, setMaxConnections), "<n>",
                          "Open connections served at once (default 1024); more: 503.")
        .addOptionWithArg({"idle-timeout"}, KJ_BIND_METHOD(*this, setIdleTimeout), "<seconds>",
                          "Close keep-alive connections idle this long (default 15).")
        .addOptionWithArg({"header-timeout"}, KJ_BIND_METHOD(*this, setHeaderTimeout), "<seconds>",
                          "Time allowed to send a request head (default 10).")
        .addOption({"no-access-log"}, KJ_BIND_METHOD(*this, disableAccessLog),
                   "Log only errors and 5xx responses, not every request.")
        .addOptionWithArg({"set"}, KJ_BIND_METHOD(*this, setOption), "<key=value>",
                          "Override one setting of the configuration file (any key).")
        .callAfterParsing(KJ_BIND_METHOD(*this, run))
        .build();
  }

 private:
  kj::ProcessContext& context_;
  kj::Maybe<kj::String> configFile_;
  GatewaySettings cli_;
  // The first bad option, reported by run(): KJ's own report of an invalid option repeats
  // its value, and a public_url may hold a password ("https://user:pw@host").
  kj::Maybe<kj::String> optionError_;

  kj::MainBuilder::Validity setting(kj::StringPtr key, kj::StringPtr value) {
    KJ_IF_MAYBE(error, cli_.set(key, value)) {
      if (optionError_ == nullptr) optionError_ = kj::str("command line: ", *error);
    }
    return true;
  }

  // One line on stderr, exit status 1 (KJ's Validity would add a line about --help).
  KJ_NORETURN(void fail(kj::StringPtr message)) {
    context_.exitError(kj::str("credvault-gateway: ", message));
  }
  kj::MainBuilder::Validity setConfig(kj::StringPtr path) {
    configFile_ = kj::heapString(path);
    return true;
  }
  kj::MainBuilder::Validity setVaultSocket(kj::StringPtr v) { return setting("vault_socket", v); }
  kj::MainBuilder::Validity addListen(kj::StringPtr v) { return setting("listen", v); }
  kj::MainBuilder::Validity setPrefix(kj::StringPtr v) { return setting("prefix", v); }
  kj::MainBuilder::Validity setPublicUrl(kj::StringPtr v) { return setting("public_url", v); }
  kj::MainBuilder::Validity setOption(kj::StringPtr keyValue) {
    KJ_IF_MAYBE(eq, keyValue.findFirst('=')) {
      auto key = kj::heapString(keyValue.begin(), *eq);
      return setting(key, keyValue.slice(*eq + 1));
    }
    if (optionError_ == nullptr) optionError_ = kj::str("command line: --set expects key=value");
    return true;
  }
  kj::MainBuilder::Validity setMaxBody(kj::StringPtr v) { return setting("max_body", v); }
  kj::MainBuilder::Validity setMaxConnections(kj::StringPtr v) {
    return setting("max_connections", v);
  }
  kj::MainBuilder::Validity setIdleTimeout(kj::StringPtr v) { return setting("idle_timeout", v); }
  kj::MainBuilder::Validity setHeaderTimeout(kj::StringPtr v) {
    return setting("header_timeout", v);
  }
  kj::MainBuilder::Validity disableAccessLog() { return setting("access_log", "no"); }

  static kj::String defaultConfigPath() {
    kj::StringPtr daemonConfig = CREDVAULT_DEFAULT_CONFIG;
    KJ_IF_MAYBE(slash, daemonConfig.findLast('/')) {
      return kj::str(kj::heapString(daemonConfig.begin(), *slash), "/gateway.conf");
    }
    return kj::str("gateway.conf");
  }

  // The file's settings overridden by the command line's; an error message on failure.
  kj::OneOf<GatewaySettings, kj::String> loadSettings() {
    bool explicitFile = configFile_ != nullptr;
    kj::String path =
        explicitFile ? kj::heapString(KJ_ASSERT_NONNULL(configFile_)) : defaultConfigPath();
    GatewaySettings settings;
    int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (explicitFile || errno != ENOENT) {
        return kj::str("cannot read ", path, ": ", strerror(errno));
      }
    } else {
      kj::FdInputStream in((kj::AutoCloseFd(fd)));
      auto text = in.readAllText(64 * 1024);
      auto parsed = parseSettings(text);
      KJ_IF_MAYBE(error, parsed.tryGet<kj::String>()) { return kj::str(path, ": ", *error); }
      settings = kj::mv(parsed.get<GatewaySettings>());
    }
    settings.overrideWith(kj::mv(cli_));
    return kj::mv(settings);
  }

  kj::MainBuilder::Validity run() {
    // Before the first request can put a password into our memory.
    KJ_IF_MAYBE(error, hardenProcess()) { fail(*error); }
    KJ_IF_MAYBE(error, optionError_) { fail(*error); }
    // Large buffers (request bodies, answers of many credentials) get their own mappings and
    // go back to the system when freed: glibc's default raises this threshold after the first
    // big free, and the memory of a burst of large answers would then stay with the process.
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    // A peer closing mid-write must not kill the process.
    signal(SIGPIPE, SIG_IGN);
    kj::UnixEventPort::captureSignal(SIGTERM);
    kj::UnixEventPort::captureSignal(SIGINT);
    auto io = kj::setupAsyncIo();
    auto& ws = io.waitScope;
    ws.setBusyPollInterval(ipc::BUSY_POLL_INTERVAL);

    auto loaded = loadSettings();
    KJ_IF_MAYBE(error, loaded.tryGet<kj::String>()) { fail(*error); }
    auto& settings = loaded.get<GatewaySettings>();

    int activated = sd_listen_fds(1);
    if (activated < 0) fail(kj::str("sd_listen_fds: ", strerror(-activated)));
    kj::Vector<kj::String> listen;
    if (activated == 0) {
      listen = kj::mv(settings.listen);
      if (listen.size() == 0) listen.add(kj::str(DEFAULT_LISTEN));
    }

    StderrLog log(settings.accessLog.orDefault(true));
    GatewayConfig config;
    config.vaultSocket =
        ipc::socketPath(settings.vaultSocket.map([](kj::String& s) -> kj::StringPtr { return s; }));
    KJ_IF_MAYBE(p, settings.prefix) { config.urlPrefix = kj::mv(*p); }
    KJ_IF_MAYBE(u, settings.publicUrl) { config.publicUrl = kj::mv(*u); }
    settings.applyTo(config.limits);
    KJ_IF_MAYBE(v, settings.maxSoapBody) { config.maxSoapBodyBytes = *v; }
    config.trustedProxies = settings.trusted();
    kj::String socket = kj::heapString(config.vaultSocket);
    kj::String prefix = kj::heapString(config.urlPrefix);
    kj::String publicUrl = kj::heapString(config.publicUrl);
    http::SystemEntropy entropy;
    Gateway gateway(io.provider->getNetwork(), io.provider->getTimer(),
                    kj::systemCoarseCalendarClock(), kj::systemPreciseMonotonicClock(), entropy,
                    kj::mv(config), log);
    rest::addRoutes(gateway.router(), gateway.vault());

    kj::Vector<kj::Own<kj::ConnectionReceiver>> receivers;
    kj::Vector<kj::String> names;
    for (int i = 0; i < activated; i++) {
      int fd = SD_LISTEN_FDS_START + i;
      receivers.add(
          io.lowLevelProvider->wrapListenSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP));
      names.add(kj::str("fd:", fd));
    }
    for (auto& address : listen) {
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                    auto addr = io.provider->getNetwork().parseAddress(address).wait(ws);
                    receivers.add(addr->listen());
                  })) {
        fail(kj::str("cannot listen on ", address, ": ", e->getDescription()));
      }
      names.add(kj::heapString(address));
    }

    kj::Vector<kj::Promise<void>> serving;
    for (auto& r : receivers) serving.add(gateway.listen(*r));
    auto failed = kj::joinPromises(serving.releaseAsArray()).then([]() -> kj::String {
      return kj::str("listeners closed");
    });
    auto stop =
        io.unixEventPort.onSignal(SIGTERM)
            .exclusiveJoin(io.unixEventPort.onSignal(SIGINT))
            .then([](siginfo_t info) -> kj::String { return kj::str("signal ", info.si_signo); });

    StderrLog::info(kj::str(
        "credvault-gateway ", CREDVAULT_VERSION, " listening on ", kj::strArray(names, ", "),
        "; vault socket ", socket, prefix.size() > 0 ? kj::str("; prefix ", prefix) : kj::str(),
        publicUrl.size() > 0 ? kj::str("; public URL ", publicUrl) : kj::str()));
    sd_notify(0, "READY=1\nSTATUS=serving");

    kj::String why;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions(
                       [&]() { why = stop.exclusiveJoin(kj::mv(failed)).wait(ws); })) {
      StderrLog::warning(kj::str("listener failed: ", e->getDescription()));
      why = kj::str("listener failure");
    }
    sd_notify(0, "STOPPING=1\nSTATUS=draining");
    StderrLog::info(kj::str("stopping (", why, "): finishing requests in progress"));
    gateway.drain().wait(ws);
    StderrLog::info("stopped");
    return true;
  }
};

}  // namespace
}  // namespace credvault::frontends

KJ_MAIN(credvault::frontends::GatewayMain)
