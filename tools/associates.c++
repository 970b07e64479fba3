// credvaultctl — administration of associates and partner applications.

#include "ctl.h"

#include "base/parse-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

namespace credvault::ctl {

// ---- associates ---------------------------------------------------------------------------

Row Ctl::associateRow(rpc::Associate::Reader a) {
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

void Ctl::printAssociate(rpc::Associate::Reader a) {
  auto row = associateRow(a);
  print(kj::arrayPtr(&row, 1), true);
}

// NAME or ID: digits name an id (when such an associate exists), anything else a name.
kj::Own<capnp::MallocMessageBuilder> Ctl::resolveAssociate(rpc::Admin::Client& admin,
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

kj::MainFunc Ctl::associateCmd() {
  auto& b = command("associate add|list|show|set|remove|passwd",
                    "The users of the vault. show, set, remove and passwd take a NAME or an ID.");
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

kj::MainFunc Ctl::associateAddCmd() {
  auto& b = command("associate add NAME [--uid N] [--system] [--user-admin] [--password-stdin]",
                    "Adds an associate (system users).");
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

int64_t Ctl::uidValue(kj::StringPtr text) {
  if (text.size() <= 10) {
    KJ_IF_MAYBE(v, base::unsignedOrNull(text, UINT32_MAX - 1)) { return static_cast<int64_t>(*v); }
  }
  usage(kj::str("--uid: '", text, "' is not a uid"));
}

kj::MainFunc Ctl::associateListCmd() {
  auto& b = command("associate list", "Lists associates.");
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

kj::MainFunc Ctl::associateShowCmd() {
  auto& b = command("associate show NAME|ID", "Shows one associate.");
  arg(b, "NAME|ID");
  return run(b, [this]() {
    auto admin = link().admin();
    auto found = resolveAssociate(admin, args_[0]);
    printAssociate(found->getRoot<rpc::Associate>().asReader());
    return OK;
  });
}

kj::MainFunc Ctl::associateSetCmd() {
  auto& b = command(
      "associate set NAME|ID [--name N] [--kind user|system] [--user-admin | --no-user-admin] "
      "[--uid N | --no-uid] [--active | --inactive]",
      "Changes the fields given (system users).");
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

kj::MainFunc Ctl::associateRemoveCmd() {
  auto& b = command("associate remove NAME|ID",
                    "Removes an associate with all of its credentials (system users).");
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

kj::MainFunc Ctl::associatePasswdCmd() {
  auto& b = command("associate passwd NAME|ID [--password-stdin]",
                    "Sets an associate's password (system users; your own: see `passwd`). At a "
                    "terminal it is asked for twice without echo.");
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

kj::MainFunc Ctl::appCmd() {
  auto& b = command("app add|list|remove", "Partner applications (online mode).");
  return b.addSubCommand("add", KJ_BIND_METHOD(*this, appAddCmd), "register, print its token")
      .addSubCommand("list", KJ_BIND_METHOD(*this, appListCmd), "list applications")
      .addSubCommand("remove", KJ_BIND_METHOD(*this, appRemoveCmd), "remove an application")
      .build();
}

kj::MainFunc Ctl::appAddCmd() {
  auto& b = command("app add NAME", "Registers a partner application and prints its token once.");
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

kj::MainFunc Ctl::appListCmd() {
  auto& b = command("app list", "Lists partner applications.");
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

kj::MainFunc Ctl::appRemoveCmd() {
  auto& b = command("app remove NAME", "Removes a partner application.");
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

}  // namespace credvault::ctl
