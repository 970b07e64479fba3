// credvaultd — main only wires: configuration, hardening, key, store, vault, listener.

#include "base/parse-int.h"
#include "config.h"
#include "expiry.h"
#include "group-commit.h"
#include "blocking-pool.h"
#include "listener.h"
#include "log.h"
#include "rpc-server.h"
#include "state-dir.h"
#include "store-health.h"
#include "verify.h"
#include "storage.h"
#include "migrate.h"
#include "system.h"
#include "core/vault.h"
#include "ipc/client.h"
#include "crypto/masterkey.h"
#include "credvault-config.h"
#include "base/config-file.h"
#include "base/exit-status.h"

#include <kj/async-unix.h>
#include <kj/debug.h>
#include <kj/main.h>
#include <kj/filesystem.h>
#include <kj/io.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <string.h>
#include <unistd.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

namespace credvault::daemon {

class Main {
 public:
  explicit Main(kj::ProcessContext& context) : context_(context), config_(defaultConfig()) {}

  kj::MainFunc getMain() {
    // MainBuilder keeps the version as a StringPtr: it must outlive the builder (a
    // temporary kj::String here printed freed memory for --version).
    return kj::MainBuilder(context_, "credvaultd " CREDVAULT_VERSION,
                           "The credvault daemon: keeps credentials sealed in an LMDB state "
                           "directory (or a PostgreSQL database shared by several hosts) and "
                           "serves them over a Unix socket.")
        .addOptionWithArg({"config"}, KJ_BIND_METHOD(*this, setConfig), "<file>",
                          "Read settings from <file> (default " CREDVAULT_DEFAULT_CONFIG
                          " if it exists).")
        .addOptionWithArg({"state-dir"}, KJ_BIND_METHOD(*this, setStateDir), "<dir>",
                          "Keep the database in <dir>.")
        .addOptionWithArg({"socket"}, KJ_BIND_METHOD(*this, setSocket), "<path>",
                          "Listen on the Unix socket <path> (unless systemd passes one).")
        .addOptionWithArg({"key-file"}, KJ_BIND_METHOD(*this, setKeyFile), "<path>",
                          "Master key file (default STATE_DIR/master.key).")
        .addOption({"create-key"}, KJ_BIND_METHOD(*this, setCreateKey),
                   "Create the key file if there is no key (first start).")
        .addOptionWithArg({"generate-key"}, KJ_BIND_METHOD(*this, generateKey), "<path>",
                          "Write a new master key file (mode 0600) and exit.")
        .addOptionWithArg({"set"}, KJ_BIND_METHOD(*this, setOption), "<key=value>",
                          "Override one configuration setting.")
        .addOption({"verify"}, KJ_BIND_METHOD(*this, setVerifyOnly),
                   "Verify the vault (every page, record, index and count) and exit: 0 when "
                   "it is sound, 65 when it is damaged.")
        .addOptionWithArg({"migrate-to"}, KJ_BIND_METHOD(*this, setMigrateTo), "<config>",
                          "Copy this vault, sealed records as they are, into the store that the "
                          "configuration file <config> names (storage, state_dir, postgresql), "
                          "verify the copy by count and by opening every record, and exit. "
                          "Offline: refused while a daemon holds the state directory.")
        .addOption({"migrate-replace"}, KJ_BIND_METHOD(*this, setMigrateReplace),
                   "With --migrate-to: replace a destination that already holds a vault.")
        .callAfterParsing(KJ_BIND_METHOD(*this, run))
        .build();
  }

 private:
  kj::ProcessContext& context_;
  Config config_;
  kj::Maybe<kj::String> configFile_;  // --config
  // Command-line settings in order, applied after the file: (option, key=value). `--set`
  // goes through the file's dialect; the named options take their value as given.
  struct Override {
    kj::StringPtr option;
    kj::String key;  // empty for --set
    kj::String value;
  };
  kj::Vector<Override> overrides_;
  bool verifyOnly_ = false;
  kj::Maybe<kj::String> migrateTo_;
  bool migrateReplace_ = false;

