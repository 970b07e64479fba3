# credvault native API — the contract between credvaultd and its clients.
#
# Capability style: the bootstrap object (Vault) already knows who the peer is from its
# socket credentials (SO_PEERCRED). Asking it for a session, or authenticating with a
# ticket, password or API token, returns a Session capability bound to one principal;
# every credential operation goes through that capability. Administration is a further
# capability handed only to those allowed.
#
# Errors are values: every result carries `error`, null on success. Clients switch on
# Error.code; `field` names the offending argument for invalidArgument/limitExceeded.
# `message` is for humans and never contains a secret.
#
# Dates are .NET ticks (100 ns since 0001-01-01T00:00:00 UTC), as SuperOffice stores them;
# 0 is DateTime.MinValue, meaning "open-ended".

@0xfe16d2051de105c7;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("credvault::rpc");

enum ErrorCode {
  internal @0;
  notAuthenticated @1;
  permissionDenied @2;
  invalidArgument @3;
  notFound @4;
  limitExceeded @5;
  unavailable @6;
  integrity @7;        # a stored record failed authentication (tampered or damaged)
  conflict @8;         # e.g. an associate name that is already taken
  throttled @9;        # too many failed attempts; retry later
}

struct Error {
  code @0 :ErrorCode;
  field @1 :Text;      # the argument at fault, when there is one
  message @2 :Text;
  retryAfterSeconds @3 :UInt32;  # throttled: when trying again can succeed; 0 = not said
}

struct Credential {
  validFrom @0 :Int64;     # .NET ticks; 0 = open
  validTo @1 :Int64;       # .NET ticks; 0 = open
  comment @2 :Text;
  secretValue @3 :Text;    # null: absent (on save: keep the stored secret; on get: withheld)
  publicValue @4 :Text;
  isActive @5 :Bool;
}

enum Kind {
  user @0;
  system @1;
}

enum AuthMethod {
  none @0;
  peerCredentials @1;
  password @2;
  ticket @3;
  apiToken @4;
}

struct Principal {
  associateId @0 :Int32;   # 0 when the principal has no associate (e.g. root unmapped)
  name @1 :Text;
  kind @2 :Kind;
  userAdmin @3 :Bool;
  method @4 :AuthMethod;
  uid @5 :UInt32;          # the peer's uid
  pid @6 :UInt32;
  partnerApp @7 :Bool;     # authenticated with an application token of a partner app
}

struct Associate {
  associateId @0 :Int32;
  name @1 :Text;
  kind @2 :Kind;
  userAdmin @3 :Bool;
  unixUid @4 :Int64;       # -1 when none
  active @5 :Bool;
  hasPassword @6 :Bool;
}

struct AssociateUpdate {
  # Fields to change; an unset field is left as it is.
  kind :union { keep @0 :Void; set @1 :Kind; }
  userAdmin :union { keep @2 :Void; set @3 :Bool; }
  unixUid :union { keep @4 :Void; set @5 :Int64; }   # -1 removes the mapping
  active :union { keep @6 :Void; set @7 :Bool; }
  name :union { keep @8 :Void; set @9 :Text; }
}

struct Status {
  version @0 :Text;
  credentials @1 :UInt64;
  associates @2 :UInt64;
  dataKeyId @3 :UInt32;
  mapSize @4 :UInt64;
  usedBytes @5 :UInt64;
  uptimeSeconds @6 :UInt64;
  connections @7 :UInt32;
  # Figures for monitoring (Vault.metrics; status leaves them 0).
  commits @8 :UInt64;            # durable group commits since start
  committedWrites @9 :UInt64;    # writes they carried (÷ commits = saves per commit)
  writeQueue @10 :UInt32;        # writes waiting for the next commit
  passwordQueue @11 :UInt32;     # Argon2id verifications waiting for a worker
  passwordWorkers @12 :UInt32;   # Argon2id workers (at most this many hashes at once)
  readQueue @13 :UInt32;         # long lists waiting for the reads worker
  maintenanceQueue @14 :UInt32;  # backups waiting
  mapReaders @15 :UInt32;        # LMDB read slots in use
  auditAccepting @16 :Bool;      # false while the audit trail refuses records
  # @17..@19 are another change's (capnp allows no holes; these placeholders go on merge).
  reservedForOthers17 @17 :Void;
  reservedForOthers18 @18 :Void;
  reservedForOthers19 @19 :Void;
  storeError @20 :Text;          # empty while the store works; else why writes fail now
  storeFailingSince @21 :Int64;  # unix seconds of the first failure of this spell; 0 = ok
  storeFailures @22 :UInt64;     # failed commits since the daemon started
  verification @23 :Text;        # what start-up verification found ("skipped" when off)
}

