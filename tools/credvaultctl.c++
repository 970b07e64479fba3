// credvaultctl — the command-line client. Talks to credvaultd over its socket as the
// calling user (the daemon identifies us by SO_PEERCRED). Secrets are read from stdin or a
// file, never from the command line; they are printed only by `get`, only when the daemon
// returned them. Exit codes are documented in credvaultctl(1) and docs/credvaultctl.md.

#include "ipc/client.h"
#include "credvault-config.h"

#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/vector.h>
#include <kj/map.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>
#include <signal.h>

namespace credvault::ctl {

enum Exit {
  OK = 0,
  USAGE = 1,
  NOT_AUTHENTICATED = 2,
  PERMISSION_DENIED = 3,
  INVALID_ARGUMENT = 4,
  NOT_FOUND = 5,
  LIMIT_EXCEEDED = 6,
  UNAVAILABLE = 7,
  INTEGRITY = 8,
  CONFLICT = 9,
  INTERNAL = 10,
  THROTTLED = 11,
  STORAGE_UNAVAILABLE = 12,  // the daemon runs but cannot store: disk full, I/O error
};

struct UsageError {
  kj::String message;
};
struct CommandFailed {
  int code;
};
// A local failure (a file that exists, cannot be created or written): exit USAGE, printed
// without the --help hint.
struct LocalError {
  kj::String message;
};

const char USAGE_TEXT[] =
    "usage: credvaultctl [--socket PATH] [--json] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  whoami\n"
    "  status\n"
    "  get TYPE [--associate ID]\n"
    "  save TYPE --public VALUE [--secret-stdin | --secret-file F] [--comment C]\n"
    "       [--valid-from T] [--valid-to T] [--inactive] [--associate ID]\n"
    "  remove TYPE PUBLIC [--associate ID]\n"
    "  associate add NAME [--uid N] [--system] [--user-admin] [--password-stdin]\n"
    "  associate list\n"
    "  associate show NAME\n"
    "  associate set ID [--name N] [--kind user|system] [--user-admin|--no-user-admin]\n"
    "       [--uid N|--no-uid] [--active|--inactive]\n"
    "  associate remove ID\n"
    "  associate passwd NAME --password-stdin\n"
    "  login NAME --password-stdin          print a ticket (7T:...)\n"
    "  ticket revoke (reads the ticket from stdin)\n"
    "  token add NAME [--expires T] [--associate ID]   print a new API token once\n"
    "  token list [--associate ID]\n"
    "  token revoke NAME [--associate ID]\n"
    "  app add NAME | app list | app remove NAME     partner applications\n"
    "  backup FILE                          stream a snapshot of the vault into a new FILE\n"
    "                                       (mode 0600, written as you; - for stdout)\n"
    "  audit-hash VALUE                     the keyed hash that audit records show for a\n"
    "                                       public value (- reads VALUE from stdin)\n"
    "  rotate-key                           add a data key; new records use it\n"
    "  change-master-key FILE               re-wrap all keys under the key in FILE\n"
    "\n"
    "With $CREDVAULT_TICKET set, commands act as that ticket's associate instead of\n"
    "the calling uid's.\n"
    "The socket is --socket, else $CREDVAULT_SOCKET, else " CREDVAULT_DEFAULT_SOCKET
    ".\n"
    "Exit codes: 0 ok, 1 usage, 2 not authenticated, 3 permission denied, 4 invalid\n"
    "argument, 5 not found, 6 limit exceeded, 7 daemon unavailable, 8 integrity error,\n"
    "9 conflict, 10 internal error, 11 throttled, 12 the vault's storage is failing\n"
    "(disk full or I/O error; retry once the operator fixed it).\n";

int exitFor(rpc::ErrorCode code) {
  switch (code) {
    case rpc::ErrorCode::INTERNAL:
      return INTERNAL;
    case rpc::ErrorCode::NOT_AUTHENTICATED:
      return NOT_AUTHENTICATED;
    case rpc::ErrorCode::PERMISSION_DENIED:
      return PERMISSION_DENIED;
    case rpc::ErrorCode::INVALID_ARGUMENT:
      return INVALID_ARGUMENT;
    case rpc::ErrorCode::NOT_FOUND:
      return NOT_FOUND;
    case rpc::ErrorCode::LIMIT_EXCEEDED:
      return LIMIT_EXCEEDED;
    case rpc::ErrorCode::UNAVAILABLE:
      return UNAVAILABLE;
    case rpc::ErrorCode::INTEGRITY:
      return INTEGRITY;
    case rpc::ErrorCode::CONFLICT:
      return CONFLICT;
    case rpc::ErrorCode::THROTTLED:
      return THROTTLED;
  }
  return INTERNAL;
}

kj::String jsonString(kj::ArrayPtr<const char> s) {
  kj::Vector<char> out;
  out.add('"');
  for (char c : s) {
    unsigned char u = c;
    switch (c) {
      case '"':
        out.addAll(kj::StringPtr("\\\""));
        break;
      case '\\':
        out.addAll(kj::StringPtr("\\\\"));
        break;
      case '\n':
        out.addAll(kj::StringPtr("\\n"));
        break;
      case '\r':
        out.addAll(kj::StringPtr("\\r"));
        break;
      case '\t':
        out.addAll(kj::StringPtr("\\t"));
        break;
      default:
        if (u < 0x20) {
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", u);
          out.addAll(kj::StringPtr(buf));
        } else {
          out.add(c);
        }
    }
  }
  out.add('"');
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

// Reads a secret from a file descriptor into memory that is wiped afterwards. One trailing
// newline is dropped (echo and heredocs add one).
kj::String readSecret(int fd, size_t limit) {
  kj::Vector<char> buf;
  char chunk[4096];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw UsageError{kj::str("cannot read the secret: ", strerror(errno))};
    }
    if (n == 0) break;
    buf.addAll(chunk, chunk + n);
    memset(chunk, 0, sizeof(chunk));
    if (buf.size() > limit + 2) {
      memset(buf.begin(), 0, buf.size());
      throw CommandFailed{LIMIT_EXCEEDED};
    }
  }
  if (buf.size() > 0 && buf.back() == '\n') buf.removeLast();
  if (buf.size() > 0 && buf.back() == '\r') buf.removeLast();
  auto out = kj::heapString(buf.begin(), buf.size());
  memset(buf.begin(), 0, buf.capacity() > 0 ? buf.size() : 0);
  return out;
}

