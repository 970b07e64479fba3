// credvaultctl — the commands about your own access: whoami, status, passwd, login, ticket,
// token.

#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

namespace credvault::ctl {

namespace {

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

}  // namespace

// ---- whoami, status -------------------------------------------------------------------

kj::MainFunc Ctl::whoamiCmd() {
  auto& b = command("whoami", "Who the daemon takes you for, and how.");
  return run(b, [this]() {
    auto& l = link();
    const char* ticket = getenv("CREDVAULT_TICKET");
    auto show = [&](rpc::Principal::Reader p) {
      if (format() == Format::TEXT) {
        if (p.getMethod() == rpc::AuthMethod::NONE) {
          printf("uid %u: not mapped to an associate\n", p.getUid());
        } else {
          printf("%s (associate %d, %s%s) by %s, uid %u\n", p.getName().cStr(), p.getAssociateId(),
                 kindName(p.getKind()).cStr(), p.getUserAdmin() ? ", user admin" : "",
                 methodName(p.getMethod()).cStr(), p.getUid());
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

kj::MainFunc Ctl::statusCmd() {
  auto& b = command("status", "The daemon's version, counts and uptime.");
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

// ---- passwords, tickets, tokens ---------------------------------------------------------

kj::MainFunc Ctl::passwdCmd() {
  auto& b = command("passwd [--password-stdin]",
                    "Changes your own password, given the current one. At a terminal both are "
                    "asked for without echo (the new one twice); with --password-stdin stdin holds "
                    "two lines: the current password, then the new one. Your tickets end.");
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

kj::MainFunc Ctl::loginCmd() {
  auto& b = command("login NAME [--password-stdin]",
                    "Authenticates NAME by password and prints a ticket (7T:...) for "
                    "$CREDVAULT_TICKET. At a terminal the password is asked for without echo.");
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

kj::MainFunc Ctl::ticketCmd() {
  auto& b = command("ticket revoke", "Tickets.");
  return b
      .addSubCommand("revoke", KJ_BIND_METHOD(*this, ticketRevokeCmd),
                     "revoke the ticket read from stdin")
      .build();
}

kj::MainFunc Ctl::ticketRevokeCmd() {
  auto& b = command("ticket revoke",
                    "Revokes the ticket read from stdin (asked for at a terminal): holding a "
                    "ticket is the authority to revoke it.");
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

Row Ctl::tokenRow(rpc::ApiToken::Reader t) {
  Row row;
  row.str("Name", "NAME", t.getName())
      .num("AssociateId", "ASSOCIATE", t.getAssociateId())
      .date("Created", "CREATED", t.getCreated() * TICKS_PER_SECOND + UNIX_EPOCH_TICKS)
      .maybeDate("Expires", "EXPIRES",
                 t.getExpires() == 0 ? 0 : t.getExpires() * TICKS_PER_SECOND + UNIX_EPOCH_TICKS,
                 "never");
  return row;
}

kj::MainFunc Ctl::tokenCmd() {
  auto& b = command("token add|list|revoke", "API tokens (Bearer).");
  return b.addSubCommand("add", KJ_BIND_METHOD(*this, tokenAddCmd), "mint a token, shown once")
      .addSubCommand("list", KJ_BIND_METHOD(*this, tokenListCmd), "list tokens")
      .addSubCommand("revoke", KJ_BIND_METHOD(*this, tokenRevokeCmd), "revoke a token")
      .build();
}

kj::MainFunc Ctl::tokenAddCmd() {
  auto& b = command(
      "token add NAME [--expires T] [--associate ID]",
      "Mints an API token and prints it once. T: 2030-01-01, 2030-01-01T10:00:00Z or +90d.");
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

kj::MainFunc Ctl::tokenListCmd() {
  auto& b = command("token list [--associate ID]", "Lists API tokens.");
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

kj::MainFunc Ctl::tokenRevokeCmd() {
  auto& b = command("token revoke NAME [--associate ID]", "Revokes a token.");
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

}  // namespace credvault::ctl