  kj::MainBuilder::Validity setMigrateTo(kj::StringPtr path) {
    migrateTo_ = kj::heapString(path);
    return true;
  }
  kj::MainBuilder::Validity setMigrateReplace() {
    migrateReplace_ = true;
    return true;
  }

  // A refused start (daemon/state-dir.h): the same one line and priority as fatal().
  [[noreturn]] void refuse(const StartRefused& r) { fatal(r.exitCode, r.message); }

  kj::MainBuilder::Validity setConfig(kj::StringPtr path) {
    configFile_ = kj::heapString(path);
    return true;
  }
  kj::MainBuilder::Validity setStateDir(kj::StringPtr v) {
    return set("--state-dir", "state_dir", v);
  }
  kj::MainBuilder::Validity setSocket(kj::StringPtr v) { return set("--socket", "socket", v); }
  kj::MainBuilder::Validity setKeyFile(kj::StringPtr v) { return set("--key-file", "key_file", v); }
  kj::MainBuilder::Validity setCreateKey() {
    config_.createKey = true;
    return true;
  }
  kj::MainBuilder::Validity setVerifyOnly() {
    verifyOnly_ = true;
    return true;
  }
  kj::MainBuilder::Validity setOption(kj::StringPtr kv) {
    overrides_.add(Override{"--set", kj::str(), kj::heapString(kv)});
    return true;
  }
  kj::MainBuilder::Validity set(kj::StringPtr option, kj::StringPtr key, kj::StringPtr value) {
    overrides_.add(Override{option, kj::heapString(key), kj::heapString(value)});
    return true;
  }

  // A problem the operator can fix: one line saying what is wrong and what to do (never a
  // stack), at priority "crit" in the journal or on stderr, then exit with `status`
  // (base/exit-status.h, docs/operations.md).
  KJ_NORETURN(void fatal(int status, kj::StringPtr message)) {
    logf(Level::CRITICAL, message);
    fflush(stderr);
    _exit(status);
  }