void wipeString(kj::String& s) {
  if (s.size() > 0) explicit_bzero(s.begin(), s.size());
}

class Args {
 public:
  Args(kj::Vector<kj::StringPtr> args) : args_(kj::mv(args)) {}
  bool done() const { return pos_ >= args_.size(); }
  kj::StringPtr next(kj::StringPtr what) {
    if (done()) throw UsageError{kj::str("missing ", what)};
    return args_[pos_++];
  }
  kj::Maybe<kj::StringPtr> peek() const {
    if (done()) return nullptr;
    return args_[pos_];
  }
  // Collects --flag and --flag VALUE options; positional arguments in order.
  void parse(kj::ArrayPtr<const kj::StringPtr> flagsWithValue,
             kj::ArrayPtr<const kj::StringPtr> plainFlags) {
    while (!done()) {
      auto a = args_[pos_++];
      if (a.startsWith("--")) {
        bool known = false;
        for (auto f : flagsWithValue) {
          if (a == f) {
            if (done()) throw UsageError{kj::str(a, " needs a value")};
            values_.upsert(kj::heapString(a), kj::heapString(args_[pos_++]), [](auto&, auto&&) {});
            known = true;
          }
        }
        for (auto f : plainFlags) {
          if (a == f) {
            flags_.upsert(kj::heapString(a), true, [](auto&, auto&&) {});
            known = true;
          }
        }
        if (!known) throw UsageError{kj::str("unknown option ", a)};
      } else {
        positional_.add(a);
      }
    }
  }
  kj::Maybe<kj::StringPtr> value(kj::StringPtr flag) {
    KJ_IF_MAYBE(v, values_.find(flag)) { return v->asPtr(); }
    return nullptr;
  }
  bool flag(kj::StringPtr f) { return flags_.find(f) != nullptr; }
  kj::ArrayPtr<const kj::StringPtr> positional() { return positional_; }
  void expectPositional(size_t n, kj::StringPtr what) {
    if (positional_.size() < n) throw UsageError{kj::str("missing ", what)};
    if (positional_.size() > n) throw UsageError{kj::str("unexpected argument ", positional_[n])};
  }

 private:
  kj::Vector<kj::StringPtr> args_;
  size_t pos_ = 0;
  kj::HashMap<kj::String, kj::String> values_;
  kj::HashMap<kj::String, bool> flags_;
  kj::Vector<kj::StringPtr> positional_;
};

// The daemon resolves paths itself, in its own working directory: send absolute ones.
kj::String absolutePath(kj::StringPtr path) {
  if (path.startsWith("/")) return kj::heapString(path);
  char cwd[4096];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) throw UsageError{kj::str("cannot resolve path")};
  return kj::str(cwd, "/", path);
}

int64_t parseInt(kj::StringPtr s, kj::StringPtr what, int64_t min, int64_t max) {
  char* end;
  errno = 0;
  long long v = strtoll(s.cStr(), &end, 10);
  if (errno != 0 || end == s.cStr() || *end != '\0' || v < min || v > max) {
    throw UsageError{kj::str(what, " must be a number between ", min, " and ", max)};
  }
  return v;
}

// Where `backup` puts what the daemon streams: an open descriptor, written as it arrives.
// A failed write is remembered (errno) and refused to the daemon, which then stops.
class FileSink final : public rpc::ByteSink::Server {
 public:
  explicit FileSink(int fd) : fd_(fd) {}

  uint64_t written() const { return written_; }
  bool finished() const { return done_; }
  kj::Maybe<int> error() const { return error_; }
  // From now on every call is refused (the descriptor is about to be closed).
  void close() { closed_ = true; }