interface Vault {
  # The bootstrap. Identity comes from the socket's peer credentials.

  whoami @0 () -> (error :Error, principal :Principal);
  # The principal this connection has by its peer credentials.

  session @1 () -> (error :Error, session :Session);
  # A session for the peer's own identity (uid 0, a configured system uid, or the
  # associate whose unixUid matches). notAuthenticated if the uid maps to no one.

  authenticatePassword @2 (name :Text, password :Text, appToken :Text, issueTicket :Bool,
                           clientAddress :Text, requestId :Text)
      -> (error :Error, session :Session, principal :Principal, ticket :Text,
          ticketExpires :Int64);
  # Failed attempts are throttled per name and per (peer uid, clientAddress): a front end
  # such as the gateway passes its client's address so one client cannot slow down others.
  # With issueTicket a ticket ("7T:…") is issued; ticketExpires is in .NET ticks.
  #
  # clientAddress and requestId (here and on the other authenticate calls) are what a front
  # end knows of its own client: both go into every audit record of the session, so an
  # administrator can join the daemon's audit trail with the gateway's access log. Printable
  # ASCII, at most 64 bytes each; empty when the caller is the client itself.
  authenticateTicket @3 (ticket :Text, appToken :Text, clientAddress :Text, requestId :Text)
      -> (error :Error, session :Session, principal :Principal);
  # A malformed, unknown, expired or revoked ticket all give the same notAuthenticated.
  authenticateToken @4 (token :Text, appToken :Text, clientAddress :Text, requestId :Text)
      -> (error :Error, session :Session, principal :Principal);
  # API tokens (Authorization: Bearer).

  status @5 () -> (error :Error, status :Status);

  revokeTicket @6 (ticket :Text) -> (error :Error, revoked :Bool);
  # Holding a ticket is the authority to revoke it.

  health @7 () -> (error :Error, version :Text);
  # Liveness for health checks (the gateway's /healthz): open to anyone who can reach the
  # socket, costs one read transaction, tells nothing about the vault's content. An answer
  # without error means the daemon serves calls: its database is readable and its audit trail
  # accepts records. Successful calls are not recorded in the audit trail (probes every few
  # seconds would drown it); refusals are.

  metrics @8 () -> (error :Error, status :Status);
  # Every Status figure, the monitoring ones included, for system users and the configured
  # front ends (gateway_uids; the gateway exports them at its metrics_listen address). Counts
  # only: no name, id or value. Successful calls are not audited, like health.
}

struct ApiToken {
  name @0 :Text;
  associateId @1 :Int32;
  created @2 :Int64;      # unix seconds
  expires @3 :Int64;      # unix seconds; 0 = never
}

struct Application {
  name @0 :Text;
  created @1 :Int64;      # unix seconds
}

struct ListedCredential {
  # One entry of Session.list: where it is filed and its carrier, never its SecretValue.
  associateId @0 :Int32;
  type @1 :Text;
  credential @2 :Credential;   # secretValue always null
}

struct CredentialUpdate {
  # Fields to change; an unset field keeps its stored value.
  validFrom :union { keep @0 :Void; set @1 :Int64; }
  validTo :union { keep @2 :Void; set @3 :Int64; }
  comment :union { keep @4 :Void; set @5 :Text; }
  secretValue :union { keep @6 :Void; set @7 :Text; }
  isActive :union { keep @8 :Void; set @9 :Bool; }
}

interface Session {
  whoami @0 () -> (error :Error, principal :Principal);

  # The UntrustedCredentials operations. `associateId` names whose entries: 0 = the
  # session's own associate (SuperOffice's AssociateId 0, as in the token calls), another id
  # for a user administrator or system user acting for that associate. A client of an earlier
  # release sends no associateId, which reads as 0: its get/save/remove mean what they meant.
  createDefault @1 () -> (error :Error, credential :Credential);
  get @2 (type :Text, associateId :Int32) -> (error :Error, credentials :List(Credential));
  save @4 (type :Text, credential :Credential, associateId :Int32) -> (error :Error);
  remove @6 (type :Text, publicValue :Text, associateId :Int32)
      -> (error :Error, removed :Bool);

  # Deprecated (kept one release for gateways and clients of the earlier release talking to
  # a new daemon during an upgrade): the same as get/save/remove with associateId, answered
  # by the same code. Will be removed in the next release; do not use in new code.
  getForAssociate @3 (associateId :Int32, type :Text)
      -> (error :Error, credentials :List(Credential));
  saveForAssociate @5 (associateId :Int32, type :Text, credential :Credential)
      -> (error :Error);
  removeForAssociate @7 (associateId :Int32, type :Text, publicValue :Text)
      -> (error :Error, removed :Bool);

