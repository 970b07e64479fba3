// credvaultctl — the command-line client. Talks to credvaultd over its socket as the
// calling user (the daemon identifies us by SO_PEERCRED). Secrets come from stdin, a file or
// a terminal prompt without echo, never from the command line; they are printed only by
// `get`, only when the daemon returned them, and handed to `exec`'s command only in its
// environment. Exit codes: exit-codes.h (and docs/credvaultctl.md, credvaultctl(1)).
//
// Each command is a kj::MainBuilder sub-command (cli.h): all of its options and arguments
// are parsed, and refused with exit 2, before it connects.

#include "cli.h"
#include "dates.h"
#include "link.h"
#include "output.h"
#include "terminal.h"
#include "credvault-config.h"

#include <kj/debug.h>
#include <kj/map.h>
#include <kj/vector.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

namespace credvault::ctl {

namespace {

using Validity = kj::MainBuilder::Validity;

constexpr size_t SECRET_LIMIT = 1 << 20;  // the daemon's own limit is smaller; it says so
constexpr size_t PASSWORD_LIMIT = 4096;
constexpr const char VERSION[] = "credvaultctl " CREDVAULT_VERSION;

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

// The daemon resolves paths itself, in its own working directory: send absolute ones.
kj::String absolutePath(kj::StringPtr path) {
  if (path.startsWith("/")) return kj::heapString(path);
  char cwd[4096];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) {
    fprintf(stderr, "credvaultctl: cannot resolve %s: %s\n", path.cStr(), strerror(errno));
    throw ExitWith{LOCAL};
  }
  return kj::str(cwd, "/", path);
}

[[noreturn]] void localError(kj::StringPtr message) {
  fprintf(stderr, "credvaultctl: %s\n", message.cStr());
  throw ExitWith{LOCAL};
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

kj::StringPtr kindName(rpc::Kind k) {
  return k == rpc::Kind::SYSTEM ? "system" : "user";
}

kj::StringPtr methodName(rpc::AuthMethod m) {
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

// What every credential output shows. JSON: SuperOffice's carrier in its order, plus State.
// Text and TSV: the columns `get` always printed, in their order (public value, secret,
// state, valid from, valid to, comment), where State now also says expired / not-yet-valid.
void credentialCells(Row& row, rpc::Credential::Reader c, int64_t now, bool withSecret,
                     Format format) {
  kj::Maybe<kj::ArrayPtr<const char>> secret;
  if (c.hasSecretValue()) secret = c.getSecretValue().asArray();
  auto state = validityState(c.getIsActive(), c.getValidFrom(), c.getValidTo(), now);
  if (format == Format::JSON) {
    row.date("ValidFrom", "VALID-FROM", c.getValidFrom());
    row.date("ValidTo", "VALID-TO", c.getValidTo());
    row.str("Comment", "COMMENT", c.getComment());
    if (withSecret) row.maybeStr("SecretValue", "SECRET", secret, "<withheld>");
    row.str("PublicValue", "PUBLIC", c.getPublicValue());
    row.boolean("IsActive", "ACTIVE", c.getIsActive());
    row.str("State", "STATE", state);
    return;
  }
  row.str("PublicValue", "PUBLIC", c.getPublicValue());
  if (withSecret) row.maybeStr("SecretValue", "SECRET", secret, "<withheld>");
  row.str("State", "STATE", state);
  row.date("ValidFrom", "VALID-FROM", c.getValidFrom());
  row.date("ValidTo", "VALID-TO", c.getValidTo());
  row.str("Comment", "COMMENT", c.getComment());
}

class Ctl {
 public:
  explicit Ctl(CliContext& ctx) : ctx_(ctx) {
    kj::Vector<kj::String> lines;
    lines.add(
        kj::str("The socket is --socket, else $CREDVAULT_SOCKET, else " CREDVAULT_DEFAULT_SOCKET
                ". With $CREDVAULT_TICKET set, commands act as that ticket's associate instead of "
                "the calling uid's. An option's value may follow as --opt=VALUE or --opt VALUE; a "
                "value that starts with '-' needs the first form. '--' ends the options.\n\n"
                "Exit codes:"));
    for (auto& e : EXIT_CODES) lines.add(kj::str("  ", e.code, "  ", e.meaning));
    extended_ = kj::strArray(lines, "\n");
  }

  kj::MainFunc getMain() {
    kj::MainBuilder b(ctx_, VERSION, "The command-line client of credvaultd, the credential vault.",
                      extended_);
    common_.addTo(b);
    return b
        .addSubCommand("whoami", KJ_BIND_METHOD(*this, whoamiCmd), "who the daemon says you are")
        .addSubCommand("status", KJ_BIND_METHOD(*this, statusCmd), "the daemon's state")
        .addSubCommand("get", KJ_BIND_METHOD(*this, getCmd),
                       "print credentials of a type, secrets included, or one field")
        .addSubCommand("list", KJ_BIND_METHOD(*this, listCmd),
                       "list types and public values, never secrets")
        .addSubCommand("expiring", KJ_BIND_METHOD(*this, expiringCmd),
                       "list credentials whose ValidTo is near or past")
        .addSubCommand("save", KJ_BIND_METHOD(*this, saveCmd),
                       "store a credential (replaces the whole entry)")
        .addSubCommand("update", KJ_BIND_METHOD(*this, updateCmd),
                       "change some fields of a credential, keep the rest")
        .addSubCommand("remove", KJ_BIND_METHOD(*this, removeCmd), "delete a credential")
        .addSubCommand("exec", KJ_BIND_METHOD(*this, execCmd),
                       "run a command with secrets in its environment")
        .addSubCommand("passwd", KJ_BIND_METHOD(*this, passwdCmd), "change your own password")
        .addSubCommand("login", KJ_BIND_METHOD(*this, loginCmd), "print a ticket (7T:...)")
        .addSubCommand("ticket", KJ_BIND_METHOD(*this, ticketCmd), "revoke a ticket")
        .addSubCommand("token", KJ_BIND_METHOD(*this, tokenCmd), "API tokens")
        .addSubCommand("associate", KJ_BIND_METHOD(*this, associateCmd),
                       "users of the vault (administration)")
        .addSubCommand("app", KJ_BIND_METHOD(*this, appCmd), "partner applications")
        .addSubCommand("backup", KJ_BIND_METHOD(*this, backupCmd),
                       "write a snapshot of the vault into a file")
        .addSubCommand("audit-hash", KJ_BIND_METHOD(*this, auditHashCmd),
                       "the keyed hash audit records show for a public value")
        .addSubCommand("verify", KJ_BIND_METHOD(*this, verifyCmd),
                       "check every page, record, index and count of the running vault")
        .addSubCommand("rotate-key", KJ_BIND_METHOD(*this, rotateKeyCmd),
                       "add a data key; new records use it")
        .addSubCommand("change-master-key", KJ_BIND_METHOD(*this, changeMasterKeyCmd),
                       "re-wrap all keys under a new master key")
        .build();
  }

  int exitCode = OK;

 private:
  CliContext& ctx_;
  kj::String extended_;
  Common common_;
  kj::Maybe<Link> link_;

  // One command runs per process: its options land here.
  kj::Vector<kj::String> args_;
  kj::HashMap<kj::String, kj::String> values_;
  kj::HashMap<kj::String, bool> flags_;
  kj::Vector<kj::String> envs_;  // exec --env, may repeat
  kj::Maybe<int32_t> associate_;

  // ---- building commands ------------------------------------------------------------------

  void begin(kj::MainBuilder& b, kj::StringPtr synopsis) {
    ctx_.synopsis = synopsis;
    common_.addTo(b);
  }
  void value(kj::MainBuilder& b, const char* name, kj::StringPtr title, kj::StringPtr help) {
    b.addOptionWithArg(
        {name},
        [this, name](kj::StringPtr v) -> Validity {
          if (values_.find(kj::StringPtr(name)) != nullptr) return kj::str("given twice");
          values_.insert(kj::heapString(name), kj::heapString(v));
          return true;
        },
        title, help);
  }
  void flag(kj::MainBuilder& b, const char* name, kj::StringPtr help) {
    b.addOption(
        {name},
        [this, name]() -> Validity {
          if (flags_.find(kj::StringPtr(name)) != nullptr) return kj::str("given twice");
          flags_.insert(kj::heapString(name), true);
          return true;
        },
        help);
  }
  void associateOption(kj::MainBuilder& b, kj::StringPtr help) {
    b.addOptionWithArg(
        {"associate"}, [this](kj::StringPtr v) { return parseId(v, associate_); }, "<id>", help);
  }
  void arg(kj::MainBuilder& b, kj::StringPtr title) {
    b.expectArg(title, [this](kj::StringPtr v) -> Validity {
      args_.add(kj::heapString(v));
      return true;
    });
  }
  void optionalArg(kj::MainBuilder& b, kj::StringPtr title) {
    b.expectOptionalArg(title, [this](kj::StringPtr v) -> Validity {
      args_.add(kj::heapString(v));
      return true;
    });
  }
  template<typename Body>
  kj::MainFunc run(kj::MainBuilder& b, Body body) {
    b.callAfterParsing([this, body = kj::mv(body)]() mutable -> Validity {
      exitCode = body();
      return true;
    });
    return b.build();
  }

  kj::Maybe<kj::StringPtr> opt(kj::StringPtr name) {
    KJ_IF_MAYBE(v, values_.find(name)) { return v->asPtr(); }
    return nullptr;
  }
  bool has(kj::StringPtr name) { return flags_.find(name) != nullptr; }
  Format format() { return common_.formatOr(); }

  // A usage problem found after parsing (a combination of options): exit 2, nothing sent.
  [[noreturn]] void usage(kj::StringPtr message) {
    ctx_.exitError(kj::str("credvaultctl: ", message,
                           "\nTry 'credvaultctl --help' or 'credvaultctl help COMMAND'."));
  }

  Link& link() {
    KJ_IF_MAYBE(l, link_) { return *l; }
    return link_.emplace(common_);
  }

  int64_t dateOption(kj::StringPtr name, int64_t now) {
    KJ_IF_MAYBE(v, opt(name)) {
      KJ_IF_MAYBE(t, parseDate(*v, now)) { return *t; }
      usage(kj::str("--", name, ": '", *v,
                    "' is not a date: use 2030-01-01, 2030-01-01T10:00:00Z, +90d or none"));
    }
    return 0;
  }

  void print(kj::ArrayPtr<const Row> rows, bool single = false) {
    printRows(stdout, format(), stdoutIsTerminal(), rows, single);
  }

  // A secret from --secret-stdin (prompted, twice, when stdin is a terminal) or
  // --secret-file; null when neither was given.
  kj::Maybe<kj::String> secretOption(kj::StringPtr what) {
    if (has("secret-stdin") && opt("secret-file") != nullptr) {
      usage("give --secret-stdin or --secret-file, not both");
    }
    if (has("secret-stdin")) return readSecretFrom(STDIN_FILENO, what, true);
    KJ_IF_MAYBE(f, opt("secret-file")) {
      int fd = open(f->cStr(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) localError(kj::str("cannot open ", *f, ": ", strerror(errno)));
      KJ_DEFER(close(fd));
      return readSecretFrom(fd, what, false);
    }
    return nullptr;
  }

  kj::String readSecretFrom(int fd, kj::StringPtr what, bool confirm, size_t limit = SECRET_LIMIT) {
    try {
      if (fd == STDIN_FILENO && stdinIsTerminal()) return promptSecret(what, confirm, limit);
      return readSecret(fd, limit);
    } catch (const ReadFailed& e) { localError(e.message); } catch (const TooLong&) {
      failWith(format(), LIMIT_EXCEEDED, "limit-exceeded",
               kj::str(what, " is longer than ", limit, " bytes"));
    }
  }

  // A password: --password-stdin reads stdin; at a terminal it is asked for without echo.
  kj::String passwordInput(kj::StringPtr what, bool confirm) {
    if (!has("password-stdin") && !stdinIsTerminal()) {
      usage("give --password-stdin (stdin is not a terminal to ask on)");
    }
    return readSecretFrom(STDIN_FILENO, what, confirm, PASSWORD_LIMIT);
  }

  // ---- whoami, status -------------------------------------------------------------------

  kj::MainFunc whoamiCmd() {
    kj::MainBuilder b(ctx_, VERSION, "whoami\n\nWho the daemon takes you for, and how.");
    begin(b, "whoami");
    return run(b, [this]() {
      auto& l = link();
      const char* ticket = getenv("CREDVAULT_TICKET");
      auto show = [&](rpc::Principal::Reader p) {
        if (format() == Format::TEXT) {
          if (p.getMethod() == rpc::AuthMethod::NONE) {
            printf("uid %u: not mapped to an associate\n", p.getUid());
          } else {
            printf("%s (associate %d, %s%s) by %s, uid %u\n", p.getName().cStr(),
                   p.getAssociateId(), kindName(p.getKind()).cStr(),
                   p.getUserAdmin() ? ", user admin" : "", methodName(p.getMethod()).cStr(),
                   p.getUid());
          }
          return;
        }
        Row row;
        row.num("AssociateId", "ID", p.getAssociateId())
            .str("Name", "NAME", p.getName())
            .str("Kind", "KIND", kindName(p.getKind()))
            .boolean("UserAdmin", "USER-ADMIN", p.getUserAdmin())
            .str("Method", "METHOD", methodName(p.getMethod()))
            .num("Uid", "UID", p.getUid());
        print(kj::arrayPtr(&row, 1), true);
      };
      if (ticket != nullptr && *ticket != '\0') {
        auto r = l.wait(l.session().whoamiRequest().send());
        l.check(r);
        show(r.getPrincipal());
      } else {
        auto r = l.wait(l.vault().whoamiRequest().send());
        l.check(r);
        show(r.getPrincipal());
      }
      return OK;
    });
  }

  kj::MainFunc statusCmd() {
    kj::MainBuilder b(ctx_, VERSION, "status\n\nThe daemon's version, counts and uptime.");
    begin(b, "status");
    return run(b, [this]() {
      auto& l = link();
      auto r = l.wait(l.vault().statusRequest().send());
      l.check(r);
      auto s = r.getStatus();
      if (format() == Format::TEXT) {
        printf(
            "credvaultd %s: %llu credentials, %llu associates, data key %u, %llu of %llu "
            "bytes used, up %llus, %u connections\n",
            s.getVersion().cStr(), (unsigned long long)s.getCredentials(),
            (unsigned long long)s.getAssociates(), s.getDataKeyId(),
            (unsigned long long)s.getUsedBytes(), (unsigned long long)s.getMapSize(),
            (unsigned long long)s.getUptimeSeconds(), s.getConnections());
        return OK;
      }
      Row row;
      row.str("Version", "VERSION", s.getVersion())
          .num("Credentials", "CREDENTIALS", s.getCredentials())
          .num("Associates", "ASSOCIATES", s.getAssociates())
          .num("DataKeyId", "DATA-KEY", s.getDataKeyId())
          .num("MapSize", "MAP-SIZE", s.getMapSize())
          .num("UsedBytes", "USED", s.getUsedBytes())
          .num("UptimeSeconds", "UPTIME", s.getUptimeSeconds())
          .num("Connections", "CONNECTIONS", s.getConnections());
      print(kj::arrayPtr(&row, 1), true);
      return OK;
    });
  }

  // ---- credentials ------------------------------------------------------------------------

  // The credentials of `type` (someone else's with --associate), through Get.
  template<typename Use>
  void getCredentials(kj::StringPtr type, Use&& use) {
    auto& l = link();
    auto req = l.session().getRequest();
    req.setAssociateId(associate_.orDefault(0));
    req.setType(type);
    auto r = l.wait(req.send());
    l.check(r);
    use(r.getCredentials());
  }

  kj::MainFunc getCmd() {
    kj::MainBuilder b(
        ctx_, VERSION,
        "get TYPE [--public VALUE] [--field NAME] [--associate ID]\n\n"
        "Prints the credentials of TYPE with their secrets. --public picks one entry. --field "
        "prints only that value of exactly one entry, as it is (no escaping; a newline only "
        "when stdout is a terminal): secret, public, comment, valid-from, valid-to or active. "
        "No match exits 5, several exit 16.");
    begin(b, "get TYPE [--public VALUE] [--field NAME] [--associate ID]");
    value(b, "public", "<value>", "Only the entry with this public value.");
    value(b, "field", "<name>",
          "Print only this field: secret, public, comment, valid-from, "
          "valid-to or active.");
    associateOption(b, "Another associate's entries (user admins and system users).");
    arg(b, "TYPE");
    return run(b, [this]() -> int {
      kj::Maybe<kj::StringPtr> field = opt("field");
      KJ_IF_MAYBE(f, field) {
        if (*f != "secret" && *f != "public" && *f != "comment" && *f != "valid-from" &&
            *f != "valid-to" && *f != "active") {
          usage(kj::str("--field: '", *f,
                        "' is not one of secret, public, comment, valid-from, valid-to, active"));
        }
        if (common_.format != nullptr) usage("--field prints a bare value: drop --format/--json");
      }
      auto type = args_[0].asPtr();
      auto pub = opt("public");
      int64_t now = nowTicks();
      int result = OK;
      getCredentials(type, [&](capnp::List<rpc::Credential>::Reader list) {
        kj::Vector<rpc::Credential::Reader> picked;
        for (auto c : list) {
          KJ_IF_MAYBE(p, pub) {
            if (c.getPublicValue() != *p) continue;
          }
          picked.add(c);
        }
        KJ_IF_MAYBE(f, field) {
          if (picked.size() == 0) {
            failWith(format(), NOT_FOUND, "not-found",
                     pub == nullptr ? kj::str("no credential of this type")
                                    : kj::str("no credential of this type has this public value"));
          }
          if (picked.size() > 1) {
            failWith(
                format(), AMBIGUOUS, "ambiguous",
                kj::str(picked.size(), " credentials of this type; name one with --public VALUE"));
          }
          auto c = picked[0];
          kj::String out;
          if (*f == "secret") {
            if (!c.hasSecretValue()) {
              failWith(format(), PERMISSION_DENIED, "permission-denied",
                       "the daemon withholds this secret from you");
            }
            out = kj::heapString(c.getSecretValue());
          } else if (*f == "public") {
            out = kj::heapString(c.getPublicValue());
          } else if (*f == "comment") {
            out = kj::heapString(c.getComment());
          } else if (*f == "valid-from") {
            out = formatDate(c.getValidFrom(), "");
          } else if (*f == "valid-to") {
            out = formatDate(c.getValidTo(), "");
          } else {
            out = kj::str(c.getIsActive() ? "true" : "false");
          }
          KJ_DEFER(wipeString(out));
          fwrite(out.begin(), 1, out.size(), stdout);
          if (stdoutIsTerminal()) fputc('\n', stdout);
          return;
        }
        if (pub != nullptr && picked.size() == 0) {
          failWith(format(), NOT_FOUND, "not-found",
                   "no credential of this type has this public value");
        }
        auto rows = KJ_MAP(c, picked) {
          Row row;
          credentialCells(row, c, now, true, format());
          return row;
        };
        print(rows);
      });
      return result;
    });
  }

  // Rows of Session.list / listAll.
  kj::Array<Row> listedRows(capnp::List<rpc::ListedCredential>::Reader list, int64_t now,
                            bool withAssociate, kj::Maybe<int64_t> expiringBefore) {
    kj::Vector<Row> rows;
    for (auto e : list) {
      auto c = e.getCredential();
      KJ_IF_MAYBE(limit, expiringBefore) {
        if (c.getValidTo() == 0 || c.getValidTo() > *limit) continue;
      }
      Row row;
      if (withAssociate) row.num("AssociateId", "ASSOCIATE", e.getAssociateId());
      row.str("Type", "TYPE", e.getType());
      row.str("PublicValue", "PUBLIC", c.getPublicValue());
      row.str("State", "STATE",
              validityState(c.getIsActive(), c.getValidFrom(), c.getValidTo(), now));
      row.date("ValidFrom", "VALID-FROM", c.getValidFrom());
      row.date("ValidTo", "VALID-TO", c.getValidTo());
      // State says it for people; JSON keeps SuperOffice's flag as well.
      if (format() == Format::JSON) row.boolean("IsActive", "ACTIVE", c.getIsActive());
      row.str("Comment", "COMMENT", c.getComment());
      rows.add(kj::mv(row));
    }
    return rows.releaseAsArray();
  }

  void listInto(kj::StringPtr type, bool all, int64_t now, kj::Maybe<int64_t> expiringBefore) {
    auto& l = link();
    auto s = l.session();
    if (all) {
      auto req = s.listAllRequest();
      req.setType(type);
      auto r = l.wait(req.send());
      l.check(r);
      print(listedRows(r.getCredentials(), now, true, expiringBefore));
    } else {
      auto req = s.listRequest();
      KJ_IF_MAYBE(a, associate_) { req.setAssociateId(*a); }
      req.setType(type);
      auto r = l.wait(req.send());
      l.check(r);
      print(listedRows(r.getCredentials(), now, associate_ != nullptr, expiringBefore));
    }
  }

  kj::MainFunc listCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "list [TYPE] [--associate ID | --all]\n\n"
                      "Lists your credentials (of every type, or of TYPE): type, public value, "
                      "state (active, expired, not-yet-valid, inactive), validity and comment. "
                      "Never secrets. --associate and --all as the permission table allows "
                      "(user admins and system users).");
    begin(b, "list [TYPE] [--associate ID | --all]");
    associateOption(b, "Another associate's credentials.");
    flag(b, "all", "Every associate's credentials.");
    optionalArg(b, "TYPE");
    return run(b, [this]() {
      if (has("all") && associate_ != nullptr) usage("give --associate or --all, not both");
      listInto(args_.size() > 0 ? args_[0].asPtr() : kj::StringPtr(""), has("all"), nowTicks(),
               nullptr);
      return OK;
    });
  }

  kj::MainFunc expiringCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "expiring [--within DURATION] [--associate ID | --all]\n\n"
                      "Lists credentials whose ValidTo falls within DURATION from now (default "
                      "30d; units s, m, h, d, w), and those already expired. Never secrets.");
    begin(b, "expiring [--within DURATION] [--associate ID | --all]");
    value(b, "within", "<duration>", "The window, e.g. 7d, 12h, 2w (default 30d).");
    associateOption(b, "Another associate's credentials.");
    flag(b, "all", "Every associate's credentials.");
    return run(b, [this]() {
      if (has("all") && associate_ != nullptr) usage("give --associate or --all, not both");
      int64_t window = 30 * 86400;
      KJ_IF_MAYBE(w, opt("within")) {
        KJ_IF_MAYBE(s, parseDuration(*w)) {
          window = *s;
        } else {
          usage(kj::str("--within: '", *w, "' is not a duration like 30d, 12h or 2w"));
        }
      }
      int64_t now = nowTicks();
      listInto("", has("all"), now, now + window * TICKS_PER_SECOND);
      return OK;
    });
  }

