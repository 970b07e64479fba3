// credvault-gateway: main() only parses options and wires (see gateway.h).

#include "credvault-config.h"
#include "base/config-file.h"
#include "base/exit-status.h"
#include "frontends/config.h"
#include "frontends/gateway.h"
#include "frontends/log.h"
#include "frontends/ops/metrics.h"
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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace credvault::frontends {
namespace {

// What went wrong binding a listening address, as the operator can act on it (KJ's text
// names a source file and a syscall).
kj::String listenProblem(const kj::Exception& e) {
  auto text = e.getDescription();
  if (strstr(text.cStr(), "EADDRINUSE") || strstr(text.cStr(), "Address already in use")) {
    return kj::str("the address is in use by another process; stop it or choose another port");
  }
  if (strstr(text.cStr(), "EACCES") || strstr(text.cStr(), "Permission denied")) {
    return kj::str(
        "permission denied; ports below 1024 need CAP_NET_BIND_SERVICE "
        "(AmbientCapabilities= in the unit) or socket activation");
  }
  if (strstr(text.cStr(), "EADDRNOTAVAIL") || strstr(text.cStr(), "Cannot assign requested")) {
    return kj::str("no interface of this host has that address; use one it has, or 0.0.0.0");
  }
  return kj::str("not an address:port this host can listen on (e.g. 127.0.0.1:8080, [::]:8443)");
}

// Whether a bound address ("127.0.0.1:8080", "[::1]:8080") is loopback: plain HTTP there
// carries passwords only inside this host.
bool isLoopback(kj::StringPtr address) {
  return address.startsWith("127.") || address.startsWith("[::1]:") ||
         address.startsWith("[::ffff:127.") || address.startsWith("unix:");
}

bool isLoopbackFd(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&ss), &len) != 0) return false;
  if (ss.ss_family == AF_UNIX) return true;
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<struct sockaddr_in*>(&ss);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<struct sockaddr_in6*>(&ss);
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return false;
}

