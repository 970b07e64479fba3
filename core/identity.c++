#include "identity.h"

#include <kj/debug.h>

namespace credvault::core {

namespace {

Refusal gone(kj::StringPtr why) {
  return refuse(ErrorCode::NOT_AUTHENTICATED, "", kj::str(why));
}

kj::Array<kj::byte> copyOf(kj::ArrayPtr<const kj::byte> bytes) {
  return kj::heapArray(bytes);
}

}  // namespace

Grant cloneGrant(const Grant& g) {
  Grant out;
  out.method = g.method;
  out.peer = g.peer;
  out.associateId = g.associateId;
  out.epoch = g.epoch;
  out.systemUid = g.systemUid;
  out.ticketKey = copyOf(g.ticketKey);
  out.tokenKey = copyOf(g.tokenKey);
  out.appKey = copyOf(g.appKey);
  return out;
}

Identity::Identity(Vault& vault, Authenticator& auth, const kj::Clock& clock,
                   IdentityOptions options)
    : vault_(vault), auth_(auth), clock_(clock), options_(kj::mv(options)) {}

bool Identity::isSystemUid(uint32_t uid) const {
  if (uid == 0) return true;
  for (auto u : options_.systemUids) {
    if (u == uid) return true;
  }
  return false;
}

bool Identity::isGatewayUid(uint32_t uid) const {
  if (uid == 0) return true;
  for (auto u : options_.gatewayUids) {
    if (u == uid) return true;
  }
  return false;
}

int64_t Identity::nowUnix() const {
  return (clock_.now() - kj::UNIX_EPOCH) / kj::SECONDS;
}

Result<Principal> Identity::resolve(const Grant& g, int64_t& expiresUnix) const {
  // One read transaction for every record the grant depends on: a consistent view.
  auto txn = vault_.environment().read();
  return resolveIn(txn, g, expiresUnix);
}

Result<Principal> Identity::resolveIn(const store::ReadTxn& txn, const Grant& g,
                                      int64_t& expiresUnix) const {
  expiresUnix = 0;
  if (g.method == AuthMethod::NONE) return gone("not authenticated");
  if (g.appKey.size() > 0 && !auth_.applicationKnownIn(txn, g.appKey)) {
    return gone("the application token was removed");
  }
  uint32_t epoch = g.epoch;
  // A ticket session, and a password session that was issued a ticket, live as long as it.
  if (g.ticketKey.size() > 0) {
    KJ_IF_MAYBE(t, auth_.findTicketIn(txn, g.ticketKey)) {
      if (t->associateId != g.associateId) return gone("the ticket was revoked or expired");
      epoch = t->epoch;
      expiresUnix = t->expiresUnix;
    } else {
      return gone("the ticket was revoked or expired");
    }
  }
  switch (g.method) {
    case AuthMethod::NONE:
    case AuthMethod::PEER_CREDENTIALS:
    case AuthMethod::PASSWORD:
    case AuthMethod::TICKET:
      break;
    case AuthMethod::API_TOKEN:
      KJ_IF_MAYBE(t, auth_.findTokenIn(txn, g.tokenKey)) {
        if (t->associateId != g.associateId) return gone("the token was revoked or expired");
        expiresUnix = t->expiresUnix;
      } else {
        return gone("the token was revoked or expired");
      }
      break;
  }

  Principal p;
  p.method = g.method;
  p.uid = g.peer.uid;
  p.pid = g.peer.pid;
  p.partnerApp = g.appKey.size() > 0;
  if (g.associateId == 0) {
    // Only a system uid acts without an associate.
    if (g.method != AuthMethod::PEER_CREDENTIALS || !g.systemUid) return gone("not authenticated");
    p.name = kj::str("uid ", g.peer.uid);
    p.kind = Kind::SYSTEM;
    return kj::mv(p);
  }
  KJ_IF_MAYBE(a, vault_.findAssociateIn(txn, g.associateId)) {
    if (!a->active) return gone("the associate is inactive");
    if (g.method == AuthMethod::PEER_CREDENTIALS) {
      // The associate's own (sealed) record must name the uid: a moved index entry cannot
      // make one uid act as another associate.
      bool mapped = false;
      KJ_IF_MAYBE(uid, a->unixUid) { mapped = *uid == g.peer.uid; }
      if (!mapped) return gone("the uid is no longer mapped to this associate");
    } else if (g.method == AuthMethod::PASSWORD || g.method == AuthMethod::TICKET) {
      // A new password or a deactivation moved the epoch: every session and ticket opened
      // under the old one ends.
      if (a->credentialEpoch != epoch) return gone("the session's credentials were revoked");
    }
    p.associateId = a->id;
    p.name = kj::mv(a->name);
    p.kind = a->kind;
    p.userAdmin = a->userAdmin;
    if (g.method == AuthMethod::PEER_CREDENTIALS && g.systemUid) p.kind = Kind::SYSTEM;
    return kj::mv(p);
  }
  return gone("the associate no longer exists");
}

kj::Maybe<const Principal&> Identity::cached(const Standing& s) const {
  if (s.generation != 0 && s.generation == vault_.environment().generation() &&
      (s.expiresUnix == 0 || nowUnix() < s.expiresUnix)) {
    return s.principal;
  }
  return nullptr;
}

Result<const Principal&> Identity::current(Standing& s) const {
  // Read before the store is: a change committed after this load moves it again.
  uint64_t generation = vault_.environment().generation();
  if (s.generation == generation && (s.expiresUnix == 0 || nowUnix() < s.expiresUnix)) {
    return s.principal;
  }
  s.generation = 0;
  auto resolved = resolve(s.grant, s.expiresUnix);
  if (!resolved.ok()) return resolved.takeRefusal();
  s.principal = kj::mv(resolved).value();
  s.generation = generation;
  return s.principal;
}

Grant Identity::grantFor(AuthMethod method, Peer peer,
                         kj::Maybe<kj::Array<kj::byte>> appKey) const {
  Grant g;
  g.method = method;
  g.peer = peer;
  g.systemUid = isSystemUid(peer.uid);
  KJ_IF_MAYBE(k, appKey) { g.appKey = kj::mv(*k); }
  return g;
}

Result<Standing> Identity::check(Grant grant) const {
  Standing s(kj::mv(grant));
  auto now = current(s);
  if (!now.ok()) return now.takeRefusal();
  return kj::mv(s);
}

Result<Standing> Identity::byPeer(Peer peer) const {
  auto g = grantFor(AuthMethod::PEER_CREDENTIALS, peer, nullptr);
  KJ_IF_MAYBE(a, vault_.findAssociateByUid(peer.uid)) {
    bool matches = false;
    KJ_IF_MAYBE(uid, a->unixUid) { matches = *uid == peer.uid; }
    if (!matches && !g.systemUid) {
      damaged(
          kj::str("the uid index names an associate whose record has another uid; the "
                  "database was changed outside credvault"));
    }
    if (matches && a->active) g.associateId = a->id;
  }
  if (g.associateId == 0 && !g.systemUid) {
    return refuse(
        ErrorCode::NOT_AUTHENTICATED, "",
        kj::str("uid ", peer.uid,
                " is not mapped to an associate; authenticate with a ticket or password"));
  }
  return check(kj::mv(g));
}

Principal Identity::peerPrincipal(Peer peer) const {
  Principal p;  // no one (method NONE) unless the peer is someone
  try {
    auto standing = byPeer(peer);
    if (standing.ok()) p = kj::mv(standing.value().principal);
  } catch (const kj::Exception& e) {
    // A damaged record makes the peer no one here; the calls that need its identity answer
    // `integrity` themselves.
    if (!isIntegrityFailure(e)) throw;
  }
  p.uid = peer.uid;
  p.pid = peer.pid;
  p.frontEnd = isGatewayUid(peer.uid);
  return p;
}

Result<Standing> Identity::byPassword(Peer peer, const Associate& verified,
                                      kj::Maybe<kj::Array<kj::byte>> appKey) const {
  auto g = grantFor(AuthMethod::PASSWORD, peer, kj::mv(appKey));
  g.associateId = verified.id;
  g.epoch = verified.credentialEpoch;
  return check(kj::mv(g));
}

Result<Standing> Identity::byTicket(Peer peer, kj::StringPtr ticket,
                                    kj::Maybe<kj::Array<kj::byte>> appKey) const {
  auto g = grantFor(AuthMethod::TICKET, peer, kj::mv(appKey));
  KJ_IF_MAYBE(key, auth_.ticketKey(ticket)) {
    KJ_IF_MAYBE(t, auth_.findTicketByKey(*key)) {
      g.associateId = t->associateId;
      g.epoch = t->epoch;
      g.ticketKey = kj::mv(*key);
      // Every reason the ticket does not hold is answered as one, below.
      auto checked = check(kj::mv(g));
      if (checked.ok()) return checked;
    }
  }
  return refuse(ErrorCode::NOT_AUTHENTICATED, "ticket",
                kj::str("unknown, expired or revoked ticket"));
}

Result<Standing> Identity::byToken(Peer peer, kj::StringPtr token,
                                   kj::Maybe<kj::Array<kj::byte>> appKey) const {
  auto g = grantFor(AuthMethod::API_TOKEN, peer, kj::mv(appKey));
  KJ_IF_MAYBE(key, auth_.tokenKey(token)) {
    KJ_IF_MAYBE(t, auth_.findTokenByKey(*key)) {
      g.associateId = t->associateId;
      g.tokenKey = kj::mv(*key);
      auto checked = check(kj::mv(g));
      if (checked.ok()) return checked;
    }
  }
  return refuse(ErrorCode::NOT_AUTHENTICATED, "token",
                kj::str("unknown, expired or revoked token"));
}

}  // namespace credvault::core
