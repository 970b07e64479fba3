// credvaultd — the Cap'n Proto service over core.
//
// One Vault capability is created per accepted connection and knows that connection's peer
// (uid, pid from SO_PEERCRED). Every call on it, and on the Session and Admin capabilities
// it hands out, passes one choke point (`Gate` in rpc-server.c++) before its method body
// runs and after it ends:
//   1. the request's size is checked;
//   2. the audit trail must be able to take a record (fail closed, see audit.h);
//   3. a session's or admin capability's principal is re-validated against the store as it
//      is now (core::Identity::current): a revoked right dies on the very next call;
//   4. core decides whether that principal may do this operation to this target
//      (core::authorize), before any method body runs;
//   5. a refusal (core::Refusal, returned by core or by the daemon's own checks) becomes a
//      typed rpc::Error; a storage failure `unavailable`, damaged data `integrity`; any other
//      exception is logged (its text is ours and holds no secrets) and reported as `internal`;
//   6. exactly one audit record is written with the call's outcome.
// A method body cannot skip any of these: they run in dispatchCall, which capnp calls for
// every method.

#pragma once

#include "audit.h"
#include "core/vault.h"
#include "core/auth.h"
#include "core/identity.h"
#include "group-commit.h"
#include "blocking-pool.h"
#include "store-health.h"
#include "ipc/credvault.capnp.h"
#include <kj/refcount.h>
#include <kj/map.h>
#include <kj/time.h>
#include <kj/vector.h>

namespace credvault::daemon {

using Peer = core::Peer;

struct ServiceOptions {
  // Password verifications waiting for a worker (docs/limits.md): per uid, and per client of
  // a gateway uid (whose own cap is GATEWAY_QUEUE_FACTOR times the per-uid one).
  uint32_t passwordQueuePerUid = 8;
  uint32_t passwordQueuePerClient = 4;
};
constexpr uint32_t GATEWAY_QUEUE_FACTOR = 64;

// A Get whose list is longer than this is opened on the reads worker, not the event loop
// (~1.4 µs of decryption per entry: 256 entries ≈ 0.4 ms). Long Gets waiting per uid past
// LONG_GETS_PER_UID are answered `throttled` (retry in 1 s): each holds up to ~16 MiB (the
// opened list, then its answer) until the client reads it, and a client that pipelines
// long Gets without reading must not make the daemon hold dozens (docs/limits.md).
constexpr size_t INLINE_GET_LIMIT = 256;
constexpr size_t LONG_GETS_PER_UID = 4;

// What a connection has promised but not yet queued for writing: long Gets, from the moment
// they are admitted until their answer is handed to capnp (on the reads worker, waiting for the
// event loop, waiting for their audit record). The listener counts each as
// LONG_CALL_WEIGHT_BYTES of write backlog, so a client that pipelines long Gets without reading
// them has its requests left unread (back-pressure) rather than all of them opened at once.
struct ConnectionLoad : public kj::Refcounted {
  size_t longCalls = 0;
  size_t calls = 0;  // calls received and not yet answered: the connection is not idle
};
// What a long Get holds at its largest: the opened list (secrets in the secure pool) and its
// encoded answer, ~8 MiB each for 1,000 credentials of 8 KiB.
constexpr size_t LONG_CALL_WEIGHT_BYTES = 16 << 20;
// Answers one uid's connections may hold unsent (and long Gets promised) before that uid's next
// long Get is answered `throttled`: one uid with many connections, each reading nothing,
// cannot make the daemon hold a long answer per connection.
constexpr size_t MAX_ANSWER_BYTES_PER_UID = 64 << 20;
// A gateway's link carries many HTTP clients under one uid, so its long Gets are counted per
// client address as well: one client has at most LONG_GETS_PER_CLIENT admitted (queued or being
// opened; the next is `throttled`), queued in its own lane, and the gateway uid's answer budget
// is GATEWAY_ANSWER_FACTOR times a local uid's. One HTTP client looping long lists then takes
// its own turns, not every other client's (docs/limits.md "Long answers through a gateway").
constexpr size_t LONG_GETS_PER_CLIENT = 2;
constexpr size_t GATEWAY_ANSWER_FACTOR = 4;

// Backups and on-demand verification run at this nice value (see BlockingPool): they read the
// whole file and would otherwise take a CPU from the event loop on a small machine for as long
// as they last (a 1M-credential backup is ~0.3 s of CPU). 10 leaves them ~10 % of a contended
// CPU, so they still finish under full load.
constexpr int MAINTENANCE_NICENESS = 10;

// With a store whose reads may wait on the network (store::Store::mayBlock, PostgreSQL), no
// store transaction runs on the event loop: the choke point's identity re-check (when the
// store's generation moved) and every handler that reads (a short Get, a listing, status,
// health) run on the reads workers, and the call goes on on the event loop with the result.
// Short reads queue in the caller's lane with these caps (then `throttled`, retry in 1 s):
// generous, as each takes one round trip to the database, but bounded, so one uid cannot queue
// unlimited work. With LMDB (never blocks) everything stays inline as before.
// Long lists keep their own worker (reads()), as with LMDB.
constexpr size_t SHORT_READS_PER_UID = 256;
constexpr size_t SHORT_READS_PER_CLIENT = 64;

// Shared by every connection; lives as long as the daemon.
class Service {
 public:
  Service(core::Vault& vault, core::Authenticator& auth, core::Identity& identity,
          GroupCommitter& committer, BlockingPool& passwords, AuditLog& audit,
          const kj::Clock& clock);