  kj::MainFunc saveCmd() {
    kj::MainBuilder b(
        ctx_, VERSION,
        "save TYPE --public VALUE [--secret-stdin | --secret-file F] [--comment C] "
        "[--valid-from T] [--valid-to T] [--inactive] [--associate ID]\n\n"
        "Stores a credential as SuperOffice's SaveUntrustedCredentials does: the entry "
        "(TYPE, VALUE) is replaced as a whole, so a field not given here is emptied. Only an "
        "absent secret keeps the stored one. To change some fields and keep the rest, use "
        "`update`. At a terminal, without --secret-stdin or --secret-file, the secret is "
        "asked for twice without echo (an empty answer keeps the stored one). Dates: "
        "2030-01-01, 2030-01-01T10:00:00Z, +90d, or none.");
    begin(b,
          "save TYPE --public VALUE [--secret-stdin | --secret-file F] [--comment C] "
          "[--valid-from T] [--valid-to T] [--inactive] [--associate ID]");
    value(b, "public", "<value>", "The public value (user name, key id, ...). Required.");
    flag(b, "secret-stdin", "Read the secret from stdin (one trailing newline is dropped).");
    value(b, "secret-file", "<file>", "Read the secret from a file.");
    value(b, "comment", "<text>", "A comment (at most 255 characters).");
    value(b, "valid-from", "<date>", "Not valid before this date.");
    value(b, "valid-to", "<date>", "Not valid after this date.");
    flag(b, "inactive", "Store the entry as inactive.");
    associateOption(b, "Store for another associate (user admins and system users).");
    arg(b, "TYPE");
    return run(b, [this]() {
      auto pub = opt("public");
      if (pub == nullptr) usage("--public VALUE is required");
      int64_t now = nowTicks();
      int64_t from = dateOption("valid-from", now);
      int64_t to = dateOption("valid-to", now);
      auto secret = secretOption("Secret");
      if (secret == nullptr && stdinIsTerminal()) {
        auto asked = readSecretFrom(STDIN_FILENO, "Secret (empty: keep the stored one)", true);
        if (asked.size() > 0) secret = kj::mv(asked);
      }
      auto& l = link();
      auto s = l.session();
      auto fill = [&](rpc::Credential::Builder c) {
        c.setPublicValue(KJ_ASSERT_NONNULL(pub));
        KJ_IF_MAYBE(v, opt("comment")) { c.setComment(*v); }
        c.setValidFrom(from);
        c.setValidTo(to);
        c.setIsActive(!has("inactive"));
        KJ_IF_MAYBE(sec, secret) {
          c.setSecretValue(*sec);
          wipeString(*sec);
        }
      };
      auto req = s.saveRequest();
      req.setAssociateId(associate_.orDefault(0));
      req.setType(args_[0]);
      fill(req.initCredential());
      l.check(l.wait(req.send()));
      return OK;
    });
  }