int listenStatus(const kj::Exception& e) {
  auto text = e.getDescription();
  if (strstr(text.cStr(), "EACCES") || strstr(text.cStr(), "Permission denied")) {
    return base::EXIT_NO_PERMISSION;
  }
  if (strstr(text.cStr(), "EADDRINUSE") || strstr(text.cStr(), "Address already in use")) {
    return base::EXIT_UNAVAILABLE;
  }
  return base::EXIT_CONFIG;
}

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

  // A problem the operator can fix: one line on stderr saying what is wrong and what to do,
  // with the "crit" priority prefix journald reads, then exit with `status`
  // (base/exit-status.h, docs/operations.md). KJ's Validity would add a line about --help.
  KJ_NORETURN(void fail(int status, kj::StringPtr message)) {
    auto line = kj::str("<2>credvault-gateway: ", message, "\n");
    ssize_t ignored = ::write(STDERR_FILENO, line.begin(), line.size());
    (void)ignored;
    _exit(status);
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
    KJ_IF_MAYBE(error, cli_.setOption("--set", keyValue)) {
      if (optionError_ == nullptr) optionError_ = kj::str("command line: ", *error);
    }
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
      int error = errno;
      if (explicitFile && error == ENOENT) {
        return kj::str("the configuration file ", path,
                       " does not exist; pass an existing file to --config");
      }
      if (explicitFile || error != ENOENT) {
        return kj::str("cannot read the configuration file ", path, ": ", strerror(error),
                       error == EACCES ? "; make it readable by the gateway's user" : "");
      }
    } else {
      kj::FdInputStream in((kj::AutoCloseFd(fd)));
      auto text = in.readAllText(base::MAX_CONFIG_FILE_BYTES + 1);
      auto parsed = parseSettings(text, path);
      KJ_IF_MAYBE(error, parsed.tryGet<kj::String>()) { return kj::mv(*error); }
      settings = kj::mv(parsed.get<GatewaySettings>());
    }
    settings.overrideWith(kj::mv(cli_));
    return kj::mv(settings);
  }

  static kj::Promise<void> reloadOnHangup(kj::UnixEventPort& port,
                                          kj::Maybe<kj::Own<http::TlsServer>>& tls) {
    return port.onSignal(SIGHUP).then([&port, &tls](siginfo_t) {
      KJ_IF_MAYBE(t, tls) {
        KJ_IF_MAYBE(error, (*t)->reload()) {
          StderrLog::warning(
              kj::str("TLS reload failed, keeping the current certificate: ", *error));
        } else {
          StderrLog::info("TLS certificate and key reloaded");
        }
      } else {
        StderrLog::info("SIGHUP: no TLS configured, nothing to reload");
      }
      return reloadOnHangup(port, tls);
    });
  }

  kj::MainBuilder::Validity run() {
    // Before the first request can put a password into our memory.
    KJ_IF_MAYBE(error, hardenProcess()) { fail(base::EXIT_NO_PERMISSION, *error); }
    KJ_IF_MAYBE(error, optionError_) { fail(base::EXIT_CONFIG, *error); }
    // Large buffers (request bodies, answers of many credentials) get their own mappings and
    // go back to the system when freed: glibc's default raises this threshold after the first
    // big free, and the memory of a burst of large answers would then stay with the process.
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    // A peer closing mid-write must not kill the process.
    signal(SIGPIPE, SIG_IGN);
    kj::UnixEventPort::captureSignal(SIGTERM);
    kj::UnixEventPort::captureSignal(SIGINT);
    kj::UnixEventPort::captureSignal(SIGHUP);
    auto io = kj::setupAsyncIo();
    auto& ws = io.waitScope;
    ws.setBusyPollInterval(ipc::BUSY_POLL_INTERVAL);

    auto loaded = loadSettings();
    KJ_IF_MAYBE(error, loaded.tryGet<kj::String>()) { fail(base::EXIT_CONFIG, *error); }
    auto& settings = loaded.get<GatewaySettings>();

    int activated = sd_listen_fds(1);
    if (activated < 0) {
      fail(base::EXIT_CONFIG, kj::str("the sockets passed by systemd (LISTEN_FDS) are not usable: ",
                                      strerror(-activated)));
    }
    kj::Vector<kj::String> listen;
    if (activated == 0) {
      listen = kj::mv(settings.listen);
      if (listen.size() == 0) listen.add(kj::str(DEFAULT_LISTEN));
    }

    StderrLog log(settings.accessLog.orDefault(true));
    // Counts every answered request, then hands it to the stderr log.
    Metrics metrics(log);
    kj::StringPtr metricsListen = settings.metricsListen.orDefault(nullptr);
    bool metricsOn = metricsListen.size() > 0;
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
    Gateway gateway(
        io.provider->getNetwork(), io.provider->getTimer(), kj::systemCoarseCalendarClock(),
        kj::systemPreciseMonotonicClock(), entropy, kj::mv(config),
        metricsOn ? kj::Maybe<http::AccessLog&>(metrics) : kj::Maybe<http::AccessLog&>(log));
    rest::addRoutes(gateway.router(), gateway.vault());

    // TLS: both files or neither.
    kj::Maybe<kj::Own<http::TlsServer>> tls;
    kj::StringPtr certSetting = settings.tlsCertificate.orDefault(nullptr);
    kj::StringPtr keySetting = settings.tlsKey.orDefault(nullptr);
    if (certSetting.size() > 0 || keySetting.size() > 0) {
      if (certSetting.size() == 0 || keySetting.size() == 0) {
        fail(base::EXIT_CONFIG, "TLS needs both tls_certificate and tls_key; set the missing one");
      }
      // A relative path names a systemd credential ($CREDENTIALS_DIRECTORY, LoadCredential=),
      // so the unit can hand over a key the gateway's user may not read where it is kept.
      auto credentialPath = [&](kj::StringPtr key, kj::StringPtr value) -> kj::String {
        if (value.startsWith("/")) return kj::heapString(value);
        const char* dir = getenv("CREDENTIALS_DIRECTORY");
        if (dir == nullptr || *dir == '\0') {
          fail(base::EXIT_CONFIG,
               kj::str(key,
                       " is a relative path, which names a systemd credential, but "
                       "$CREDENTIALS_DIRECTORY is not set; give an absolute path or load it "
                       "with LoadCredential="));
        }
        return kj::str(dir, "/", value);
      };
      http::TlsFiles files;
      files.certificate = credentialPath("tls_certificate", certSetting);
      files.key = credentialPath("tls_key", keySetting);
      auto loadedTls = http::TlsServer::load(kj::mv(files), io.provider->getTimer(),
                                             config.limits.headerTimeout);
      KJ_IF_MAYBE(e, loadedTls.tryGet<kj::String>()) {
        fail(strstr(e->cStr(), "chmod") || strstr(e->cStr(), "Permission denied")
                 ? base::EXIT_NO_PERMISSION
                 : base::EXIT_CONFIG,
             *e);
      }
      tls = kj::mv(loadedTls.get<kj::Own<http::TlsServer>>());
    }
    bool plainAnywhere = settings.plainHttp.orDefault(false);
    auto requireSafe = [&](kj::StringPtr what, bool loopback) {
      if (tls != nullptr || loopback || plainAnywhere) return;
      fail(base::EXIT_CONFIG,
           kj::str("refusing plain HTTP on ", what,
                   ", which is not a loopback address: passwords would cross the network in "
                   "clear; set tls_certificate and tls_key, or plain_http = yes behind a "
                   "TLS-terminating reverse proxy"));
    };

    kj::Vector<kj::Own<kj::ConnectionReceiver>> receivers;
    kj::Vector<kj::String> names;
    for (int i = 0; i < activated; i++) {
      int fd = SD_LISTEN_FDS_START + i;
      requireSafe(kj::str("the socket from systemd (fd ", fd, ")"), isLoopbackFd(fd));
      receivers.add(
          io.lowLevelProvider->wrapListenSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP));
      names.add(kj::str("fd:", fd));
    }
    for (auto& address : listen) {
      kj::Own<kj::NetworkAddress> addr;
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                    addr = io.provider->getNetwork().parseAddress(address).wait(ws);
                  })) {
        fail(listenStatus(*e), kj::str("cannot listen on ", address, ": ", listenProblem(*e)));
      }
      requireSafe(address, isLoopback(addr->toString()));
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { receivers.add(addr->listen()); })) {
        fail(listenStatus(*e), kj::str("cannot listen on ", address, ": ", listenProblem(*e)));
      }
      names.add(kj::heapString(address));
    }

    // /metrics: its own server and router on its own address, never the public one.
    http::Router metricsRouter;
    http::HttpServer metricsServer(io.provider->getTimer(), kj::systemCoarseCalendarClock(),
                                   kj::systemPreciseMonotonicClock(), entropy, metricsRouter);
    kj::Own<kj::ConnectionReceiver> metricsReceiver;
    if (metricsOn) {
      addMetricsRoute(metricsRouter, metrics, gateway.vault(), io.provider->getTimer(),
                      gateway.server());
      kj::Own<kj::NetworkAddress> addr;
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                    addr = io.provider->getNetwork().parseAddress(metricsListen).wait(ws);
                    if (!isLoopback(addr->toString()) && !plainAnywhere) {
                      fail(base::EXIT_CONFIG,
                           kj::str("metrics_listen ", metricsListen,
                                   " is not a loopback address; use 127.0.0.1:PORT (or "
                                   "plain_http = yes to serve metrics beyond this host)"));
                    }
                    metricsReceiver = addr->listen();
                  })) {
        fail(listenStatus(*e),
             kj::str("cannot listen on metrics_listen ", metricsListen, ": ", listenProblem(*e)));
      }
      names.add(kj::str(metricsListen, " (metrics)"));
    }

    kj::Vector<kj::Promise<void>> serving;
    if (metricsOn) serving.add(metricsServer.listen(*metricsReceiver));
    kj::Maybe<http::StreamUpgrade&> upgrade;
    KJ_IF_MAYBE(t, tls) { upgrade = **t; }
    for (auto& r : receivers) serving.add(gateway.listen(*r, upgrade));
    // SIGHUP (systemctl reload): the TLS certificate and key are read again; connections
    // already open keep the pair they were made with.
    auto reloading = reloadOnHangup(io.unixEventPort, tls).eagerlyEvaluate(nullptr);
    auto failed = kj::joinPromises(serving.releaseAsArray()).then([]() -> kj::String {
      return kj::str("listeners closed");
    });
    auto stop =
        io.unixEventPort.onSignal(SIGTERM)
            .exclusiveJoin(io.unixEventPort.onSignal(SIGINT))
            .then([](siginfo_t info) -> kj::String { return kj::str("signal ", info.si_signo); });

    StderrLog::info(kj::str(
        "credvault-gateway ", CREDVAULT_VERSION, " listening on ", kj::strArray(names, ", "),
        tls != nullptr ? " (HTTPS)" : " (plain HTTP)", "; vault socket ", socket,
        prefix.size() > 0 ? kj::str("; prefix ", prefix) : kj::str(),
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
    metricsServer.drain().wait(ws);
    StderrLog::info("stopped");
    return true;
  }
};

}  // namespace
}  // namespace credvault::frontends

KJ_MAIN(credvault::frontends::GatewayMain)