 protected:
  kj::Promise<void> write(WriteContext context) override {
    KJ_REQUIRE(!closed_ && !done_ && error_ == nullptr, "the backup sink is closed");
    auto data = context.getParams().getData();
    while (data.size() > 0) {
      ssize_t n = ::write(fd_, data.begin(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        error_ = errno;
        // The text goes to the daemon: no path, no detail.
        KJ_FAIL_REQUIRE("the client could not write the backup");
      }
      data = data.slice(n, data.size());
      written_ += n;
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext) override {
    KJ_REQUIRE(!closed_ && error_ == nullptr, "the backup sink is closed");
    done_ = true;
    return kj::READY_NOW;
  }

 private:
  int fd_;
  uint64_t written_ = 0;
  bool done_ = false;
  bool closed_ = false;
  kj::Maybe<int> error_;
};

// The backup file while it is partial, for the signal handler below (the one global: a
// handler has nowhere else to look).
const char* volatile partialBackup = nullptr;

// Ctrl-C, a hangup or a kill while a backup is written must not leave a truncated file that
// looks like a backup. unlink() is async-signal-safe; then die of the same signal.
void removePartialBackup(int sig) {
  const char* path = partialBackup;
  if (path != nullptr) unlink(path);
  signal(sig, SIG_DFL);
  raise(sig);
}

// Makes a new file's name durable, like its content.
void syncDirectoryOf(kj::StringPtr path) {
  kj::String dir;
  KJ_IF_MAYBE(slash, path.findLast('/')) {
    dir = *slash == 0 ? kj::str("/") : kj::heapString(path.slice(0, *slash));
  } else {
    dir = kj::str(".");
  }
  int fd = open(dir.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: the file itself is synced
  fsync(fd);
  close(fd);
}

class Ctl {
 public:
  Ctl(kj::AsyncIoContext& io, bool json) : io_(io), json_(json) {}

  void connect(kj::Maybe<kj::StringPtr> socket) {
    auto path = ipc::socketPath(socket);
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                  conn_ = ipc::connect(io_.provider->getNetwork(), path).wait(io_.waitScope);
                })) {
      fprintf(stderr, "credvaultctl: cannot reach credvaultd at %s\n", path.cStr());
      throw CommandFailed{UNAVAILABLE};
    }
  }

  int run(Args& args) {
    auto cmd = args.next("command");
    if (cmd == "whoami") return whoami(args);
    if (cmd == "status") return status(args);
    if (cmd == "get") return get(args);
    if (cmd == "save") return save(args);
    if (cmd == "remove") return remove(args);
    if (cmd == "associate") return associate(args);
    if (cmd == "backup") return backup(args);
    if (cmd == "audit-hash") return auditHash(args);
    if (cmd == "login") return login(args);
    if (cmd == "ticket") return ticket(args);
    if (cmd == "token") return token(args);
    if (cmd == "app") return app(args);
    if (cmd == "rotate-key") return rotateKey(args);
    if (cmd == "change-master-key") return changeMasterKey(args);
    throw UsageError{kj::str("unknown command ", cmd)};
  }

 private:
  kj::AsyncIoContext& io_;
  bool json_;
  kj::Own<ipc::Connection> conn_;

  template<typename Promise>
  auto wait(Promise&& p) {
    try {
      return p.wait(io_.waitScope);
    } catch (const kj::Exception& e) {
      if (e.getType() == kj::Exception::Type::DISCONNECTED) {
        fprintf(stderr, "credvaultctl: lost the connection to credvaultd\n");
        throw CommandFailed{UNAVAILABLE};
      }
      if (e.getType() == kj::Exception::Type::UNIMPLEMENTED) {
        fprintf(stderr,
                "credvaultctl: this credvaultd does not know the request (is it older than "
                "credvaultctl?)\n");
        throw CommandFailed{UNAVAILABLE};
      }
      fprintf(stderr, "credvaultctl: %s\n", e.getDescription().cStr());
      throw CommandFailed{INTERNAL};
    }
  }

  template<typename Results>
  void check(const Results& results) {
    if (!results.hasError()) return;
    auto err = results.getError();
    if (json_) {
      printf("{\"Error\":%s,\"Field\":%s,\"Message\":%s}\n",
             jsonString(ipc::errorCodeName(err.getCode())).cStr(),
             jsonString(err.getField()).cStr(), jsonString(err.getMessage()).cStr());
    }
    if (err.getField().size() > 0) {
      fprintf(stderr, "credvaultctl: %s (%s): %s\n", ipc::errorCodeName(err.getCode()).cStr(),
              err.getField().cStr(), err.getMessage().cStr());
    } else {
      fprintf(stderr, "credvaultctl: %s: %s\n", ipc::errorCodeName(err.getCode()).cStr(),
              err.getMessage().cStr());
    }
    // `unavailable` naming the store: the daemon is up but its disk is full or failing.
    if (err.getCode() == rpc::ErrorCode::UNAVAILABLE && err.getField() == "storage") {
      throw CommandFailed{STORAGE_UNAVAILABLE};
    }
    throw CommandFailed{exitFor(err.getCode())};
  }

  rpc::Session::Client session() {
    const char* ticket = getenv("CREDVAULT_TICKET");
    if (ticket != nullptr && *ticket != '\0') {
      auto req = conn_->vault().authenticateTicketRequest();
      req.setTicket(ticket);
      auto results = wait(req.send());
      check(results);
      return results.getSession();
    }
    auto results = wait(conn_->vault().sessionRequest().send());
    check(results);
    return results.getSession();
  }

  rpc::Admin::Client admin() {
    auto results = wait(session().adminRequest().send());
    check(results);
    return results.getAdmin();
  }

  static kj::StringPtr kindName(rpc::Kind k) { return k == rpc::Kind::SYSTEM ? "system" : "user"; }
  static kj::StringPtr methodName(rpc::AuthMethod m) {
    switch (m) {
      case rpc::AuthMethod::NONE:
        return "none";
      case rpc::AuthMethod::PEER_CREDENTIALS:
        return "peer-credentials";
      case rpc::AuthMethod::PASSWORD:
        return "password";
      case rpc::AuthMethod::TICKET:
        return "ticket";
      case rpc::AuthMethod::API_TOKEN:
        return "api-token";
    }
    return "none";
  }

