// credvault — who is calling: principal resolution for every authentication method, and
// the re-check that runs before every call a session or admin capability makes.
//
// A session does not remember a permission; it remembers how it was opened (a Grant: the
// method, the peer, the associate, the associate's credential epoch, the keyed hash of its
// ticket, API token or partner application token) and asks `current` on every call for the
// principal that grant stands for now. `current` fails with NOT_AUTHENTICATED the moment any
// of these no longer holds: the associate exists and is active; a peer uid is still mapped
// to it (its record's unixUid, not only the index, names the uid); a password or ticket
// session's epoch is unchanged (password change, deactivation); the ticket or token is
// neither revoked nor expired; a partner application is still registered. Kind and
// userAdmin are read afresh, so a demotion takes effect on the next call.
//
// Cost: the answer is cached per grant (Standing) together with the store's generation
// (store::Store::generation), which every write touching associates, tickets, tokens
// or applications moves after it commits. While the generation is unchanged a call costs one
// atomic load and a clock comparison (expiry); when it moved, one read transaction.
//
// No sockets, no capnp, no logging. Holds no ticket, token or password: only keyed hashes.

#pragma once

#include "auth.h"
#include "policy.h"

namespace credvault::core {

// The peer of a connection, from SO_PEERCRED.
struct Peer {
  uint32_t uid = 0;
  uint32_t pid = 0;
};

// How a session was opened. Copyable facts only; never a bearer secret.
struct Grant {
  AuthMethod method = AuthMethod::NONE;
  Peer peer;
  int32_t associateId = 0;        // 0: a system uid without an associate
  uint32_t epoch = 0;             // the associate's credentialEpoch when authenticated
  bool systemUid = false;         // the peer uid is root or configured as a system uid
  kj::Array<kj::byte> ticketKey;  // TICKET: the ticket's index key
  kj::Array<kj::byte> tokenKey;   // API_TOKEN: the token's index key
  kj::Array<kj::byte> appKey;     // partner application (online mode); empty otherwise
};

Grant cloneGrant(const Grant& g);

// A grant plus the principal it stood for at the last check.
struct Standing {
  explicit Standing(Grant grant) : grant(kj::mv(grant)) {}
  Grant grant;
  Principal principal;      // valid while `generation` matches and before `expiresUnix`
  uint64_t generation = 0;  // 0: never checked
  int64_t expiresUnix = 0;  // the ticket's or token's expiry; 0: none
};

struct IdentityOptions {
  kj::Array<uint32_t> systemUids;   // besides uid 0
  kj::Array<uint32_t> gatewayUids;  // besides uid 0: front ends whose clientAddress counts
};

class Identity {
 public:
  Identity(Vault& vault, Authenticator& auth, const kj::Clock& clock, IdentityOptions options);
  KJ_DISALLOW_COPY(Identity);

  bool isSystemUid(uint32_t uid) const;
  // A front end (uid 0 or a configured gateway uid) speaks for many clients: the client
  // address it passes keys the throttle and the password queue and goes into the audit
  // trail. From anyone else it is ignored, so a local user cannot pose as many clients.
  bool isGatewayUid(uint32_t uid) const;

  // ---- Opening a session: each returns the standing already checked (principal filled),
  // or refuses NOT_AUTHENTICATED when the caller is no one. ------------------------------
  // By peer credentials: a system uid (with its associate, if one is mapped and active), or
  // the active associate whose unixUid is the peer's uid. An index entry that points to an
  // associate whose record names another uid is damaged data (an integrity failure, thrown:
  // core/error.h) for an ordinary uid and ignored for a system uid (which then acts without
  // an associate).
  Result<Standing> byPeer(Peer peer) const;
  // The peer's principal (whoami, status, metrics): method NONE when no one, or when a
  // record it depends on is damaged; frontEnd set for uid 0 and the gateway uids.
  Principal peerPrincipal(Peer peer) const;
  // After the password was verified (Authenticator::checkPassword).
  Result<Standing> byPassword(Peer peer, const Associate& verified,
                              kj::Maybe<kj::Array<kj::byte>> appKey) const;
  // A malformed, unknown, expired or revoked ticket (or token), or one whose associate is
  // gone, inactive or has a new password, all give the same NOT_AUTHENTICATED.
  Result<Standing> byTicket(Peer peer, kj::StringPtr ticket,
                            kj::Maybe<kj::Array<kj::byte>> appKey) const;
  Result<Standing> byToken(Peer peer, kj::StringPtr token,
                           kj::Maybe<kj::Array<kj::byte>> appKey) const;

  // ---- Every call. -----------------------------------------------------------------------
  // The principal `standing` stands for now, or NOT_AUTHENTICATED when its grant no longer
  // holds. The reference is valid until the next call on `standing`.
  Result<const Principal&> current(Standing& standing) const;

  // The cached principal while it still holds (the store's generation is unchanged and the
  // ticket or token has not expired), without touching the store; null when `current` would
  // read it. A daemon whose store may block (PostgreSQL) asks this on its event loop and
  // resolves on a worker when it is null.
  kj::Maybe<const Principal&> cached(const Standing& standing) const;

  // The same without the cache (tests compare the two).
  Result<Principal> resolve(const Grant& grant, int64_t& expiresUnix) const;
  // The same within `txn`: a write transaction sees the changes committed before it in its
  // own batch.
  Result<Principal> resolveIn(const store::ReadTxn& txn, const Grant& grant,
                              int64_t& expiresUnix) const;

  // Wraps a write so that it happens only if, inside the transaction that commits it, the
  // grant still holds and still permits `op` on `target`. A write is authorized when it is
  // queued (the choke point) and again when it runs: a demotion or deactivation committed in
  // between — even earlier in the same group commit — refuses it, as the write's returned
  // refusal (its nested transaction is then aborted).
  template<typename T>
  WriteOp<Result<T>> recheck(const Grant& grant, Operation op, int32_t target,
                             WriteOp<Result<T>> inner) const {
    return [this, grant = cloneGrant(grant), op, target,
            inner = kj::mv(inner)](store::WriteTxn& txn) mutable -> Result<T> {
      int64_t expires;
      auto who = resolveIn(txn, grant, expires);
      if (!who.ok()) return who.takeRefusal();
      auto decision = authorize(who.value(), op, target);
      if (!decision.ok()) return decision.takeRefusal();
      return inner(txn);
    };
  }
  // The same for a write that cannot be refused otherwise (its value is wrapped).
  template<typename T>
  WriteOp<Result<T>> recheck(const Grant& grant, Operation op, int32_t target,
                             WriteOp<T> inner) const {
    return recheck<T>(
        grant, op, target,
        WriteOp<Result<T>>([inner = kj::mv(inner)](store::WriteTxn& txn) mutable -> Result<T> {
          return inner(txn);
        }));
  }

 private:
  Vault& vault_;
  Authenticator& auth_;
  const kj::Clock& clock_;
  IdentityOptions options_;

  int64_t nowUnix() const;
  Result<Standing> check(Grant grant) const;
  // What every grant starts with: method, peer, whether the peer is a system uid, app key.
  Grant grantFor(AuthMethod method, Peer peer, kj::Maybe<kj::Array<kj::byte>> appKey) const;
};

}  // namespace credvault::core