  // The configuration file: --config's (it must exist), else the packaged default if present.
  void loadConfigFile() {
    bool explicitFile = configFile_ != nullptr;
    kj::String path = explicitFile ? kj::heapString(KJ_ASSERT_NONNULL(configFile_))
                                   : kj::heapString(CREDVAULT_DEFAULT_CONFIG);
    int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      int error = errno;
      if (!explicitFile && error == ENOENT) return;
      if (error == ENOENT) {
        fatal(base::EXIT_CONFIG, kj::str("the configuration file ", path,
                                         " does not exist; pass an existing file to --config"));
      }
      fatal(error == EACCES ? base::EXIT_NO_PERMISSION : base::EXIT_CONFIG,
            kj::str("cannot read the configuration file ", path, ": ", strerror(error),
                    error == EACCES ? "; make it readable by the daemon's user" : ""));
    }
    kj::FdInputStream in((kj::AutoCloseFd(fd)));
    kj::String text;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions(
                       [&]() { text = in.readAllText(base::MAX_CONFIG_FILE_BYTES + 1); })) {
      fatal(base::EXIT_CONFIG, kj::str("cannot read the configuration file ", path,
                                       explicitFile ? " (is it a regular file?)" : ""));
    }
    KJ_IF_MAYBE(error, applyConfigFile(config_, path, text)) { fatal(base::EXIT_CONFIG, *error); }
  }

  void applyOverrides() {
    for (auto& o : overrides_) {
      kj::Maybe<kj::String> error;
      if (o.key.size() == 0) {
        error = applyOption(config_, o.option, o.value);
      } else {
        KJ_IF_MAYBE(message, applySetting(config_, o.key, o.value)) {
          error = kj::str(o.option, ": ", *message);
        }
      }
      KJ_IF_MAYBE(e, error) { fatal(base::EXIT_CONFIG, *e); }
    }
  }

  kj::MainBuilder::Validity generateKey(kj::StringPtr path) {
    hardenProcess();
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { crypto::createKeyFile(path); })) {
      fatal(base::EXIT_CANNOT_CREATE, e->getDescription());
    }
    context_.exitInfo(kj::str("wrote a new master key to ", path));
    KJ_UNREACHABLE;  // exitInfo() does not return
  }

  // gateway_uids as uids: numbers as they are, names through the user database. The default
  // (unset) is the packaged gateway's user, when the host has it.
  kj::Array<uint32_t> resolveGatewayUids() {
    kj::Vector<uint32_t> out;
    if (!config_.gatewayUidsSet) {
      KJ_IF_MAYBE(uid, uidOfUser("credvault-gateway")) { out.add(*uid); }
      return out.releaseAsArray();
    }
    for (auto& item : config_.gatewayUids) {
      KJ_IF_MAYBE(n, base::unsignedOrNull(item, UINT32_MAX - 1)) {
        out.add(static_cast<uint32_t>(*n));
      } else KJ_IF_MAYBE(uid, uidOfUser(item)) {
        out.add(*uid);
      } else {
        fatal(base::EXIT_CONFIG, kj::str("gateway_uids: there is no user named ", item,
                                         "; name an existing user or uid"));
      }
    }
    return out.releaseAsArray();
  }

  static kj::Maybe<uint32_t> uidOfUser(kj::StringPtr name) {
    struct passwd pw;
    struct passwd* found = nullptr;
    char buf[4096];
    if (getpwnam_r(name.cStr(), &pw, buf, sizeof(buf), &found) == 0 && found != nullptr) {
      return static_cast<uint32_t>(found->pw_uid);
    }
    return nullptr;
  }

  // Every hour: the failed-login counts idle for an hour leave the shared store.
  static kj::Promise<void> sweepFailures(kj::Timer& timer, BlockingPool& pool,
                                         core::Authenticator& auth) {
    return timer.afterDelay(1 * kj::HOURS).then([&timer, &pool, &auth]() {
      return pool.run<uint32_t>([&auth]() { return auth.sweepFailures(); })
          .then([&timer, &pool, &auth](Outcome<uint32_t> swept) {
            KJ_IF_MAYBE(f, swept.failure) {
              logf(Level::WARNING, kj::str("the failure sweep did not run: ", f->getDescription()));
            }
            return sweepFailures(timer, pool, auth);
          });
    });
  }

  // SIGHUP reopens the audit log (after logrotate moved it).
  static kj::Promise<void> reopenOnHangup(kj::UnixEventPort& port, AuditLog& audit) {
    return port.onSignal(SIGHUP).then([&port, &audit](siginfo_t) {
      audit.reopen();
      logf(Level::INFO, "reopened the audit log");
      return reopenOnHangup(port, audit);
    });
  }

  // The master key, or one line saying what is wrong with which file (crypto/masterkey.h).
  crypto::LoadedMasterKey loadKey(const crypto::MasterKeyOptions& options) {
    crypto::LoadedMasterKey key;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { key = crypto::loadMasterKey(options); })) {
      fatal(base::EXIT_BAD_KEY, e->getDescription());
    }
    return key;
  }

  // The state directory exists (created 0700 if not) and the daemon may use it.
  void checkStateAccess() {
    auto& dir = config_.stateDir;
    if (mkdir(dir.cStr(), 0700) != 0 && errno != EEXIST) {
      int error = errno;
      fatal(error == EACCES ? base::EXIT_NO_PERMISSION : base::EXIT_CANNOT_CREATE,
            kj::str("cannot create the state directory ", dir, ": ", strerror(error),
                    "; create it for the daemon's user or set state_dir"));
    }
    struct stat st;
    if (stat(dir.cStr(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      fatal(base::EXIT_CONFIG, kj::str("the state directory ", dir,
                                       " is not a directory; set state_dir to a directory"));
    }
    if (access(dir.cStr(), R_OK | W_OK | X_OK) != 0) {
      fatal(base::EXIT_NO_PERMISSION,
            kj::str("the state directory ", dir, " is not writable by uid ", geteuid(), ": ",
                    strerror(errno), "; chown it to the daemon's user (chown -R)"));
    }
    for (auto name : {"data.mdb", "lock.mdb"}) {
      auto path = kj::str(dir, "/", name);
      if (access(path.cStr(), F_OK) == 0 && access(path.cStr(), R_OK | W_OK) != 0) {
        fatal(base::EXIT_NO_PERMISSION, kj::str(path, " is not readable and writable by uid ",
                                                geteuid(), ": ", strerror(errno),
                                                "; chown the state directory to the daemon's user "
                                                "(chown -R)"));
      }
    }
  }

  kj::MainBuilder::Validity run() {
    hardenProcess();
    // Big blocks (answers of long lists, up to 128 MiB) from mmap and back to the system when
    // freed: glibc's dynamic threshold would otherwise move to their size after the first one
    // and keep every later one in the heap, which a client that reads nothing can then pin.
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    loadConfigFile();
    applyOverrides();
    setLogLevel(config_.logLevel);

    // Signals must be captured before any thread starts.
    kj::UnixEventPort::captureSignal(SIGTERM);
    kj::UnixEventPort::captureSignal(SIGINT);
    kj::UnixEventPort::captureSignal(SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    auto io = kj::setupAsyncIo();
    io.waitScope.setBusyPollInterval(ipc::BUSY_POLL_INTERVAL);

    checkStateAccess();
    const char* credDir = getenv("CREDENTIALS_DIRECTORY");
    crypto::MasterKeyOptions keyOptions;
    if (credDir != nullptr && *credDir != '\0') keyOptions.credentialsDirectory = credDir;
    auto keyPath = config_.keyFilePath();
    keyOptions.keyFile = keyPath;

    kj::Maybe<kj::StringPtr> credentialsDirectory;
    if (credDir != nullptr && *credDir != '\0') credentialsDirectory = kj::StringPtr(credDir);
    KJ_IF_MAYBE(destination, migrateTo_) {
      runMigration(*destination, keyOptions, credentialsDirectory);
    }
    if (config_.storage == Storage::POSTGRESQL) {
      runPostgres(io, keyOptions, credentialsDirectory);
    } else {
      runLmdb(io, keyOptions);
    }
    return true;
  }

  // --migrate-to: this configuration's store into the one `destinationFile` names (daemon/
  // migrate.h). Exits.
  [[noreturn]] void runMigration(kj::StringPtr destinationFile,
                                 crypto::MasterKeyOptions& keyOptions,
                                 kj::Maybe<kj::StringPtr> credentialsDirectory) {
    Config destination = defaultConfig();
    {
      Config mine = kj::mv(config_);
      config_ = defaultConfig();
      configFile_ = kj::heapString(destinationFile);
      loadConfigFile();
      destination = kj::mv(config_);
      config_ = kj::mv(mine);
    }
    kj::Vector<kj::Own<StateLock>> locks;
    // Opens one side: an LMDB state directory under its lock (so no daemon runs on it), or a
    // PostgreSQL database that no daemon is connected to (the operator stops them first).
    auto open = [&](const Config& c, bool source) -> kj::Own<store::Store> {
      try {
        if (c.storage == Storage::POSTGRESQL) {
          refuseWhileDaemonsConnected(c, credentialsDirectory);
          return openPostgresStore(c, credentialsDirectory, source);
        }
        if (source) {
          if (!store::inspectDataFile(c.stateDir).exists) {
            throw StartRefused{EXIT_NO_VAULT, kj::str("no vault in ", c.stateDir)};
          }
          checkStateDirectory(c.stateDir, false);
        } else if (mkdir(c.stateDir.cStr(), 0700) != 0 && errno != EEXIST) {
          throw StartRefused{base::EXIT_CANNOT_CREATE, kj::str("cannot create the state directory ",
                                                               c.stateDir, ": ", strerror(errno))};
        }
        locks.add(lockStateDirectory(c.stateDir));
        store::Options options;
        options.readOnly = source;
        return kj::heap<store::Environment>(c.stateDir, options);
      } catch (StartRefused& r) { refuse(r); }
    };
    auto conninfo = [](const Config& c) -> kj::StringPtr {
      KJ_IF_MAYBE(p, c.postgresql) { return *p; }
      return "";
    };
    if (config_.storage == destination.storage &&
        (config_.storage == Storage::LMDB ? config_.stateDir == destination.stateDir
                                          : conninfo(config_) == conninfo(destination))) {
      fatal(base::EXIT_CONFIG, "--migrate-to names the vault's own store; name another one");
    }
    auto from = open(config_, true);
    auto key = loadKey(keyOptions);
    auto to = open(destination, false);
    MigrationReport report;
    try {
      report = migrateStore(*from, *to, key.key, migrateReplace_);
    } catch (MigrationRefused& r) { fatal(base::EXIT_CANNOT_CREATE, r.message); }
    if (destination.storage == Storage::LMDB) markVault(destination.stateDir);
    context_.exitInfo(kj::str("migrated ", report.records, " records in ", report.tables.size(),
                              " tables from ", from->backendName(), " ", from->location(), " to ",
                              to->backendName(), " ", to->location(), "; verified ",
                              report.verified.credentials, " credentials of ",
                              report.verified.associates, " associates"));
    KJ_UNREACHABLE;
  }

  // The embedded default: one LMDB environment in the state directory.
  void runLmdb(kj::AsyncIoContext& io, crypto::MasterKeyOptions& keyOptions) {
    if (verifyOnly_) {
      // Read-only and without the lock: a running daemon's vault can be verified too.
      if (!store::inspectDataFile(config_.stateDir).exists) {
        refuse({EXIT_NO_VAULT, kj::str("no vault in ", config_.stateDir)});
      }
      try {
        checkStateDirectory(config_.stateDir, false);
      } catch (StartRefused& r) { refuse(r); }
      auto key = loadKey(keyOptions);
      auto result = verifyInChild(config_.stateDir, key.key);
      if (!result.ok) refuse({result.damaged ? EXIT_DAMAGED : 1, kj::mv(result.message)});
      context_.exitInfo(kj::str(config_.stateDir, ": ", result.message));
    }

    // One daemon per state directory, before anything touches the socket or the data.
    kj::Own<StateLock> stateLock;
    VaultPresence presence = VaultPresence::EXISTS;
    try {
      stateLock = lockStateDirectory(config_.stateDir);
      presence = checkStateDirectory(config_.stateDir, config_.createKey);
    } catch (StartRefused& r) { refuse(r); }
    // Only a new vault gets a new key: on an existing database a missing key is an error
    // (creating one would only lead to "wrong master key" and leave a stray file).
    keyOptions.createIfMissing = config_.createKey && presence == VaultPresence::NEW;
    auto key = loadKey(keyOptions);
    logf(Level::INFO, kj::str("master key from ", key.source),
         LogField{"KEY_FINGERPRINT", crypto::Keyring::fingerprint(key.key)});

    core::VaultOptions vaultOptions;
    vaultOptions.passwordParams = config_.password;
    kj::String verification;
    if (presence == VaultPresence::NEW) {
      createVault(config_.stateDir, [&](store::Environment& fresh) {
        core::Vault created(fresh, crypto::Secret::copyOf(key.key.reveal()),
                            kj::systemPreciseCalendarClock(), vaultOptions);
      });
      logf(Level::NOTICE, kj::str("created a new vault in ", config_.stateDir));
      verification = kj::str("new vault");
    } else if (config_.verifyOnStart) {
      // Before any thread starts: the walk runs in a forked child (daemon/verify.h).
      auto result = verifyInChild(config_.stateDir, key.key);
      if (!result.ok) refuse({result.damaged ? EXIT_DAMAGED : 1, kj::mv(result.message)});
      logf(Level::INFO, result.message);
      verification = kj::mv(result.message);
    } else {
      logf(Level::WARNING, "verification skipped (verify_on_start = false)");
      verification = kj::str("skipped (verify_on_start = false)");
    }

    store::Environment env(config_.stateDir);
    kj::Own<core::Vault> vaultOwner;
    auto source = kj::heapString(key.source);
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                  vaultOwner = kj::heap<core::Vault>(
                      env, kj::mv(key.key), kj::systemPreciseCalendarClock(), vaultOptions);
                })) {
      if (strstr(e->getDescription().cStr(), "wrong master key") != nullptr) {
        fatal(base::EXIT_BAD_KEY,
              kj::str("wrong master key: the key from ", source, " does not open the vault in ",
                      config_.stateDir, "; start with the key this vault was created with"));
      }
      kj::throwFatalException(kj::mv(*e));  // not an operator's problem: keep the report
    }
    markVault(config_.stateDir);
    serve(io, env, *vaultOwner, kj::mv(verification));
  }

  // The wrong key for an existing vault: one line naming this key, so that the operator can
  // compare it with the key the other hosts (or the vault's creator) use.
  [[noreturn]] void wrongKey(kj::StringPtr source, kj::StringPtr fingerprint, kj::StringPtr where) {
    fatal(base::EXIT_BAD_KEY,
          kj::str("wrong master key: the key from ", source, " (fingerprint ", fingerprint,
                  ") does not open the vault in ", where,
                  "; start with the key this vault was created with (every host sharing a "
                  "database loads the same key; see docs/operations.md)"));
  }

  // Several hosts, one vault: the records live in a PostgreSQL database (daemon/storage.h).
  // The state directory holds this host's socket, lock and key file only.
  void runPostgres(kj::AsyncIoContext& io, crypto::MasterKeyOptions& keyOptions,
                   kj::Maybe<kj::StringPtr> credentialsDirectory) {
    if (verifyOnly_) {
      // Read-only: nothing is created, and a running daemon's vault can be verified too.
      kj::Own<store::Store> db;
      try {
        db = openPostgresStore(config_, credentialsDirectory, true);
      } catch (StartRefused& r) { refuse(r); }
      if (!storeHasVault(*db)) {
        refuse({EXIT_NO_VAULT, kj::str("no vault in the PostgreSQL database ", db->location())});
      }
      auto key = loadKey(keyOptions);
      auto fingerprint = crypto::Keyring::fingerprint(key.key);
      kj::Own<core::Vault> vault;
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                    vault = kj::heap<core::Vault>(*db, kj::mv(key.key),
                                                  kj::systemPreciseCalendarClock());
                  })) {
        if (strstr(e->getDescription().cStr(), "wrong master key") != nullptr) {
          wrongKey(key.source, fingerprint, db->location());
        }
        kj::throwFatalException(kj::mv(*e));
      }
      auto result = verifyInProcess(*vault);
      if (!result.ok) refuse({result.damaged ? EXIT_DAMAGED : 1, kj::mv(result.message)});
      context_.exitInfo(kj::str(db->location(), ": ", result.message));
    }

    // One daemon per state directory (this host's socket and key), before anything else.
    kj::Own<StateLock> stateLock;
    try {
      stateLock = lockStateDirectory(config_.stateDir);
    } catch (StartRefused& r) { refuse(r); }
    kj::Own<store::Store> db;
    try {
      db = openPostgresStore(config_, credentialsDirectory, false);
    } catch (StartRefused& r) { refuse(r); }
    // Only an empty database gets a new key: against a database that has keys, a missing key
    // is an error, never a fresh key (it would only be refused, or worse, wrap new data keys
    // that the other hosts cannot open).
    bool fresh = !storeHasVault(*db);
    keyOptions.createIfMissing = config_.createKey && fresh;
    if (fresh && !config_.createKey) {
      // As for an empty LMDB state directory, creating a vault is a decision (--create-key):
      // an empty database may just as well be the wrong one.
      refuse({EXIT_NO_VAULT, kj::str("no vault in the PostgreSQL database ", db->location(),
                                     "; start one host once with --create-key to create it "
                                     "(the other hosts then load the same key)")});
    }
    auto key = loadKey(keyOptions);
    auto fingerprint = crypto::Keyring::fingerprint(key.key);
    logf(Level::INFO, kj::str("master key from ", key.source),
         LogField{"KEY_FINGERPRINT", kj::str(fingerprint)});

    core::VaultOptions vaultOptions;
    vaultOptions.passwordParams = config_.password;
    kj::Own<core::Vault> vaultOwner;
    auto source = kj::heapString(key.source);
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                  vaultOwner = kj::heap<core::Vault>(
                      *db, kj::mv(key.key), kj::systemPreciseCalendarClock(), vaultOptions);
                })) {
      if (strstr(e->getDescription().cStr(), "wrong master key") != nullptr) {
        wrongKey(source, fingerprint, db->location());
      }
      try {
        refuseIfStorageFailure(*e);
      } catch (StartRefused& r) { refuse(r); }
      kj::throwFatalException(kj::mv(*e));
    }
    kj::String verification;
    if (fresh) {
      logf(Level::NOTICE,
           kj::str("created a new vault in the PostgreSQL database ", db->location()),
           LogField{"KEY_FINGERPRINT", kj::str(fingerprint)});
      verification = kj::str("new vault");
    } else if (config_.verifyOnStart) {
      // No page walk (the server keeps its own pages): every record opened and every index
      // and count checked in this process, before serving (docs/operations.md: its cost).
      auto result = verifyInProcess(*vaultOwner);
      if (!result.ok) {
        refuse({result.damaged ? EXIT_DAMAGED : base::EXIT_UNAVAILABLE, kj::mv(result.message)});
      }
      logf(Level::INFO, result.message);
      verification = kj::mv(result.message);
    } else {
      logf(Level::WARNING, "verification skipped (verify_on_start = false)");
      verification = kj::str("skipped (verify_on_start = false)");
    }
    serve(io, *db, *vaultOwner, kj::mv(verification));
  }

  // Serves `vault` until SIGTERM: the same for every backend.
  void serve(kj::AsyncIoContext& io, store::Store& env, core::Vault& vault,
             kj::String verification) {
    core::AuthOptions authOptions;
    authOptions.ticketLifetimeSeconds = config_.ticketLifetimeSeconds;
    authOptions.onlineMode = config_.onlineMode;
    core::Authenticator auth(vault, kj::systemPreciseCalendarClock(), authOptions);
    StoreHealth storeHealth(kj::systemPreciseCalendarClock(), kj::systemPreciseMonotonicClock());
    GroupCommitter committer(env, storeHealth);
    // One password hash per core at a time: bounds both CPU and Argon2id's memory.
    BlockingPool passwords(2);
    core::IdentityOptions identityOptions;
    identityOptions.systemUids = kj::heapArray(config_.systemUids.asPtr());
    identityOptions.gatewayUids = resolveGatewayUids();
    core::Identity identity(vault, auth, kj::systemPreciseCalendarClock(), kj::mv(identityOptions));
    kj::Own<AuditLog> auditLog;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions(
                       [&]() { auditLog = kj::heap<AuditLog>(config_.auditOptions()); })) {
      // One line that says what to do (its text is ours: a path and an errno).
      fatal(base::EXIT_CANNOT_CREATE, e->getDescription());
    }
    AuditLog& audit = *auditLog;
    Service service(vault, auth, identity, committer, passwords, audit,
                    kj::systemPreciseCalendarClock());
    service.options.passwordQueuePerUid = config_.passwordQueuePerUid;
    service.options.passwordQueuePerClient = config_.passwordQueuePerClient;
    service.storeHealth = storeHealth;
    service.verification = kj::mv(verification);
    // With a database: one short-read worker per connection for transactions (more would only
    // wait for a connection; docs/design.md).
    if (env.mayBlock()) service.setReadWorkers(config_.postgresqlConnections);

    kj::Own<kj::ConnectionReceiver> receiver;
    // Ours to remove at a clean stop (systemd owns its own); the file's identity, so that a
    // socket another instance has put there since is left alone.
    kj::Maybe<SocketIdentity> boundSocket;
    KJ_IF_MAYBE(fd, socketFromSystemd()) {
      receiver =
          io.lowLevelProvider->wrapListenSocketFd(*fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
      logf(Level::INFO, "listening on the socket from systemd");
    } else {
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                    receiver =
                        bindUnixSocket(*io.lowLevelProvider, config_.socket, config_.socketMode);
                  })) {
        fatal(base::EXIT_UNAVAILABLE,
              kj::str("cannot listen on the socket ", config_.socket, ": ", e->getDescription()));
      }
      KJ_IF_MAYBE(id, socketIdentity(config_.socket)) { boundSocket = *id; }
      logf(Level::INFO, kj::str("listening on ", config_.socket));
    }
    auto counts = vault.counts();
    auto listener =
        kj::heap<Listener>(service, kj::mv(receiver), io.provider->getTimer(), config_.transport);
    auto accepting = listener->run().eagerlyEvaluate([](kj::Exception&& e) {
      logf(Level::ERROR, kj::str("accept failed: ", e.getDescription()));
    });
    auto watchdog = watchdogLoop(io.provider->getTimer()).eagerlyEvaluate(nullptr);
    auto reopening = reopenOnHangup(io.unixEventPort, audit).eagerlyEvaluate(nullptr);
    kj::Promise<void> expiry = kj::READY_NOW;
    if (config_.expiryWarningDays > 0) {
      expiry = expiryWarnings(io.provider->getTimer(), service.maintenance(), vault,
                              kj::systemPreciseCalendarClock(), config_.expiryWarningDays)
                   .eagerlyEvaluate([](kj::Exception&& e) {
                     logf(Level::ERROR, kj::str("expiry warnings stopped: ", e.getDescription()));
                   });
    }
    // A store shared by several hosts keeps the failed-login counts in the database (core/
    // throttle.h): entries idle for an hour are swept hourly, on the maintenance worker (a
    // write transaction never runs on the event loop). In-process counts need no sweep.
    kj::Promise<void> sweeping =
        auth.failuresInStore()
            ? sweepFailures(io.provider->getTimer(), service.maintenance(), auth)
                  .eagerlyEvaluate([](kj::Exception&& e) {
                    logf(Level::ERROR, kj::str("failure sweep stopped: ", e.getDescription()));
                  })
            : kj::Promise<void>(kj::READY_NOW);
    notify("READY=1");
    logf(Level::NOTICE, "credvaultd ready", LogField{"CREDENTIALS", kj::str(counts.credentials)},
         LogField{"ASSOCIATES", kj::str(counts.associates)},
         LogField{"STATE_DIR", kj::str(config_.stateDir)},
         LogField{"STORAGE", kj::str(env.backendName(), " ", env.location())});

    auto& port = io.unixEventPort;
    port.onSignal(SIGTERM).exclusiveJoin(port.onSignal(SIGINT)).wait(io.waitScope);

    notify("STOPPING=1");
    logf(Level::NOTICE, "stopping");
    // Stop accepting; answer every call already received (new calls on open connections are
    // answered `unavailable`) and write the answers out, for at most drain_timeout; then
    // close the connections. The committer drains anything still queued to disk before the
    // environment closes.
    service.stopping = true;
    accepting = nullptr;
    listener->stopAccepting();
    auto deadline = io.provider->getTimer().now() + config_.drainTimeout;
    bool drained = listener->drain(deadline).wait(io.waitScope);
    if (!drained) {
      logf(Level::WARNING,
           kj::str("stopping with ", service.inFlight,
                   " calls still unanswered after drain_timeout; their clients see a "
                   "disconnect"));
    }
    // Answers out, then EOF: each client reads all of them before it sees the end.
    auto& timer = io.provider->getTimer();
    listener->closeGracefully(kj::min(deadline, timer.now() + 2 * kj::SECONDS)).wait(io.waitScope);
    listener = nullptr;
    expiry = nullptr;
    sweeping = nullptr;
    receiver = nullptr;
    // A script that waits for the socket to appear must not find the old one.
    KJ_IF_MAYBE(id, boundSocket) { removeSocketIf(config_.socket, *id); }
  }
};

}  // namespace credvault::daemon

KJ_MAIN(credvault::daemon::Main)