  kj::MainFunc updateCmd() {
    kj::MainBuilder b(
        ctx_, VERSION,
        "update TYPE PUBLIC [--comment C] [--valid-from T] [--valid-to T] "
        "[--active | --inactive] [--secret-stdin | --secret-file F] [--associate ID]\n\n"
        "Changes only the fields given, in one step in the daemon (no other writer can slip "
        "in between); the rest of the entry stays as it is. The entry must exist. Dates: "
        "2030-01-01, 2030-01-01T10:00:00Z, +90d, or none to open the end.");
    begin(b,
          "update TYPE PUBLIC [--comment C] [--valid-from T] [--valid-to T] "
          "[--active | --inactive] [--secret-stdin | --secret-file F] [--associate ID]");
    value(b, "comment", "<text>", "New comment ('' empties it).");
    value(b, "valid-from", "<date>", "New start of validity (none: open).");
    value(b, "valid-to", "<date>", "New end of validity (none: open).");
    flag(b, "active", "Mark the entry active.");
    flag(b, "inactive", "Mark the entry inactive.");
    flag(b, "secret-stdin", "New secret from stdin (asked twice at a terminal).");
    value(b, "secret-file", "<file>", "New secret from a file.");
    associateOption(b, "Another associate's entry (user admins and system users).");
    arg(b, "TYPE");
    arg(b, "PUBLIC");
    return run(b, [this]() {
      if (has("active") && has("inactive")) usage("give --active or --inactive, not both");
      if (opt("comment") == nullptr && opt("valid-from") == nullptr && opt("valid-to") == nullptr &&
          !has("active") && !has("inactive") && !has("secret-stdin") &&
          opt("secret-file") == nullptr) {
        usage(
            "nothing to change: give at least one of --comment, --valid-from, --valid-to, "
            "--active, --inactive, --secret-stdin, --secret-file");
      }
      int64_t now = nowTicks();
      int64_t from = dateOption("valid-from", now);
      int64_t to = dateOption("valid-to", now);
      auto secret = secretOption("New secret");
      auto& l = link();
      auto req = l.session().updateRequest();
      KJ_IF_MAYBE(a, associate_) { req.setAssociateId(*a); }
      req.setType(args_[0]);
      req.setPublicValue(args_[1]);
      auto u = req.initUpdate();
      KJ_IF_MAYBE(c, opt("comment")) { u.getComment().setSet(*c); }
      if (opt("valid-from") != nullptr) u.getValidFrom().setSet(from);
      if (opt("valid-to") != nullptr) u.getValidTo().setSet(to);
      if (has("active")) u.getIsActive().setSet(true);
      if (has("inactive")) u.getIsActive().setSet(false);
      KJ_IF_MAYBE(sec, secret) {
        u.getSecretValue().setSet(*sec);
        wipeString(*sec);
      }
      l.check(l.wait(req.send()));
      return OK;
    });
  }