  int whoami(Args& args) {
    args.parse(nullptr, nullptr);
    args.expectPositional(0, "");
    const char* ticket = getenv("CREDVAULT_TICKET");
    kj::Maybe<capnp::Response<rpc::Session::WhoamiResults>> viaTicket;
    kj::Maybe<capnp::Response<rpc::Vault::WhoamiResults>> viaPeer;
    rpc::Principal::Reader p;
    if (ticket != nullptr && *ticket != '\0') {
      auto r = wait(session().whoamiRequest().send());
      check(r);
      p = r.getPrincipal();
      viaTicket = kj::mv(r);
    } else {
      auto r = wait(conn_->vault().whoamiRequest().send());
      check(r);
      p = r.getPrincipal();
      viaPeer = kj::mv(r);
    }
    if (json_) {
      printf(
          "{\"AssociateId\":%d,\"Name\":%s,\"Kind\":%s,\"UserAdmin\":%s,\"Method\":%s,"
          "\"Uid\":%u}\n",
          p.getAssociateId(), jsonString(p.getName()).cStr(),
          jsonString(kindName(p.getKind())).cStr(), p.getUserAdmin() ? "true" : "false",
          jsonString(methodName(p.getMethod())).cStr(), p.getUid());
    } else if (p.getMethod() == rpc::AuthMethod::NONE) {
      printf("uid %u: not mapped to an associate\n", p.getUid());
    } else {
      printf("%s (associate %d, %s%s) by %s, uid %u\n", p.getName().cStr(), p.getAssociateId(),
             kindName(p.getKind()).cStr(), p.getUserAdmin() ? ", user admin" : "",
             methodName(p.getMethod()).cStr(), p.getUid());
    }
    return OK;
  }

  int status(Args& args) {
    args.parse(nullptr, nullptr);
    args.expectPositional(0, "");
    auto r = wait(conn_->vault().statusRequest().send());
    check(r);
    auto s = r.getStatus();
    if (json_) {
      printf(
          "{\"Version\":%s,\"Credentials\":%llu,\"Associates\":%llu,\"DataKeyId\":%u,"
          "\"MapSize\":%llu,\"UsedBytes\":%llu,\"UptimeSeconds\":%llu,\"Connections\":%u}\n",
          jsonString(s.getVersion()).cStr(), (unsigned long long)s.getCredentials(),
          (unsigned long long)s.getAssociates(), s.getDataKeyId(),
          (unsigned long long)s.getMapSize(), (unsigned long long)s.getUsedBytes(),
          (unsigned long long)s.getUptimeSeconds(), s.getConnections());
    } else {
      printf(
          "credvaultd %s: %llu credentials, %llu associates, data key %u, %llu of %llu "
          "bytes used, up %llus, %u connections\n",
          s.getVersion().cStr(), (unsigned long long)s.getCredentials(),
          (unsigned long long)s.getAssociates(), s.getDataKeyId(),
          (unsigned long long)s.getUsedBytes(), (unsigned long long)s.getMapSize(),
          (unsigned long long)s.getUptimeSeconds(), s.getConnections());
    }
    return OK;
  }

  void printCredential(rpc::Credential::Reader c, bool last) {
    if (json_) {
      printf(
          "{\"ValidFrom\":%s,\"ValidTo\":%s,\"Comment\":%s,\"SecretValue\":%s,"
          "\"PublicValue\":%s,\"IsActive\":%s}%s",
          jsonString(ipc::formatTicks(c.getValidFrom())).cStr(),
          jsonString(ipc::formatTicks(c.getValidTo())).cStr(), jsonString(c.getComment()).cStr(),
          c.hasSecretValue() ? jsonString(c.getSecretValue()).cStr() : "null",
          jsonString(c.getPublicValue()).cStr(), c.getIsActive() ? "true" : "false",
          last ? "" : ",");
    } else {
      printf("%s\t%s\t%s\t%s\t%s\t%s\n", c.getPublicValue().cStr(),
             c.hasSecretValue() ? c.getSecretValue().cStr() : "<withheld>",
             c.getIsActive() ? "active" : "inactive",
             c.getValidFrom() == 0 ? "-" : ipc::formatTicks(c.getValidFrom()).cStr(),
             c.getValidTo() == 0 ? "-" : ipc::formatTicks(c.getValidTo()).cStr(),
             c.getComment().cStr());
    }
  }

  int get(Args& args) {
    args.parse(kj::arr("--associate"_kj), nullptr);
    args.expectPositional(1, "TYPE");
    auto type = args.positional()[0];
    auto s = session();
    capnp::List<rpc::Credential>::Reader list;
    kj::Maybe<capnp::Response<rpc::Session::GetResults>> r1;
    kj::Maybe<capnp::Response<rpc::Session::GetForAssociateResults>> r2;
    KJ_IF_MAYBE(a, args.value("--associate")) {
      auto req = s.getForAssociateRequest();
      req.setAssociateId(parseInt(*a, "--associate", 1, INT32_MAX));
      req.setType(type);
      auto r = wait(req.send());
      check(r);
      list = r.getCredentials();
      r2 = kj::mv(r);
    } else {
      auto req = s.getRequest();
      req.setType(type);
      auto r = wait(req.send());
      check(r);
      list = r.getCredentials();
      r1 = kj::mv(r);
    }
    if (json_) printf("[");
    for (auto i : kj::indices(list)) printCredential(list[i], i + 1 == list.size());
    if (json_) printf("]\n");
    return OK;
  }