  admin @8 () -> (error :Error, admin :Admin);
  # Associate administration: system users get everything, a userAdmin may list.

  logout @9 () -> (error :Error);
  # Revokes the ticket this session was opened with (no-op for other methods).

  createToken @10 (associateId :Int32, name :Text, expires :Int64)
      -> (error :Error, token :Text, info :ApiToken);
  # associateId 0 = self; expires in unix seconds, 0 = never. The token is shown only here.
  listTokens @11 (associateId :Int32) -> (error :Error, tokens :List(ApiToken));
  revokeToken @12 (associateId :Int32, name :Text) -> (error :Error, revoked :Bool);

  list @13 (associateId :Int32, type :Text) -> (error :Error, credentials :List(ListedCredential));
  # The entries of one associate (0 = self), of every type or only of `type` (empty: all),
  # without secrets. Allowed as `get` is: self, a userAdmin or a system user.
  listAll @14 (type :Text) -> (error :Error, credentials :List(ListedCredential));
  # The same for every associate: system users and userAdmins (the permission table's
  # "another associate's list").
  update @15 (associateId :Int32, type :Text, publicValue :Text, update :CredentialUpdate)
      -> (error :Error);
  # Changes the named fields of the entry (associateId 0 = self) in one transaction and
  # keeps the rest: no read-modify-write race with another writer. notFound when there is no
  # such entry. Allowed as `save` is (a userAdmin may set, never read, a secret).
  changePassword @16 (current :Text, password :Text) -> (error :Error);
  # The caller's own password, given the current one (wrong: notAuthenticated, throttled as
  # a login). Ends the tickets issued under the old one.
}

interface Admin {
  addAssociate @0 (name :Text, kind :Kind, userAdmin :Bool, unixUid :Int64, password :Text)
      -> (error :Error, associate :Associate);
  # unixUid -1 for none; password null for none.
  listAssociates @1 () -> (error :Error, associates :List(Associate));
  setAssociate @2 (associateId :Int32, update :AssociateUpdate)
      -> (error :Error, associate :Associate);
  removeAssociate @3 (associateId :Int32) -> (error :Error, removedCredentials :UInt32);
  setPassword @4 (associateId :Int32, password :Text) -> (error :Error);
  findAssociate @5 (name :Text) -> (error :Error, associate :Associate);

  backup @6 (path :Text) -> (error :Error);
  # Withdrawn: the daemon no longer writes files where a caller asks (it runs as root).
  # Always answers permissionDenied; use backupTo.
  rotateDataKey @7 () -> (error :Error, keyId :UInt32);

  addApplication @8 (name :Text) -> (error :Error, token :Text, application :Application);
  # Registers a partner application; its token is shown only here.
  listApplications @9 () -> (error :Error, applications :List(Application));
  removeApplication @10 (name :Text) -> (error :Error, removed :Bool);

  backupTo @12 (sink :ByteSink) -> (error :Error, bytes :UInt64);
  # Streams a consistent snapshot of the whole database (ciphertext and keyed hashes only,
  # as on disk) into `sink`, then calls sink.done(). The caller writes it where it likes,
  # as itself (credvaultctl backup FILE). System users only.

  auditHash @13 (value :Text) -> (error :Error, hmac :Text);
  # The keyed hash under which audit records name a public value (lower-case hex), so an
  # administrator can search the audit trail for one entry. System users only.

  verify @14 () -> (error :Error, report :VerifyReport);
  # Walks every table and page, opens every sealed record and checks counts and indexes
  # against the records, in a forked child on a read-only view of the live database (a
  # damaged page kills the child, not the daemon). A damaged vault answers `integrity` and
  # report.problem says which table. System users only; one at a time.

  changeMasterKey @11 (keyFile :Text) -> (error :Error, fingerprint :Text);
  # Re-wraps every data key under the key in `keyFile` (absolute path, a private file the
  # daemon can read: 32 raw bytes or base64) and uses it from now on. Records are not
  # touched. The operator then installs that key where the daemon loads it from at start
  # (key file or sealed credential) — see docs/operations.md.
}

struct VerifyReport {
  # What Admin.verify checked (a consistent snapshot as of the call).
  tables @0 :UInt64;
  entries @1 :UInt64;       # in every table, the free-page list included
  associates @2 :UInt64;
  credentials @3 :UInt64;
  durationMs @4 :UInt64;
  problem @5 :Text;         # null when the vault passed; else the one-line finding
}

interface ByteSink {
  # Where a stream of bytes (a backup) goes; implemented by the client.
  write @0 (data :Data) -> stream;
  done @1 ();
}
