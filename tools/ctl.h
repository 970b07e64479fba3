// credvaultctl — the commands, one object per process: kj::MainBuilder sub-commands that
// share the parsed options (one command runs per process, so its options land in this
// object) and one link to the daemon.
//
// The frame (ctl.c++): building a command's options and arguments, reading them back,
// secrets and passwords from stdin, a file or a prompt, printing rows. The commands, one
// file per group: your own access (self.c++: whoami, status, passwd, login, ticket, token),
// credentials (credentials.c++: get, list, expiring, save, update, remove; exec.c++),
// associates and partner applications (associates.c++), maintenance (maintenance.c++:
// backup, audit-hash, verify, rotate-key, change-master-key). main() is in credvaultctl.c++.

#pragma once

#include "cli.h"
#include "dates.h"
#include "link.h"
#include "output.h"
#include "terminal.h"
#include "credvault-config.h"

#include <capnp/message.h>
#include <kj/debug.h>
#include <kj/map.h>
#include <kj/vector.h>

namespace credvault::ctl {

using Validity = kj::MainBuilder::Validity;

inline constexpr size_t SECRET_LIMIT = 1 << 20;  // the daemon's own limit is smaller; it says so
inline constexpr size_t PASSWORD_LIMIT = 4096;
inline constexpr const char VERSION[] = "credvaultctl " CREDVAULT_VERSION;

// A local failure (a file, the terminal): the message on stderr, exit LOCAL.
[[noreturn]] void localError(kj::StringPtr message);

kj::StringPtr kindName(rpc::Kind k);

class Ctl {
 public:
  explicit Ctl(CliContext& ctx);
  kj::MainFunc getMain();

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

  kj::Vector<kj::String> texts_;
  kj::Vector<kj::Own<kj::MainBuilder>> builders_;

  // ---- building commands (ctl.c++) ----------------------------------------------------------

  // A command's builder with the shared options: `synopsis` is its usage line (printed again
  // with a usage error), `help` what it does. Both texts and the builder live as long as this
  // object (a builder keeps pointers to its texts).
  kj::MainBuilder& command(kj::StringPtr synopsis, kj::StringPtr help);
  void value(kj::MainBuilder& b, const char* name, kj::StringPtr title, kj::StringPtr help);
  void flag(kj::MainBuilder& b, const char* name, kj::StringPtr help);
  void associateOption(kj::MainBuilder& b, kj::StringPtr help);
  void arg(kj::MainBuilder& b, kj::StringPtr title);
  void optionalArg(kj::MainBuilder& b, kj::StringPtr title);
  kj::Maybe<kj::StringPtr> opt(kj::StringPtr name);
  // A usage problem found after parsing (a combination of options): exit 2, nothing sent.
  [[noreturn]] void usage(kj::StringPtr message);
  Link& link();
  int64_t dateOption(kj::StringPtr name, int64_t now);
  void print(kj::ArrayPtr<const Row> rows, bool single = false);
  // A secret from --secret-stdin (prompted, twice, when stdin is a terminal) or
  // --secret-file; null when neither was given.
  kj::Maybe<kj::String> secretOption(kj::StringPtr what);
  kj::String readSecretFrom(int fd, kj::StringPtr what, bool confirm, size_t limit = SECRET_LIMIT);
  // A password: --password-stdin reads stdin; at a terminal it is asked for without echo.
  kj::String passwordInput(kj::StringPtr what, bool confirm);
  // Ends a command's builder: `body` runs once everything is parsed; it returns the exit code.
  template<typename Body>
  kj::MainFunc run(kj::MainBuilder& b, Body body) {
    b.callAfterParsing([this, body = kj::mv(body)]() mutable -> Validity {
      exitCode = body();
      return true;
    });
    return b.build();
  }
  bool has(kj::StringPtr name) { return flags_.find(name) != nullptr; }
  Format format() { return common_.formatOr(); }

  // ---- whoami, status, passwords, tickets, tokens (self.c++) ---------------------------------

  kj::MainFunc whoamiCmd();
  kj::MainFunc statusCmd();
  kj::MainFunc passwdCmd();
  kj::MainFunc loginCmd();
  kj::MainFunc ticketCmd();
  kj::MainFunc ticketRevokeCmd();
  static Row tokenRow(rpc::ApiToken::Reader t);
  kj::MainFunc tokenCmd();
  kj::MainFunc tokenAddCmd();
  kj::MainFunc tokenListCmd();
  kj::MainFunc tokenRevokeCmd();

  // ---- credentials (credentials.c++, exec.c++) -----------------------------------------------

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
  kj::MainFunc getCmd();
  // Rows of Session.list / listAll.
  kj::Array<Row> listedRows(capnp::List<rpc::ListedCredential>::Reader list, int64_t now,
                            bool withAssociate, kj::Maybe<int64_t> expiringBefore);
  void listInto(kj::StringPtr type, bool all, int64_t now, kj::Maybe<int64_t> expiringBefore);
  kj::MainFunc listCmd();
  kj::MainFunc expiringCmd();
  kj::MainFunc saveCmd();
  kj::MainFunc updateCmd();
  kj::MainFunc removeCmd();
  kj::MainFunc execCmd();

  // ---- associates and applications (associates.c++) ------------------------------------------

  static Row associateRow(rpc::Associate::Reader a);
  void printAssociate(rpc::Associate::Reader a);
  // NAME or ID: digits name an id (when such an associate exists), anything else a name.
  kj::Own<capnp::MallocMessageBuilder> resolveAssociate(rpc::Admin::Client& admin,
                                                        kj::StringPtr who);
  kj::MainFunc associateCmd();
  kj::MainFunc associateAddCmd();
  int64_t uidValue(kj::StringPtr text);
  kj::MainFunc associateListCmd();
  kj::MainFunc associateShowCmd();
  kj::MainFunc associateSetCmd();
  kj::MainFunc associateRemoveCmd();
  kj::MainFunc associatePasswdCmd();
  kj::MainFunc appCmd();
  kj::MainFunc appAddCmd();
  kj::MainFunc appListCmd();
  kj::MainFunc appRemoveCmd();

  // ---- maintenance (maintenance.c++) ---------------------------------------------------------

  kj::MainFunc backupCmd();
  // The daemon streams the snapshot, we write it as ourselves. A file we created is removed
  // again unless the whole snapshot reached the disk.
  int backup(kj::StringPtr target);
  kj::MainFunc auditHashCmd();
  kj::MainFunc verifyCmd();
  kj::MainFunc rotateKeyCmd();
  kj::MainFunc changeMasterKeyCmd();
};

}  // namespace credvault::ctl
