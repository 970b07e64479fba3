#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

namespace credvault::ctl {

[[noreturn]] void localError(kj::StringPtr message) {
  fprintf(stderr, "credvaultctl: %s\n", message.cStr());
  throw ExitWith{LOCAL};
}

kj::StringPtr kindName(rpc::Kind k) {
  return k == rpc::Kind::SYSTEM ? "system" : "user";
}

Ctl::Ctl(CliContext& ctx) : ctx_(ctx) {
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

kj::MainFunc Ctl::getMain() {
  kj::MainBuilder b(ctx_, VERSION, "The command-line client of credvaultd, the credential vault.",
                    extended_);
  common_.addTo(b);
  return b.addSubCommand("whoami", KJ_BIND_METHOD(*this, whoamiCmd), "who the daemon says you are")
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

// ---- building commands ------------------------------------------------------------------

kj::MainBuilder& Ctl::command(kj::StringPtr synopsis, kj::StringPtr help) {
  texts_.add(kj::str(synopsis, "\n\n", help));
  auto& b = *builders_.add(kj::heap<kj::MainBuilder>(ctx_, VERSION, texts_.back()));
  ctx_.synopsis = synopsis;
  common_.addTo(b);
  return b;
}
void Ctl::value(kj::MainBuilder& b, const char* name, kj::StringPtr title, kj::StringPtr help) {
  b.addOptionWithArg(
      {name},
      [this, name](kj::StringPtr v) -> Validity {
        if (values_.find(kj::StringPtr(name)) != nullptr) return kj::str("given twice");
        values_.insert(kj::heapString(name), kj::heapString(v));
        return true;
      },
      title, help);
}
void Ctl::flag(kj::MainBuilder& b, const char* name, kj::StringPtr help) {
  b.addOption(
      {name},
      [this, name]() -> Validity {
        if (flags_.find(kj::StringPtr(name)) != nullptr) return kj::str("given twice");
        flags_.insert(kj::heapString(name), true);
        return true;
      },
      help);
}
void Ctl::associateOption(kj::MainBuilder& b, kj::StringPtr help) {
  b.addOptionWithArg(
      {"associate"}, [this](kj::StringPtr v) { return parseId(v, associate_); }, "<id>", help);
}
void Ctl::arg(kj::MainBuilder& b, kj::StringPtr title) {
  b.expectArg(title, [this](kj::StringPtr v) -> Validity {
    args_.add(kj::heapString(v));
    return true;
  });
}
void Ctl::optionalArg(kj::MainBuilder& b, kj::StringPtr title) {
  b.expectOptionalArg(title, [this](kj::StringPtr v) -> Validity {
    args_.add(kj::heapString(v));
    return true;
  });
}

kj::Maybe<kj::StringPtr> Ctl::opt(kj::StringPtr name) {
  KJ_IF_MAYBE(v, values_.find(name)) { return v->asPtr(); }
  return nullptr;
}

// A usage problem found after parsing (a combination of options): exit 2, nothing sent.
void Ctl::usage(kj::StringPtr message) {
  ctx_.exitError(kj::str("credvaultctl: ", message,
                         "\nTry 'credvaultctl --help' or 'credvaultctl help COMMAND'."));
}

Link& Ctl::link() {
  KJ_IF_MAYBE(l, link_) { return *l; }
  return link_.emplace(common_);
}

int64_t Ctl::dateOption(kj::StringPtr name, int64_t now) {
  KJ_IF_MAYBE(v, opt(name)) {
    KJ_IF_MAYBE(t, parseDate(*v, now)) { return *t; }
    usage(kj::str("--", name, ": '", *v,
                  "' is not a date: use 2030-01-01, 2030-01-01T10:00:00Z, +90d or none"));
  }
  return 0;
}

void Ctl::print(kj::ArrayPtr<const Row> rows, bool single) {
  printRows(stdout, format(), stdoutIsTerminal(), rows, single);
}

// A secret from --secret-stdin (prompted, twice, when stdin is a terminal) or
// --secret-file; null when neither was given.
kj::Maybe<kj::String> Ctl::secretOption(kj::StringPtr what) {
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

kj::String Ctl::readSecretFrom(int fd, kj::StringPtr what, bool confirm, size_t limit) {
  try {
    if (fd == STDIN_FILENO && stdinIsTerminal()) return promptSecret(what, confirm, limit);
    return readSecret(fd, limit);
  } catch (const ReadFailed& e) { localError(e.message); } catch (const TooLong&) {
    failWith(format(), LIMIT_EXCEEDED, "limit-exceeded",
             kj::str(what, " is longer than ", limit, " bytes"));
  }
}

// A password: --password-stdin reads stdin; at a terminal it is asked for without echo.
kj::String Ctl::passwordInput(kj::StringPtr what, bool confirm) {
  if (!has("password-stdin") && !stdinIsTerminal()) {
    usage("give --password-stdin (stdin is not a terminal to ask on)");
  }
  return readSecretFrom(STDIN_FILENO, what, confirm, PASSWORD_LIMIT);
}

}  // namespace credvault::ctl