  rpc::Vault::Client newBootstrap(Peer peer,
                                  kj::Own<ConnectionLoad> load = kj::refcounted<ConnectionLoad>());

  core::Vault& vault() { return vault_; }
  core::Authenticator& auth() { return auth_; }
  core::Identity& identity() { return identity_; }
  GroupCommitter& committer() { return committer_; }
  BlockingPool& passwords() { return passwords_; }
  BlockingPool& maintenance() { return *maintenance_; }  // backups: one at a time
  BlockingPool& reads() { return *reads_; }              // long lists (INLINE_GET_LIMIT)
  // Whether store reads go to workers (the store may block; see above).
  bool offload() const { return offload_; }
  // With a store that may block: the short reads (identity re-checks, short Gets, listings of
  // associates, status) on their own workers, so that they never wait behind long lists.
  BlockingPool& shortReads() { return *KJ_REQUIRE_NONNULL(shortReads_); }
  // Sets the short-read workers before serving: one per database connection
  // (postgresql_connections).
  void setReadWorkers(size_t n);
  AuditLog& audit() { return audit_; }
  const kj::Clock& clock() { return clock_; }
  uint32_t connections = 0;
  kj::Date started;
  ServiceOptions options;
  // Set by the listener: bytes of answers a uid's connections hold unsent, plus long Gets in
  // progress at LONG_CALL_WEIGHT_BYTES each. Null (tests over socket pairs): no budget.
  kj::Maybe<kj::Function<size_t(uint32_t uid)>> answerBytesOf;
  // Set by main: the store's health for status (null in tests: reported healthy).
  kj::Maybe<StoreHealth&> storeHealth;
  // What start-up verification found (status.verification).
  kj::String verification = kj::str("not run");

  // Graceful stop: once `stopping`, every new call is answered `unavailable`; calls already
  // received run to the end. `inFlight` counts calls whose answer is not yet complete.
  bool stopping = false;
  uint32_t inFlight = 0;

  // A gateway's long Gets admitted and not yet opened, per "uid/client address" (runLong).
  kj::HashMap<kj::String, uint32_t> longGetsByClient;

 private:
  core::Vault& vault_;
  core::Authenticator& auth_;
  core::Identity& identity_;
  GroupCommitter& committer_;
  BlockingPool& passwords_;
  AuditLog& audit_;
  const kj::Clock& clock_;
  kj::Own<BlockingPool> maintenance_;
  kj::Own<BlockingPool> reads_;
  bool offload_;
  kj::Maybe<kj::Own<BlockingPool>> shortReads_;
};

// Fills an rpc::Error from a refusal.
void setError(rpc::Error::Builder out, const core::Refusal& r);

}  // namespace credvault::daemon
