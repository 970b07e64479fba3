// credvaultctl — the credential commands: get, list, expiring, save, update, remove.

#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

namespace credvault::ctl {

namespace {

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

}  // namespace

// ---- credentials ------------------------------------------------------------------------

kj::MainFunc Ctl::getCmd() {
  auto& b = command("get TYPE [--public VALUE] [--field NAME] [--associate ID]",
                    "Prints the credentials of TYPE with their secrets. --public picks one entry. "
                    "--field prints only that value of exactly one entry, as it is (no escaping; a "
                    "newline only when stdout is a terminal): secret, public, comment, valid-from, "
                    "valid-to or active. No match exits 5, several exit 16.");
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
kj::Array<Row> Ctl::listedRows(capnp::List<rpc::ListedCredential>::Reader list, int64_t now,
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

void Ctl::listInto(kj::StringPtr type, bool all, int64_t now, kj::Maybe<int64_t> expiringBefore) {
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

kj::MainFunc Ctl::listCmd() {
  auto& b = command(
      "list [TYPE] [--associate ID | --all]",
      "Lists your credentials (of every type, or of TYPE): type, public value, state (active, "
      "expired, not-yet-valid, inactive), validity and comment. Never secrets. --associate and "
      "--all as the permission table allows (user admins and system users).");
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

kj::MainFunc Ctl::expiringCmd() {
  auto& b = command("expiring [--within DURATION] [--associate ID | --all]",
                    "Lists credentials whose ValidTo falls within DURATION from now (default 30d; "
                    "units s, m, h, d, w), and those already expired. Never secrets.");
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

kj::MainFunc Ctl::saveCmd() {
  auto& b = command(
      "save TYPE --public VALUE [--secret-stdin | --secret-file F] [--comment C] [--valid-from T] "
      "[--valid-to T] [--inactive] [--associate ID]",
      "Stores a credential as SuperOffice's SaveUntrustedCredentials does: the entry (TYPE, VALUE) "
      "is replaced as a whole, so a field not given here is emptied. Only an absent secret keeps "
      "the stored one. To change some fields and keep the rest, use `update`. At a terminal, "
      "without --secret-stdin or --secret-file, the secret is asked for twice without echo (an "
      "empty answer keeps the stored one). Dates: 2030-01-01, 2030-01-01T10:00:00Z, +90d, or "
      "none.");
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

kj::MainFunc Ctl::updateCmd() {
  auto& b = command(
      "update TYPE PUBLIC [--comment C] [--valid-from T] [--valid-to T] [--active | --inactive] "
      "[--secret-stdin | --secret-file F] [--associate ID]",
      "Changes only the fields given, in one step in the daemon (no other writer can slip in "
      "between); the rest of the entry stays as it is. The entry must exist. Dates: 2030-01-01, "
      "2030-01-01T10:00:00Z, +90d, or none to open the end.");
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

kj::MainFunc Ctl::removeCmd() {
  auto& b = command("remove TYPE PUBLIC [--associate ID]",
                    "Deletes the entry (TYPE, PUBLIC); exit 5 when there is none. A public value "
                    "that starts with '-' goes after '--'.");
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

}  // namespace credvault::ctl