  kj::MainFunc removeCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "remove TYPE PUBLIC [--associate ID]\n\n"
                      "Deletes the entry (TYPE, PUBLIC); exit 5 when there is none. A public "
                      "value that starts with '-' goes after '--'.");
    begin(b, "remove TYPE PUBLIC [--associate ID]");
    associateOption(b, "Another associate's entry (user admins and system users).");
    arg(b, "TYPE");
    arg(b, "PUBLIC");
    return run(b, [this]() {
      auto& l = link();
      auto s = l.session();
      auto req = s.removeRequest();
      req.setAssociateId(associate_.orDefault(0));
      req.setType(args_[0]);
      req.setPublicValue(args_[1]);
      auto r = l.wait(req.send());
      l.check(r);
      bool removed = r.getRemoved();
      if (!removed) failWith(format(), NOT_FOUND, "not-found", "no such credential");
      return OK;
    });
  }

  // ---- exec --------------------------------------------------------------------------------

  kj::MainFunc execCmd() {
    kj::MainBuilder b(
        ctx_, VERSION,
        "exec --env NAME=TYPE:PUBLIC... -- COMMAND [ARG...]\n\n"
        "Runs COMMAND with each secret in its environment variable NAME (never on a command "
        "line), in place of credvaultctl: COMMAND's exit status is the exit status. Each "
        "TYPE:PUBLIC must name exactly one of your credentials (TYPE ends at the first ':'). "
        "If COMMAND cannot be run: exit 126 (not executable) or 127 (not found), as env(1).");
    begin(b, "exec --env NAME=TYPE:PUBLIC... -- COMMAND [ARG...]");
    b.addOptionWithArg(
        {"env"},
        [this](kj::StringPtr v) -> Validity {
          KJ_IF_MAYBE(eq, v.findFirst('=')) {
            auto name = v.slice(0, *eq);
            bool ok = *eq > 0 && !(name[0] >= '0' && name[0] <= '9');
            for (char c : name) {
              ok = ok && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '_');
            }
            if (!ok)
              return kj::str("NAME must be letters, digits and _, not starting with a digit");
            auto rest = v.slice(*eq + 1);
            KJ_IF_MAYBE(colon, rest.findFirst(':')) {
              if (*colon == 0) return kj::str("expected NAME=TYPE:PUBLIC");
              for (auto& e : envs_) {
                if (e.startsWith(kj::str(v.slice(0, *eq + 1)))) return kj::str("NAME given twice");
              }
              envs_.add(kj::heapString(v));
              return true;
            }
          }
          return kj::str("expected NAME=TYPE:PUBLIC");
        },
        "<NAME=TYPE:PUBLIC>", "Put this credential's secret into variable NAME (repeatable).");
    b.expectOneOrMoreArgs("COMMAND", [this](kj::StringPtr v) -> Validity {
      args_.add(kj::heapString(v));
      return true;
    });
    return run(b, [this]() -> int {
      if (envs_.size() == 0) usage("give at least one --env NAME=TYPE:PUBLIC");
      auto& l = link();
      auto s = l.session();
      for (auto& e : envs_) {
        auto eq = KJ_ASSERT_NONNULL(e.findFirst('='));
        auto name = kj::heapString(e.slice(0, eq));
        auto rest = e.slice(eq + 1);
        auto colon = KJ_ASSERT_NONNULL(rest.findFirst(':'));
        auto type = kj::heapString(rest.slice(0, colon));
        auto pub = rest.slice(colon + 1);
        auto req = s.getRequest();
        req.setType(type);
        auto r = l.wait(req.send());
        l.check(r);
        bool found = false;
        for (auto c : r.getCredentials()) {
          if (c.getPublicValue() != pub) continue;
          if (!c.hasSecretValue()) {
            failWith(format(), PERMISSION_DENIED, "permission-denied",
                     kj::str("the secret for ", name, " is withheld"));
          }
          auto secret = kj::heapString(c.getSecretValue());
          if (secret.size() != strlen(secret.cStr())) {
            failWith(format(), INVALID_ARGUMENT, "invalid-argument",
                     kj::str("the secret for ", name,
                             " holds a NUL byte; it cannot be an "
                             "environment variable"));
          }
          setenv(name.cStr(), secret.cStr(), 1);
          wipeString(secret);
          found = true;
        }
        if (!found) {
          failWith(
              format(), NOT_FOUND, "not-found",
              kj::str("no credential for ", name, " (type ", type, " with that public value)"));
        }
      }
      // Nothing of ours is left open for COMMAND: the socket is close-on-exec. Nor does it
      // inherit our authority: a ticket in the environment is a bearer credential for every
      // secret of its associate, and COMMAND was given only the ones named.
      unsetenv("CREDVAULT_TICKET");
      auto argv = kj::heapArray<char*>(args_.size() + 1);
      for (auto i : kj::indices(args_)) argv[i] = args_[i].begin();
      argv[args_.size()] = nullptr;
      fflush(stdout);
      execvp(argv[0], argv.begin());
      int err = errno;
      fprintf(stderr, "credvaultctl: cannot run %s: %s\n", argv[0], strerror(err));
      return err == ENOENT ? 127 : 126;
    });
  }

  // ---- passwords, tickets, tokens ---------------------------------------------------------

  kj::MainFunc passwdCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "passwd [--password-stdin]\n\n"
                      "Changes your own password, given the current one. At a terminal both "
                      "are asked for without echo (the new one twice); with --password-stdin "
                      "stdin holds two lines: the current password, then the new one. Your "
                      "tickets end.");
    begin(b, "passwd [--password-stdin]");
    flag(b, "password-stdin", "Read the current and the new password from stdin, one a line.");
    return run(b, [this]() {
      kj::String current, fresh;
      KJ_DEFER(wipeString(current); wipeString(fresh));
      if (stdinIsTerminal()) {
        current = readSecretFrom(STDIN_FILENO, "Current password", false, PASSWORD_LIMIT);
        fresh = readSecretFrom(STDIN_FILENO, "New password", true, PASSWORD_LIMIT);
      } else {
        if (!has("password-stdin")) {
          usage("give --password-stdin (stdin is not a terminal to ask on)");
        }
        try {
          KJ_IF_MAYBE(c, readLine(STDIN_FILENO, PASSWORD_LIMIT)) { current = kj::mv(*c); }
          KJ_IF_MAYBE(n, readLine(STDIN_FILENO, PASSWORD_LIMIT)) { fresh = kj::mv(*n); }
        } catch (const ReadFailed& e) { localError(e.message); } catch (const TooLong&) {
          failWith(format(), LIMIT_EXCEEDED, "limit-exceeded", "a password line is too long");
        }
        if (fresh.size() == 0) usage("stdin must hold two lines: current password, new password");
      }
      auto& l = link();
      auto req = l.session().changePasswordRequest();
      req.setCurrent(current);
      req.setPassword(fresh);
      l.check(l.wait(req.send()));
      if (format() == Format::TEXT && stdinIsTerminal()) {
        fprintf(stderr, "credvaultctl: password changed\n");
      }
      return OK;
    });
  }

  kj::MainFunc loginCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "login NAME [--password-stdin]\n\n"
                      "Authenticates NAME by password and prints a ticket (7T:...) for "
                      "$CREDVAULT_TICKET. At a terminal the password is asked for without "
                      "echo.");
    begin(b, "login NAME [--password-stdin]");
    flag(b, "password-stdin", "Read the password from stdin.");
    arg(b, "NAME");
    return run(b, [this]() {
      auto pw = passwordInput("Password", false);
      KJ_DEFER(wipeString(pw));
      auto& l = link();
      auto req = l.vault().authenticatePasswordRequest();
      req.setName(args_[0]);
      req.setPassword(pw);
      req.setIssueTicket(true);
      auto r = l.wait(req.send());
      l.check(r);
      if (format() == Format::TEXT) {
        printf("%s\n", r.getTicket().cStr());
        return OK;
      }
      Row row;
      row.str("Ticket", "TICKET", r.getTicket())
          .date("Expires", "EXPIRES", r.getTicketExpires())
          .num("AssociateId", "ASSOCIATE", r.getPrincipal().getAssociateId());
      print(kj::arrayPtr(&row, 1), true);
      return OK;
    });
  }

  kj::MainFunc ticketCmd() {
    kj::MainBuilder b(ctx_, VERSION, "ticket revoke\n\nTickets.");
    begin(b, "ticket revoke");
    return b
        .addSubCommand("revoke", KJ_BIND_METHOD(*this, ticketRevokeCmd),
                       "revoke the ticket read from stdin")
        .build();
  }

  kj::MainFunc ticketRevokeCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "ticket revoke\n\nRevokes the ticket read from stdin (asked for at a "
                      "terminal): holding a ticket is the authority to revoke it.");
    begin(b, "ticket revoke");
    return run(b, [this]() {
      auto t = readSecretFrom(STDIN_FILENO, "Ticket", false, 1024);
      KJ_DEFER(wipeString(t));
      auto& l = link();
      auto req = l.vault().revokeTicketRequest();
      req.setTicket(t);
      auto r = l.wait(req.send());
      l.check(r);
      if (!r.getRevoked()) failWith(format(), NOT_FOUND, "not-found", "no such ticket");
      return OK;
    });
  }

  static Row tokenRow(rpc::ApiToken::Reader t) {
    Row row;
    row.str("Name", "NAME", t.getName())
        .num("AssociateId", "ASSOCIATE", t.getAssociateId())
        .date("Created", "CREATED", t.getCreated() * TICKS_PER_SECOND + UNIX_EPOCH_TICKS)
        .maybeDate("Expires", "EXPIRES",
                   t.getExpires() == 0 ? 0 : t.getExpires() * TICKS_PER_SECOND + UNIX_EPOCH_TICKS,
                   "never");
    return row;
  }

  kj::MainFunc tokenCmd() {
    kj::MainBuilder b(ctx_, VERSION, "token add|list|revoke\n\nAPI tokens (Bearer).");
    begin(b, "token add|list|revoke");
    return b.addSubCommand("add", KJ_BIND_METHOD(*this, tokenAddCmd), "mint a token, shown once")
        .addSubCommand("list", KJ_BIND_METHOD(*this, tokenListCmd), "list tokens")
        .addSubCommand("revoke", KJ_BIND_METHOD(*this, tokenRevokeCmd), "revoke a token")
        .build();
  }

  kj::MainFunc tokenAddCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "token add NAME [--expires T] [--associate ID]\n\n"
                      "Mints an API token and prints it once. T: 2030-01-01, "
                      "2030-01-01T10:00:00Z or +90d.");
    begin(b, "token add NAME [--expires T] [--associate ID]");
    value(b, "expires", "<date>", "When the token stops working (default never).");
    associateOption(b, "For another associate (system users).");
    arg(b, "NAME");
    return run(b, [this]() {
      int64_t expires = dateOption("expires", nowTicks());
      auto& l = link();
      auto req = l.session().createTokenRequest();
      KJ_IF_MAYBE(a, associate_) { req.setAssociateId(*a); }
      req.setName(args_[0]);
      if (expires != 0) req.setExpires((expires - UNIX_EPOCH_TICKS) / TICKS_PER_SECOND);
      auto r = l.wait(req.send());
      l.check(r);
      if (format() == Format::TEXT) {
        printf("%s\n", r.getToken().cStr());
        return OK;
      }
      auto row = tokenRow(r.getInfo());
      row.str("Token", "TOKEN", r.getToken());
      print(kj::arrayPtr(&row, 1), true);
      return OK;
    });
  }

  kj::MainFunc tokenListCmd() {
    kj::MainBuilder b(ctx_, VERSION, "token list [--associate ID]\n\nLists API tokens.");
    begin(b, "token list [--associate ID]");
    associateOption(b, "Another associate's tokens (system users).");
    return run(b, [this]() {
      auto& l = link();
      auto req = l.session().listTokensRequest();
      KJ_IF_MAYBE(a, associate_) { req.setAssociateId(*a); }
      auto r = l.wait(req.send());
      l.check(r);
      auto rows = KJ_MAP(t, r.getTokens()) {
        return tokenRow(t);
      };
      print(rows);
      return OK;
    });
  }

  kj::MainFunc tokenRevokeCmd() {
    kj::MainBuilder b(ctx_, VERSION, "token revoke NAME [--associate ID]\n\nRevokes a token.");
    begin(b, "token revoke NAME [--associate ID]");
    associateOption(b, "Another associate's token (system users).");
    arg(b, "NAME");
    return run(b, [this]() {
      auto& l = link();
      auto req = l.session().revokeTokenRequest();
      KJ_IF_MAYBE(a, associate_) { req.setAssociateId(*a); }
      req.setName(args_[0]);
      auto r = l.wait(req.send());
      l.check(r);
      if (!r.getRevoked()) failWith(format(), NOT_FOUND, "not-found", "no such token");
      return OK;
    });
  }

  // ---- associates ---------------------------------------------------------------------------

  static Row associateRow(rpc::Associate::Reader a) {
    Row row;
    row.num("AssociateId", "ID", a.getAssociateId())
        .str("Name", "NAME", a.getName())
        .str("Kind", "KIND", kindName(a.getKind()))
        .boolean("UserAdmin", "USER-ADMIN", a.getUserAdmin());
    if (a.getUnixUid() < 0) {
      row.maybeStr("UnixUid", "UID", nullptr, "-");
    } else {
      row.num("UnixUid", "UID", a.getUnixUid());
    }
    row.boolean("Active", "ACTIVE", a.getActive());
    return row;
  }

  void printAssociate(rpc::Associate::Reader a) {
    auto row = associateRow(a);
    print(kj::arrayPtr(&row, 1), true);
  }

  // NAME or ID: digits name an id (when such an associate exists), anything else a name.
  kj::Own<capnp::MallocMessageBuilder> resolveAssociate(rpc::Admin::Client& admin,
                                                        kj::StringPtr who) {
    auto& l = link();
    auto out = kj::heap<capnp::MallocMessageBuilder>();
    bool digits = who.size() > 0 && who.size() <= 10;
    for (char c : who) digits = digits && c >= '0' && c <= '9';
    if (digits) {
      auto r = l.wait(admin.listAssociatesRequest().send());
      l.check(r);
      for (auto a : r.getAssociates()) {
        if (kj::str(a.getAssociateId()) == who) {
          out->setRoot(a);
          return out;
        }
      }
    }
    auto req = admin.findAssociateRequest();
    req.setName(who);
    auto r = l.wait(req.send());
    l.check(r);
    out->setRoot(r.getAssociate());
    return out;
  }

  kj::MainFunc associateCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "associate add|list|show|set|remove|passwd\n\n"
                      "The users of the vault. show, set, remove and passwd take a NAME or "
                      "an ID.");
    begin(b, "associate add|list|show|set|remove|passwd");
    return b.addSubCommand("add", KJ_BIND_METHOD(*this, associateAddCmd), "add an associate")
        .addSubCommand("list", KJ_BIND_METHOD(*this, associateListCmd), "list associates")
        .addSubCommand("show", KJ_BIND_METHOD(*this, associateShowCmd), "show one associate")
        .addSubCommand("set", KJ_BIND_METHOD(*this, associateSetCmd), "change an associate")
        .addSubCommand("remove", KJ_BIND_METHOD(*this, associateRemoveCmd),
                       "remove an associate and its credentials")
        .addSubCommand("passwd", KJ_BIND_METHOD(*this, associatePasswdCmd),
                       "set an associate's password")
        .build();
  }

  kj::MainFunc associateAddCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "associate add NAME [--uid N] [--system] [--user-admin] "
                      "[--password-stdin]\n\nAdds an associate (system users).");
    begin(b, "associate add NAME [--uid N] [--system] [--user-admin] [--password-stdin]");
    value(b, "uid", "<n>", "The local uid that acts as this associate.");
    flag(b, "system", "A system user (may read every secret).");
    flag(b, "user-admin", "A user administrator (manages others' credentials).");
    flag(b, "password-stdin", "A password for login, from stdin (asked twice at a terminal).");
    arg(b, "NAME");
    return run(b, [this]() {
      int64_t uid = -1;
      KJ_IF_MAYBE(u, opt("uid")) { uid = uidValue(*u); }
      kj::Maybe<kj::String> pw;
      if (has("password-stdin")) {
        pw = readSecretFrom(STDIN_FILENO, "Password", true, PASSWORD_LIMIT);
      }
      auto& l = link();
      auto req = l.admin().addAssociateRequest();
      req.setName(args_[0]);
      req.setKind(has("system") ? rpc::Kind::SYSTEM : rpc::Kind::USER);
      req.setUserAdmin(has("user-admin"));
      req.setUnixUid(uid);
      KJ_IF_MAYBE(p, pw) {
        req.setPassword(*p);
        wipeString(*p);
      }
      auto r = l.wait(req.send());
      l.check(r);
      printAssociate(r.getAssociate());
      return OK;
    });
  }

  int64_t uidValue(kj::StringPtr text) {
    int64_t v = 0;
    bool ok = text.size() > 0 && text.size() <= 10;
    for (char c : text) {
      ok = ok && c >= '0' && c <= '9';
      if (ok) v = v * 10 + (c - '0');
    }
    if (!ok || v > int64_t(UINT32_MAX) - 1) usage(kj::str("--uid: '", text, "' is not a uid"));
    return v;
  }

  kj::MainFunc associateListCmd() {
    kj::MainBuilder b(ctx_, VERSION, "associate list\n\nLists associates.");
    begin(b, "associate list");
    return run(b, [this]() {
      auto& l = link();
      auto r = l.wait(l.admin().listAssociatesRequest().send());
      l.check(r);
      auto rows = KJ_MAP(a, r.getAssociates()) {
        return associateRow(a);
      };
      print(rows);
      return OK;
    });
  }

  kj::MainFunc associateShowCmd() {
    kj::MainBuilder b(ctx_, VERSION, "associate show NAME|ID\n\nShows one associate.");
    begin(b, "associate show NAME|ID");
    arg(b, "NAME|ID");
    return run(b, [this]() {
      auto admin = link().admin();
      auto found = resolveAssociate(admin, args_[0]);
      printAssociate(found->getRoot<rpc::Associate>().asReader());
      return OK;
    });
  }

  kj::MainFunc associateSetCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "associate set NAME|ID [--name N] [--kind user|system] "
                      "[--user-admin | --no-user-admin] [--uid N | --no-uid] "
                      "[--active | --inactive]\n\nChanges the fields given (system users).");
    begin(b,
          "associate set NAME|ID [--name N] [--kind user|system] "
          "[--user-admin | --no-user-admin] [--uid N | --no-uid] [--active | --inactive]");
    value(b, "name", "<name>", "A new name.");
    value(b, "kind", "<user|system>", "A new kind.");
    flag(b, "user-admin", "Make a user administrator.");
    flag(b, "no-user-admin", "No longer a user administrator.");
    value(b, "uid", "<n>", "Map this uid to the associate.");
    flag(b, "no-uid", "Remove the uid mapping.");
    flag(b, "active", "Activate.");
    flag(b, "inactive", "Deactivate (ends its tickets).");
    arg(b, "NAME|ID");
    return run(b, [this]() {
      if (has("user-admin") && has("no-user-admin")) {
        usage("give --user-admin or --no-user-admin, not both");
      }
      if (has("active") && has("inactive")) usage("give --active or --inactive, not both");
      if (opt("uid") != nullptr && has("no-uid")) usage("give --uid or --no-uid, not both");
      kj::Maybe<rpc::Kind> kind;
      KJ_IF_MAYBE(k, opt("kind")) {
        if (*k == "user") {
          kind = rpc::Kind::USER;
        } else if (*k == "system") {
          kind = rpc::Kind::SYSTEM;
        } else {
          usage("--kind must be user or system");
        }
      }
      int64_t uid = -1;
      KJ_IF_MAYBE(u, opt("uid")) { uid = uidValue(*u); }
      auto& l = link();
      auto admin = l.admin();
      auto found = resolveAssociate(admin, args_[0]);
      auto req = admin.setAssociateRequest();
      req.setAssociateId(found->getRoot<rpc::Associate>().getAssociateId());
      auto u = req.initUpdate();
      KJ_IF_MAYBE(n, opt("name")) { u.getName().setSet(*n); }
      KJ_IF_MAYBE(k, kind) { u.getKind().setSet(*k); }
      if (has("user-admin")) u.getUserAdmin().setSet(true);
      if (has("no-user-admin")) u.getUserAdmin().setSet(false);
      if (opt("uid") != nullptr) u.getUnixUid().setSet(uid);
      if (has("no-uid")) u.getUnixUid().setSet(-1);
      if (has("active")) u.getActive().setSet(true);
      if (has("inactive")) u.getActive().setSet(false);
      auto r = l.wait(req.send());
      l.check(r);
      printAssociate(r.getAssociate());
      return OK;
    });
  }

  kj::MainFunc associateRemoveCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "associate remove NAME|ID\n\nRemoves an associate with all of its "
                      "credentials (system users).");
    begin(b, "associate remove NAME|ID");
    arg(b, "NAME|ID");
    return run(b, [this]() {
      auto& l = link();
      auto admin = l.admin();
      auto found = resolveAssociate(admin, args_[0]);
      auto req = admin.removeAssociateRequest();
      req.setAssociateId(found->getRoot<rpc::Associate>().getAssociateId());
      auto r = l.wait(req.send());
      l.check(r);
      if (format() == Format::TEXT) {
        printf("removed, with %u credentials\n", r.getRemovedCredentials());
        return OK;
      }
      Row row;
      row.num("RemovedCredentials", "REMOVED-CREDENTIALS", r.getRemovedCredentials());
      print(kj::arrayPtr(&row, 1), true);
      return OK;
    });
  }

  kj::MainFunc associatePasswdCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "associate passwd NAME|ID [--password-stdin]\n\nSets an associate's "
                      "password (system users; your own: see `passwd`). At a terminal it is "
                      "asked for twice without echo.");
    begin(b, "associate passwd NAME|ID [--password-stdin]");
    flag(b, "password-stdin", "Read the password from stdin.");
    arg(b, "NAME|ID");
    return run(b, [this]() {
      auto pw = passwordInput("New password", true);
      KJ_DEFER(wipeString(pw));
      auto& l = link();
      auto admin = l.admin();
      auto found = resolveAssociate(admin, args_[0]);
      auto req = admin.setPasswordRequest();
      req.setAssociateId(found->getRoot<rpc::Associate>().getAssociateId());
      req.setPassword(pw);
      l.check(l.wait(req.send()));
      return OK;
    });
  }

  // ---- applications -----------------------------------------------------------------------

  kj::MainFunc appCmd() {
    kj::MainBuilder b(ctx_, VERSION, "app add|list|remove\n\nPartner applications (online mode).");
    begin(b, "app add|list|remove");
    return b.addSubCommand("add", KJ_BIND_METHOD(*this, appAddCmd), "register, print its token")
        .addSubCommand("list", KJ_BIND_METHOD(*this, appListCmd), "list applications")
        .addSubCommand("remove", KJ_BIND_METHOD(*this, appRemoveCmd), "remove an application")
        .build();
  }

  kj::MainFunc appAddCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "app add NAME\n\nRegisters a partner application and "
                      "prints its token once.");
    begin(b, "app add NAME");
    arg(b, "NAME");
    return run(b, [this]() {
      auto& l = link();
      auto req = l.admin().addApplicationRequest();
      req.setName(args_[0]);
      auto r = l.wait(req.send());
      l.check(r);
      if (format() == Format::TEXT) {
        printf("%s\n", r.getToken().cStr());
        return OK;
      }
      Row row;
      row.str("Name", "NAME", r.getApplication().getName())
          .date("Created", "CREATED",
                r.getApplication().getCreated() * TICKS_PER_SECOND + UNIX_EPOCH_TICKS)
          .str("Token", "TOKEN", r.getToken());
      print(kj::arrayPtr(&row, 1), true);
      return OK;
    });
  }

  kj::MainFunc appListCmd() {
    kj::MainBuilder b(ctx_, VERSION, "app list\n\nLists partner applications.");
    begin(b, "app list");
    return run(b, [this]() {
      auto& l = link();
      auto r = l.wait(l.admin().listApplicationsRequest().send());
      l.check(r);
      auto rows = KJ_MAP(a, r.getApplications()) {
        Row row;
        row.str("Name", "NAME", a.getName())
            .date("Created", "CREATED", a.getCreated() * TICKS_PER_SECOND + UNIX_EPOCH_TICKS);
        return row;
      };
      print(rows);
      return OK;
    });
  }

  kj::MainFunc appRemoveCmd() {
    kj::MainBuilder b(ctx_, VERSION, "app remove NAME\n\nRemoves a partner application.");
    begin(b, "app remove NAME");
    arg(b, "NAME");
    return run(b, [this]() {
      auto& l = link();
      auto req = l.admin().removeApplicationRequest();
      req.setName(args_[0]);
      auto r = l.wait(req.send());
      l.check(r);
      if (!r.getRemoved()) failWith(format(), NOT_FOUND, "not-found", "no such application");
      return OK;
    });
  }

  // ---- maintenance ------------------------------------------------------------------------

  kj::MainFunc backupCmd() {
    kj::MainBuilder b(
        ctx_, VERSION,
        "backup FILE [--force]\n\n"
        "Streams a consistent snapshot of the vault into FILE, written as you (mode 0600); "
        "- writes to stdout (not a terminal). An existing FILE is refused unless --force, "
        "which writes a new file next to it and renames it over FILE only once the whole "
        "snapshot is on disk. System users only.");
    begin(b, "backup FILE [--force]");
    flag(b, "force", "Replace FILE if it exists (atomically, when the backup is complete).");
    arg(b, "FILE");
    return run(b, [this]() { return backup(args_[0]); });
  }

  // The daemon streams the snapshot, we write it as ourselves. A file we created is removed
  // again unless the whole snapshot reached the disk.
  int backup(kj::StringPtr target) {
    bool toStdout = target == "-";
    kj::StringPtr shown = toStdout ? kj::StringPtr("standard output") : target;
    int fd = STDOUT_FILENO;
    kj::String writing = kj::heapString(target);  // the file being written
    if (toStdout) {
      if (stdoutIsTerminal()) {
        localError(
            "refusing to write a backup to a terminal; redirect standard output or name "
            "a FILE");
      }
    } else {
      struct stat st;
      bool exists = lstat(target.cStr(), &st) == 0;
      if (exists && !has("force")) {
        localError(kj::str(target, " exists; choose a new name, or give --force to replace it"));
      }
      if (exists && S_ISDIR(st.st_mode)) localError(kj::str(target, " is a directory"));
      if (exists) writing = kj::str(target, ".partial-", getpid());
      fd = open(writing.cStr(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) {
        if (errno == EEXIST) { localError(kj::str(writing, " exists; choose a new name")); }
        localError(kj::str("cannot create ", writing, ": ", strerror(errno)));
      }
    }
    bool kept = false;
    if (!toStdout) {
      partialBackup = writing.cStr();
      for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, removePartialBackup);
    }
    KJ_DEFER({
      if (!toStdout) {
        partialBackup = nullptr;
        if (fd >= 0) close(fd);
        if (!kept) unlink(writing.cStr());
      }
    });

    auto& l = link();
    auto owned = kj::heap<FileSink>(fd);
    FileSink& sink = *owned;
    rpc::ByteSink::Client client = kj::mv(owned);
    // The daemon holds a reference to the sink: whatever it does later, no write lands.
    KJ_DEFER(sink.close());
    auto req = l.admin().backupToRequest();
    req.setSink(client);
    auto r = l.wait(req.send());
    sink.close();
    KJ_IF_MAYBE(err, sink.error()) {
      localError(kj::str("cannot write ", shown, ": ", strerror(*err)));
    }
    l.check(r);
    if (!sink.finished() || sink.written() != r.getBytes()) {
      failWith(format(), UNAVAILABLE, "unavailable",
               kj::str("the backup stream ended early (", sink.written(), " of ", r.getBytes(),
                       " bytes)"));
    }
    // A pipe or socket cannot be synced; a file must be.
    if (fsync(fd) != 0 && (toStdout ? (errno != EINVAL && errno != EROFS) : true)) {
      localError(kj::str("cannot write ", shown, ": ", strerror(errno)));
    }
    if (toStdout) return OK;
    int closing = fd;
    fd = -1;
    if (close(closing) != 0) localError(kj::str("cannot write ", writing, ": ", strerror(errno)));
    if (writing != target) {
      if (rename(writing.cStr(), target.cStr()) != 0) {
        localError(kj::str("cannot replace ", target, ": ", strerror(errno)));
      }
    }
    syncDirectoryOf(target);
    partialBackup = nullptr;
    kept = true;
    if (format() == Format::TEXT) {
      printf("backup of %llu bytes written to %s\n", (unsigned long long)sink.written(),
             target.cStr());
      return OK;
    }
    Row row;
    row.str("File", "FILE", target).num("Bytes", "BYTES", sink.written());
    print(kj::arrayPtr(&row, 1), true);
    return OK;
  }

  kj::MainFunc auditHashCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "audit-hash VALUE\n\nPrints the keyed hash under which audit records "
                      "name the public value VALUE; - reads VALUE from stdin. System users.");
    begin(b, "audit-hash VALUE");
    arg(b, "VALUE");
    return run(b, [this]() {
      // A public value is not a secret, but `-` keeps it out of the process list and history.
      auto value = args_[0] == "-" ? readSecretFrom(STDIN_FILENO, "Public value", false, 4096)
                                   : kj::heapString(args_[0]);
      KJ_DEFER(wipeString(value));
      auto& l = link();
      auto req = l.admin().auditHashRequest();
      req.setValue(value);
      auto r = l.wait(req.send());
      l.check(r);
      if (format() == Format::TEXT) {
        printf("%s\n", r.getHmac().cStr());
        return OK;
      }
      Row row;
      row.str("Hmac", "HMAC", r.getHmac());
      print(kj::arrayPtr(&row, 1), true);
      return OK;
    });
  }

  kj::MainFunc verifyCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "verify\n\nHas the running daemon walk every table and page of its vault, "
                      "open every sealed record and check the counts and indexes against the "
                      "records (in a child process, on a snapshot; clients are served meanwhile). "
                      "Exit 8 (integrity) when the vault is damaged. System users.");
    begin(b, "verify");
    return run(b, [this]() {
      auto& l = link();
      auto r = l.wait(l.admin().verifyRequest().send());
      auto report = r.getReport();
      bool damaged = r.hasError() && r.getError().getCode() == rpc::ErrorCode::INTEGRITY &&
                     report.hasProblem();
      // Text shows damage as any other error (one line on stderr); json and tsv show the
      // report with its Problem, so a script reads what was checked either way.
      if (!damaged || format() == Format::TEXT) l.check(r);
      if (format() == Format::TEXT) {
        printf(
            "verified %llu credentials of %llu associates (%llu entries in %llu tables) in "
            "%llu ms\n",
            (unsigned long long)report.getCredentials(), (unsigned long long)report.getAssociates(),
            (unsigned long long)report.getEntries(), (unsigned long long)report.getTables(),
            (unsigned long long)report.getDurationMs());
        return OK;
      }
      kj::Maybe<kj::ArrayPtr<const char>> problem;
      if (report.hasProblem()) problem = report.getProblem().asArray();
      Row row;
      row.boolean("Ok", "OK", !damaged);
      row.num("Tables", "TABLES", report.getTables());
      row.num("Entries", "ENTRIES", report.getEntries());
      row.num("Associates", "ASSOCIATES", report.getAssociates());
      row.num("Credentials", "CREDENTIALS", report.getCredentials());
      row.num("DurationMs", "MS", report.getDurationMs());
      row.maybeStr("Problem", "PROBLEM", problem, "-");
      print(kj::arrayPtr(&row, 1), true);
      if (damaged) {
        fprintf(stderr, "credvaultctl: integrity: %s\n", r.getError().getMessage().cStr());
        return INTEGRITY;
      }
      return OK;
    });
  }

  kj::MainFunc rotateKeyCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "rotate-key\n\nAdds a data key; new records are sealed with it. "
                      "System users.");
    begin(b, "rotate-key");
    return run(b, [this]() {
      auto& l = link();
      auto r = l.wait(l.admin().rotateDataKeyRequest().send());
      l.check(r);
      if (format() == Format::TEXT) {
        printf("new data key %u\n", r.getKeyId());
        return OK;
      }
      Row row;
      row.num("DataKeyId", "DATA-KEY", r.getKeyId());
      print(kj::arrayPtr(&row, 1), true);
      return OK;
    });
  }

  kj::MainFunc changeMasterKeyCmd() {
    kj::MainBuilder b(ctx_, VERSION,
                      "change-master-key FILE\n\nRe-wraps every data key under the key in "
                      "FILE (the daemon reads it). System users. See docs/operations.md.");
    begin(b, "change-master-key FILE");
    arg(b, "FILE");
    return run(b, [this]() {
      auto path = absolutePath(args_[0]);
      auto& l = link();
      auto req = l.admin().changeMasterKeyRequest();
      req.setKeyFile(path);
      auto r = l.wait(req.send());
      l.check(r);
      if (format() == Format::TEXT) {
        printf("all keys re-wrapped; new master key fingerprint %s\n", r.getFingerprint().cStr());
        return OK;
      }
      Row row;
      row.str("Fingerprint", "FINGERPRINT", r.getFingerprint());
      print(kj::arrayPtr(&row, 1), true);
      return OK;
    });
  }
};

}  // namespace

}  // namespace credvault::ctl

int main(int argc, char** argv) {
  using namespace credvault::ctl;
  CliContext context;
  Ctl ctl(context);
  auto params = kj::heapArray<kj::StringPtr>(argc > 0 ? argc - 1 : 0);
  for (int i = 1; i < argc; i++) params[i - 1] = argv[i];
  try {
    auto main = ctl.getMain();
    main("credvaultctl", params);
  } catch (const ExitWith& e) {
    fflush(stdout);
    return e.code;
  } catch (const kj::Exception& e) {
    fprintf(stderr, "credvaultctl: %s\n", e.getDescription().cStr());
    return INTERNAL;
  }
  fflush(stdout);
  return ctl.exitCode;
}