  int64_t ticksArg(Args& args, kj::StringPtr flag) {
    KJ_IF_MAYBE(v, args.value(flag)) {
      KJ_IF_MAYBE(t, ipc::parseTicks(*v)) { return *t; }
      throw UsageError{kj::str(flag, " must be a date like 2026-01-31 or 2026-01-31T12:00:00Z")};
    }
    return 0;
  }

  int save(Args& args) {
    args.parse(kj::arr("--public"_kj, "--secret-file"_kj, "--comment"_kj, "--valid-from"_kj,
                       "--valid-to"_kj, "--associate"_kj),
               kj::arr("--secret-stdin"_kj, "--inactive"_kj));
    args.expectPositional(1, "TYPE");
    auto pub = required(args.value("--public"), "--public VALUE");
    auto s = session();
    kj::Maybe<int32_t> target;
    KJ_IF_MAYBE(a, args.value("--associate")) {
      target = parseInt(*a, "--associate", 1, INT32_MAX);
    }
    kj::Maybe<kj::String> secret;
    if (args.flag("--secret-stdin")) {
      if (args.value("--secret-file") != nullptr) {
        throw UsageError{kj::str("give --secret-stdin or --secret-file, not both")};
      }
      secret = readSecret(STDIN_FILENO, 1 << 20);
    } else KJ_IF_MAYBE(f, args.value("--secret-file")) {
      int fd = open(f->cStr(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw UsageError{kj::str("cannot open ", *f, ": ", strerror(errno))};
      KJ_DEFER(close(fd));
      secret = readSecret(fd, 1 << 20);
    }
    auto fill = [&](rpc::Credential::Builder c) {
      c.setPublicValue(pub);
      KJ_IF_MAYBE(v, args.value("--comment")) { c.setComment(*v); }
      c.setValidFrom(ticksArg(args, "--valid-from"));
      c.setValidTo(ticksArg(args, "--valid-to"));
      c.setIsActive(!args.flag("--inactive"));
      KJ_IF_MAYBE(sec, secret) {
        c.setSecretValue(*sec);
        wipeString(*sec);
      }
    };
    KJ_IF_MAYBE(t, target) {
      auto req = s.saveForAssociateRequest();
      req.setAssociateId(*t);
      req.setType(args.positional()[0]);
      fill(req.initCredential());
      check(wait(req.send()));
    } else {
      auto req = s.saveRequest();
      req.setType(args.positional()[0]);
      fill(req.initCredential());
      check(wait(req.send()));
    }
    return OK;
  }

  static kj::StringPtr required(kj::Maybe<kj::StringPtr> v, kj::StringPtr what) {
    KJ_IF_MAYBE(x, v) { return *x; }
    throw UsageError{kj::str("missing ", what)};
  }

  int remove(Args& args) {
    args.parse(kj::arr("--associate"_kj), nullptr);
    args.expectPositional(2, "TYPE PUBLIC");
    auto s = session();
    bool removed;
    KJ_IF_MAYBE(a, args.value("--associate")) {
      auto req = s.removeForAssociateRequest();
      req.setAssociateId(parseInt(*a, "--associate", 1, INT32_MAX));
      req.setType(args.positional()[0]);
      req.setPublicValue(args.positional()[1]);
      auto r = wait(req.send());
      check(r);
      removed = r.getRemoved();
    } else {
      auto req = s.removeRequest();
      req.setType(args.positional()[0]);
      req.setPublicValue(args.positional()[1]);
      auto r = wait(req.send());
      check(r);
      removed = r.getRemoved();
    }
    if (!removed) {
      fprintf(stderr, "credvaultctl: not-found: no such credential\n");
      return NOT_FOUND;
    }
    return OK;
  }

  void printAssociate(rpc::Associate::Reader a, bool last) {
    if (json_) {
      printf(
          "{\"AssociateId\":%d,\"Name\":%s,\"Kind\":%s,\"UserAdmin\":%s,\"UnixUid\":%s,"
          "\"Active\":%s}%s",
          a.getAssociateId(), jsonString(a.getName()).cStr(),
          jsonString(kindName(a.getKind())).cStr(), a.getUserAdmin() ? "true" : "false",
          a.getUnixUid() < 0 ? "null" : kj::str(a.getUnixUid()).cStr(),
          a.getActive() ? "true" : "false", last ? "" : ",");
    } else {
      printf("%d\t%s\t%s%s\tuid=%s\t%s\n", a.getAssociateId(), a.getName().cStr(),
             kindName(a.getKind()).cStr(), a.getUserAdmin() ? ",user-admin" : "",
             a.getUnixUid() < 0 ? "-" : kj::str(a.getUnixUid()).cStr(),
             a.getActive() ? "active" : "inactive");
    }
  }

  int associate(Args& args) {
    auto sub = args.next("associate subcommand (add, list, show, set, remove, passwd)");
    if (sub == "add") {
      args.parse(kj::arr("--uid"_kj),
                 kj::arr("--system"_kj, "--user-admin"_kj, "--password-stdin"_kj));
      args.expectPositional(1, "NAME");
      auto req = admin().addAssociateRequest();
      req.setName(args.positional()[0]);
      req.setKind(args.flag("--system") ? rpc::Kind::SYSTEM : rpc::Kind::USER);
      req.setUserAdmin(args.flag("--user-admin"));
      req.setUnixUid(-1);
      KJ_IF_MAYBE(u, args.value("--uid")) {
        req.setUnixUid(parseInt(*u, "--uid", 0, UINT32_MAX - 1));
      }
      if (args.flag("--password-stdin")) {
        auto pw = readSecret(STDIN_FILENO, 4096);
        req.setPassword(pw);
        wipeString(pw);
      }
      auto r = wait(req.send());
      check(r);
      printAssociate(r.getAssociate(), true);
      if (json_) printf("\n");
      return OK;
    }
    if (sub == "list") {
      args.parse(nullptr, nullptr);
      args.expectPositional(0, "");
      auto r = wait(admin().listAssociatesRequest().send());
      check(r);
      auto list = r.getAssociates();
      if (json_) printf("[");
      for (auto i : kj::indices(list)) printAssociate(list[i], i + 1 == list.size());
      if (json_) printf("]\n");
      return OK;
    }
    if (sub == "show") {
      args.parse(nullptr, nullptr);
      args.expectPositional(1, "NAME");
      auto req = admin().findAssociateRequest();
      req.setName(args.positional()[0]);
      auto r = wait(req.send());
      check(r);
      printAssociate(r.getAssociate(), true);
      if (json_) printf("\n");
      return OK;
    }
    if (sub == "set") {
      args.parse(kj::arr("--kind"_kj, "--uid"_kj, "--name"_kj),
                 kj::arr("--user-admin"_kj, "--no-user-admin"_kj, "--no-uid"_kj, "--active"_kj,
                         "--inactive"_kj));
      args.expectPositional(1, "ID");
      auto req = admin().setAssociateRequest();
      req.setAssociateId(parseInt(args.positional()[0], "ID", 1, INT32_MAX));
      auto u = req.initUpdate();
      KJ_IF_MAYBE(n, args.value("--name")) { u.getName().setSet(*n); }
      KJ_IF_MAYBE(k, args.value("--kind")) {
        if (*k == "user")
          u.getKind().setSet(rpc::Kind::USER);
        else if (*k == "system")
          u.getKind().setSet(rpc::Kind::SYSTEM);
        else
          throw UsageError{kj::str("--kind must be user or system")};
      }
      if (args.flag("--user-admin")) u.getUserAdmin().setSet(true);
      if (args.flag("--no-user-admin")) u.getUserAdmin().setSet(false);
      KJ_IF_MAYBE(uid, args.value("--uid")) {
        u.getUnixUid().setSet(parseInt(*uid, "--uid", 0, UINT32_MAX - 1));
      }
      if (args.flag("--no-uid")) u.getUnixUid().setSet(-1);
      if (args.flag("--active")) u.getActive().setSet(true);
      if (args.flag("--inactive")) u.getActive().setSet(false);
      auto r = wait(req.send());
      check(r);
      printAssociate(r.getAssociate(), true);
      if (json_) printf("\n");
      return OK;
    }
    if (sub == "remove") {
      args.parse(nullptr, nullptr);
      args.expectPositional(1, "ID");
      auto req = admin().removeAssociateRequest();
      req.setAssociateId(parseInt(args.positional()[0], "ID", 1, INT32_MAX));
      auto r = wait(req.send());
      check(r);
      if (json_)
        printf("{\"RemovedCredentials\":%u}\n", r.getRemovedCredentials());
      else
        printf("removed, with %u credentials\n", r.getRemovedCredentials());
      return OK;
    }
    if (sub == "passwd") {
      args.parse(nullptr, kj::arr("--password-stdin"_kj));
      args.expectPositional(1, "NAME");
      if (!args.flag("--password-stdin")) throw UsageError{kj::str("--password-stdin is required")};
      auto a = admin();
      auto find = a.findAssociateRequest();
      find.setName(args.positional()[0]);
      auto found = wait(find.send());
      check(found);
      auto req = a.setPasswordRequest();
      req.setAssociateId(found.getAssociate().getAssociateId());
      auto pw = readSecret(STDIN_FILENO, 4096);
      req.setPassword(pw);
      wipeString(pw);
      check(wait(req.send()));
      return OK;
    }
    throw UsageError{kj::str("unknown associate subcommand ", sub)};
  }

  int login(Args& args) {
    args.parse(nullptr, kj::arr("--password-stdin"_kj));
    args.expectPositional(1, "NAME");
    if (!args.flag("--password-stdin")) throw UsageError{kj::str("--password-stdin is required")};
    auto req = conn_->vault().authenticatePasswordRequest();
    req.setName(args.positional()[0]);
    auto pw = readSecret(STDIN_FILENO, 4096);
    req.setPassword(pw);
    wipeString(pw);
    req.setIssueTicket(true);
    auto r = wait(req.send());
    check(r);
    if (json_) {
      printf("{\"Ticket\":%s,\"Expires\":%s,\"AssociateId\":%d}\n",
             jsonString(r.getTicket()).cStr(),
             jsonString(ipc::formatTicks(r.getTicketExpires())).cStr(),
             r.getPrincipal().getAssociateId());
    } else {
      printf("%s\n", r.getTicket().cStr());
    }
    return OK;
  }

  int ticket(Args& args) {
    auto sub = args.next("ticket subcommand (revoke)");
    if (sub != "revoke") throw UsageError{kj::str("unknown ticket subcommand ", sub)};
    args.parse(nullptr, nullptr);
    args.expectPositional(0, "");
    auto t = readSecret(STDIN_FILENO, 1024);
    auto req = conn_->vault().revokeTicketRequest();
    req.setTicket(t);
    wipeString(t);
    auto r = wait(req.send());
    check(r);
    if (!r.getRevoked()) {
      fprintf(stderr, "credvaultctl: not-found: no such ticket\n");
      return NOT_FOUND;
    }
    return OK;
  }

  void printToken(rpc::ApiToken::Reader t, bool last) {
    if (json_) {
      printf("{\"Name\":%s,\"AssociateId\":%d,\"Created\":%lld,\"Expires\":%lld}%s",
             jsonString(t.getName()).cStr(), t.getAssociateId(), (long long)t.getCreated(),
             (long long)t.getExpires(), last ? "" : ",");
    } else {
      printf("%s\tassociate %d\tcreated %lld\texpires %s\n", t.getName().cStr(), t.getAssociateId(),
             (long long)t.getCreated(),
             t.getExpires() == 0 ? "never" : kj::str(t.getExpires()).cStr());
    }
  }

  int token(Args& args) {
    auto sub = args.next("token subcommand (add, list, revoke)");
    args.parse(kj::arr("--associate"_kj, "--expires"_kj), nullptr);
    int32_t assoc = 0;
    KJ_IF_MAYBE(a, args.value("--associate")) { assoc = parseInt(*a, "--associate", 1, INT32_MAX); }
    auto s = session();
    if (sub == "add") {
      args.expectPositional(1, "NAME");
      auto req = s.createTokenRequest();
      req.setAssociateId(assoc);
      req.setName(args.positional()[0]);
      KJ_IF_MAYBE(e, args.value("--expires")) {
        KJ_IF_MAYBE(t, ipc::parseTicks(*e)) {
          req.setExpires((*t - ipc::UNIX_EPOCH_TICKS) / ipc::TICKS_PER_SECOND);
        } else {
          throw UsageError{kj::str("--expires must be a date like 2027-01-31")};
        }
      }
      auto r = wait(req.send());
      check(r);
      if (json_)
        printf("{\"Token\":%s}\n", jsonString(r.getToken()).cStr());
      else
        printf("%s\n", r.getToken().cStr());
      return OK;
    }
    if (sub == "list") {
      args.expectPositional(0, "");
      auto req = s.listTokensRequest();
      req.setAssociateId(assoc);
      auto r = wait(req.send());
      check(r);
      auto list = r.getTokens();
      if (json_) printf("[");
      for (auto i : kj::indices(list)) printToken(list[i], i + 1 == list.size());
      if (json_) printf("]\n");
      return OK;
    }
    if (sub == "revoke") {
      args.expectPositional(1, "NAME");
      auto req = s.revokeTokenRequest();
      req.setAssociateId(assoc);
      req.setName(args.positional()[0]);
      auto r = wait(req.send());
      check(r);
      if (!r.getRevoked()) {
        fprintf(stderr, "credvaultctl: not-found: no such token\n");
        return NOT_FOUND;
      }
      return OK;
    }
    throw UsageError{kj::str("unknown token subcommand ", sub)};
  }

  int app(Args& args) {
    auto sub = args.next("app subcommand (add, list, remove)");
    args.parse(nullptr, nullptr);
    if (sub == "add") {
      args.expectPositional(1, "NAME");
      auto req = admin().addApplicationRequest();
      req.setName(args.positional()[0]);
      auto r = wait(req.send());
      check(r);
      if (json_)
        printf("{\"Token\":%s}\n", jsonString(r.getToken()).cStr());
      else
        printf("%s\n", r.getToken().cStr());
      return OK;
    }
    if (sub == "list") {
      args.expectPositional(0, "");
      auto r = wait(admin().listApplicationsRequest().send());
      check(r);
      auto list = r.getApplications();
      if (json_) printf("[");
      for (auto i : kj::indices(list)) {
        if (json_) {
          printf("{\"Name\":%s,\"Created\":%lld}%s", jsonString(list[i].getName()).cStr(),
                 (long long)list[i].getCreated(), i + 1 == list.size() ? "" : ",");
        } else {
          printf("%s\tcreated %lld\n", list[i].getName().cStr(), (long long)list[i].getCreated());
        }
      }
      if (json_) printf("]\n");
      return OK;
    }
    if (sub == "remove") {
      args.expectPositional(1, "NAME");
      auto req = admin().removeApplicationRequest();
      req.setName(args.positional()[0]);
      auto r = wait(req.send());
      check(r);
      if (!r.getRemoved()) {
        fprintf(stderr, "credvaultctl: not-found: no such application\n");
        return NOT_FOUND;
      }
      return OK;
    }
    throw UsageError{kj::str("unknown app subcommand ", sub)};
  }

  // The backup: the daemon streams the snapshot, we write it as ourselves. A file we
  // created is removed again unless the whole snapshot reached the disk.
  int backup(Args& args) {
    args.parse(nullptr, nullptr);
    args.expectPositional(1, "FILE");
    kj::StringPtr target = args.positional()[0];
    bool toStdout = target == "-";
    kj::StringPtr shown = toStdout ? kj::StringPtr("standard output") : target;
    int fd = STDOUT_FILENO;
    if (toStdout) {
      if (isatty(STDOUT_FILENO)) {
        throw LocalError{kj::str(
            "refusing to write a backup to a terminal; redirect standard output or name a FILE")};
      }
    } else {
      fd = open(target.cStr(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) {
        if (errno == EEXIST) throw LocalError{kj::str(target, " exists; choose a new name")};
        throw LocalError{kj::str("cannot create ", target, ": ", strerror(errno))};
      }
    }
    bool kept = false;
    if (!toStdout) {
      partialBackup = target.cStr();
      for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, removePartialBackup);
    }
    KJ_DEFER({
      if (!toStdout) {
        partialBackup = nullptr;
        if (fd >= 0) close(fd);
        if (!kept) unlink(target.cStr());
      }
    });

    auto owned = kj::heap<FileSink>(fd);
    FileSink& sink = *owned;
    rpc::ByteSink::Client client = kj::mv(owned);
    // The daemon holds a reference to the sink: whatever it does later, no write lands.
    KJ_DEFER(sink.close());
    auto req = admin().backupToRequest();
    req.setSink(client);
    auto r = wait(req.send());
    sink.close();
    KJ_IF_MAYBE(err, sink.error()) {
      throw LocalError{kj::str("cannot write ", shown, ": ", strerror(*err))};
    }
    check(r);
    if (!sink.finished() || sink.written() != r.getBytes()) {
      fprintf(stderr, "credvaultctl: the backup stream ended early (%llu of %llu bytes)\n",
              (unsigned long long)sink.written(), (unsigned long long)r.getBytes());
      throw CommandFailed{UNAVAILABLE};
    }
    // A pipe or socket cannot be synced; a file must be.
    if (fsync(fd) != 0 && (toStdout ? (errno != EINVAL && errno != EROFS) : true)) {
      throw LocalError{kj::str("cannot write ", shown, ": ", strerror(errno))};
    }
    if (toStdout) return OK;
    int closing = fd;
    fd = -1;
    if (close(closing) != 0)
      throw LocalError{kj::str("cannot write ", target, ": ", strerror(errno))};
    syncDirectoryOf(target);
    partialBackup = nullptr;
    kept = true;
    if (json_) {
      printf("{\"File\":%s,\"Bytes\":%llu}\n", jsonString(target).cStr(),
             (unsigned long long)sink.written());
    } else {
      printf("backup of %llu bytes written to %s\n", (unsigned long long)sink.written(),
             target.cStr());
    }
    return OK;
  }

  int auditHash(Args& args) {
    args.parse(nullptr, nullptr);
    args.expectPositional(1, "VALUE");
    // A public value is not a secret, but `-` keeps it out of the process list and history.
    auto value = args.positional()[0] == "-" ? readSecret(STDIN_FILENO, 4096)
                                             : kj::heapString(args.positional()[0]);
    auto req = admin().auditHashRequest();
    req.setValue(value);
    wipeString(value);
    auto r = wait(req.send());
    check(r);
    if (json_)
      printf("{\"Hmac\":%s}\n", jsonString(r.getHmac()).cStr());
    else
      printf("%s\n", r.getHmac().cStr());
    return OK;
  }

  int changeMasterKey(Args& args) {
    args.parse(nullptr, nullptr);
    args.expectPositional(1, "FILE");
    auto path = absolutePath(args.positional()[0]);
    auto req = admin().changeMasterKeyRequest();
    req.setKeyFile(path);
    auto r = wait(req.send());
    check(r);
    if (json_)
      printf("{\"Fingerprint\":%s}\n", jsonString(r.getFingerprint()).cStr());
    else
      printf("all keys re-wrapped; new master key fingerprint %s\n", r.getFingerprint().cStr());
    return OK;
  }

  int rotateKey(Args& args) {
    args.parse(nullptr, nullptr);
    args.expectPositional(0, "");
    auto r = wait(admin().rotateDataKeyRequest().send());
    check(r);
    if (json_)
      printf("{\"DataKeyId\":%u}\n", r.getKeyId());
    else
      printf("new data key %u\n", r.getKeyId());
    return OK;
  }
};

}  // namespace credvault::ctl

int main(int argc, char** argv) {
  using namespace credvault::ctl;
  kj::Vector<kj::StringPtr> rest;
  kj::Maybe<kj::StringPtr> socket;
  bool json = false;
  int i = 1;
  for (; i < argc; i++) {
    kj::StringPtr a = argv[i];
    if (a == "--socket" && i + 1 < argc) {
      socket = kj::StringPtr(argv[++i]);
    } else if (a == "--json") {
      json = true;
    } else if (a == "--help" || a == "-h") {
      fputs(USAGE_TEXT, stdout);
      return OK;
    } else if (a == "--version") {
      printf("credvaultctl %s\n", CREDVAULT_VERSION);
      return OK;
    } else {
      break;
    }
  }
  for (; i < argc; i++) {
    kj::StringPtr a = argv[i];
    if (a == "--json") {
      json = true;
      continue;
    }
    rest.add(a);
  }
  if (rest.empty()) {
    fputs(USAGE_TEXT, stderr);
    return USAGE;
  }
  try {
    auto io = kj::setupAsyncIo();
    Ctl ctl(io, json);
    Args args(kj::mv(rest));
    ctl.connect(socket);
    return ctl.run(args);
  } catch (const UsageError& e) {
    fprintf(stderr, "credvaultctl: %s\n(see credvaultctl --help)\n", e.message.cStr());
    return USAGE;
  } catch (const LocalError& e) {
    fprintf(stderr, "credvaultctl: %s\n", e.message.cStr());
    return USAGE;
  } catch (const CommandFailed& e) { return e.code; }
}
